// The plan's namespaces and ids: which namespaces, what Landlock scopes, the hostname, the
// command's uid and gid, and the user namespace's maps (written by the child without root, by
// the parent with it).
#include <algorithm>
#include <cstdlib>

#include "plan/planner.hpp"

namespace butter::launcher {

using profile::error_at;
using profile::MountType;
using profile::warning_at;

namespace {

std::optional<uid_t> parse_id(const std::string& s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
    unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
    if (v > 4294967294UL) return std::nullopt;
    return static_cast<uid_t>(v);
}

}  // namespace

void Planner::namespaces() {
    const auto& ns = p.namespaces;
    Namespaces n;
    if (ns.user) n |= Namespace::User;
    if (ns.mount) n |= Namespace::Mount;
    if (ns.pid) n |= Namespace::Pid;
    if (ns.uts) n |= Namespace::Uts;
    if (ns.ipc) n |= Namespace::Ipc;
    bool host_net = p.network.mode == profile::NetworkMode::Host;
    if (ns.net && !host_net) n |= Namespace::Net;
    if (ns.cgroup) n |= Namespace::Cgroup;
    if (ns.time) n |= Namespace::Time;
    if (!ns.net && !host_net)
        out.push_back(error_at(p.loc_of("network.mode"),
                               std::string("network.mode \"") +
                                   (p.network.mode == profile::NetworkMode::None   ? "none"
                                    : p.network.mode == profile::NetworkMode::User ? "user"
                                                                                   : "loopback") +
                                   "\" needs namespaces.net = true"));
    // Below the namespaces tier (tier.cpp): the host's own namespaces, every one.
    const bool host_view = plan.tier < profile::Tier::Namespaces;
    if (host_view) n = Namespaces{};
    plan.namespaces = n;
    plan.no_nested_user = n.has(Namespace::User) && !ns.nested_user;
    // "none" as Docker's --network none and bubblewrap's --unshare-net have it: an empty
    // network namespace whose loopback is up (test suites start servers on localhost);
    // "loopback" is its older name.
    plan.loopback_up = n.has(Namespace::Net);
    LandlockScopes can =
        plan.tier == profile::Tier::Seccomp ? LandlockScopes{} : host.landlock_scopes();
    LandlockScopes scopes;
    if (!n.has(Namespace::Pid)) {
        // The host's pid namespace: butter and the caller's other processes are in sight, and
        // without privileges they run as the sandbox's own host uid, which may signal them
        // (stop butter, and its time limit with it). Landlock (ABI 6) scopes signals to the
        // sandbox's own processes; where the kernel cannot, a sandbox under butter's own uid
        // is refused (as root the sandbox's ids are not butter's).
        if (can.has(LandlockScope::Signal))
            scopes |= LandlockScope::Signal;
        else if (!plan.privileged && !host_view)  // (a tier below says so: plan.uncovered)
            out.push_back(error_at(
                p.loc_of("namespaces.pid"),
                "namespaces.pid = false: this kernel cannot keep the sandbox from signalling "
                "butter and your other processes (Landlock ABI 6, Linux 6.12); keep "
                "namespaces.pid = true"));
    }
    if (!n.has(Namespace::Net)) {
        // The host's network namespace holds the host's abstract unix sockets: Landlock (ABI 6,
        // Linux 6.12) scopes them out. Older kernels cannot: said, not hidden.
        if (can.has(LandlockScope::AbstractUnixSocket))
            scopes |= LandlockScope::AbstractUnixSocket;
        else if (!host_view)
            out.push_back(warning_at(
                p.loc_of("network.mode"),
                "the host's network: this kernel cannot keep the host's abstract unix sockets "
                "(X11, D-Bus) out of reach (Landlock ABI 6, Linux 6.12)"));
    }
    plan.landlock_scopes = scopes.raw();
    if (!ns.mount && !p.filesystem.mounts.empty())
        out.push_back(error_at(p.loc_of("namespaces.mount"),
                               "filesystem.mounts need namespaces.mount = true"));
    if (!ns.uts && p.locs.count("filesystem.hostname"))
        out.push_back(
            error_at(p.loc_of("filesystem.hostname"), "a hostname needs namespaces.uts = true"));
    plan.hostname = n.has(Namespace::Uts) ? p.filesystem.hostname : "";
}

// The host directory that will be the sandbox's /etc, for its user and group names: the last
// bind onto /etc (over the root), else the root directory's; "" when it has none of its own.
std::string Planner::sandbox_etc() const {
    std::string dir = p.filesystem.root != "tmpfs" ? p.filesystem.root + "/etc" : "";
    for (const auto& m : p.filesystem.mounts)
        if (m.type == MountType::Bind && normalize_target(m.target) == "/etc") dir = m.source;
    for (const auto& [src, dst] : o.binds)
        if (normalize_target(dst.empty() ? src : dst) == "/etc") dir = src;
    for (const auto& [src, dst] : o.ro_binds)
        if (normalize_target(dst.empty() ? src : dst) == "/etc") dir = src;
    return dir;
}

void Planner::identity() {
    const auto& ns = p.namespaces;
    uid_t caller_uid = host.uid();
    gid_t caller_gid = host.gid();
    etc = sandbox_etc();
    auto resolve = [&](const std::string& spec, bool is_group) -> std::optional<std::uint32_t> {
        std::string key = is_group ? "process.group" : "process.user";
        if (spec == "keep")
            return plan.privileged && ns.user ? 0 : (is_group ? caller_gid : caller_uid);
        if (auto id = parse_id(spec)) return *id;
        if (auto id = is_group ? host.group_id(spec, etc) : host.user_id(spec, etc)) return *id;
        out.push_back(error_at(p.loc_of(key), key + ": no " + (is_group ? "group" : "user") +
                                                  " named '" + spec + "'"));
        return std::nullopt;
    };
    std::optional<std::uint32_t> uid = resolve(p.process.user, false);
    std::optional<std::uint32_t> gid = resolve(p.process.group, true);
    // A named user without a group gets that user's primary group.
    if (p.process.group == "keep" && p.process.user != "keep" && uid)
        gid = host.primary_group(*uid, etc).value_or(*uid);
    if (!uid || !gid) return;
    plan.uid = *uid;
    plan.gid = *gid;
    if (plan.tier < profile::Tier::Namespaces) {
        // No user namespace: the command's ids are host ids. Without root, the caller's own
        // (uid 0 inside, as a namespaced profile may ask, becomes the caller).
        if (!plan.privileged) {
            if (*uid == 0) plan.uid = caller_uid;
            if (*gid == 0) plan.gid = caller_gid;
            if (plan.uid != caller_uid)
                out.push_back(error_at(p.loc_of("process.user"),
                                       "process.user: without a user namespace (the " +
                                           std::string(to_string(plan.tier)) +
                                           " tier) the command runs as you"));
            if (plan.gid != caller_gid)
                out.push_back(error_at(p.loc_of("process.group"),
                                       "process.group: without a user namespace (the " +
                                           std::string(to_string(plan.tier)) +
                                           " tier) only your own gid"));
        }
        if (plan.privileged && p.process.user == "keep") {
            // As in the namespaces tier, root's "keep" is the sandbox's range: uid 0 inside
            // is an unprivileged host id there, and the command runs as that id here.
            plan.uid = host.root_range(false).outside;
            plan.gid = host.root_range(true).outside;
            // A root whose own user namespace does not map that range (a container's):
            // nobody, if it is mapped; else no unprivileged id to run as.
            if (!host.id_mapped(plan.uid, false) || !host.id_mapped(plan.gid, true)) {
                plan.uid = plan.gid = 65534;
                if (!host.id_mapped(plan.uid, false) || !host.id_mapped(plan.gid, true))
                    out.push_back(error_at(
                        p.loc_of("process.user"),
                        "process.user: without a user namespace (the " +
                            std::string(to_string(plan.tier)) +
                            " tier) root's command runs as an unprivileged id, and this user "
                            "namespace maps none (not even 65534)"));
            }
        } else if (plan.privileged && (plan.uid == 0 || plan.gid == 0)) {
            out.push_back(error_at(p.loc_of(plan.uid == 0 ? "process.user" : "process.group"),
                                   std::string(plan.uid == 0 ? "process.user" : "process.group") +
                                       ": 0 would be the host's root without a user namespace "
                                       "(the " +
                                       to_string(plan.tier) + " tier); use \"keep\""));
        }
        plan.clear_groups = plan.privileged;
        plan.setup_uid = plan.uid;
        plan.setup_gid = plan.gid;
        return;
    }
    if (ns.user && !plan.privileged) {
        // Unprivileged: one mapping of the caller's own ids, written by the child itself.
        if (*uid != caller_uid && *uid != 0)
            out.push_back(error_at(p.loc_of("process.user"),
                                   "process.user: without root, the sandbox can only run as your "
                                   "own uid (\"keep\") or as 0"));
        bool user_refused = *uid != caller_uid && *uid != 0;
        // A group taken from a refused user's passwd entry: that user's error says it all.
        bool derived = p.process.group == "keep" && p.process.user != "keep";
        if (*gid != caller_gid && *gid != 0 && !(derived && user_refused))
            out.push_back(error_at(p.loc_of("process.group"),
                                   "process.group: without root, only your own gid or 0"));
        plan.uid_map = {{*uid, caller_uid, 1}};
        plan.gid_map = {{*gid, caller_gid, 1}};
        plan.child_writes_maps = true;
    } else if (ns.user) {
        // Root: uid 0 inside is never uid 0 outside. "keep" maps a subordinate range (uid 0
        // inside = its first id); an explicit id maps to itself.
        plan.child_writes_maps = false;
        plan.clear_groups = true;
        if (p.process.user == "keep") {
            plan.uid_map = {host.root_range(false)};
            plan.gid_map = {host.root_range(true)};
        } else {
            if (*uid == 0)
                out.push_back(error_at(p.loc_of("process.user"),
                                       "process.user: 0 inside a user namespace maps to an "
                                       "unprivileged range; use \"keep\""));
            // An explicit id maps to itself: host group 0 would be the sandbox's group.
            if (*gid == 0)
                out.push_back(error_at(p.loc_of("process.group"),
                                       "process.group: 0 would be the host's root group; name "
                                       "another group, or use \"keep\""));
            plan.uid_map = {{*uid, *uid, 1}};
            plan.gid_map = {{*gid, *gid, 1}};
        }
    } else if (!plan.privileged) {
        out.push_back(error_at(p.loc_of("namespaces.user"),
                               "namespaces.user = false needs root (the other namespaces need "
                               "CAP_SYS_ADMIN)"));
        return;
    } else {
        plan.clear_groups = true;
        if (*uid == 0)
            out.push_back(warning_at(p.loc_of("namespaces.user"),
                                     "the command runs as the host's real root (namespaces.user "
                                     "= false with user 0)"));
        plan.setup_uid = 0;
        plan.setup_gid = 0;
        return;
    }
    plan.setup_uid = *uid;
    plan.setup_gid = *gid;
}

}  // namespace butter::launcher
