// PID 1 of the sandbox. It holds no privilege, reaps every child (orphans are reparented to
// it), forwards the supervisor's signals to the command, and when the command exits sends its
// exact wait status to the supervisor and exits; the kernel then kills whatever is left in the
// pid namespace, so nothing outlives the command.
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <butter/capabilities.hpp>
#include <butter/process.hpp>

#include "child/child.hpp"
#include "child/raw.hpp"

namespace butter::launcher {

sigset_t prepare_init_signals(const SandboxPlan& plan) {
    // A namespace's init ignores signals whose disposition is the default, unless they are
    // blocked: the kernel never ignores a blocked signal (sig_ignored() checks the mask first),
    // so blocking the set *before* the command is forked is enough for sigwaitinfo to see
    // every one of them, SIGCHLD of a command that exits at once included. No handlers.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : plan.forward_signals)
        sigaddset(&set, sig);
    sigaddset(&set, SIGCHLD);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

namespace {

constexpr long kKernelSigsetSize = 8;  // the kernel's sigset_t: signals 1-64

// The rest of init's life. It may share its memory with the supervisor (spawn.cpp), which runs
// again once the failure pipe's last copy closes: from that close on, init touches only its
// own stack and the arguments it was given, through raw system calls (no errno, no heap, no
// libc state, no sanitizer runtime).
[[noreturn]] __attribute__((no_sanitize("address", "undefined"))) void init_loop(int control_fd,
                                                                                 int error_fd,
                                                                                 pid_t command,
                                                                                 sigset_t set) {
    raw::call(SYS_close, error_fd);  // only the command's copy remained: it closed at exec
    for (;;) {
        siginfo_t info;
        long sig = raw::call(SYS_rt_sigtimedwait, &set, &info, nullptr, kKernelSigsetSize);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            raw::call(SYS_kill, command, sig);
            continue;
        }
        int status = 0;
        long pid;
        while ((pid = raw::call(SYS_wait4, -1, &status, WNOHANG, nullptr)) > 0) {
            if (pid != command) continue;
            ControlMessage m{ControlMessage::CommandStatus, status};
            raw::call(SYS_sendto, control_fd, &m, sizeof m, MSG_NOSIGNAL, nullptr, 0);
            raw::call(SYS_exit_group,
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
    }
}

}  // namespace

void run_init(const ChildChannels& ch, pid_t command, const sigset_t& set, uid_t uid, gid_t gid) {
    // init keeps nothing it could be attacked for: no capabilities, not dumpable (already so
    // since before the command's vfork: the sandbox cannot ptrace it), no new privileges.
    // It forwards the supervisor's signals with kill(2), which a capless root may not aim at
    // another user's process (no user namespace, process.user set): it takes the command's
    // ids first, between locking its securebits and emptying its capability sets.
    auto drop = [&]() -> Result<void> {
        if (::getuid() == uid && ::getgid() == gid) return drop_all_locked();
        BUTTER_TRY(drop_bounding_all_but({}));
        BUTTER_TRY(set_securebits(locked_no_root_securebits()));
        if (::setgroups(0, nullptr) < 0) return fail_errno("setgroups");
        if (::setresgid(gid, gid, gid) < 0) return fail_errno("setresgid");
        if (::setresuid(uid, uid, uid) < 0) return fail_errno("setresuid");
        BUTTER_ASSIGN_OR_RETURN(Capabilities none, Capabilities::empty());
        return none.apply();
    };
    if (!drop() || !set_no_new_privs()) {
        ::kill(command, SIGKILL);
        ::_exit(125);
    }
    // Dropping capabilities is a credential change, which clears the parent-death signal: set
    // it again, and catch a supervisor that died in between.
    if (!rearm_parent_death(ch)) {
        ::kill(command, SIGKILL);
        ::_exit(125);
    }
    init_loop(ch.control_fd, ch.error_fd, command, set);
}

}  // namespace butter::launcher
