#include "butter/mount.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <string_view>

#include "sys.hpp"

namespace butter {

namespace {

constexpr std::array<FlagName<MountFlag>, 22> kMountNames{{
    {MountFlag::ReadOnly, "ro"},
    {MountFlag::NoSuid, "nosuid"},
    {MountFlag::NoDev, "nodev"},
    {MountFlag::NoExec, "noexec"},
    {MountFlag::Synchronous, "sync"},
    {MountFlag::Remount, "remount"},
    {MountFlag::MandLock, "mand"},
    {MountFlag::DirSync, "dirsync"},
    {MountFlag::NoSymFollow, "nosymfollow"},
    {MountFlag::NoAtime, "noatime"},
    {MountFlag::NoDirAtime, "nodiratime"},
    {MountFlag::Bind, "bind"},
    {MountFlag::Move, "move"},
    {MountFlag::Rec, "rec"},
    {MountFlag::Silent, "silent"},
    {MountFlag::Unbindable, "unbindable"},
    {MountFlag::Private, "private"},
    {MountFlag::Slave, "slave"},
    {MountFlag::Shared, "shared"},
    {MountFlag::RelAtime, "relatime"},
    {MountFlag::StrictAtime, "strictatime"},
    {MountFlag::LazyTime, "lazytime"},
}};
constexpr std::array<FlagName<UmountFlag>, 4> kUmountNames{{
    {UmountFlag::Force, "Force"},
    {UmountFlag::Detach, "Detach"},
    {UmountFlag::Expire, "Expire"},
    {UmountFlag::NoFollow, "NoFollow"},
}};
constexpr std::array<FlagName<OpenTreeFlag>, 4> kOpenTreeNames{{
    {OpenTreeFlag::Clone, "Clone"},
    {OpenTreeFlag::Recursive, "Recursive"},
    {OpenTreeFlag::NoFollow, "NoFollow"},
    {OpenTreeFlag::EmptyPath, "EmptyPath"},
}};
constexpr std::array<FlagName<MountAttr>, 9> kAttrNames{{
    {MountAttr::ReadOnly, "ro"},
    {MountAttr::NoSuid, "nosuid"},
    {MountAttr::NoDev, "nodev"},
    {MountAttr::NoExec, "noexec"},
    {MountAttr::NoAtime, "noatime"},
    {MountAttr::StrictAtime, "strictatime"},
    {MountAttr::NoDirAtime, "nodiratime"},
    {MountAttr::IdMap, "idmap"},
    {MountAttr::NoSymFollow, "nosymfollow"},
}};

std::string str(const char* s) {
    return s ? s : "";
}

long openat2(int dirfd, const char* path, struct open_how* how) {
    return sys::ret(::syscall(SYS_openat2, dirfd, path, how, sizeof *how));
}

// Components of a relative-or-absolute path, skipping empty and "." parts.
template <typename F>
Result<void> for_each_component(std::string_view path, F&& fn) {
    std::size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/')
            ++i;
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view part = path.substr(i, j - i);
        i = j;
        if (part.empty() || part == ".") continue;
        if (part == "..") return fail(Error("make_dirs_in_root", EINVAL, std::string(path)));
        BUTTER_TRY(fn(std::string(part), i >= path.size()));
    }
    return {};
}

constexpr std::uint64_t kNoFollowResolve =
    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;

// The next directory component below `dir` as an O_PATH fd, creating it if missing. No
// symlink is followed: a symlink in its place is ELOOP.
Result<Fd> step_dir(int dir, const std::string& name, unsigned mode) {
    struct open_how how {};
    // No O_NOFOLLOW: with O_PATH it would open a trailing symlink itself; RESOLVE_NO_SYMLINKS
    // instead refuses it with ELOOP.
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = kNoFollowResolve;
    // mkdirat first: the callers mostly build a new tree, where this is one call less than
    // looking first. It neither follows nor replaces a symlink at the name (EEXIST), which the
    // open then refuses.
    if (::mkdirat(dir, name.c_str(), mode) < 0 && errno != EEXIST)
        return fail_errno("mkdirat", name);
    long fd = openat2(dir, name.c_str(), &how);
    if (fd < 0) return fail(Error("openat2", static_cast<int>(-fd), name));
    return Fd(static_cast<int>(fd));
}

Result<Fd> walk_dirs(BorrowedFd root, std::string_view path, unsigned mode) {
    Fd cur;  // none yet: the first step starts at `root` itself
    BUTTER_TRY(for_each_component(path, [&](const std::string& part, bool) -> Result<void> {
        BUTTER_ASSIGN_OR_RETURN(cur, step_dir(cur.valid() ? cur.get() : root.get(), part, mode));
        return {};
    }));
    if (!cur.valid()) return open_in_root(root, ".", O_PATH | O_DIRECTORY, true);
    return cur;
}

}  // namespace

