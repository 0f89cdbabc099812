#include "butter/fanotify.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "butter/loop.hpp"

namespace butter {
namespace {

using M = FanotifyMask;

TEST(Fanotify, OpenAndCloseWriteCarryFdAndPid) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    std::string f = dir / "file";
    test::write_file(f, "x");
    auto fan = Fanotify::create(FanotifyInit::NonBlock);
    ASSERT_TRUE(fan) << fan.error().what();
    ASSERT_TRUE(fan->add_mark(f, M::Open | M::CloseWrite | M::Modify));
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_EQ(::write(fd, "y", 1), 1);
    ::close(fd);
    auto evs = fan->read_events();
    ASSERT_TRUE(evs) << evs.error().what();
    // fanotify merges queued events on the same object: the union must be exact.
    FanotifyMasks all;
    for (auto& e : *evs) {
        all |= e.mask;
        EXPECT_EQ(e.pid, ::getpid());
        EXPECT_EQ(e.path(), f);
        EXPECT_TRUE(e.fd.valid());
        EXPECT_TRUE(::fcntl(e.fd.get(), F_GETFD) & FD_CLOEXEC);
    }
    ASSERT_FALSE(evs->empty());
    EXPECT_EQ(all, M::Open | M::Modify | M::CloseWrite);
    auto none = fan->read_event();
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
}

TEST(Fanotify, DfidNameReportsEntryNames) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    auto fan = Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock);
    ASSERT_TRUE(fan) << fan.error().what();
    ASSERT_TRUE(fan->add_mark(dir.path(), M::Create | M::Delete | M::OnDir));
    test::write_file(dir / "new.txt", "");
    ASSERT_EQ(::mkdir((dir / "sub").c_str(), 0755), 0);
    auto evs = fan->read_events();
    ASSERT_TRUE(evs);
    ASSERT_EQ(evs->size(), 2u);
    EXPECT_EQ((*evs)[0].mask, FanotifyMasks(M::Create));
    EXPECT_EQ((*evs)[0].name(), "new.txt");
    EXPECT_FALSE((*evs)[0].fd.valid());  // FID mode: handles, not fds
    ASSERT_FALSE((*evs)[0].handles.empty());
    EXPECT_EQ((*evs)[1].mask, M::Create | M::OnDir);
    EXPECT_TRUE((*evs)[1].is_dir());
    EXPECT_EQ((*evs)[1].name(), "sub");
    ASSERT_EQ(::unlink((dir / "new.txt").c_str()), 0);
    auto del = fan->read_event();
    ASSERT_TRUE(del && del->has_value());
    EXPECT_EQ((*del)->mask, FanotifyMasks(M::Delete));
    EXPECT_EQ((*del)->name(), "new.txt");
    // The directory handle opens the watched directory.
    auto mnt = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
    auto opened = open_by_handle(*mnt, (*evs)[0].handles[0], O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(opened) << opened.error().what();
    struct stat a {
    }, b{};
    ::fstat(opened->get(), &a);
    ::stat(dir.path().c_str(), &b);
    EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST(Fanotify, NameToHandleGivesTheHandleEventsCarry) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    struct statfs sf {};
    ASSERT_EQ(::statfs(dir.path().c_str(), &sf), 0);
    std::uint64_t fsid = 0;
    std::memcpy(&fsid, &sf.f_fsid, sizeof fsid);
    auto fan = Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock);
    ASSERT_TRUE(fan) << fan.error().what();
    ASSERT_TRUE(fan->add_mark(dir.path(), M::Create));
    test::write_file(dir / "f", "");
    auto ev = fan->read_event();
    ASSERT_TRUE(ev && ev->has_value() && !(*ev)->handles.empty());
    const FileHandle& from_event = (*ev)->handles[0];
    auto h = name_to_handle(AT_FDCWD, dir.path().c_str(), fsid);
    ASSERT_TRUE(h) << h.error().what();
    EXPECT_EQ(h->fsid, from_event.fsid);
    EXPECT_EQ(h->handle_type, from_event.handle_type);
    EXPECT_EQ(h->handle, from_event.handle);
    // And back to the path.
    auto mnt = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(mnt);
    auto opened = open_by_handle(*mnt, *h, O_PATH);
    ASSERT_TRUE(opened) << opened.error().what();
    EXPECT_EQ(fd_path(*opened), dir.path());
    auto missing = name_to_handle(AT_FDCWD, (dir / "nope").c_str(), fsid);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
}

