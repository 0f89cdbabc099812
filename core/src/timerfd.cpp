#include "butter/timerfd.hpp"

#include <unistd.h>

#include <array>

#include "counter.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<TimerFdFlag>, 1> kNames{{{TimerFdFlag::NonBlock, "NonBlock"}}};

struct timespec to_timespec(std::chrono::nanoseconds ns) {
    struct timespec ts {};
    ts.tv_sec = static_cast<time_t>(ns.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns.count() % 1'000'000'000);
    return ts;
}

std::chrono::nanoseconds from_timespec(const struct timespec& ts) {
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

std::span<const FlagName<TimerFdFlag>> flag_names(TimerFdFlag) {
    return kNames;
}

Result<std::chrono::nanoseconds> clock_now(Clock clock) {
    struct timespec ts {};
    if (::clock_gettime(static_cast<clockid_t>(clock), &ts) < 0) return fail_errno("clock_gettime");
    return from_timespec(ts);
}

Result<TimerFd> TimerFd::create(Clock clock, Flags<TimerFdFlag> flags) {
    int fd = ::timerfd_create(static_cast<int>(clock), TFD_CLOEXEC | flags.raw());
    if (fd < 0) return fail_errno("timerfd_create");
    return TimerFd(Fd(fd), clock);
}

Result<void> TimerFd::settime(int flags, std::chrono::nanoseconds value,
                              std::chrono::nanoseconds interval) {
    struct itimerspec its {};
    its.it_value = to_timespec(value);
    its.it_interval = to_timespec(interval);
    if (::timerfd_settime(fd_.get(), flags, &its, nullptr) < 0)
        return fail_errno("timerfd_settime");
    return {};
}

Result<void> TimerFd::set_relative(std::chrono::nanoseconds initial,
                                   std::chrono::nanoseconds interval) {
    // A zero it_value would disarm the timer: "expire now" means the smallest delay.
    if (initial <= std::chrono::nanoseconds::zero()) initial = std::chrono::nanoseconds(1);
    return settime(0, initial, interval);
}

Result<void> TimerFd::set_absolute(std::chrono::nanoseconds when, std::chrono::nanoseconds interval,
                                   bool cancel_on_set) {
    if (when <= std::chrono::nanoseconds::zero()) when = std::chrono::nanoseconds(1);
    return settime(TFD_TIMER_ABSTIME | (cancel_on_set ? TFD_TIMER_CANCEL_ON_SET : 0), when,
                   interval);
}

Result<void> TimerFd::disarm() {
    return settime(0, {}, {});
}

Result<TimerSetting> TimerFd::get() const {
    struct itimerspec its {};
    if (::timerfd_gettime(fd_.get(), &its) < 0) return fail_errno("timerfd_gettime");
    return TimerSetting{from_timespec(its.it_value), from_timespec(its.it_interval)};
}

Result<std::optional<std::uint64_t>> TimerFd::read_event() {
    return detail::read_counter(fd_.get(), "read(timerfd)");
}

Result<std::vector<std::uint64_t>> TimerFd::read_events() {
    return detail::read_counters(fd_.get(), "read(timerfd)");
}

}  // namespace butter
