#include "supervise/supervisor.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <deque>

#include <butter/eventfd.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/timerfd.hpp>

#include "supervise/activity.hpp"
#include "supervise/attempt.hpp"
#include "supervise/cgroup.hpp"
#include "supervise/descendants.hpp"
#include "supervise/events.hpp"
#include "supervise/log.hpp"
#include "supervise/network.hpp"
#include "supervise/notify.hpp"
#include "supervise/output.hpp"
#include "supervise/pty.hpp"
#include "supervise/report.hpp"
#include "supervise/watch.hpp"
#include "text.hpp"

namespace butter::launcher {

namespace {

// How long the command runs before the supervisor is idle (SupervisorOptions::on_idle).
constexpr std::chrono::milliseconds kIdleDelay{100};

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

nanoseconds tv(const struct timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
}

// Whether the policy restarts after this outcome.
bool wants_restart(const SandboxPlan& plan, const RunOutcome& o) {
    if (o.kind == RunOutcome::Kind::SetupFailed || o.kind == RunOutcome::Kind::ExecFailed)
        return false;
    if (plan.restart == profile::RestartPolicy::Always) return true;
    if (plan.restart == profile::RestartPolicy::OnFailure)
        return !(o.kind == RunOutcome::Kind::Exited && o.code == 0);
    return false;
}

std::string describe(const RunOutcome& o) {
    if (o.kind == RunOutcome::Kind::Signaled) return "was killed by " + signal_name(o.signal);
    return "exited " + std::to_string(o.code);
}

long long millis(nanoseconds d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

}  // namespace butter::launcher

namespace butter {

int SandboxOutcome::exit_status() const {
    if (failed_after) return 125;
    switch (kind) {
        case Kind::Exited:
            return code;
        case Kind::Signaled:
            return 128 + signal;
        case Kind::TimedOut:
            return 124;
        case Kind::SetupFailed:
            return 125;
        case Kind::ExecFailed:
            return exec_errno == ENOENT || exec_errno == ENOTDIR ? 127 : 126;
    }
    return 125;
}

}  // namespace butter

namespace butter::launcher {

SignalSet supervised_signals(const SandboxPlan& plan) {
    SignalSet s;
    for (int sig : plan.forward_signals)
        s.add(sig);
    return s;
}

struct Supervisor::State {
    State(EventLoop& l, const SandboxPlan& p, SupervisorOptions o)
        : loop(l),
          profile_plan(p),
          options(std::move(o)),
          log(options.verbosity, options.log_fd, options.log),
          events(options.events_fd, options.on_event),
          wake(l) {}

    EventLoop& loop;
    const SandboxPlan& profile_plan;
    SupervisorOptions options;
    Log log;
    Events events;
    // What the run adds to the profile's plan (the notify socket, rlimits standing in for
    // cgroups): `plan` is `extended` then, else the profile's.
    std::optional<NotifyRelay> relay;
    SandboxCgroups cgroups;
    LimitFallbacks fallbacks;
    std::optional<SandboxPlan> extended;
    const SandboxPlan* plan = nullptr;
    std::optional<Output> out, err;
    std::optional<PtyProxy> pty;  // session = "pty": one per run of the command
    std::optional<Watcher> watcher;
    std::optional<FileActivity> activity;
    std::optional<TimerFd> limit, idle;
    EventLoop::Registration limit_reg, idle_reg;
    // Readable once a stop is asked for: ends a wait that would hold the loop (Output::drain).
    std::optional<EventFd> stop_fd;

    Attempt* current = nullptr;
    pid_t sandbox_pid = 0;  // the current sandbox's first process and pid namespace
    std::optional<std::uint64_t> sandbox_pid_ns;
    bool stop_requested = false, time_up = false, restart_requested = false;
    bool spawned = false;           // the first spawn happened
    std::vector<int> held_signals;  // forwarded before it
    AsyncEvent wake;                // a stop or the time limit between runs (the restart delay)
    RunOutcome result;
    Clock::time_point start = Clock::now();
    nanoseconds user_cpu{}, system_cpu{};
    std::uint64_t max_rss = 0;

