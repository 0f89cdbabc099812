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
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
Result<HostTrees> prepare_host_trees(const SandboxPlan& plan) {
    HostTrees out;
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
        BUTTER_ASSIGN_OR_RETURN(Fd userns, make_user_namespace(std::span(&u, 1), std::span(&g, 1)));
        BUTTER_ASSIGN_OR_RETURN(Fd src, reopen_host_path(m.source, m.source_dev, m.source_ino));
        BUTTER_ASSIGN_OR_RETURN(out.binds[i],
                                open_tree(src, "", OpenTreeFlag::Clone | OpenTreeFlag::EmptyPath));
        attr.set = MountAttr::IdMap;
        if (m.read_only) attr.set |= MountAttr::ReadOnly;  // root's own, bound read-only
        attr.userns_fd = userns.get();
        auto r = mount_setattr(out.binds[i], "", false, attr);
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

// --- the early child -----------------------------------------------------------------------

struct EarlyChild::State {
    ChildStack stack;    // first: destroyed last, once the child is gone
    SocketPair control;  // the only descriptors made before the clone; the rest come with "go"
    pid_t pid = 0;
    Fd pidfd;
    // What the child reads: at its start (set before the clone and not written after it) ...
    int close_fd = -1;  // the supervisor's end
    int control_fd = -1;
    // ... and after "go" (set by spawn before it).
    const SandboxPlan* plan = nullptr;
    const ChildChannels* ch = nullptr;
    sigset_t mask{};  // the supervisor's at spawn: what a spawn child starts with
    bool lsan_disabled = false;
    std::atomic<bool> go_sent{false};  // set once "go" is on the socket (wait_awake_for_go)
    // The scheduler tends to queue the child behind the supervisor on the supervisor's CPU,
    // where the two would take turns: it is put on another one until "go" (by itself, should
    // it run first, and by the supervisor), and gets the supervisor's CPUs back after it.
    cpu_set_t one_cpu{};
    cpu_set_t all_cpus{};

    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
        if (!pidfd.valid()) return;
        (void)pidfd_send_signal(pidfd, SIGKILL);
        (void)waitid_pidfd(pidfd);
    }
};

namespace {

// The namespaces the early child makes itself (CLONE_NEWPID only takes effect at a clone).
// (And not the cgroup namespace: it is rooted where the child is when it is made, so it is made
// after "go", once the child is in the sandbox's cgroup: ChildChannels::late_cgroup_ns.)
constexpr Namespaces kUnshared =
    EarlyChild::kNamespaces.without(Namespace::User | Namespace::Pid | Namespace::Cgroup);
// "go" carries at most this many descriptors: the failure pipe, the supervisor's pidfd,
// /dev/null, stdout, stderr, the terminal, the host trees (/dev/null's and the device nodes')
// and one per mount.
constexpr int kMaxEarlyFds = 64;
// The descriptors "go" carries, in the order it carries them: `f` on each field of `ch` that
// holds one (-1: none, not sent). One list for the sender and the receiver.
template <typename Channels, typename F>
void for_each_go_fd(Channels& ch, F f) {
    for (auto* fd : {&ch.error_fd, &ch.parent_pidfd, &ch.null_fd, &ch.stdout_fd, &ch.stderr_fd,
                     &ch.tty_fd, &ch.null_tree})
        f(*fd);
    for (auto& fd : ch.dev_nodes)
        f(fd);
    for (auto& fd : ch.prepared)
        f(fd);
}

// How long the child spins for "go" before it sleeps in recvmsg.
constexpr std::int64_t kGoSpinNs = 1'000'000;

// The child's namespaces are made; "go" is usually near. Sleeping for it would halt this CPU,
// and a halted vCPU takes 0.1-0.3 ms to wake: spin for it a while instead (the whole start-up
// ~0.3 ms faster on the benchmark's VM, for no more CPU time in all), then sleep as before.
void wait_awake_for_go(const EarlyChild::State& st) {
    std::int64_t until = monotonic_ns() + kGoSpinNs;
    for (unsigned i = 1; !st.go_sent.load(std::memory_order_acquire); ++i) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
        if (i % 256 == 0 && monotonic_ns() > until) return;  // the vDSO: no errno, no state
    }
}

