// The sandbox's cgroups: one per controller that a [limits] key needs (memory, pids, cpu),
// created below butter's own cgroup in whichever hierarchy holds the controller (v2 when the
// unified hierarchy has it, else v1), joined by the sandbox's first process before it forks
// the command, read for peaks and limit hits, and removed at the end.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <butter/cgroup.hpp>
#include <butter/error.hpp>

#include "plan/plan.hpp"
#include "supervise/log.hpp"
#include "supervise/supervisor.hpp"

namespace butter::launcher {

class SandboxCgroups {
  public:
    // A limit whose cgroup could not be made, and why.
    struct Missing {
        const char* controller;  // "memory", "pids", "cpu"
        const char* key;         // "limits.memory", ...
        Error error;
    };
    // How far butter may go to get a cgroup, beyond making one below its own.
    struct Access {
        // cgroup v2: move this process into a leaf of its own cgroup so that the controllers
        // can be enabled there (enable_subtree_controller). The butter program's choice; a
        // library caller's process stays in its cgroup.
        bool move_self = false;
        // Called once when a cgroup cannot be made where butter is: may move this process
        // into a new delegated cgroup (a systemd scope, cli/systemd_scope.hpp) and say so.
        std::function<Result<void>()> new_scope;
    };
    // Creates the cgroups (one per hierarchy: on v2, one for all controllers) and writes the
    // limits. A controller whose cgroup cannot be made is left out and listed in missing():
    // the caller falls back or fails (supervisor.cpp).
    [[nodiscard]] static SandboxCgroups create(const SandboxPlan& plan, const Access& access);
    bool empty() const { return groups_.empty(); }
    const std::vector<Missing>& missing() const { return missing_; }
    // How each made limit is enforced, for the report ("cgroup v1 memory.limit_in_bytes").
    std::vector<std::pair<std::string, std::string>> enforcement() const;
    // Moves `pid` into every cgroup (the parent does this before letting the child go on).
    [[nodiscard]] Result<void> join(pid_t pid) const;
    // Peaks and limit hits into the outcome.
    void collect(RunOutcome& out) const;
    // Removes the cgroups (also done on destruction); one that cannot be removed is a warning
    // in `log`.
    void destroy(Log* log = nullptr);

  private:
    struct Group {
        std::string controller;
        std::size_t cgroup;  // in cgroups_
    };
    const Cgroup* find(const char* controller) const;
    // The cgroup for a controller's hierarchy: made with the limits, or one made already for
    // another controller of the same hierarchy (cgroup v2).
    Result<std::size_t> make(const char* controller, const std::string& name,
                             const SandboxPlan& plan, bool move_self);
    std::vector<Cgroup> cgroups_;
    bool in_own_scope_ = false;  // moved into a scope of its own (Access::new_scope)
    std::vector<Group> groups_;
    std::vector<Missing> missing_;
};

// A limit whose cgroup cannot be made never vanishes silently: pids and memory fall back to
// rlimits that hold in the sandbox (RLIMIT_NPROC counts only the sandbox's processes in its
// own user namespace; RLIMIT_AS bounds each process's address space, shared and file mappings
// included, but neither the total nor memory that no mapping holds: memfd contents, pipes),
// and a limit nothing can hold fails the run unless the profile says limits.optional.
struct LimitFallbacks {
    std::vector<Rlimit> rlimits;
    std::vector<RunOutcome::LimitHeld> held;  // every limit of the plan, and how it holds
};

[[nodiscard]] Result<LimitFallbacks> limit_fallbacks(const SandboxPlan& plan,
                                                     const SandboxCgroups& cgroups, Log& log);

}  // namespace butter::launcher