    Result<void> extend_plan();
    Result<void> open_watches();
    void stop_now();
    void on_started(const Sandbox& sb);
    Task<Result<RunOutcome>> run_once();
    Task<Result<bool>> wait_before_restart(std::deque<Clock::time_point>& restart_times);
    void finish();
};

Result<void> Supervisor::State::extend_plan() {
    // Only with something to add a copy: every page the copy fills is one more for the clone
    // to share copy-on-write.
    if (!fallbacks.rlimits.empty()) {
        extended = profile_plan;
        for (const Rlimit& r : fallbacks.rlimits)
            extended->rlimits.push_back(r);
    }
    if (relay) {
        if (!extended) extended = profile_plan;
        extended->notify_socket = NotifyRelay::kInsideSocket;  // made by the child: no host path
        extended->env.push_back(std::string("NOTIFY_SOCKET=") + NotifyRelay::kInsideSocket);
    }
    plan = extended ? &*extended : &profile_plan;
    return {};
}

void Supervisor::State::stop_now() {
    if (stop_fd) (void)stop_fd->write(1);
    if (current)
        current->request_stop(plan->stop_signal, plan->stop_timeout);
    else
        wake.set();  // between runs: nothing to stop but the wait
}

// The notify relay, [watch] and report.file_activity: on the loop from the start.
Result<void> Supervisor::State::open_watches() {
    if (relay) {
        // Only the sandbox reaches the socket by its name (its child bound it in a tmpfs of
        // the sandbox's own), but a process that may look into a sandboxed one's root
        // (/proc/PID/root: the same host uid, without a user namespace) can too: a sender must
        // be in the sandbox when its datagram is read. Gone by then, only the command's own
        // process counts (a daemon's last STOPPING=1): a sender from outside that is gone
        // cannot be told from one inside. Between two runs (supervise.restart) nothing is: the
        // last sandbox's pid and pid namespace may be another's by then (a reused pid, a new
        // namespace with the old one's inode number).
        auto from_sandbox = [this](pid_t pid) {
            if (sandbox_pid <= 0 || pid <= 0 || !current) return false;
            if (in_sandbox(pid, sandbox_pid, sandbox_pid_ns)) return true;
            return current && pid == current->command_pid() && ::kill(pid, 0) < 0 && errno == ESRCH;
        };
        relay->start(loop, from_sandbox, [this](const std::string& msg) {
            std::string one = msg;
            while (!one.empty() && one.back() == '\n')
                one.pop_back();
            log.info("notify: %s", terminal_safe(one).c_str());
        });
    }
    // [watch]: a change logs, signals the command, or restarts it (whatever the policy).
    if (!plan->watch_paths.empty()) {
        BUTTER_ASSIGN_OR_RETURN(watcher, Watcher::create(plan->watch_paths, plan->watch_debounce,
                                                         plan->watch_fanotify));
        BUTTER_TRY(watcher->start(loop, [this](const std::string& changed, unsigned n) {
            std::string shown = terminal_safe(changed);  // a name the sandbox may have chosen
            const char* path = shown.c_str();
            switch (plan->on_change.kind) {
                case profile::OnChange::Kind::Log:
                    log.warn("watch: %s changed (%u change%s)", path, n, n == 1 ? "" : "s");
                    break;
                case profile::OnChange::Kind::Signal:
                    log.info("watch: %s changed: %s", path,
                             signal_name(plan->on_change.signal).c_str());
                    if (current) current->forward(plan->on_change.signal);
                    break;
                case profile::OnChange::Kind::Restart:
                    log.warn("watch: %s changed: restarting", path);
                    if (current) {
                        restart_requested = true;
                        current->request_stop(plan->stop_signal, plan->stop_timeout);
                    }
                    break;
            }
        }));
    }
    // report.file_activity: what the sandbox writes where it reaches the host.
    if (plan->file_activity) {
        std::vector<FileActivity::Root> roots;
        for (const MountStep& m : plan->mounts)
            if (m.type == profile::MountType::Bind && !m.read_only && m.source_is_dir)
                roots.push_back({m.source, m.source_dev, m.source_ino});
        // fanotify as root: the sandbox's writes only, every directory at once.
        BUTTER_ASSIGN_OR_RETURN(activity, FileActivity::create(roots, plan->privileged));
        BUTTER_TRY(activity->start(loop));
    }
    return {};
}

Result<std::unique_ptr<Supervisor>> Supervisor::create(EventLoop& loop, const SandboxPlan& plan,
                                                       SupervisorOptions options) {
    auto st = std::make_unique<State>(loop, plan, std::move(options));
    State& s = *st;
    if (plan.notify) {
        BUTTER_ASSIGN_OR_RETURN(std::optional<NotifyRelay> relay, NotifyRelay::create());
        if (relay) s.relay.emplace(std::move(*relay));
    }
    // The cgroups, and what stands in for those that cannot be made.
    s.cgroups =
        SandboxCgroups::create(plan, {s.options.cgroup_move_self, s.options.cgroup_new_scope});
    BUTTER_ASSIGN_OR_RETURN(s.fallbacks, limit_fallbacks(plan, s.cgroups, s.log));
    BUTTER_TRY(s.extend_plan());
    s.log.attach(loop);
    s.events.attach(loop);
    BUTTER_ASSIGN_OR_RETURN(s.out, Output::open(s.plan->stdout_spec, 1, s.options.stdout_fd));
    BUTTER_ASSIGN_OR_RETURN(s.err, Output::open(s.plan->stderr_spec, 2, s.options.stderr_fd));
    BUTTER_ASSIGN_OR_RETURN(s.stop_fd, EventFd::create(0, EventFdFlag::NonBlock));
    if (s.plan->time_limit) {
        BUTTER_ASSIGN_OR_RETURN(s.limit,
                                TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
        if (!s.options.command_clock_later) BUTTER_TRY(s.limit->set_relative(*s.plan->time_limit));
        BUTTER_ASSIGN_OR_RETURN(s.limit_reg, loop.add(s.limit->fd(), IoEvent::In, [&s](IoEvents) {
            (void)s.limit->read_event();
            s.limit_reg.reset();
            if (!s.time_up) s.log.info("time limit reached");
            s.time_up = true;
            s.stop_now();
        }));
    }
    BUTTER_TRY(s.open_watches());
    if (s.options.on_idle) {
        BUTTER_ASSIGN_OR_RETURN(s.idle,
                                TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
        BUTTER_TRY(s.idle->set_relative(kIdleDelay));
        BUTTER_ASSIGN_OR_RETURN(s.idle_reg, loop.add(s.idle->fd(), IoEvent::In, [&s](IoEvents) {
            (void)s.idle->read_event();
            s.idle_reg.reset();
            s.options.on_idle();
        }));
    }
    return std::unique_ptr<Supervisor>(new Supervisor(std::move(st)));
}

Supervisor::Supervisor(std::unique_ptr<State> s) : s_(std::move(s)) {}
Supervisor::~Supervisor() = default;

void Supervisor::stop() {
    if (!s_->stop_requested) s_->log.info("SIGTERM: stopping the command");
    s_->stop_requested = true;
    s_->stop_now();
}

void Supervisor::forward(int sig) {
    if (!s_->current) {
        // Before the first spawn (a caller's signal right after start): sent once it runs.
        if (s_->result.restarts == 0 && !s_->spawned) s_->held_signals.push_back(sig);
        return;
    }
    s_->log.info("forwarding %s", signal_name(sig).c_str());
    s_->current->forward(sig);
}

void Supervisor::window_changed() {
    if (s_->pty)
        s_->pty->resize();  // the kernel signals the pty's foreground group itself
    else
        forward(SIGWINCH);
}

void Supervisor::abandon() {
    if (s_->current) s_->current->kill_and_reap();
}

Result<void> Supervisor::start_command_clock() {
    s_->start = Clock::now();
    if (s_->limit && !s_->time_up) BUTTER_TRY(s_->limit->set_relative(*s_->plan->time_limit));
    return {};
}

void Supervisor::set_command(std::vector<std::string> argv) {
    // (The caller changes its own plan, which the supervisor runs unless it extended a copy.)
    if (s_->extended) s_->extended->argv = std::move(argv);
}

pid_t Supervisor::pid() const {
    return s_->current ? s_->sandbox_pid : 0;
}

// Who is the sandbox now (fanotify's writers, the notify relay's senders), and the event.
void Supervisor::State::on_started(const Sandbox& sb) {
    log.info("sandbox started: pid %d", static_cast<int>(sb.pid));
    sandbox_pid = sb.pid;
    sandbox_pid_ns.reset();
    if (plan->namespaces.has(Namespace::Pid))
        if (auto id = namespace_id(sb.pid, Namespace::Pid)) sandbox_pid_ns = *id;
    if (activity) activity->set_sandbox(sandbox_pid_ns);
    if (watcher) watcher->set_sandbox(sandbox_pid_ns);
    if (!events.on()) return;
    std::string ids = "{";
    for (const FlagName<Namespace>& ns : flag_names(Namespace{})) {
        if (!plan->namespaces.has(ns.value)) continue;
        auto id = namespace_id(sb.pid, ns.value);
        if (!id) continue;
        ids += (ids.size() > 1 ? ", " : "") + Events::str(std::string(proc_name(ns.value))) + ": " +
               std::to_string(*id);
    }
    // What confines it, as the report's "isolation" has it.
    std::string isolation = isolation_json(*plan);
    events.emit("started", {{"pid", std::to_string(sb.pid)},
                            {"namespaces", ids + "}"},
                            {"isolation", isolation},
                            {"restart", std::to_string(result.restarts)}});
}

// One life of the command: spawn, supervise until its first process exits, collect.
Task<Result<RunOutcome>> Supervisor::State::run_once() {
    std::int64_t spawned_ns = monotonic_ns();
    Result<Fd> kmsg = open_kernel_log(*plan);
    pty.reset();
    if (plan->pty && !plan->pty_ptmx.empty()) {
        pty.emplace(PtyProxy::deferred());
    } else if (plan->pty) {
        BUTTER_CO_ASSIGN_OR_RETURN(PtyProxy p, PtyProxy::create());
        pty.emplace(std::move(p));
    }
    SpawnExtras extras{out->child_fd(),
                       err->child_fd(),
                       &cgroups,
                       pty ? pty->slave() : -1,
                       options.signal_fd,
                       limit ? limit->fd() : -1,
                       options.sigpipe_default,
                       options.default_signals,
                       options.mode,
                       {}};
    extras.command_fd = options.command_fd;
    std::unique_ptr<UserNetwork> net;
    if (plan->net.on) {
        BUTTER_CO_ASSIGN_OR_RETURN(net, UserNetwork::prepare(*plan));
        extras.before_go = [&net](pid_t pid, int pidfd) { return net->attach(pid, pidfd); };
    }
    EarlyChild early = options.early ? std::move(*options.early) : EarlyChild();
    BUTTER_CO_ASSIGN_OR_RETURN(Sandbox sb,
                               spawn(*plan, options.command_mask, extras, std::move(early)));
    if (pty) BUTTER_CO_TRY(pty->start(loop));
    if (net) BUTTER_CO_TRY(net->start(loop, events, log));
    out->after_spawn();
    err->after_spawn();
    BUTTER_CO_TRY(out->start(loop));
    BUTTER_CO_TRY(err->start(loop));
    if (options.on_started) options.on_started();
    on_started(sb);
    Attempt attempt(*plan, sb, loop, log, result.denied, result.learned, events, spawned_ns,
                    std::move(kmsg));
    if (pty) attempt.on_terminal([this](Fd master) { return pty->adopt(std::move(master)); });
    if (options.on_changes) attempt.on_changes(options.on_changes);
    if (relay) attempt.on_notify_socket([this](Fd sock) { return relay->adopt(std::move(sock)); });
    if (options.on_ready) attempt.on_ready(options.on_ready);
    BUTTER_CO_TRY(attempt.start());
    current = &attempt;
    spawned = true;
    if (stop_requested || time_up) stop_now();
    for (int sig : held_signals)
        attempt.forward(sig);
    held_signals.clear();
    BUTTER_CO_TRY(co_await attempt.exit_event().wait());
    if (relay) relay->drain();
    current = nullptr;
    const int interrupts[] = {stop_fd ? stop_fd->fd() : -1, limit ? limit->fd() : -1};
    out->drain(interrupts, stop_requested || time_up);
    err->drain(interrupts, stop_requested || time_up);
    if (pty) pty->drain();
    struct rusage usage {};
    BUTTER_CO_ASSIGN_OR_RETURN(RunOutcome o, attempt.finish(usage));
    user_cpu += tv(usage.ru_utime);
    system_cpu += tv(usage.ru_stime);
    max_rss = std::max<std::uint64_t>(max_rss, static_cast<std::uint64_t>(usage.ru_maxrss) * 1024);
    // Without a pid namespace, what the command left behind ends with it, as it would with
    // one when its init exits.
    // (Below the namespaces tier the filter keeps every process in the command's group.)
    if (!plan->namespaces.has(Namespace::Pid))
        kill_descendants(true, 200, plan->new_session ? sb.pid : 0);
    if (net) {
        net->stop();
        o.network = net->uses();
        o.network_dropped = net->dropped();
    }
    co_return o;
}

// After a run the policy restarts from: the delay (cut short by a stop or the time limit),
// or the crash-loop bound. True to restart.
Task<Result<bool>> Supervisor::State::wait_before_restart(
    std::deque<Clock::time_point>& restart_times) {
    auto now = Clock::now();
    restart_times.push_back(now);
    while (!restart_times.empty() && now - restart_times.front() > plan->restart_interval)
        restart_times.pop_front();
    if (restart_times.size() > plan->restart_burst) {
        result.stop = RunOutcome::Stop::RestartLimit;
        log.warn("the command %s; %zu restarts within %lld ms: giving up", describe(result).c_str(),
                 restart_times.size() - 1, millis(plan->restart_interval));
        co_return false;
    }
    log.warn("the command %s; restarting in %lld ms", describe(result).c_str(),
             millis(plan->restart_delay));
    BUTTER_CO_ASSIGN_OR_RETURN(TimerFd delay,
                               TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
    BUTTER_CO_TRY(delay.set_relative(plan->restart_delay));
    bool waited = false;
    BUTTER_CO_ASSIGN_OR_RETURN(auto delay_reg, loop.add(delay.fd(), IoEvent::In, [&](IoEvents) {
        waited = true;
        wake.set();
    }));
    if (!stop_requested && !time_up) BUTTER_CO_TRY(co_await wake.wait());
    wake.clear();
    co_return waited && !stop_requested && !time_up;
}

Task<Result<RunOutcome>> Supervisor::run() {
    State& s = *s_;
    std::deque<Clock::time_point> restart_times;
    for (;;) {
        BUTTER_CO_ASSIGN_OR_RETURN(RunOutcome o, co_await s.run_once());
        o.limits_held = s.fallbacks.held;
        o.denied = std::move(s.result.denied);
        o.learned = std::move(s.result.learned);
        o.denials_throttled += s.result.denials_throttled;
        o.restarts = s.result.restarts;
        // What earlier lives asked and reached stays in the report.
        o.network.insert(o.network.begin(), s.result.network.begin(), s.result.network.end());
        o.network_dropped += s.result.network_dropped;
        s.result = std::move(o);
        s.cgroups.collect(s.result);
        if (s.result.stop == RunOutcome::Stop::Oom)
            s.log.warn("the command ran out of memory (limits.memory)");
        s.log.info("command %s", describe(s.result).c_str());
        if (s.stop_requested || s.time_up) break;
        if (s.restart_requested) {
            // A change asked for it: now, without the delay or the crash-loop count.
            s.restart_requested = false;
        } else if (!wants_restart(*s.plan, s.result)) {
            break;
        } else {
            BUTTER_CO_ASSIGN_OR_RETURN(bool again, co_await s.wait_before_restart(restart_times));
            if (!again) break;
        }
        ++s.result.restarts;
        BUTTER_CO_TRY(s.out->reopen_pipe_if_tee());
        BUTTER_CO_TRY(s.err->reopen_pipe_if_tee());
    }
    s.finish();
    co_return std::move(s.result);
}

// The outcome's last fields, once the last run has ended.
void Supervisor::State::finish() {
    if (time_up) {
        result.kind = RunOutcome::Kind::TimedOut;
        result.stop = RunOutcome::Stop::TimeLimit;
        result.limits_hit.push_back("time");
    } else if (stop_requested) {
        result.stop = RunOutcome::Stop::StopRequest;
    }
    cgroups.destroy(&log);
    if (activity) {
        activity->drain();
        result.files_created = activity->created();
        result.files_modified = activity->modified();
        result.files_deleted = activity->deleted();
        result.files_backend =
            activity->backend() == FileActivity::Backend::Fanotify ? "fanotify" : "inotify";
        result.files_partial = activity->truncated();
        if (activity->truncated())
            log.warn(
                "file activity: the list is partial (a bound was reached, the queue "
                "overflowed, or a directory could not be followed safely)");
    }
    result.wall = Clock::now() - start;
    result.user_cpu = user_cpu;
    result.system_cpu = system_cpu;
    result.max_rss_bytes = max_rss;
    if (plan->stdout_spec.kind == OutputSpec::Kind::Tee) result.stdout_bytes = out->bytes();
    if (plan->stderr_spec.kind == OutputSpec::Kind::Tee) result.stderr_bytes = err->bytes();
    for (const std::optional<Output>* o : {&out, &err}) {
        if ((*o)->error() && result.output_error.empty()) {
            result.output_error = (*o)->error()->what();
            log.warn("output: %s", result.output_error.c_str());
        }
    }
    for (const std::string& l : result.limits_hit)
        events.emit("limit", {{"limit", Events::str(l)}});
    std::string denied = "{";
    for (const auto& [name, count] : result.denied)
        denied +=
            (denied.size() > 1 ? ", " : "") + Events::str(name) + ": " + std::to_string(count);
    events.emit("exit", {{"status", std::to_string(result.exit_status())},
                         {"denied", denied + "}"},
                         {"restarts", std::to_string(result.restarts)}});
}

Result<RunOutcome> run_cli_sandbox(const SandboxPlan& plan, const sigset_t& original_mask,
                                   SupervisorOptions options) {
    // Without a pid namespace, nothing the sandbox starts may escape to the host's init.
    if (!plan.namespaces.has(Namespace::Pid)) BUTTER_TRY(become_subreaper());
    BUTTER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::create());
    // SIGTERM to butter is a stop request (systemd's stop, kill(1)): the command gets the
    // profile's stop signal and the grace period. The others pass through.
    BUTTER_ASSIGN_OR_RETURN(SignalFd sfd,
                            SignalFd::create(supervised_signals(plan), SignalFdFlag::NonBlock));
    options.command_mask = original_mask;
    options.signal_fd = sfd.fd();
    BUTTER_ASSIGN_OR_RETURN(auto sup, Supervisor::create(loop, plan, std::move(options)));
    BUTTER_ASSIGN_OR_RETURN(auto sig_reg, loop.add(sfd.fd(), IoEvent::In, [&](IoEvents) {
        while (auto s = sfd.read_event()) {
            if (!*s) break;
            int sig = (*s)->signo;
            if (sig == SIGTERM)
                sup->stop();
            else if (sig == SIGWINCH)
                sup->window_changed();
            else
                sup->forward(sig);
        }
    }));
    BUTTER_ASSIGN_OR_RETURN(Result<RunOutcome> outcome, loop.run_until_complete(sup->run()));
    return outcome;
}

}  // namespace butter::launcher
