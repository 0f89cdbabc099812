// Paths the host later runs code from (persistence.hpp), against the real filesystem.
#include "plan/persistence.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::launcher {
namespace {

using test::TempDir;

Home home_at(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return {path, st.st_dev, st.st_ino};
}

std::string danger(const std::string& source, const std::vector<Home>& homes) {
    struct stat st {};
    EXPECT_EQ(::stat(source.c_str(), &st), 0) << source;
    return home_danger(source, st.st_dev, st.st_ino, homes);
}

TEST(Homes, TheHomeItsAncestorsAndItsDotDirectories) {
    TempDir d;
    std::string me = d / "me";
    for (const std::string& p : {me, me + "/.config", me + "/.config/app", me + "/project"})
        ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
    std::vector<Home> homes{home_at(me)};
    EXPECT_NE(danger(me, homes).find("it is the home directory"), std::string::npos);
    EXPECT_NE(danger(d.path(), homes).find("it holds the home directory"), std::string::npos);
    EXPECT_NE(danger("/", homes).find("it holds"), std::string::npos);
    EXPECT_NE(danger(me + "/.config", homes).find("it is in " + me + "/.config"),
              std::string::npos);
    EXPECT_NE(danger(me + "/.config/app", homes).find("it is in"), std::string::npos);
    EXPECT_EQ(danger(me + "/project", homes), "");
    // A home that does not exist yet: where it would be made is guarded.
    std::vector<Home> future{{d / "later/user", 0, 0}};
    EXPECT_NE(danger(d.path(), future).find("it holds"), std::string::npos);
    EXPECT_EQ(danger(me + "/project", future), "");
}

TEST(Homes, ABindMountOfAHomeIsTheHome) {
    BUTTER_REQUIRE(test::have_mountns(), "MOUNTNS", "no mount namespace for the alias");
    TempDir d;
    std::string me = d / "me", alias = d / "alias";
    ASSERT_EQ(::mkdir(me.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((me + "/.ssh").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(alias.c_str(), 0755), 0);
    auto r = test::run_in_child([&] {
        std::string why = test::private_mount_namespace();
        CHILD_ASSERT(why.empty(), why);
        CHILD_ASSERT(::mount(me.c_str(), alias.c_str(), "none", MS_BIND, nullptr) == 0, "bind");
        std::vector<Home> homes{home_at(me)};
        CHILD_ASSERT(danger(alias, homes).find("it is the home") != std::string::npos,
                     danger(alias, homes));
        CHILD_ASSERT(danger(alias + "/.ssh", homes).find("it is in") != std::string::npos,
                     danger(alias + "/.ssh", homes));
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter::launcher
