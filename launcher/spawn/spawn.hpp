// Starting a sandbox: one clone with every namespace flag and a pidfd, the close-on-exec
// failure pipe and the control socket, and the one round trip in which the parent writes what
// the child cannot (root mode's id maps, the cgroups) and lets it go.
//
// Three clone modes (SpawnMode):
// - shared memory (the butter program's, where the plan allows): the child borrows the
//   supervisor's memory (CLONE_VM, on a stack of its own) instead of a copy-on-write duplicate
//   of it: no page tables to copy, no copy-on-write faults on either side, and the set-up code
//   it runs is already mapped. This is what a fork costs most on a virtual machine with shadow
//   page tables. Not with a time namespace (the kernel refuses CLONE_VM into one) or a seccomp
//   listener (the command may wait on the supervisor's answer before its exec).
// - fork-like (clone3 without CLONE_VM): the fallback, and a switch (BUTTER_SPAWN=fork) that CI
//   runs the integration suite with, so that the shared-memory path is not the only one tested.
// - library (butter/sandbox.hpp): fork-like, from a single-threaded intermediate made by
//   glibc's fork (which holds malloc's locks across it: other threads of an embedder may be
//   allocating) that clones the sandbox with CLONE_PARENT, so the sandbox is the caller's
//   child and nothing of the caller's process changes.
//
// The shared-memory protocol. The supervisor (S) and the child (C) share every page but
// their stacks, and take turns as vfork's parent and child do:
//  1. Before the clone, S builds everything C reads (the plan, ChildChannels, argv and envp,
//     the id maps' text) and maps C's stack; C never writes to S's data but its own stack and
//     what is its own from "go" on.
//  2. From the clone until "go" (when C waits for it: root mode's maps, cgroups, an early
//     child), C touches nothing but its stack through raw system calls (raw.hpp).
//  3. From "go" (or the clone, when C does not wait) until the failure pipe's EOF, S touches
//     nothing but its stack through raw system calls (wait_for_setup): C owns the heap then.
//  4. EOF comes when every copy of the pipe's write end is closed: the command's at its exec,
//     init's once it has entered its loop (child/init.cpp), which from then on touches only
//     its own stack. A failure record on the way is C's last write.
//  5. While init lives, S is not dumpable (init shares S's memory, and the sandbox must not be
//     able to ptrace it); S is dumpable again once init is reaped, and C's stack is unmapped
//     only then (Sandbox::~Sandbox).
// spawn() asserts what it can of these (the order of "go", the wait, the stack's owner).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <butter/error.hpp>
#include <butter/fd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

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

enum class SpawnMode {
    Auto,     // shared memory where the plan allows it, else fork-like (the butter program)
    Fork,     // always fork-like (BUTTER_SPAWN=fork)
    Library,  // fork-like from a single-threaded intermediate, as the sandbox's sibling
};

// BUTTER_SPAWN from the environment: unset or "auto", "fork"; anything else is an error.
[[nodiscard]] Result<SpawnMode> spawn_mode_from_env();

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
    bool sigpipe_default = true;   // the command's SIGPIPE: default (else ignored)
    bool default_signals = false;  // every disposition back to its default before exec
    SpawnMode mode = SpawnMode::Auto;
    // The last thing before the child goes on, while it waits (network.mode = "user" connects
    // its network namespace: supervise/network.hpp): the sandbox's pid and pidfd. An error
    // ends the spawn.
    std::function<Result<void>(pid_t, int)> before_go;
    // An OCI container's create and run (launcher/oci, child.hpp's ChildChannels): it outlives
    // its creator, waits on `start_fd`, enters `join_ns`, sends its terminal to `console_fd`.
    bool detached = false;
    int start_fd = -1;
    std::vector<std::pair<int, int>> join_ns = {};  // (fd, CLONE_NEW*)
    // A pid namespace to start the child in (>= 0: SpawnMode::Fork only): entered for the
    // clone alone (setns, then back to this process's own).
    int pid_ns_fd = -1;
    // A user namespace to start the child in (>= 0: SpawnMode::Fork only): an intermediate
    // process enters it (and pid_ns_fd's), clones the child with the plan's new namespaces
    // (owned by it) as this process's own, and exits.
    int user_ns_fd = -1;
    int time_ns_fd = -1;  // (the same, for a time namespace: the intermediate enters it)
    // The state for the in-container hooks (ChildChannels::hook_state_fd).
    int hook_state_fd = -1;
    // The cgroup namespace made by the child after "go" (once before_go has put it in its
    // cgroups), so that it is rooted there.
    bool late_cgroup_ns = false;
    int console_fd = -1;
    int command_fd = -1;  // a pool's sandbox: ChildChannels::command_fd (fork-like only)
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

// Whether spawn's error is the host refusing the namespaces (clone's, unshare's, root's copies
// of host mounts, or the id maps the supervisor writes as root): the isolation tiers' cue to fall
// back (plan/tier.cpp). The child's own refusals come as SandboxOutcome::isolation_refused.
bool host_refused_namespaces(const Error& e);

// `early`: taken if it fits the plan, else killed at once and reaped before spawn returns.
[[nodiscard]] Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                                    const SpawnExtras& extras = {}, EarlyChild early = {});

}  // namespace butter::launcher