// After "go" (`m`, received): the supervisor waits (wait_for_setup) and the memory is this
// process's.
[[noreturn]] void early_go(EarlyChild::State& st, long unshared, const struct msghdr& m) {
#if defined(__SANITIZE_ADDRESS__)
    __lsan_disable();  // as child_main
    st.lsan_disabled = true;
#endif
    int fds[kMaxEarlyFds];
    int count = 0;
    if (const struct cmsghdr* c = CMSG_FIRSTHDR(&m);
        c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        std::memcpy(fds, CMSG_DATA(c), sizeof(int) * static_cast<std::size_t>(count));
    }
    ::pthread_sigmask(SIG_SETMASK, &st.mask, nullptr);
    ChildChannels ch = *st.ch;  // the supervisor's, with the numbers the descriptors have here
    ch.wait_for_parent = false;
    int next = 0;
    bool missing = false;
    for_each_go_fd(ch, [&](int& fd) {
        if (fd < 0) return;
        if (next == count)
            missing = true;
        else
            fd = fds[next++];
    });
    if (missing || next != count)
        die(ch, Step::WaitParent, Error("recvmsg", EBADF, "the descriptors of \"go\""));
    if (unshared < 0) die(ch, Step::Namespaces, Error("unshare", static_cast<int>(-unshared)));
    if (::sched_setaffinity(0, sizeof st.all_cpus, &st.all_cpus) < 0)
        die(ch, Step::Namespaces, Error::from_errno("sched_setaffinity", "the supervisor's CPUs"));
    run_child(*st.plan, ch);
}

// Until "go": this stack and raw system calls only (raw.hpp), and no [[noreturn]] call (ASan
// would unpoison the stack above, the supervisor's): the supervisor runs meanwhile. A return
// is clone's exit(2).
int early_main(void* arg) {
    auto* st = static_cast<EarlyChild::State*>(arg);
    int control = st->control_fd;
    raw::call(SYS_sched_setaffinity, 0, sizeof st->one_cpu, &st->one_cpu);
    raw::call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    std::uint64_t all = ~std::uint64_t{0};
    raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, 8);
    // With the supervisor's end closed here, its death (before the death signal was armed,
    // too) is EOF on the socket.
    raw::call(SYS_close, st->close_fd);
    long unshared = raw::call(SYS_unshare, kUnshared.raw());
    wait_awake_for_go(*st);

    char byte = 0;
    struct iovec iov {
        &byte, 1
    };
    alignas(struct cmsghdr) char control_buf[CMSG_SPACE(sizeof(int) * kMaxEarlyFds)];
    struct msghdr m {};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control_buf;
    m.msg_controllen = sizeof control_buf;
    long got;
    do
        got = raw::call(SYS_recvmsg, control, &m, MSG_CMSG_CLOEXEC);
    while (got == -EINTR);
    if (got <= 0 || (m.msg_flags & MSG_CTRUNC)) return 125;  // discarded, or nothing to go by
    early_go(*st, unshared, m);
}

// "go" for an early child: one byte and the descriptors it needs. Before the send the child
// waits in recvmsg; after it, only raw calls and this stack (wait_for_setup): hence no
// send_fds, which frees its buffer after the send, while the child may be allocating.
Result<void> send_early_go(int socket, const ChildChannels& ch) {
    int fds[kMaxEarlyFds];
    int count = 0;
    for_each_go_fd(ch, [&](const int& fd) {
        if (fd >= 0 && count < kMaxEarlyFds) fds[count++] = fd;
    });
    char byte = 1;
    struct iovec iov {
        &byte, 1
    };
    alignas(struct cmsghdr) char control_buf[CMSG_SPACE(sizeof(int) * kMaxEarlyFds)] = {};
    struct msghdr m {};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (count > 0) {
        m.msg_control = control_buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<std::size_t>(count));
        struct cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<std::size_t>(count));
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<std::size_t>(count));
    }
    if (::sendmsg(socket, &m, MSG_NOSIGNAL) != 1) return fail_errno("sendmsg", "control socket");
    return {};
}

}  // namespace

