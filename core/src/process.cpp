#include "butter/process.hpp"

#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "butter/signalfd.hpp"
#include "sys.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace butter {

pid_t getpid() {
    return sys::getpid();
}
pid_t getppid() {
    return sys::getppid();
}
pid_t gettid() {
    return sys::gettid();
}

namespace {

ExitStatus decode(const siginfo_t& info) {
    ExitStatus s;
    s.pid = info.si_pid;
    s.code = info.si_status;
    switch (info.si_code) {
        case CLD_EXITED:
            s.kind = ExitStatus::Kind::Exited;
            break;
        case CLD_KILLED:
            s.kind = ExitStatus::Kind::Killed;
            break;
        case CLD_DUMPED:
            s.kind = ExitStatus::Kind::Dumped;
            break;
        case CLD_STOPPED:
            s.kind = ExitStatus::Kind::Stopped;
            break;
        case CLD_CONTINUED:
            s.kind = ExitStatus::Kind::Continued;
            break;
        default:
            s.kind = ExitStatus::Kind::Trapped;
            break;
    }
    return s;
}

Result<std::optional<ExitStatus>> do_waitid(idtype_t type, id_t id, int options, const char* call,
                                            struct rusage* usage = nullptr) {
    siginfo_t info{};
    int r = sys::retry_eintr([&] {
        return usage ? static_cast<int>(::syscall(SYS_waitid, type, id, &info, options, usage))
                     : ::waitid(type, id, &info, options);
    });
    if (r < 0) {
        // A non-blocking pidfd reports "not exited yet" as EAGAIN, as WNOHANG does with 0.
        if (errno == EAGAIN && type == static_cast<idtype_t>(P_PIDFD))
            return std::optional<ExitStatus>();
        return fail_errno(call);
    }
    if (info.si_pid == 0) return std::optional<ExitStatus>();  // WNOHANG, nothing yet
    return std::optional<ExitStatus>(decode(info));
}

}  // namespace

std::string ExitStatus::to_string() const {
    switch (kind) {
        case Kind::Exited:
            return "exited " + std::to_string(code);
        case Kind::Killed:
            return "killed by " + signal_name(code);
        case Kind::Dumped:
            return "dumped core (" + signal_name(code) + ")";
        case Kind::Stopped:
            return "stopped by " + signal_name(code);
        case Kind::Continued:
            return "continued";
        case Kind::Trapped:
            return "trapped (" + signal_name(code) + ")";
    }
    return "unknown";
}

Result<ProcessStat> process_stat(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    BUTTER_ASSIGN_OR_RETURN(std::string text, read_file(path.c_str()));
    // "PID (COMM) S PPID ... START(22nd) ...": COMM may hold anything, so from the last ')'.
    std::size_t paren = text.rfind(')');
    if (paren == std::string::npos || paren + 4 > text.size())
        return fail(Error::message("read", "not a stat line", path));
    ProcessStat out;
    const char* p = text.c_str() + paren + 2;
    out.state = *p;
    for (int field = 3; field < 22 && p; ++field) {
        p = std::strchr(p, ' ');
        if (p) ++p;
        if (field == 3 && p) out.ppid = static_cast<pid_t>(std::atoi(p));
    }
    if (!p) return fail(Error::message("read", "not a stat line", path));
    out.start_time = std::strtoull(p, nullptr, 10);
    return out;
}

Result<Fd> pidfd_open(pid_t pid, bool nonblocking) {
    int fd = sys::pidfd_open(pid, nonblocking ? O_NONBLOCK : 0);
    if (fd < 0) return fail(Error("pidfd_open", -fd, std::to_string(pid)));
    return Fd(fd);
}

Result<void> pidfd_send_signal(BorrowedFd pidfd, int sig) {
    int r = sys::pidfd_send_signal(pidfd.get(), sig, nullptr, 0);
    if (r < 0) return fail(Error("pidfd_send_signal", -r, signal_name(sig)));
    return {};
}

Result<Fd> pidfd_getfd(BorrowedFd pidfd, int target_fd) {
    int fd = sys::pidfd_getfd(pidfd.get(), target_fd, 0);
    if (fd < 0) return fail(Error("pidfd_getfd", -fd, "fd " + std::to_string(target_fd)));
    return Fd(fd);
}

Result<std::optional<ExitStatus>> waitid_pidfd(BorrowedFd pidfd, int extra_options,
                                               struct rusage* usage) {
    return do_waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()),
                     WEXITED | extra_options, "waitid(P_PIDFD)", usage);
}

