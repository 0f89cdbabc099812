// An OCI bundle's config.json (runtime-spec 1.x) mapped onto butter's plan: the same child, the
// same mounts, filters and identities as a profile's run, planned from the config instead of a
// profile (what a profile has no key for, such as a kernel file system mount or an rlimit's own
// hard value, is a plan field the config alone sets). Unknown fields are warnings (runc and crun
// ignore them); fields butter cannot honour are errors naming their JSON pointer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <butter/error.hpp>
#include <butter/namespace.hpp>

#include "plan/plan.hpp"

namespace butter::launcher::oci {

// hooks.prestart, ...: a program run with the container's state on stdin.
using Hook = SandboxPlan::Hook;

struct Config {
    std::string oci_version;
    std::string bundle;  // absolute
    SandboxPlan plan;
    bool terminal = false;
    // linux.cgroupsPath and linux.resources (runtime.cpp makes and fills the cgroups).
    std::string cgroups_path;
    std::optional<std::int64_t> memory_limit, memory_swap, pids_limit, cpu_quota;
    std::optional<std::uint64_t> cpu_period, cpu_shares;
    std::optional<int> oom_score_adj;
    // linux.seccomp.listenerPath and listenerMetadata: the seccomp agent that gets the filter's
    // listener (SCMP_ACT_NOTIFY) and the container's process state.
    std::string seccomp_agent, seccomp_agent_metadata;
    // "prestart", "createRuntime", "poststart", "poststop" -> hooks, in order.
    std::map<std::string, std::vector<Hook>> hooks;
    std::map<std::string, std::string> annotations;
    // linux.namespaces with a path: joined (setns) instead of made.
    std::vector<std::pair<Namespace, std::string>> join;
    bool joins(Namespace kind) const {
        for (const auto& j : join)
            if (j.first == kind) return true;
        return false;
    }
    bool pid_ns_joined() const { return joins(Namespace::Pid); }
    std::vector<std::string> warnings;  // "config.json: /process/apparmorProfile: ignored ..."
    // The file as read: create keeps it in the container's state directory, and exec reads
    // that copy (what the bundle holds later, the container's own writes included, changes
    // nothing of a container made).
    std::string text;
};

// `origin` names the file in errors ("/b/config.json: /process/args: ..."); the bundle's
// relative paths (root.path) are taken from `bundle`. `for_exec`: for a process joining the
// container, whose file system exists: the root and the mounts' host paths are not resolved.
[[nodiscard]] Result<Config> parse_config(std::string_view json, const std::string& bundle,
                                          const std::string& origin, bool for_exec = false);
// `butter oci exec`'s process (a config's "process" object alone) in place of the config's.
[[nodiscard]] Result<void> apply_process(std::string_view json, const std::string& origin,
                                         Config& c);
// BUNDLE/config.json.
[[nodiscard]] Result<Config> load_config(const std::string& bundle);

// `butter oci spec`: a config.json to start from (runc spec's), for rootless use with
// `rootless` (a user namespace mapping the caller's ids to root).
std::string default_spec(bool rootless);
// `butter oci features` (runtime-spec features.md).
std::string features_json();

// The JSON text of a string (quotes and escapes included).
std::string json_string(std::string_view s);

}  // namespace butter::launcher::oci
