#include "butter/loop.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "butter/eventfd.hpp"
#include "butter/inotify.hpp"
#include "butter/signalfd.hpp"
#include "butter/splice.hpp"
#include "butter/timerfd.hpp"

namespace butter {
namespace {

using namespace std::chrono_literals;

TEST(EventLoop, CallbackOnReadableFd) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop) << loop.error().what();
    auto pipe = Pipe::create(true);
    int calls = 0;
    IoEvents seen;
    auto reg = loop->add(pipe->read, IoEvent::In, [&](IoEvents ev) {
        ++calls;
        seen = ev;
        char c;
        (void)::read(pipe->read.get(), &c, 1);
        loop->stop();
    });
    ASSERT_TRUE(reg) << reg.error().what();
    ASSERT_EQ(::write(pipe->write.get(), "x", 1), 1);
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(seen.has(IoEvent::In));
}

TEST(EventLoop, RemovedRegistrationIsNotCalled) {
    auto loop = EventLoop::create();
    auto a = Pipe::create(true);
    auto b = Pipe::create(true);
    int b_calls = 0;
    EventLoop::Registration reg_b;
    // a's callback removes b's registration while both are ready in the same epoll_wait.
    auto reg_a = loop->add(a->read, IoEvent::In, [&](IoEvents) { reg_b.reset(); });
    reg_b = std::move(*loop->add(b->read, IoEvent::In, [&](IoEvents) { ++b_calls; }));
    ASSERT_EQ(::write(a->write.get(), "x", 1), 1);
    ASSERT_EQ(::write(b->write.get(), "x", 1), 1);
    // Whichever runs first, b's callback runs at most once and never after removal.
    ASSERT_TRUE(loop->run_once(100));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_LE(b_calls, 1);
    EXPECT_FALSE(reg_b.active());
    int before = b_calls;
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(b_calls, before);
}

TEST(EventLoop, CallbackMayRemoveItself) {
    auto loop = EventLoop::create();
    auto p = Pipe::create(true);
    EventLoop::Registration reg;
    int calls = 0;
    reg = std::move(*loop->add(p->read, IoEvent::In, [&](IoEvents) {
        ++calls;
        reg.reset();
    }));
    ASSERT_EQ(::write(p->write.get(), "x", 1), 1);
    ASSERT_TRUE(loop->run_once(100));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(calls, 1);
}

TEST(EventLoop, RegistrationOutlivingTheLoopIsInert) {
    auto p = Pipe::create(true);
    EventLoop::Registration reg;
    {
        auto loop = EventLoop::create();
        reg = std::move(*loop->add(p->read, IoEvent::In, [](IoEvents) {}));
        EXPECT_TRUE(reg.active());
    }
    EXPECT_FALSE(reg.active());
    auto m = reg.modify(IoEvent::In);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().errno_value(), EBADF);
    reg.reset();  // nothing to do, nothing touched (ASan would see a use after free)
}

TEST(EventLoop, AddRegularFileFails) {
    auto loop = EventLoop::create();
    test::TempDir dir;
    test::write_file(dir / "f", "");
    auto fd = open((dir / "f").c_str(), O_RDONLY);
    auto reg = loop->add(*fd, IoEvent::In, [](IoEvents) {});
    ASSERT_FALSE(reg);
    EXPECT_EQ(reg.error().errno_value(), EPERM);
}

Task<int> add_later(int a, int b) {
    co_return a + b;
}
Task<int> nested() {
    int x = co_await add_later(1, 2);
    int y = co_await add_later(x, 4);
    co_return y;
}

TEST(Task, RunUntilCompleteReturnsValue) {
    auto loop = EventLoop::create();
    auto r = loop->run_until_complete(nested());
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 7);
}

Task<Result<std::uint64_t>> wait_counter(Async<EventFd>& e) {
    co_return co_await e.next();
}

TEST(Async, EventFdAwaitSuspendsUntilWritten) {
    auto loop = EventLoop::create();
    auto efd = EventFd::create();  // blocking: Async makes it non-blocking
    auto async = Async<EventFd>::create(*loop, std::move(*efd));
    ASSERT_TRUE(async) << async.error().what();
    auto writer = EventFd::create();  // unused; just checks independent fds work
    ASSERT_TRUE(writer);
    int wfd = async->source().fd();
    loop->call_soon([wfd] {
        std::uint64_t v = 5;
        (void)::write(wfd, &v, sizeof v);
    });
    auto r = loop->run_until_complete(wait_counter(*async));
    ASSERT_TRUE(r);
    ASSERT_TRUE(*r);
    EXPECT_EQ(**r, 5u);
}

Task<void> collect(Async<EventFd>& e, std::vector<int>& order, int id) {
    auto v = co_await e.next();
    if (v) order.push_back(id);
}

