// Landlock, as far as butter needs it today: which ABI version the kernel offers.
#pragma once

#include "butter/error.hpp"

namespace butter {

// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI version (1..),
// or an Error: EOPNOTSUPP when Landlock is built but disabled at boot, ENOSYS when absent.
[[nodiscard]] Result<int> landlock_abi_version();

}  // namespace butter
