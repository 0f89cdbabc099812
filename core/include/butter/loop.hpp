// EventLoop: a single-threaded epoll(7) loop, and Async<S>: the asyncio-style form of any
// event-like object (Inotify, Fanotify, SignalFd, EventFd, TimerFd, ...).
//
// Any fd plugs in with `add(fd, events, callback)`. Coroutines (Task<T>) run on the loop:
// `spawn` starts one detached, `run_until_complete` runs the loop until one finishes.
//
// Async<S> behaves like a read-only asyncio.Queue fed by the kernel object:
//
//     BUTTER_ASSIGN_OR_RETURN(auto watch, Async<Inotify>::create(loop, std::move(inotify)));
//     Result<InotifyEvent> ev = co_await watch.next();   // like `await queue.get()`
//
// `next()` returns at once when an event is buffered or readable, else suspends until the fd
// is readable; several waiters are served in FIFO order, one event each. `on_event(cb)` is the
// callback form: cb is called for every event as it arrives. The loop and every Async or
// Registration must be used from one thread, and the loop must outlive them.
#pragma once

#include <sys/epoll.h>

#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"
#include "butter/task.hpp"

namespace butter {

enum class IoEvent : std::uint32_t {
    In = EPOLLIN,
    Out = EPOLLOUT,
    Pri = EPOLLPRI,
    Err = EPOLLERR,
    Hup = EPOLLHUP,
    RdHup = EPOLLRDHUP,
    Edge = EPOLLET,          // edge-triggered: reported once per change, not while ready
    OneShot = EPOLLONESHOT,  // disabled after one report until modify()
};
std::span<const FlagName<IoEvent>> flag_names(IoEvent);
using IoEvents = Flags<IoEvent>;

class EventLoop {
    struct State;

  public:
    using Callback = std::function<void(IoEvents)>;

    // An fd's registration; removing it (destructor or reset) deregisters the fd. The callback
    // may destroy its own registration, and a registration that outlives its loop is inert.
    class Registration {
      public:
        Registration() = default;
        Registration(Registration&& o) noexcept;
        Registration& operator=(Registration&& o) noexcept;
        ~Registration() { reset(); }
        // epoll_ctl(EPOLL_CTL_MOD) with the new interest set.
        [[nodiscard]] Result<void> modify(IoEvents events);
        void reset();
        bool active() const { return !state_.expired(); }

      private:
        friend class EventLoop;
        Registration(std::weak_ptr<State> s, std::uint64_t id, int fd)
            : state_(std::move(s)), id_(id), fd_(fd) {}
        std::weak_ptr<State> state_;
        std::uint64_t id_ = 0;
        int fd_ = -1;
    };

    // epoll_create1(EPOLL_CLOEXEC).
    [[nodiscard]] static Result<EventLoop> create();
    EventLoop(EventLoop&&) noexcept;
    EventLoop& operator=(EventLoop&&) noexcept;
    ~EventLoop();

    // epoll_ctl(EPOLL_CTL_ADD). EPERM: the fd does not support polling (a regular file);
    // EEXIST: already registered on this loop.
    [[nodiscard]] Result<Registration> add(BorrowedFd fd, IoEvents events, Callback callback);

    // Runs `fn` (or resumes `h`) on the next iteration, before waiting for fds.
    void call_soon(std::function<void()> fn);
    void call_soon(std::coroutine_handle<> h);
    template <typename P>
    void call_soon(std::coroutine_handle<P> h) {
        call_soon(std::coroutine_handle<>(h));
    }
    // Starts a detached task; the loop owns it until it finishes (or the loop is destroyed).
    void spawn(Task<void> task);
    std::size_t live_tasks() const;

    // Makes run(), run_until() and run_until_complete() return after the current iteration.
    void stop();
    bool stopped() const;

    // One iteration: the ready callbacks, then one epoll_wait (not waiting when callbacks are
    // ready; -1 waits forever) and dispatch.
    [[nodiscard]] Result<void> run_once(int timeout_ms = -1);
    // Iterates until stop().
    [[nodiscard]] Result<void> run();
    // Iterates until `done()` is true or stop().
    [[nodiscard]] Result<void> run_until(const std::function<bool()>& done);
    // Runs the loop until `task` finishes and returns its value. ECANCELED if stop() came first.
    template <typename T>
    [[nodiscard]] Result<T> run_until_complete(Task<T> task);

