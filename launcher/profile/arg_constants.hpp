// Named constants usable as syscall argument values in [[seccomp.rules]]: address families,
// terminal ioctls, clone flags, personalities. Numbers (decimal or 0x hex) work everywhere too.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace butter::launcher::profile {

// "AF_UNIX" -> 1, "0x5412" -> 0x5412, "42" -> 42; nullopt when unknown.
std::optional<std::uint64_t> constant_value(std::string_view text);

}  // namespace butter::launcher::profile
