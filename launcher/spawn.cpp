#include "spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <butter/mount.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/splice.hpp>
#include <butter/unix_socket.hpp>

#include "cgroup.hpp"
#include "child/child.hpp"
#include "child/raw.hpp"

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

// The child's stack: the set-up's frames, the command's until its exec (vfork), init's loop.
constexpr std::size_t kChildStackSize = 1 << 20;

// What the shared-memory child starts with: its arguments, and the supervisor's ends of the
// pipe and socket, which it closes (its own fd table; the Fd objects are the supervisor's).
struct ChildStart {
    const SandboxPlan* plan;
    const ChildChannels* ch;
    int close_fds[2];
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
// every other process in it). Raw calls only, as wait_for_setup.
void kill_and_wait(int pidfd) {
    raw::call(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    struct pollfd p {
        pidfd, POLLIN, 0
    };
    while (raw::call(SYS_ppoll, &p, 1, nullptr, nullptr, 8) < 0) {
    }
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
        if (r < 0) continue;  // EINTR
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

Result<ChildStack> ChildStack::map(std::size_t size) {
    ChildStack s;
#if defined(__SANITIZE_ADDRESS__)
    // ASan knows one stack per thread, and before every [[noreturn]] call unpoisons from the
    // stack pointer to that stack's top (from elsewhere it warns, or worse): the child's stack
    // is part of the main one instead, far below this frame (the stack grows down to it).
    int here = 0;
    s.top_ = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(&here) - (2u << 20)) &
                                     ~std::uintptr_t{4095});
    (void)size;
#else
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
    CommandArgs command(plan);

    ChildChannels ch;
    ch.error_fd = failure.write.get();
    ch.control_fd = control.second.get();
    ch.parent_pidfd = self.get();
    ch.null_fd = null.get();
    ch.original_mask = original_mask;
    ch.stdout_fd = extras.stdout_fd;
    ch.stderr_fd = extras.stderr_fd;
    ch.tty_fd = extras.tty_fd;
    ch.argv = command.argv.data();
    ch.envp = command.envp.data();
    ch.pid_slots = command.pid_slots;
    bool shared = !plan.namespaces.has(Namespace::Time) && !plan.seccomp_listener;
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

    Sandbox s;
    ChildStart start{&plan, &ch, {failure.read.get(), control.first.get()}};
    if (shared) {
        BUTTER_ASSIGN_OR_RETURN(s.stack, ChildStack::map(kChildStackSize));
        s.restore_dumpable = ::prctl(PR_GET_DUMPABLE) == 1;
        int pidfd = -1;
        int flags = static_cast<int>(plan.namespaces.raw()) | CLONE_VM | CLONE_PIDFD | SIGCHLD;
        int pid = ::clone(child_main, s.stack.top(), flags, &start, &pidfd);
        if (pid < 0) return fail_errno("clone", "CLONE_VM and the namespaces");
        s.pid = pid;
        s.pidfd = Fd(pidfd);
    } else {
        CloneArgs args;
        args.flags = plan.namespaces.raw();
        BUTTER_ASSIGN_OR_RETURN(CloneResult c, clone3(args));
        if (c.is_child()) {
            // Only the sandbox's ends stay open here, so that EOF means what it should.
            failure.read.reset();
            control.first.reset();
            run_child(plan, ch);
        }
        s.pid = c.pid;
        s.pidfd = std::move(c.pidfd);
    }
    // The one round trip, first (the child is waiting): what the child cannot do itself,
    // then "go".
    auto go = [&]() -> Result<void> {
        // Our copies of the child's ends, first: with shared memory, once the child goes (at
        // once when it does not wait for us) nothing but closes and raw calls may run here.
        failure.write.reset();
        control.second.reset();
        prepared.clear();
        if (!ch.wait_for_parent) return {};
        if (parent_maps) {
            BUTTER_TRY(write_uid_map(s.pid, uid_text));
            BUTTER_TRY(write_gid_map(s.pid, gid_text));
        }
        if (join_cgroups) BUTTER_TRY(extras.cgroups->join(s.pid));
        char byte = 1;
        if (::send(control.first.get(), &byte, 1, MSG_NOSIGNAL) != 1)
            return fail_errno("send", "control socket");
        return {};
    }();
    s.failure = std::move(failure.read);
    s.control = std::move(control.first);
    if (go && shared) wait_for_setup(s, extras, plan.stop_timeout.count());
    if (!go) {
        (void)pidfd_send_signal(s.pidfd, SIGKILL);
        (void)waitid_pidfd(s.pidfd);
    }
#if defined(__SANITIZE_ADDRESS__)
    if (start.lsan_disabled) __lsan_enable();  // the child is done with our memory either way
#endif
    if (!go) return fail(std::move(go).error());
    return s;
}

}  // namespace butter::launcher
