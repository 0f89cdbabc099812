// The early child (spawn.hpp's EarlyChild): cloned before butter parses its command line,
// with the user and pid namespaces only, and handed the rest of the sandbox with "go".
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <butter/namespace.hpp>
#include <butter/process.hpp>

#include "child/raw.hpp"
#include "spawn/internal.hpp"

namespace butter::launcher {

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
    // (asleep in recvmsg until "go": a spin for it, tried before, spent up to 1 ms of CPU per
    // run for no gain when runs compete for the CPUs, issue 30's case)

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

}  // namespace

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
    // Not with network.mode = "user": its network namespace must exist before spawn's last
    // step, which enters it (the early child makes it on its own, later).
    return plan.namespaces == kNamespaces && !plan.seccomp_listener && !plan.net.on &&
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
    if (pid < 0)
        return fail(
            namespace_refused(Error("clone", errno, "CLONE_VM, the user and pid namespaces")));
    st->pid = pid;
    st->pidfd = Fd(pidfd);
    // Not fatal: the child then only starts on whichever CPU the scheduler gives it.
    (void)::sched_setaffinity(pid, sizeof st->one_cpu, &st->one_cpu);
    EarlyChild e;
    e.state_ = std::move(st);
    return e;
}

}  // namespace butter::launcher
