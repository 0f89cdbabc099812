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

#include "plan.hpp"

namespace butter::launcher {

struct RunOutcome;

class SandboxCgroups {
  public:
    // Creates the cgroups and writes the limits. A controller without a writable cgroup is an
    // error, or (limits.optional) a warning passed to `warn` and no limit.
    [[nodiscard]] static Result<SandboxCgroups> create(
        const SandboxPlan& plan, const std::function<void(const std::string&)>& warn);
    bool empty() const { return groups_.empty(); }
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
};

}  // namespace butter::launcher
