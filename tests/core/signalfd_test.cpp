#include "butter/signalfd.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "../support/child.hpp"

namespace butter {
namespace {

bool blocked(int sig) {
    sigset_t cur;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &cur);
    return sigismember(&cur, sig) == 1;
}

TEST(SignalSet, Membership) {
    SignalSet s{SIGTERM, SIGINT};
    EXPECT_TRUE(s.contains(SIGTERM));
    EXPECT_TRUE(s.contains(SIGINT));
    EXPECT_FALSE(s.contains(SIGHUP));
    s.remove(SIGTERM);
    EXPECT_FALSE(s.contains(SIGTERM));
    EXPECT_TRUE(SignalSet().empty());
    EXPECT_TRUE(SignalSet::full().contains(SIGUSR2));
}

TEST(SignalMaskGuard, BlocksAndRestores) {
    ASSERT_FALSE(blocked(SIGUSR1));
    {
        auto g = SignalMaskGuard::block(SignalSet{SIGUSR1});
        ASSERT_TRUE(g);
        EXPECT_TRUE(blocked(SIGUSR1));
        EXPECT_FALSE(sigismember(&g->previous(), SIGUSR1));
        auto moved = std::move(*g);
        EXPECT_TRUE(blocked(SIGUSR1));
    }
    EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(SignalNames, RoundTrip) {
    EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
    EXPECT_EQ(signal_name(SIGRTMIN + 2), "SIGRTMIN+2");
    EXPECT_EQ(*parse_signal("SIGHUP"), SIGHUP);
    EXPECT_EQ(*parse_signal("KILL"), SIGKILL);
    EXPECT_EQ(*parse_signal("15"), 15);
    EXPECT_EQ(*parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
    EXPECT_FALSE(parse_signal("SIGNOPE"));
    EXPECT_FALSE(parse_signal("0"));
    EXPECT_FALSE(parse_signal("15x"));
    EXPECT_FALSE(parse_signal(""));
    EXPECT_EQ(parse_signal("SIGFOO").error().what(), "parse_signal(\"SIGFOO\"): unknown signal");
}

TEST(SignalFd, DeliversBlockedSignalsWithSender) {
    auto r = test::run_in_child([] {
        SignalSet set{SIGUSR1, SIGUSR2};
        auto g = SignalMaskGuard::block(set);
        CHILD_OK(g);
        auto sfd = SignalFd::create(set, SignalFdFlag::NonBlock);
        CHILD_OK(sfd);
        auto none = sfd->read_event();
        CHILD_ASSERT(none && !none->has_value(), "event before any signal");
        CHILD_ASSERT(::kill(::getpid(), SIGUSR1) == 0, "kill");
        union sigval v;
        v.sival_int = 77;
        CHILD_ASSERT(::sigqueue(::getpid(), SIGUSR2, v) == 0, "sigqueue");
        auto evs = sfd->read_events();  // both in one read
        CHILD_OK(evs);
        CHILD_ASSERT(evs->size() == 2, "got " << evs->size());
        CHILD_ASSERT((*evs)[0].signo == SIGUSR1, (*evs)[0].to_string());
        CHILD_ASSERT((*evs)[0].pid == ::getpid() && (*evs)[0].uid == ::getuid(),
                     (*evs)[0].to_string());
        CHILD_ASSERT((*evs)[0].code == SI_USER, "code " << (*evs)[0].code);
        CHILD_ASSERT((*evs)[1].signo == SIGUSR2 && (*evs)[1].code == SI_QUEUE,
                     (*evs)[1].to_string());
        CHILD_ASSERT((*evs)[1].value == 77, "value " << (*evs)[1].value);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(SignalFd, ReadEventTakesOneAtATime) {
    auto r = test::run_in_child([] {
        SignalSet set{SIGUSR1, SIGUSR2, SIGHUP};
        auto g = SignalMaskGuard::block(set);
        auto sfd = SignalFd::create(set, SignalFdFlag::NonBlock);
        CHILD_OK(sfd);
        ::kill(::getpid(), SIGUSR1);
        ::kill(::getpid(), SIGUSR2);
        auto a = sfd->read_event();
        CHILD_ASSERT(a && a->has_value() && (*a)->signo == SIGUSR1, "first");
        CHILD_ASSERT(sfd->buffered() == 1, "buffered " << sfd->buffered());
        ::kill(::getpid(), SIGHUP);
        auto rest = sfd->read_events();  // the buffered one only
        CHILD_ASSERT(rest && rest->size() == 1 && (*rest)[0].signo == SIGUSR2, "buffered first");
        auto b = sfd->read_event();
        CHILD_ASSERT(b && b->has_value() && (*b)->signo == SIGHUP, "then the kernel");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(SignalFd, SetMaskChangesAcceptedSignals) {
    auto r = test::run_in_child([] {
        SignalSet set{SIGUSR1, SIGUSR2};
        auto g = SignalMaskGuard::block(set);
        auto sfd = SignalFd::create(SignalSet{SIGUSR1}, SignalFdFlag::NonBlock);
        CHILD_OK(sfd);
        ::kill(::getpid(), SIGUSR2);
        auto none = sfd->read_event();
        CHILD_ASSERT(none && !none->has_value(), "SIGUSR2 not in the fd's mask");
        CHILD_OK(sfd->set_mask(SignalSet{SIGUSR2}));
        auto got = sfd->read_event();
        CHILD_ASSERT(got && got->has_value() && (*got)->signo == SIGUSR2, "after set_mask");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(SignalFd, ChildExitArrivesAsSigchld) {
    auto r = test::run_in_child([] {
        SignalSet set{SIGCHLD};
        auto g = SignalMaskGuard::block(set);
        auto sfd = SignalFd::create(set);
        CHILD_OK(sfd);
        pid_t pid = ::fork();
        if (pid == 0) ::_exit(9);
        auto ev = sfd->read_event();  // blocking
        CHILD_OK(ev);
        CHILD_ASSERT((*ev)->signo == SIGCHLD && (*ev)->pid == pid && (*ev)->status == 9,
                     (*ev)->to_string() << " status " << (*ev)->status);
        CHILD_ASSERT((*ev)->code == CLD_EXITED, "code");
        ::waitpid(pid, nullptr, 0);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
