// The Landlock layer (defense in depth under the namespaces): the command may reach what its
// mounts give it, as they give it, and nothing else. Read-only mounts are readable and
// executable; writable ones (binds, overlays, tmpfs, the home) writable; /dev as a device
// directory (ioctl on its devices); /proc readable and its own files writable; the root as
// mounted. Path rules are sandbox paths, opened by the child after pivot_root. A mount that
// was not planned (a crafted profile, a mistake) reaches nothing. Ports only when the profile
// lists them.
#include <butter/landlock.hpp>

#include <algorithm>

#include "plan/planner.hpp"
#include "profile/network_spec.hpp"

namespace butter::launcher {

using profile::MountType;

void Planner::landlock() {
    const auto& l = p.landlock;
    if (plan.tier == profile::Tier::Seccomp) {
        // Filters only: no Landlock at all.
        if (!l.tcp_connect.empty() || !l.tcp_bind.empty())
            plan.uncovered.push_back("landlock.tcp_connect and tcp_bind (no Landlock)");
        return;
    }
    plan.landlock_abi = host.landlock_abi();
    int abi = plan.landlock_abi;
    // The TCP ports connected to: landlock.tcp_connect's, and with network.landlock the
    // allow-list's (network.mode = "user": plan/network.cpp checks the keys go together).
    std::vector<std::uint16_t> connect = l.tcp_connect;
    const bool from_allow = p.network.landlock && p.network.mode == profile::NetworkMode::User;
    if (from_allow) {
        for (const std::string& s : p.network.allow) {
            auto v = profile::parse_allow(s);
            if (auto* e = std::get_if<profile::AllowEntry>(&v);
                e && e->protocol == profile::Protocol::Tcp &&
                std::find(connect.begin(), connect.end(), e->port) == connect.end())
                connect.push_back(e->port);
        }
    }
    // With mode = "user", butter's resolver over TCP (a truncated answer's retry): the rules
    // still decide by address.
    if ((from_allow || !connect.empty()) && p.network.mode == profile::NetworkMode::User &&
        std::find(connect.begin(), connect.end(), 53) == connect.end())
        connect.push_back(53);
    bool ports = !connect.empty() || !l.tcp_bind.empty();
    if (ports && abi < 4) {
        const char* key = from_allow              ? "network.landlock"
                          : l.tcp_connect.empty() ? "landlock.tcp_bind"
                                                  : "landlock.tcp_connect";
        out.push_back(profile::error_at(
            p.loc_of(key),
            std::string(key) + ": this kernel's Landlock " +
                (abi ? "ABI " + std::to_string(abi) : std::string("is off or absent")) +
                " has no TCP port rules (ABI 4, Linux 6.7)"));
        return;
    }
    if (ports) {
        LandlockNetAccess net;
        if (!connect.empty()) net |= LandlockNet::ConnectTcp;
        if (!l.tcp_bind.empty()) net |= LandlockNet::BindTcp;
        plan.landlock_net = net.raw();
        for (std::uint16_t port : connect)
            plan.landlock_ports.push_back({port, LandlockNetAccess(LandlockNet::ConnectTcp).raw()});
        for (std::uint16_t port : l.tcp_bind)
            plan.landlock_ports.push_back({port, LandlockNetAccess(LandlockNet::BindTcp).raw()});
    }
    // Without a mount namespace the sandbox sees the host: its view is not the mounts'. And a
    // Landlock domain that handles file access refuses every mount, in any namespace below it:
    // not for a profile that keeps CAP_SYS_ADMIN to mount, or makes namespaces of its own (a
    // nested butter, rootless podman).
    // Below the namespaces tier the rules are host paths (tier.cpp).
    if (!l.enabled || abi == 0 || !p.namespaces.mount || plan.tier != profile::Tier::Namespaces)
        return;
    if (keeps_admin() || p.namespaces.nested_user) {
        out.push_back(profile::note_at(
            p.loc_of(keeps_admin() ? "capabilities.keep" : "namespaces.nested_user"),
            "no Landlock file rules: they would refuse the mounts this profile lets the "
            "sandbox make"));
        return;
    }
    LandlockFsAccess all = landlock_fs_rights(abi);
    LandlockFsAccess read = LandlockFs::ReadFile | LandlockFs::ReadDir | LandlockFs::Execute;
    LandlockFsAccess write = all;
    write &= ~LandlockFsAccess(LandlockFs::MakeChar | LandlockFs::MakeBlock | LandlockFs::IoctlDev);
    LandlockFsAccess dev = write | (all & LandlockFsAccess(LandlockFs::IoctlDev));
    LandlockFsAccess proc = LandlockFs::ReadFile | LandlockFs::ReadDir | LandlockFs::WriteFile;
    plan.landlock_fs = all.raw();
    auto rule = [&](const std::string& path, LandlockFsAccess access) {
        plan.landlock_paths.push_back({path, (access & all).raw()});
    };
    bool root_writable = !plan.read_only_root;
    rule("/", root_writable ? write : read);
    for (const MountStep& m : plan.mounts) {
        if (m.layer) continue;
        switch (m.type) {
            case MountType::Bind:
                rule(m.target, m.read_only ? read : write);
                break;
            case MountType::Overlay:
            case MountType::Tmpfs:
            case MountType::Mqueue:
            case MountType::Kernel:
                rule(m.target, write);
                break;
            case MountType::Dev:
            case MountType::DevNodes:
                rule(m.target, dev);
                break;
            case MountType::Proc:
                rule(m.target, proc);
                break;
            case MountType::Symlink:
            case MountType::Dir:
                break;  // parts of the root, as it is mounted
        }
    }
    for (const std::string& path : l.read)
        rule(path, read);
    for (const std::string& path : l.write)
        rule(path, write);
}

}  // namespace butter::launcher
