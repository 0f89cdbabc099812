#include "spawn/spawn.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <butter/mount.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/splice.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "child/raw.hpp"
#include "plan/host_path.hpp"
#include "spawn/internal.hpp"
#include "supervise/cgroup.hpp"

namespace butter::launcher {

namespace {

// The host id that `inside` maps to under `map` (the sandbox's view of a host owner).
std::uint32_t outside_of(const std::vector<IdMapping>& map, std::uint32_t inside) {
    for (const IdMapping& m : map)
        if (inside >= m.inside && inside - m.inside < m.count)
            return m.outside + (inside - m.inside);
    return inside;
}

// A bind's idmap: `first` (the source's owner as the sandbox's user, or that user's host id as
// itself), and for a writable bind every other id of the sandbox's own range as itself, so
// that a chown inside (tar, cp -a, a test suite) lands as the sandbox's host ids, as it does on
// a plain bind, instead of EOVERFLOW.
std::vector<IdMapping> bind_idmap(IdMapping first, const std::vector<IdMapping>& sandbox,
                                  bool writable) {
    std::vector<IdMapping> out{first};
    if (!writable) return out;
    for (const IdMapping& m : sandbox) {
        std::uint64_t at = m.outside, end = std::uint64_t{m.outside} + m.count;
        while (at < end) {
            // The next id taken by `first` (as on-disk id or as target), or the range's end.
            std::uint64_t stop = end;
            for (std::uint64_t taken : {std::uint64_t{first.inside}, std::uint64_t{first.outside}})
                if (taken >= at && taken < stop) stop = taken;
            if (stop > at)
                out.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(at),
                               static_cast<std::uint32_t>(stop - at)});
            at = stop + 1;
        }
    }
    return out;
}

// Root mode: the detached trees of host mounts that the sandbox attaches, made here, where
// they cost the supervisor's idle wait for the early child's namespaces instead of the child's
// set-up (~0.1 ms of every run: the child clones from a mount table copied moments before).
struct HostTrees {
    std::vector<Fd> binds;    // per plan.mounts entry, or invalid
    bool host_nodes = false;  // dev_nodes (with a dev mount) and null (with proc) made here
    std::array<Fd, kDevNodes.size()> dev_nodes;
    Fd null;
};

