// The command's last steps: session, stdin, ids and privileges, inherited fds, seccomp (last),
// and execve with a PATH search done inside the sandbox.
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <butter/landlock.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/seccomp.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "plan/host_path.hpp"
#include "pool/protocol.hpp"

namespace butter::launcher {

namespace {

Result<void> set_rlimits(const SandboxPlan& plan) {
    for (const Rlimit& r : plan.rlimits) {
        struct rlimit lim {
            r.value, r.hard.value_or(r.value)
        };
        if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) < 0)
            return fail_errno("setrlimit", rlimit_name(r.resource));
    }
    return {};
}

// session = "pty" with a dev mount: the terminal, made in the sandbox's own devpts (so `tty`
// and ttyname name it there), becomes stdio and the controlling terminal of the new session;
// its master goes to the supervisor. The command's user owns it. Input that is not a terminal
// is not echoed back, output that is not one gets no CRLF: the pty changes nothing a pipe
// would not.
Result<void> make_terminal(const SandboxPlan& plan, const ChildChannels& ch) {
    int master = ::open(plan.pty_ptmx.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return fail_errno("open", "the sandbox's ptmx");
    Fd m(master);
    int unlock = 0;
    if (::ioctl(master, TIOCSPTLCK, &unlock) < 0) return fail_errno("ioctl(TIOCSPTLCK)");
    int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return fail_errno("ioctl(TIOCGPTPEER)");
    Fd sl(slave);
    if (::fchown(slave, plan.uid, plan.gid) < 0) return fail_errno("fchown", "the terminal");
    struct termios t {};
    if (::tcgetattr(slave, &t) < 0) return fail_errno("tcgetattr", "the terminal");
    if (!::isatty(0)) t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    if (!::isatty(1)) t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
    if (::tcsetattr(slave, TCSANOW, &t) < 0) return fail_errno("tcsetattr", "the terminal");
    struct winsize ws {};
    if ((::ioctl(0, TIOCGWINSZ, &ws) == 0 || ::ioctl(1, TIOCGWINSZ, &ws) == 0) && ws.ws_row > 0)
        (void)::ioctl(slave, TIOCSWINSZ, &ws);
    if (ch.console_fd >= 0) {
        BUTTER_TRY(send_console(ch.console_fd, master));
    } else {
        BUTTER_TRY(send_fd(ch.control_fd, ControlMessage::Terminal, master));
    }
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(slave, fd) < 0) return fail_errno("dup2", "the terminal");
    if (::ioctl(0, TIOCSCTTY, 0) < 0) return fail_errno("ioctl(TIOCSCTTY)");
    return {};
}

}  // namespace

namespace {

// `data` with `fd` as SCM_RIGHTS, in one sendmsg (no allocation).
Result<void> send_with_fd(int socket_fd, void* data, std::size_t len, int fd, const char* what) {
    struct iovec iov {
        data, len
    };
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (::sendmsg(socket_fd, &msg, MSG_NOSIGNAL) < 0) return fail_errno("sendmsg", what);
    return {};
}

}  // namespace

Result<void> send_console(int socket_fd, int master) {
    // As runc sends it (conmon reads it so): the terminal's name as the data, the master as
    // SCM_RIGHTS.
    char name[] = "/dev/ptmx";
    return send_with_fd(socket_fd, name, sizeof name - 1, master, "console socket");
}

// An fd to the supervisor (the seccomp listener, the terminal's master), with the record
// saying what it is: no allocation (the rlimits may hold already, RLIMIT_AS too, in memory
// that may be the supervisor's).
Result<void> send_fd(int control_fd, ControlMessage::Type type, int fd) {
    ControlMessage m{type, 0};
    return send_with_fd(control_fd, &m, sizeof m, fd, "fd");
}

