#include "butter/seccomp.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "../support/child.hpp"
#include "butter/process.hpp"
#include "butter/unix_socket.hpp"

namespace butter {
namespace {

long raw_getppid() {
    return ::syscall(SYS_getppid);
}

TEST(SeccompAction, ParseAndPrint) {
    EXPECT_EQ(SeccompAction::parse("allow")->kind, SeccompAction::Kind::Allow);
    EXPECT_EQ(*SeccompAction::parse("errno:EPERM"), SeccompAction::error(EPERM));
    EXPECT_EQ(*SeccompAction::parse("errno:13"), SeccompAction::error(EACCES));
    EXPECT_EQ(*SeccompAction::parse("kill"), SeccompAction::kill_process());
    EXPECT_EQ(*SeccompAction::parse("trace:7"), SeccompAction::trace(7));
    EXPECT_EQ(SeccompAction::error(ENOSYS).to_string(), "errno:ENOSYS");
    EXPECT_FALSE(SeccompAction::parse("errno:ENOPE"));
    EXPECT_FALSE(SeccompAction::parse("deny"));
    EXPECT_EQ(*parse_errno("EPERM"), EPERM);
    EXPECT_EQ(errno_name(ENOENT), "ENOENT");
}

TEST(Seccomp, ActionAvailability) {
    // This kernel (6.x) has every action butter uses.
    for (auto a : {SeccompAction::allow(), SeccompAction::kill_process(), SeccompAction::log(),
                   SeccompAction::notify(), SeccompAction::error(EPERM)}) {
        auto ok = seccomp_action_available(a);
        ASSERT_TRUE(ok) << ok.error().what();
        EXPECT_TRUE(*ok) << a.to_string();
    }
}

TEST(Seccomp, ResolveNames) {
    EXPECT_EQ(*resolve_syscall("getppid"), SYS_getppid);
    EXPECT_EQ(syscall_name(SYS_mount), "mount");
    auto bad = resolve_syscall("frobnicate");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().context(), "frobnicate");
    EXPECT_NE(bad.error().what().find("no such syscall"), std::string::npos);
    EXPECT_FALSE(syscall_known_on_any_arch("frobnicate"));
    EXPECT_TRUE(syscall_known_on_any_arch("socketcall"));  // i386 only
    EXPECT_FALSE(resolve_syscall("socketcall"));           // not on x86_64
    EXPECT_GE(max_known_syscall(), SYS_clone3);
}

TEST(Seccomp, UnknownSyscallRuleNamesIt) {
    auto f = SeccompFilter::create(SeccompAction::allow());
    ASSERT_TRUE(f);
    auto r = f->add_rule(SeccompAction::error(EPERM), "frobnicate");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().context(), "frobnicate");
    auto same = f->add_rule(SeccompAction::allow(), "getpid");
    ASSERT_FALSE(same);
    EXPECT_FALSE(same.error().hint().empty());
}

TEST(Seccomp, ErrnoRuleDeniesWithChosenErrno) {
    auto r = test::run_in_child([] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        CHILD_OK(f);
        CHILD_OK(f->add_rule(SeccompAction::error(EXDEV), "getppid"));
        CHILD_OK(f->load());
        errno = 0;
        long v = raw_getppid();
        CHILD_ASSERT(v == -1 && errno == EXDEV, "getppid " << v << " errno " << errno);
        CHILD_ASSERT(::syscall(SYS_getpid) > 0, "getpid denied");
        CHILD_ASSERT(*no_new_privs(), "load did not set no_new_privs");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Seccomp, KillRuleKillsProcess) {
    auto r = test::run_in_child([] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        CHILD_OK(f);
        CHILD_OK(f->add_rule(SeccompAction::kill_process(), "getppid"));
        CHILD_OK(f->load());
        raw_getppid();
        return 0;  // not reached
    });
    EXPECT_FALSE(r.exited);
    EXPECT_EQ(r.signal, SIGSYS);
}