// A writable bind is idmapped so that the sandbox's user owns it as the host owner does, and
// what the sandbox writes lands on the host with the source's owner: that needs CAP_SYS_ADMIN
// over the source's filesystem, hence the parent. The others are plain clones, made here only
// when nothing in the sandbox can change a mount (no CAP_SYS_ADMIN kept): a clone made in
// the host's mount namespace lacks the locks that the kernel puts on the mounts it copies
// into a less privileged one (a submount that hides a directory, a host mount's flags).
// Every tree is a slave: a clone of a shared mount is its peer, and what the sandbox mounted
// below would show on the host.
// An overlay's upper directory on the host: its overlay/ (0700: what the sandbox leaves there,
// a set-id file copied up from a lower layer among it, is out of other users' reach) and in it
// overlayfs's upper/ and work/, made here as root for the sandbox's set-up ids (who mount the
// overlay and write its copies), which own them; never followed if something else is at
// their names.
Result<void> make_upper_dirs(const SandboxPlan& plan) {
    uid_t uid = outside_of(plan.uid_map, plan.setup_uid);
    gid_t gid = outside_of(plan.gid_map, plan.setup_gid);
    auto make = [&](const Fd& at, const char* name, const std::string& path) -> Result<Fd> {
        if (::mkdirat(at.get(), name, 0700) == 0) {
            if (::fchownat(at.get(), name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return fail_errno("fchownat", path);
        } else if (errno != EEXIST) {
            return fail_errno("mkdirat", path);
        }
        int fd = ::openat(at.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_errno("openat", path);
        return Fd(fd);
    };
    for (const MountStep& m : plan.mounts) {
        if (!m.layer || m.read_only) continue;
        BUTTER_ASSIGN_OR_RETURN(
            Fd dir, reopen_host_path(m.source, m.source_dev, m.source_ino, O_RDONLY | O_DIRECTORY));
        BUTTER_ASSIGN_OR_RETURN(Fd overlay, make(dir, "overlay", m.source + "/overlay"));
        if (::fchmod(overlay.get(), 0700) < 0) return fail_errno("fchmod", m.source + "/overlay");
        for (const char* sub : {"upper", "work"})
            BUTTER_TRY(make(overlay, sub, m.source + "/overlay/" + sub));
    }
    return {};
}

Result<HostTrees> prepare_host_trees(const SandboxPlan& plan) {
    HostTrees out;
    struct IdNamespace {
        IdMapping u, g;
        bool writable = false;
        Fd fd;
    };
    std::vector<IdNamespace> namespaces;
    out.binds.resize(plan.mounts.size());
    bool all = !plan.keep_caps.has(CAP_SYS_ADMIN);
    bool dev = false;
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountStep& m = plan.mounts[i];
        dev = dev || m.type == profile::MountType::Dev;
        if (m.type != profile::MountType::Bind || !(m.idmap || all)) continue;
        if (!m.idmap) {
            BUTTER_ASSIGN_OR_RETURN(out.binds[i], clone_bind_source(m, true));
            continue;
        }
        MountSetattr attr;
        attr.propagation = MS_SLAVE;
        // An id that is not mapped to the source's owner maps to itself: the sandbox writes
        // as its own host id, as without an idmap.
        std::uint32_t uid = outside_of(plan.uid_map, plan.uid);
        std::uint32_t gid = outside_of(plan.gid_map, plan.gid);
        IdMapping u{m.map_owner ? m.source_uid : uid, uid, 1};
        IdMapping g{m.map_group ? m.source_gid : gid, gid, 1};
        // One user namespace per mapping (binds of one owner's trees share it).
        auto same = [&](const IdNamespace& n) {
            return n.u.outside == u.outside && n.u.inside == u.inside && n.g.outside == g.outside &&
                   n.g.inside == g.inside;
        };
        auto ns = std::find_if(namespaces.begin(), namespaces.end(), [&](const IdNamespace& n) {
            return same(n) && n.writable == !m.read_only;
        });
        if (ns == namespaces.end()) {
            std::vector<IdMapping> us = bind_idmap(u, plan.uid_map, !m.read_only);
            std::vector<IdMapping> gs = bind_idmap(g, plan.gid_map, !m.read_only);
            BUTTER_ASSIGN_OR_RETURN(Fd userns, make_user_namespace(us, gs));
            namespaces.push_back({u, g, !m.read_only, std::move(userns)});
            ns = namespaces.end() - 1;
        }
        BUTTER_ASSIGN_OR_RETURN(Fd src, reopen_host_path(m.source, m.source_dev, m.source_ino));
        BUTTER_ASSIGN_OR_RETURN(out.binds[i],
                                open_tree(src, "", OpenTreeFlag::Clone | OpenTreeFlag::EmptyPath));
        attr.set = MountAttr::IdMap;
        if (m.read_only) attr.set |= MountAttr::ReadOnly;
        attr.userns_fd = ns->fd.get();
        auto r = mount_setattr(out.binds[i], "", false, attr);
        if (!r && m.read_only) {
            // A filesystem without idmapped mounts: a read-only bind works without one (its
            // owners show as nobody).
            BUTTER_ASSIGN_OR_RETURN(out.binds[i], clone_bind_source(m, true));
            continue;
        }
        if (!r)
            return fail(std::move(r)
                            .error()
                            .with_context("idmapped bind " + m.source)
                            .with_hint("the source's filesystem must support idmapped mounts; or "
                                       "bind it read-only"));
    }
    if (!all) return out;
    out.host_nodes = true;
    if (dev) out.dev_nodes = clone_dev_nodes();
    if (plan.has_proc) {
        BUTTER_ASSIGN_OR_RETURN(out.null, open_tree(AT_FDCWD, "/dev/null", OpenTreeFlag::Clone));
    }
    return out;
}

// What the shared-memory child starts with: its arguments, and the supervisor's ends of the
// pipe and socket, which it closes (its own fd table; the Fd objects are the supervisor's).
struct ChildStart {
    const SandboxPlan* plan = nullptr;
    const ChildChannels* ch = nullptr;
    int close_fds[2] = {-1, -1};
    bool lsan_disabled = false;
};

int child_main(void* arg) {
    auto* start = static_cast<ChildStart*>(arg);
#if defined(__SANITIZE_ADDRESS__)
    // What this process allocates in the shared heap and never frees (it exits or execs with
    // it) is not the supervisor's leak. Balanced by the supervisor once the child is done.
    __lsan_disable();
    start->lsan_disabled = true;
#endif
    for (int fd : start->close_fds)
        ::close(fd);
    run_child(*start->plan, *start->ch);
}

// SIGKILL to the child, and back once it is gone (with a pid namespace, PID 1 exits after
// every other process in it), left for the caller to reap. Raw calls only, as wait_for_setup;
// EINTR retried a bounded number of times (no other error can come from a pidfd of our child).
void kill_and_wait(int pidfd) {
    raw::call(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    siginfo_t info;
    for (int i = 0; i < 1000; ++i)
        if (raw::call(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | WNOWAIT | __WALL, nullptr) !=
            -EINTR)
            return;
}

// Until the shared-memory child no longer runs on this memory: EOF on the failure pipe, whose
// last copy closes when the command has exec'd and init has entered its loop, or when they
// are dead. Touches only this frame, through raw system calls. A failure record on the way
// is kept. A pending SIGTERM (a stop request) or the time limit ends a set-up that does not
// end by itself within `grace`.
void wait_for_setup(Sandbox& sb, const SpawnExtras& extras, std::int64_t grace_ns) {
    struct pollfd fds[3] = {
        {sb.failure.get(), POLLIN, 0}, {extras.timer_fd, POLLIN, 0}, {extras.signal_fd, POLLIN, 0}};
    // Another pending signal than SIGTERM keeps the signalfd readable (it is the command's,
    // forwarded once it runs): then the signalfd is left out, and SIGTERM looked for every
    // 50 ms instead. Once stopping, the timer is left out too (it stays readable).
    bool watch_signals = extras.signal_fd >= 0;
    std::int64_t kill_at = -1;  // when stopping: the deadline for the set-up to end
    bool killed = false;
    for (;;) {
        for (auto& p : fds)
            p.revents = 0;
        bool poll_signals = watch_signals && kill_at < 0;
        std::int64_t wait_ns = -1;
        if (kill_at >= 0 && !killed)
            wait_ns = std::max<std::int64_t>(kill_at - monotonic_ns(), 0);
        else if (!poll_signals && extras.signal_fd >= 0 && kill_at < 0)
            wait_ns = 50'000'000;
        struct timespec timeout {
            wait_ns / 1'000'000'000, wait_ns % 1'000'000'000
        };
        nfds_t n = poll_signals ? 3 : kill_at < 0 ? 2 : 1;
        long r = raw::call(SYS_ppoll, fds, n, wait_ns < 0 ? nullptr : &timeout, nullptr, 8);
        if (r == -EINTR) continue;
        if (r < 0) {
            // Cannot wait (ENOMEM): the set-up ends now rather than be waited for forever, and
            // its failure pipe's last copies close as it dies.
            kill_and_wait(sb.pidfd.get());
            break;
        }
        if (fds[0].revents != 0) {
            ChildFailure f;
            long got = raw::call(SYS_read, sb.failure.get(), &f, sizeof f);
            if (got == static_cast<long>(sizeof f)) sb.failure_record = f;
            if (got == 0) break;  // EOF: the memory is ours again
            if (got < 0 && got != -EINTR) {
                kill_and_wait(sb.pidfd.get());  // cannot happen; and then the child is gone
                break;
            }
        }
        if (kill_at < 0) {
            bool stop = fds[1].revents != 0;
            if (extras.signal_fd >= 0) {
                std::uint64_t pending = 0;
                raw::call(SYS_rt_sigpending, &pending, 8);
                if (pending & (1ULL << (SIGTERM - 1)))
                    stop = true;
                else if (fds[2].revents != 0)
                    watch_signals = false;
            }
            if (stop) kill_at = monotonic_ns() + grace_ns;
        } else if (!killed && monotonic_ns() >= kill_at) {
            raw::call(SYS_pidfd_send_signal, sb.pidfd.get(), SIGKILL, nullptr, 0);
            killed = true;
        }
    }
    sb.setup_end_ns = monotonic_ns();
    sb.waited = true;
}

}  // namespace

Result<ChildStack> ChildStack::map(std::size_t size, std::size_t below) {
    ChildStack s;
#if defined(__SANITIZE_ADDRESS__)
    // ASan knows one stack per thread, and before every [[noreturn]] call unpoisons from the
    // stack pointer to that stack's top (from elsewhere it warns, or worse): the child's stack
    // is part of the main one instead, far below this frame (the stack grows down to it).
    int here = 0;
    s.top_ = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(&here) - below) &
                                     ~std::uintptr_t{4095});
    (void)size;
#else
    (void)below;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return fail_errno("mmap", "child stack");
    s.base_ = p;
    s.size_ = size;
    s.top_ = static_cast<char*>(p) + size;
    // A guard page below: an overflow faults instead of writing into whatever is mapped there.
    if (::mprotect(p, 4096, PROT_NONE) < 0) return fail_errno("mprotect", "child stack guard");
#endif
    return s;
}

