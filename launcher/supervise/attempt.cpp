#include "supervise/attempt.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/unix_socket.hpp>

#include "seccomp/describe.hpp"
#include "seccomp/kernel_log.hpp"
#include "seccomp/policy.hpp"
#include "supervise/descendants.hpp"

namespace butter::launcher {

namespace {

using std::chrono::nanoseconds;

// --events: "denied" lines per syscall name at most (the rest are counted).
constexpr unsigned kDeniedEventsPerSyscall = 100;
// seccomp.report: the pause once past kDenialsPerSecond.
constexpr std::chrono::milliseconds kDenialPause{50};

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

}  // namespace

Result<Fd> open_kernel_log(const SandboxPlan& plan) {
    if (!plan.seccomp_listener || plan.seccomp_base.empty())
        return fail(Error("open", EBADF, "/dev/kmsg (not needed)"));
    BUTTER_ASSIGN_OR_RETURN(Fd fd, open("/dev/kmsg", O_RDONLY | O_NONBLOCK));
    if (::lseek(fd.get(), 0, SEEK_END) < 0) return fail_errno("lseek", "/dev/kmsg");
    return fd;
}

std::string render_failure(const SandboxPlan& plan, const ChildFailure& f) {
    std::string s = "setup failed: ";
    const MountStep* at = f.mount >= 0 && static_cast<std::size_t>(f.mount) < plan.mounts.size()
                              ? &plan.mounts[static_cast<std::size_t>(f.mount)]
                              : nullptr;
    bool layers = at && at->type == profile::MountType::Overlay &&
                  static_cast<Step>(f.step) == Step::PrepareBinds;
    s += layers ? "overlay layers" : step_name(static_cast<Step>(f.step));
    if (at) {
        const MountStep& m = *at;
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

namespace {

// Whether the set-up failed where a host that refuses namespaces stops it: the id maps, the
// first mounts of the root, a kernel filesystem's mount, lo. Not a bind's (its source's own
// permissions) or anything after.
bool refused_by_host(const SandboxPlan& plan, const ChildFailure& f) {
    bool denied = f.error == EPERM || f.error == EACCES;
    switch (static_cast<Step>(f.step)) {
        case Step::Namespaces:
        case Step::IdMaps:
            return denied || f.error == ENOSPC || f.error == EUSERS || f.error == EINVAL;
        case Step::Propagation:
        case Step::Root:
        case Step::PivotRoot:
        case Step::Proc:
        case Step::Network:
            return denied;
        case Step::Mount: {
            if (!denied || f.mount < 0 || static_cast<std::size_t>(f.mount) >= plan.mounts.size())
                return false;
            profile::MountType t = plan.mounts[static_cast<std::size_t>(f.mount)].type;
            return t == profile::MountType::Tmpfs || t == profile::MountType::Proc ||
                   t == profile::MountType::Dev || t == profile::MountType::Mqueue;
        }
        default:
            return false;
    }
}

// One life of the sandbox: from spawn to the exit of its first process.

}  // namespace

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
        exec_seen();  // EOF: every copy closed at exec
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
        } else if (m.type == ControlMessage::Ready && on_ready_) {
            on_ready_();
        } else if (m.type == ControlMessage::AuditSession) {
            audit_session_ = static_cast<std::uint32_t>(m.value);
        } else if (m.type == ControlMessage::KernelLog && !kernel_log_) {
            on_kernel_log_mode(m.value);
        } else if (m.type == ControlMessage::Terminal && !msg->fds.empty() && on_terminal_) {
            BUTTER_TRY(on_terminal_(std::move(msg->fds[0])));
        } else if (m.type == ControlMessage::Changes && !msg->fds.empty() && on_changes_) {
            on_changes_(std::move(msg->fds[0]));
        } else if (m.type == ControlMessage::CommandPid && msg->sender_pid > 0 && !command_pid_) {
            command_pid_ = msg->sender_pid;
        } else if (m.type == ControlMessage::NotifySocket && !msg->fds.empty() &&
                   on_notify_socket_) {
            BUTTER_TRY(on_notify_socket_(std::move(msg->fds[0])));
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
    if (plan_.learn) {  // recorded and answered at once: no bound on the rate
        auto all = notify_->read_events();
        if (!all) return;
        for (const SeccompNotification& n : *all)
            learn(n);
        return;
    }
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

namespace {

// The path a traced call names, absolute as the caller sees it: relative ones against its
// directory fd or working directory (readlink of /proc/PID/fd/N or cwd gives the path in the
// sandbox's own root). Lexically normalised; nullopt if unreadable.
std::optional<std::string> traced_path(const SeccompNotification& n, int path_arg, int dirfd_arg) {
    auto s = read_process_string(n.pid, n.args[static_cast<std::size_t>(path_arg)], 4096);
    if (!s || s->empty()) return std::nullopt;
    std::string path = *s;
    if (path[0] != '/') {
        int dirfd = dirfd_arg < 0 ? AT_FDCWD
                                  : static_cast<int>(n.args[static_cast<std::size_t>(dirfd_arg)]);
        std::string link = "/proc/" + std::to_string(n.pid) +
                           (dirfd == AT_FDCWD ? "/cwd" : "/fd/" + std::to_string(dirfd));
        char buf[4096];
        ssize_t len = ::readlink(link.c_str(), buf, sizeof buf - 1);
        if (len <= 0 || buf[0] != '/') return std::nullopt;
        path = std::string(buf, static_cast<std::size_t>(len)) + "/" + path;
    }
    std::string norm = std::filesystem::path(path).lexically_normal().string();
    while (norm.size() > 1 && norm.back() == '/')
        norm.pop_back();
    return norm;
}

}  // namespace

void Attempt::learn(const SeccompNotification& n) {
    using L = RunOutcome::Learned;
    std::string name = n.syscall_name();
    if (learned_.pids.size() < L::kMaxPids)
        learned_.pids.insert(n.pid);
    else
        learned_.partial = true;
    // A traced call (the filter sends it only where it is allowed), or a denial.
    const seccomp::TracedCall* t =
        plan_.learn_traced.count(name) ? seccomp::traced_call(name) : nullptr;
    if (!t) {
        // A denial of the lists or the default (argument rules answer in the kernel): recorded
        // with its first arguments (socket's family, ioctl's request, clone's flags), and run.
        L::Call& c = learned_.syscalls[name];
        ++c.count;
        c.refused = seccomp::refused_while_learning(name);
        for (auto [values, v] : {std::pair{&c.arg0, n.args[0]}, std::pair{&c.arg1, n.args[1]}}) {
            if (values->size() < L::kMaxValues)
                values->insert(v);
            else if (!values->count(v))
                learned_.partial = true;
        }
    } else {
        auto note = [&](int path_arg, int dirfd_arg, unsigned use) {
            auto p = traced_path(n, path_arg, dirfd_arg);
            // Only if the caller still waits: else the pid may be another process's.
            if (auto valid = notify_->id_valid(n.id); !p || !valid || !*valid) return;
            if (learned_.paths.size() >= L::kMaxPaths && !learned_.paths.count(*p)) {
                learned_.partial = true;
                return;
            }
            learned_.paths[*p] |= use;
        };
        unsigned use = 0;
        std::string_view nm = name;
        if (nm == "open" || nm == "openat" || nm == "creat" || nm == "openat2") {
            std::uint64_t flags = n.args[nm == "open" ? 1 : 2];
            if (nm == "creat") flags = O_WRONLY | O_CREAT;
            if (nm == "openat2") {
                // struct open_how's first field: flags.
                std::uint64_t how = 0;
                struct iovec local {
                    &how, sizeof how
                }, remote{reinterpret_cast<void*>(n.args[2]), sizeof how};
                flags = ::process_vm_readv(n.pid, &local, 1, &remote, 1, 0) == sizeof how ? how : 0;
            }
            if (flags & O_PATH) {
                use = 0;
            } else {
                use = (flags & O_ACCMODE) == O_RDONLY ? L::Read : L::Write;
                if ((flags & O_ACCMODE) == O_RDWR) use |= L::Read;
                if (flags & O_CREAT) use |= L::Create;
                if (flags & O_DIRECTORY) use = L::List;
            }
        } else if (nm == "execve" || nm == "execveat") {
            use = L::Exec;
        } else if (nm == "unlink" || nm == "unlinkat" || nm == "rmdir") {
            use = L::Remove;
        } else if (nm == "truncate") {
            use = L::Write;
        } else if (nm.starts_with("rename")) {
            use = L::Remove;
        } else {  // mkdir, symlink, link, mknod
            use = L::Create;
        }
        if (use) note(t->path_arg, t->dirfd_arg, use);
        // Its descriptors as it opens one more: the highest number (RLIMIT_NOFILE bounds it).
        if (use & (L::Read | L::Write | L::List)) {
            std::string dir = "/proc/" + std::to_string(n.pid) + "/fd";
            if (DIR* d = ::opendir(dir.c_str())) {
                while (struct dirent* e = ::readdir(d))
                    if (e->d_name[0] != '.')
                        learned_.max_fd = std::max(learned_.max_fd, std::atoi(e->d_name));
                ::closedir(d);
            }
        }
        // rename's and link's second path is made.
        if (t->path2_arg >= 0) note(t->path2_arg, t->dirfd2_arg, L::Create);
    }
    // A denial lets the call run but where butter's own argument rules would refuse it (a
    // syscall the profile denies outright has none in the filter): set-uid files, extended
    // attributes, user namespaces stay refused while learning too.
    int err = 0;
    if (!t) {
        if (seccomp::refused_while_learning(name))
            err = plan_.seccomp_errno;
        else
            err = seccomp::implicit_rule_errno(name, n.args,
                                               {plan_.learn_suid_sgid, plan_.learn_xattrs,
                                                plan_.no_nested_user, plan_.seccomp_errno});
    }
    if (err)
        (void)notify_->respond_errno(n.id, err);
    else
        (void)notify_->respond_continue(n.id);
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

pid_t Attempt::command_pid() {
    if (!command_pid_ && !error_)
        if (auto r = on_control(); !r) error_ = r.error();
    return command_pid_;
}

Result<void> Attempt::start() {
    BUTTER_TRY(set_nonblocking(sb_.failure.get(), true));
    BUTTER_TRY(set_nonblocking(sb_.control.get(), true));
    if (on_notify_socket_) {
        // (each message carries its sender's credentials from its send on; they come with it
        // once the socket asks for them)
        int on = 1;
        if (::setsockopt(sb_.control.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
            return fail_errno("setsockopt(SO_PASSCRED)", "control socket");
    }
    if (sb_.waited) {
        // spawn saw the set-up end (the pipe is at EOF): the child's timings first, so that
        // each step's time is measured from the one before.
        BUTTER_TRY(on_control());
        if (sb_.failure_record) {
            failure_ = *sb_.failure_record;
        } else {
            exec_seen();
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
        exit_.set();
    }));
    return {};
}

void Attempt::forward(int sig) {
    if (!exec_done_ && !failure_ && sig != SIGKILL) {
        held_signals_.push_back(sig);
        return;
    }
    (void)pidfd_send_signal(sb_.pidfd, sig);
}

void Attempt::exec_seen() {
    exec_done_ = true;
    for (int sig : held_signals_)
        (void)pidfd_send_signal(sb_.pidfd, sig);
    held_signals_.clear();
}

void Attempt::kill_all() {
    forward(SIGKILL);  // PID 1's death takes the whole pid namespace with it
    // Without one, every descendant (the first process is reaped by its pidfd, in finish()).
    if (!plan_.namespaces.has(Namespace::Pid))
        kill_descendants(false, 200, plan_.new_session ? sb_.pid : 0);
}

void Attempt::kill_and_reap() {
    kill_all();
    if (!exited_) (void)waitid_pidfd(sb_.pidfd, __WALL);
}

void Attempt::request_stop(int sig, std::chrono::nanoseconds grace) {
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

Result<RunOutcome> Attempt::finish(struct rusage& usage) {
    // The first process is gone: collect what it left in the pipes, then its status.
    while (!failure_ && !exec_done_) {
        if (auto r = on_failure_pipe(); !r || (!failure_ && !exec_done_)) break;
    }
    BUTTER_TRY(on_control());
    on_kernel_log();
    BUTTER_ASSIGN_OR_RETURN(auto st, waitid_pidfd(sb_.pidfd, 0, &usage));
    if (error_) return fail(std::move(*error_));

    RunOutcome out;
    out.setup_steps = std::move(steps_);
    out.denials_throttled = throttled_;
    if (failure_) {
        if (static_cast<Step>(failure_->step) == Step::Exec) {
            out.kind = RunOutcome::Kind::ExecFailed;
            out.exec_errno = failure_->error;
            // As a shell says it: "not found" for a name searched in PATH only.
            std::string arg0 = plan_.argv.empty() ? "" : plan_.argv[0];
            bool searched = arg0.find('/') == std::string::npos;
            out.message = arg0 + ": " +
                          (failure_->error == ENOENT && searched ? "command not found"
                                                                 : std::strerror(failure_->error));
        } else {
            out.kind = RunOutcome::Kind::SetupFailed;
            out.message = render_failure(plan_, *failure_);
            out.isolation_refused = refused_by_host(plan_, *failure_);
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

}  // namespace butter::launcher
