// Reading the 8-byte counters of eventfd and timerfd, shared by both.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "butter/error.hpp"
#include "sys.hpp"

namespace butter::detail {

// One read(2) of a u64 counter; nullopt on EAGAIN (non-blocking and zero).
inline Result<std::optional<std::uint64_t>> read_counter(int fd, const char* call) {
    std::uint64_t v = 0;
    ssize_t r = sys::retry_eintr([&] { return ::read(fd, &v, sizeof v); });
    if (r < 0) {
        if (errno == EAGAIN) return std::optional<std::uint64_t>();
        return fail_errno(call);
    }
    return std::optional<std::uint64_t>(v);
}

inline Result<std::vector<std::uint64_t>> read_counters(int fd, const char* call) {
    BUTTER_ASSIGN_OR_RETURN(auto v, read_counter(fd, call));
    if (!v) return std::vector<std::uint64_t>();
    return std::vector<std::uint64_t>{*v};
}

}  // namespace butter::detail