EarlyChild::EarlyChild() = default;
EarlyChild::EarlyChild(EarlyChild&&) noexcept = default;
EarlyChild& EarlyChild::operator=(EarlyChild&&) noexcept = default;
EarlyChild::~EarlyChild() = default;

std::unique_ptr<EarlyChild::State> EarlyChild::take() {
    return std::move(state_);
}

void EarlyChild::kill() {
    if (state_ && state_->pidfd.valid()) (void)pidfd_send_signal(state_->pidfd, SIGKILL);
}

bool EarlyChild::fits(const SandboxPlan& plan) {
    return plan.namespaces == kNamespaces && !plan.seccomp_listener &&
           plan.mounts.size() + 7 + kDevNodes.size() <= static_cast<std::size_t>(kMaxEarlyFds);
}

Result<EarlyChild> EarlyChild::start() {
    auto st = std::make_unique<State>();
    // On one CPU the child's head start would only delay the supervisor: none then.
    if (::sched_getaffinity(0, sizeof st->all_cpus, &st->all_cpus) < 0)
        return fail_errno("sched_getaffinity");
    int here = ::sched_getcpu();
    int other = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && other < 0; ++cpu)
        if (CPU_ISSET(cpu, &st->all_cpus) && cpu != here) other = cpu;
    if (other < 0 || CPU_COUNT(&st->all_cpus) < 2) return EarlyChild();
    CPU_SET(other, &st->one_cpu);
    // Deeper under ASan: the supervisor loads and plans on the main stack meanwhile.
    BUTTER_ASSIGN_OR_RETURN(st->stack, ChildStack::map(kChildStackSize, 4u << 20));
    BUTTER_ASSIGN_OR_RETURN(st->control, SocketPair::create(SOCK_SEQPACKET));
    st->close_fd = st->control.first.get();
    st->control_fd = st->control.second.get();
    int pidfd = -1;
    int flags = static_cast<int>((Namespace::User | Namespace::Pid).raw()) | CLONE_VM |
                CLONE_PIDFD | SIGCHLD;
    int pid = ::clone(early_main, st->stack.top(), flags, st.get(), &pidfd);
    if (pid < 0) return fail_errno("clone", "CLONE_VM, the user and pid namespaces");
    st->pid = pid;
    st->pidfd = Fd(pidfd);
    // Not fatal: the child then only starts on whichever CPU the scheduler gives it.
    (void)::sched_setaffinity(pid, sizeof st->one_cpu, &st->one_cpu);
    EarlyChild e;
    e.state_ = std::move(st);
    return e;
}

