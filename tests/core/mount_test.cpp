#include "butter/mount.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "butter/namespace.hpp"

namespace butter {
namespace {

constexpr long kTmpfsMagic = 0x01021994;
constexpr long kProcMagic = 0x9fa0;

// Runs `body` in a child inside a private mount namespace, as root and (separately) as nobody.
void in_mount_ns(bool as_nobody, const std::function<int()>& body) {
    auto wrapped = [&] {
        std::string e = test::private_mount_namespace();
        CHILD_ASSERT(e.empty(), e);
        return body();
    };
    auto r = as_nobody ? test::run_as_nobody(wrapped) : test::run_in_child(wrapped);
    EXPECT_EQ(r.code(), 0) << r.output;
}

class MountTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (GetParam()) {
            BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
        } else {
            BUTTER_REQUIRE_ROOT();
        }
        // The scratch dir must be usable by nobody too.
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    bool nobody() const { return GetParam(); }
    test::TempDir dir_;
};

unsigned long vfs_flags(const std::string& path) {
    struct statvfs v {};
    return ::statvfs(path.c_str(), &v) == 0 ? v.f_flag : ~0UL;
}

long fs_magic(const std::string& path) {
    struct statfs s {};
    return ::statfs(path.c_str(), &s) == 0 ? static_cast<long>(s.f_type) : -1;
}

TEST_P(MountTest, TmpfsBindAndReadOnlyRemount) {
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        std::string t = d + "/t", b = d + "/b";
        CHILD_ASSERT(::mkdir(t.c_str(), 0755) == 0 && ::mkdir(b.c_str(), 0755) == 0, "mkdir");
        // (Its device before: /tmp may be a tmpfs itself, so "not tmpfs" cannot tell.)
        struct stat before {};
        CHILD_ASSERT(::stat(t.c_str(), &before) == 0, "stat");
        CHILD_OK(
            mount("tmpfs", t.c_str(), "tmpfs", MountFlag::NoSuid | MountFlag::NoDev, "size=1m"));
        CHILD_ASSERT(fs_magic(t) == kTmpfsMagic, "not tmpfs");
        test::write_file(t + "/f", "data");
        CHILD_OK(bind_mount(t.c_str(), b.c_str()));
        CHILD_ASSERT(test::read_file(b + "/f") == "data", "bind does not show the file");
        CHILD_OK(bind_remount(b.c_str(), MountFlag::ReadOnly | MountFlag::NoSuid |
                                             MountFlag::NoDev | MountFlag::NoExec));
        unsigned long f = vfs_flags(b);
        CHILD_ASSERT((f & ST_RDONLY) && (f & ST_NOSUID) && (f & ST_NOEXEC) && (f & ST_NODEV),
                     "flags " << f);
        int fd = ::open((b + "/g").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        CHILD_ASSERT(fd < 0 && errno == EROFS, "wrote through a read-only bind");
        CHILD_ASSERT(!(vfs_flags(t) & ST_RDONLY), "original became read-only");
        CHILD_OK(umount2(b.c_str(), UmountFlag::Detach));
        CHILD_OK(umount2(t.c_str()));
        struct stat after {};
        CHILD_ASSERT(::stat(t.c_str(), &after) == 0 && after.st_dev == before.st_dev,
                     "still mounted");
        auto gone = umount2(t.c_str());
        CHILD_ASSERT(!gone && gone.error().errno_value() == EINVAL, "umount of a non-mount");
        return 0;
    });
}

TEST_P(MountTest, MountErrorNamesTarget) {
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        auto r = mount("tmpfs", (d + "/missing").c_str(), "tmpfs", {});
        CHILD_ASSERT(!r && r.error().errno_value() == ENOENT, "mounted on a missing dir");
        CHILD_ASSERT(r.error().what() == "mount(\"" + d + "/missing\"): No such file or directory",
                     r.error().what());
        return 0;
    });
}

// The propagation type of the mount at `path`, from /proc/self/mountinfo's optional fields.
std::string propagation_of(const std::string& path) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line, found;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string id, parent, devs, root, mp, opts, field;
        ss >> id >> parent >> devs >> root >> mp >> opts;
        if (mp != path) continue;
        found = "private";
        while (ss >> field && field != "-") {
            if (field.starts_with("shared:")) found = "shared";
            if (field.starts_with("master:")) found = "slave";
            if (field == "unbindable") found = "unbindable";
        }
    }
    return found;
}

