// One life of the sandbox, from spawn to the exit of its first process: the failure pipe, the
// control socket (set-up timings, the command's status, the seccomp listener), the seccomp
// listener's denials (answered at a bounded rate) or the kernel log's, the stop signal and
// the grace period's SIGKILL.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>
#include <butter/process.hpp>
#include <butter/seccomp.hpp>
#include <butter/timerfd.hpp>

#include "child/child.hpp"
#include "plan/plan.hpp"
#include "spawn/spawn.hpp"
#include "supervise/events.hpp"
#include "supervise/log.hpp"
#include "supervise/supervisor.hpp"

namespace butter::launcher {

// seccomp.report: denials answered per second at most, and the pause past that.
inline constexpr double kDenialsPerSecond = 2000;

// /dev/kmsg at its end, for seccomp.report without a listener: opened before each spawn, so no
// record made between the sandbox's filter load and the supervisor's first read is skipped.
Result<Fd> open_kernel_log(const SandboxPlan& plan);

class Attempt {
  public:
    Attempt(const SandboxPlan& plan, Sandbox& sb, EventLoop& loop, Log& log,
            std::map<std::string, unsigned>& denied, RunOutcome::Learned& learned, Events& events,
            std::int64_t spawned_ns, Result<Fd> kmsg)
        : plan_(plan),
          sb_(sb),
          loop_(loop),
          log_(log),
          denied_(denied),
          learned_(learned),
          events_(events),
          last_mark_ns_(spawned_ns),
          kmsg_(std::move(kmsg)),
          exit_(loop) {}

    Result<void> start();
    // Sends the stop signal, then SIGKILL to the whole sandbox after `grace`.
    void request_stop(int sig, std::chrono::nanoseconds grace);
    // `sig` to the first process. Before the command's exec it is held and sent at the exec:
    // until then no handler of the sandbox's init is in place, and a pid namespace's init
    // drops what it has no handler for (SIGKILL goes at once).
    void forward(int sig);
    // SIGKILL to the whole sandbox.
    void kill_all();
    // SIGKILL, and its first process reaped now (blocking until it is gone): a supervisor that
    // goes away before its run ends leaves nothing behind.
    void kill_and_reap();
    bool exited() const { return exited_; }
    // Set when the first process has exited (its pidfd readable).
    AsyncEvent& exit_event() { return exit_; }
    // After the loop saw the exit: collect the pipes and the status (and the resources the
    // first process and what it reaped used, into `usage`).
    Result<RunOutcome> finish(struct rusage& usage);
    // Where the master of a terminal the sandbox made goes (session = "pty").
    void on_terminal(std::function<Result<void>(Fd)> f) { on_terminal_ = std::move(f); }
    // Where the upper directory of the workspace overlay goes (plan.changes).
    void on_changes(std::function<void(Fd)> f) { on_changes_ = std::move(f); }
    // The command's process (its first), as its CommandPid message said (with the control
    // messages queued so far read first); 0 before it.
    pid_t command_pid();
    // The notify relay's socket, made by the child (plan.notify_socket).
    void on_notify_socket(std::function<Result<void>(Fd)> f) { on_notify_socket_ = std::move(f); }
    // Called when the child is set up and waits for a pool's command (ControlMessage::Ready).
    void on_ready(std::function<void()> f) { on_ready_ = std::move(f); }

  private:
    std::function<Result<void>(Fd)> on_terminal_;
    std::function<void(Fd)> on_changes_;
    std::function<Result<void>(Fd)> on_notify_socket_;
    pid_t command_pid_ = 0;
    std::function<void()> on_ready_;
    Result<void> on_failure_pipe();
    Result<void> on_control();
    void on_notification();
    // A learning run's notification: recorded, and let run (but an argument rule's).
    void learn(const SeccompNotification& n);
    void on_kernel_log_mode(int why);
    void on_kernel_log();

    const SandboxPlan& plan_;
    Sandbox& sb_;
    EventLoop& loop_;
    Log& log_;
    std::map<std::string, unsigned>& denied_;
    RunOutcome::Learned& learned_;
    Events& events_;
    std::int64_t last_mark_ns_;
    std::vector<std::pair<std::string, std::chrono::nanoseconds>> steps_;
    void add_step(const std::string& name, std::int64_t end_ns);
    std::optional<ChildFailure> failure_;
    bool exec_done_ = false;
    void exec_seen();
    std::vector<int> held_signals_;
    bool exited_ = false;
    bool killing_ = false;
    std::optional<int> command_status_;
    std::optional<TimerFd> grace_;
    std::optional<SeccompNotifyFd> notify_;
    Result<void> watch_notifications();
    double denial_tokens_ = kDenialsPerSecond;
    std::int64_t denial_refill_ns_ = monotonic_ns();
    std::optional<TimerFd> throttle_;
    EventLoop::Registration throttle_reg_;
    std::chrono::nanoseconds
        throttled_{};  // how long the sandbox's denials waited for their answers
    // seccomp.report without a listener: /dev/kmsg, opened before the spawn (at its end).
    Result<Fd> kmsg_;
    bool kernel_log_ = false;
    std::optional<std::uint64_t> pid_ns_;
    std::optional<std::uint32_t> audit_session_;
    AsyncEvent exit_;
    EventLoop::Registration fail_reg_, ctl_reg_, exit_reg_, grace_reg_, notify_reg_, kmsg_reg_;
    std::optional<Error> error_;
};

// "setup failed: mount (bind /a -> /b): open_tree(\"/a\"): No such file or directory".
std::string render_failure(const SandboxPlan& plan, const ChildFailure& f);

}  // namespace butter::launcher
