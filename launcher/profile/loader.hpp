// Finding and loading profiles: the search path, `extends` chains (cycle-checked; tables merge,
// arrays replace), `--set KEY=VALUE` overrides, and the embedded default profile.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile {

// profiles/default.toml, compiled in: its text, and the tree parsed from it at build time
// (tree_codec.hpp; empty where the build could not run its tool, e.g. cross-compiling).
extern const std::string_view kEmbeddedDefault;
extern const std::string_view kEmbeddedDefaultTree;
// kEmbeddedDefaultName: diagnostic.hpp.

// The embedded default's tree: the pre-parsed one, else parsed from the text.
std::optional<Value> embedded_default(Diagnostics& out);

// The name that always means the embedded default, whatever the search path holds: what the
// shipped profiles extend.
inline constexpr const char* kBuiltinDefault = "builtin:default";

// $BUTTER_PROFILE_PATH (colon-separated), ~/.config/butter/profiles, /etc/butter/profiles, then
// the installed profiles directory. (Not a directory next to the binary: a binary in a tree
// that others may write would read their profiles.)
std::vector<std::string> search_path();

// Why a profile file may not be trusted, or "": the file and every directory above it must
// belong to root or the caller and be writable by no one else (a directory that others may
// write, as /tmp, only when root owns it and it is sticky). A profile decides what a sandbox
// may do: one that someone else (or a sandbox, through a writable bind) could have written
// would decide it for them.
std::string distrust(const std::string& path);

// A profile argument: a path (contains '/' or ends in .toml) or a name looked up as NAME.toml
// on the search path. "default" falls back to the embedded profile and kBuiltinDefault is it
// (returned as kEmbeddedDefaultName). nullopt when nothing matches.
std::optional<std::string> locate(const std::string& spec, const std::vector<std::string>& path,
                                  const std::string& relative_to = "");

struct Loaded {
    Profile profile;
    Value tree;                      // merged, before typing (for tests)
    Diagnostics diagnostics;         // every problem found (errors and warnings)
    std::vector<std::string> chain;  // the files read, most derived first
    bool ok() const { return !has_errors(diagnostics); }
};

struct LoadOptions {
    std::vector<std::string> overrides;  // "KEY=VALUE" from --set, applied in order
    // distrust() refuses untrusted files (off only for the build's own tools, which read the
    // source tree).
    bool check_trust = true;
    std::vector<std::string> search_path = profile::search_path();
    Expansion expansion = Expansion::from_environment();
};

// Loads `spec` (nullopt: the embedded default) with its extends chain, then the overrides, then
// types it. Never throws; every problem is a diagnostic.
Loaded load(const std::optional<std::string>& spec, const LoadOptions& options);
// The same for TOML text given directly (tests, fuzzing); `name` is the file name in messages.
Loaded load_text(std::string_view text, const std::string& name, const LoadOptions& options);

struct ProfileInfo {
    std::string name;
    std::string path;
    std::string description;
};
// Every profile on the search path (first occurrence of a name wins), plus the embedded default
// when no file shadows it.
std::vector<ProfileInfo> list_profiles(const std::vector<std::string>& path);

}  // namespace butter::launcher::profile
