// The parent's side of a run: one EventLoop over the sandbox's pidfd, the failure pipe, the
// control socket, a signalfd (forwarding), a timerfd (time limit, then the stop grace period)
// and the seccomp listener (denials named in the log). Returns a typed outcome; only main.cpp
// turns it into an exit status.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <butter/error.hpp>
#include <butter/process.hpp>
#include <butter/signalfd.hpp>

#include "plan.hpp"
#include "spawn.hpp"

namespace butter::launcher {

struct RunOutcome {
    enum class Kind { Exited, Signaled, TimedOut, SetupFailed, ExecFailed };
    Kind kind = Kind::Exited;
    int code = 0;         // Exited: the exit code
    int signal = 0;       // Signaled: the signal
    int exec_errno = 0;   // ExecFailed
    std::string message;  // SetupFailed / ExecFailed: one line naming the step, path and errno
    std::chrono::nanoseconds wall{};
    std::map<std::string, unsigned> denied;  // syscall name -> count (seccomp.report)

    // DESIGN.md's exit codes: the command's own, 128+N, 124, 125, 126, 127.
    int exit_status() const;
};

// Runs the loop until the sandbox's first process is gone. Forwarded signals must already be
// blocked by the caller (before spawn, so none is lost in between).
[[nodiscard]] Result<RunOutcome> supervise(const SandboxPlan& plan, Sandbox& sandbox);

// The signals supervise() takes over: the plan's forwarded ones.
SignalSet supervised_signals(const SandboxPlan& plan);

}  // namespace butter::launcher
