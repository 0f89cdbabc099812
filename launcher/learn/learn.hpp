// `butter learn`: the learning run's profile (BASE's, with a read-only view of the host's own
// directories, its seccomp denials and path calls sent to the supervisor, and network.mode =
// "user" with network.audit), and the profile written from what that run did: BASE extended by
// exactly the mounts, syscalls, destinations and limits it used, each line with a comment that
// says what was seen. The text depends only on what was seen (sorted, no counts or times that
// vary), so that two learns of the same program write the same bytes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "profile/schema.hpp"
#include "profile/value.hpp"
#include "supervise/supervisor.hpp"

namespace butter::launcher::learn {

// The host's top-level directories that BASE's plan does not mount, read-only, for the learning
// run to find what it reads outside BASE: not /proc, /sys, /dev, /run (sockets of the host's
// services), /tmp, /boot or lost+found, nor one the caller may not list.
std::vector<profile::MountSpec> host_view(const SandboxPlan& base_plan);

// The learning run's profile: `base` with the host view before its own mounts, seccomp.learn
// and report, and (when `network` and BASE has no network of its own) mode = "user" with
// network.audit and no allow-list.
profile::Profile learning_profile(const profile::Profile& base, const SandboxPlan& base_plan,
                                  bool network);

struct Input {
    std::string extends;           // what the profile's `extends` names
    const profile::Value* tree;    // BASE's merged tree (with the --set overrides)
    const profile::Profile* base;  // BASE, typed
    const SandboxPlan* base_plan;
    const RunOutcome* outcome;  // the learning run's
    std::vector<std::string> command;
    std::vector<std::string> sets;  // the --set overrides the run had (said in a comment)
    std::string network_note;       // why the network was not learned ("" when it was)
    // --merge: a profile written by an earlier learn, whose additions are kept.
    const profile::Value* merge = nullptr;
    std::string merge_name;
};

// The learned profile's text (TOML).
std::string propose(const Input& in);

// The report's hints for a run that was denied something: `add "keyctl" to seccomp.allow`,
// `add "example.org:443" to network.allow`.
std::vector<std::string> hints(const SandboxPlan& plan, const RunOutcome& outcome);

}  // namespace butter::launcher::learn
