#include "butter/inotify.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter {
namespace {

using M = InotifyMask;

class InotifyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto in = Inotify::create(InotifyFlag::NonBlock);
        ASSERT_TRUE(in) << in.error().what();
        inotify_.emplace(std::move(*in));
    }
    // Every event ready now, in order.
    std::vector<InotifyEvent> drain() {
        std::vector<InotifyEvent> all;
        for (;;) {
            auto evs = inotify_->read_events();
            EXPECT_TRUE(evs) << evs.error().what();
            if (!evs || evs->empty()) return all;
            for (auto& e : *evs)
                all.push_back(std::move(e));
        }
    }
    int watch(const std::string& path, InotifyMasks mask) {
        auto wd = inotify_->add_watch(path, mask);
        EXPECT_TRUE(wd) << wd.error().what();
        return wd.value_or(-1);
    }
    test::TempDir dir_;
    std::optional<Inotify> inotify_;
};

TEST_F(InotifyTest, CreateReportsName) {
    int wd = watch(dir_.path(), M::Create);
    test::write_file(dir_ / "a.txt", "x");
    auto ev = inotify_->read_event();
    ASSERT_TRUE(ev) << ev.error().what();
    ASSERT_TRUE(ev->has_value());
    EXPECT_EQ((*ev)->wd, wd);
    EXPECT_EQ((*ev)->mask, InotifyMasks(M::Create));
    EXPECT_EQ((*ev)->name, "a.txt");
    EXPECT_EQ((*ev)->watch_path, dir_.path());
    EXPECT_EQ((*ev)->path(), dir_ / "a.txt");
    EXPECT_FALSE((*ev)->is_dir());
    EXPECT_EQ((*ev)->to_string(), "Create " + (dir_ / "a.txt"));
}

TEST_F(InotifyTest, EmptyNonBlockingReturnsNothing) {
    watch(dir_.path(), kInotifyAllEvents);
    auto ev = inotify_->read_event();
    ASSERT_TRUE(ev);
    EXPECT_FALSE(ev->has_value());
    auto evs = inotify_->read_events();
    ASSERT_TRUE(evs);
    EXPECT_TRUE(evs->empty());
}

TEST_F(InotifyTest, AddWatchErrorNamesPath) {
    auto wd = inotify_->add_watch("/nope", kInotifyAllEvents);
    ASSERT_FALSE(wd);
    EXPECT_EQ(wd.error().what(), "inotify_add_watch(\"/nope\"): No such file or directory");
}

TEST_F(InotifyTest, FileLifecycleEvents) {
    std::string f = dir_ / "f";
    test::write_file(f, "hello");
    watch(dir_.path(), kInotifyAllEvents);
    int fd = ::open(f.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(::read(fd, &c, 1), 1);    // Access
    ASSERT_EQ(::write(fd, "x", 1), 1);  // Modify
    ::close(fd);                        // CloseWrite
    fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    ::close(fd);                             // Open, CloseNoWrite
    ASSERT_EQ(::chmod(f.c_str(), 0600), 0);  // Attrib
    ASSERT_EQ(::unlink(f.c_str()), 0);       // Delete
    std::vector<InotifyMasks> got;
    for (auto& e : drain()) {
        EXPECT_EQ(e.name, "f");
        got.push_back(e.mask);
    }
    std::vector<InotifyMasks> want = {M::Open, M::Access,       M::Modify, M::CloseWrite,
                                      M::Open, M::CloseNoWrite, M::Attrib, M::Delete};
    EXPECT_EQ(got, want);
}

TEST_F(InotifyTest, DirectoryEventsCarryIsDir) {
    watch(dir_.path(), M::Create | M::Delete);
    ASSERT_EQ(::mkdir((dir_ / "sub").c_str(), 0755), 0);
    ASSERT_EQ(::rmdir((dir_ / "sub").c_str()), 0);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].mask, M::Create | M::IsDir);
    EXPECT_TRUE(evs[0].is_dir());
    EXPECT_EQ(evs[1].mask, M::Delete | M::IsDir);
    EXPECT_EQ(to_string(evs[1].mask), "Delete|IsDir");
}

