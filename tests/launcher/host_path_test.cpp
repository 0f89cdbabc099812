// Host paths opened so that a sandbox cannot redirect them (host_path.hpp), against the real
// filesystem.
#include "plan/host_path.hpp"

#include <chrono>

#include "supervise/watch.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../support/tmpdir.hpp"

namespace butter::launcher {
namespace {

using test::read_file;
using test::TempDir;
using test::write_file;

bool root() {
    return ::geteuid() == 0;
}

TEST(HostPath, ResolvesWithoutSymlinksAndDots) {
    TempDir d;
    ASSERT_EQ(::mkdir((d / "a").c_str(), 0755), 0);
    write_file(d / "a/f", "x");
    auto r = resolve_host_path(d.path() + "//a/./../a/f");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->path, d / "a/f");
    EXPECT_TRUE(S_ISREG(r->st.st_mode));
    auto missing = resolve_host_path(d / "nope/f");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
    EXPECT_FALSE(resolve_host_path("relative/path"));
    EXPECT_EQ(resolve_host_path(d / "a/f/g").error().errno_value(), ENOTDIR);
}

TEST(HostPath, FollowsOnlyRootsSymlinksUnlessTold) {
    if (!root()) GTEST_SKIP() << "needs root to own symlinks of two users";
    TempDir d;
    ASSERT_EQ(::mkdir((d / "target").c_str(), 0755), 0);
    ASSERT_EQ(::symlink("target", (d / "roots").c_str()), 0);
    ASSERT_EQ(::symlink((d / "target").c_str(), (d / "users").c_str()), 0);
    ASSERT_EQ(::lchown((d / "users").c_str(), 12345, 12345), 0);

    auto r = resolve_host_path(d / "roots");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->path, d / "target");
    auto u = resolve_host_path(d / "users");
    ASSERT_FALSE(u);
    EXPECT_NE(u.error().what().find("a symlink (to '" + d / "target" + "')"), std::string::npos)
        << u.error().what();
    EXPECT_EQ(u.error().context(), d / "users");
    auto f = resolve_host_path(d / "users", Symlinks::Follow);
    ASSERT_TRUE(f) << f.error().what();
    EXPECT_EQ(f->path, d / "target");
}

