// Parsing [[seccomp.rules]] entries:
//
//   [[seccomp.rules]]
//   syscall = "ioctl"                           # or syscalls = ["a", "b"]
//   match = { arg1 = ["TIOCSTI", "TIOCLINUX"] }  # the call gets `action` when this holds
//   action = "errno:EPERM"                      # default: errno:<seccomp.errno>
//
//   [[seccomp.rules]]
//   syscall = "socket"
//   unless = { arg0 = ["AF_UNIX", "AF_INET", "AF_INET6"] }   # ... when this does not hold
//   action = "errno:EAFNOSUPPORT"
//
// A rule without match/unless gives its syscalls their own action (kill, log, trap, ...).
// An argument is a list (one of these values), or a table with one of eq/ne/lt/le/gt/ge
// (a value), any_bit or all_bits (a list of flags). Several arguments in one match all must
// hold. Values are numbers or names (constants.hpp).
#pragma once

#include <optional>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile {

std::optional<SeccompRule> parse_seccomp_rule(const Value& v, Diagnostics& out);

}  // namespace butter::launcher::profile
