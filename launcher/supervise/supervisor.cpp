#include "supervise/supervisor.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>

#include <butter/loop.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/seccomp.hpp>
#include <butter/timerfd.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "plan/host_path.hpp"
#include "seccomp/describe.hpp"
#include "seccomp/kernel_log.hpp"
#include "spawn/spawn.hpp"
#include "supervise/activity.hpp"
#include "supervise/cgroup.hpp"
#include "supervise/descendants.hpp"
#include "supervise/events.hpp"
#include "supervise/notify.hpp"
#include "supervise/output.hpp"
#include "supervise/pty.hpp"
#include "supervise/sink.hpp"
#include "supervise/watch.hpp"
#include "text.hpp"

namespace butter::launcher {

namespace {

// How long the command runs before the supervisor trims its own memory (release_program_text).
constexpr std::chrono::milliseconds kIdleTrimDelay{100};

using Clock = std::chrono::steady_clock;

// --events: "denied" lines per syscall name at most (the rest are counted).
constexpr unsigned kDeniedEventsPerSyscall = 100;
// seccomp.report: denials answered per second at most, and the pause past that.
constexpr double kDenialsPerSecond = 2000;
constexpr std::chrono::milliseconds kDenialPause{50};
using std::chrono::nanoseconds;

// One line per event on stderr: errors always, the rest by verbosity.
class Log {
  public:
    explicit Log(int verbosity) : verbosity_(verbosity) {
        // stderr without blocking (sink.hpp): a terminal that stops reading loses log lines,
        // never stalls the supervisor. Where it cannot be had, plain writes.
        if (auto s = Sink::open(2, kBacklog)) err_ = std::move(*s);
    }
    ~Log() {
        if (!err_.valid()) return;
        (void)err_.flush_for(200);
        if (dropped_ > 0) {
            std::string l = "butter: " + std::to_string(dropped_) +
                            " log lines dropped (stderr was not read)\n";
            (void)err_.write(l);
            (void)err_.flush_for(200);
        }
    }
    void attach(EventLoop& loop) {
        if (err_.valid()) (void)err_.attach(loop);
    }
    void warn(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        if (verbosity_ < 1) return;
        va_list ap;
        va_start(ap, fmt);
        line(fmt, ap);
        va_end(ap);
    }
    void info(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        if (verbosity_ < 2) return;
        va_list ap;
        va_start(ap, fmt);
        line(fmt, ap);
        va_end(ap);
    }

  private:
    static constexpr std::size_t kBacklog = 64 * 1024;
    void line(const char* fmt, va_list ap) {
        char buf[1024];
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        std::string l = std::string("butter: ") + buf + "\n";
        if (!err_.valid()) {
            std::fputs(l.c_str(), stderr);
            return;
        }
        if (!err_.write(l)) ++dropped_;
    }
    int verbosity_;
    Sink err_;
    std::size_t dropped_ = 0;
};

// What each StepClock mark closes, for the report and the events.
const char* step_label(Step s) {
    switch (s) {
        case Step::IdMaps:
            return "clone and id maps";
        case Step::Mount:
            return "mounts and pivot_root";
        case Step::Hostname:
            return "hostname, network, limits, cwd";
        case Step::Init:
            return "init";
        case Step::Capabilities:
            return "ids, capabilities, fds";
        default:
            return step_name(s);
    }
}

// /dev/kmsg at its end, for seccomp.report without a listener: opened before each spawn, so no
// record made between the sandbox's filter load and the supervisor's first read is skipped.
Result<Fd> open_kernel_log(const SandboxPlan& plan) {
    if (!plan.seccomp_listener || plan.seccomp_base.empty())
        return fail(Error("open", EBADF, "/dev/kmsg (not needed)"));
    BUTTER_ASSIGN_OR_RETURN(Fd fd, open("/dev/kmsg", O_RDONLY | O_NONBLOCK));
    if (::lseek(fd.get(), 0, SEEK_END) < 0) return fail_errno("lseek", "/dev/kmsg");
    return fd;
}

std::string render_failure(const SandboxPlan& plan, const ChildFailure& f) {
    std::string s = "setup failed: ";
    s += step_name(static_cast<Step>(f.step));
    if (f.mount >= 0 && static_cast<std::size_t>(f.mount) < plan.mounts.size()) {
        const MountStep& m = plan.mounts[static_cast<std::size_t>(f.mount)];
        s += std::string(" (") + profile::to_string(m.type) + " ";
        if (!m.source.empty()) s += m.source + " -> ";
        s += m.target + ")";
    }
    // As Error::what() renders it, from the record's own buffers (an Error's call must be a
    // string that outlives it; the record's does not).
    auto field = [](const char* b, std::size_t n) { return std::string(b, ::strnlen(b, n)); };
    std::string context = field(f.context, sizeof f.context);
    std::string text = field(f.text, sizeof f.text);
    std::string hint = field(f.hint, sizeof f.hint);
    s += ": " + field(f.call, sizeof f.call);
    if (!context.empty()) s += "(\"" + context + "\")";
    s += ": ";
    s += text.empty() ? std::string(strerrordesc_np(f.error) ? strerrordesc_np(f.error) : "?")
                      : text;
    if (!hint.empty()) s += " \u2014 hint: " + hint;
    return s;
}

// One life of the sandbox: from spawn to the exit of its first process.
class Attempt {
  public:
    Attempt(const SandboxPlan& plan, Sandbox& sb, EventLoop& loop, Log& log,
            std::map<std::string, unsigned>& denied, Events& events, std::int64_t spawned_ns,
            Result<Fd> kmsg)
        : plan_(plan),
          sb_(sb),
          loop_(loop),
          log_(log),
          denied_(denied),
          events_(events),
          last_mark_ns_(spawned_ns),
          kmsg_(std::move(kmsg)) {}

