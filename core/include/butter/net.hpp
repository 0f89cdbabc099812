// Network interfaces: the one thing a sandbox does to its own network namespace.
#pragma once

#include "butter/error.hpp"

namespace butter {

// Sets IFF_UP on interface `name` (SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET datagram socket).
// Needs CAP_NET_ADMIN in the user namespace owning the network namespace. ENODEV: no such
// interface.
[[nodiscard]] Result<void> set_link_up(const char* name);
// Whether interface `name` has IFF_UP.
[[nodiscard]] Result<bool> link_is_up(const char* name);

}  // namespace butter
