// TimerFd: an owned timerfd(2), event-like: each event is the number of expirations since the
// last read (more than 1 when a periodic timer fired several times unread).
#pragma once

#include <sys/timerfd.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

enum class Clock : int {
    Monotonic = CLOCK_MONOTONIC,  // not counting suspend; the default for time limits
    Boottime = CLOCK_BOOTTIME,    // counting suspend
    Realtime = CLOCK_REALTIME,    // wall clock; jumps when the clock is set
};

enum class TimerFdFlag : int { NonBlock = TFD_NONBLOCK };
std::span<const FlagName<TimerFdFlag>> flag_names(TimerFdFlag);

// The clock's current time, as a duration since its epoch (clock_gettime(2)).
[[nodiscard]] Result<std::chrono::nanoseconds> clock_now(Clock clock);

struct TimerSetting {
    std::chrono::nanoseconds remaining{0};  // until the next expiration; 0 = disarmed
    std::chrono::nanoseconds interval{0};   // 0 = one-shot
};

class TimerFd {
  public:
    using Event = std::uint64_t;
    [[nodiscard]] static Result<TimerFd> create(Clock clock = Clock::Monotonic,
                                                Flags<TimerFdFlag> flags = {});

    // Arms the timer to expire after `initial` (> 0), then every `interval` (0 = once).
    [[nodiscard]] Result<void> set_relative(std::chrono::nanoseconds initial,
                                            std::chrono::nanoseconds interval = {});
    // Arms the timer to expire when the clock reads `when` (a clock_now() value). With
    // `cancel_on_set` on a Realtime timer, a clock change makes read_event fail with ECANCELED.
    [[nodiscard]] Result<void> set_absolute(std::chrono::nanoseconds when,
                                            std::chrono::nanoseconds interval = {},
                                            bool cancel_on_set = false);
    [[nodiscard]] Result<void> disarm();
    [[nodiscard]] Result<TimerSetting> get() const;

    // The expirations since the last read; nullopt when non-blocking and none.
    [[nodiscard]] Result<std::optional<std::uint64_t>> read_event();
    [[nodiscard]] Result<std::vector<std::uint64_t>> read_events();
    int fd() const { return fd_.get(); }
    Clock clock() const { return clock_; }

  private:
    TimerFd(Fd fd, Clock clock) : fd_(std::move(fd)), clock_(clock) {}
    Result<void> settime(int flags, std::chrono::nanoseconds value,
                         std::chrono::nanoseconds interval);
    Fd fd_;
    Clock clock_;
};

}  // namespace butter