    Result<void> start();
    // Sends the stop signal, then SIGKILL to the whole sandbox after `grace`.
    void request_stop(int sig, nanoseconds grace);
    void forward(int sig) { (void)pidfd_send_signal(sb_.pidfd, sig); }
    // SIGKILL to the whole sandbox.
    void kill_all();
    bool exited() const { return exited_; }
    // After the loop saw the exit: collect the pipes and the status.
    Result<RunOutcome> finish();

  private:
    Result<void> on_failure_pipe();
    Result<void> on_control();
    void on_notification();
    void on_kernel_log_mode(int why);
    void on_kernel_log();

    const SandboxPlan& plan_;
    Sandbox& sb_;
    EventLoop& loop_;
    Log& log_;
    std::map<std::string, unsigned>& denied_;
    Events& events_;
    std::int64_t last_mark_ns_;
    std::vector<std::pair<std::string, nanoseconds>> steps_;
    void add_step(const std::string& name, std::int64_t end_ns);
    std::optional<ChildFailure> failure_;
    bool exec_done_ = false;
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
    nanoseconds throttled_{};  // how long the sandbox's denials waited for their answers
    // seccomp.report without a listener: /dev/kmsg, opened before the spawn (at its end).
    Result<Fd> kmsg_;
    bool kernel_log_ = false;
    std::optional<std::uint64_t> pid_ns_;
    std::optional<std::uint32_t> audit_session_;
    EventLoop::Registration fail_reg_, ctl_reg_, exit_reg_, grace_reg_, notify_reg_, kmsg_reg_;
    std::optional<Error> error_;
};

Result<void> Attempt::on_failure_pipe() {
    ChildFailure f;
    ssize_t n = ::read(sb_.failure.get(), &f, sizeof f);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return {};
        return fail_errno("read", "failure pipe");
    }
    if (n == static_cast<ssize_t>(sizeof f)) {
        failure_ = f;
    } else {
        exec_done_ = true;  // EOF: every copy closed at exec
        if (plan_.record_steps) add_step("seccomp and exec", monotonic_ns());
        events_.emit("exec");
    }
    return {};
}

Result<void> Attempt::on_control() {
    for (;;) {
        auto msg = recv_fds(sb_.control, 1, sizeof(ControlMessage) + sizeof(StepClock::marks));
        if (!msg) {
            if (msg.error().errno_value() == EAGAIN) return {};
            return fail(std::move(msg).error());
        }
        if (msg->data.size() < sizeof(ControlMessage)) return {};  // EOF
        ControlMessage m;
        std::memcpy(&m, msg->data.data(), sizeof m);
        if (m.type == ControlMessage::CommandStatus) {
            command_status_ = m.value;
        } else if (m.type == ControlMessage::Timings) {
            std::size_t n =
                std::min<std::size_t>(static_cast<std::size_t>(m.value), StepClock::kMax);
            if (msg->data.size() < sizeof m + n * sizeof(StepClock::Mark)) continue;
            for (std::size_t i = 0; i < n; ++i) {
                StepClock::Mark mark;
                std::memcpy(&mark, msg->data.data() + sizeof m + i * sizeof mark, sizeof mark);
                add_step(step_label(static_cast<Step>(mark.step)), mark.ns);
            }
        } else if (m.type == ControlMessage::AuditSession) {
            audit_session_ = static_cast<std::uint32_t>(m.value);
        } else if (m.type == ControlMessage::KernelLog && !kernel_log_) {
            on_kernel_log_mode(m.value);
        } else if (m.type == ControlMessage::Listener && !msg->fds.empty() && !notify_) {
            notify_.emplace(std::move(msg->fds[0]));
            BUTTER_TRY(set_nonblocking(notify_->fd(), true));
            BUTTER_TRY(watch_notifications());
        }
    }
}

Result<void> Attempt::watch_notifications() {
    BUTTER_ASSIGN_OR_RETURN(notify_reg_, loop_.add(notify_->fd(), IoEvent::In,
                                                   [this](IoEvents) { on_notification(); }));
    return {};
}

void Attempt::on_notification() {
    // Each denial costs the supervisor (outside the sandbox's cgroup) a read and an answer:
    // past kDenialsPerSecond it stops reading for a while, and the sandbox's denied calls
    // wait for their answer meanwhile (nothing runs on either side).
    std::int64_t now = monotonic_ns();
    denial_tokens_ = std::min<double>(
        kDenialsPerSecond,
        denial_tokens_ + static_cast<double>(now - denial_refill_ns_) * kDenialsPerSecond / 1e9);
    denial_refill_ns_ = now;
    if (denial_tokens_ < 1) {
        notify_reg_.reset();
        auto t = TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock);
        if (t && t->set_relative(kDenialPause)) {
            throttle_.emplace(std::move(*t));
            auto reg = loop_.add(throttle_->fd(), IoEvent::In, [this](IoEvents) {
                throttle_reg_.reset();
                throttled_ += kDenialPause;
                (void)watch_notifications();
            });
            if (reg) {
                throttle_reg_ = std::move(*reg);
                return;
            }
        }
        (void)watch_notifications();  // no timer: go on unthrottled rather than stall
    }
    auto all = notify_->read_events();
    if (!all) return;
    denial_tokens_ -= static_cast<double>(all->size());
    for (const SeccompNotification& n : *all) {
        std::string name = n.syscall_name();
        // The first of each syscall is described (reading its strings takes a few syscalls
        // while the caller waits); every one is answered at once otherwise.
        bool first = denied_[name]++ == 0;
        // One event per denial up to a bound per syscall: their volume is the sandbox's
        // choice (the report and the exit event hold the counts).
        if (denied_[name] <= kDeniedEventsPerSyscall)
            events_.emit("denied",
                         {{"syscall", Events::str(name)}, {"pid", std::to_string(n.pid)}});
        std::string line = first ? seccomp::describe_call(n, *notify_) : std::string();
        (void)notify_->respond_errno(n.id, plan_.seccomp_errno);
        if (first)
            log_.warn("denied: %s = %s", line.c_str(), errno_name(plan_.seccomp_errno).c_str());
    }
}

