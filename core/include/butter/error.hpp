// butter::Error and butter::Result<T>: the one error type and the one result type of libbutter.
//
// Every wrapper in core/ returns `[[nodiscard]] Result<T>` and never throws, logs or exits. An
// Error names the call that failed ("pivot_root"), the errno it failed with (0 for errors that
// did not come from the kernel), an optional context (usually a path or argument) and an
// optional hint. `what()` renders all of it on one line:
//
//     pivot_root("/newroot"): Invalid argument — hint: the new root's parent mount may be shared
//
// Result<T>'s members are a strict subset of C++23's std::expected<T, Error>, so moving to
// std::expected later only changes the alias.
#pragma once

#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace butter {

class Error {
  public:
    Error() = default;
    // A kernel error: `call` must be a string with static storage (usually a literal).
    Error(const char* call, int errno_value, std::string context = {})
        : call_(call), errno_(errno_value), context_(std::move(context)) {}

    // The current errno, captured right after a failed libc call.
    static Error from_errno(const char* call, std::string context = {}) {
        return Error(call, errno, std::move(context));
    }
    // An error that did not come from the kernel (a bad name, a malformed value).
    static Error message(const char* call, std::string text, std::string context = {}) {
        Error e(call, 0, std::move(context));
        e.message_ = std::move(text);
        return e;
    }

    const char* call() const { return call_; }
    int errno_value() const { return errno_; }
    const std::string& context() const { return context_; }
    const std::string& hint() const { return hint_; }
    // For non-kernel errors: the text that stands where strerror would.
    const std::string& text() const { return message_; }

    // Adds (or prefixes) context as the error passes up: "mount /usr -> /newroot/usr".
    Error&& with_context(std::string_view outer) && {
        context_ = context_.empty() ? std::string(outer) : std::string(outer) + ": " + context_;
        return std::move(*this);
    }
    Error&& with_hint(std::string hint) && {
        hint_ = std::move(hint);
        return std::move(*this);
    }

    // `call("context"): strerror(errno) — hint: ...`
    std::string what() const;

  private:
    const char* call_ = "";
    int errno_ = 0;
    std::string context_;
    std::string hint_;
    std::string message_;
};

// errno classification, in one place (as systemd's errno-util.h). The launcher uses these for
// "this kernel or mode cannot do X" messages; the tests use them to decide skip or fail.
constexpr bool is_not_supported(int e) {
    return e == ENOSYS || e == EOPNOTSUPP || e == ENOTTY || e == EAFNOSUPPORT;
}
constexpr bool is_privilege(int e) {
    return e == EPERM || e == EACCES;
}
inline bool is_not_supported(const Error& e) {
    return is_not_supported(e.errno_value());
}
inline bool is_privilege(const Error& e) {
    return is_privilege(e.errno_value());
}

// The error half of a Result, as std::unexpected.
template <typename E>
class Unexpected {
  public:
    explicit Unexpected(E e) : error_(std::move(e)) {}
    E& error() & { return error_; }
    E&& error() && { return std::move(error_); }

  private:
    E error_;
};

inline Unexpected<Error> fail(Error e) {
    return Unexpected<Error>(std::move(e));
}
// Shorthand for the common case: fail with the current errno.
inline Unexpected<Error> fail_errno(const char* call, std::string context = {}) {
    return fail(Error::from_errno(call, std::move(context)));
}

[[noreturn]] void result_access_failed(const Error& e) noexcept;

template <typename T>
class [[nodiscard]] Result {
    static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

  public:
    using value_type = T;
    using error_type = Error;

