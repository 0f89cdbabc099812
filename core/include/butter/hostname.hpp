// The UTS namespace's names: gethostname(2), sethostname(2), setdomainname(2).
// Setting them needs CAP_SYS_ADMIN in the user namespace that owns the current UTS namespace,
// so a sandbox sets them after unshare(CLONE_NEWUTS) and the host's names stay unchanged.
#pragma once

#include <string>
#include <string_view>

#include "butter/error.hpp"

namespace butter {

[[nodiscard]] Result<std::string> gethostname();
// EINVAL: longer than 64 bytes (HOST_NAME_MAX); EPERM: no CAP_SYS_ADMIN over the UTS namespace.
[[nodiscard]] Result<void> sethostname(std::string_view name);
[[nodiscard]] Result<std::string> getdomainname();
[[nodiscard]] Result<void> setdomainname(std::string_view name);

}  // namespace butter
