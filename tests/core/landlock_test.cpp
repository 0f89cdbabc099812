#include "butter/landlock.hpp"

#include <gtest/gtest.h>

namespace butter {
namespace {

TEST(Landlock, AbiVersionOrAClearReason) {
    auto v = landlock_abi_version();
    if (!v) {
        // Not built in, or disabled at boot: both are reasons, not failures.
        EXPECT_TRUE(v.error().errno_value() == ENOSYS || v.error().errno_value() == EOPNOTSUPP)
            << v.error().what();
        return;
    }
    EXPECT_GE(*v, 1);
}

}  // namespace
}  // namespace butter