TEST_P(MountTest, Propagation) {
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        std::string t = d + "/t";
        CHILD_ASSERT(::mkdir(t.c_str(), 0755) == 0, "mkdir");
        CHILD_OK(mount("tmpfs", t.c_str(), "tmpfs", {}));
        CHILD_OK(set_propagation(t.c_str(), Propagation::Shared, false));
        CHILD_ASSERT(propagation_of(t) == "shared", propagation_of(t));
        CHILD_OK(set_propagation(t.c_str(), Propagation::Private));
        CHILD_ASSERT(propagation_of(t) == "private", propagation_of(t));
        CHILD_OK(set_propagation(t.c_str(), Propagation::Unbindable));
        CHILD_ASSERT(propagation_of(t) == "unbindable", propagation_of(t));
        return 0;
    });
}

TEST_P(MountTest, PivotRootIntoNewTmpfs) {
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        std::string root = d + "/root";
        CHILD_ASSERT(::mkdir(root.c_str(), 0755) == 0, "mkdir");
        // Not a mount point yet: refused (EINVAL, or EBUSY when the caller is the real root).
        auto plain = pivot_root(root.c_str(), root.c_str());
        CHILD_ASSERT(!plain, "pivot_root onto a plain directory succeeded");
        CHILD_OK(mount("tmpfs", root.c_str(), "tmpfs", {}));
        // put_old outside new_root (on a mount of its own, so not EBUSY): EINVAL, with the hint.
        std::string other = d + "/other";
        CHILD_ASSERT(::mkdir(other.c_str(), 0755) == 0, "mkdir other");
        CHILD_OK(mount("tmpfs", other.c_str(), "tmpfs", {}));
        auto bad = pivot_root(root.c_str(), other.c_str());
        CHILD_ASSERT(!bad && bad.error().errno_value() == EINVAL,
                     "put_old outside new_root: " << (bad ? "ok" : bad.error().what()));
        CHILD_ASSERT(!bad.error().hint().empty(), "no hint");
        CHILD_ASSERT(::mkdir((root + "/marker").c_str(), 0755) == 0, "mkdir marker");
        CHILD_ASSERT(::chdir(root.c_str()) == 0, "chdir");
        CHILD_OK(pivot_root(".", "."));
        CHILD_OK(umount2(".", UmountFlag::Detach));
        CHILD_ASSERT(::chdir("/") == 0, "chdir /");
        struct stat st {};
        CHILD_ASSERT(::stat("/marker", &st) == 0, "new root lacks the marker");
        CHILD_ASSERT(::stat("/usr", &st) < 0 && errno == ENOENT, "old root still visible");
        CHILD_ASSERT(fs_magic("/") == kTmpfsMagic, "root is not the tmpfs");
        return 0;
    });
}

TEST_P(MountTest, NewMountApiTmpfsAndRecursiveReadOnly) {
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        std::string t = d + "/t", sub = d + "/t/sub", b = d + "/b";
        CHILD_ASSERT(::mkdir(t.c_str(), 0755) == 0 && ::mkdir(b.c_str(), 0755) == 0, "mkdir");
        auto fs = FsContext::open("tmpfs");
        CHILD_OK(fs);
        CHILD_OK(fs->set("size", "1m"));
        CHILD_OK(fs->set("mode", "0755"));
        CHILD_OK(fs->create());
        auto mnt = fs->mount(MountAttr::NoSuid | MountAttr::NoDev);
        CHILD_OK(mnt);
        CHILD_OK(move_mount(*mnt, "", AT_FDCWD, t.c_str()));
        CHILD_ASSERT(fs_magic(t) == kTmpfsMagic, "fsmount tmpfs missing");
        CHILD_ASSERT(vfs_flags(t) & ST_NOSUID, "nosuid not applied");
        CHILD_ASSERT(::mkdir(sub.c_str(), 0755) == 0, "mkdir sub");
        CHILD_OK(mount("tmpfs", sub.c_str(), "tmpfs", {}));
        // A recursive clone of t (with its submount) attached at b, then made read-only
        // recursively: both levels are read-only, the originals are not.
        auto tree = open_tree(AT_FDCWD, t.c_str(), OpenTreeFlag::Clone | OpenTreeFlag::Recursive);
        CHILD_OK(tree);
        MountSetattr ro;
        ro.set = MountAttr::ReadOnly;
        CHILD_OK(mount_setattr(*tree, "", true, ro));
        CHILD_OK(move_mount(*tree, "", AT_FDCWD, b.c_str()));
        CHILD_ASSERT(vfs_flags(b) & ST_RDONLY, "b not ro");
        CHILD_ASSERT(vfs_flags(b + "/sub") & ST_RDONLY, "b/sub not ro");
        CHILD_ASSERT(!(vfs_flags(sub) & ST_RDONLY), "original sub became ro");
        return 0;
    });
}

