// A program that runs sandboxes through the installed libbutter-sandbox (find_package and
// pkg-config): three at once on one loop (one succeeds, one fails, one times out) while
// another thread allocates, and the process is as it was afterwards: signal mask, SIGPIPE and
// SIGCHLD dispositions, dumpable flag, descriptors, resident memory.
#include <butter/loop.hpp>
#include <butter/sandbox.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

struct ProcessState {
    sigset_t mask;
    void (*sigpipe)(int);
    void (*sigchld)(int);
    int dumpable;
    int fds;
};

int count_fds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = d ? ::readdir(d) : nullptr)
        n += e->d_name[0] != '.';
    if (d) ::closedir(d);
    return n - 1;  // the directory's own
}

long rss_kb() {
    std::ifstream in("/proc/self/status");
    for (std::string l; std::getline(in, l);)
        if (l.rfind("VmRSS:", 0) == 0) return std::strtol(l.c_str() + 6, nullptr, 10);
    return -1;
}

ProcessState snapshot() {
    ProcessState s{};
    ::pthread_sigmask(SIG_BLOCK, nullptr, &s.mask);
    struct sigaction a {};
    ::sigaction(SIGPIPE, nullptr, &a);
    s.sigpipe = a.sa_handler;
    ::sigaction(SIGCHLD, nullptr, &a);
    s.sigchld = a.sa_handler;
    s.dumpable = ::prctl(PR_GET_DUMPABLE);
    s.fds = count_fds();
    return s;
}

// What differs, or "".
std::string differs(const ProcessState& a, const ProcessState& b) {
    if (std::memcmp(&a.mask, &b.mask, sizeof a.mask) != 0) return "signal mask";
    if (a.sigpipe != b.sigpipe) return "SIGPIPE's disposition";
    if (a.sigchld != b.sigchld) return "SIGCHLD's disposition";
    if (a.dumpable != b.dumpable) return "dumpable flag";
    if (a.fds != b.fds)
        return "descriptors: " + std::to_string(a.fds) + " -> " + std::to_string(b.fds);
    return "";
}

int fail(const char* what, const std::string& why = "") {
    std::fprintf(stderr, "sandbox consumer: %s%s%s\n", what, why.empty() ? "" : ": ", why.c_str());
    return 1;
}

struct Case {
    std::vector<std::string> command;
    std::optional<std::chrono::nanoseconds> timeout;
};

// The three at once: each outcome's exit status (as butter run's), or -1 for an error.
butter::Task<std::vector<int>> three(butter::EventLoop& loop, std::string& error) {
    std::vector<Case> cases = {{{"/bin/sh", "-c", "exit 0"}, {}},
                               {{"/bin/sh", "-c", "exit 3"}, {}},
                               {{"/bin/sleep", "30"}, std::chrono::seconds(1)}};
    std::vector<butter::Sandbox> boxes;
    for (const Case& c : cases) {
        butter::SandboxOptions o;
        o.command = c.command;
        o.timeout = c.timeout;
        auto box = butter::Sandbox::create(butter::SandboxProfile::builtin(), o);
        if (!box) {
            error = box.error().what();
            co_return std::vector<int>{};
        }
        boxes.push_back(std::move(*box));
    }
    for (butter::Sandbox& b : boxes)
        if (auto r = b.start(loop); !r) {
            error = r.error().what();
            co_return std::vector<int>{};
        }
    std::vector<int> statuses;
    for (butter::Sandbox& b : boxes) {
        auto outcome = co_await b.wait();
        if (!outcome) error = outcome.error().what();
        statuses.push_back(outcome ? outcome->exit_status() : -1);
    }
    co_return statuses;
}

}  // namespace

int main() {
    // A warm-up run: what the first run allocates for good (the profile's parsed tree, libc's
    // caches) is not what the check below is about.
    {
        butter::SandboxOptions o;
        o.command = {"/bin/true"};
        auto r = butter::run_sandbox(butter::SandboxProfile::builtin(), o);
        if (!r) return fail("warm-up run", r.error().what());
        if (r->exit_status() != 0) return fail("warm-up run", r->message);
        if (r->report.find("\"status\": 0") == std::string::npos) return fail("report", r->report);
    }
    ProcessState before = snapshot();
    long rss_before = rss_kb();

    std::atomic<bool> done{false};
    std::thread allocator([&] {  // malloc's locks busy in another thread all along
        while (!done.load()) {
            std::vector<std::string> v(64, std::string(200, 'x'));
            (void)v;
        }
    });
    std::string error;
    auto started = std::chrono::steady_clock::now();
    butter::Result<std::vector<int>> statuses = std::vector<int>{};
    {
        auto loop = butter::EventLoop::create();
        if (!loop) return fail("EventLoop", loop.error().what());
        statuses = loop->run_until_complete(three(*loop, error));
    }
    auto took = std::chrono::steady_clock::now() - started;
    done = true;
    allocator.join();
    if (!statuses || statuses->size() != 3) return fail("three sandboxes", error);
    if ((*statuses)[0] != 0 || (*statuses)[1] != 3 || (*statuses)[2] != 124)
        return fail("outcomes", std::to_string((*statuses)[0]) + " " +
                                    std::to_string((*statuses)[1]) + " " +
                                    std::to_string((*statuses)[2]) + " " + error);
    // At once, not one after the other: the time limit's second, not three.
    if (took > std::chrono::seconds(10)) return fail("not concurrent");

    ProcessState after = snapshot();
    if (auto d = differs(before, after); !d.empty()) return fail("the process's state changed", d);
    long grown = rss_kb() - rss_before;
    if (grown > 4096) return fail("resident memory grew", std::to_string(grown) + " kB");
    std::puts("sandbox consumer ok");
    return 0;
}
