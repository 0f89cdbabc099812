// The isolation tier (profile isolation.*). namespaces: the sandbox's own namespaces and root,
// with the Landlock layer and the filters. Below it, for hosts that refuse user namespaces
// (Ubuntu's AppArmor restriction, user.max_user_namespaces = 0, a container's seccomp filter):
// landlock runs the command in the host's own namespaces and view of the files, confined by
// Landlock to the paths the profile's mounts name, as they name them (read-only binds readable,
// writable ones writable, the devices of /dev, /proc readable), with a private TMPDIR and HOME
// in place of the /tmp and home tmpfs; seccomp gives the filters alone. Both drop every
// capability and set no_new_privs, keep the rlimits, the cgroup limits and a new session, and
// say what the profile asked for that they cannot give (plan.uncovered).
#include <sys/stat.h>

#include <algorithm>

#include <butter/landlock.hpp>

#include "plan/planner.hpp"

namespace butter::launcher {

using profile::error_at;
using profile::MountType;
using profile::Tier;

std::optional<Tier> next_tier(const SandboxPlan& plan, int landlock_abi) {
    if (!plan.tier_auto || plan.tier != Tier::Namespaces) return std::nullopt;
    Tier next = landlock_abi > 0 ? Tier::Landlock : Tier::Seccomp;
    if (next < plan.tier_minimum) return std::nullopt;
    return next;
}

void Planner::tier() {
    const auto& iso = p.isolation;
    Tier want = o.tier.value_or(iso.tier == Tier::Auto ? Tier::Namespaces : iso.tier);
    plan.tier = want;
    plan.tier_reason = o.tier_reason;
    plan.tier_auto = iso.tier == Tier::Auto;
    plan.tier_minimum = iso.minimum;
    plan.private_dir = o.private_dir;
    if (want < iso.minimum) {
        out.push_back(
            error_at(p.loc_of(o.tier ? "isolation.minimum" : "isolation.tier"),
                     std::string("isolation: the ") + to_string(want) +
                         " tier is below isolation.minimum = \"" + to_string(iso.minimum) + "\"" +
                         (o.tier ? " (" + o.tier_reason + ")"
                                 : "; --set isolation.minimum=" + std::string(to_string(want)) +
                                       " allows it")));
        return;
    }
    if (!o.tier && want < Tier::Namespaces) plan.tier_reason = "isolation.tier";
    if (want == Tier::Landlock && host.landlock_abi() == 0)
        out.push_back(error_at(p.loc_of(o.tier ? "isolation.minimum" : "isolation.tier"),
                               "isolation: the landlock tier needs Landlock (Linux 5.13+, with "
                               "landlock in the lsm= list), which this kernel does not offer" +
                                   (o.tier ? " (" + o.tier_reason + ")" : std::string())));
    if (want == Tier::Landlock && !p.landlock.enabled)
        out.push_back(error_at(p.loc_of("landlock.enabled"),
                               "isolation: the landlock tier needs landlock.enabled = true"));
    if (want < Tier::Namespaces && o.private_dir.empty())
        out.push_back(error_at(p.loc_of("isolation.tier"),
                               "isolation: the " + std::string(to_string(want)) +
                                   " tier needs a private directory for TMPDIR and HOME"));
}

// Below namespaces: the planned mounts become what the host's own view gives (landlock.cpp
// made no rules for them), and go.
void Planner::host_view() {
    if (plan.tier == Tier::Namespaces) return;
    const bool landlock = plan.tier == Tier::Landlock && plan.landlock_abi > 0;
    auto uncovered = [&](std::string what) {
        if (std::find(plan.uncovered.begin(), plan.uncovered.end(), what) == plan.uncovered.end())
            plan.uncovered.push_back(std::move(what));
    };
    const auto& ns = p.namespaces;
    if (ns.pid) uncovered("pid namespace (the host's processes are in sight)");
    if (ns.net && p.network.mode != profile::NetworkMode::Host)
        uncovered("network namespace (no inet sockets instead)");
    uncovered(
        "unix sockets (socket(AF_UNIX) refused: the host's are not hidden; stream socketpairs "
        "work)");
    uncovered(
        "new sessions and process groups (setsid and setpgid refused: every process "
        "ends with the run)");
    if (ns.ipc) uncovered("ipc namespace (System V IPC refused instead)");
    if (ns.uts && !p.filesystem.hostname.empty()) uncovered("hostname");
    if (ns.cgroup) uncovered("cgroup namespace");
    if (ns.time) uncovered("time namespace");
    if (!p.capabilities.keep.empty())
        uncovered("capabilities.keep (they would be the host's: none kept)");
    if (!p.capabilities.keep_as_root.empty() && plan.privileged)
        uncovered("capabilities.keep_as_root (they would be the host's: none kept)");
    // Every process the command starts must stay in its own process group, which butter
    // kills whole (no pid namespace to end them): not butter's, which "inherit" shares.
    if (p.process.session == profile::SessionMode::Inherit)
        out.push_back(error_at(p.loc_of("process.session"),
                               "isolation: process.session = \"inherit\" keeps the command in "
                               "butter's process group; the " +
                                   std::string(to_string(plan.tier)) +
                                   " tier needs a group of its own to end every process it "
                                   "starts (new, pty or auto)"));
    if (p.network.mode == profile::NetworkMode::User)
        out.push_back(error_at(p.loc_of("network.mode"),
                               "isolation: network.mode = \"user\" needs a network namespace "
                               "(the " +
                                   std::string(to_string(plan.tier)) +
                                   " tier has none); --set network.mode=none runs without it"));
    // The notify relay's socket is a path inside the sandbox's own root.
    if (p.supervise.notify)
        out.push_back(error_at(p.loc_of("supervise.notify"),
                               "isolation: supervise.notify needs a mount namespace (the " +
                                   std::string(to_string(plan.tier)) +
                                   " tier has no unix sockets and no root of its own); "
                                   "--set supervise.notify=false runs without it"));
    if (!plan.root_dir.empty())
        out.push_back(error_at(p.loc_of("filesystem.root"),
                               "isolation: filesystem.root needs a mount namespace (the " +
                                   std::string(to_string(plan.tier)) +
                                   " tier runs on the host's /)"));
    if (!landlock)
        uncovered("the profile's mounts (the host's whole view, as your user sees it)");
    else
        uncovered(
            "file metadata outside the profile's paths (stat, inotify, chown, utimes and chmod "
            "by path reach your files anywhere; chmod that lets group or others write is "
            "refused)");
    if (plan.privileged)
        uncovered("uid 0 inside (the command runs as host uid " + std::to_string(plan.uid) +
                  ", which writes only where that id may)");
    if (!LandlockScopes::from_raw(plan.landlock_scopes).has(LandlockScope::Signal))
        uncovered("signals to your other processes (Landlock ABI 6)");
    if (!LandlockScopes::from_raw(plan.landlock_scopes).has(LandlockScope::AbstractUnixSocket))
        uncovered("the host's abstract unix sockets (Landlock ABI 6)");

    const std::string tmp = plan.private_dir + "/tmp", home_dir = plan.private_dir + "/home";
    auto set_env = [&](const std::string& key, const std::string& value) {
        std::erase_if(plan.env, [&](const std::string& kv) { return kv.starts_with(key + "="); });
        plan.env.push_back(key + "=" + value);
    };
    set_env("TMPDIR", tmp);

    LandlockFsAccess all = landlock_fs_rights(plan.landlock_abi);
    LandlockFsAccess read = LandlockFs::ReadFile | LandlockFs::ReadDir | LandlockFs::Execute;
    LandlockFsAccess write = all;
    write &= ~LandlockFsAccess(LandlockFs::MakeChar | LandlockFs::MakeBlock | LandlockFs::IoctlDev);
    LandlockFsAccess device = LandlockFs::ReadFile | LandlockFs::WriteFile | LandlockFs::IoctlDev;
    auto rule = [&](const std::string& path, dev_t dev, ino_t ino, LandlockFsAccess access) {
        plan.landlock_paths.push_back({path, (access & all).raw(), dev, ino});
    };
    // A host path the command may reach (resolved as bind sources are: only root's symlinks
    // followed); false when it is not there.
    auto host_rule = [&](const std::string& path, LandlockFsAccess access) {
        auto r = host.resolve(path, Symlinks::RootOnly);
        if (!r) return false;
        rule(r->path, r->st.st_dev, r->st.st_ino, access);
        return true;
    };
    if (landlock) {
        plan.landlock_fs = all.raw();
        if (!host_rule(plan.private_dir, write))
            out.push_back(
                error_at(p.loc_of("isolation.tier"),
                         "isolation: the private directory '" + plan.private_dir + "' is gone"));
        // "none" without a network namespace: TCP refused by Landlock too (ABI 4), beside
        // the filter's socket rule; the profile's own ports stay.
        if (p.network.mode != profile::NetworkMode::Host && plan.landlock_abi >= 4)
            plan.landlock_net |=
                LandlockNetAccess(LandlockNet::ConnectTcp | LandlockNet::BindTcp).raw();
    }
    // A command-line bind's own flag, else the profile's mounts.
    auto loc_of_mount = [&](const std::string& target) {
        for (const auto* list : {&o.binds, &o.ro_binds})
            for (const auto& [src, dst] : *list)
                if (normalize_target(dst.empty() ? src : dst) == target)
                    return profile::SourceLoc{list == &o.binds ? "--bind" : "--ro-bind", 0, 0};
        return p.loc_of("filesystem.mounts");
    };
    // Landlock rules only add rights down the tree: a read-only bind below a writable one
    // (the workspace's .git) would be writable through the outer rule. Refused, not weakened.
    for (const MountStep& inner : plan.mounts) {
        if (inner.type != MountType::Bind || inner.layer || !inner.read_only) continue;
        for (const MountStep& outer : plan.mounts)
            if (outer.type == MountType::Bind && !outer.layer && !outer.read_only &&
                outer.source_is_dir && inner.target.starts_with(outer.target + "/")) {
                bool git = inner.target.find("/.git") != std::string::npos;
                out.push_back(error_at(
                    git ? p.loc_of("filesystem.writable_git") : loc_of_mount(inner.target),
                    "isolation: '" + inner.target + "' is read-only inside the writable '" +
                        outer.target + "', which the " + to_string(plan.tier) +
                        " tier cannot keep (Landlock only adds rights down the tree)" +
                        (git ? "; set filesystem.writable_git = true to let the sandbox write "
                               "the checkout's .git, or give butter user namespaces"
                             : "")));
                break;
            }
    }
    std::vector<MountStep> written;  // the writable binds: what the file-activity report follows
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountStep& m = plan.mounts[i];
        if (m.layer) continue;
        if (m.type == MountType::Bind && !m.read_only) written.push_back(m);
        switch (m.type) {
            case MountType::Bind: {
                // The command sees the host's path: only a bind onto its own source means the
                // same there.
                auto at = host.resolve(m.target, Symlinks::RootOnly);
                if (!at || at->st.st_dev != m.source_dev || at->st.st_ino != m.source_ino) {
                    out.push_back(error_at(loc_of_mount(m.target),
                                           "isolation: the bind of '" + m.source + "' onto '" +
                                               m.target + "' needs a mount namespace (the " +
                                               to_string(plan.tier) +
                                               " tier shows the host's own paths)"));
                    break;
                }
                // (As root the command runs as the sandbox's unprivileged host ids: a writable
                // bind is theirs to write where its modes let them, as a plain bind's.)
                bool writable = !m.read_only;
                if (landlock) rule(m.source, m.source_dev, m.source_ino, writable ? write : read);
                break;
            }
            case MountType::Overlay:
                out.push_back(error_at(
                    plan.changes.mount == static_cast<int>(i) && o.changes
                        ? profile::SourceLoc{"--changes", 0, 0}
                    : plan.changes.mount == static_cast<int>(i) ? p.loc_of("filesystem.workspace")
                                                                : loc_of_mount(m.target),
                    "isolation: the overlay on '" + m.target + "' needs a mount namespace (the " +
                        to_string(plan.tier) + " tier has none)"));
                break;
            case MountType::Tmpfs:
                // (The home tmpfs, owned by the command's user, is HOME's private home/.)
                if (m.options.find(",uid=") != std::string::npos) break;
                if (m.target == "/tmp")
                    uncovered("tmpfs /tmp (TMPDIR is a private directory instead)");
                else
                    uncovered("tmpfs " + m.target);
                break;
            case MountType::Proc:
                if (landlock) host_rule("/proc", read);
                uncovered("private /proc");
                break;
            case MountType::Dev:
                if (landlock) {
                    host_rule("/dev", LandlockFsAccess(LandlockFs::ReadDir));
                    for (const char* d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                          "/dev/urandom", "/dev/tty"})
                        host_rule(d, device);
                }
                uncovered("/dev/shm");
                break;
            case MountType::Mqueue:
                uncovered("mqueue " + m.target);
                break;
            case MountType::Symlink:
            case MountType::Dir:
            case MountType::Kernel:  // (OCI configs, always namespaces)
            case MountType::DevNodes:
                break;
        }
    }
    // The home tmpfs (filesystem.home): HOME is the private directory's home/ instead.
    if (home_index) {
        bool env_set = std::any_of(p.process.env_set.begin(), p.process.env_set.end(),
                                   [](const auto& kv) { return kv.first == "HOME"; });
        if (!env_set) set_env("HOME", home_dir);
    }
    if (landlock) {
        for (const std::string& path : p.landlock.read)
            if (!host_rule(path, read))
                out.push_back(error_at(p.loc_of("landlock.read"),
                                       "landlock.read: '" + path + "' does not exist here"));
        for (const std::string& path : p.landlock.write)
            if (!host_rule(path, write))
                out.push_back(error_at(p.loc_of("landlock.write"),
                                       "landlock.write: '" + path + "' does not exist here"));
    }
    // Only the writable binds stay (what report.file_activity follows); nothing is mounted
    // without a mount namespace.
    plan.mounts = std::move(written);
    plan.has_proc = false;
    plan.pty_ptmx.clear();
    plan.keep_caps = {};
    plan.no_new_privs = true;
}

}  // namespace butter::launcher