TEST_F(InotifyTest, MovesArePairedByCookie) {
    ASSERT_EQ(::mkdir((dir_ / "a").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_ / "b").c_str(), 0755), 0);
    test::write_file(dir_ / "a/file", "");
    watch(dir_ / "a", kInotifyMove);
    watch(dir_ / "b", kInotifyMove);
    ASSERT_EQ(::rename((dir_ / "a/file").c_str(), (dir_ / "b/renamed").c_str()), 0);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::MovedFrom));
    EXPECT_EQ(evs[1].mask, InotifyMasks(M::MovedTo));
    EXPECT_NE(evs[0].cookie, 0u);
    EXPECT_EQ(evs[0].cookie, evs[1].cookie);
    EXPECT_EQ(evs[0].path(), dir_ / "a/file");
    EXPECT_EQ(evs[1].path(), dir_ / "b/renamed");
    ASSERT_TRUE(evs[1].moved_from.has_value());
    EXPECT_EQ(*evs[1].moved_from, dir_ / "a/file");
}

TEST_F(InotifyTest, MoveIntoWatchedDirFromElsewhereIsUnpaired) {
    test::TempDir other;
    test::write_file(other / "x", "");
    watch(dir_.path(), kInotifyMove);
    ASSERT_EQ(::rename((other / "x").c_str(), (dir_ / "x").c_str()), 0);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::MovedTo));
    EXPECT_FALSE(evs[0].moved_from.has_value());
}

TEST_F(InotifyTest, SelfEventsAndIgnored) {
    std::string sub = dir_ / "sub";
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    int wd = watch(sub, M::DeleteSelf | M::MoveSelf);
    ASSERT_EQ(::rename(sub.c_str(), (dir_ / "sub2").c_str()), 0);
    ASSERT_EQ(::rmdir((dir_ / "sub2").c_str()), 0);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 3u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::MoveSelf));
    EXPECT_EQ(evs[1].mask, InotifyMasks(M::DeleteSelf));
    EXPECT_TRUE(evs[2].is_ignored());
    EXPECT_EQ(evs[2].wd, wd);
    EXPECT_EQ(evs[2].watch_path, sub);  // the path survives until IN_IGNORED is read
    EXPECT_EQ(inotify_->path_of(wd), nullptr);
    EXPECT_EQ(inotify_->watch_count(), 0u);
}

TEST_F(InotifyTest, WatchMapAddModifyRemove) {
    int wd = watch(dir_.path(), M::Create);
    ASSERT_NE(inotify_->path_of(wd), nullptr);
    EXPECT_EQ(*inotify_->path_of(wd), dir_.path());
    EXPECT_EQ(inotify_->wd_of(dir_.path()), wd);
    EXPECT_EQ(inotify_->watch_count(), 1u);

    // Replace the mask: Create no longer reported, Delete is.
    auto same = inotify_->modify_watch(wd, M::Delete);
    ASSERT_TRUE(same);
    EXPECT_EQ(*same, wd);
    test::write_file(dir_ / "x", "");
    ASSERT_EQ(::unlink((dir_ / "x").c_str()), 0);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::Delete));

    // MaskAdd ORs Create back in.
    ASSERT_TRUE(inotify_->modify_watch(wd, M::Create | M::MaskAdd));
    test::write_file(dir_ / "y", "");
    ASSERT_EQ(::unlink((dir_ / "y").c_str()), 0);
    evs = drain();
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::Create));
    EXPECT_EQ(evs[1].mask, InotifyMasks(M::Delete));

    ASSERT_TRUE(inotify_->remove_watch(wd));
    EXPECT_EQ(inotify_->wd_of(dir_.path()), std::nullopt);
    evs = drain();
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_TRUE(evs[0].is_ignored());
    EXPECT_EQ(evs[0].watch_path, dir_.path());
    EXPECT_EQ(inotify_->path_of(wd), nullptr);
    auto gone = inotify_->remove_watch(wd);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().errno_value(), EINVAL);
    EXPECT_FALSE(inotify_->modify_watch(wd, M::Create));
}

TEST_F(InotifyTest, MaskCreateRefusesExistingWatch) {
    watch(dir_.path(), M::Create);
    auto again = inotify_->add_watch(dir_.path(), M::Delete | M::MaskCreate);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value(), EEXIST);
}

TEST_F(InotifyTest, OnlyDirRefusesFiles) {
    test::write_file(dir_ / "f", "");
    auto wd = inotify_->add_watch(dir_ / "f", M::Modify | M::OnlyDir);
    ASSERT_FALSE(wd);
    EXPECT_EQ(wd.error().errno_value(), ENOTDIR);
}

TEST_F(InotifyTest, DontFollowWatchesTheLink) {
    test::write_file(dir_ / "target", "");
    ASSERT_EQ(::symlink("target", (dir_ / "link").c_str()), 0);
    int wd_link = watch(dir_ / "link", M::Attrib | M::DontFollow);
    int wd_target = watch(dir_ / "target", M::Attrib);
    EXPECT_NE(wd_link, wd_target);  // different inodes
    // Followed, the link would share the target's watch descriptor.
    Inotify other = *Inotify::create();
    EXPECT_EQ(*other.add_watch(dir_ / "link", M::Attrib),
              *other.add_watch(dir_ / "target", M::Attrib));
}