std::span<const FlagName<MountFlag>> flag_names(MountFlag) {
    return kMountNames;
}
std::span<const FlagName<UmountFlag>> flag_names(UmountFlag) {
    return kUmountNames;
}
std::span<const FlagName<OpenTreeFlag>> flag_names(OpenTreeFlag) {
    return kOpenTreeNames;
}
std::span<const FlagName<MountAttr>> flag_names(MountAttr) {
    return kAttrNames;
}

Result<void> mount(const char* source, const char* target, const char* fstype, MountFlags flags,
                   const char* data) {
    if (::mount(source, target, fstype, flags.raw(), data) < 0)
        return fail_errno("mount", str(target));
    return {};
}

Result<void> bind_mount(const char* source, const char* target, bool recursive) {
    MountFlags f = MountFlag::Bind;
    if (recursive) f |= MountFlag::Rec;
    if (::mount(source, target, nullptr, f.raw(), nullptr) < 0)
        return fail_errno("mount", str(source) + " -> " + str(target));
    return {};
}

Result<void> bind_remount(const char* target, MountFlags flags) {
    MountFlags f = flags | MountFlag::Remount | MountFlag::Bind;
    // Source and type are ignored here; "none" rather than NULL keeps checkers such as
    // valgrind, which treat a NULL type as a bad pointer, quiet.
    if (::mount("none", target, "none", f.raw(), nullptr) < 0)
        return fail_errno("mount", std::string("remount ") + to_string(flags) + " " + str(target));
    return {};
}

Result<void> set_propagation(const char* target, Propagation p, bool recursive) {
    unsigned long f = static_cast<unsigned long>(p) | (recursive ? MS_REC : 0);
    if (::mount("none", target, "none", f, nullptr) < 0) return fail_errno("mount", str(target));
    return {};
}

Result<void> umount2(const char* target, Flags<UmountFlag> flags) {
    if (::umount2(target, flags.raw()) < 0) return fail_errno("umount2", str(target));
    return {};
}

Result<void> pivot_root(const char* new_root, const char* put_old) {
    int r = sys::pivot_root(new_root, put_old);
    if (r == 0) return {};
    Error e("pivot_root", -r, str(new_root));
    if (-r == EINVAL)
        return fail(std::move(e).with_hint(
            "new_root must be a mount point, not the current root, with a parent mount that is "
            "not shared (make / MS_REC|MS_SLAVE first), and put_old must be at or under it"));
    return fail(std::move(e));
}

Result<Fd> open_tree(BorrowedFd dirfd, const char* path, Flags<OpenTreeFlag> flags) {
    int fd = ::open_tree(dirfd.get(), path, flags.raw() | OPEN_TREE_CLOEXEC);
    if (fd < 0) return fail_errno("open_tree", str(path));
    return Fd(fd);
}

Result<void> move_mount(BorrowedFd from_dirfd, const char* from_path, BorrowedFd to_dirfd,
                        const char* to_path) {
    unsigned flags = 0;
    if (!from_path || !*from_path) flags |= MOVE_MOUNT_F_EMPTY_PATH;
    if (!to_path || !*to_path) flags |= MOVE_MOUNT_T_EMPTY_PATH;
    if (::move_mount(from_dirfd.get(), from_path ? from_path : "", to_dirfd.get(),
                     to_path ? to_path : "", flags) < 0)
        return fail_errno("move_mount", str(to_path));
    return {};
}

Result<void> mount_setattr(BorrowedFd dirfd, const char* path, bool recursive,
                           const MountSetattr& attr) {
    struct mount_attr a {};
    a.attr_set = attr.set.raw();
    a.attr_clr = attr.clear.raw();
    a.propagation = attr.propagation;
    if (attr.userns_fd >= 0) a.userns_fd = static_cast<std::uint64_t>(attr.userns_fd);
    unsigned flags = (recursive ? AT_RECURSIVE : 0) | ((!path || !*path) ? AT_EMPTY_PATH : 0);
    if (::mount_setattr(dirfd.get(), path ? path : "", flags, &a, sizeof a) < 0)
        return fail_errno("mount_setattr", str(path));
    return {};
}

