#include "butter/eventfd.hpp"

#include <unistd.h>

#include <array>

#include "counter.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<EventFdFlag>, 2> kNames{{
    {EventFdFlag::NonBlock, "NonBlock"},
    {EventFdFlag::Semaphore, "Semaphore"},
}};
}

std::span<const FlagName<EventFdFlag>> flag_names(EventFdFlag) {
    return kNames;
}

Result<EventFd> EventFd::create(unsigned initial, Flags<EventFdFlag> flags) {
    int fd = ::eventfd(initial, EFD_CLOEXEC | flags.raw());
    if (fd < 0) return fail_errno("eventfd");
    return EventFd(Fd(fd));
}

Result<void> EventFd::write(std::uint64_t n) {
    ssize_t r = sys::retry_eintr([&] { return ::write(fd_.get(), &n, sizeof n); });
    if (r < 0) return fail_errno("write(eventfd)");
    return {};
}

Result<std::optional<std::uint64_t>> EventFd::read_event() {
    return detail::read_counter(fd_.get(), "read(eventfd)");
}

Result<std::vector<std::uint64_t>> EventFd::read_events() {
    return detail::read_counters(fd_.get(), "read(eventfd)");
}

}  // namespace butter
