// Starting a sandbox: one clone3 with every namespace flag and a pidfd, the close-on-exec
// failure pipe and the control socket, and (root mode only) the one round trip in which the
// parent writes the id maps the child cannot write itself.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <butter/error.hpp>
#include <butter/fd.hpp>

#include "plan.hpp"

namespace butter::launcher {

struct Sandbox {
    pid_t pid = 0;  // the sandbox's first process (its PID 1 with a pid namespace)
    Fd pidfd;
    Fd failure;  // read end of the failure pipe: a ChildFailure, or EOF at exec
    Fd control;  // the supervisor's end of the control socket
};

// Clones the sandbox and returns once the child runs on its own. `original_mask` is the
// caller's signal mask from before the supervisor blocked its signals; the command gets it back.
class SandboxCgroups;

// What a spawn adds to the plan at run time.
struct SpawnExtras {
    int stdout_fd = -1;  // the command's output (-1: butter's own)
    int stderr_fd = -1;
    const SandboxCgroups* cgroups = nullptr;  // joined before the child goes on
    int tty_fd = -1;                          // session = "pty": the terminal's slave
};

[[nodiscard]] Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                                    const SpawnExtras& extras = {});

}  // namespace butter::launcher
