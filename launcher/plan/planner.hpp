// make_plan's stages (plan.cpp, identity.cpp, mounts.cpp): each reads the profile and the
// options, asks the host (host.hpp) what it must, and fills its part of the plan; every problem
// is a diagnostic with the profile's position.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "plan/host.hpp"
#include "plan/plan.hpp"

namespace butter::launcher {

// Whether a profile's list of capability names (capabilities.keep, keep_as_root) holds `cap`.
bool lists_capability(const std::vector<std::string>& names, int cap);

struct Planner {
    const profile::Profile& p;
    const PlanOptions& o;
    const HostFacts& host;
    profile::Diagnostics& out;
    SandboxPlan plan;
    std::vector<std::string> environment;        // the host's, read once (plan.env's keys view it)
    std::optional<std::size_t> home_index;       // filesystem(): the home tmpfs among the mounts
    std::optional<std::size_t> workspace_index;  // filesystem(): the workspace overlay's
    std::string etc;  // identity(): the host directory that is the sandbox's /etc, or ""

    void tier();        // the isolation tier, checked against the minimum (tier.cpp)
    void command();     // argv, environment, cwd, stdio, session
    void namespaces();  // the namespaces, Landlock scopes, hostname (identity.cpp)
    void identity();    // the command's ids and the user namespace's maps (identity.cpp)
    void filesystem();  // the root and every mount (mounts.cpp)
    void landlock();    // the Landlock layer over the mounts (landlock.cpp)
    void network();     // network.mode = "user": pasta, DNS, the nftables rules (network.cpp)
    void limits();
    void privileges();
    void supervision();  // stop, restart, notify, socket activation, the watchdog
    void output_and_watch();
    void host_view();  // below namespaces: the mounts as Landlock rules on host paths (tier.cpp)
    void seccomp();    // last: its diagnostics follow the rest's (a compile is the dearest step)

  private:
    // mounts.cpp
    void cli_binds(std::vector<profile::MountSpec>& specs) const;
    void home(std::vector<profile::MountSpec>& specs);
    std::string sandbox_etc() const;  // identity.cpp
    bool bind(const profile::MountSpec& m, MountStep& s, const std::vector<Home>& homes,
              std::vector<MountStep>& git_steps);
    bool overlay(const profile::MountSpec& m, MountStep& s, const std::vector<Home>& homes,
                 std::vector<MountStep>& git_steps, bool workspace);
    std::optional<MountStep> overlay_layer(const profile::MountSpec& m, const std::string& path,
                                           const std::string& target, bool upper);
    void workspace(std::vector<profile::MountSpec>& specs);
    void idmap_bind(const profile::MountSpec& m, const struct stat& st, MountStep& s);
    void idmap_read_only(uid_t uid, gid_t gid, MountStep& s) const;
    bool keeps_admin() const;
    bool protect_git(const profile::MountSpec& m, const MountStep& s,
                     std::vector<MountStep>& git_steps);
    bool on_root_fs(const std::string& target) const;
    bool take_target(const profile::MountSpec& m, const std::string& target,
                     std::map<std::string, profile::SourceLoc>& targets);
};

}  // namespace butter::launcher
