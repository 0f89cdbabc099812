// The command's ids and privileges: supplementary groups, gid, uid, then capabilities and
// no_new_privs (a failure of any is fatal: a sandbox never runs with more than it asked for).
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butter/capabilities.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>

#include "child/child.hpp"

namespace butter::launcher {

Result<void> set_identity(const SandboxPlan& plan) {
    if (!plan.groups.empty()) {
        if (::setgroups(plan.groups.size(), plan.groups.data()) < 0) return fail_errno("setgroups");
    } else if (plan.clear_groups && ::setgroups(0, nullptr) < 0) {
        return fail_errno("setgroups");
    }
    if (plan.umask) ::umask(*plan.umask);
    if (::setresgid(plan.gid, plan.gid, plan.gid) < 0)
        return fail_errno("setresgid", std::to_string(plan.gid));
    if (::setresuid(plan.uid, plan.uid, plan.uid) < 0)
        return fail_errno("setresuid", std::to_string(plan.uid));
    return {};
}

Result<void> drop_privileges(const SandboxPlan& plan, StepError& where) {
    where.step = Step::Capabilities;
    if (!plan.namespaces.has(Namespace::User) && (!plan.privileged || plan.uid != 0)) {
        // No user namespace (the tiers below namespaces): an unprivileged host id now (root's
        // are gone with its setresuid), whose capabilities may only be lowered; no_new_privs
        // keeps file capabilities and set-id programs from giving any back.
        BUTTER_TRY(clear_ambient());
        BUTTER_ASSIGN_OR_RETURN(Capabilities none, Capabilities::empty());
        BUTTER_TRY(none.apply());
    } else if (plan.keep_caps.empty()) {
        // Locked no-root securebits and empty sets: nothing is regained at exec, even as uid 0,
        // without walking the bounding set one capability at a time.
        BUTTER_TRY(drop_all_locked());
    } else {
        BUTTER_TRY(drop_all_but(plan.keep_caps));
    }
    where.step = Step::NoNewPrivs;
    if (plan.no_new_privs) BUTTER_TRY(set_no_new_privs());
    return {};
}

Result<void> set_oci_identity(const SandboxPlan& plan, StepError& where) {
    const SandboxPlan::CapabilitySets& c = *plan.oci_caps;
    where.step = Step::Capabilities;
    BUTTER_TRY(drop_bounding_all_but(c.bounding));  // (needs CAP_SETPCAP: before the ids)
    if (::prctl(PR_SET_KEEPCAPS, 1) < 0) return fail_errno("prctl(PR_SET_KEEPCAPS)");
    where.step = Step::Identity;
    BUTTER_TRY(set_identity(plan));
    where.step = Step::Capabilities;
    BUTTER_ASSIGN_OR_RETURN(Capabilities caps, Capabilities::empty());
    BUTTER_TRY(caps.set(CapFlag::Effective, c.effective, true));
    BUTTER_TRY(caps.set(CapFlag::Permitted, c.permitted, true));
    BUTTER_TRY(caps.set(CapFlag::Inheritable, c.inheritable, true));
    BUTTER_TRY(caps.apply());
    BUTTER_TRY(clear_ambient());
    for (int cap : c.ambient.list())
        BUTTER_TRY(set_ambient(cap, true));
    if (::prctl(PR_SET_KEEPCAPS, 0) < 0) return fail_errno("prctl(PR_SET_KEEPCAPS)");
    where.step = Step::NoNewPrivs;
    if (plan.no_new_privs) BUTTER_TRY(set_no_new_privs());
    return {};
}

}  // namespace butter::launcher
