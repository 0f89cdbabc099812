#include "supervisor.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <butter/loop.hpp>
#include <butter/seccomp.hpp>
#include <butter/signalfd.hpp>
#include <butter/timerfd.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "seccomp/describe.hpp"

namespace butter::launcher {

namespace {

using Clock = std::chrono::steady_clock;

std::string render_failure(const SandboxPlan& plan, const ChildFailure& f) {
    std::string s = "setup failed: ";
    s += step_name(static_cast<Step>(f.step));
    if (f.mount >= 0 && static_cast<std::size_t>(f.mount) < plan.mounts.size()) {
        const MountStep& m = plan.mounts[static_cast<std::size_t>(f.mount)];
        s += std::string(" (") + profile::to_string(m.type) + " ";
        if (!m.source.empty()) s += m.source + " -> ";
        s += m.target + ")";
    }
    // f.call is a NUL-terminated buffer in the record, alive while `e` is used here.
    Error e(f.call, f.error, std::string(f.context, ::strnlen(f.context, sizeof f.context)));
    return s + ": " + e.what();
}

class Run {
  public:
    Run(const SandboxPlan& plan, Sandbox& sb, EventLoop& loop)
        : plan_(plan), sb_(sb), loop_(loop) {}

    Result<RunOutcome> go();

  private:
    Result<void> on_failure_pipe();
    Result<void> on_control();
    void on_signal(int sig);
    void on_timer();
    void on_exit();
    void on_notification();
    void send(int sig);

    const SandboxPlan& plan_;
    Sandbox& sb_;
    EventLoop& loop_;
    std::optional<ChildFailure> failure_;
    bool exec_done_ = false;
    std::optional<int> command_status_;
    std::optional<ExitStatus> first_status_;
    bool timed_out_ = false;
    bool killing_ = false;
    std::optional<TimerFd> timer_;
    std::optional<SeccompNotifyFd> notify_;
    EventLoop::Registration notify_reg_;
    std::map<std::string, unsigned> denied_;
    std::optional<Error> error_;
};

void Run::send(int sig) {
    (void)pidfd_send_signal(sb_.pidfd, sig);
}

Result<void> Run::on_failure_pipe() {
    ChildFailure f;
    ssize_t n = ::read(sb_.failure.get(), &f, sizeof f);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return {};
        return fail_errno("read", "failure pipe");
    }
    if (n == static_cast<ssize_t>(sizeof f))
        failure_ = f;
    else
        exec_done_ = true;  // EOF: every copy closed at exec
    return {};
}

Result<void> Run::on_control() {
    for (;;) {
        auto msg = recv_fds(sb_.control, 1, sizeof(ControlMessage));
        if (!msg) {
            if (msg.error().errno_value() == EAGAIN) return {};
            return fail(std::move(msg).error());
        }
        if (msg->data.size() < sizeof(ControlMessage)) return {};  // EOF
        ControlMessage m;
        std::memcpy(&m, msg->data.data(), sizeof m);
        if (m.type == ControlMessage::CommandStatus) {
            command_status_ = m.value;
        } else if (m.type == ControlMessage::Listener && !msg->fds.empty() && !notify_) {
            notify_.emplace(std::move(msg->fds[0]));
            BUTTER_TRY(set_nonblocking(notify_->fd(), true));
            BUTTER_ASSIGN_OR_RETURN(
                notify_reg_,
                loop_.add(notify_->fd(), IoEvent::In, [this](IoEvents) { on_notification(); }));
        }
    }
}

void Run::on_notification() {
    auto all = notify_->read_events();
    if (!all) return;
    for (const SeccompNotification& n : *all) {
        std::string name = n.syscall_name();
        // The first of each syscall is described (reading its strings takes a few syscalls
        // while the caller waits); every one is answered at once otherwise.
        bool first = denied_[name]++ == 0;
        std::string line = first ? seccomp::describe_call(n, *notify_) : std::string();
        (void)notify_->respond_errno(n.id, plan_.seccomp_errno);
        if (first)
            std::fprintf(stderr, "butter: denied: %s = %s\n", line.c_str(),
                         errno_name(plan_.seccomp_errno).c_str());
    }
}

void Run::on_signal(int sig) {
    // Forwarded to PID 1, which passes it to the command (or to the command itself).
    send(sig);
}

void Run::on_timer() {
    if (!timed_out_) {
        timed_out_ = true;
        send(plan_.stop_signal);
        (void)timer_->set_relative(plan_.stop_timeout);
    } else if (!killing_) {
        killing_ = true;
        send(SIGKILL);  // PID 1's death takes the whole pid namespace with it
    }
}

Result<RunOutcome> Run::go() {
    auto start = Clock::now();
    BUTTER_TRY(set_nonblocking(sb_.failure.get(), true));
    BUTTER_TRY(set_nonblocking(sb_.control.get(), true));
    bool exited = false;
    // Both fds stay readable at EOF: stop watching them then, or the loop spins.
    EventLoop::Registration fail_reg, ctl_reg;
    BUTTER_ASSIGN_OR_RETURN(fail_reg, loop_.add(sb_.failure, IoEvent::In, [&](IoEvents) {
        if (auto r = on_failure_pipe(); !r) error_ = r.error();
        if (failure_ || exec_done_ || error_) fail_reg.reset();
    }));
    BUTTER_ASSIGN_OR_RETURN(ctl_reg, loop_.add(sb_.control, IoEvent::In, [&](IoEvents ev) {
        if (auto r = on_control(); !r) error_ = r.error();
        if (ev.any(IoEvent::Hup) || error_) ctl_reg.reset();
    }));
    BUTTER_ASSIGN_OR_RETURN(auto exit_reg, loop_.add(sb_.pidfd, IoEvent::In, [&](IoEvents) {
        exited = true;
        loop_.stop();
    }));
    SignalSet sigs = supervised_signals(plan_);
    BUTTER_ASSIGN_OR_RETURN(SignalFd sfd, SignalFd::create(sigs, SignalFdFlag::NonBlock));
    BUTTER_ASSIGN_OR_RETURN(auto sig_reg, loop_.add(sfd.fd(), IoEvent::In, [&](IoEvents) {
        while (auto s = sfd.read_event()) {
            if (!*s) break;
            on_signal((*s)->signo);
        }
    }));
    EventLoop::Registration timer_reg;
    if (plan_.time_limit) {
        BUTTER_ASSIGN_OR_RETURN(timer_,
                                TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
        BUTTER_TRY(timer_->set_relative(*plan_.time_limit));
        BUTTER_ASSIGN_OR_RETURN(timer_reg, loop_.add(timer_->fd(), IoEvent::In, [&](IoEvents) {
            (void)timer_->read_event();
            on_timer();
        }));
    }
    while (!exited)
        BUTTER_TRY(loop_.run());

    // The first process is gone: collect what it left in the pipes, then its status.
    while (!failure_ && !exec_done_) {
        if (auto r = on_failure_pipe(); !r || (!failure_ && !exec_done_)) break;
    }
    BUTTER_TRY(on_control());
    BUTTER_ASSIGN_OR_RETURN(auto st, waitid_pidfd(sb_.pidfd));
    if (error_) return fail(std::move(*error_));

    RunOutcome out;
    out.wall = Clock::now() - start;
    out.denied = denied_;
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
    if (timed_out_) {
        out.kind = RunOutcome::Kind::TimedOut;
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

Result<RunOutcome> supervise(const SandboxPlan& plan, Sandbox& sandbox) {
    BUTTER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::create());
    Run run(plan, sandbox, loop);
    return run.go();
}

}  // namespace butter::launcher
