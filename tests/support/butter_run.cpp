#include "butter_run.hpp"

#include "tmpdir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "stage.hpp"

namespace butter::test {

namespace {

[[noreturn]] void exec_butter(const std::vector<std::string>& args, const RunOptions& o) {
    if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) < 0) ::_exit(200);
    if (!o.ctty.empty()) {
        // setsid, then the first terminal opened without O_NOCTTY becomes the controlling one.
        if (::setsid() < 0) ::_exit(207);
        int t = ::open(o.ctty.c_str(), O_RDWR);
        if (t < 0 || ::dup2(t, 0) < 0) ::_exit(207);
        if (t != 0) ::close(t);
    } else if (o.stdin_data) {
        // A pipe holding the data, its write end closed (a pipe's buffer holds 64 KiB).
        int p[2];
        if (::pipe(p) < 0 || o.stdin_data->size() > 65536 ||
            ::write(p[1], o.stdin_data->data(), o.stdin_data->size()) !=
                static_cast<ssize_t>(o.stdin_data->size()) ||
            ::dup2(p[0], 0) < 0)
            ::_exit(212);
        ::close(p[0]);
        ::close(p[1]);
    } else {
        // Not the test runner's stdin, whatever it is (a pipe would make a warning).
        int n = ::open("/dev/null", O_RDONLY);
        if (n < 0 || ::dup2(n, 0) < 0) ::_exit(212);
        if (n != 0) ::close(n);
    }
    if (o.leak_fd >= 0) {
        int fd = ::open(o.leak_path.c_str(), O_RDONLY);  // no O_CLOEXEC: a leak on purpose
        if (fd < 0 || ::dup2(fd, o.leak_fd) < 0) ::_exit(201);
        if (fd != o.leak_fd) ::close(fd);
    }
    for (const auto& kv : o.env)
        ::putenv(const_cast<char*>(kv.c_str()));
    if (!o.fd5_file.empty()) {
        int f = ::open(o.fd5_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (f < 0 || ::dup2(f, 5) < 0) ::_exit(206);
    }
    // dup2 onto itself keeps close-on-exec: cleared either way.
    if (o.fd5 >= 0 && (::dup2(o.fd5, 5) < 0 || ::fcntl(5, F_SETFD, 0) < 0)) ::_exit(206);
    if (o.listen_fd >= 0) {
        // dup2 onto itself keeps close-on-exec: clear it either way.
        if (::dup2(o.listen_fd, 3) < 0 || ::fcntl(3, F_SETFD, 0) < 0) ::_exit(205);
        ::setenv("LISTEN_FDS", "1", 1);
        ::setenv("LISTEN_FDNAMES", "web", 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    }
    if (o.forged_listen_fds > 0) {
        ::setenv("LISTEN_FDS", std::to_string(o.forged_listen_fds).c_str(), 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    }
    if (o.as_nobody && ::getuid() == 0) {
        if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
            ::setresuid(65534, 65534, 65534) < 0)
            ::_exit(202);
        bool home_given = std::any_of(o.env.begin(), o.env.end(), [](const std::string& kv) {
            return kv.starts_with("HOME=");
        });
        if (!home_given) ::setenv("HOME", "/nonexistent", 1);
    }
    if (o.no_net_namespaces || o.no_user_namespaces) {
        // A user namespace of the caller's own (one mapping of its ids, as unshare -r does),
        // whose creator may set its limits; the host's stay as they are.
        auto write = [](const char* path, const std::string& text) {
            int fd = ::open(path, O_WRONLY | O_CLOEXEC);
            bool ok = fd >= 0 &&
                      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
            if (fd >= 0) ::close(fd);
            return ok;
        };
        std::string uid = std::to_string(::getuid()), gid = std::to_string(::getgid());
        // Dumpable again after as_nobody's id change, or /proc/self stays root's.
        if (::prctl(PR_SET_DUMPABLE, 1) < 0 || ::unshare(CLONE_NEWUSER) < 0) ::_exit(209);
        if (!write("/proc/self/uid_map", uid + " " + uid + " 1\n") ||
            !write("/proc/self/setgroups", "deny") ||
            !write("/proc/self/gid_map", gid + " " + gid + " 1\n"))
            ::_exit(210);
        if (!write(o.no_user_namespaces ? "/proc/sys/user/max_user_namespaces"
                                        : "/proc/sys/user/max_net_namespaces",
                   "0\n"))
            ::_exit(211);
    }
    if (o.deny_user_namespaces) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 2, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
            BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            ::_exit(212);
    }
    if (o.outer_listener) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {1, &allow};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ::_exit(208);
        long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                            &prog);
        // dup2 drops close-on-exec: the listener (and so the refusal) lasts through the exec.
        if (fd < 0 || ::dup2(static_cast<int>(fd), 90) < 0) ::_exit(208);
    }
    const char* program = o.program.empty() ? butter_bin() : o.program.c_str();
    std::vector<char*> argv{const_cast<char*>(program)};
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(program, argv.data());
    ::_exit(203);
}

}  // namespace

