// User and group names without NSS in butter (user_db.hpp): the sandbox's files, the host's,
// and getent for what only the host's NSS knows.
#include "plan/user_db.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/tmpdir.hpp"

namespace butter::launcher {
namespace {

constexpr const char* kPasswd =
    "# a comment\n"
    "root:x:0:0:root:/root:/bin/sh\n"
    "short:x:12\n"
    "+nis\n"
    "builder:x:4321:4400:Builder:/home/builder:/bin/sh\n"
    "huge:x:99999999999:1::/:/bin/sh\n"
    "last:x:77:78::/:/bin/sh";  // no final newline

// Fields of a lookup, or values no entry has when it found nothing.
std::uint32_t id_of(const std::optional<UserEntry>& e) {
    return e ? e->id : 0xffffffffu;
}
std::uint32_t gid_of(const std::optional<UserEntry>& e) {
    return e ? e->gid : 0xffffffffu;
}
std::string name_of(const std::optional<UserEntry>& e) {
    return e ? e->name : "(none)";
}

TEST(UserDb, FindsByNameAndIdSkippingWhatIsNotAnEntry) {
    auto b = find_in_user_db(UserDb::Passwd, kPasswd, "builder");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->id, 4321u);
    EXPECT_EQ(b->gid, 4400u);
    auto by_id = find_in_user_db(UserDb::Passwd, kPasswd, "4321");
    ASSERT_TRUE(by_id);
    EXPECT_EQ(by_id->name, "builder");
    EXPECT_EQ(gid_of(find_in_user_db(UserDb::Passwd, kPasswd, "last")), 78u);
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "short"));  // too few fields
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "huge"));   // id out of range
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "+nis"));   // a compat line
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "# a comment"));
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "99999999999"));
    EXPECT_FALSE(find_in_user_db(UserDb::Passwd, kPasswd, "nobody"));
    auto g = find_in_user_db(UserDb::Group, "wheel:x:10:a,b\nbuild:x:4400:\n", "build");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->id, 4400u);
}

// The sandbox's own /etc first; the host's for what it lacks; a file that someone else could
// have written (a sandbox, through a writable root) is not read.
TEST(UserDb, SandboxEtcFirstThenTheHostsAndOnlyTrustedFiles) {
    test::TempDir etc;
    ASSERT_EQ(::chmod(etc.path().c_str(), 0755), 0);
    test::write_file(etc / "passwd",
                     "root:x:0:0::/root:/bin/sh\nonlyhere:x:4321:4400::/:/bin/sh\n");
    ASSERT_EQ(::chmod((etc / "passwd").c_str(), 0644), 0);
    test::write_file(etc / "group", "onlyhere:x:4400:\n");
    ASSERT_EQ(::chmod((etc / "group").c_str(), 0644), 0);
    EXPECT_EQ(id_of(lookup_user_db(UserDb::Passwd, "onlyhere", etc.path())), 4321u);
    EXPECT_EQ(id_of(lookup_user_db(UserDb::Group, "onlyhere", etc.path())), 4400u);
    EXPECT_FALSE(lookup_user_db(UserDb::Passwd, "onlyhere", ""));  // not the host's
    EXPECT_EQ(id_of(lookup_user_db(UserDb::Passwd, "root", etc.path())), 0u);
    // Only on the host: found there.
    auto nobody = lookup_user_db(UserDb::Passwd, "nobody", etc.path());
    ASSERT_TRUE(nobody);
    EXPECT_EQ(nobody->id, 65534u);
    ASSERT_EQ(::chmod((etc / "passwd").c_str(), 0666), 0);
    EXPECT_FALSE(lookup_user_db(UserDb::Passwd, "onlyhere", etc.path())) << "writable by others";
}

// getent: the host's NSS, through a program linked the host's way.
TEST(UserDb, GetentAnswersForTheHostsNss) {
    if (::access("/usr/bin/getent", X_OK) != 0) GTEST_SKIP() << "no getent";
    auto line = getent(UserDb::Passwd, "root");
    ASSERT_TRUE(line);
    EXPECT_EQ(line->rfind("root:", 0), 0u) << *line;
    EXPECT_EQ(name_of(find_in_user_db(UserDb::Passwd, *line, "0")), "root");
    EXPECT_FALSE(getent(UserDb::Passwd, "no-such-user-butter"));
    EXPECT_FALSE(getent(UserDb::Passwd, "--help")) << "never an option";
    EXPECT_FALSE(getent(UserDb::Group, "a b"));
}

}  // namespace
}  // namespace butter::launcher