TEST_F(InotifyTest, ExclUnlinkStopsEventsForUnlinkedChildren) {
    std::string f = dir_ / "f";
    int fd = ::open(f.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    watch(dir_.path(), M::Modify | M::Delete | M::ExclUnlink);
    ASSERT_EQ(::unlink(f.c_str()), 0);
    ASSERT_EQ(::write(fd, "x", 1), 1);  // no Modify: the child is unlinked
    ::close(fd);
    auto evs = drain();
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::Delete));
}

TEST_F(InotifyTest, OneShotFiresOnceThenIgnored) {
    int wd = watch(dir_.path(), M::Create | M::OneShot);
    test::write_file(dir_ / "a", "");
    test::write_file(dir_ / "b", "");
    auto evs = drain();
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].mask, InotifyMasks(M::Create));
    EXPECT_EQ(evs[0].name, "a");
    EXPECT_TRUE(evs[1].is_ignored());
    EXPECT_EQ(evs[1].wd, wd);
}

TEST_F(InotifyTest, ReadEventsUsesBufferedEventsFirst) {
    watch(dir_.path(), M::Create);
    for (int i = 0; i < 5; ++i)
        test::write_file(dir_ / std::to_string(i), "");
    auto first = inotify_->read_event();  // one read(2) buffers all five
    ASSERT_TRUE(first && first->has_value());
    EXPECT_EQ((*first)->name, "0");
    EXPECT_EQ(inotify_->buffered(), 4u);
    test::write_file(dir_ / "late", "");  // in the kernel, not the buffer
    auto rest = inotify_->read_events();
    ASSERT_TRUE(rest);
    ASSERT_EQ(rest->size(), 4u);  // the buffered ones only
    EXPECT_EQ((*rest)[3].name, "4");
    auto late = inotify_->read_events();
    ASSERT_TRUE(late);
    ASSERT_EQ(late->size(), 1u);
    EXPECT_EQ((*late)[0].name, "late");
}

TEST(Inotify, SmallestBufferLosesNothing) {
    // The buffer holds exactly one maximal event; names of mixed length make the kernel stop
    // at different points in the buffer on each read. Every event must still arrive, in order.
    test::TempDir dir;
    auto in = Inotify::create(InotifyFlag::NonBlock, 1);
    ASSERT_TRUE(in);
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create));
    std::vector<std::string> names;
    for (int i = 0; i < 300; ++i) {
        names.push_back(std::string(static_cast<std::size_t>(1 + (i * 37) % 200),
                                    'a' + static_cast<char>(i % 26)) +
                        std::to_string(i));
        test::write_file(dir / names.back(), "");
    }
    std::vector<std::string> got;
    int reads = 0;
    for (;;) {
        auto evs = in->read_events();
        ASSERT_TRUE(evs) << evs.error().what();
        if (evs->empty()) break;
        ++reads;
        for (auto& e : *evs)
            got.push_back(e.name);
    }
    EXPECT_EQ(got, names);
    EXPECT_GT(reads, 10);  // the small buffer forced many reads
}

TEST(Inotify, OneReadDrainsManyEvents) {
    test::TempDir dir;
    auto in = Inotify::create(InotifyFlag::NonBlock);
    ASSERT_TRUE(in);
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create));
    for (int i = 0; i < 100; ++i)
        test::write_file(dir / std::to_string(i), "");
    auto evs = in->read_events();
    ASSERT_TRUE(evs);
    EXPECT_EQ(evs->size(), 100u);
}

TEST(Inotify, BlockingReadWaitsForEvent) {
    test::TempDir dir;
    auto in = Inotify::create();
    ASSERT_TRUE(in);
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create));
    pid_t pid = ::fork();
    if (pid == 0) {
        ::usleep(50'000);
        test::write_file(dir / "late", "");
        ::_exit(0);
    }
    auto ev = in->read_event();  // blocks until the child writes
    ::waitpid(pid, nullptr, 0);
    ASSERT_TRUE(ev && ev->has_value());
    EXPECT_EQ((*ev)->name, "late");
}

// fs.inotify.max_queued_events (16384 when it cannot be read).
int max_queued_events() {
    int max_queued = 16384;
    if (FILE* f = std::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
        if (std::fscanf(f, "%d", &max_queued) != 1) max_queued = 16384;
        std::fclose(f);
    }
    return max_queued;
}

