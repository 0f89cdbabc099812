// PID 1 of the sandbox. It holds no privilege, reaps every child (orphans are reparented to
// it), forwards the supervisor's signals to the command, and when the command exits sends its
// exact wait status to the supervisor and exits; the kernel then kills whatever is left in the
// pid namespace, so nothing outlives the command.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <butter/capabilities.hpp>
#include <butter/process.hpp>

#include "child/child.hpp"

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

void run_init(const ChildChannels& ch, pid_t command, const sigset_t& set) {
    ::close(ch.error_fd);  // only the command's copy remains: EOF at its exec

    // init keeps nothing it could be attacked for: no capabilities, not dumpable (already so
    // since before the command's vfork: the sandbox cannot ptrace it), no new privileges.
    if (!drop_all_locked() || !set_no_new_privs()) {
        ::kill(command, SIGKILL);
        ::_exit(125);
    }
    // Dropping capabilities is a credential change, which clears the parent-death signal: set
    // it again, and catch a supervisor that died in between.
    if (!rearm_parent_death(ch)) {
        ::kill(command, SIGKILL);
        ::_exit(125);
    }

    for (;;) {
        siginfo_t info;
        int sig = ::sigwaitinfo(&set, &info);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            ::kill(command, sig);
            continue;
        }
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != command) continue;
            ControlMessage m{ControlMessage::CommandStatus, status};
            [[maybe_unused]] ssize_t n = ::send(ch.control_fd, &m, sizeof m, MSG_NOSIGNAL);
            ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
    }
}

}  // namespace butter::launcher
