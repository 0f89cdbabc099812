// Paths the host later runs code from (persistence.hpp), against the real filesystem.
#include "plan/persistence.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <butter/fd.hpp>

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

// As root, every login user's home (from /etc/passwd, read as text) is protected; a system
// account's (nologin: daemon's /usr/sbin) is not.
TEST(Homes, RootProtectsTheHomesOfLoginUsers) {
    if (::geteuid() != 0) GTEST_SKIP() << "as root only";
    std::string passwd = read_file("/etc/passwd").value_or("");
    if (passwd.find("\nroot:x:0:0:root:/root:/bin/bash") == std::string::npos &&
        !passwd.starts_with("root:x:0:0:root:/root:/bin/bash"))
        GTEST_SKIP() << "root's entry is not Debian's";
    auto homes = homes_to_protect();
    auto has = [&](const std::string& p) {
        return std::any_of(homes.begin(), homes.end(), [&](const Home& h) { return h.path == p; });
    };
    EXPECT_TRUE(has("/root"));
    EXPECT_FALSE(has("/usr/sbin")) << "daemon's (nologin)";
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

// Submodules, from the index as git writes it in each version: the directories on the way
// pinned (shallower first), each gitfile read-only, an uninitialized one read-only whole.
TEST(Git, SubmodulesFromEveryIndexVersion) {
    if (std::system("git --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no git";
    TempDir d;
    auto git = [&](const std::string& dir, const std::string& args) {
        std::string cmd =
            "cd '" + dir +
            "' && export GIT_CONFIG_COUNT=3 GIT_CONFIG_KEY_0=protocol.file.allow "
            "GIT_CONFIG_VALUE_0=always GIT_CONFIG_KEY_1=user.name GIT_CONFIG_VALUE_1=t "
            "GIT_CONFIG_KEY_2=user.email GIT_CONFIG_VALUE_2=t@t && git " +
            args + " >/dev/null 2>&1";
        return std::system(cmd.c_str());
    };
    std::string origin = d / "origin", top = d / "top";
    ASSERT_EQ(::mkdir(origin.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(top.c_str(), 0755), 0);
    ASSERT_EQ(git(origin, "init -q && touch a && git add a && git commit -qm a"), 0);
    ASSERT_EQ(git(top, "init -q && touch f && git add f && git submodule add -q '" + origin +
                           "' a/b/one && git submodule add -q '" + origin +
                           "' two && git commit -qm top"),
              0);
    // "two" uninitialized: its checkout removed, its directory left empty, as a fresh clone's.
    ASSERT_EQ(git(top, "submodule deinit -q -f two"), 0);
    for (const char* version : {"2", "3", "4"}) {
        ASSERT_EQ(git(top, std::string("update-index --index-version ") + version), 0);
        auto parts = git_parts_to_protect(top);
        ASSERT_TRUE(parts) << parts.error().what();
        std::string got;
        for (const GitPart& p : *parts)
            got += (p.pin ? "pin " : "ro ") + p.rel + "\n";
        EXPECT_EQ(got,
                  "ro .git\n"
                  "pin a\n"
                  "pin two\n"
                  "pin a/b\n"
                  "pin a/b/one\n"
                  "ro a/b/one/.git\n"
                  "ro two\n")
            << "index version " << version;
    }
}

}  // namespace
}  // namespace butter::launcher
