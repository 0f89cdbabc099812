// A delegated cgroup from systemd, for limits where butter has none: butter asks the service
// manager (the system one as root, the caller's user manager otherwise) to start a transient
// scope unit "butter-PID.scope" with Delegate=yes holding butter itself, as
// `systemd-run --scope -p Delegate=yes` would, then limits go below it (supervise/cgroup.hpp).
//
// Spoken over the manager's private D-Bus socket (/run/systemd/private, or
// $XDG_RUNTIME_DIR/systemd/private), the one systemctl uses when no bus daemon runs: a method
// call and its reply, marshalled here, since butter is linked statically and libsystemd's
// sd-bus is a shared library only. The socket is connected before any sandbox runs, and its
// peer must be root or the caller (SO_PEERCRED).
#pragma once

#include <string>

#include <butter/error.hpp>

namespace butter::launcher {

// Moves this process into a new transient scope with Delegate=yes and returns once it is
// there (its /proc/self/cgroup shows the scope). ENOENT: no systemd manager to ask; a D-Bus
// error from the manager comes back with its name and text.
[[nodiscard]] Result<std::string> move_into_systemd_scope();

// The private socket of the manager butter would ask: /run/systemd/private as root, else
// $XDG_RUNTIME_DIR/systemd/private (or /run/user/UID/systemd/private).
std::string systemd_manager_socket();

}  // namespace butter::launcher
