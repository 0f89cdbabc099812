// From a profile's [seccomp] table to a compiled BPF program: group expansion (@name), name
// checks, and the filter itself (built with core's SeccompFilter, compiled in the parent).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <butter/seccomp.hpp>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"

namespace butter::launcher::seccomp {

// The groups of syscall_groups.toml (compiled in): name (without '@') -> members as written.
const std::map<std::string, std::vector<std::string>>& groups();

// Expands syscall names and @groups into native syscall names. Unknown names and groups are
// errors at the item's position (`loc_of(i)`); names that exist only on other architectures
// are skipped with a note.
std::set<std::string> expand(const std::vector<std::string>& items,
                             const std::function<profile::SourceLoc(std::size_t)>& loc_of,
                             profile::Diagnostics& out);

struct Compiled {
    BpfProgram program;
    bool uses_notify = false;  // the child must pass a listener fd to the supervisor
    int denied_errno = EPERM;
};

// The rules butter adds to a profile's own, as rule tables in the profile's syntax (what
// `butter show` lists, and part of the program key): seccomp.restrict_suid_sgid's. Only
// syscalls this architecture has and the profile does not deny outright.
std::vector<std::string> implicit_rules(const profile::Profile& p);

// Builds the filter of a profile; every problem is a diagnostic at the key's position.
std::optional<Compiled> compile(const profile::Profile& p, profile::Diagnostics& out);

}  // namespace butter::launcher::seccomp