Result<Sandbox> spawn(const SandboxPlan& plan, const sigset_t& original_mask,
                      const SpawnExtras& extras, EarlyChild early) {
    std::unique_ptr<EarlyChild::State> e;
    if (early.started() && EarlyChild::fits(plan)) e = early.take();
    // One that does not fit dies while the sandbox starts (it may be inside its unshare, which
    // SIGKILL does not cut short), and is reaped when spawn returns: `early` goes last.
    early.kill();
    HostTrees prepared;
    if (plan.privileged && plan.namespaces.has(Namespace::User)) {
        BUTTER_ASSIGN_OR_RETURN(prepared, prepare_host_trees(plan));
    }
    SocketPair control;
    if (e) {
        control = std::move(e->control);
    } else {
        BUTTER_ASSIGN_OR_RETURN(control, SocketPair::create(SOCK_SEQPACKET));
    }
    BUTTER_ASSIGN_OR_RETURN(Pipe failure, Pipe::create());
    BUTTER_ASSIGN_OR_RETURN(Fd self, pidfd_open(::getpid()));
    BUTTER_ASSIGN_OR_RETURN(Fd null, open("/dev/null", O_RDWR));
    CommandArgs command(plan);

    ChildChannels ch;
    ch.error_fd = failure.write.get();
    ch.control_fd = control.second.get();
    ch.parent_pidfd = self.get();
    ch.null_fd = null.get();
    ch.original_mask = original_mask;
    ch.sigpipe_default = extras.sigpipe_default;
    ch.stdout_fd = extras.stdout_fd;
    ch.stderr_fd = extras.stderr_fd;
    ch.tty_fd = extras.tty_fd;
    ch.argv = command.argv.data();
    ch.envp = command.envp.data();
    ch.pid_slots = command.pid_slots;
    bool shared = !plan.namespaces.has(Namespace::Time) && !plan.seccomp_listener;
    bool join_cgroups = extras.cgroups && !extras.cgroups->empty();
    // A cgroup namespace is rooted at the cgroup its maker is in: made by the child once the
    // supervisor has moved it into the sandbox's, /proc/self/cgroup shows "/" and nothing of
    // the host's layout.
    Namespaces clone_ns = plan.namespaces;
    if (plan.namespaces.has(Namespace::Cgroup) && (join_cgroups || e)) {
        clone_ns = clone_ns.without(Namespace::Cgroup);
        ch.late_cgroup_ns = true;
    }
    bool parent_maps = plan.namespaces.has(Namespace::User) && !plan.child_writes_maps;
    ch.wait_for_parent = join_cgroups || parent_maps || e;
    for (const Fd& f : prepared.binds)
        ch.prepared.push_back(f.valid() ? f.get() : -1);
    ch.have_host_trees = prepared.host_nodes;
    for (std::size_t i = 0; i < kDevNodes.size(); ++i)
        ch.dev_nodes[i] = prepared.dev_nodes[i].valid() ? prepared.dev_nodes[i].get() : -1;
    ch.null_tree = prepared.null.valid() ? prepared.null.get() : -1;

    // Formatted before the clone: after it, every page the supervisor writes costs a
    // copy-on-write fault while the child waits for the maps.
    std::string uid_text, gid_text;
    if (parent_maps) {
        uid_text = format_id_map(plan.uid_map);
        gid_text = format_id_map(plan.gid_map);
    }

    Sandbox s;
    ChildStart start{&plan, &ch, {failure.read.get(), control.first.get()}};
    if (e) {
        s.stack = std::move(e->stack);
        s.restore_dumpable = ::prctl(PR_GET_DUMPABLE) == 1;
        s.pid = e->pid;
        s.pidfd = std::move(e->pidfd);
        e->plan = &plan;
        e->ch = &ch;
        ::pthread_sigmask(SIG_BLOCK, nullptr, &e->mask);
    } else if (shared) {
        BUTTER_ASSIGN_OR_RETURN(s.stack, ChildStack::map(kChildStackSize));
        s.restore_dumpable = ::prctl(PR_GET_DUMPABLE) == 1;
        int pidfd = -1;
        int flags = static_cast<int>(clone_ns.raw()) | CLONE_VM | CLONE_PIDFD | SIGCHLD;
        int pid = ::clone(child_main, s.stack.top(), flags, &start, &pidfd);
        if (pid < 0) return fail_errno("clone", "CLONE_VM and the namespaces");
        s.pid = pid;
        s.pidfd = Fd(pidfd);
    } else {
        CloneArgs args;
        args.flags = clone_ns.raw();
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
        // (An early child has had its end of the socket since its clone, and gets the rest
        // with "go": our copies of those close after it.)
        control.second.reset();
        if (!e) {
            failure.write.reset();
            prepared = {};
        }
        if (!ch.wait_for_parent) return {};
        if (parent_maps) {
            BUTTER_TRY(write_uid_map(s.pid, uid_text));
            BUTTER_TRY(write_gid_map(s.pid, gid_text));
        }
        if (join_cgroups) BUTTER_TRY(extras.cgroups->join(s.pid));
        if (e) {
            auto sent = send_early_go(control.first.get(), ch);
            e->go_sent.store(true, std::memory_order_release);
            failure.write.reset();  // EOF is the child's copies closing now
            return sent;
        }
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
    if (start.lsan_disabled || (e && e->lsan_disabled))
        __lsan_enable();  // the child is done with our memory either way
#endif
    if (!go) return fail(std::move(go).error());
    return s;
}

}  // namespace butter::launcher