void Attempt::on_kernel_log_mode(int why) {
    kernel_log_ = true;
    std::string reason = why == EBUSY ? "EBUSY: an outer filter holds the one listener"
                                      : errno_name(why) + ": the kernel lacks it";
    if (!kmsg_) {
        log_.warn(
            "seccomp.report: no user notification here (%s), and the kernel log cannot be "
            "read (%s): denials are not reported",
            reason.c_str(), kmsg_.error().what().c_str());
        return;
    }
    log_.info(
        "seccomp.report: no user notification here (%s): denials come from the kernel "
        "log, without their arguments",
        reason.c_str());
    if (plan_.namespaces.has(Namespace::Pid))
        if (auto id = namespace_id(sb_.pid, Namespace::Pid)) pid_ns_ = *id;
    auto reg = loop_.add(*kmsg_, IoEvent::In, [this](IoEvents) { on_kernel_log(); });
    if (!reg) {
        log_.warn("seccomp.report: %s", reg.error().what().c_str());
        return;
    }
    kmsg_reg_ = std::move(*reg);
    on_kernel_log();
}

void Attempt::on_kernel_log() {
    if (!kernel_log_ || !kmsg_ || !kmsg_reg_.active()) return;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(kmsg_->get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EPIPE) continue;  // EPIPE: records overwritten
            if (errno != EAGAIN) {
                log_.warn("seccomp.report: read /dev/kmsg: %s", std::strerror(errno));
                kmsg_reg_.reset();
            }
            return;
        }
        if (n == 0) return;
        auto d = seccomp::parse_audit_record(std::string_view(buf, static_cast<std::size_t>(n)));
        if (!d || d->action != SECCOMP_RET_ERRNO) continue;
        // The sandbox's own audit session when it could take one (exact, even for a process
        // gone by now), else the pid while it still runs.
        if (audit_session_ ? d->session != audit_session_ : !in_sandbox(d->pid, sb_.pid, pid_ns_))
            continue;
        std::string name = syscall_name(d->syscall_nr, d->arch);
        bool first = denied_[name]++ == 0;
        if (denied_[name] <= kDeniedEventsPerSyscall)
            events_.emit("denied",
                         {{"syscall", Events::str(name)}, {"pid", std::to_string(d->pid)}});
        if (first)
            log_.warn("denied: %s = %s (from the kernel log: no arguments)", name.c_str(),
                      errno_name(plan_.seccomp_errno).c_str());
    }
}

