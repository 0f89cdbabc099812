// The parent's side of a run: on an EventLoop (which may serve other sandboxes too), the
// sandbox's pidfd, the failure pipe, the control socket, timerfds (time limit, stop grace
// period, restart delay), the seccomp listener, the output pipes, the notify relay, watches.
// Restarts the command as the profile's [supervise] table says, and returns a typed outcome.
// The butter program adds a signalfd (forwarding; SIGTERM = graceful stop: run_cli_sandbox);
// the library API (butter/sandbox.hpp) calls stop() and forward() itself.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <butter/error.hpp>
#include <butter/loop.hpp>
#include <butter/sandbox.hpp>
#include <butter/signalfd.hpp>
#include <butter/task.hpp>

#include "plan/plan.hpp"
#include "spawn/spawn.hpp"

namespace butter::launcher {

// How a run ended: the public type (butter/sandbox.hpp), the report's data.
using RunOutcome = butter::SandboxOutcome;

class EarlyChild;
class Supervisor;

struct SupervisorOptions {
    int verbosity = 1;  // 0 --quiet (errors only), 1 normal, 2 --verbose (one line per event)
    int log_fd = 2;     // where log lines go (-1: nowhere but `log`)
    std::function<void(std::string_view)> log;       // each log line too ("butter: ...")
    int events_fd = -1;                              // --events FD: JSON lines
    std::function<void(std::string_view)> on_event;  // each event's JSON too
    EarlyChild* early = nullptr;                     // for the first spawn, if it fits (spawn.hpp)
    // The caller's SIGPIPE disposition was the default: the command gets it back (butter
    // ignores SIGPIPE while it supervises; an ignored signal stays ignored across exec).
    bool sigpipe_default = true;
    bool default_signals = false;      // the command starts with every disposition at its default
    sigset_t command_mask{};           // the command's signal mask
    int stdout_fd = 1, stderr_fd = 2;  // the caller's streams: inherit and tee write there
    SpawnMode mode = SpawnMode::Auto;
    // The butter program's: its signalfd, which a shared-memory set-up watches for SIGTERM.
    int signal_fd = -1;
    // The butter program's start-up tuning: once per start of the command, and once when it
    // has run for a while (the supervisor then only waits).
    std::function<void()> on_started, on_idle;
    // The butter program's, for limits on cgroup v2 (supervise/cgroup.hpp's Access): it may
    // move itself into a leaf of its cgroup, and into a new systemd scope when it has none.
    bool cgroup_move_self = false;
    std::function<Result<void>()> cgroup_new_scope;
    // The upper directory of the workspace overlay (plan.changes), as each attempt's child
    // sends it: what the sandbox changed there, for the caller to export after the run.
    std::function<void(Fd)> on_changes;
    // A pool's sandbox (pool/pool.hpp): the child waits on `command_fd` for its command once
    // set up, `on_ready` is called when it does, and the time limit and the wall time count
    // from start_command_clock() (when the command is handed to it).
    int command_fd = -1;
    std::function<void()> on_ready;
    bool command_clock_later = false;
};

// One sandbox's whole life on an EventLoop that may serve others too: spawns it (again, on
// restarts, as the profile's [supervise] table says), supervises it, and returns a typed
// outcome. Only the butter program turns that into an exit status.
class Supervisor {
  public:
    // Everything that can fail before the first spawn (the notify relay, cgroups and what
    // stands in for them, outputs, timers, watches). `plan` and `loop` must outlive it.
    [[nodiscard]] static Result<std::unique_ptr<Supervisor>> create(EventLoop& loop,
                                                                    const SandboxPlan& plan,
                                                                    SupervisorOptions options);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // The run, to its end: awaited on the loop (several supervisors' at once).
    Task<Result<RunOutcome>> run();
    // A stop request (SIGTERM to butter, systemd's stop): the profile's stop signal to the
    // command, SIGKILL after the grace period; no restart after it.
    void stop();
    // `sig` to the command's first process, if one runs now.
    void forward(int sig);
    // The caller's terminal changed size (SIGWINCH): the pty takes the new size in pty mode,
    // else the command gets the signal.
    void window_changed();
    // The command was handed to a pool's sandbox: its time limit and wall time count from now.
    [[nodiscard]] Result<void> start_command_clock();
    // ... and this is its argv (what failures and the report name; the plan's was a stand-in):
    // the caller sets it in the plan it gave create() too.
    void set_command(std::vector<std::string> argv);
    // The sandbox's first process now (0 between runs).
    pid_t pid() const;
    // SIGKILL to the sandbox, reaped at once: before a supervisor goes away mid-run.
    void abandon();

  private:
    struct State;
    explicit Supervisor(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

// The butter program's run: blocks the plan's forwarded signals (a signalfd forwards them;
// SIGTERM is a stop request), supervises on a loop of its own, and returns the outcome.
// `original_mask` is the caller's mask from before it blocked them: the command gets it back.
[[nodiscard]] Result<RunOutcome> run_cli_sandbox(const SandboxPlan& plan,
                                                 const sigset_t& original_mask,
                                                 SupervisorOptions options);

// The signals run_cli_sandbox takes over: the plan's forwarded ones.
SignalSet supervised_signals(const SandboxPlan& plan);

}  // namespace butter::launcher
