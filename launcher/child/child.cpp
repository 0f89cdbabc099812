// The child's setup, top to bottom. Each step is a function returning Result; the first
// failure is written to the parent as a ChildFailure and the child exits 125. The child
// allocates only what it must and never prints.
#include "child/child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <butter/fd.hpp>
#include <butter/hostname.hpp>
#include <butter/mount.hpp>
#include <butter/namespace.hpp>
#include <butter/net.hpp>
#include <butter/process.hpp>
#include <butter/splice.hpp>

namespace butter::launcher {

const char* step_name(Step s) {
    switch (s) {
        case Step::Namespaces:
            return "namespaces";
        case Step::IdMaps:
            return "user namespace id maps";
        case Step::WaitParent:
            return "waiting for the supervisor";
        case Step::Propagation:
            return "mount propagation";
        case Step::PrepareBinds:
            return "bind source";
        case Step::Root:
            return "root filesystem";
        case Step::Mount:
            return "mount";
        case Step::PivotRoot:
            return "pivot_root";
        case Step::Proc:
            return "/proc hardening";
        case Step::Sysctl:
            return "sysctl";
        case Step::ReadOnlyRoot:
            return "read-only root";
        case Step::Hostname:
            return "hostname";
        case Step::Network:
            return "network";
        case Step::Rlimits:
            return "resource limits";
        case Step::Chdir:
            return "working directory";
        case Step::Stdio:
            return "stdin";
        case Step::Session:
            return "new session";
        case Step::Identity:
            return "uid/gid";
        case Step::Capabilities:
            return "capabilities";
        case Step::NoNewPrivs:
            return "no_new_privs";
        case Step::CloseFds:
            return "closing inherited fds";
        case Step::Landlock:
            return "landlock";
        case Step::Seccomp:
            return "seccomp";
        case Step::Exec:
            return "exec";
        case Step::Init:
            return "init";
        case Step::Hooks:
            return "hooks";
    }
    return "setup";
}

Result<void> run_hook(const SandboxPlan::Hook& h, const std::string& state) {
    std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
    std::vector<std::string> env = h.env;
    std::vector<char*> argv, envp;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    BUTTER_ASSIGN_OR_RETURN(Pipe in, Pipe::create());
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork", "hook " + h.path);
    if (pid == 0) {
        ::setpgid(0, 0);             // its own group: a timeout kills what it started too
        ::signal(SIGPIPE, SIG_DFL);  // (the runtime ignores it)
        if (::dup2(in.read.get(), 0) < 0) ::_exit(126);
        ::execve(h.path.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    in.read.reset();
    [[maybe_unused]] ssize_t n = ::write(in.write.get(), state.data(), state.size());
    in.write.reset();
    int status = 0;
    if (h.timeout > 0) {
        // Its end or the timeout, whichever comes first (its pidfd turns readable at its exit).
        auto pfd = pidfd_open(pid);
        int ready = -1;
        if (pfd) {
            struct pollfd p {
                pfd->get(), POLLIN, 0
            };
            struct timespec limit {
                h.timeout, 0
            };
            do
                ready = ::ppoll(&p, 1, &limit, nullptr);  // (Linux: `limit` keeps what is left)
            while (ready < 0 && errno == EINTR);
        }
        if (ready <= 0) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            if (!pfd) return fail(std::move(pfd).error());
            if (ready < 0) return fail_errno("ppoll", "hook " + h.path);
            return fail(Error::message("hook", "timed out", h.path));
        }
    }
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail_errno("waitpid", "hook " + h.path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(Error::message(
            "hook",
            "failed (" +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
                ")",
            h.path));
    return {};
}

Result<void> run_container_hooks(const std::vector<SandboxPlan::Hook>& hooks,
                                 const ChildChannels& ch) {
    std::string state;
    char buf[4096];
    for (off_t at = 0;;) {
        ssize_t n = ::pread(ch.hook_state_fd, buf, sizeof buf, at);
        if (n < 0) return fail_errno("pread", "the container's state");
        if (n == 0) break;
        state.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    for (const auto& h : hooks)
        BUTTER_TRY(run_hook(h, state));
    return {};
}

namespace {
bool failures_on_stderr = false;
}

void report_failures_on_stderr() {
    failures_on_stderr = true;
}

void die(const ChildChannels& ch, Step step, const Error& e, int mount) {
    ChildFailure f;
    f.step = static_cast<std::uint32_t>(step);
    f.error = e.errno_value() != 0 ? e.errno_value() : EINVAL;
    f.mount = mount;
    std::strncpy(f.call, e.call(), sizeof f.call - 1);
    std::strncpy(f.context, e.context().c_str(), sizeof f.context - 1);
    std::strncpy(f.text, e.text().c_str(), sizeof f.text - 1);
    std::strncpy(f.hint, e.hint().c_str(), sizeof f.hint - 1);
    // One write of a small record to a pipe is atomic; nothing more can be done if it fails.
    [[maybe_unused]] ssize_t n = ::write(ch.error_fd, &f, sizeof f);
    if (failures_on_stderr) {
        // No one reads the pipe any more (the creator has exited): a line on stderr, which
        // the engine logs, as runc's init writes it.
        char line[512];
        int len =
            std::snprintf(line, sizeof line, "butter oci: %s: %s%s%s%s: %s\n", step_name(step),
                          f.call, f.context[0] ? "(\"" : "", f.context, f.context[0] ? "\")" : "",
                          f.text[0] ? f.text : ::strerror(f.error));
        if (len > 0) n = ::write(2, line, std::min(static_cast<std::size_t>(len), sizeof line - 1));
    }
    ::_exit(125);
}

namespace {

// The supervisor lets the child go once it has done what the child cannot (root mode's maps,
// the cgroups): one byte, or EOF if it gave up. Nothing to report either way if this fails.
void wait_for_parent(const ChildChannels& ch) {
    char go = 0;
    ssize_t n;
    do
        n = ::read(ch.control_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0) ::_exit(125);  // the supervisor is gone, or gave up
}

// A new audit session for the sandbox, inherited by all it starts, so that its seccomp records
// in the kernel log carry an id of their own (ses=) should the listener be refused
// (seccomp/kernel_log.hpp). Any process may set its login uid while none is set (not under
// a login session), to a uid mapped in its namespace; the kernel then assigns the next
// session id. Called while the process still owns its /proc entries (before its ids change
// and it stops being dumpable). Without /proc's loginuid, or with a login uid set: nothing,
// and the supervisor goes by each record's pid.
void take_audit_session(const ChildChannels& ch, std::uint32_t uid) {
    char text[16];
    int len = std::snprintf(text, sizeof text, "%u", uid);
    {
        auto fd = open("/proc/self/loginuid", O_WRONLY);
        if (!fd || ::write(fd->get(), text, static_cast<std::size_t>(len)) != len) return;
    }
    auto fd = open("/proc/self/sessionid", O_RDONLY);
    if (!fd) return;
    char buf[16] = {};
    if (::read(fd->get(), buf, sizeof buf - 1) <= 0) return;
    char* end = nullptr;
    unsigned long ses = std::strtoul(buf, &end, 10);
    if (end == buf || ses >= 0xffffffffUL) return;
    ControlMessage m{ControlMessage::AuditSession, static_cast<std::int32_t>(ses)};
    [[maybe_unused]] ssize_t n = ::send(ch.control_fd, &m, sizeof m, MSG_NOSIGNAL);
}

Result<void> setup_ids(const SandboxPlan& plan, const ChildChannels& ch, Step& step) {
    bool userns = plan.namespaces.has(Namespace::User);
    // First, and touching nothing but the stack: this process may share the supervisor's
    // memory, which is the supervisor's alone until "go" (spawn.hpp).
    if (ch.wait_for_parent) {
        step = Step::WaitParent;
        wait_for_parent(ch);
    }
    if (ch.late_cgroup_ns) {
        step = Step::Namespaces;
        BUTTER_TRY(unshare(Namespace::Cgroup));
    }
    step = Step::IdMaps;
    if (userns && plan.child_writes_maps) {
        BUTTER_TRY(write_setgroups(0, false));
        BUTTER_TRY(write_uid_map(0, plan.uid_map));
        BUTTER_TRY(write_gid_map(0, plan.gid_map));
    }
    if (plan.seccomp_listener && !plan.seccomp_base.empty())
        take_audit_session(ch, userns && !plan.child_writes_maps
                                   ? plan.setup_uid
                                   : static_cast<std::uint32_t>(::getuid()));
    if ((userns && !plan.child_writes_maps) || plan.joined_user_ns) {
        // Our host ids are unmapped in the new namespace until we take mapped ones; the
        // capabilities of the namespace's creator stay.
        step = Step::IdMaps;
        if (::setresgid(plan.setup_gid, plan.setup_gid, plan.setup_gid) < 0)
            return fail_errno("setresgid");
        if (::setresuid(plan.setup_uid, plan.setup_uid, plan.setup_uid) < 0)
            return fail_errno("setresuid");
    }
    if (plan.no_nested_user) {
        // The user/ sysctls are the writer's user namespace's: this one's, owned by us.
        auto fd = open("/proc/sys/user/max_user_namespaces", O_WRONLY);
        if (!fd) return fail(std::move(fd).error());
        if (::write(fd->get(), "0\n", 2) != 2)
            return fail_errno("write", "/proc/sys/user/max_user_namespaces");
    }
    return {};
}

}  // namespace

Result<void> enter_cwd(const std::string& cwd) {
    int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return fail_errno("open", "/");
    Fd r(root);
    auto dir = open_in_root(r, cwd.c_str(), O_PATH | O_DIRECTORY);
    if (!dir) return fail(Error("chdir", dir.error().errno_value(), cwd));
    if (::fchdir(dir->get()) < 0) return fail_errno("chdir", cwd);
    return {};
}

bool rearm_parent_death(const ChildChannels& ch) {
    if (ch.detached) return true;  // it outlives its creator (an OCI container)
    if (!set_parent_death_signal(SIGKILL)) return false;
    struct pollfd p {
        ch.parent_pidfd, POLLIN, 0
    };
    return !(ch.parent_pidfd >= 0 && ::poll(&p, 1, 0) == 1);
}

std::int64_t monotonic_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);  // the vDSO: no errno on success
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

void StepClock::mark(Step s) {
    if (!on || count == kMax) return;
    marks[count++] = {static_cast<std::uint32_t>(s), 0, monotonic_ns()};
}

void StepClock::send(int control_fd) const {
    if (!on) return;
    char buf[sizeof(ControlMessage) + sizeof marks];
    ControlMessage m{ControlMessage::Timings, static_cast<std::int32_t>(count)};
    std::memcpy(buf, &m, sizeof m);
    std::memcpy(buf + sizeof m, marks, count * sizeof(Mark));
    [[maybe_unused]] ssize_t n =
        ::send(control_fd, buf, sizeof m + count * sizeof(Mark), MSG_NOSIGNAL);
}

void run_child(const SandboxPlan& plan, const ChildChannels& ch) {
    StepClock clock;
    clock.on = plan.record_steps;
    // Die with the supervisor (again after each credential change below).
    if (!rearm_parent_death(ch)) ::_exit(125);

    Step step = Step::IdMaps;
    if (auto r = setup_ids(plan, ch, step); !r) die(ch, step, r.error());
    // An OCI container's first process is not dumpable from here (its id maps written: its
    // /proc/self is root's then) until its exec, as runc's init: a process of a pod's shared
    // pid namespace could otherwise ptrace it while it waits for start.
    if (plan.no_init)
        if (auto r = set_dumpable(false); !r) die(ch, Step::Namespaces, r.error());
    if (!rearm_parent_death(ch)) ::_exit(125);
    clock.mark(Step::IdMaps);

    for (auto [fd, kind] : ch.join_ns)  // (a file of another kind: EINVAL)
        if (::setns(fd, kind) < 0)
            die(ch, Step::Namespaces, Error::from_errno("setns", "linux.namespaces[].path"));
    if (plan.namespaces.has(Namespace::Mount)) {
        StepError where{Step::Propagation, -1, {}};
        if (auto r = build_rootfs(plan, ch, where); !r) die(ch, where.step, r.error(), where.mount);
        clock.mark(Step::Mount);
    }
    if (!plan.hostname.empty())
        if (auto r = sethostname(plan.hostname); !r) die(ch, Step::Hostname, r.error());
    if (!plan.domainname.empty())
        if (auto r = setdomainname(plan.domainname); !r) die(ch, Step::Hostname, r.error());
    if (plan.loopback_up)
        if (auto r = set_link_up("lo"); !r) die(ch, Step::Network, r.error());
    if (!plan.cwd.empty())
        if (auto r = enter_cwd(plan.cwd); !r) die(ch, Step::Chdir, r.error());
    clock.mark(Step::Hostname);

    if (!plan.namespaces.has(Namespace::Pid) || plan.no_init) exec_command(plan, ch, clock);
    // PID 1 stays as init; the command runs as its child.
    sigset_t init_signals = prepare_init_signals(plan);
    // Named and not dumpable before the command can run: with vfork, init resumes only after
    // the command's exec, and the command must never see an init it could ptrace. The name is
    // init's own; dumpable belongs to init's memory, which the command leaves at its exec and
    // which may be the supervisor's (spawn.hpp): whose it is stays undumpable while init lives,
    // so that nothing in the sandbox reaches the supervisor through init.
    (void)set_process_name("butter-init");
    if (auto r = set_dumpable(false); !r) die(ch, Step::Init, r.error());
    // vfork: the command borrows init's memory until its exec instead of getting a copy (no
    // page tables to copy and tear down, no copy-on-write faults on the way to exec: these
    // dominate start-up on a paravirtualized VM). init stays suspended meanwhile, and the
    // command never returns into init's frames: exec_command() execs or _exits.
    pid_t command = ::vfork();
    if (command < 0) die(ch, Step::Init, Error::from_errno("vfork"));
    if (command == 0) {
        clock.mark(Step::Init);
        exec_command(plan, ch, clock);
    }
    run_init(ch, command, init_signals, plan.uid, plan.gid);
}

}  // namespace butter::launcher
