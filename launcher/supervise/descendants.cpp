#include "supervise/descendants.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <unordered_map>
#include <vector>

#include <butter/fd.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>

namespace butter::launcher {

namespace {

// pid -> parent pid of every process /proc shows (threads are not listed there).
std::unordered_map<pid_t, pid_t> parents() {
    std::unordered_map<pid_t, pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (auto st = process_stat(pid)) out[pid] = st->ppid;  // (else gone meanwhile)
    }
    ::closedir(d);
    return out;
}

}  // namespace

std::vector<pid_t> descendants_of(pid_t root) {
    auto tree = parents();
    std::unordered_map<pid_t, std::vector<pid_t>> children;
    for (auto [pid, ppid] : tree)
        children[ppid].push_back(pid);
    std::vector<pid_t> out, todo{root};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        for (pid_t c : children[p]) {
            out.push_back(c);
            todo.push_back(c);
        }
    }
    return out;
}

bool in_sandbox(pid_t pid, pid_t first, std::optional<std::uint64_t> pid_ns) {
    if (pid_ns) {
        auto id = namespace_id(pid, Namespace::Pid);
        return id && *id == *pid_ns;
    }
    for (int depth = 0; pid > 1 && depth < 64; ++depth) {
        if (pid == first) return true;
        auto st = process_stat(pid);
        if (!st) return false;
        pid = st->ppid;
    }
    return false;
}

Result<void> become_subreaper() {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_SET_CHILD_SUBREAPER)");
    return {};
}

std::size_t kill_descendants(bool reap, int max_rounds, pid_t group) {
    std::size_t signalled = 0;
    pid_t self = ::getpid();
    for (int round = 0; round < max_rounds; ++round) {
        if (group > 0) (void)::kill(-group, SIGKILL);
        std::vector<pid_t> all = descendants_of(self);
        if (!reap) {
            // Zombies count as found; once signalled, the rest is the caller's to wait for.
            for (pid_t p : all)
                if (::kill(p, SIGKILL) == 0) ++signalled;
            return signalled;
        }
        // Reaped ones first: a zombie is no one to kill.
        while (::waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
        }
        all = descendants_of(self);
        if (all.empty()) return signalled;
        for (pid_t p : all)
            if (::kill(p, SIGKILL) == 0) ++signalled;
        // Give the killed a moment to die (their children come to us meanwhile).
        struct timespec ms {
            0, 1'000'000
        };
        ::nanosleep(&ms, nullptr);
    }
    return signalled;
}

}  // namespace butter::launcher
