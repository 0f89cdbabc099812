// PrivateDir (the TMPDIR and HOME of the tiers below namespaces): removed whole, whatever the
// sandbox left there, without following anything out of it, and as the command's own ids.
#include "supervise/private_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::launcher {
namespace {

using test::read_file;
using test::TempDir;
using test::write_file;

// A PrivateDir made below `base` (as $TMPDIR names it).
PrivateDir make_in(const std::string& base) {
    const char* old = std::getenv("TMPDIR");
    std::string saved = old ? old : "";
    ::setenv("TMPDIR", base.c_str(), 1);
    auto d = PrivateDir::create();
    if (old)
        ::setenv("TMPDIR", saved.c_str(), 1);
    else
        ::unsetenv("TMPDIR");
    EXPECT_TRUE(d) << d.error().what();
    return d ? std::move(*d) : PrivateDir();
}

TEST(PrivateDir, RemovesWhatTheSandboxLeftWithoutFollowingIt) {
    TempDir base;
    write_file(base / "outside", "keep\n");
    PrivateDir d = make_in(base.path());
    ASSERT_TRUE(d.valid());
    ASSERT_TRUE(d.prepare(::geteuid(), ::getegid()));
    std::string tmp = d.path() + "/tmp";
    std::string deep = tmp;
    for (int i = 0; i < 100; ++i) {
        deep += "/d";
        ASSERT_EQ(::mkdir(deep.c_str(), 0700), 0);
    }
    write_file(deep + "/f", "x");
    ASSERT_EQ(::symlink((base / "outside").c_str(), (tmp + "/link").c_str()), 0);
    ASSERT_EQ(::symlink(base.path().c_str(), (tmp + "/dirlink").c_str()), 0);
    ASSERT_EQ(::link((base / "outside").c_str(), (tmp + "/hard").c_str()), 0);
    ASSERT_EQ(::mkdir((tmp + "/locked").c_str(), 0700), 0);
    write_file(tmp + "/locked/f", "x");
    ASSERT_EQ(::chmod((tmp + "/locked").c_str(), 0), 0);
    std::string path = d.path();
    auto r = d.remove();
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    EXPECT_EQ(read_file(base / "outside"), "keep\n");
}

TEST(PrivateDir, ATreeDeeperThanTheDescriptorsKeptGoesToo) {
    TempDir base;
    write_file(base / "outside", "keep\n");
    PrivateDir d = make_in(base.path());
    ASSERT_TRUE(d.prepare(::geteuid(), ::getegid()));
    // Made relative to each level (a path this long is past PATH_MAX).
    int at = ::open((d.path() + "/tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(at, 0);
    for (int i = 0; i < 2100; ++i) {
        ASSERT_EQ(::mkdirat(at, "d", 0700), 0);
        int next = ::openat(at, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ::close(at);
        ASSERT_GE(next, 0);
        at = next;
    }
    ::close(at);
    std::string path = d.path();
    auto r = d.remove();
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    EXPECT_EQ(read_file(base / "outside"), "keep\n");
}

// As root, the removal has the command's ids alone: what they could not remove stays.
TEST(PrivateDir, RootRemovesAsTheCommandsIds) {
    BUTTER_REQUIRE_ROOT();
    TempDir base;
    ASSERT_EQ(::chmod(base.path().c_str(), 0755), 0);
    PrivateDir d = make_in(base.path());
    ASSERT_TRUE(d.prepare(65534, 65534));
    std::string tmp = d.path() + "/tmp";
    struct stat st {};
    ASSERT_EQ(::stat(tmp.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u);
    // Root's own directory in there (as a hostile rename could bring one): not nobody's to
    // empty.
    ASSERT_EQ(::mkdir((tmp + "/roots").c_str(), 0755), 0);
    write_file(tmp + "/roots/file", "root's\n");
    auto r = d.remove();
    EXPECT_FALSE(r);
    EXPECT_EQ(read_file(tmp + "/roots/file"), "root's\n");
}

}  // namespace
}  // namespace butter::launcher
