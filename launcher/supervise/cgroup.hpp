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

namespace butter::launcher {

struct RunOutcome;

class SandboxCgroups {
  public:
    // A limit whose cgroup could not be made, and why.
    struct Missing {
        const char* controller;  // "memory", "pids", "cpu"
        const char* key;         // "limits.memory", ...
        Error error;
    };
    // Creates the cgroups and writes the limits. A controller whose cgroup cannot be made is
    // left out and listed in missing(): the caller falls back or fails (supervisor.cpp).
    [[nodiscard]] static SandboxCgroups create(const SandboxPlan& plan);
    bool empty() const { return groups_.empty(); }
    const std::vector<Missing>& missing() const { return missing_; }
    // How each made limit is enforced, for the report ("cgroup v1 memory.limit_in_bytes").
    std::vector<std::pair<std::string, std::string>> enforcement() const;
    // Moves `pid` into every cgroup (the parent does this before letting the child go on).
    [[nodiscard]] Result<void> join(pid_t pid) const;
    // Peaks and limit hits into the outcome.
    void collect(RunOutcome& out) const;
    // Removes the cgroups (also done on destruction).
    void destroy();

  private:
    struct Group {
        std::string controller;
        Cgroup cgroup;
    };
    const Group* find(const char* controller) const;
    std::vector<Group> groups_;
    std::vector<Missing> missing_;
};

}  // namespace butter::launcher