TEST(Async, WaitersAreServedInFifoOrder) {
    auto loop = EventLoop::create();
    auto async =
        Async<EventFd>::create(*loop, std::move(*EventFd::create(0, EventFdFlag::Semaphore)));
    ASSERT_TRUE(async);
    std::vector<int> order;
    loop->spawn(collect(*async, order, 1));
    loop->spawn(collect(*async, order, 2));
    loop->spawn(collect(*async, order, 3));
    ASSERT_TRUE(loop->run_once(0));  // all three start and suspend
    EXPECT_EQ(async->waiting(), 3u);
    EXPECT_EQ(loop->live_tasks(), 3u);
    ASSERT_TRUE(async->source().write(2));  // two semaphore units: two waiters
    ASSERT_TRUE(loop->run_until([&] { return order.size() == 2; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
    EXPECT_EQ(async->waiting(), 1u);
    ASSERT_TRUE(async->source().write(1));
    ASSERT_TRUE(loop->run_until([&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(loop->live_tasks(), 0u);
}

TEST(Async, DestroyedWaiterLeavesQueue) {
    auto loop = EventLoop::create();
    auto async = Async<EventFd>::create(*loop, std::move(*EventFd::create()));
    std::vector<int> order;
    {
        Task<void> t = collect(*async, order, 1);
        loop->call_soon(t.handle());
        ASSERT_TRUE(loop->run_once(0));
        EXPECT_EQ(async->waiting(), 1u);
    }  // the suspended task is destroyed: its waiter unregisters
    EXPECT_EQ(async->waiting(), 0u);
    ASSERT_TRUE(async->source().write(1));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_TRUE(order.empty());
}

Task<void> note_error(Async<EventFd>& e, int& err) {
    auto v = co_await e.next();
    err = v ? 0 : v.error().errno_value();
}

// An Async that goes away while a coroutine waits on it: the waiter resumes with ECANCELED
// (no dangling queue, no coroutine left suspended forever).
TEST(Async, DestroyedWhileAwaitedResumesTheWaiterWithAnError) {
    auto loop = EventLoop::create();
    auto async = Async<EventFd>::create(*loop, std::move(*EventFd::create()));
    ASSERT_TRUE(async);
    int err = -1;
    loop->spawn(note_error(*async, err));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(async->waiting(), 1u);
    async = Async<EventFd>::create(*loop, std::move(*EventFd::create()));  // the first one goes
    ASSERT_TRUE(loop->run_until([&] { return err != -1; }));
    EXPECT_EQ(err, ECANCELED);
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(loop->live_tasks(), 0u);
}

TEST(TaskDeathTest, AwaitingAnEmptyTaskAbortsWithAMessage) {
    auto awaits_empty = []() -> Task<int> {
        Task<int> empty;
        co_return co_await std::move(empty);
    };
    EXPECT_DEATH(
        {
            auto loop = EventLoop::create();
            (void)loop->run_until_complete(awaits_empty());
        },
        "awaited a Task that holds no coroutine");
}

TEST(Async, CallbackModeGetsEveryEvent) {
    auto loop = EventLoop::create();
    test::TempDir dir;
    auto in = Inotify::create();
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create));
    auto async = Async<Inotify>::create(*loop, std::move(*in));
    ASSERT_TRUE(async);
    test::write_file(dir / "before", "");  // pending before the callback is set
    std::vector<std::string> names;
    async->on_event([&](Result<InotifyEvent> ev) {
        ASSERT_TRUE(ev);
        names.push_back(ev->name);
    });
    ASSERT_TRUE(loop->run_once(0));
    test::write_file(dir / "after1", "");
    test::write_file(dir / "after2", "");
    ASSERT_TRUE(loop->run_until([&] { return names.size() == 3; }));
    EXPECT_EQ(names, (std::vector<std::string>{"before", "after1", "after2"}));
}

struct Seen {
    std::vector<std::string> what;
};

Task<void> watch_files(Async<Inotify>& in, Seen& seen) {
    auto ev = co_await in.next();
    seen.what.push_back(ev ? "inotify:" + ev->name : "inotify error");
}
Task<void> watch_timer(Async<TimerFd>& t, Seen& seen) {
    auto n = co_await t.next();
    seen.what.push_back(n ? "timer:" + std::to_string(*n) : "timer error");
}
Task<void> watch_eventfd(Async<EventFd>& e, Seen& seen) {
    auto n = co_await e.next();
    seen.what.push_back(n ? "eventfd:" + std::to_string(*n) : "eventfd error");
}

TEST(Async, LoopWaitsOnInotifyTimerAndEventFdAtOnce) {
    auto loop = EventLoop::create();
    test::TempDir dir;
    auto in = Inotify::create();
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create));
    auto timer = TimerFd::create();
    auto efd = EventFd::create();
    auto ain = Async<Inotify>::create(*loop, std::move(*in));
    auto atimer = Async<TimerFd>::create(*loop, std::move(*timer));
    auto aefd = Async<EventFd>::create(*loop, std::move(*efd));
    ASSERT_TRUE(ain && atimer && aefd);
    Seen seen;
    loop->spawn(watch_files(*ain, seen));
    loop->spawn(watch_timer(*atimer, seen));
    loop->spawn(watch_eventfd(*aefd, seen));
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_TRUE(seen.what.empty());
    // Three sources fire in a known order: the eventfd now, a file after, the timer last.
    ASSERT_TRUE(aefd->source().write(3));
    ASSERT_TRUE(loop->run_until([&] { return seen.what.size() == 1; }));
    test::write_file(dir / "new", "");
    ASSERT_TRUE(loop->run_until([&] { return seen.what.size() == 2; }));
    ASSERT_TRUE(atimer->source().set_relative(5ms));
    ASSERT_TRUE(loop->run_until([&] { return seen.what.size() == 3; }));
    EXPECT_EQ(seen.what, (std::vector<std::string>{"eventfd:3", "inotify:new", "timer:1"}));
    EXPECT_EQ(loop->live_tasks(), 0u);
}

Task<Result<SignalInfo>> next_signal(Async<SignalFd>& s) {
    co_return co_await s.next();
}

TEST(Async, SignalFdAwait) {
    auto r = test::run_in_child([] {
        auto loop = EventLoop::create();
        SignalSet set{SIGUSR1};
        auto g = SignalMaskGuard::block(set);
        auto sig = Async<SignalFd>::create(*loop, std::move(*SignalFd::create(set)));
        CHILD_OK(sig);
        loop->call_soon([] { ::kill(::getpid(), SIGUSR1); });
        auto got = loop->run_until_complete(next_signal(*sig));
        CHILD_OK(got);
        CHILD_OK(*got);
        CHILD_ASSERT((*got)->signo == SIGUSR1, (*got)->to_string());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

Task<int> forever(Async<EventFd>& e) {
    (void)co_await e.next();
    co_return 1;
}

TEST(EventLoop, StopCancelsRunUntilComplete) {
    auto loop = EventLoop::create();
    auto async = Async<EventFd>::create(*loop, std::move(*EventFd::create()));
    loop->call_soon([&] { loop->stop(); });
    auto r = loop->run_until_complete(forever(*async));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ECANCELED);
}

// AsyncEvent: asyncio.Event.
Task<int> wait_for(AsyncEvent& e, int& order, int mine) {
    auto r = co_await e.wait();
    if (!r) co_return -r.error().errno_value();
    co_return order++ * 10 + mine;
}

TEST(AsyncEvent, SetWakesEveryWaiterAndLaterWaitsReturnAtOnce) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    AsyncEvent e(*loop);
    int order = 0;
    auto a = wait_for(e, order, 1);
    auto b = wait_for(e, order, 2);
    loop->call_soon(a.handle());
    loop->call_soon(b.handle());
    ASSERT_TRUE(loop->run_once(0));
    EXPECT_EQ(e.waiting(), 2u);
    EXPECT_FALSE(a.done());
    e.set();
    ASSERT_TRUE(loop->run_until([&] { return a.done() && b.done(); }));
    EXPECT_EQ(a.take(), 1);  // in the order they waited
    EXPECT_EQ(b.take(), 12);
    EXPECT_TRUE(e.is_set());
    auto c = loop->run_until_complete(wait_for(e, order, 3));  // set: at once
    ASSERT_TRUE(c);
    EXPECT_EQ(*c, 23);
    e.clear();
    EXPECT_FALSE(e.is_set());
}

TEST(AsyncEvent, DestroyedWhileAwaitedResumesWithAnErrorAndDestroyedWaitersAreNot) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    int order = 0;
    auto event = std::make_unique<AsyncEvent>(*loop);
    auto a = wait_for(*event, order, 1);
    loop->call_soon(a.handle());
    {
        auto gone = wait_for(*event, order, 2);
        loop->call_soon(gone.handle());
        ASSERT_TRUE(loop->run_once(0));
        EXPECT_EQ(event->waiting(), 2u);
        event->set();  // schedules both; `gone` is destroyed before the loop resumes it
    }
    event.reset();
    ASSERT_TRUE(loop->run_until([&] { return a.done(); }));
    EXPECT_EQ(a.take(), 1);
    auto b = std::make_unique<AsyncEvent>(*loop);
    auto c = wait_for(*b, order, 3);
    loop->call_soon(c.handle());
    ASSERT_TRUE(loop->run_once(0));
    b.reset();
    ASSERT_TRUE(loop->run_until([&] { return c.done(); }));
    EXPECT_EQ(c.take(), -ECANCELED);
}

}  // namespace
}  // namespace butter