Result<void> Attempt::start() {
    BUTTER_TRY(set_nonblocking(sb_.failure.get(), true));
    BUTTER_TRY(set_nonblocking(sb_.control.get(), true));
    if (sb_.waited) {
        // spawn saw the set-up end (the pipe is at EOF): the child's timings first, so that
        // each step's time is measured from the one before.
        BUTTER_TRY(on_control());
        if (sb_.failure_record) {
            failure_ = *sb_.failure_record;
        } else {
            exec_done_ = true;
            if (plan_.record_steps) add_step("seccomp and exec", sb_.setup_end_ns);
            events_.emit("exec");
        }
    } else {
        // Both fds stay readable at EOF: stop watching them then, or the loop spins.
        BUTTER_ASSIGN_OR_RETURN(fail_reg_, loop_.add(sb_.failure, IoEvent::In, [this](IoEvents) {
            if (auto r = on_failure_pipe(); !r) error_ = r.error();
            if (failure_ || exec_done_ || error_) fail_reg_.reset();
        }));
    }
    BUTTER_ASSIGN_OR_RETURN(ctl_reg_, loop_.add(sb_.control, IoEvent::In, [this](IoEvents ev) {
        if (auto r = on_control(); !r) error_ = r.error();
        if (ev.any(IoEvent::Hup) || error_) ctl_reg_.reset();
    }));
    BUTTER_ASSIGN_OR_RETURN(exit_reg_, loop_.add(sb_.pidfd, IoEvent::In, [this](IoEvents) {
        exited_ = true;
        exit_reg_.reset();
        loop_.stop();
    }));
    return {};
}

void Attempt::kill_all() {
    forward(SIGKILL);  // PID 1's death takes the whole pid namespace with it
    // Without one, every descendant (the first process is reaped by its pidfd, in finish()).
    if (!plan_.namespaces.has(Namespace::Pid)) kill_descendants(false);
}

void Attempt::request_stop(int sig, nanoseconds grace) {
    if (grace_) return;
    forward(sig);
    auto t = TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock);
    if (!t || !t->set_relative(grace)) {
        kill_all();
        return;
    }
    grace_.emplace(std::move(*t));
    auto reg = loop_.add(grace_->fd(), IoEvent::In, [this](IoEvents) {
        (void)grace_->read_event();
        if (killing_) return;
        killing_ = true;
        log_.info("grace period over: SIGKILL");
        kill_all();
    });
    if (reg) grace_reg_ = std::move(*reg);
}

Result<RunOutcome> Attempt::finish() {
    // The first process is gone: collect what it left in the pipes, then its status.
    while (!failure_ && !exec_done_) {
        if (auto r = on_failure_pipe(); !r || (!failure_ && !exec_done_)) break;
    }
    BUTTER_TRY(on_control());
    on_kernel_log();
    BUTTER_ASSIGN_OR_RETURN(auto st, waitid_pidfd(sb_.pidfd));
    if (error_) return fail(std::move(*error_));

    RunOutcome out;
    out.setup_steps = std::move(steps_);
    out.denials_throttled = throttled_;
    if (failure_) {
        if (static_cast<Step>(failure_->step) == Step::Exec) {
            out.kind = RunOutcome::Kind::ExecFailed;
            out.exec_errno = failure_->error;
            out.message =
                std::string(plan_.argv.empty() ? "" : plan_.argv[0]) + ": " +
                (failure_->error == ENOENT ? "command not found" : std::strerror(failure_->error));
        } else {
            out.kind = RunOutcome::Kind::SetupFailed;
            out.message = render_failure(plan_, *failure_);
        }
        return out;
    }
    // The command's own wait status from PID 1, else PID 1's (it is the command without a
    // pid namespace, or it was killed).
    int status = command_status_.value_or(0);
    if (!command_status_ && st) status = st->signaled() ? st->code : (st->code & 0xff) << 8;
    if (WIFSIGNALED(status)) {
        out.kind = RunOutcome::Kind::Signaled;
        out.signal = WTERMSIG(status);
    } else {
        out.kind = RunOutcome::Kind::Exited;
        out.code = WEXITSTATUS(status);
    }
    return out;
}

