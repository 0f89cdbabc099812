// What spawn.cpp and early_child.cpp share: the early child's state, its "go".
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>

#include <butter/fd.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "spawn/spawn.hpp"

namespace butter::launcher {

// The child's stack: the set-up's frames, the command's until its exec (vfork), init's loop.
inline constexpr std::size_t kChildStackSize = 1 << 20;

struct EarlyChild::State {
    ChildStack stack;    // first: destroyed last, once the child is gone
    SocketPair control;  // the only descriptors made before the clone; the rest come with "go"
    pid_t pid = 0;
    Fd pidfd;
    // What the child reads: at its start (set before the clone and not written after it) ...
    int close_fd = -1;  // the supervisor's end
    int control_fd = -1;
    // ... and after "go" (set by spawn before it).
    const SandboxPlan* plan = nullptr;
    const ChildChannels* ch = nullptr;
    sigset_t mask{};  // the supervisor's at spawn: what a spawn child starts with
    bool lsan_disabled = false;
    std::atomic<bool> go_sent{false};  // set once "go" is on the socket (spawn asserts it)
    // The scheduler tends to queue the child behind the supervisor on the supervisor's CPU,
    // where the two would take turns: it is put on another one until "go" (by itself, should
    // it run first, and by the supervisor), and gets the supervisor's CPUs back after it.
    cpu_set_t one_cpu{};
    cpu_set_t all_cpus{};

    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
        if (!pidfd.valid()) return;
        (void)pidfd_send_signal(pidfd, SIGKILL);
        (void)waitid_pidfd(pidfd);
    }
};

// "go" for an early child: one byte and the descriptors it needs (early_child.cpp).
[[nodiscard]] Result<void> send_early_go(int socket, const ChildChannels& ch);

}  // namespace butter::launcher
