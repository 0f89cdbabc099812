// butter doctor: the layers it reports, the fixes it gives, the profiles it tries.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

RunOptions with_profiles(bool nobody) {
    RunOptions o;
    o.env = {profile_path_env()};
    o.as_nobody = nobody;
    o.cwd = "/tmp";
    return o;
}

TEST(Doctor, AsRootEverythingWorksAndEveryProfileRuns) {
    BUTTER_REQUIRE_ROOT();
    auto r = run_butter({"doctor"}, with_profiles(false));
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    for (const char* layer :
         {"user namespaces", "mnt namespace", "pid namespace", "net namespace", "seccomp",
          "landlock", "fanotify", "cgroup memory", "cgroup pids", "idmapped mounts"})
        EXPECT_NE(r.out.find(layer), std::string::npos) << layer << "\n" << r.out;
    EXPECT_NE(r.out.find("user namespaces      ok"), std::string::npos) << r.out;
    for (const char* p : {"default", "untrusted", "ci", "build", "service", "network-client"})
        EXPECT_NE(r.out.find(std::string("  ") + p), std::string::npos) << p;
    EXPECT_EQ(r.out.find("cannot run"), std::string::npos) << r.out;
}

TEST(Doctor, AsNobodyCgroupsAreBlockedWithTheFix) {
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    auto r = run_butter({"doctor"}, with_profiles(true));
    EXPECT_EQ(r.code, 0) << r.out << r.err;  // the default profile still runs
    EXPECT_NE(r.out.find("cgroup memory        BLOCKED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fix: limits.* need root"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  default          runs, namespaces tier"), std::string::npos) << r.out;
}

TEST(Doctor, UnderAnOuterListenerNotificationIsRefusedAndTheFallbackNamed) {
    BUTTER_REQUIRE_ROOT();
    RunOptions o = with_profiles(false);
    o.outer_listener = true;
    auto r = run_butter({"doctor"}, o);
    EXPECT_NE(r.out.find("seccomp              info     filters load; user notification refused: "
                         "EBUSY (Device or resource busy) (an outer filter holds the listener)\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("fix: seccomp.report reads the kernel log instead"), std::string::npos)
        << r.out;
    auto plain = run_butter({"doctor"}, with_profiles(false));
    EXPECT_NE(plain.out.find("seccomp              ok       filters load; user notification "
                             "available\n"),
              std::string::npos)
        << plain.out;
}

TEST(Doctor, InsideAFilterThatBlocksUnshareItSaysSo) {
    BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
    // In a directory of its own: with /tmp as the workspace, the profiles of a checkout under
    // /tmp would show inside, owned by an unmapped uid (not trusted: "does not load").
    TempDir empty;
    RunOptions o = with_profiles(false);
    o.cwd = empty.path();
    auto r = run_butter({"run", "--set", "seccomp.deny=[\"unshare\", \"@mount\"]", "--ro-bind",
                         std::string(butter_bin()) + ":/butter", "--", "/butter", "doctor"},
                        o);
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("user namespaces      BLOCKED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("a seccomp filter around this process refuses unshare"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("needs a user namespace (see \"user namespaces\")"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("  default          cannot run"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace butter::test
