// Task<T>: a lazily started coroutine that another coroutine can `co_await`, or that an
// EventLoop runs (EventLoop::spawn, EventLoop::run_until_complete).
//
// A Task owns its coroutine frame; destroying a Task that has not finished destroys the frame
// (the awaiters inside unregister themselves). Completion resumes the awaiting coroutine by
// symmetric transfer, so long chains of awaits do not grow the stack. Exceptions are not part
// of libbutter's error model: an exception escaping a Task terminates the program.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace butter {

template <typename T = void>
class Task;

namespace detail {

// At the end of a task, resume whoever awaited it (symmetric transfer).
struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        return h.promise().continuation;
    }
    void await_resume() noexcept {}
};

struct TaskPromiseBase {
    std::coroutine_handle<> continuation = std::noop_coroutine();

    std::suspend_always initial_suspend() noexcept { return {}; }
    FinalAwaiter final_suspend() noexcept { return {}; }
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
};

template <typename T>
struct TaskPromise : TaskPromiseBase {
    std::optional<T> value;
    Task<T> get_return_object() noexcept;
    template <typename U>
    void return_value(U&& v) {
        value.emplace(std::forward<U>(v));
    }
    T take() { return std::move(*value); }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {}
};

}  // namespace detail

namespace detail {
// Awaiting a Task that holds no coroutine is a programmer error: a clear abort, not a null
// dereference.
[[noreturn]] void empty_task_awaited() noexcept;
}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
  public:
    using promise_type = detail::TaskPromise<T>;
    using Handle = std::coroutine_handle<promise_type>;

    Task() = default;
    explicit Task(Handle h) : h_(h) {}
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~Task() {
        if (h_) h_.destroy();
    }

    bool valid() const { return static_cast<bool>(h_); }
    bool done() const { return h_ && h_.done(); }
    Handle handle() const { return h_; }
    // The result of a finished task (moves it out once).
    T take() { return h_.promise().take(); }

    // Awaiting a Task starts it and resumes the awaiter when it finishes.
    bool await_ready() const noexcept { return !h_ || h_.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h_.promise().continuation = awaiting;
        return h_;
    }
    T await_resume() {
        if (!h_) detail::empty_task_awaited();  // a default-constructed or moved-from Task
        return h_.promise().take();
    }

  private:
    Handle h_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace butter
