// EventFd: an owned eventfd(2) counter, event-like: each event is the value one read(2) takes.
//
// Counter mode: read() returns the whole counter and resets it to 0. Semaphore mode: read()
// returns 1 and decrements the counter by 1. A read of a zero counter blocks, or reports nothing
// when non-blocking. Used for wake-ups between threads or between parent and child.
#pragma once

#include <sys/eventfd.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

enum class EventFdFlag : int { NonBlock = EFD_NONBLOCK, Semaphore = EFD_SEMAPHORE };
std::span<const FlagName<EventFdFlag>> flag_names(EventFdFlag);

class EventFd {
  public:
    using Event = std::uint64_t;
    [[nodiscard]] static Result<EventFd> create(unsigned initial = 0,
                                                Flags<EventFdFlag> flags = {});

    // Adds `n` to the counter (n < 2^64-1). Blocks, or fails with EAGAIN when non-blocking, if
    // the counter would overflow.
    [[nodiscard]] Result<void> write(std::uint64_t n = 1);
    // One read(2): the counter (counter mode) or 1 (semaphore mode); nullopt when non-blocking
    // and zero.
    [[nodiscard]] Result<std::optional<std::uint64_t>> read_event();
    // The same as a vector of zero or one values: an eventfd holds no queue to drain.
    [[nodiscard]] Result<std::vector<std::uint64_t>> read_events();
    int fd() const { return fd_.get(); }

  private:
    explicit EventFd(Fd fd) : fd_(std::move(fd)) {}
    Fd fd_;
};

}  // namespace butter
