// The parent's side of a run: one EventLoop over the sandbox's pidfd, the failure pipe, the
// control socket, a signalfd (forwarding; SIGTERM = graceful stop), timerfds (time limit,
// stop grace period, restart delay), the seccomp listener and the output pipes. Restarts the
// command as the profile's [supervise] table says. Returns a typed outcome; only main.cpp turns
// it into an exit status.
#pragma once

#include <signal.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/signalfd.hpp>

#include "plan/plan.hpp"

namespace butter::launcher {

struct RunOutcome {
    enum class Kind { Exited, Signaled, TimedOut, SetupFailed, ExecFailed };
    // Why butter ended the command, if it did.
    enum class Stop { None, TimeLimit, StopRequest, Oom, RestartLimit };
    Kind kind = Kind::Exited;
    Stop stop = Stop::None;
    int code = 0;         // Exited: the exit code
    int signal = 0;       // Signaled: the signal
    int exec_errno = 0;   // ExecFailed
    std::string message;  // SetupFailed / ExecFailed: one line naming the step, path and errno

    std::chrono::nanoseconds wall{}, user_cpu{}, system_cpu{};
    std::uint64_t max_rss_bytes = 0;
    std::optional<std::uint64_t> peak_memory, peak_pids;  // from the cgroup, when there is one
    std::vector<std::string> limits_hit;                  // "time", "memory", "pids"
    // The cgroup limits and how each held: "cgroup v1 memory.limit_in_bytes", an rlimit that
    // stood in for a cgroup that could not be made, or "none" (limits.optional).
    struct LimitHeld {
        std::string limit;  // "memory", "pids", "cpus"
        std::string how;
    };
    std::vector<LimitHeld> limits_held;
    unsigned restarts = 0;
    std::map<std::string, unsigned> denied;  // syscall name -> count (seccomp.report)
    // How long the sandbox's denied calls waited because butter answers a bounded number a
    // second (its CPU is outside the sandbox's cgroup).
    std::chrono::nanoseconds denials_throttled{};
    std::vector<std::pair<std::string, std::chrono::nanoseconds>> setup_steps;
    std::vector<std::string> files_created, files_modified, files_deleted;
    std::string files_backend;   // "fanotify" or "inotify" ("" if the run never got that far)
    bool files_partial = false;  // the lists were cut at a bound, or missed what was not followed
    std::optional<std::uint64_t> stdout_bytes, stderr_bytes;  // tee mode: bytes moved
    std::string output_error;

    // DESIGN.md's exit codes: the command's own, 128+N, 124, 125, 126, 127.
    int exit_status() const;
};

class EarlyChild;

struct SupervisorOptions {
    int verbosity = 1;   // 0 --quiet (errors only), 1 normal, 2 --verbose (one line per event)
    int events_fd = -1;  // --events FD: JSON lines
    EarlyChild* early = nullptr;  // for the first spawn, if it fits (spawn.hpp)
    // The caller's SIGPIPE disposition was the default: the command gets it back (butter
    // ignores SIGPIPE while it supervises; an ignored signal stays ignored across exec).
    bool sigpipe_default = true;
};

// Spawns the sandbox (again, on restarts) and supervises it to the end. The forwarded signals
// must already be blocked by the caller (so none is lost before the signalfd exists);
// `original_mask` is the mask to give the command.
[[nodiscard]] Result<RunOutcome> run_sandbox(const SandboxPlan& plan, const sigset_t& original_mask,
                                             const SupervisorOptions& options);

// The signals run_sandbox takes over: the plan's forwarded ones.
SignalSet supervised_signals(const SandboxPlan& plan);

}  // namespace butter::launcher
