// butter doctor: checks the running system layer by layer (user namespaces and the sysctls
// or LSM that restrict them, each namespace kind, seccomp and user notification, landlock,
// fanotify, cgroup controllers and whether a writable cgroup exists, idmapped mounts) and
// tries each profile on the search path. Prints to stdout; returns 0 when the default
// profile runs here, else 1.
#pragma once

#include <string>

namespace butter::launcher {

int run_doctor();

// Why an overlay with a tmpfs upper cannot be made in a user namespace here (probed in a
// child), or "" when it can.
std::string overlay_problem();

}  // namespace butter::launcher
