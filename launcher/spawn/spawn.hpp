// Starting a sandbox: one clone with every namespace flag and a pidfd, the close-on-exec
// failure pipe and the control socket, and the one round trip in which the parent writes what
// the child cannot (root mode's id maps, the cgroups) and lets it go.
//
// The child borrows the supervisor's memory (CLONE_VM, on a stack of its own) instead of a
// copy-on-write duplicate of it: no page tables to copy, no copy-on-write faults on either
// side, and the set-up code it runs is already mapped. This is what a fork costs most on a
// virtual machine with shadow page tables. The two take turns, as vfork's parent and child do:
// where the child waits for "go" (root mode's maps, cgroups) it touches nothing but its stack
// until then; the supervisor, from "go" (or the clone) until the failure pipe's EOF, nothing
// but its stack and raw system calls. EOF comes when the command has exec'd and init has
// entered its loop (child/init.cpp), which touches only its own stack from then on. While
// init lives the supervisor's memory is not dumpable (it is init's too, which the sandbox must
// not ptrace); it is again once init is reaped. A plan with a time namespace (the kernel refuses
// CLONE_VM into one) or a seccomp listener (the command may wait on the supervisor's answer
// before its exec) gets a fork-like child instead.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <butter/error.hpp>
#include <butter/fd.hpp>

#include <cstdint>
#include <memory>
#include <optional>

#include "child/child.hpp"
#include "plan/plan.hpp"

namespace butter::launcher {

// The shared-memory child's stack: mapped before the clone, unmapped once the child is gone.
class ChildStack {
  public:
    ChildStack() = default;
    // Under ASan the stack lies `below` bytes under the caller's frame (see spawn.cpp).
    [[nodiscard]] static Result<ChildStack> map(std::size_t size, std::size_t below = 2u << 20);
    ChildStack(ChildStack&& o) noexcept;
    ChildStack& operator=(ChildStack&& o) noexcept;
    ~ChildStack();
    bool in_use() const { return top_ != nullptr; }
    char* top() const { return top_; }

  private:
    void* base_ = nullptr;  // the mapping (none under ASan: part of the main stack)
    std::size_t size_ = 0;
    char* top_ = nullptr;
};

struct Sandbox {
    pid_t pid = 0;  // the sandbox's first process (its PID 1 with a pid namespace)
    Fd pidfd;
    Fd failure;  // read end of the failure pipe: a ChildFailure, or EOF at exec
    Fd control;  // the supervisor's end of the control socket
    // Shared memory: spawn waited for the set-up's end (the failure pipe's EOF), read the
    // failure record if one came, and noted when (CLOCK_MONOTONIC).
    bool waited = false;
    std::optional<ChildFailure> failure_record;
    std::int64_t setup_end_ns = 0;
    ChildStack stack;  // destroyed last: init may still run on it until it is reaped
    // The supervisor was dumpable before init, which shares its memory, made it not: it is
    // again once init is reaped (the next child must own its /proc files to write its maps).
    bool restore_dumpable = false;

    Sandbox() = default;
    Sandbox(Sandbox&&) = default;
    // Kills and reaps a PID 1 that still runs on `stack` before the stack goes.
    ~Sandbox();
    Sandbox& operator=(Sandbox&&) = delete;
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
    // While spawn waits for a shared-memory child's set-up: readable, they end it when SIGTERM
    // is pending (the signalfd) or the time limit is up (the timerfd): SIGKILL if the set-up
    // has not ended within the plan's stop_timeout (the command may already run, with init
    // about to take over, and then gets the stop signal as always).
    int signal_fd = -1;
    int timer_fd = -1;
    bool sigpipe_default = true;  // the command's SIGPIPE: default (else ignored)
};

// The sandbox child, cloned before butter has even parsed its command line: with the user and
// pid namespaces only, so that the clone is quick, and the child makes the rest at once (the
// network namespace is most of a start-up's kernel time) on the other CPU while the
// supervisor loads the profile and plans. spawn() takes it over when the plan asks for
// exactly these namespaces (the embedded default's, and those of most profiles) and a
// shared-memory child; otherwise it is killed and reaped and spawn clones one as always. It
// shares the supervisor's memory from the start, so until "go" it makes raw system calls on
// its own stack only (its signals blocked, the death signal armed); "go" carries every
// descriptor it needs but its end of the control socket as SCM_RIGHTS, and from there on it
// is a spawn child as any.
class EarlyChild {
  public:
    static constexpr Namespaces kNamespaces = Namespace::User | Namespace::Pid | Namespace::Mount |
                                              Namespace::Net | Namespace::Ipc | Namespace::Uts |
                                              Namespace::Cgroup;
    struct State;  // spawn.cpp

    EarlyChild();
    EarlyChild(EarlyChild&&) noexcept;
    EarlyChild& operator=(EarlyChild&&) noexcept;
    ~EarlyChild();  // kills and reaps a child that spawn did not take

    [[nodiscard]] static Result<EarlyChild> start();
    // Whether spawn takes it for `plan`.
    [[nodiscard]] static bool fits(const SandboxPlan& plan);
    bool started() const { return state_ != nullptr; }
    std::unique_ptr<State> take();
    // SIGKILL, not waited for (the destructor reaps it).
    void kill();

  private:
    std::unique_ptr<State> state_;
};

// `early`: taken if it fits the plan, else killed at once and reaped before spawn returns.
[[nodiscard]] Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                                    const SpawnExtras& extras = {}, EarlyChild early = {});

}  // namespace butter::launcher