ChildStack::ChildStack(ChildStack&& o) noexcept : base_(o.base_), size_(o.size_), top_(o.top_) {
    o.base_ = nullptr;
    o.top_ = nullptr;
}

ChildStack& ChildStack::operator=(ChildStack&& o) noexcept {
    if (this != &o) {
        if (base_) ::munmap(base_, size_);
        base_ = o.base_;
        size_ = o.size_;
        top_ = o.top_;
        o.base_ = nullptr;
        o.top_ = nullptr;
    }
    return *this;
}

ChildStack::~ChildStack() {
    if (base_) ::munmap(base_, size_);
}

Sandbox::~Sandbox() {
    if (!stack.in_use()) return;
    if (pidfd.valid()) {
        (void)pidfd_send_signal(pidfd, SIGKILL);
        (void)waitid_pidfd(pidfd);
    }
    if (restore_dumpable) (void)set_dumpable(true);
}

namespace {

// The descriptors and texts one spawn holds until the child runs on its own.
struct Spawning {
    HostTrees prepared;
    SocketPair control;
    Pipe failure;
    Fd self, null;
    std::unique_ptr<EarlyChild::State> early;
    ChildChannels ch;
    Namespaces clone_ns;
    bool parent_maps = false, join_cgroups = false;
    std::string uid_text, gid_text;
    ChildStart start{};  // what a shared-memory child starts from
};

// Everything the child reads, made before the clone (the shared-memory protocol's 1).
Result<void> prepare(Spawning& sp, const SandboxPlan& plan, const sigset_t& original_mask,
                     const SpawnExtras& extras, const CommandArgs& command) {
    if (plan.privileged && plan.namespaces.has(Namespace::User)) {
        BUTTER_TRY(make_upper_dirs(plan));
        BUTTER_ASSIGN_OR_RETURN(sp.prepared, prepare_host_trees(plan));
    }
    if (sp.early) {
        sp.control = std::move(sp.early->control);
    } else {
        BUTTER_ASSIGN_OR_RETURN(sp.control, SocketPair::create(SOCK_SEQPACKET));
    }
    BUTTER_ASSIGN_OR_RETURN(sp.failure, Pipe::create());
    BUTTER_ASSIGN_OR_RETURN(sp.self, pidfd_open(::getpid()));
    BUTTER_ASSIGN_OR_RETURN(sp.null, open("/dev/null", O_RDWR));
    ChildChannels& ch = sp.ch;
    ch.error_fd = sp.failure.write.get();
    ch.control_fd = sp.control.second.get();
    ch.parent_pidfd = sp.self.get();
    ch.null_fd = sp.null.get();
    ch.original_mask = original_mask;
    ch.sigpipe_default = extras.sigpipe_default;
    ch.default_signals = extras.default_signals;
    ch.stdout_fd = extras.stdout_fd;
    ch.stderr_fd = extras.stderr_fd;
    ch.tty_fd = extras.tty_fd;
    ch.detached = extras.detached;
    ch.start_fd = extras.start_fd;
    ch.join_ns = extras.join_ns;
    ch.hook_state_fd = extras.hook_state_fd;
    ch.console_fd = extras.console_fd;
    ch.command_fd = extras.command_fd;
    ch.argv = command.argv.data();
    ch.sh_argv = const_cast<char**>(command.sh_argv.data());  // the child fills in its slot
    ch.envp = command.envp.data();
    ch.pid_slots = command.pid_slots;
    sp.join_cgroups = extras.cgroups && !extras.cgroups->empty();
    // A cgroup namespace is rooted at the cgroup its maker is in: made by the child once the
    // supervisor has moved it into the sandbox's, /proc/self/cgroup shows "/" and nothing of
    // the host's layout.
    sp.clone_ns = plan.namespaces;
    if (plan.namespaces.has(Namespace::Cgroup) &&
        (sp.join_cgroups || sp.early || extras.late_cgroup_ns)) {
        sp.clone_ns = sp.clone_ns.without(Namespace::Cgroup);
        ch.late_cgroup_ns = true;
    }
    sp.parent_maps = plan.namespaces.has(Namespace::User) && !plan.child_writes_maps;
    ch.wait_for_parent =
        sp.join_cgroups || sp.parent_maps || sp.early || static_cast<bool>(extras.before_go);
    for (const Fd& f : sp.prepared.binds)
        ch.prepared.push_back(f.valid() ? f.get() : -1);
    ch.have_host_trees = sp.prepared.host_nodes;
    for (std::size_t i = 0; i < kDevNodes.size(); ++i)
        ch.dev_nodes[i] = sp.prepared.dev_nodes[i].valid() ? sp.prepared.dev_nodes[i].get() : -1;
    ch.null_tree = sp.prepared.null.valid() ? sp.prepared.null.get() : -1;
    // Formatted before the clone: after it, every page the supervisor writes costs a
    // copy-on-write fault (fork-like) or is the child's (shared memory) while it waits.
    if (sp.parent_maps) {
        sp.uid_text = format_id_map(plan.uid_map);
        sp.gid_text = format_id_map(plan.gid_map);
    }
    return {};
}

// The library's clone: glibc's fork makes a single-threaded copy of the caller (malloc's locks
// held across it, as the child will allocate), which clones the sandbox as the caller's own
// child (CLONE_PARENT) and sends back its pid and pidfd. Returns in the caller only.
// With `user_ns_fd`, `pid_ns_fd` or `time_ns_fd`, the intermediate enters those namespaces
// first (an OCI container that joins them): the child's new namespaces are the joined user
// namespace's, and it starts in the joined pid and time namespaces.
Result<void> clone_from_intermediate(Spawning& sp, const SandboxPlan& plan, Sandbox& s,
                                     int user_ns_fd = -1, int pid_ns_fd = -1, int time_ns_fd = -1) {
    BUTTER_ASSIGN_OR_RETURN(SocketPair back, SocketPair::create(SOCK_SEQPACKET));
    pid_t mid = ::fork();
    if (mid < 0) return fail_errno("fork", "the process that clones the sandbox");
    if (mid == 0) {
        back.first.reset();
        int joined = 0;
        if (user_ns_fd >= 0 && ::setns(user_ns_fd, CLONE_NEWUSER) < 0) joined = errno;
        if (!joined && pid_ns_fd >= 0 && ::setns(pid_ns_fd, CLONE_NEWPID) < 0) joined = errno;
        if (!joined && time_ns_fd >= 0 && ::setns(time_ns_fd, CLONE_NEWTIME) < 0) joined = errno;
        CloneArgs args;
        args.flags = sp.clone_ns.raw() | CLONE_PARENT;
        args.exit_signal = 0;  // (clone3 wants none with CLONE_PARENT: it gets this one's)
        Result<CloneResult> c =
            joined ? Result<CloneResult>(fail(Error("setns", joined, "linux.namespaces[].path")))
                   : clone3(args);
        if (c && c->is_child()) {
            sp.failure.read.reset();
            sp.control.first.reset();
            back.second.reset();
            run_child(plan, sp.ch);
        }
        int err = c ? 0 : c.error().errno_value();
        pid_t pid = c ? c->pid : 0;
        char data[sizeof pid + sizeof err];
        std::memcpy(data, &pid, sizeof pid);
        std::memcpy(data + sizeof pid, &err, sizeof err);
        int fd = c ? c->pidfd.get() : -1;
        (void)send_fds(back.second, c ? std::span<const int>(&fd, 1) : std::span<const int>(),
                       std::span<const char>(data, sizeof data));
        ::_exit(0);
    }
    back.second.reset();
    auto got = recv_fds(back.first, 1, 16);
    (void)waitid_pid(mid, __WALL);  // gone at once (a SIGCHLD handler of the caller's may
                                    // have reaped it first: ECHILD, nothing lost)
    if (!got) return fail(std::move(got).error().with_context("the sandbox's pid"));
    pid_t pid = 0;
    int err = EIO;
    if (got->data.size() == sizeof pid + sizeof err) {
        std::memcpy(&pid, got->data.data(), sizeof pid);
        std::memcpy(&err, got->data.data() + sizeof pid, sizeof err);
    }
    if (err != 0 && (user_ns_fd >= 0 || time_ns_fd >= 0))
        return fail(Error("setns or clone3", err, "the joined namespaces and the new ones"));
    if (err != 0 || got->fds.empty())
        return fail(
            namespace_refused(Error("clone3", err ? err : EIO, "CLONE_PARENT and the namespaces")));
    s.pid = pid;
    s.pidfd = std::move(got->fds[0]);
    return {};
}

// The clone, in the mode `extras` and the plan allow.
Result<void> clone_child(Spawning& sp, const SandboxPlan& plan, const SpawnExtras& extras,
                         Sandbox& s, bool shared) {
    if (sp.early) {
        s.stack = std::move(sp.early->stack);
        s.restore_dumpable = ::prctl(PR_GET_DUMPABLE) == 1;
        s.pid = sp.early->pid;
        s.pidfd = std::move(sp.early->pidfd);
        sp.early->plan = &plan;
        sp.early->ch = &sp.ch;
        ::pthread_sigmask(SIG_BLOCK, nullptr, &sp.early->mask);
        return {};
    }
    if (shared) {
        BUTTER_ASSIGN_OR_RETURN(s.stack, ChildStack::map(kChildStackSize));
        s.restore_dumpable = ::prctl(PR_GET_DUMPABLE) == 1;
        sp.start = {&plan, &sp.ch, {sp.failure.read.get(), sp.control.first.get()}};
        int pidfd = -1;
        int flags = static_cast<int>(sp.clone_ns.raw()) | CLONE_VM | CLONE_PIDFD | SIGCHLD;
        int pid = ::clone(child_main, s.stack.top(), flags, &sp.start, &pidfd);
        if (pid < 0)
            return fail(namespace_refused(Error("clone", errno, "CLONE_VM and the namespaces")));
        s.pid = pid;
        s.pidfd = Fd(pidfd);
        return {};
    }
    if (extras.mode == SpawnMode::Library) return clone_from_intermediate(sp, plan, s);
    if (extras.user_ns_fd >= 0 || extras.time_ns_fd >= 0)
        return clone_from_intermediate(sp, plan, s, extras.user_ns_fd, extras.pid_ns_fd,
                                       extras.time_ns_fd);
    Fd own_pid_ns;
    if (extras.pid_ns_fd >= 0) {
        BUTTER_ASSIGN_OR_RETURN(own_pid_ns, open("/proc/self/ns/pid", O_RDONLY));
        if (::setns(extras.pid_ns_fd, CLONE_NEWPID) < 0)
            return fail_errno("setns", "linux.namespaces[].path (pid)");
    }
    CloneArgs args;
    args.flags = sp.clone_ns.raw();
    auto cloned = clone3(args);
    // (this process's own children, such as hooks, in its own pid namespace again)
    if (own_pid_ns.valid() && (!cloned || !cloned->is_child()) &&
        ::setns(own_pid_ns.get(), CLONE_NEWPID) < 0) {
        if (cloned) (void)pidfd_send_signal(cloned->pidfd, SIGKILL);
        return fail_errno("setns", "/proc/self/ns/pid");
    }
    if (!cloned) return fail(namespace_refused(std::move(cloned).error()));
    CloneResult c = std::move(*cloned);
    if (c.is_child()) {
        // Only the sandbox's ends stay open here, so that EOF means what it should.
        own_pid_ns.reset();
        sp.failure.read.reset();
        sp.control.first.reset();
        run_child(plan, sp.ch);
    }
    s.pid = c.pid;
    s.pidfd = std::move(c.pidfd);
    return {};
}

// The one round trip (the child is waiting): what the child cannot do itself, then "go".
Result<void> let_go(Spawning& sp, const SpawnExtras& extras, const Sandbox& s) {
    // Our copies of the child's ends, first: with shared memory, once the child goes (at once
    // when it does not wait for us) nothing but closes and raw calls may run here (the
    // protocol's 3). (An early child has had its end of the socket since its clone, and gets
    // the rest with "go": our copies of those close after it.)
    sp.control.second.reset();
    if (!sp.early) {
        sp.failure.write.reset();
        sp.prepared = {};
    }
    if (!sp.ch.wait_for_parent) return {};
    if (sp.parent_maps) {
        BUTTER_TRY(write_uid_map(s.pid, sp.uid_text));
        BUTTER_TRY(write_gid_map(s.pid, sp.gid_text));
    }
    if (sp.join_cgroups) BUTTER_TRY(extras.cgroups->join(s.pid));
    if (extras.before_go) BUTTER_TRY(extras.before_go(s.pid, s.pidfd.get()));
    if (sp.early) {
        auto sent = send_early_go(sp.control.first.get(), sp.ch);
        sp.early->go_sent.store(true, std::memory_order_release);
        sp.failure.write.reset();  // EOF is the child's copies closing now
        return sent;
    }
    char byte = 1;
    if (::send(sp.control.first.get(), &byte, 1, MSG_NOSIGNAL) != 1)
        return fail_errno("send", "control socket");
    return {};
}

}  // namespace