TEST(Seccomp, ArgumentConditions) {
    auto r = test::run_in_child([] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        CHILD_OK(f);
        // dup(0) is denied, dup(1) is not; socket only for AF_UNIX.
        ArgCondition fd0{0, ArgOp::Eq, 0};
        CHILD_OK(f->add_rule(SeccompAction::error(EACCES), "dup", std::span(&fd0, 1)));
        ArgCondition not_unix{0, ArgOp::Ne, AF_UNIX};
        CHILD_OK(
            f->add_rule(SeccompAction::error(EAFNOSUPPORT), "socket", std::span(&not_unix, 1)));
        // Masked: deny clone with CLONE_NEWUSER in its flags.
        ArgCondition newuser{0, ArgOp::MaskedEq, CLONE_NEWUSER, CLONE_NEWUSER};
        CHILD_OK(f->add_rule(SeccompAction::error(EPERM), "unshare", std::span(&newuser, 1)));
        CHILD_OK(f->load());
        CHILD_ASSERT(::dup(0) == -1 && errno == EACCES, "dup(0) allowed");
        int d = ::dup(1);
        CHILD_ASSERT(d >= 0, "dup(1) denied");
        int u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHILD_ASSERT(u >= 0, "AF_UNIX denied");
        CHILD_ASSERT(::socket(AF_INET, SOCK_STREAM, 0) == -1 && errno == EAFNOSUPPORT, "AF_INET");
        CHILD_ASSERT(::unshare(CLONE_NEWUSER | CLONE_NEWNS) == -1 && errno == EPERM, "unshare");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Seccomp, ExportInParentLoadInChild) {
    auto f = SeccompFilter::create(SeccompAction::allow());
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->add_rule(SeccompAction::error(ENOTSUP), "getppid"));
    auto prog = f->export_bpf();
    ASSERT_TRUE(prog) << prog.error().what();
    ASSERT_GT(prog->size(), 4u);
    auto r = test::run_in_child([&] {
        CHILD_OK(set_no_new_privs());
        auto fd = load_bpf(*prog);
        CHILD_OK(fd);
        CHILD_ASSERT(!fd->valid(), "listener without asking");
        CHILD_ASSERT(raw_getppid() == -1 && errno == ENOTSUP, "filter not active");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
    // Without no_new_privs and without CAP_SYS_ADMIN, loading is refused with a hint.
    auto r2 = test::run_as_nobody([&] {
        auto fd = load_bpf(*prog);
        CHILD_ASSERT(!fd && fd.error().errno_value() == EACCES, "loaded without nnp");
        CHILD_ASSERT(!fd.error().hint().empty(), "no hint");
        return 0;
    });
    EXPECT_EQ(r2.code(), 0) << r2.output;
}

// The filter's default is allow; a deny rule exists so a real filter is in place.
BpfProgram deny_getppid_program() {
    auto f = SeccompFilter::create(SeccompAction::allow());
    (void)f->add_rule(SeccompAction::error(EPERM), "getppid");
    return *f->export_bpf();
}

TEST(Seccomp, X32SyscallIsKilled) {
    BpfProgram prog = deny_getppid_program();
    auto r = test::run_in_child([&] {
        CHILD_OK(set_no_new_privs());
        CHILD_OK(load_bpf(prog));
        // getppid through the x32 ABI: the x32 bit on the native number.
        ::syscall(0x40000000 | SYS_getppid);
        return 0;  // the bad-arch action kills us before this
    });
    EXPECT_FALSE(r.exited) << "an x32 syscall ran under the filter";
    EXPECT_EQ(r.signal, SIGSYS);
}

// The ceiling: a native call above it fails with the errno before the program sees it; at or
// below it, and through another ABI, the program decides as before.
TEST(Seccomp, SyscallCeilingFailsWhatIsAboveIt) {
    // getrandom (318) is above the ceiling; exit_group (231), below, still ends the child.
    BpfProgram prog = with_syscall_ceiling(deny_getppid_program(), SYS_getrandom - 1, ENOTSUP);
    ASSERT_EQ(prog.size(), deny_getppid_program().size() + 6);
    auto r = test::run_in_child([&] {
        CHILD_OK(set_no_new_privs());
        CHILD_OK(load_bpf(prog));
        char byte;
        errno = 0;
        CHILD_ASSERT(::syscall(SYS_getrandom, &byte, 1, 0) == -1 && errno == ENOTSUP,
                     "getrandom: not ENOTSUP");
        errno = 0;
        CHILD_ASSERT(::syscall(1000) == -1 && errno == ENOTSUP, "1000: not ENOTSUP");
        errno = 0;
        CHILD_ASSERT(::syscall(SYS_getppid) == -1 && errno == EPERM, "the program's rule lost");
        CHILD_ASSERT(::syscall(SYS_getpid) > 0, "getpid failed");
        // x32 is the program's to judge: its bad-arch action kills.
        ::syscall(0x40000000 | SYS_getpid);
        return 0;
    });
    EXPECT_FALSE(r.exited) << r.output;
    EXPECT_EQ(r.signal, SIGSYS) << r.output;
}

// getpid through int 0x80 (i386 number 20); -ENOSYS when IA32 emulation is off.
long int80_getpid() {
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret;
}

TEST(Seccomp, Int80SyscallIsKilled) {
    // Without a filter, int 0x80 either works (IA32 emulation on) or faults (off, or a
    // hypervisor that does not route it). Under the filter it must never return: SIGSYS when
    // the call reaches seccomp, the same fault when it cannot reach the kernel at all.
    auto probe = test::run_in_child([] {
        ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the fault into an abort
        return int80_getpid() > 0 ? 0 : 1;
    });
    int expected = probe.exited ? SIGSYS : probe.signal;
    if (!probe.exited)
        std::printf("note: int 0x80 faults here (signal %d) even without a filter\n", probe.signal);
    BpfProgram prog = deny_getppid_program();
    auto r = test::run_in_child([&] {
        ::signal(SIGSEGV, SIG_DFL);
        CHILD_OK(set_no_new_privs());
        CHILD_OK(load_bpf(prog));
        int80_getpid();
        return 0;
    });
    EXPECT_FALSE(r.exited) << "an i386 syscall ran under the filter";
    EXPECT_EQ(r.signal, expected);
}

// Notify rules need a listener someone reads: load() refuses them, and once the one listener
// load_with_listener() handed out is closed, a held call fails (ENOSYS) instead of waiting for
// ever on a copy libseccomp kept.
TEST(Seccomp, NotifyRulesNeedTheListenerAndEndWithIt) {
    auto plain = SeccompFilter::create(SeccompAction::allow());
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->load_with_listener());  // no notify rule: no listener
    auto r = test::run_in_child([] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        CHILD_OK(f);
        CHILD_OK(f->add_rule(SeccompAction::notify(), "getppid"));
        CHILD_ASSERT(!f->load(), "load() with a notify rule");
        auto listener = f->load_with_listener();
        CHILD_OK(listener);
        listener->reset();
        errno = 0;
        long v = ::syscall(SYS_getppid);
        CHILD_ASSERT(v == -1 && errno == ENOSYS, "getppid: " << v << " errno " << errno);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Seccomp, UserNotificationReachesParent) {
    auto pair = SocketPair::create(SOCK_STREAM);
    ASSERT_TRUE(pair);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pair->first.reset();
        auto f = SeccompFilter::create(SeccompAction::allow());
        if (!f || !f->add_rule(SeccompAction::notify(), "getppid")) ::_exit(10);
        auto listener = f->load_with_listener();
        if (!listener) ::_exit(11);
        int lfd = listener->get();
        if (!send_fds(pair->second, std::span(&lfd, 1))) ::_exit(12);
        listener->reset();
        errno = 0;
        long v = ::syscall(SYS_getppid, 11, 22);  // held until the parent answers
        if (v != -1 || errno != ENOMEDIUM) ::_exit(13);
        long w = ::syscall(SYS_getppid);  // answered with a value
        ::_exit(w == 4242 ? 0 : 14);
    }
    pair->second.reset();
    auto got = recv_fds(pair->first, 1);
    ASSERT_TRUE(got) << got.error().what();
    ASSERT_EQ(got->fds.size(), 1u);
    SeccompNotifyFd notify(std::move(got->fds[0]));
    auto n = notify.read_event();  // blocking
    ASSERT_TRUE(n) << n.error().what();
    ASSERT_TRUE(n->has_value());
    EXPECT_EQ((*n)->syscall_nr, SYS_getppid);
    EXPECT_EQ((*n)->syscall_name(), "getppid");
    EXPECT_EQ((*n)->pid, pid);
    EXPECT_EQ((*n)->args[0], 11u);
    EXPECT_EQ((*n)->args[1], 22u);
    EXPECT_TRUE(*notify.id_valid((*n)->id));
    ASSERT_TRUE(notify.respond_errno((*n)->id, ENOMEDIUM));
    auto second = notify.read_event();
    ASSERT_TRUE(second && second->has_value());
    ASSERT_TRUE(notify.respond_value((*second)->id, 4242));
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    // Non-blocking and nothing pending: nullopt, no hang.
    ASSERT_TRUE(set_nonblocking(notify.fd(), true));
    auto none = notify.read_event();
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
}

TEST(Seccomp, BpfListenerFromRawLoad) {
    auto f = SeccompFilter::create(SeccompAction::allow());
    ASSERT_TRUE(f->add_rule(SeccompAction::notify(), "getppid"));
    auto prog = f->export_bpf();
    ASSERT_TRUE(prog);
    auto pair = SocketPair::create(SOCK_STREAM);
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!set_no_new_privs()) ::_exit(10);
        BpfLoadOptions opts;
        opts.new_listener = true;
        auto listener = load_bpf(*prog, opts);
        if (!listener || !listener->valid()) ::_exit(11);
        int lfd = listener->get();
        if (!send_fds(pair->second, std::span(&lfd, 1))) ::_exit(12);
        listener->reset();
        long v = ::syscall(SYS_getppid);
        ::_exit(v == -1 && errno == EPERM ? 0 : 13);
    }
    auto got = recv_fds(pair->first, 1);
    ASSERT_TRUE(got && got->fds.size() == 1);
    SeccompNotifyFd notify(std::move(got->fds[0]));
    auto n = notify.read_events();
    ASSERT_TRUE(n);
    ASSERT_EQ(n->size(), 1u);
    EXPECT_NE((*n)[0].to_string().find("getppid("), std::string::npos);
    ASSERT_TRUE(notify.respond_errno((*n)[0].id, EPERM));
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

}  // namespace
}  // namespace butter