TEST_P(MountTest, FsconfigErrorCarriesKernelMessage) {
    in_mount_ns(nobody(), [] {
        auto fs = FsContext::open("tmpfs");
        CHILD_OK(fs);
        auto bad = fs->set("nosuchoption", "1");
        CHILD_ASSERT(!bad && bad.error().errno_value() == EINVAL, "unknown option accepted");
        CHILD_ASSERT(bad.error().hint().find("nosuchoption") != std::string::npos,
                     bad.error().what());
        auto nofs = FsContext::open("nosuchfs");
        CHILD_ASSERT(!nofs && nofs.error().errno_value() == ENODEV, "unknown fs type");
        return 0;
    });
}

TEST(Mount, FsmountProcAsRoot) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    std::string d = dir.path();
    in_mount_ns(false, [d] {
        auto fs = FsContext::open("proc");
        CHILD_OK(fs);
        CHILD_OK(fs->set("hidepid", "invisible"));
        CHILD_OK(fs->create());
        auto mnt = fs->mount(MountAttr::NoSuid | MountAttr::NoExec | MountAttr::NoDev);
        CHILD_OK(mnt);
        CHILD_OK(move_mount(*mnt, "", AT_FDCWD, d.c_str()));
        CHILD_ASSERT(fs_magic(d) == kProcMagic, "not proc");
        struct stat st {};
        CHILD_ASSERT(::stat((d + "/self").c_str(), &st) == 0, "no /proc/self");
        return 0;
    });
}