CommandArgs::CommandArgs(const SandboxPlan& plan) : env(plan.env) {
    for (std::size_t i : plan.pid_env)
        env[i].append(kPidSlot, '\0');
    for (const auto& a : plan.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    static char sh[] = "/bin/sh";
    sh_argv = {sh, nullptr};
    for (std::size_t i = 1; i < plan.argv.size(); ++i)
        sh_argv.push_back(const_cast<char*>(plan.argv[i].c_str()));
    sh_argv.push_back(nullptr);
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    for (std::size_t i : plan.pid_env)
        pid_slots.push_back(env[i].data() + env[i].size() - kPidSlot);
}

namespace {

// The plan's Landlock layer (plan/landlock.cpp), on this process: its path rules (sandbox
// paths: the root is the sandbox's now), its ports, its scopes. And the command's own stdio
// where it is a file or a terminal (a file given with `< input`, a tty opened again through
// /dev/stdin): the same object, so it stays readable and writable as it was opened.
Result<void> confine(const SandboxPlan& plan) {
    auto fs = LandlockFsAccess::from_raw(plan.landlock_fs);
    BUTTER_ASSIGN_OR_RETURN(
        LandlockRuleset rs,
        LandlockRuleset::create(fs, LandlockNetAccess::from_raw(plan.landlock_net),
                                LandlockScopes::from_raw(plan.landlock_scopes)));
    const LandlockFsAccess file_rights =
        fs & LandlockFsAccess(LandlockFs::Execute | LandlockFs::WriteFile | LandlockFs::ReadFile |
                              LandlockFs::Truncate | LandlockFs::IoctlDev);
    for (const auto& rule : plan.landlock_paths) {
        Fd at;
        if (rule.dev != 0 || rule.ino != 0) {
            // A host path (the tiers below namespaces): the object planned, no symlink on the way.
            BUTTER_ASSIGN_OR_RETURN(at, reopen_host_path(rule.path, rule.dev, rule.ino));
        } else {
            int fd = ::open(rule.path.c_str(), O_PATH | O_CLOEXEC);
            if (fd < 0) return fail_errno("open", rule.path + " (a Landlock rule)");
            at = Fd(fd);
        }
        int fd = at.get();
        struct stat st {};
        if (::fstat(fd, &st) < 0) return fail_errno("fstat", rule.path);
        auto access = LandlockFsAccess::from_raw(rule.access);
        if (!S_ISDIR(st.st_mode)) access &= file_rights;
        if (auto r = rs.allow_beneath(at, access); !r)
            return fail(std::move(r).error().with_context(rule.path));
    }
    if (fs.raw() != 0) {
        for (int fd = 0; fd <= 2; ++fd) {
            struct stat st {};
            if (::fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) continue;
            // As it was opened: read for `< file`, write for `> file` (and no truncation of
            // what `>> log` appends to), a terminal both ways with its ioctls.
            int flags = ::fcntl(fd, F_GETFL);
            if (flags < 0 || (flags & O_PATH)) continue;  // (O_PATH: no access at all)
            int mode = flags & O_ACCMODE;
            LandlockFsAccess as_opened;
            if (mode == O_RDONLY || mode == O_RDWR) as_opened |= LandlockFs::ReadFile;
            if (mode == O_WRONLY || mode == O_RDWR) {
                as_opened |= LandlockFs::WriteFile;
                if (!(flags & O_APPEND)) as_opened |= LandlockFs::Truncate;
            }
            if (S_ISCHR(st.st_mode)) as_opened |= LandlockFs::IoctlDev;
            // EBADFD: an object of no file system that Landlock could name (ignored).
            (void)rs.allow_beneath(fd, file_rights & as_opened);
        }
    }
    for (const auto& port : plan.landlock_ports)
        BUTTER_TRY(rs.allow_port(port.port, LandlockNetAccess::from_raw(port.access)));
    return rs.restrict_self();
}

// The filter, its listener (if it has Notify rules) sent to the supervisor or the OCI runtime.
void load_filter(const SandboxPlan& plan, const ChildChannels& ch) {
    BpfLoadOptions opts;
    opts.new_listener = plan.seccomp_listener;
    auto listener = load_bpf(plan.seccomp, opts);
    int why = listener ? 0 : listener.error().errno_value();
    if (opts.new_listener && (why == EBUSY || why == EINVAL) && !plan.seccomp_base.empty()) {
        // EBUSY: an outer filter has the chain's one listener; EINVAL: a kernel without
        // user notification. The denials go to the kernel log (seccomp/kernel_log.hpp).
        ControlMessage m{ControlMessage::KernelLog, why};
        [[maybe_unused]] ssize_t n = ::send(ch.control_fd, &m, sizeof m, MSG_NOSIGNAL);
        if (auto r = load_bpf(plan.seccomp_base); !r) die(ch, Step::Seccomp, r.error());
        BpfLoadOptions logged;
        logged.log = true;
        listener = load_bpf(plan.seccomp_logged, logged);
    }
    if (!listener) die(ch, Step::Seccomp, listener.error());
    if (listener->valid()) {
        if (auto sent = send_fd(ch.control_fd, ControlMessage::Listener, listener->get()); !sent)
            die(ch, Step::Seccomp, sent.error());
        (void)listener->release();  // close-on-exec: gone at exec, no close call needed
        if (plan.seccomp_listener_ack) {
            char ack = 0;
            ssize_t n;
            do
                n = ::recv(ch.control_fd, &ack, 1, 0);
            while (n < 0 && errno == EINTR);
            // (short texts: no allocation here, this memory may be the runtime's)
            if (n != 1)
                die(ch, Step::Seccomp,
                    n < 0 ? Error::from_errno("recv", "agent ack")
                          : Error::message("listenerPath", "no agent"));
        }
    }
}

}  // namespace

namespace {

// A pool's sandbox, set up: it says so and waits for its command (pool/protocol.hpp), then
// goes on as a plain run's child with it: the command's argv, environment and PATH
// candidates, its working directory (resolved in the root as plan.cwd is), and the client's
// stdio. A fork-like child only (spawn.cpp): the strings are allocated in its own memory.
[[noreturn]] void exec_pooled(const SandboxPlan& plan, const ChildChannels& ch, StepClock& clock) {
    ControlMessage ready{ControlMessage::Ready, 0};
    [[maybe_unused]] ssize_t sent = ::send(ch.control_fd, &ready, sizeof ready, MSG_NOSIGNAL);
    auto frame = pool::recv_frame(ch.command_fd, pool::kMaxCommand, 3);
    if (!frame) {
        if (frame.error().errno_value() == EPIPE) ::_exit(125);  // the pool let it go unused
        die(ch, Step::Exec, frame.error());
    }
    auto command = pool::decode_command(frame->data);
    if (!command) die(ch, Step::Exec, command.error());
    if (frame->fds.size() != 3)
        die(ch, Step::Stdio, Error::message("pool", "the command came without its stdio"));
    ::close(ch.command_fd);
    SandboxPlan p = plan;
    p.argv = std::move(command->argv);
    p.env = std::move(command->env);
    p.exec_candidates = std::move(command->candidates);
    p.pid_env.clear();
    CommandArgs args(p);
    ChildChannels c = ch;
    c.command_fd = -1;
    c.argv = args.argv.data();
    c.sh_argv = args.sh_argv.data();
    c.envp = args.envp.data();
    c.pid_slots = args.pid_slots;
    // The client's umask, ignored signals, nice and (lowered) rlimits, as a plain run's command
    // gets them from the process that runs butter; its signal mask at the exec.
    if (auto r = command->context.apply(); !r) die(ch, Step::Rlimits, r.error());
    if (command->context.set) {
        sigemptyset(&c.original_mask);
        for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
            if ((command->context.mask >> (sig - 1)) & 1) sigaddset(&c.original_mask, sig);
        c.sigpipe_default = !((command->context.ignored >> (SIGPIPE - 1)) & 1);
    }
    if (::dup2(frame->fds[0].get(), 0) < 0)
        die(ch, Step::Stdio, Error::from_errno("dup2", "stdin"));
    if (c.stdout_fd < 0) c.stdout_fd = frame->fds[1].get();
    if (c.stderr_fd < 0) c.stderr_fd = frame->fds[2].get();
    if (auto r = enter_cwd(command->cwd); !r) die(ch, Step::Chdir, r.error());
    exec_command(p, c, clock);  // (frame's fds: close-on-exec, dup2'd there first)
}

}  // namespace

// The command's last steps, in the one order they must run (session before stdio, the fds
// closed before the filter, the filter last before execve), in one frame: with shared memory
// nothing here may allocate, and the steps read better in sequence than split apart.
void exec_command(const SandboxPlan& plan, const ChildChannels& ch, StepClock& clock) {
    if (ch.command_fd >= 0) exec_pooled(plan, ch, clock);
    // argv and envp were built by the supervisor (this process may share its memory, where
    // nothing allocated here would ever be freed); LISTEN_PID and WATCHDOG_PID get the pid of
    // this process as the command will see itself, in the room left for it.
    for (char* slot : ch.pid_slots)
        std::snprintf(slot, kPidSlot, "%d", static_cast<int>(butter::getpid()));

    ::pthread_sigmask(SIG_SETMASK, &ch.original_mask, nullptr);
    // As the caller had it: butter ignores SIGPIPE, and an ignored signal stays so at exec.
    ::signal(SIGPIPE, ch.sigpipe_default ? SIG_DFL : SIG_IGN);
    if (ch.default_signals)
        for (int sig = 1; sig < NSIG; ++sig)
            if (sig != SIGKILL && sig != SIGSTOP) (void)::signal(sig, SIG_DFL);
    if (plan.new_session && ::setsid() < 0) die(ch, Step::Session, Error::from_errno("setsid"));
    if (!plan.pty_ptmx.empty()) {
        if (auto r = make_terminal(plan, ch); !r) die(ch, Step::Session, r.error());
    } else if (ch.tty_fd >= 0) {
        // The pseudo-terminal becomes stdio and the controlling terminal of the new session.
        for (int fd = 0; fd < 3; ++fd)
            if (::dup2(ch.tty_fd, fd) < 0) die(ch, Step::Session, Error::from_errno("dup2", "tty"));
        if (::ioctl(0, TIOCSCTTY, 0) < 0)
            die(ch, Step::Session, Error::from_errno("ioctl(TIOCSCTTY)"));
    }
    if (plan.stdin_null && ::dup2(ch.null_fd, 0) < 0)
        die(ch, Step::Stdio, Error::from_errno("dup2", "stdin"));
    if (ch.stdout_fd >= 0 && ::dup2(ch.stdout_fd, 1) < 0)
        die(ch, Step::Stdio, Error::from_errno("dup2", "stdout"));
    if (ch.stderr_fd >= 0 && ::dup2(ch.stderr_fd, 2) < 0)
        die(ch, Step::Stdio, Error::from_errno("dup2", "stderr"));
    bool filtered = false;
    if (ch.start_fd >= 0) {
        // An OCI container's create: set up (its terminal made and sent: runc sends it at create);
        // `butter oci start` lets it go (child.hpp). A filter with a seccomp agent is loaded
        // first, as runc loads it, so that create can hand its listener to the agent.
        if (plan.seccomp_listener && !plan.seccomp.empty()) {
            load_filter(plan, ch);
            filtered = true;
        }
        ControlMessage ready{ControlMessage::Ready, 0};
        [[maybe_unused]] ssize_t sent = ::send(ch.control_fd, &ready, sizeof ready, MSG_NOSIGNAL);
        char go = 0;
        ssize_t n;
        do
            n = ::read(ch.start_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) ::_exit(125);
        ::close(ch.start_fd);
        report_failures_on_stderr();
    }
    if (plan.landlock_scopes != 0 || plan.landlock_fs != 0 || plan.landlock_net != 0) {
        // Before the ids and capabilities go: with CAP_SYS_ADMIN in its user namespace the
        // child may confine itself whether or not no_new_privs is set. Without one (the
        // tiers below namespaces) and without root, no_new_privs first: Landlock needs it.
        if (!plan.namespaces.has(Namespace::User) && !plan.privileged)
            if (auto r = set_no_new_privs(); !r) die(ch, Step::NoNewPrivs, r.error());
        if (auto r = confine(plan); !r) die(ch, Step::Landlock, r.error());
    }
    if (plan.seccomp_early && !plan.seccomp.empty() && !filtered) {
        load_filter(plan, ch);
        filtered = true;
    }
    StepError where{Step::Capabilities, -1, {}};
    if (plan.oci_caps) {
        if (auto r = set_oci_identity(plan, where); !r) die(ch, where.step, r.error());
    } else {
        if (auto r = set_identity(plan); !r) die(ch, Step::Identity, r.error());
        if (auto r = drop_privileges(plan, where); !r) die(ch, where.step, r.error());
    }
    // Without a pid namespace this process is the sandbox: it must still die with butter.
    if (!plan.namespaces.has(Namespace::Pid) && !rearm_parent_death(ch)) ::_exit(125);
    // An OCI config's startContainer hooks (create's process after start, or run's): in the
    // container, before the command, with its user and capabilities (as runc runs them after
    // finalizeNamespace): the hook is the image's file, never run with more than its command.
    if (!plan.start_container_hooks.empty())
        if (auto r = run_container_hooks(plan.start_container_hooks, ch); !r)
            die(ch, Step::Hooks, r.error());
    if (plan.child_subreaper && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        die(ch, Step::Session, Error::from_errno("prctl(PR_SET_CHILD_SUBREAPER)"));
    // Every fd above 2 closes at exec, the caller's leaks included; ours are needed until then.
    // Socket activation's fds 3.. stay open (and lose close-on-exec if they had it).
    unsigned first_closed = 3 + static_cast<unsigned>(plan.listen_fds);
    for (int fd = 3; fd < static_cast<int>(first_closed); ++fd)
        if (::fcntl(fd, F_SETFD, 0) < 0)
            die(ch, Step::CloseFds, Error::from_errno("fcntl(F_SETFD)", std::to_string(fd)));
    if (auto r = close_range(first_closed, ~0U, CLOSE_RANGE_CLOEXEC); !r)
        die(ch, Step::CloseFds, r.error());

    // The command's own limits, not init's: from here to the exec nothing allocates (with
    // RLIMIT_AS standing in for a memory cgroup, memory shared with the supervisor may be
    // over it already).
    if (auto r = set_rlimits(plan); !r) die(ch, Step::Rlimits, r.error());
    clock.mark(Step::Capabilities);
    if (!plan.notify_socket.empty()) {
        // Who the command is: the relay takes its last message even once it is gone. Its
        // credentials go with it (SO_PASSCRED on this end: the supervisor's may not ask yet).
        int on = 1;
        ControlMessage m{ControlMessage::CommandPid, 0};
        if (::setsockopt(ch.control_fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0) {
            [[maybe_unused]] ssize_t n = ::send(ch.control_fd, &m, sizeof m, MSG_NOSIGNAL);
        }
    }
    clock.send(ch.control_fd);  // before seccomp: a strict filter may not allow sending after
    if (!plan.seccomp.empty() && !filtered) load_filter(plan, ch);

    // As a shell words it: a directory named as the command "Is a directory", one met in a
    // PATH search skipped; else what the last candidate said, EACCES over ENOENT.
    int err = ENOENT;
    bool denied = false;
    for (const auto& path : plan.exec_candidates) {
        ::execve(path.c_str(), ch.argv, ch.envp);
        err = errno;
        if (err == ENOEXEC && ch.sh_argv) {
            ch.sh_argv[1] = const_cast<char*>(path.c_str());
            ::execve(ch.sh_argv[0], ch.sh_argv, ch.envp);
            err = ENOEXEC;  // no sh either: the file's own error
        }
        struct stat st {};
        if (err == EACCES && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            err = plan.exec_candidates.size() == 1 ? EISDIR : ENOENT;
        if (err == EACCES) denied = true;
        if (err != ENOENT && err != ENOTDIR && err != EACCES) break;
    }
    if (denied && (err == ENOENT || err == ENOTDIR)) err = EACCES;
    die(ch, Step::Exec, Error("execve", err, plan.argv.empty() ? "" : plan.argv[0]));
}

}  // namespace butter::launcher