    int fd() const;

  private:
    explicit EventLoop(std::shared_ptr<State> s);
    Result<void> iterate(int timeout_ms, const std::function<bool()>* done);
    void adopt(Task<void> task);
    std::shared_ptr<State> s_;
};

template <typename T>
Result<T> EventLoop::run_until_complete(Task<T> task) {
    call_soon(task.handle());
    BUTTER_TRY(run_until([&] { return task.done(); }));
    if (!task.done()) {
        if constexpr (std::is_void_v<T>) adopt(std::move(task));  // still queued: keep it alive
        return fail(Error("run_until_complete", ECANCELED));
    }
    if constexpr (std::is_void_v<T>) {
        return {};
    } else {
        return task.take();
    }
}

// What Async<S> needs of an event-like object.
template <typename S>
concept EventSource = requires(S& s) {
    typename S::Event;
    { s.fd() } -> std::convertible_to<int>;
    { s.read_event() } -> std::same_as<Result<std::optional<typename S::Event>>>;
};

template <EventSource S>
class Async {
  public:
    using Event = typename S::Event;
    using EventCallback = std::function<void(Result<Event>)>;

  private:
    struct Waiter;
    struct State {
        EventLoop* loop = nullptr;
        S source;
        std::deque<Waiter*> waiters;
        EventCallback callback;
        EventLoop::Registration registration;  // declared last: deregistered first
        explicit State(S src) : source(std::move(src)) {}
    };

    struct Waiter {
        // Shared: a waiter outlives the Async it came from (it is then resumed with ECANCELED).
        std::shared_ptr<State> s;
        std::optional<Result<Event>> result;
        std::coroutine_handle<> handle;
        bool queued = false;

        explicit Waiter(std::shared_ptr<State> st) : s(std::move(st)) {}
        Waiter(const Waiter&) = delete;
        ~Waiter() {
            if (!queued) return;
            for (auto it = s->waiters.begin(); it != s->waiters.end(); ++it) {
                if (*it == this) {
                    s->waiters.erase(it);
                    break;
                }
            }
        }
        // One non-blocking read; true when it produced an event or an error.
        bool try_read() {
            auto r = s->source.read_event();
            if (!r) {
                result.emplace(fail(std::move(r).error()));
                return true;
            }
            if (!*r) return false;
            result.emplace(std::move(**r));
            return true;
        }
        bool await_ready() { return s->waiters.empty() && try_read(); }
        void await_suspend(std::coroutine_handle<> h) {
            handle = h;
            queued = true;
            s->waiters.push_back(this);
        }
        Result<Event> await_resume() { return std::move(*result); }
    };

  public:
    // Puts the source's fd in non-blocking mode and registers it (edge-triggered) on `loop`.
    [[nodiscard]] static Result<Async> create(EventLoop& loop, S source) {
        auto state = std::make_shared<State>(std::move(source));
        state->loop = &loop;
        BUTTER_TRY(set_nonblocking(state->source.fd(), true));
        State* raw = state.get();
        BUTTER_ASSIGN_OR_RETURN(state->registration,
                                loop.add(raw->source.fd(), IoEvent::In | IoEvent::Edge,
                                         [raw](IoEvents) { dispatch(raw); }));
        return Async(std::move(state));
    }

    S& source() { return s_->source; }
    const S& source() const { return s_->source; }
    std::size_t waiting() const { return s_->waiters.size(); }

    // An awaitable giving Result<Event>: the next event, in FIFO order among waiters. If the
    // Async goes away first, the waiter resumes with an Error (ECANCELED).
    [[nodiscard]] Waiter next() { return Waiter(s_); }

    Async(Async&&) noexcept = default;
    Async& operator=(Async&& o) noexcept {
        if (this != &o) {
            cancel_waiters();
            s_ = std::move(o.s_);
        }
        return *this;
    }
    ~Async() { cancel_waiters(); }

    // Calls `cb` for every event from now on (also for those already pending, on the next loop
    // iteration). An empty function ends callback mode. Do not destroy this Async inside `cb`.
    void on_event(EventCallback cb) {
        s_->callback = std::move(cb);
        if (!s_->callback) return;
        std::weak_ptr<State> weak = s_;
        s_->loop->call_soon([weak] {
            if (auto s = weak.lock()) dispatch(s.get());
        });
    }