// Staged where nobody can reach them (stage.hpp).
const char* butter_bin() {
    return reachable(BUTTER_BIN).c_str();
}
const char* probe_bin() {
    return reachable(BUTTER_PROBE).c_str();
}
const char* hostile_bin() {
    return reachable(BUTTER_HOSTILE).c_str();
}

RunResult run_butter(const std::vector<std::string>& args, const RunOptions& o) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) return {};
    (void)butter_bin();  // staged by this process, not only by the forked copy
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!o.stdout_file.empty()) {
            int f = ::open(o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (f < 0) ::_exit(204);
            ::dup2(f, 1);
        } else {
            ::dup2(out[1], 1);
        }
        ::dup2(err[1], 2);
        exec_butter(args, o);
    }
    ::close(out[1]);
    ::close(err[1]);
    RunResult r;
    struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
        if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = ::read(p[i].fd, buf, sizeof buf);
            if (n <= 0) {
                ::close(p[i].fd);
                p[i].fd = -1;
                --open_fds;
                continue;
            }
            (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        }
    }
    r.code = wait_butter(pid);
    return r;
}

Started start_butter(const std::vector<std::string>& args, const RunOptions& o) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) < 0) return {};
    (void)butter_bin();  // staged by this process, not only by the forked copy
    pid_t pid = ::fork();
    if (pid == 0) {
        int f = o.stdout_file.empty()
                    ? o.stdout_fd
                    : ::open(o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(f >= 0 ? f : out[1], 1);
        exec_butter(args, o);
    }
    ::close(out[1]);
    return {pid, out[0]};
}

std::string read_line(int fd, int ms) {
    std::string line;
    char c;
    while (true) {
        struct pollfd p {
            fd, POLLIN, 0
        };
        if (::poll(&p, 1, ms) != 1) break;
        if (::read(fd, &c, 1) != 1 || c == '\n') break;
        line += c;
    }
    return line;
}

int wait_butter(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::vector<pid_t> pids_matching(const std::string& needle) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
        std::stringstream ss;
        ss << in.rdbuf();
        std::string cmd = ss.str();
        for (auto& ch : cmd)
            if (ch == '\0') ch = ' ';
        if (cmd.find(needle) != std::string::npos) out.push_back(std::atoi(e->d_name));
    }
    if (d) ::closedir(d);
    return out;
}

std::string host_mount_table() {
    std::string all = read_file("/proc/self/mountinfo"), out;
    for (std::size_t at = 0; at < all.size();) {
        std::size_t nl = all.find('\n', at);
        std::string line = all.substr(at, nl == std::string::npos ? nl : nl - at + 1);
        if (line.find(" /var/lib/containers/") == std::string::npos &&
            line.find(" /run/containers/") == std::string::npos)
            out += line;
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    return out;
}

}  // namespace butter::test
