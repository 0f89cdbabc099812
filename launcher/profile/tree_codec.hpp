// A Value tree as bytes, positions included. The embedded default profile is parsed at build
// time (butter-embed-tree) into this form, so that a run without -p parses no TOML: decoding
// is a fraction of toml++'s parse and conversion, in instructions and in memory touched.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profile/value.hpp"

namespace butter::launcher::profile {

// The encoding of `v` (a versioned header, the file names once, then the nodes depth-first).
std::string encode_tree(const Value& v);
// The tree `bytes` encode, or nullopt for anything else (wrong header, truncated, trailing
// bytes, nesting deeper than a profile has): never reads past `bytes`.
std::optional<Value> decode_tree(std::string_view bytes);

}  // namespace butter::launcher::profile
