// A cache of compiled seccomp programs, keyed by everything the program depends on (the
// [seccomp] table, libseccomp's syscall table, butter's version), so repeated runs skip group
// expansion and libseccomp's compiler. The directory must belong to the caller and be mode
// 0700 (a program someone else could write would be a hole in the sandbox): $XDG_RUNTIME_DIR/
// butter, /run/butter for root, else /tmp/butter-UID. Any doubt (wrong owner, bad size, bad
// key) means a recompile.
#pragma once

#include <optional>
#include <string>

#include "seccomp/policy.hpp"

namespace butter::launcher::seccomp {

// The key for a profile's [seccomp] table.
std::string cache_key(const profile::Profile& p);

// The cached program for `key`, if a valid one exists.
std::optional<Compiled> cache_load(const std::string& key);
// Stores a program (best effort: a cache that cannot be written is no error).
void cache_store(const std::string& key, const Compiled& c);

// compile() with the cache in front; BUTTER_NO_CACHE=1 disables it.
std::optional<Compiled> compile_cached(const profile::Profile& p, profile::Diagnostics& out);

}  // namespace butter::launcher::seccomp
