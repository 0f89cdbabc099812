// One entry of filesystem.mounts: parsed from its TOML table (every key checked, paths
// expanded), and written back as TOML (butter show).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile {

std::optional<MountType> mount_type(std::string_view s);
// nullopt when `e` is not a valid mount (every problem is in `out`).
std::optional<MountSpec> parse_mount(const Value& e, const Expansion& x, Diagnostics& out);
std::string mount_text(const MountSpec& m);

}  // namespace butter::launcher::profile