void Attempt::add_step(const std::string& name, std::int64_t end_ns) {
    nanoseconds d(end_ns - last_mark_ns_);
    last_mark_ns_ = end_ns;
    steps_.emplace_back(name, d);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.6f", static_cast<double>(d.count()) / 1e9);
    events_.emit("setup", {{"step", Events::str(name)}, {"seconds", secs}});
}

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

// A limit whose cgroup cannot be made never vanishes silently: pids and memory fall back to
// rlimits that hold in the sandbox (RLIMIT_NPROC counts only the sandbox's processes in its
// own user namespace; RLIMIT_AS bounds each process's address space, shared and file mappings
// included, but neither the total nor memory that no mapping holds: memfd contents, pipes),
// and a limit nothing can hold fails the run unless the profile says limits.optional.
struct LimitFallbacks {
    std::vector<Rlimit> rlimits;
    std::vector<RunOutcome::LimitHeld> held;  // every limit of the plan, and how it holds
};

Result<LimitFallbacks> limit_fallbacks(const SandboxPlan& plan, const SandboxCgroups& cgroups,
                                       Log& log) {
    LimitFallbacks out;
    // Lowered to butter's own hard limit: an rlimit can only go down.
    auto rlimit = [&](int resource, rlim_t value) {
        struct rlimit cur {};
        if (::getrlimit(static_cast<__rlimit_resource>(resource), &cur) == 0 &&
            cur.rlim_max != RLIM_INFINITY)
            value = std::min(value, cur.rlim_max);
        out.rlimits.push_back({resource, value});
    };
    for (auto& [key, how] : cgroups.enforcement())
        out.held.push_back({key, how});
    for (const SandboxCgroups::Missing& m : cgroups.missing()) {
        std::string controller = m.controller;
        std::string key = controller == "cpu" ? "cpus" : controller;
        std::string how;
        if (controller == "pids" && plan.namespaces.has(Namespace::User)) {
            rlimit(RLIMIT_NPROC, *plan.pids_limit);
            how = "RLIMIT_NPROC in the sandbox's user namespace";
        } else if (controller == "memory") {
            rlimit(RLIMIT_AS, *plan.memory_limit);
            how = "RLIMIT_AS, per process (not in total)";
        }
        if (!how.empty()) {
            log.warn("%s: no cgroup (%s): held by %s instead", m.key, m.error.what().c_str(),
                     how.c_str());
            out.held.push_back({key, how});
            continue;
        }
        Error e = m.error;
        if (is_privilege(e) || e.errno_value() == EROFS)
            (void)std::move(e).with_hint("no writable cgroup for the " + controller +
                                         " controller: run as root, or below a delegated cgroup "
                                         "v2, or set limits.optional = true");
        if (!plan.limits_optional) return fail(std::move(e));
        log.warn("warning: %s (the limit is not applied: limits.optional)", e.what().c_str());
        out.held.push_back({key, "none"});
    }
    return out;
}

}  // namespace