    Result() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
    template <typename U = T>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Result> &&
             !std::is_same_v<std::remove_cvref_t<U>, Unexpected<Error>>) Result(U&& value)
        : v_(std::in_place_index<0>, std::forward<U>(value)) {}
    Result(Unexpected<Error> e) : v_(std::in_place_index<1>, std::move(e).error()) {}

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & { return check(), std::get<0>(v_); }
    const T& value() const& { return check(), std::get<0>(v_); }
    T&& value() && { return check(), std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& {
        assert(!has_value());
        return std::get<1>(v_);
    }
    Error&& error() && {
        assert(!has_value());
        return std::get<1>(std::move(v_));
    }

    template <typename U>
    T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
    }
    template <typename U>
    T value_or(U&& fallback) && {
        return has_value() ? std::get<0>(std::move(v_)) : static_cast<T>(std::forward<U>(fallback));
    }

    // f(T) -> Result<U>
    template <typename F>
    auto and_then(F&& f) && {
        using R = std::invoke_result_t<F, T&&>;
        if (!has_value()) return R(fail(std::get<1>(std::move(v_))));
        return std::forward<F>(f)(std::get<0>(std::move(v_)));
    }
    // f(T) -> U, giving Result<U>
    template <typename F>
    auto transform(F&& f) && {
        using U = std::remove_cvref_t<std::invoke_result_t<F, T&&>>;
        if (!has_value()) return Result<U>(fail(std::get<1>(std::move(v_))));
        if constexpr (std::is_void_v<U>) {
            std::forward<F>(f)(std::get<0>(std::move(v_)));
            return Result<U>();
        } else {
            return Result<U>(std::forward<F>(f)(std::get<0>(std::move(v_))));
        }
    }
    // f(Error) -> Error
    template <typename F>
    Result transform_error(F&& f) && {
        if (has_value()) return std::move(*this);
        return fail(std::forward<F>(f)(std::get<1>(std::move(v_))));
    }

  private:
    void check() const {
        if (!has_value()) result_access_failed(std::get<1>(v_));
    }
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    using value_type = void;
    using error_type = Error;

    // User-provided, not "= default": `return {};` value-initializes, which for a defaulted
    // constructor first zero-fills all 120 bytes (a rep stos on every successful call).
    Result() noexcept {}  // NOLINT(modernize-use-equals-default)
    Result(Unexpected<Error> e) : error_(std::move(e).error()) {}

    bool has_value() const { return !error_.has_value(); }
    explicit operator bool() const { return has_value(); }
    void value() const {
        if (error_) result_access_failed(*error_);
    }
    void operator*() const { value(); }
    const Error& error() const& {
        assert(error_);
        return *error_;
    }
    Error&& error() && {
        assert(error_);
        return std::move(*error_);
    }
    template <typename F>
    auto and_then(F&& f) && {
        using R = std::invoke_result_t<F>;
        if (error_) return R(fail(std::move(*error_)));
        return std::forward<F>(f)();
    }
    template <typename F>
    Result transform_error(F&& f) && {
        if (!error_) return {};
        return fail(std::forward<F>(f)(std::move(*error_)));
    }

  private:
    std::optional<Error> error_;
};

// Adds context to the error of a Result as it passes up (absl's StatusBuilder <<).
template <typename T>
Result<T> with_context(Result<T>&& r, std::string_view outer) {
    return std::move(r).transform_error(
        [outer](Error&& e) { return std::move(e).with_context(outer); });
}

}  // namespace butter

#define BUTTER_CONCAT_INNER_(a, b) a##b
#define BUTTER_CONCAT_(a, b) BUTTER_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function.
#define BUTTER_TRY(expr)                                                                       \
    do {                                                                                       \
        auto&& butter_try_result_ = (expr);                                                    \
        if (!butter_try_result_) return ::butter::fail(std::move(butter_try_result_).error()); \
    } while (0)

// The same two in a coroutine (Task<Result<T>>): co_return instead of return.
#define BUTTER_CO_TRY(expr)                                                                       \
    do {                                                                                          \
        auto&& butter_try_result_ = (expr);                                                       \
        if (!butter_try_result_) co_return ::butter::fail(std::move(butter_try_result_).error()); \
    } while (0)
#define BUTTER_CO_ASSIGN_OR_RETURN(lhs, expr) \
    BUTTER_CO_ASSIGN_OR_RETURN_IMPL_(BUTTER_CONCAT_(butter_result_, __LINE__), lhs, expr)
#define BUTTER_CO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)        \
    auto tmp = (expr);                                          \
    if (!tmp) co_return ::butter::fail(std::move(tmp).error()); \
    lhs = std::move(tmp).value()

// `lhs = *expr`, or returns the error of `expr`. `lhs` may be a declaration (`auto fd`).
// It expands to several statements (as absl's ASSIGN_OR_RETURN): put it in braces under an if.
#define BUTTER_ASSIGN_OR_RETURN(lhs, expr) \
    BUTTER_ASSIGN_OR_RETURN_IMPL_(BUTTER_CONCAT_(butter_result_, __LINE__), lhs, expr)
#define BUTTER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)        \
    auto tmp = (expr);                                       \
    if (!tmp) return ::butter::fail(std::move(tmp).error()); \
    lhs = std::move(tmp).value()