TEST_P(MountTest, MakeDirsAndFilesInRoot) {
    std::string d = dir_.path();
    auto body = [d] {
        auto root = open(d.c_str(), O_PATH | O_DIRECTORY);
        CHILD_OK(root);
        auto deep = make_dirs_in_root(*root, "/a/b/c");
        CHILD_OK(deep);
        struct stat st {};
        CHILD_ASSERT(::stat((d + "/a/b/c").c_str(), &st) == 0 && S_ISDIR(st.st_mode), "dirs");
        CHILD_OK(make_dirs_in_root(*root, "a/b/c"));  // idempotent
        auto file = make_file_in_root(*root, "/x/y/file");
        CHILD_OK(file);
        CHILD_ASSERT(::stat((d + "/x/y/file").c_str(), &st) == 0 && S_ISREG(st.st_mode), "file");
        auto dots = make_dirs_in_root(*root, "/a/../../escape");
        CHILD_ASSERT(!dots && dots.error().errno_value() == EINVAL, "'..' accepted");
        return 0;
    };
    auto r = nobody() ? test::run_as_nobody(body) : test::run_in_child(body);
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST_P(MountTest, SymlinkedTargetCannotRedirectAMountToTheHost) {
    // The sandbox root holds "etc" as a symlink to a host directory (an attacker planted it, or
    // a rootfs image ships it). Binding onto "/etc/passwd-dir" inside the root must not follow
    // the link: the host directory stays untouched and the bind fails with ELOOP.
    std::string d = dir_.path();
    in_mount_ns(nobody(), [d] {
        std::string root = d + "/root", host = d + "/host", src = d + "/src";
        for (const auto& p : {root, host, src})
            CHILD_ASSERT(::mkdir(p.c_str(), 0755) == 0, p);
        test::write_file(src + "/payload", "evil");
        CHILD_ASSERT(::symlink(host.c_str(), (root + "/etc").c_str()) == 0, "symlink");
        CHILD_ASSERT(::symlink(host.c_str(), (root + "/leaf").c_str()) == 0, "symlink leaf");
        auto rootfd = open(root.c_str(), O_PATH | O_DIRECTORY);
        CHILD_OK(rootfd);
        auto through = bind_into_root(src.c_str(), *rootfd, "/etc/sub");
        CHILD_ASSERT(!through && through.error().errno_value() == ELOOP,
                     "bind through a symlinked dir: " << (through ? "ok" : through.error().what()));
        auto onto = bind_into_root(src.c_str(), *rootfd, "/leaf");
        CHILD_ASSERT(!onto && onto.error().errno_value() == ELOOP, "bind onto a symlink");
        struct stat st {};
        CHILD_ASSERT(::stat((host + "/sub").c_str(), &st) < 0, "created a dir on the host");
        CHILD_ASSERT(::stat((host + "/payload").c_str(), &st) < 0, "host dir was mounted over");
        // Absolute symlinks resolve inside the root with open_in_root: never to the host.
        CHILD_ASSERT(::symlink("/inner", (root + "/abs").c_str()) == 0, "symlink abs");
        CHILD_ASSERT(::mkdir((root + "/inner").c_str(), 0755) == 0, "mkdir inner");
        test::write_file(root + "/inner/ok", "");
        auto inside = open_in_root(*rootfd, "/abs/ok", O_RDONLY);
        CHILD_OK(inside);
        auto dotdot = open_in_root(*rootfd, "/../../../../../etc/hostname", O_RDONLY);
        CHILD_ASSERT(!dotdot, "escaped with ..");
        // A plain bind works and lands inside the root.
        CHILD_OK(bind_into_root(src.c_str(), *rootfd, "/mnt/data"));
        CHILD_ASSERT(test::read_file(root + "/mnt/data/payload") == "evil", "bind missing");
        return 0;
    });
}

TEST(Mount, IdmappedBindShowsMappedOwner) {
    BUTTER_REQUIRE_ROOT();
    test::TempDir dir;
    std::string d = dir.path();
    test::write_file(d + "/owned-by-root", "");
    ASSERT_EQ(::mkdir((d + "/view").c_str(), 0755), 0);
    in_mount_ns(false, [d] {
        // A user namespace to take the mapping from: a child that waits until we have its fd.
        int ready[2];
        CHILD_ASSERT(::pipe(ready) == 0, "pipe");
        pid_t holder = ::fork();
        if (holder == 0) {
            if (::unshare(CLONE_NEWUSER) < 0) ::_exit(1);
            (void)::write(ready[1], "x", 1);
            ::pause();  // until the parent kills it
            ::_exit(0);
        }
        char c;
        CHILD_ASSERT(::read(ready[0], &c, 1) == 1, "holder");
        IdMapping map{0, 100000, 65536};
        CHILD_OK(write_uid_map(holder, std::span(&map, 1)));
        CHILD_OK(write_gid_map(holder, std::span(&map, 1)));
        auto userns = open_namespace(holder, Namespace::User);
        CHILD_OK(userns);
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);
        auto tree = open_tree(AT_FDCWD, d.c_str(), OpenTreeFlag::Clone);
        CHILD_OK(tree);
        MountSetattr attr;
        attr.set = MountAttr::IdMap;
        attr.userns_fd = userns->get();
        CHILD_OK(mount_setattr(*tree, "", false, attr));
        CHILD_OK(move_mount(*tree, "", AT_FDCWD, (d + "/view").c_str()));
        struct stat st {};
        CHILD_ASSERT(::stat((d + "/view/owned-by-root").c_str(), &st) == 0, "stat");
        CHILD_ASSERT(st.st_uid == 100000 && st.st_gid == 100000, "uid " << st.st_uid);
        return 0;
    });
}

TEST(MountFlags, ToString) {
    EXPECT_EQ(to_string(MountFlag::Bind | MountFlag::Rec | MountFlag::ReadOnly), "ro|bind|rec");
    EXPECT_EQ(to_string(MountAttr::ReadOnly | MountAttr::IdMap), "ro|idmap");
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, MountTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

}  // namespace
}  // namespace butter
