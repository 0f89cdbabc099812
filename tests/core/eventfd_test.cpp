#include "butter/eventfd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace butter {
namespace {

TEST(EventFd, CounterModeSumsAndResets) {
    auto e = EventFd::create(3, EventFdFlag::NonBlock);
    ASSERT_TRUE(e) << e.error().what();
    EXPECT_TRUE(::fcntl(e->fd(), F_GETFD) & FD_CLOEXEC);
    ASSERT_TRUE(e->write(4));
    ASSERT_TRUE(e->write(5));
    auto v = e->read_event();
    ASSERT_TRUE(v && v->has_value());
    EXPECT_EQ(**v, 12u);
    auto empty = e->read_event();
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->has_value());
    EXPECT_TRUE(e->read_events()->empty());
}

TEST(EventFd, SemaphoreModeCountsDown) {
    auto e = EventFd::create(0, EventFdFlag::NonBlock | EventFdFlag::Semaphore);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->write(3));
    for (int i = 0; i < 3; ++i) {
        auto v = e->read_event();
        ASSERT_TRUE(v && v->has_value());
        EXPECT_EQ(**v, 1u);
    }
    EXPECT_FALSE(e->read_event()->has_value());
}

TEST(EventFd, OverflowWouldBlock) {
    auto e = EventFd::create(0, EventFdFlag::NonBlock);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->write(0xfffffffffffffffeULL));
    auto w = e->write(1);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().errno_value(), EAGAIN);
    EXPECT_EQ(w.error().what(), "write(eventfd): Resource temporarily unavailable");
}

TEST(EventFd, BlockingReadWakesOnWriteFromAnotherProcess) {
    auto e = EventFd::create();
    ASSERT_TRUE(e);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::usleep(20'000);
        ::_exit(e->write(7) ? 0 : 1);
    }
    auto v = e->read_event();
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(v && v->has_value());
    EXPECT_EQ(**v, 7u);
    EXPECT_EQ(st, 0);
}

TEST(EventFd, FlagsToString) {
    EXPECT_EQ(to_string(EventFdFlag::NonBlock | EventFdFlag::Semaphore), "NonBlock|Semaphore");
}

}  // namespace
}  // namespace butter