TEST(Fanotify, PermissionEventsAllowAndDeny) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    std::string f = dir / "guarded";
    test::write_file(f, "secret");
    auto fan = Fanotify::create(FanotifyInit::ClassContent);
    ASSERT_TRUE(fan) << fan.error().what();
    ASSERT_TRUE(fan->add_mark(f, M::OpenPerm));
    for (bool allow : {false, true}) {
        pid_t pid = ::fork();
        if (pid == 0) {
            int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
            if (allow) ::_exit(fd >= 0 ? 0 : 1);
            ::_exit(fd < 0 && errno == EPERM ? 0 : 2);
        }
        auto ev = fan->read_event();  // blocking: the child waits on our answer
        ASSERT_TRUE(ev && ev->has_value());
        EXPECT_TRUE((*ev)->is_permission());
        EXPECT_EQ((*ev)->pid, pid);
        ASSERT_TRUE(fan->respond(**ev, allow));
        int st = 0;
        ::waitpid(pid, &st, 0);
        EXPECT_EQ(WEXITSTATUS(st), 0) << (allow ? "allowed open failed" : "denied open succeeded");
    }
}

TEST(Fanotify, MountMarkSeesWritesAnywhereOnTheMount) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    std::string d = dir.path();
    auto r = test::run_in_child([d] {
        std::string e = test::private_mount_namespace();
        CHILD_ASSERT(e.empty(), e);
        CHILD_ASSERT(::mount("tmpfs", d.c_str(), "tmpfs", 0, nullptr) == 0, "mount");
        CHILD_ASSERT(::mkdir((d + "/deep").c_str(), 0755) == 0, "mkdir");
        auto fan = Fanotify::create(FanotifyInit::NonBlock);
        CHILD_OK(fan);
        CHILD_OK(fan->add_mark(d, M::CloseWrite, FanotifyMarkType::Mount));
        test::write_file(d + "/deep/file", "x");
        auto evs = fan->read_events();
        CHILD_OK(evs);
        CHILD_ASSERT(evs->size() == 1, "events " << evs->size());
        CHILD_ASSERT((*evs)[0].path() == d + "/deep/file", (*evs)[0].to_string());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Fanotify, UnprivilegedFidGroupWithInodeMarks) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "no unprivileged test user");
    test::TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    std::string d = dir.path();
    auto r = test::run_as_nobody([d] {
        auto denied = Fanotify::create(FanotifyInit::ClassContent);
        CHILD_ASSERT(!denied && denied.error().errno_value() == EPERM, "permission class allowed");
        auto fan = Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock);
        CHILD_OK(fan);
        CHILD_OK(fan->add_mark(d, M::Create));
        auto mount_mark = fan->add_mark(d, M::Create, FanotifyMarkType::Mount);
        CHILD_ASSERT(!mount_mark && mount_mark.error().errno_value() == EPERM,
                     "mount mark allowed");
        test::write_file(d + "/mine", "");
        auto ev = fan->read_event();
        CHILD_OK(ev);
        CHILD_ASSERT(ev->has_value() && (*ev)->name() == "mine", "no event");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

Task<Result<FanotifyEvent>> next_fan(Async<Fanotify>& a) {
    co_return co_await a.next();
}

TEST(Fanotify, AsyncOnLoop) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    auto loop = EventLoop::create();
    auto fan = Fanotify::create(kFanotifyReportDfidName);
    ASSERT_TRUE(fan->add_mark(dir.path(), M::Create));
    auto async = Async<Fanotify>::create(*loop, std::move(*fan));
    ASSERT_TRUE(async);
    std::string path = dir / "async";
    loop->call_soon([path] { test::write_file(path, ""); });
    auto ev = loop->run_until_complete(next_fan(*async));
    ASSERT_TRUE(ev && *ev);
    EXPECT_EQ((*ev)->name(), "async");
}

}  // namespace
}  // namespace butter
