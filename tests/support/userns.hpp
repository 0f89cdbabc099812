// Feature probes for tests, done once each in a forked child, and the skip policy:
//
//     BUTTER_REQUIRE(butter::test::have_userns(), "USERNS", "user namespaces unavailable");
//
// skips the test with the reason, unless BUTTER_REQUIRE_USERNS=1 or BUTTER_REQUIRE_ALL=1 is set
// in the environment, in which case the missing feature fails the test. .ci/run sets
// BUTTER_REQUIRE_ALL=1 on CI machines, where everything works.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace butter::test {

bool is_root();
// unshare(CLONE_NEWUSER) as nobody and write a uid_map.
bool have_userns();
// A mount namespace with a private tmpfs (as root, or as nobody inside a user namespace).
bool have_mountns();
// In a forked test child: when not root, enter a new user namespace mapping the caller to 0.
// Returns "" or what failed.
std::string become_root_in_userns();
// In a forked test child: become_root_in_userns() when needed, then a new mount namespace with
// "/" recursively private, so mounts made afterwards never reach the host.
std::string private_mount_namespace();
// Whether a missing feature must fail instead of skip.
bool required(const char* feature);

}  // namespace butter::test

#define BUTTER_REQUIRE(ok, feature, reason)                                             \
    do {                                                                                \
        if (!(ok)) {                                                                    \
            if (::butter::test::required(feature))                                      \
                FAIL() << "required feature " << (feature) << " missing: " << (reason); \
            GTEST_SKIP() << (reason);                                                   \
        }                                                                               \
    } while (0)

#define BUTTER_REQUIRE_ROOT()                         \
    BUTTER_REQUIRE(::butter::test::is_root(), "ROOT", \
                   "needs root (CAP_SYS_ADMIN in the initial user namespace)")
