// The changes tar (launcher/changes): the archive format both ways, apply against a real
// directory (hostile archives refused before anything changes), diff, and the unified diff.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

#include "../support/tmpdir.hpp"
#include "changes/changes.hpp"
#include "changes/tar.hpp"

namespace butter::launcher::changes {
namespace {

using test::read_file;
using test::TempDir;
using test::tree_of;
using test::write_file;
using Type = TarEntry::Type;

// An archive in memory, built entry by entry.
class Archive {
  public:
    Archive() : fd_(::memfd_create("tar", MFD_CLOEXEC)), w_(fd_.get()) {}
    Archive& add(Type t, const std::string& name, const std::string& content = "",
                 unsigned mode = 0644, const std::string& link = "") {
        TarEntry e;
        e.type = t;
        e.name = name;
        e.mode = mode;
        e.link = link;
        e.size = content.size();
        e.mtime = 1700000000;
        int c = -1;
        Fd src;
        if (t == Type::File) {
            src = Fd(::memfd_create("c", MFD_CLOEXEC));
            EXPECT_EQ(::write(src.get(), content.data(), content.size()),
                      static_cast<ssize_t>(content.size()));
            ::lseek(src.get(), 0, SEEK_SET);
            c = src.get();
        }
        EXPECT_TRUE(w_.add(e, c));
        return *this;
    }
    // The archive, from its start.
    int fd() {
        if (!done_) {
            EXPECT_TRUE(w_.finish());
        }
        done_ = true;
        ::lseek(fd_.get(), 0, SEEK_SET);
        return fd_.get();
    }
    std::string bytes() {
        int f = fd();
        std::string s(static_cast<std::size_t>(::lseek(f, 0, SEEK_END)), '\0');
        EXPECT_EQ(::pread(f, s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
        return s;
    }

  private:
    Fd fd_;
    TarWriter w_;
    bool done_ = false;
};

Fd memfd_of(const std::string& bytes) {
    Fd f(::memfd_create("raw", MFD_CLOEXEC));
    EXPECT_EQ(::write(f.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::lseek(f.get(), 0, SEEK_SET);
    return f;
}

Fd open_dir(const std::string& path) {
    return Fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

TEST(Tar, WriterAndReaderAgreeOnEveryEntry) {
    std::string long_name(300, 'n');
    Archive a;
    a.add(Type::Directory, "dir/", "", 0755)
        .add(Type::File, "dir/file", "content\n", 0640)
        .add(Type::File, "dir/" + long_name, std::string(1000, 'x'))
        .add(Type::Symlink, "dir/link", "", 0777, std::string(200, 'l'));
    TarReader r(a.fd());
    std::vector<TarEntry> got;
    for (;;) {
        auto e = r.next();
        ASSERT_TRUE(e) << e.error().what();
        if (!*e) break;
        if ((*e)->type == Type::File) {
            auto c = r.content_string(1 << 20);
            ASSERT_TRUE(c);
            (*e)->link = *c;  // (the content, for the check below)
        }
        got.push_back(**e);
    }
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].name, "dir/");
    EXPECT_EQ(got[0].type, Type::Directory);
    EXPECT_EQ(got[0].mode, 0755u);
    EXPECT_EQ(got[1].link, "content\n");
    EXPECT_EQ(got[1].mode, 0640u);
    EXPECT_EQ(got[1].mtime, 1700000000);
    EXPECT_EQ(got[2].name, "dir/" + long_name);  // through a pax header
    EXPECT_EQ(got[2].link, std::string(1000, 'x'));
    EXPECT_EQ(got[3].link, std::string(200, 'l'));
}

TEST(Tar, ReaderRefusesADamagedHeader) {
    Archive a;
    a.add(Type::File, "f", "x");
    std::string bytes = a.bytes();
    bytes[10] ^= 1;  // in the name: the checksum no longer holds
    Fd f = memfd_of(bytes);
    TarReader r(f.get());
    auto e = r.next();
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().what().find("checksum"), std::string::npos) << e.error().what();
}

TEST(Tar, ReaderRefusesAHugeExtendedHeader) {
    // A pax header claiming 2 GiB (a reader that believed it would allocate it).
    Archive a;
    a.add(Type::File, "f", "x");
    std::string bytes = a.bytes();
    std::string header = bytes.substr(0, 512);
    header[156] = 'x';
    std::snprintf(&header[124], 12, "%011o", 017777777777u);
    std::memset(&header[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : header)
        sum += c;
    std::snprintf(&header[148], 8, "%06o", sum);
    Fd f = memfd_of(header + std::string(1024, '\0'));
    TarReader r(f.get());
    auto e = r.next();
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().what().find("extended header"), std::string::npos) << e.error().what();
}

class Apply : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = base_ / "dir";
        ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
        ASSERT_EQ(::mkdir((dir_ + "/sub").c_str(), 0755), 0);
        write_file(dir_ + "/keep", "keep\n");
        write_file(dir_ + "/sub/old", "old\n");
        write_file(dir_ + "/change", "before\n");
        outside_ = base_ / "outside";
        ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
        write_file(outside_ + "/victim", "victim\n");
    }
    Result<Counts> apply(Archive& a, bool dry_run = false) {
        Fd d = open_dir(dir_);
        ApplyOptions o;
        o.dry_run = dry_run;
        o.on_change = [this](Kind k, const std::string& p) {
            said_ += std::string(kind_name(k)) + " " + p + "\n";
        };
        return apply_changes(a.fd(), d, o);
    }
    // A refused archive: an error naming `why`, and neither the directory nor the outside
    // changed (no staging directory left behind either).
    void expect_refused(Archive& a, const std::string& why) {
        auto before = tree_of(dir_);
        auto r = apply(a);
        ASSERT_FALSE(r) << "applied";
        EXPECT_NE(r.error().what().find(why), std::string::npos) << r.error().what();
        EXPECT_EQ(tree_of(dir_), before) << "the directory changed";
        EXPECT_EQ(read_file(outside_ + "/victim"), "victim\n");
        EXPECT_EQ(tree_of(outside_).size(), 1u) << "something was written outside";
    }
    TempDir base_;
    std::string dir_, outside_, said_;
};

TEST_F(Apply, AddsChangesAndDeletesAsTheLayerSays) {
    Archive a;
    a.add(Type::File, "change", "after\n", 0755)
        .add(Type::Directory, "new/", "", 0750)
        .add(Type::File, "new/file", "n\n")
        .add(Type::Symlink, "new/link", "", 0777, "../keep")
        .add(Type::File, ".wh.keep")
        .add(Type::Directory, "sub/", "", 0755)
        .add(Type::File, "sub/.wh..wh..opq")
        .add(Type::File, "sub/fresh", "f\n");
    auto r = apply(a);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->added, 4u);  // new/, new/file, new/link, sub/fresh
    EXPECT_EQ(r->modified, 1u);
    EXPECT_EQ(r->deleted, 2u);  // keep, and sub/old with sub's opaque mark
    auto t = tree_of(dir_);
    std::map<std::string, std::string> want{
        {"change", "file 0755 after\n"}, {"new", "dir 0750 "}, {"new/file", "file 0644 n\n"},
        {"new/link", "link ../keep"},    {"sub", "dir 0755 "}, {"sub/fresh", "file 0644 f\n"}};
    EXPECT_EQ(t, want);
}

TEST_F(Apply, DryRunSaysWhatWouldChangeAndChangesNothing) {
    Archive a;
    a.add(Type::File, "change", "after\n")
        .add(Type::File, "added", "a\n")
        .add(Type::File, "sub/.wh.old");
    auto before = tree_of(dir_);
    auto r = apply(a, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(said_, "modified change\nadded added\ndeleted sub/old\n");
    EXPECT_EQ(tree_of(dir_), before);
}

TEST_F(Apply, RefusesANameThatLeavesTheDirectory) {
    Archive a;
    a.add(Type::File, "ok", "fine\n").add(Type::File, "../outside/victim", "owned\n");
    expect_refused(a, "'..'");
}

TEST_F(Apply, RefusesAnAbsoluteName) {
    Archive a;
    a.add(Type::File, "ok", "fine\n").add(Type::File, outside_ + "/victim", "owned\n");
    expect_refused(a, "absolute");
}

TEST_F(Apply, RefusesToWriteThroughASymlinkOfTheArchive) {
    Archive a;
    a.add(Type::Symlink, "esc", "", 0777, outside_).add(Type::File, "esc/victim", "owned\n");
    expect_refused(a, "symlink in the archive");
}

TEST_F(Apply, RefusesToWriteThroughASymlinkInTheDirectory) {
    ASSERT_EQ(::symlink(outside_.c_str(), (dir_ + "/planted").c_str()), 0);
    Archive a;
    a.add(Type::File, "planted/victim", "owned\n");
    expect_refused(a, "symlink in the directory");
}

TEST_F(Apply, RefusesDeviceNodesFifosHardLinksAndSetIdFiles) {
    {
        Archive a;
        a.add(Type::CharDevice, "null");
        expect_refused(a, "device node");
    }
    {
        Archive a;
        a.add(Type::BlockDevice, "disk");
        expect_refused(a, "device node");
    }
    {
        Archive a;
        a.add(Type::Fifo, "fifo");
        expect_refused(a, "FIFO");
    }
    {
        Archive a;
        a.add(Type::File, "x", "x").add(Type::HardLink, "hl", "", 0644, "../outside/victim");
        expect_refused(a, "hard link");
    }
    {
        Archive a;
        a.add(Type::File, "ok", "fine\n").add(Type::File, "suid", "#!/bin/sh\n", 04755);
        expect_refused(a, "set-user-ID");
    }
    {
        Archive a;
        a.add(Type::File, "sgid", "x", 02755);
        expect_refused(a, "set-group-ID");
    }
    {
        // A set-group-ID directory (a shared project directory) only hands its group on.
        Archive a;
        a.add(Type::Directory, "shared/", "", 02775);
        auto r = apply(a);
        ASSERT_TRUE(r) << r.error().what();
        struct stat st {};
        ASSERT_EQ(::stat((dir_ + "/shared").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 02775u);
    }
}

TEST_F(Apply, RefusesAnArchiveCutShort) {
    Archive a;
    a.add(Type::File, "big", std::string(4000, 'b'));
    std::string bytes = a.bytes().substr(0, 2048);
    Fd f = memfd_of(bytes);
    auto before = tree_of(dir_);
    Fd d = open_dir(dir_);
    auto r = apply_changes(f.get(), d, {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("ends in the middle"), std::string::npos) << r.error().what();
    EXPECT_EQ(tree_of(dir_), before);
}

TEST_F(Apply, DiffShowsTextChangesAsAUnifiedDiff) {
    Archive a;
    a.add(Type::File, "change", "after\n")
        .add(Type::File, "sub/.wh.old")
        .add(Type::File, "bin", std::string("\0x", 2));
    Fd d = open_dir(dir_);
    std::string out;
    auto r = diff_changes(a.fd(), d, [&](const std::string& s) { out += s; });
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(out,
              "--- a/change\n+++ b/change\n@@ -1,1 +1,1 @@\n-before\n+after\n"
              "--- a/sub/old\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-old\n"
              "Binary files /dev/null and b/bin differ\n");
    EXPECT_EQ(r->modified, 1u);
    EXPECT_EQ(r->deleted, 1u);
    EXPECT_EQ(r->added, 1u);
}

TEST_F(Apply, DiffOfWhatIsAlreadyThereFindsNothing) {
    Archive a;
    a.add(Type::File, "keep", "keep\n").add(Type::Directory, "sub/", "", 0755);
    Fd d = open_dir(dir_);
    std::string out;
    auto r = diff_changes(a.fd(), d, [&](const std::string& s) { out += s; });
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(out, "");
    EXPECT_EQ(r->added + r->modified + r->deleted, 0u);
}

TEST_F(Apply, AnOpaqueDirectoryLosesWhatItHeldInTheDryRunToo) {
    Archive a;
    a.add(Type::Directory, "sub/", "", 0755)
        .add(Type::File, "sub/.wh..wh..opq")
        .add(Type::File, "sub/fresh", "f\n");
    auto r = apply(a, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(said_, "deleted sub/old\nadded sub/fresh\n");
}

TEST_F(Apply, RefusesANameTooLongForTheFileSystemBeforeAnyChange) {
    Archive a;
    a.add(Type::File, "change", "after\n").add(Type::File, "sub/" + std::string(300, 'n'), "x");
    expect_refused(a, "255");
}

TEST(UnifiedDiff, GivesUpOnAHugeDifferenceWithoutExhaustingMemory) {
    std::string a, b;
    for (int i = 0; i < 200000; ++i) {
        a += "a" + std::to_string(i) + "\n";
        b += "b" + std::to_string(i) + "\n";
    }
    EXPECT_FALSE(unified_diff(a, b, "a", "b"));
}

// A directory's mode is set through a descriptor of the directory: a name that the
// directory's owner swaps for a symlink meanwhile is never followed (fchmodat would).
TEST_F(Apply, ADirectoryModeNeverGoesThroughASwappedSymlink) {
    std::string victim = outside_ + "/victim";
    ASSERT_EQ(::chmod(victim.c_str(), 0644), 0);
    ASSERT_EQ(::mkdir((dir_ + "/d").c_str(), 0755), 0);
    ASSERT_EQ(::symlink(victim.c_str(), (dir_ + "/s").c_str()), 0);
    std::atomic<bool> stop{false};
    std::thread racer([&] {
        while (!stop)
            (void)::renameat2(AT_FDCWD, (dir_ + "/d").c_str(), AT_FDCWD, (dir_ + "/s").c_str(),
                              RENAME_EXCHANGE);
    });
    for (int i = 0; i < 300; ++i) {
        Archive a;
        a.add(Type::Directory, "d/", "", 0777);
        Fd d = open_dir(dir_);
        (void)apply_changes(a.fd(), d, {});
    }
    stop = true;
    racer.join();
    struct stat st {};
    ASSERT_EQ(::stat(victim.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u) << "a swapped symlink was followed";
}

TEST_F(Apply, ATreeTooDeepToRemoveIsRefusedBeforeAnyChange) {
    std::string p = dir_ + "/deep";
    for (int i = 0; i < 300; ++i) {
        ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
        p += "/d";
    }
    Archive a;
    a.add(Type::File, "change", "after\n").add(Type::File, ".wh.deep");
    expect_refused(a, "deeper than 256 levels");
}

TEST_F(Apply, AnInterruptedApplyChangesNothingAndLeavesNoStaging) {
    Archive a;
    a.add(Type::File, "change", "after\n").add(Type::File, "added", "a\n");
    std::atomic<bool> stop{true};
    auto before = tree_of(dir_);
    Fd d = open_dir(dir_);
    ApplyOptions o;
    o.cancel = &stop;
    auto r = apply_changes(a.fd(), d, o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("interrupted"), std::string::npos) << r.error().what();
    EXPECT_EQ(tree_of(dir_), before);
}

TEST(QuotePath, ANameIsAlwaysOneLine) {
    EXPECT_EQ(quote_path("plain/name.txt"), "plain/name.txt");
    EXPECT_EQ(quote_path("x\ndeleted important"), "\"x\\ndeleted important\"");
    EXPECT_EQ(quote_path("a\"b\\c\x01"), "\"a\\\"b\\\\c\\001\"");
    // Every byte outside printable ASCII, as git quotes: NEL, LS, RLO, a lone CSI byte.
    EXPECT_EQ(quote_path("a\xc2\x85"
                         "b"),
              "\"a\\302\\205b\"");
    EXPECT_EQ(quote_path("\xe2\x80\xa8\xe2\x80\xae\x9b"),
              "\"\\342\\200\\250\\342\\200\\256\\233\"");
}

TEST(UnifiedDiff, HunksHaveThreeLinesOfContext) {
    std::string a, b;
    for (int i = 1; i <= 20; ++i) {
        a += std::to_string(i) + "\n";
        b += (i == 10 ? std::string("ten") : std::to_string(i)) + "\n";
    }
    auto d = unified_diff(a, b, "a/f", "b/f");
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, "--- a/f\n+++ b/f\n@@ -7,7 +7,7 @@\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n");
    EXPECT_EQ(unified_diff(a, a, "a", "b"), std::string());
    auto nl = unified_diff("x", "y", "a", "b");
    ASSERT_TRUE(nl);
    EXPECT_NE(nl->find("\\ No newline at end of file"), std::string::npos);
}

}  // namespace
}  // namespace butter::launcher::changes