Result<std::optional<ExitStatus>> waitid_pid(pid_t pid, int extra_options) {
    if (pid < 0) return do_waitid(P_ALL, 0, WEXITED | extra_options, "waitid(P_ALL)");
    return do_waitid(P_PID, static_cast<id_t>(pid), WEXITED | extra_options, "waitid(P_PID)");
}

Result<CloneResult> clone3(const CloneArgs& args) {
    int pidfd = -1;
    struct clone_args ca {};
    ca.flags = args.flags | (args.want_pidfd ? CLONE_PIDFD : 0) |
               (args.cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    ca.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    ca.exit_signal = static_cast<std::uint64_t>(args.exit_signal);
    if (args.cgroup_fd >= 0) ca.cgroup = static_cast<std::uint64_t>(args.cgroup_fd);
    // clone3 can be missing: kernels before 5.3, and sandboxes and tools whose filters answer
    // ENOSYS for it so that libc falls back to clone (Docker's default profile, valgrind). Then
    // clone(2) does the same when the flags fit its 32 bits and do not collide with the exit
    // signal's byte (CLONE_NEWTIME does), and no cgroup is asked for.
    static std::atomic<bool> no_clone3{false};
    long r = -ENOSYS;
    if (!no_clone3.load(std::memory_order_relaxed)) {
        r = sys::clone3(&ca, sizeof ca);
        if (r == -ENOSYS) no_clone3.store(true, std::memory_order_relaxed);
    }
    if (r == -ENOSYS) {
        std::uint64_t flags = ca.flags & ~static_cast<std::uint64_t>(CLONE_PIDFD);
        if (flags > 0xffffffffU || (flags & CSIGNAL) != 0 || args.exit_signal < 0 ||
            args.exit_signal > static_cast<int>(CSIGNAL))
            return fail(Error("clone3", ENOSYS,
                              "and clone(2) cannot carry these flags (CLONE_NEWTIME or "
                              "CLONE_INTO_CGROUP need clone3)"));
        r = sys::clone(ca.flags | static_cast<std::uint64_t>(args.exit_signal),
                       args.want_pidfd ? &pidfd : nullptr);
        if (r < 0) return fail(Error("clone", static_cast<int>(-r)));
    }
    if (r < 0) return fail(Error("clone3", static_cast<int>(-r)));
    CloneResult out;
    out.pid = static_cast<pid_t>(r);
    if (r > 0 && args.want_pidfd) out.pidfd = Fd(pidfd);
    return out;
}

Result<void> set_parent_death_signal(int sig) {
    if (::prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) < 0) return fail_errno("prctl(PR_SET_PDEATHSIG)");
    return {};
}

Result<void> set_no_new_privs() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    return {};
}

Result<bool> no_new_privs() {
    int r = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (r < 0) return fail_errno("prctl(PR_GET_NO_NEW_PRIVS)");
    return r == 1;
}

Result<void> set_dumpable(bool on) {
    if (::prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_SET_DUMPABLE)");
    return {};
}

Result<void> set_child_subreaper(bool on) {
    if (::prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_SET_CHILD_SUBREAPER)");
    return {};
}

Result<void> set_process_name(const char* name) {
    if (::prctl(PR_SET_NAME, name, 0, 0, 0) < 0) return fail_errno("prctl(PR_SET_NAME)", name);
    return {};
}

Result<std::string> read_process_string(pid_t pid, std::uint64_t addr, std::size_t max) {
    std::string out;
    constexpr std::uint64_t kPage = 4096;
    while (out.size() < max) {
        // Never cross a page boundary in one read: the next page may be unmapped.
        std::size_t chunk = static_cast<std::size_t>(kPage - (addr % kPage));
        chunk = std::min(chunk, max - out.size());
        char buf[4096];
        struct iovec local {
            buf, chunk
        };
        struct iovec remote {
            reinterpret_cast<void*>(addr), chunk
        };
        ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n <= 0) {
            if (!out.empty()) return out;
            return fail_errno("process_vm_readv", std::to_string(pid));
        }
        std::size_t len = ::strnlen(buf, static_cast<std::size_t>(n));
        out.append(buf, len);
        if (len < static_cast<std::size_t>(n)) return out;
        addr += static_cast<std::uint64_t>(n);
    }
    return out;
}

Result<void> close_range(unsigned first, unsigned last, unsigned flags) {
    int r = sys::close_range(first, last, flags);
    if (r < 0) return fail(Error("close_range", -r));
    return {};
}

}  // namespace butter
