// The command's part of a plan on its own: its environment from the caller's, and where its
// argv[0] is looked for. make_plan uses them for a plain run; a pool (pool/pool.hpp) for each
// command it is handed, against the sandbox it prepared before.
#pragma once

#include <string>
#include <vector>

#include "profile/schema.hpp"

namespace butter::launcher {

// The profile's process.env rules (clear, keep, set) applied to `environ` ("KEY=VALUE"), with
// systemd's service variables left out and PATH given a default.
std::vector<std::string> command_environment(const profile::Profile& p,
                                             const std::vector<std::string>& environ);

// The paths execve tries for `arg0`: itself with a '/', else each directory of PATH in `env`.
std::vector<std::string> exec_candidates(const std::string& arg0,
                                         const std::vector<std::string>& env);

}  // namespace butter::launcher
