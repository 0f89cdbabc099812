// From a profile's [seccomp] table to a compiled BPF program: group expansion (@name), name
// checks, and the filter itself (built with core's SeccompFilter, compiled in the parent).
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
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
    std::set<std::string> traced;  // Seccomp::learn: the path calls sent to the supervisor
};

// A rule butter adds to a profile's own, as a rule table in the profile's syntax (what
// `butter show` lists, and part of the program key), and the key that asks for it.
struct ImplicitRule {
    std::string text;
    const char* key;
};
// seccomp.restrict_suid_sgid's rules, seccomp.restrict_xattrs's, namespaces.nested_user = false's
// (clone and unshare with CLONE_NEWUSER), clone3 = ENOSYS wherever the profile restricts
// namespaces, and TIOCSTI / TIOCLINUX under process.session = "inherit". Only for syscalls this
// architecture has, that the profile does not deny outright and has no rule of its own for.
std::vector<ImplicitRule> implicit_rules(const profile::Profile& p);

// The path-taking syscalls a learning run (Seccomp::learn) traces, and which argument holds
// the path and which the directory fd it is relative to (-1: the working directory).
struct TracedCall {
    const char* name;
    int path_arg, dirfd_arg;
    int path2_arg = -1, dirfd2_arg = -1;  // a second path (rename, link)
};
std::span<const TracedCall> traced_calls();
const TracedCall* traced_call(std::string_view name);
// The denials a learning run answers as BASE would instead of letting them run: calls that
// would undo the learning run's own confinement (io_uring's requests skip every seccomp rule,
// such as no set-uid files; userfaultfd can stall the supervisor as it reads a path).
bool refused_while_learning(std::string_view name);
// butter's own argument rules (implicit_rules) for a learning run's denial: a syscall the
// profile denies outright has no rule in the filter, so the supervisor, before it lets such a
// call run, answers as the rule would (the arguments are the caller's registers, which cannot
// change while it waits). The errno, or 0 when no rule refuses it.
struct ImplicitChecks {
    bool suid_sgid = true;       // seccomp.restrict_suid_sgid
    bool xattrs = true;          // seccomp.restrict_xattrs
    bool no_nested_user = true;  // namespaces.nested_user = false
    int profile_errno = EPERM;
};
int implicit_rule_errno(std::string_view name, const std::array<std::uint64_t, 6>& args,
                        const ImplicitChecks& checks);

// Builds the filter of a profile; every problem is a diagnostic at the key's position.
std::optional<Compiled> compile(const profile::Profile& p, profile::Diagnostics& out);

}  // namespace butter::launcher::seccomp