// More create and delete events in `dir` than the queue holds (two distinct ones a round).
void overfill(const test::TempDir& dir, int max_queued) {
    std::string f = dir / "f";
    for (int i = 0; i < max_queued / 2 + 10; ++i) {
        int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ::close(fd);
        ::unlink(f.c_str());
    }
}

TEST(Inotify, QueueOverflowIsReported) {
    int max_queued = max_queued_events();
    if (max_queued > 200000) GTEST_SKIP() << "max_queued_events too large to overflow quickly";
    test::TempDir dir;
    auto in = Inotify::create(InotifyFlag::NonBlock);
    ASSERT_TRUE(in);
    ASSERT_TRUE(in->add_watch(dir.path(), InotifyMask::Create | InotifyMask::Delete));
    overfill(dir, max_queued);
    bool overflow = false;
    std::size_t count = 0;
    for (;;) {
        auto evs = in->read_events();
        ASSERT_TRUE(evs);
        if (evs->empty()) break;
        for (auto& e : *evs) {
            ++count;
            if (e.is_overflow()) {
                overflow = true;
                EXPECT_EQ(e.wd, -1);
                EXPECT_EQ(e.watch_path, "");
            }
        }
    }
    EXPECT_TRUE(overflow);
    EXPECT_EQ(count, static_cast<std::size_t>(max_queued) + 1);
}

// A watch removed while the queue is full never gets its IN_IGNORED (the kernel drops it with
// the other events past the bound): once the overflow is read, the watch is forgotten.
TEST(Inotify, AWatchWhoseIgnoredWasDroppedIsForgottenAtTheOverflow) {
    int max_queued = max_queued_events();
    if (max_queued > 200000) GTEST_SKIP() << "max_queued_events too large to overflow quickly";
    test::TempDir dir;
    auto in = Inotify::create(InotifyFlag::NonBlock);
    ASSERT_TRUE(in);
    auto wd = in->add_watch(dir.path(), InotifyMask::Create | InotifyMask::Delete);
    ASSERT_TRUE(wd);
    overfill(dir, max_queued);
    ASSERT_TRUE(in->remove_watch(*wd));    // its IN_IGNORED finds the queue full
    EXPECT_NE(in->path_of(*wd), nullptr);  // (still awaited)
    bool ignored = false, overflow = false;
    for (;;) {
        auto evs = in->read_events();
        ASSERT_TRUE(evs);
        if (evs->empty()) break;
        for (auto& e : *evs) {
            ignored |= e.is_ignored();
            overflow |= e.is_overflow();
        }
    }
    EXPECT_TRUE(overflow);
    EXPECT_FALSE(ignored);
    EXPECT_EQ(in->path_of(*wd), nullptr);
    EXPECT_EQ(in->watch_count(), 0u);
}

TEST(Inotify, UnmountIsReported) {
    BUTTER_REQUIRE(test::have_mountns(), "MOUNTNS", "mount namespaces unavailable");
    test::TempDir dir;
    std::string path = dir.path();
    auto r = test::run_in_child([&] {
        if (::geteuid() != 0) CHILD_ASSERT(::unshare(CLONE_NEWUSER) == 0, "userns");
        CHILD_ASSERT(::unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
        CHILD_ASSERT(::mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) == 0, "private");
        CHILD_ASSERT(::mount("tmpfs", path.c_str(), "tmpfs", 0, nullptr) == 0, "mount tmpfs");
        auto in = Inotify::create(InotifyFlag::NonBlock);
        CHILD_OK(in);
        CHILD_OK(in->add_watch(path, kInotifyAllEvents));
        CHILD_ASSERT(::umount2(path.c_str(), 0) == 0, "umount");
        auto evs = in->read_events();
        CHILD_OK(evs);
        CHILD_ASSERT(evs->size() == 2, "events: " << evs->size());
        CHILD_ASSERT((*evs)[0].mask.has(InotifyMask::Unmount), (*evs)[0].to_string());
        CHILD_ASSERT((*evs)[1].is_ignored(), (*evs)[1].to_string());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Inotify, MaskToString) {
    EXPECT_EQ(to_string(InotifyMask::Create | InotifyMask::IsDir), "Create|IsDir");
    EXPECT_EQ(to_string(InotifyMasks::from_raw(IN_CREATE | 0x00001000u)), "Create|0x1000");
    EXPECT_EQ(to_string(InotifyMasks()), "0");
}

}  // namespace
}  // namespace butter
