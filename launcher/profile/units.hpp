// Pure value parsers for profile values: durations, sizes. They return Result without a
// position; the caller attaches the SourceLoc.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <butter/error.hpp>

namespace butter::launcher::profile {

// "500ms", "10s", "5m", "1h", "1h30m", "2d"; a bare number is an error (the unit is required).
Result<std::chrono::nanoseconds> parse_duration(std::string_view text);
// "512", "64K", "256M", "2G", "1T" (powers of 1024; an optional trailing "B" or "iB").
Result<std::uint64_t> parse_size(std::string_view text);
// The shortest exact text parse_duration accepts back ("1h30m", "500ms").
std::string format_duration(std::chrono::nanoseconds d);
// The shortest exact text parse_size accepts back ("256M", "1536K").
std::string format_size(std::uint64_t bytes);

}  // namespace butter::launcher::profile
