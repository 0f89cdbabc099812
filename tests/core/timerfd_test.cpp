#include "butter/timerfd.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <thread>

namespace butter {
namespace {

using namespace std::chrono_literals;

TEST(TimerFd, OneShotRelative) {
    auto t = TimerFd::create(Clock::Monotonic);
    ASSERT_TRUE(t) << t.error().what();
    ASSERT_TRUE(t->set_relative(10ms));
    auto setting = t->get();
    ASSERT_TRUE(setting);
    EXPECT_GT(setting->remaining, 0ns);
    EXPECT_LE(setting->remaining, 10ms);
    EXPECT_EQ(setting->interval, 0ns);
    auto start = std::chrono::steady_clock::now();
    auto n = t->read_event();  // blocks until expiry
    ASSERT_TRUE(n && n->has_value());
    EXPECT_EQ(**n, 1u);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 9ms);
    EXPECT_EQ(t->get()->remaining, 0ns);  // one-shot: disarmed now
}

TEST(TimerFd, PeriodicCountsExpirations) {
    auto t = TimerFd::create(Clock::Monotonic, TimerFdFlag::NonBlock);
    ASSERT_TRUE(t);
    EXPECT_FALSE(t->read_event()->has_value());
    ASSERT_TRUE(t->set_relative(1ms, 1ms));
    std::this_thread::sleep_for(30ms);
    auto n = t->read_event();
    ASSERT_TRUE(n && n->has_value());
    EXPECT_GE(**n, 5u);  // several periods went unread
    EXPECT_EQ(t->get()->interval, 1ms);
    ASSERT_TRUE(t->disarm());
    EXPECT_EQ(t->get()->remaining, 0ns);
}

TEST(TimerFd, AbsoluteOnBoottime) {
    auto t = TimerFd::create(Clock::Boottime, TimerFdFlag::NonBlock);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->clock(), Clock::Boottime);
    auto now = clock_now(Clock::Boottime);
    ASSERT_TRUE(now);
    ASSERT_TRUE(t->set_absolute(*now + 15ms));
    EXPECT_FALSE(t->read_event()->has_value());
    struct pollfd p {
        t->fd(), POLLIN, 0
    };
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    auto after = clock_now(Clock::Boottime);
    EXPECT_GE(*after, *now + 15ms);
    auto n = t->read_event();
    ASSERT_TRUE(n && n->has_value());
    EXPECT_EQ(**n, 1u);
}

TEST(TimerFd, AbsoluteInThePastFiresAtOnce) {
    auto t = TimerFd::create(Clock::Monotonic, TimerFdFlag::NonBlock);
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->set_absolute(1ns));
    struct pollfd p {
        t->fd(), POLLIN, 0
    };
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    EXPECT_EQ(**t->read_event(), 1u);
}

TEST(TimerFd, RealtimeClock) {
    auto t = TimerFd::create(Clock::Realtime, TimerFdFlag::NonBlock);
    ASSERT_TRUE(t);
    auto now = clock_now(Clock::Realtime);
    ASSERT_TRUE(now);
    EXPECT_GT(*now, std::chrono::hours(24 * 365 * 50));  // after 2020
    ASSERT_TRUE(t->set_absolute(*now + 5ms, {}, true));
    struct pollfd p {
        t->fd(), POLLIN, 0
    };
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    EXPECT_EQ(**t->read_event(), 1u);
}

}  // namespace
}  // namespace butter
