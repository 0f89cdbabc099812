// Processes: raw pid queries, clone3 with a pidfd, waiting and signalling through pidfds, and
// the prctl switches a sandbox needs.
#pragma once

#include <sys/resource.h>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "butter/error.hpp"
#include "butter/fd.hpp"

namespace butter {

// getpid(2), getppid(2), gettid(2) as raw system calls. glibc no longer caches getpid, but other
// libcs do, and a cache goes stale across a raw clone; these always ask the kernel. Inside a new
// pid namespace's init, getpid() is 1 and getppid() is 0.
pid_t getpid();
pid_t getppid();
pid_t gettid();

// How a process ended (or changed state), decoded from waitid's siginfo.
struct ExitStatus {
    enum class Kind { Exited, Killed, Dumped, Stopped, Continued, Trapped };
    Kind kind = Kind::Exited;
    int code = 0;  // exit code for Exited, signal number otherwise
    pid_t pid = 0;

    bool exited() const { return kind == Kind::Exited; }
    bool signaled() const { return kind == Kind::Killed || kind == Kind::Dumped; }
    // The shell's convention: the code, or 128 + signal.
    int shell_status() const { return signaled() ? 128 + code : code; }
    std::string to_string() const;  // "exited 3", "killed by SIGKILL", "dumped core (SIGSEGV)"
};

// What butter reads of a process's /proc/PID/stat: its state letter ('R', 'S', 'Z', ...), its
// parent, and its start time (clock ticks after boot: with the pid, it tells the process from a
// later one given the same pid). ENOENT: no such process (as this process's /proc sees it).
struct ProcessStat {
    char state = 0;
    pid_t ppid = 0;
    std::uint64_t start_time = 0;
};
[[nodiscard]] Result<ProcessStat> process_stat(pid_t pid);

// pidfd_open(2): a pidfd (close-on-exec by the kernel) for `pid`. ESRCH: no such process.
[[nodiscard]] Result<Fd> pidfd_open(pid_t pid, bool nonblocking = false);
// pidfd_send_signal(2). ESRCH once the process has been reaped.
[[nodiscard]] Result<void> pidfd_send_signal(BorrowedFd pidfd, int sig);
// pidfd_getfd(2): a close-on-exec duplicate of fd `target_fd` of the process. Needs ptrace
// access to it (EPERM otherwise).
[[nodiscard]] Result<Fd> pidfd_getfd(BorrowedFd pidfd, int target_fd);
// waitid(P_PIDFD, ...) with WEXITED plus `extra_options` (WNOHANG, WSTOPPED, WNOWAIT, ...).
// Blocks unless WNOHANG or the pidfd is non-blocking; then, with nothing to report, returns
// std::nullopt. EINTR is retried. ECHILD: not our child (or already reaped by someone else).
// `usage`: the resources the process and the children it waited for used (the raw syscall's
// fifth argument, which glibc's waitid() does not pass), unlike getrusage(RUSAGE_CHILDREN) for
// this one child alone.
[[nodiscard]] Result<std::optional<ExitStatus>> waitid_pidfd(BorrowedFd pidfd,
                                                             int extra_options = 0,
                                                             struct rusage* usage = nullptr);
// waitid(P_ALL/P_PID, ...) for reaping: like waitid_pidfd, for any child (pid == -1) or one pid.
[[nodiscard]] Result<std::optional<ExitStatus>> waitid_pid(pid_t pid, int extra_options = 0);

// Arguments of clone3(2) used fork-like (no new stack): the flags are CLONE_* values, for
// namespaces best built from butter::Namespaces (namespace.hpp).
struct CloneArgs {
    std::uint64_t flags = 0;  // CLONE_NEW*, CLONE_CLEAR_SIGHAND, ...
    bool want_pidfd = true;   // CLONE_PIDFD: the parent gets a pidfd
    int exit_signal = 17;     // SIGCHLD
    int cgroup_fd = -1;       // >= 0: CLONE_INTO_CGROUP this cgroup directory fd
};
// The result of clone3: in the parent `pid` > 0 and `pidfd` is valid (when asked); in the
// child `pid` is 0. Like fork(2), only the calling thread exists in the child: keep the caller
// single-threaded, and in the child call only async-signal-safe functions before exec.
struct CloneResult {
    pid_t pid = 0;
    Fd pidfd;
    bool is_child() const { return pid == 0; }
};
[[nodiscard]] Result<CloneResult> clone3(const CloneArgs& args);

// prctl(2) switches.
[[nodiscard]] Result<void> set_parent_death_signal(int sig);    // PR_SET_PDEATHSIG
[[nodiscard]] Result<void> set_no_new_privs();                  // PR_SET_NO_NEW_PRIVS (one-way)
[[nodiscard]] Result<bool> no_new_privs();                      // PR_GET_NO_NEW_PRIVS
[[nodiscard]] Result<void> set_dumpable(bool on);               // PR_SET_DUMPABLE
[[nodiscard]] Result<void> set_child_subreaper(bool on);        // PR_SET_CHILD_SUBREAPER
[[nodiscard]] Result<void> set_process_name(const char* name);  // PR_SET_NAME (15 chars)

// process_vm_readv(2) of a NUL-terminated string at `addr` in process `pid`, at most `max`
// bytes (the result is cut there). Needs ptrace access to the process (EPERM otherwise);
// EFAULT for a bad address. Reads page by page so a string near the end of a mapping works.
[[nodiscard]] Result<std::string> read_process_string(pid_t pid, std::uint64_t addr,
                                                      std::size_t max = 256);

// close_range(2) with CLOSE_RANGE_* flags: closes every fd in [first, last].
[[nodiscard]] Result<void> close_range(unsigned first, unsigned last, unsigned flags = 0);

}  // namespace butter
