// Parses TOML text into a located Value tree. The only user of toml++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "profile/diagnostic.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile {

// Parses `text` as a TOML document named `file` (for positions). On a syntax error returns
// nullopt and appends one diagnostic at the error's line and column.
std::optional<Value> parse_toml(std::string_view text, const std::string& file, Diagnostics& out);

// Reads and parses a file; a missing or unreadable file is one diagnostic naming it.
// The largest profile file read (a profile is a page or two; a larger one is a mistake or an
// attack on butter's memory and time).
inline constexpr std::uint64_t kMaxProfileBytes = 1 << 20;

std::optional<Value> read_toml_file(const std::string& path, Diagnostics& out);

// Quotes `s` as a TOML basic string.
std::string toml_quote(std::string_view s);

}  // namespace butter::launcher::profile
