#include "spawn.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <butter/mount.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/splice.hpp>
#include <butter/unix_socket.hpp>

#include "cgroup.hpp"
#include "child/child.hpp"

namespace butter::launcher {

namespace {

// The host id that `inside` maps to under `map` (the sandbox's view of a host owner).
std::uint32_t outside_of(const std::vector<IdMapping>& map, std::uint32_t inside) {
    for (const IdMapping& m : map)
        if (inside >= m.inside && inside - m.inside < m.count)
            return m.outside + (inside - m.inside);
    return inside;
}

// Root mode: a writable bind is idmapped so that the sandbox's user owns it as the host owner
// does, and what the sandbox writes lands on the host with the source's owner. Needs
// CAP_SYS_ADMIN over the source's filesystem, so the parent makes these detached trees and the
// child, which inherits the fds, attaches them.
Result<std::vector<Fd>> prepare_idmapped_binds(const SandboxPlan& plan) {
    std::vector<Fd> out(plan.mounts.size());
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountStep& m = plan.mounts[i];
        if (m.type != profile::MountType::Bind || !m.idmap) continue;
        IdMapping u{m.source_uid, outside_of(plan.uid_map, plan.uid), 1};
        IdMapping g{m.source_gid, outside_of(plan.gid_map, plan.gid), 1};
        BUTTER_ASSIGN_OR_RETURN(Fd userns, make_user_namespace(std::span(&u, 1), std::span(&g, 1)));
        BUTTER_ASSIGN_OR_RETURN(out[i], open_tree(AT_FDCWD, m.source.c_str(), OpenTreeFlag::Clone));
        MountSetattr attr;
        attr.set = MountAttr::IdMap;
        attr.userns_fd = userns.get();
        auto r = mount_setattr(out[i], "", false, attr);
        if (!r)
            return fail(std::move(r)
                            .error()
                            .with_context("idmapped bind " + m.source)
                            .with_hint("the source's filesystem must support idmapped mounts; or "
                                       "bind it read-only"));
    }
    return out;
}

}  // namespace

Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                      const SpawnExtras& extras) {
    std::vector<Fd> prepared;
    if (plan.privileged && plan.namespaces.has(Namespace::User)) {
        BUTTER_ASSIGN_OR_RETURN(prepared, prepare_idmapped_binds(plan));
    }
    BUTTER_ASSIGN_OR_RETURN(Pipe failure, Pipe::create());
    BUTTER_ASSIGN_OR_RETURN(SocketPair control, SocketPair::create(SOCK_SEQPACKET));
    BUTTER_ASSIGN_OR_RETURN(Fd self, pidfd_open(::getpid()));
    BUTTER_ASSIGN_OR_RETURN(Fd null, open("/dev/null", O_RDWR));

    ChildChannels ch;
    ch.error_fd = failure.write.get();
    ch.control_fd = control.second.get();
    ch.parent_pidfd = self.get();
    ch.null_fd = null.get();
    ch.original_mask = original_mask;
    ch.stdout_fd = extras.stdout_fd;
    ch.stderr_fd = extras.stderr_fd;
    ch.tty_fd = extras.tty_fd;
    bool join_cgroups = extras.cgroups && !extras.cgroups->empty();
    bool parent_maps = plan.namespaces.has(Namespace::User) && !plan.child_writes_maps;
    ch.wait_for_parent = join_cgroups || parent_maps;
    for (const Fd& f : prepared)
        ch.prepared.push_back(f.valid() ? f.get() : -1);

    // Formatted before the clone: after it, every page the supervisor writes costs a
    // copy-on-write fault while the child waits for the maps.
    std::string uid_text, gid_text;
    if (parent_maps) {
        uid_text = format_id_map(plan.uid_map);
        gid_text = format_id_map(plan.gid_map);
    }

    CloneArgs args;
    args.flags = plan.namespaces.raw();
    BUTTER_ASSIGN_OR_RETURN(CloneResult c, clone3(args));
    if (c.is_child()) {
        // Only the sandbox's ends stay open here, so that EOF means what it should.
        failure.read.reset();
        control.first.reset();
        run_child(plan, ch);
    }
    // The one round trip, first (the child is waiting): what the child cannot do itself,
    // then "go". Closing our copies of the child's ends waits until after.
    auto go = [&]() -> Result<void> {
        if (!ch.wait_for_parent) return {};
        if (parent_maps) {
            BUTTER_TRY(write_uid_map(c.pid, uid_text));
            BUTTER_TRY(write_gid_map(c.pid, gid_text));
        }
        if (join_cgroups) BUTTER_TRY(extras.cgroups->join(c.pid));
        char byte = 1;
        if (::send(control.first.get(), &byte, 1, MSG_NOSIGNAL) != 1)
            return fail_errno("send", "control socket");
        return {};
    }();
    failure.write.reset();
    control.second.reset();
    prepared.clear();

    Sandbox s{c.pid, std::move(c.pidfd), std::move(failure.read), std::move(control.first)};
    if (!go) {
        (void)pidfd_send_signal(s.pidfd, SIGKILL);
        (void)waitid_pidfd(s.pidfd);
        return fail(std::move(go).error());
    }
    return s;
}

}  // namespace butter::launcher