bool host_refused_namespaces(const Error& e) {
    int err = e.errno_value();
    std::string_view call = e.call();
    if (call == "clone" || call == "clone3" || call == "unshare")
        return err == EPERM || err == EACCES || err == ENOSPC || err == EUSERS || err == EINVAL;
    // Root's copies of host mounts (prepare_host_trees): refused to a root without
    // CAP_SYS_ADMIN over the host's mounts (a container's).
    if (call == "open_tree" || call == "mount_setattr") return err == EPERM;
    // The maps root's supervisor writes: "/proc/PID/uid_map", gid_map, setgroups.
    const std::string& what = e.context();
    bool map =
        what.ends_with("/uid_map") || what.ends_with("/gid_map") || what.ends_with("/setgroups");
    return map && (err == EPERM || err == EACCES);
}

Result<SpawnMode> spawn_mode_from_env() {
    const char* v = ::getenv("BUTTER_SPAWN");
#if defined(__SANITIZE_ADDRESS__)
    // Under ASan the supervisor's memory holds the sanitizer's shadow: a child sharing it (the
    // sandbox's init) would be the memory cgroup's largest process, and the OOM killer would
    // take the supervisor with it. Sanitizer builds clone fork-like.
    if (!v || !*v) return SpawnMode::Fork;
#endif
    if (!v || !*v || std::strcmp(v, "auto") == 0) return SpawnMode::Auto;
    if (std::strcmp(v, "fork") == 0) return SpawnMode::Fork;
    return fail(Error::message("BUTTER_SPAWN", "unknown clone mode (auto, fork)", v));
}

Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                      const SpawnExtras& extras, EarlyChild early) {
    Spawning sp;
    if (early.started() && EarlyChild::fits(plan) && extras.mode == SpawnMode::Auto)
        sp.early = early.take();
    // One that does not fit dies while the sandbox starts (it may be inside its unshare, which
    // SIGKILL does not cut short), and is reaped when spawn returns: `early` goes last.
    early.kill();
    CommandArgs command(plan);
    BUTTER_TRY(prepare(sp, plan, original_mask, extras, command));
    bool shared = extras.mode == SpawnMode::Auto && !plan.namespaces.has(Namespace::Time) &&
                  !plan.seccomp_listener && extras.command_fd < 0;
    Sandbox s;
    BUTTER_TRY(clone_child(sp, plan, extras, s, shared));
    assert(!s.stack.in_use() || shared || sp.early);  // a shared stack for a shared child only
    auto go = let_go(sp, extras, s);
    s.failure = std::move(sp.failure.read);
    s.control = std::move(sp.control.first);
    if (go && (shared || sp.early)) {
        assert(!sp.early || sp.early->go_sent.load());  // the protocol's 2, then 3
        wait_for_setup(s, extras, plan.stop_timeout.count());
        assert(s.waited);  // the protocol's 4: the memory is the supervisor's again
    }
    if (!go) {
        (void)pidfd_send_signal(s.pidfd, SIGKILL);
        (void)waitid_pidfd(s.pidfd, __WALL);
    }
#if defined(__SANITIZE_ADDRESS__)
    if (sp.start.lsan_disabled || (sp.early && sp.early->lsan_disabled))
        __lsan_enable();  // the child is done with our memory either way
#endif
    if (!go) return fail(std::move(go).error());
    return s;
}

}  // namespace butter::launcher
