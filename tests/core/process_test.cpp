#include "butter/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <vector>

#include <sys/syscall.h>

#include "butter/fd.hpp"
#include "butter/seccomp.hpp"

#include "../support/child.hpp"
#include "../support/userns.hpp"

namespace butter {
namespace {

TEST(Process, RawPidsMatchLibc) {
    EXPECT_EQ(butter::getpid(), ::getpid());
    EXPECT_EQ(butter::getppid(), ::getppid());
    EXPECT_EQ(butter::gettid(), ::gettid());
}

TEST(Process, PidNamespaceInitSeesOneAndZero) {
    bool root = test::is_root();
    BUTTER_REQUIRE(root || test::have_userns(), "USERNS", "no user namespaces for a pid namespace");
    pid_t outer = butter::getpid();
    // The child clones itself into a new pid namespace (with a user namespace when not root)
    // and checks what the raw calls return on each side.
    auto r = test::run_in_child([root, outer] {
        CloneArgs args;
        args.flags = CLONE_NEWPID | (root ? 0 : CLONE_NEWUSER);
        auto c = clone3(args);
        CHILD_OK(c);
        if (c->is_child()) {
            if (butter::getpid() != 1) ::_exit(10);
            if (butter::getppid() != 0) ::_exit(11);
            ::_exit(0);
        }
        CHILD_ASSERT(butter::getpid() != 1, "parent pid " << butter::getpid());
        CHILD_ASSERT(butter::getppid() == outer, "parent's ppid " << butter::getppid());
        CHILD_ASSERT(c->pid > 1, "pid " << c->pid);
        auto st = waitid_pidfd(c->pidfd);
        CHILD_OK(st);
        CHILD_ASSERT(st->has_value() && (*st)->exited() && (*st)->code == 0,
                     "init saw wrong pids: " << (*st)->to_string());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

// Where a filter answers ENOSYS for clone3 (Docker's default profile, valgrind), clone3()
// falls back to clone(2): same namespaces, same pidfd. CLONE_NEWTIME cannot ride on clone(2)
// and gets a clear error instead.
TEST(Process, Clone3FallsBackToCloneWhereClone3IsFiltered) {
    bool root = test::is_root();
    BUTTER_REQUIRE(root || test::have_userns(), "USERNS", "no user namespaces for a pid namespace");
    auto r = test::run_in_child([root] {
        auto filter = SeccompFilter::create(SeccompAction::allow());
        CHILD_OK(filter);
        CHILD_OK(filter->add_rule(SeccompAction::error(ENOSYS), "clone3"));
        CHILD_OK(filter->load());
        CHILD_ASSERT(::syscall(SYS_clone3, nullptr, 0) < 0 && errno == ENOSYS, "not filtered");

        CloneArgs args;
        args.flags = CLONE_NEWPID | CLONE_NEWUTS | (root ? 0 : CLONE_NEWUSER);
        auto c = clone3(args);
        CHILD_OK(c);
        if (c->is_child()) ::_exit(butter::getpid() == 1 ? 42 : 1);
        CHILD_ASSERT(c->pidfd.valid(), "no pidfd from clone(2)");
        auto st = waitid_pidfd(c->pidfd);
        CHILD_OK(st);
        CHILD_ASSERT(st->has_value() && (*st)->exited() && (*st)->code == 42,
                     "child: " << (*st)->to_string());

        args.flags |= CLONE_NEWTIME;
        auto t = clone3(args);
        CHILD_ASSERT(!t, "CLONE_NEWTIME through clone(2)");
        CHILD_ASSERT(t.error().what().find("CLONE_NEWTIME") != std::string::npos, t.error().what());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Process, WaitidPidfdReportsExitCode) {
    auto c = clone3(CloneArgs{});
    ASSERT_TRUE(c) << c.error().what();
    if (c->is_child()) ::_exit(42);
    ASSERT_TRUE(c->pidfd.valid());
    auto st = waitid_pidfd(c->pidfd);
    ASSERT_TRUE(st) << st.error().what();
    ASSERT_TRUE(st->has_value());
    EXPECT_TRUE((*st)->exited());
    EXPECT_EQ((*st)->code, 42);
    EXPECT_EQ((*st)->pid, c->pid);
    EXPECT_EQ((*st)->shell_status(), 42);
    EXPECT_EQ((*st)->to_string(), "exited 42");
}

// The resources of that one child (and what it reaped), where RUSAGE_CHILDREN sums every
// child the process ever waited for.
TEST(Process, WaitidPidfdReportsTheChildsOwnUsage) {
    auto c = clone3(CloneArgs{});
    ASSERT_TRUE(c) << c.error().what();
    if (c->is_child()) {
        // ~50 ms of CPU, and 8 MiB touched.
        volatile unsigned long x = 0;
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        while (std::chrono::steady_clock::now() < until)
            x = x + 1;
        std::vector<char> v(8 << 20, 1);
        ::_exit(v[4096] == 1 ? 0 : 1);
    }
    struct rusage ru {};
    auto st = waitid_pidfd(c->pidfd, 0, &ru);
    ASSERT_TRUE(st) << st.error().what();
    ASSERT_TRUE(st->has_value());
    EXPECT_EQ((*st)->code, 0);
    EXPECT_GE(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 +
                  ru.ru_stime.tv_usec,
              20000);
    EXPECT_GE(ru.ru_maxrss, 8 * 1024);
}

TEST(Process, PidfdOpenSignalAndWait) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::pause();
        ::_exit(0);
    }
    auto pidfd = pidfd_open(pid, true);
    ASSERT_TRUE(pidfd) << pidfd.error().what();
    auto none = waitid_pidfd(*pidfd, WNOHANG);
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(pidfd_send_signal(*pidfd, SIGKILL));
    struct pollfd p {
        pidfd->get(), POLLIN, 0
    };  // readable once the process has exited
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    auto st = waitid_pidfd(*pidfd);
    ASSERT_TRUE(st) << st.error().what();
    ASSERT_TRUE(st->has_value());
    EXPECT_TRUE((*st)->signaled());
    EXPECT_EQ((*st)->code, SIGKILL);
    EXPECT_EQ((*st)->shell_status(), 128 + SIGKILL);
    EXPECT_EQ((*st)->to_string(), "killed by SIGKILL");
    // Reaped: signalling again fails with ESRCH.
    auto again = pidfd_send_signal(*pidfd, SIGKILL);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), ESRCH);
}

// /proc/PID/stat's state, parent and start time, whatever the command's name holds; a zombie
// reads 'Z', a reaped pid ENOENT.
TEST(Process, ProcessStatReadsStateParentAndStartTime) {
    auto self = process_stat(butter::getpid());
    ASSERT_TRUE(self) << self.error().what();
    EXPECT_EQ(self->state, 'R');
    EXPECT_EQ(self->ppid, ::getppid());
    EXPECT_GT(self->start_time, 0u);
    pid_t child = ::fork();
    if (child == 0) {
        ::prctl(PR_SET_NAME, "a) b ) (c", 0, 0, 0);
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
    auto zombie = process_stat(child);
    ASSERT_TRUE(zombie) << zombie.error().what();
    EXPECT_EQ(zombie->state, 'Z');
    EXPECT_EQ(zombie->ppid, ::getpid());
    EXPECT_GE(zombie->start_time, self->start_time);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    auto gone = process_stat(child);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().errno_value(), ENOENT);
}

TEST(Process, PidfdOpenUnknownPid) {
    auto r = pidfd_open(0x3fffffff);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ESRCH);
}

TEST(Process, WaitidPidAny) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(7);
    auto st = waitid_pid(pid);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->has_value());
    EXPECT_EQ((*st)->pid, pid);
    EXPECT_EQ((*st)->code, 7);
}

TEST(Process, PrctlSwitches) {
    auto r = test::run_in_child([] {
        CHILD_ASSERT(!*no_new_privs(), "nnp already set");
        CHILD_OK(set_no_new_privs());
        CHILD_ASSERT(*no_new_privs(), "nnp not set");
        CHILD_OK(set_parent_death_signal(SIGKILL));
        CHILD_OK(set_dumpable(false));
        CHILD_OK(set_child_subreaper(true));
        CHILD_OK(set_process_name("butter-test"));
        char name[17] = {};
        CHILD_ASSERT(::prctl(PR_GET_NAME, name) == 0 && std::string(name) == "butter-test", name);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Process, CloseRangeClosesInheritedFds) {
    auto r = test::run_in_child([] {
        int a = ::dup(0), b = ::dup(0);
        CHILD_ASSERT(a > 2 && b > 2, "dup");
        CHILD_OK(close_range(3, ~0U));
        CHILD_ASSERT(::fcntl(a, F_GETFD) < 0 && ::fcntl(b, F_GETFD) < 0, "fds still open");
        CHILD_ASSERT(::fcntl(0, F_GETFD) >= 0, "stdin closed");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