TEST(HostPath, ReopenCatchesAReplacement) {
    TempDir d;
    ASSERT_EQ(::mkdir((d / "src").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((d / "other").c_str(), 0755), 0);
    auto r = resolve_host_path(d / "src");
    ASSERT_TRUE(r);
    EXPECT_TRUE(reopen_host_path(r->path, r->st.st_dev, r->st.st_ino));
    ASSERT_EQ(::rename((d / "src").c_str(), (d / "gone").c_str()), 0);
    ASSERT_EQ(::rename((d / "other").c_str(), (d / "src").c_str()), 0);
    auto swapped = reopen_host_path(r->path, r->st.st_dev, r->st.st_ino);
    ASSERT_FALSE(swapped);
    EXPECT_EQ(swapped.error().errno_value(), ESTALE);
    ASSERT_EQ(::rmdir((d / "src").c_str()), 0);
    ASSERT_EQ(::symlink("gone", (d / "src").c_str()), 0);
    auto link = reopen_host_path(r->path, r->st.st_dev, r->st.st_ino);
    ASSERT_FALSE(link);
    EXPECT_EQ(link.error().errno_value(), ELOOP);
}

// [watch] opens what was planned: a path swapped since (a directory renamed in its place, a
// symlink) is an error, never watched.
TEST(HostPath, AWatchedPathSwappedSincePlanningIsRefused) {
    TempDir d;
    ASSERT_EQ(::mkdir((d / "conf").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((d / "other").c_str(), 0755), 0);
    auto r = resolve_host_path(d / "conf");
    ASSERT_TRUE(r);
    SandboxPlan::WatchPath planned{r->path, r->st.st_dev, r->st.st_ino};
    EXPECT_TRUE(Watcher::create({planned}, std::chrono::milliseconds(10)));
    ASSERT_EQ(::rename((d / "conf").c_str(), (d / "gone").c_str()), 0);
    ASSERT_EQ(::symlink("other", (d / "conf").c_str()), 0);
    auto w = Watcher::create({planned}, std::chrono::milliseconds(10));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().errno_value(), ELOOP) << w.error().what();
}

TEST(HostFile, ReplacesSymlinksAndHardLinksInsteadOfWritingThroughThem) {
    TempDir d, elsewhere;
    std::string victim = elsewhere / "victim";
    write_file(victim, "host file\n");
    ASSERT_EQ(::symlink(victim.c_str(), (d / "out").c_str()), 0);
    auto f = HostFile::at(d / "out");
    ASSERT_TRUE(f) << f.error().what();
    {
        auto fd = f->open_truncated();
        ASSERT_TRUE(fd) << fd.error().what();
        ASSERT_EQ(::write(fd->get(), "new\n", 4), 4);
    }
    EXPECT_EQ(read_file(victim), "host file\n");
    EXPECT_EQ(read_file(d / "out"), "new\n");

    ASSERT_EQ(::unlink((d / "out").c_str()), 0);
    ASSERT_EQ(::link(victim.c_str(), (d / "out").c_str()), 0);
    ASSERT_TRUE(f->open_truncated());
    EXPECT_EQ(read_file(victim), "host file\n");

    ASSERT_EQ(::unlink((d / "out").c_str()), 0);
    ASSERT_EQ(::symlink(victim.c_str(), (d / "out").c_str()), 0);
    // A sandbox's symlink is never root's (as root: the test's stands for one).
    if (::geteuid() == 0) {
        ASSERT_EQ(::lchown((d / "out").c_str(), 1000, 1000), 0);
    }
    ASSERT_TRUE(f->replace("{}\n"));
    EXPECT_EQ(read_file(victim), "host file\n");
    EXPECT_EQ(read_file(d / "out"), "{}\n");
    struct stat st {};
    ASSERT_EQ(::lstat((d / "out").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    // An ordinary file is truncated in place (same inode: a reader following it keeps it).
    ino_t ino = st.st_ino;
    ASSERT_TRUE(f->open_truncated());
    ASSERT_EQ(::lstat((d / "out").c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, ino);
    EXPECT_EQ(st.st_size, 0);
}

// /tmp with fs.protected_regular off: a file another user planted for root to fill.
TEST(HostFile, ReplacesAFileAnotherUserPlantedInAStickyDirectory) {
    if (!root()) GTEST_SKIP() << "needs root to plant a file of another user";
    TempDir d;
    ASSERT_EQ(::chmod(d.path().c_str(), 01777), 0);
    std::string planted = d / "out";
    write_file(planted, "theirs\n");
    ASSERT_EQ(::chmod(planted.c_str(), 0666), 0);
    ASSERT_EQ(::chown(planted.c_str(), 12345, 12345), 0);
    int theirs = ::open(planted.c_str(), O_RDONLY | O_CLOEXEC);  // what its planter would read
    ASSERT_GE(theirs, 0);
    auto f = HostFile::at(planted);
    ASSERT_TRUE(f) << f.error().what();
    auto fd = f->open_truncated();
    ASSERT_TRUE(fd) << fd.error().what();
    ASSERT_EQ(::write(fd->get(), "secret\n", 7), 7);
    char buf[16] = {};
    EXPECT_EQ(::read(theirs, buf, sizeof buf), 7);
    EXPECT_STREQ(buf, "theirs\n");  // the planted inode never got butter's output
    ::close(theirs);
    struct stat st {};
    ASSERT_EQ(::stat(planted.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
}

TEST(HostFile, RefusesAFifo) {
    TempDir d;
    ASSERT_EQ(::mkfifo((d / "out").c_str(), 0644), 0);
    auto f = HostFile::at(d / "out");
    ASSERT_TRUE(f);
    // With a reader waiting (a sandbox's, say), as without one.
    int reader = ::open((d / "out").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    auto fd = f->open_truncated();
    ASSERT_FALSE(fd);
    EXPECT_NE(fd.error().what().find("not a regular file"), std::string::npos);
    ::close(reader);
    auto dev = HostFile::at("/dev/null");
    ASSERT_TRUE(dev);
    EXPECT_TRUE(dev->open_truncated());
}

// --report /dev/null: the report goes to the device; the device stays (renaming a file over it
// replaced the host's /dev/null). A device node of its own, where the test may make one.
TEST(HostFile, WritesADeviceInsteadOfReplacingIt) {
    TempDir d;
    std::string path = ::geteuid() == 0 ? d / "null" : std::string("/dev/null");
    if (::geteuid() == 0) {
        ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    }
    auto f = HostFile::at(path);
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->replace("{}\n")) << path;
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << path << " was replaced";
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
}

// What root made at the name that is neither a file nor a device (/dev/stdout, a symlink) is
// refused, not replaced; a whiteout (0:0, which a sandbox can make) and a FIFO are replaced.
TEST(HostFile, RefusesRootsSymlinkAndReplacesAWhiteout) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (root's symlink, mknod)";
    TempDir d;
    ASSERT_EQ(::symlink("/proc/self/fd/1", (d / "stdout").c_str()), 0);
    auto f = HostFile::at(d / "stdout");
    ASSERT_TRUE(f);
    auto r = f->replace("{}\n");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("not replaced"), std::string::npos) << r.error().what();
    struct stat st {};
    ASSERT_EQ(::lstat((d / "stdout").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    for (const char* name : {"wh", "wh2"}) {
        std::string p = d / name;
        ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0644, makedev(0, 0)), 0);
        ASSERT_EQ(::lchown(p.c_str(), 1000, 1000), 0);
        auto w = HostFile::at(p);
        ASSERT_TRUE(w);
        if (std::string(name) == "wh") {
            EXPECT_TRUE(w->replace("{}\n"));
        } else {
            EXPECT_TRUE(w->open_truncated());
        }
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    }
}

TEST(HostFile, HoldsItsDirectoryFromBeforeTheRun) {
    TempDir d, elsewhere;
    ASSERT_EQ(::mkdir((d / "sub").c_str(), 0755), 0);
    auto f = HostFile::at(d / "sub/report.json");
    ASSERT_TRUE(f);
    // The directory's name now leads elsewhere: the file still goes where it was resolved.
    ASSERT_EQ(::rename((d / "sub").c_str(), (d / "moved").c_str()), 0);
    ASSERT_EQ(::symlink(elsewhere.path().c_str(), (d / "sub").c_str()), 0);
    ASSERT_TRUE(f->replace("{}\n"));
    EXPECT_EQ(read_file(d / "moved/report.json"), "{}\n");
    struct stat st {};
    EXPECT_NE(::lstat((elsewhere / "report.json").c_str(), &st), 0);
    EXPECT_FALSE(HostFile::at(d / "sub/"));
    EXPECT_FALSE(HostFile::at("report.json"));
}

}  // namespace
}  // namespace butter::launcher