Result<FsContext> FsContext::open(const char* fstype) {
    int fd = ::fsopen(fstype, FSOPEN_CLOEXEC);
    if (fd < 0) return fail_errno("fsopen", str(fstype));
    return FsContext(Fd(fd), fstype);
}

Error FsContext::with_log(Error e) {
    // The kernel explains fsconfig/fsmount failures in a message log read from the context fd.
    char buf[512];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf - 1);
    if (n > 0) {
        if (buf[n - 1] == '\n') --n;
        std::string msg(buf, static_cast<std::size_t>(n));
        return std::move(e).with_hint("kernel: " + msg);
    }
    return e;
}

Result<void> FsContext::set(const char* key, const char* value) {
    int r = value ? ::fsconfig(fd_.get(), FSCONFIG_SET_STRING, key, value, 0)
                  : ::fsconfig(fd_.get(), FSCONFIG_SET_FLAG, key, nullptr, 0);
    if (r < 0) {
        Error e = Error::from_errno("fsconfig",
                                    type_ + ": " + key + (value ? "=" + std::string(value) : ""));
        return fail(with_log(std::move(e)));
    }
    return {};
}

Result<void> FsContext::create() {
    if (::fsconfig(fd_.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
        return fail(with_log(Error::from_errno("fsconfig(FSCONFIG_CMD_CREATE)", type_)));
    return {};
}

Result<Fd> FsContext::mount(MountAttrs attrs) {
    int fd = ::fsmount(fd_.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(attrs.raw()));
    if (fd < 0) return fail(with_log(Error::from_errno("fsmount", type_)));
    return Fd(fd);
}

Result<Fd> open_in_root(BorrowedFd root, const char* path, int flags, bool no_symlinks) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (no_symlinks ? RESOLVE_NO_SYMLINKS : 0);
    long fd = openat2(root.get(), path, &how);
    if (fd < 0) return fail(Error("openat2", static_cast<int>(-fd), str(path)));
    return Fd(static_cast<int>(fd));
}

Result<Fd> open_no_symlinks(BorrowedFd dir, const char* path, int flags, unsigned mode) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = openat2(dir.get(), path, &how);
    if (fd < 0) return fail(Error("openat2", static_cast<int>(-fd), str(path)));
    return Fd(static_cast<int>(fd));
}

Result<Fd> make_dirs_in_root(BorrowedFd root, const char* path, unsigned mode) {
    return with_context(walk_dirs(root, path, mode), "make_dirs_in_root");
}

Result<Fd> make_file_in_root(BorrowedFd root, const char* path, unsigned mode) {
    std::string_view p(path);
    while (!p.empty() && p.back() == '/')
        p.remove_suffix(1);
    std::size_t slash = p.rfind('/');
    std::string parent(slash == std::string_view::npos ? "" : p.substr(0, slash));
    std::string name(slash == std::string_view::npos ? p : p.substr(slash + 1));
    if (name.empty() || name == "." || name == "..")
        return fail(Error("make_file_in_root", EINVAL, str(path)));
    BUTTER_ASSIGN_OR_RETURN(Fd dir, walk_dirs(root, parent, 0755));
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;  // RESOLVE_NO_SYMLINKS: a symlink here is ELOOP
    how.resolve = kNoFollowResolve;
    long pfd = openat2(dir.get(), name.c_str(), &how);
    if (pfd == -ENOENT) {
        // O_EXCL|O_NOFOLLOW: a symlink planted at the name in between fails instead of being
        // followed to create a file elsewhere.
        int fd = ::openat(dir.get(), name.c_str(),
                          O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) return fail_errno("openat", path);
        ::close(fd);
        pfd = openat2(dir.get(), name.c_str(), &how);
    }
    if (pfd < 0) return fail(Error("openat2", static_cast<int>(-pfd), str(path)));
    return Fd(static_cast<int>(pfd));
}

Result<void> bind_into_root(const char* source, BorrowedFd root, const char* target,
                            bool recursive) {
    Flags<OpenTreeFlag> f = OpenTreeFlag::Clone;
    if (recursive) f |= OpenTreeFlag::Recursive;
    BUTTER_ASSIGN_OR_RETURN(Fd tree, open_tree(AT_FDCWD, source, f));
    struct stat st {};
    if (::fstat(tree.get(), &st) < 0) return fail_errno("fstat", str(source));
    Result<Fd> where =
        S_ISDIR(st.st_mode) ? make_dirs_in_root(root, target) : make_file_in_root(root, target);
    if (!where) return fail(std::move(where).error());
    return move_mount(tree, "", *where, "");
}

}  // namespace butter