int RunOutcome::exit_status() const {
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

SignalSet supervised_signals(const SandboxPlan& plan) {
    SignalSet s;
    for (int sig : plan.forward_signals)
        s.add(sig);
    return s;
}

Result<RunOutcome> run_sandbox(const SandboxPlan& profile_plan, const sigset_t& original_mask,
                               const SupervisorOptions& options) {
    Log log(options.verbosity);
    // What the run adds to the plan: the notify socket's bind and variable. Only then a copy:
    // every page the copy fills is one more for the clone to share copy-on-write.
    BUTTER_ASSIGN_OR_RETURN(
        std::optional<NotifyRelay> relay,
        profile_plan.notify ? NotifyRelay::create() : Result<std::optional<NotifyRelay>>());
    // The cgroups, and what stands in for those that cannot be made.
    SandboxCgroups cgroups = SandboxCgroups::create(profile_plan);
    BUTTER_ASSIGN_OR_RETURN(LimitFallbacks fallbacks, limit_fallbacks(profile_plan, cgroups, log));
    std::optional<SandboxPlan> extended;
    if (!fallbacks.rlimits.empty()) {
        extended = profile_plan;
        for (const Rlimit& r : fallbacks.rlimits)
            extended->rlimits.push_back(r);
    }
    if (relay) {
        if (!extended) extended = profile_plan;
        MountStep m;
        m.type = profile::MountType::Bind;
        BUTTER_ASSIGN_OR_RETURN(HostPath sock, resolve_host_path(relay->socket_path()));
        m.source = std::move(sock.path);
        m.source_dev = sock.st.st_dev;
        m.source_ino = sock.st.st_ino;
        m.source_is_dir = false;
        m.target = NotifyRelay::kInsideSocket;
        m.read_only = true;  // a socket still takes datagrams on a read-only mount
        extended->mounts.push_back(m);
        extended->env.push_back(std::string("NOTIFY_SOCKET=") + NotifyRelay::kInsideSocket);
    }
    const SandboxPlan& plan = extended ? *extended : profile_plan;
    // Without a pid namespace, nothing the sandbox starts may escape to the host's init.
    if (!plan.namespaces.has(Namespace::Pid)) BUTTER_TRY(become_subreaper());
    auto start = Clock::now();
    struct rusage before {};
    ::getrusage(RUSAGE_CHILDREN, &before);
    Events events(options.events_fd);
    BUTTER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::create());
    log.attach(loop);
    events.attach(loop);
    BUTTER_ASSIGN_OR_RETURN(Output out, Output::open(plan.stdout_spec, 1));
    BUTTER_ASSIGN_OR_RETURN(Output err, Output::open(plan.stderr_spec, 2));
    std::optional<PtyProxy> pty;  // session = "pty": one per run of the command

    Attempt* current = nullptr;
    pid_t sandbox_pid = 0;  // the current sandbox's first process and pid namespace
    std::optional<std::uint64_t> sandbox_pid_ns;
    bool stop_requested = false, time_up = false;
    auto stop_now = [&] {
        if (current)
            current->request_stop(plan.stop_signal, plan.stop_timeout);
        else
            loop.stop();  // between runs: nothing to stop but the wait
    };

    // SIGTERM to butter is a stop request (systemd's stop, kill(1)): the command gets the
    // profile's stop signal and the grace period. The others pass through.
    BUTTER_ASSIGN_OR_RETURN(SignalFd sfd,
                            SignalFd::create(supervised_signals(plan), SignalFdFlag::NonBlock));
    BUTTER_ASSIGN_OR_RETURN(auto sig_reg, loop.add(sfd.fd(), IoEvent::In, [&](IoEvents) {
        while (auto s = sfd.read_event()) {
            if (!*s) break;
            int sig = (*s)->signo;
            if (sig == SIGTERM) {
                if (!stop_requested) log.info("SIGTERM: stopping the command");
                stop_requested = true;
                stop_now();
            } else if (sig == SIGWINCH && pty) {
                pty->resize();  // the kernel signals the pty's foreground group itself
            } else if (current) {
                log.info("forwarding %s", signal_name(sig).c_str());
                current->forward(sig);
            }
        }
    }));
    std::optional<TimerFd> limit;
    EventLoop::Registration limit_reg;
    if (plan.time_limit) {
        BUTTER_ASSIGN_OR_RETURN(limit,
                                TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
        BUTTER_TRY(limit->set_relative(*plan.time_limit));
        BUTTER_ASSIGN_OR_RETURN(limit_reg, loop.add(limit->fd(), IoEvent::In, [&](IoEvents) {
            (void)limit->read_event();
            if (!time_up) log.info("time limit reached");
            time_up = true;
            stop_now();
        }));
    }

    if (relay) {
        // Only the sandbox reaches the socket (it lies in a directory no one else may enter);
        // a sender that still lives must be in the sandbox too. One gone by the time its
        // datagram is read was the sandbox's (a quick `systemd-notify --ready`).
        auto from_sandbox = [&](pid_t pid) {
            if (sandbox_pid <= 0 || pid <= 0) return false;
            if (::kill(pid, 0) < 0 && errno == ESRCH) return true;
            return in_sandbox(pid, sandbox_pid, sandbox_pid_ns);
        };
        BUTTER_TRY(relay->start(loop, from_sandbox, [&](const std::string& msg) {
            std::string one = msg;
            while (!one.empty() && one.back() == '\n')
                one.pop_back();
            log.info("notify: %s", terminal_safe(one).c_str());
        }));
    }

    // [watch]: a change logs, signals the command, or restarts it (whatever the policy).
    bool restart_requested = false;
    std::optional<Watcher> watcher;
    if (!plan.watch_paths.empty()) {
        BUTTER_ASSIGN_OR_RETURN(
            watcher, Watcher::create(plan.watch_paths, plan.watch_debounce, plan.watch_fanotify));
        BUTTER_TRY(watcher->start(loop, [&](const std::string& changed, unsigned n) {
            std::string shown = terminal_safe(changed);  // a name the sandbox may have chosen
            const std::string& path = shown;
            switch (plan.on_change.kind) {
                case profile::OnChange::Kind::Log:
                    log.warn("watch: %s changed (%u change%s)", path.c_str(), n, n == 1 ? "" : "s");
                    break;
                case profile::OnChange::Kind::Signal:
                    log.info("watch: %s changed: %s", path.c_str(),
                             signal_name(plan.on_change.signal).c_str());
                    if (current) current->forward(plan.on_change.signal);
                    break;
                case profile::OnChange::Kind::Restart:
                    log.warn("watch: %s changed: restarting", path.c_str());
                    if (current) {
                        restart_requested = true;
                        current->request_stop(plan.stop_signal, plan.stop_timeout);
                    }
                    break;
            }
        }));
    }

    // report.file_activity: what the sandbox writes where it reaches the host.
    std::optional<FileActivity> activity;
    if (plan.file_activity) {
        std::vector<FileActivity::Root> roots;
        for (const MountStep& m : plan.mounts)
            if (m.type == profile::MountType::Bind && !m.read_only && m.source_is_dir)
                roots.push_back({m.source, m.source_dev, m.source_ino});
        // fanotify as root: the sandbox's writes only, every directory at once.
        BUTTER_ASSIGN_OR_RETURN(activity, FileActivity::create(roots, plan.privileged));
        BUTTER_TRY(activity->start(loop));
    }

    // Once the command has run for a moment, the supervisor only waits: give back what set-up
    // alone used (its code and rodata pages, free heap). A command that ends sooner pays
    // nothing; later the loop's own code faults back in, a few pages.
    BUTTER_ASSIGN_OR_RETURN(TimerFd idle,
                            TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
    BUTTER_TRY(idle.set_relative(kIdleTrimDelay));
    EventLoop::Registration idle_reg;
    BUTTER_ASSIGN_OR_RETURN(idle_reg, loop.add(idle.fd(), IoEvent::In, [&](IoEvents) {
        (void)idle.read_event();
        idle_reg.reset();
        if (auto r = release_program_text(); !r) log.info("%s", r.error().what().c_str());
        ::malloc_trim(0);
    }));

    cpu_set_t cpus;
    bool spare_cpu = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1;

    RunOutcome result;
    std::deque<Clock::time_point> restart_times;
    for (;;) {
        std::int64_t spawned_ns = monotonic_ns();
        Result<Fd> kmsg = open_kernel_log(plan);
        pty.reset();
        if (plan.pty) {
            BUTTER_ASSIGN_OR_RETURN(PtyProxy p, PtyProxy::create());
            pty.emplace(std::move(p));
        }
        BUTTER_ASSIGN_OR_RETURN(
            Sandbox sb, spawn(plan, original_mask,
                              {out.child_fd(), err.child_fd(), &cgroups, pty ? pty->slave() : -1,
                               sfd.fd(), limit ? limit->fd() : -1, options.sigpipe_default},
                              options.early ? std::move(*options.early) : EarlyChild()));
        if (pty) BUTTER_TRY(pty->start(loop));
        out.after_spawn();
        err.after_spawn();
        BUTTER_TRY(out.start(loop));
        BUTTER_TRY(err.start(loop));
        // The command runs on another CPU now (when there is one): map the rest of our text
        // meanwhile, so that the reaction to its exit, on the path to butter's own, takes
        // no page faults (~0.05 ms less for a short command; the idle trim above gives the
        // pages back from a long one).
        if (spare_cpu) (void)prefault_program_text();
        log.info("sandbox started: pid %d", static_cast<int>(sb.pid));
        // Who is the sandbox now (fanotify's writers, the notify relay's senders).
        sandbox_pid = sb.pid;
        sandbox_pid_ns.reset();
        if (plan.namespaces.has(Namespace::Pid))
            if (auto id = namespace_id(sb.pid, Namespace::Pid)) sandbox_pid_ns = *id;
        if (activity) activity->set_sandbox(sandbox_pid_ns);
        if (watcher) watcher->set_sandbox(sandbox_pid_ns);
        if (events.on()) {
            std::string ids = "{";
            for (const FlagName<Namespace>& ns : flag_names(Namespace{})) {
                if (!plan.namespaces.has(ns.value)) continue;
                auto id = namespace_id(sb.pid, ns.value);
                if (!id) continue;
                ids += (ids.size() > 1 ? ", " : "") +
                       Events::str(std::string(proc_name(ns.value))) + ": " + std::to_string(*id);
            }
            events.emit("started", {{"pid", std::to_string(sb.pid)},
                                    {"namespaces", ids + "}"},
                                    {"restart", std::to_string(result.restarts)}});
        }
        Attempt attempt(plan, sb, loop, log, result.denied, events, spawned_ns, std::move(kmsg));
        BUTTER_TRY(attempt.start());
        current = &attempt;
        if (stop_requested || time_up) stop_now();
        while (!attempt.exited())
            BUTTER_TRY(loop.run());
        current = nullptr;
        const int interrupts[] = {sfd.fd(), limit ? limit->fd() : -1};
        out.drain(interrupts, stop_requested || time_up);
        err.drain(interrupts, stop_requested || time_up);
        if (pty) pty->drain();
        BUTTER_ASSIGN_OR_RETURN(RunOutcome o, attempt.finish());
        o.limits_held = fallbacks.held;
        // Without a pid namespace, what the command left behind ends with it, as it would
        // with one when its init exits.
        if (!plan.namespaces.has(Namespace::Pid)) kill_descendants(true);
        o.denied = std::move(result.denied);
        o.denials_throttled += result.denials_throttled;
        o.restarts = result.restarts;
        result = std::move(o);
        cgroups.collect(result);
        if (result.stop == RunOutcome::Stop::Oom)
            log.warn("the command ran out of memory (limits.memory)");
        log.info("command %s", describe(result).c_str());

        if (stop_requested || time_up) break;
        if (restart_requested) {
            // A change asked for it: now, without the delay or the crash-loop count.
            restart_requested = false;
            ++result.restarts;
            BUTTER_TRY(out.reopen_pipe_if_tee());
            BUTTER_TRY(err.reopen_pipe_if_tee());
            continue;
        }
        if (!wants_restart(plan, result)) break;
        auto now = Clock::now();
        restart_times.push_back(now);
        while (!restart_times.empty() && now - restart_times.front() > plan.restart_interval)
            restart_times.pop_front();
        if (restart_times.size() > plan.restart_burst) {
            result.stop = RunOutcome::Stop::RestartLimit;
            log.warn("the command %s; %zu restarts within %lld ms: giving up",
                     describe(result).c_str(), restart_times.size() - 1,
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                plan.restart_interval)
                                                .count()));
            break;
        }
        log.warn(
            "the command %s; restarting in %lld ms", describe(result).c_str(),
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(plan.restart_delay).count()));
        BUTTER_ASSIGN_OR_RETURN(TimerFd delay,
                                TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
        BUTTER_TRY(delay.set_relative(plan.restart_delay));
        bool waited = false;
        BUTTER_ASSIGN_OR_RETURN(auto delay_reg, loop.add(delay.fd(), IoEvent::In, [&](IoEvents) {
            waited = true;
            loop.stop();
        }));
        while (!waited && !stop_requested && !time_up)
            BUTTER_TRY(loop.run());
        if (!waited) break;
        ++result.restarts;
        BUTTER_TRY(out.reopen_pipe_if_tee());
        BUTTER_TRY(err.reopen_pipe_if_tee());
    }

    if (time_up) {
        result.kind = RunOutcome::Kind::TimedOut;
        result.stop = RunOutcome::Stop::TimeLimit;
        result.limits_hit.push_back("time");
    } else if (stop_requested) {
        result.stop = RunOutcome::Stop::StopRequest;
    }
    cgroups.destroy();
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
    struct rusage after {};
    ::getrusage(RUSAGE_CHILDREN, &after);
    result.user_cpu = tv(after.ru_utime) - tv(before.ru_utime);
    result.system_cpu = tv(after.ru_stime) - tv(before.ru_stime);
    result.max_rss_bytes = static_cast<std::uint64_t>(after.ru_maxrss) * 1024;
    if (plan.stdout_spec.kind == OutputSpec::Kind::Tee) result.stdout_bytes = out.bytes();
    if (plan.stderr_spec.kind == OutputSpec::Kind::Tee) result.stderr_bytes = err.bytes();
    for (const Output* o : {&out, &err}) {
        if (o->error() && result.output_error.empty()) {
            result.output_error = o->error()->what();
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
    return result;
}

}  // namespace butter::launcher
