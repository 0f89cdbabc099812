#include "butter/landlock.hpp"

#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace butter {

Result<int> landlock_abi_version() {
    long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (v < 0) return fail_errno("landlock_create_ruleset", "LANDLOCK_CREATE_RULESET_VERSION");
    return static_cast<int>(v);
}

}  // namespace butter