  private:
    explicit Async(std::shared_ptr<State> s) : s_(std::move(s)) {}

    // Every coroutine still waiting resumes (on the loop) with ECANCELED; no more events.
    void cancel_waiters() {
        if (!s_) return;
        s_->callback = nullptr;
        s_->registration.reset();
        while (!s_->waiters.empty()) {
            Waiter* w = s_->waiters.front();
            s_->waiters.pop_front();
            w->queued = false;
            w->result.emplace(fail(Error("Async", ECANCELED, "its source went away")));
            s_->loop->call_soon(w->handle);
        }
    }

    // The fd became readable (edge): serve the waiters first, then the callback, until the
    // source has nothing more. Edge-triggered is safe because a waiter always reads before it
    // suspends, so an unread event never waits for an edge that will not come.
    static void dispatch(State* s) {
        while (!s->waiters.empty()) {
            Waiter* w = s->waiters.front();
            if (!w->try_read()) break;
            s->waiters.pop_front();
            w->queued = false;
            s->loop->call_soon(w->handle);
        }
        if (!s->callback) return;
        for (;;) {
            auto r = s->source.read_event();
            if (!r) {
                s->callback(fail(std::move(r).error()));
                return;
            }
            if (!*r) return;
            s->callback(std::move(**r));
        }
    }

    std::shared_ptr<State> s_;
};

// AsyncEvent: asyncio.Event. `co_await event.wait()` returns at once while the event is set,
// else suspends until set() (every waiter resumes, on the loop's next iteration); clear()
// makes later waits suspend again. A waiter whose coroutine is destroyed first is never
// resumed; one still waiting when the AsyncEvent goes away resumes with ECANCELED.
class AsyncEvent {
    struct Waiter;
    struct State {
        EventLoop* loop = nullptr;
        bool set = false;
        std::deque<Waiter*> waiters;
    };
    struct Waiter {
        std::shared_ptr<State> s;
        std::optional<Result<void>> result;
        std::coroutine_handle<> handle;
        // Shared with a scheduled resumption: a coroutine destroyed meanwhile is not resumed.
        std::shared_ptr<bool> alive;
        bool queued = false;

        explicit Waiter(std::shared_ptr<State> st) : s(std::move(st)) {}
        Waiter(const Waiter&) = delete;
        ~Waiter() {
            if (alive) *alive = false;
            if (!queued) return;
            for (auto it = s->waiters.begin(); it != s->waiters.end(); ++it) {
                if (*it == this) {
                    s->waiters.erase(it);
                    break;
                }
            }
        }
        bool await_ready() const { return s->set; }
        void await_suspend(std::coroutine_handle<> h) {
            handle = h;
            alive = std::make_shared<bool>(true);
            queued = true;
            s->waiters.push_back(this);
        }
        Result<void> await_resume() { return result ? std::move(*result) : Result<void>(); }
    };

  public:
    explicit AsyncEvent(EventLoop& loop) : s_(std::make_shared<State>()) { s_->loop = &loop; }
    AsyncEvent(AsyncEvent&&) noexcept = default;
    AsyncEvent& operator=(AsyncEvent&& o) noexcept {
        if (this != &o) {
            wake_all(fail(Error("AsyncEvent", ECANCELED, "the event went away")));
            s_ = std::move(o.s_);
        }
        return *this;
    }
    ~AsyncEvent() {
        if (s_) wake_all(fail(Error("AsyncEvent", ECANCELED, "the event went away")));
    }

    void set() {
        s_->set = true;
        wake_all({});
    }
    void clear() { s_->set = false; }
    bool is_set() const { return s_->set; }
    std::size_t waiting() const { return s_->waiters.size(); }
    [[nodiscard]] Waiter wait() { return Waiter(s_); }

  private:
    void wake_all(Result<void> result) {
        while (!s_->waiters.empty()) {
            Waiter* w = s_->waiters.front();
            s_->waiters.pop_front();
            w->queued = false;
            w->result.emplace(result);
            s_->loop->call_soon([h = w->handle, alive = w->alive] {
                if (*alive) h.resume();
            });
        }
    }
    std::shared_ptr<State> s_;
};

}  // namespace butter
