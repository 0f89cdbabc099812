// Mounts: mount(2), umount2(2), pivot_root(2), propagation, the new mount API (open_tree,
// move_mount, mount_setattr, fsopen/fsconfig/fsmount), and symlink-safe path resolution inside
// a new root (openat2 with RESOLVE_IN_ROOT), so that a mount target planted as a symlink can
// never send a mount out of the sandbox's root.
//
// All of these need CAP_SYS_ADMIN in the user namespace that owns the current mount namespace.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>

#include <cstdint>
#include <span>
#include <string>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

enum class MountFlag : unsigned long {
    ReadOnly = MS_RDONLY,
    NoSuid = MS_NOSUID,
    NoDev = MS_NODEV,
    NoExec = MS_NOEXEC,
    Synchronous = MS_SYNCHRONOUS,
    Remount = MS_REMOUNT,
    MandLock = MS_MANDLOCK,
    DirSync = MS_DIRSYNC,
    NoSymFollow = 256,  // MS_NOSYMFOLLOW (5.10)
    NoAtime = MS_NOATIME,
    NoDirAtime = MS_NODIRATIME,
    Bind = MS_BIND,
    Move = MS_MOVE,
    Rec = MS_REC,
    Silent = MS_SILENT,
    Unbindable = MS_UNBINDABLE,
    Private = MS_PRIVATE,
    Slave = MS_SLAVE,
    Shared = MS_SHARED,
    RelAtime = MS_RELATIME,
    StrictAtime = MS_STRICTATIME,
    LazyTime = MS_LAZYTIME,
};
std::span<const FlagName<MountFlag>> flag_names(MountFlag);
using MountFlags = Flags<MountFlag>;

// mount(2). `source`, `fstype` and `data` may be nullptr. The Error's context is the target.
[[nodiscard]] Result<void> mount(const char* source, const char* target, const char* fstype,
                                 MountFlags flags, const char* data = nullptr);
// mount --bind (recursive: --rbind). A read-only bind needs a second, remounting call
// (bind_remount): mount(2) ignores MS_RDONLY on the first bind.
[[nodiscard]] Result<void> bind_mount(const char* source, const char* target,
                                      bool recursive = true);
// Changes the per-mount flags of the bind mount at `target` (MS_REMOUNT|MS_BIND|flags): ro,
// nosuid, nodev, noexec, atime. Flags the mount has that the kernel locks (in a user namespace,
// the ones inherited from a more privileged mount) must be kept: pass them, or EPERM.
[[nodiscard]] Result<void> bind_remount(const char* target, MountFlags flags);

enum class Propagation : unsigned long {
    Private = MS_PRIVATE,
    Slave = MS_SLAVE,
    Shared = MS_SHARED,
    Unbindable = MS_UNBINDABLE,
};
// mount(NULL, target, NULL, propagation [| MS_REC]).
[[nodiscard]] Result<void> set_propagation(const char* target, Propagation p,
                                           bool recursive = true);

enum class UmountFlag : int {
    Force = MNT_FORCE,
    Detach = MNT_DETACH,  // lazy: detach now, clean up when no longer busy
    Expire = MNT_EXPIRE,
    NoFollow = UMOUNT_NOFOLLOW,
};
std::span<const FlagName<UmountFlag>> flag_names(UmountFlag);
[[nodiscard]] Result<void> umount2(const char* target, Flags<UmountFlag> flags = {});

// pivot_root(2). EINVAL has six causes; the Error carries a hint naming the likely ones
// (new_root not a mount point, a shared parent mount, put_old not under new_root, ...).
// `pivot_root(".", ".")` after chdir(new_root) stacks the old root on the new one, to be
// detached with umount2(".", Detach) (no directory for put_old needed).
[[nodiscard]] Result<void> pivot_root(const char* new_root, const char* put_old);

// --- the new mount API ---------------------------------------------------------------------

enum class OpenTreeFlag : unsigned {
    Clone = OPEN_TREE_CLONE,   // a detached copy of the mount (needed to attach it elsewhere)
    Recursive = AT_RECURSIVE,  // with Clone: the whole subtree
    NoFollow = AT_SYMLINK_NOFOLLOW,
    EmptyPath = AT_EMPTY_PATH,
};
std::span<const FlagName<OpenTreeFlag>> flag_names(OpenTreeFlag);
// open_tree(2) with OPEN_TREE_CLOEXEC.
[[nodiscard]] Result<Fd> open_tree(BorrowedFd dirfd, const char* path, Flags<OpenTreeFlag> flags);

// move_mount(2) from a detached tree (or mount) to a target. With an empty path the fd itself
// is the source/target (MOVE_MOUNT_F_EMPTY_PATH / MOVE_MOUNT_T_EMPTY_PATH are set for you).
[[nodiscard]] Result<void> move_mount(BorrowedFd from_dirfd, const char* from_path,
                                      BorrowedFd to_dirfd, const char* to_path);

enum class MountAttr : std::uint64_t {
    ReadOnly = MOUNT_ATTR_RDONLY,
    NoSuid = MOUNT_ATTR_NOSUID,
    NoDev = MOUNT_ATTR_NODEV,
    NoExec = MOUNT_ATTR_NOEXEC,
    NoAtime = MOUNT_ATTR_NOATIME,
    StrictAtime = MOUNT_ATTR_STRICTATIME,
    NoDirAtime = MOUNT_ATTR_NODIRATIME,
    IdMap = MOUNT_ATTR_IDMAP,
    NoSymFollow = MOUNT_ATTR_NOSYMFOLLOW,
};
std::span<const FlagName<MountAttr>> flag_names(MountAttr);
using MountAttrs = Flags<MountAttr>;

struct MountSetattr {
    MountAttrs set;
    MountAttrs clear;
    int userns_fd = -1;  // with set = IdMap: the user namespace whose mapping idmaps the mount
    std::uint64_t propagation = 0;  // MS_PRIVATE, MS_SLAVE, ... or 0 to leave it
};
// mount_setattr(2) on the mount at dirfd/path (empty path: the fd itself); `recursive` applies
// it to every mount below (AT_RECURSIVE), e.g. a recursive read-only bind. EINVAL for IdMap on
// a mount already attached, or a filesystem that cannot be idmapped.
[[nodiscard]] Result<void> mount_setattr(BorrowedFd dirfd, const char* path, bool recursive,
                                         const MountSetattr& attr);

// A filesystem context: fsopen(2), configured with fsconfig(2), turned into a detached mount
// with fsmount(2), then attached with move_mount.
//
//     auto fs = FsContext::open("tmpfs");
//     fs->set("size", "64m"); fs->create(); auto mnt = fs->mount(MountAttr::NoSuid);
//     move_mount(*mnt, "", AT_FDCWD, "/newroot/tmp");
class FsContext {
  public:
    [[nodiscard]] static Result<FsContext> open(const char* fstype);
    // FSCONFIG_SET_STRING (or FSCONFIG_SET_FLAG when `value` is nullptr). EINVAL: unknown key
    // or bad value (the kernel's message is in the Error where it gave one).
    [[nodiscard]] Result<void> set(const char* key, const char* value = nullptr);
    // FSCONFIG_CMD_CREATE: creates the superblock.
    [[nodiscard]] Result<void> create();
    // fsmount(2) with FSMOUNT_CLOEXEC: a detached mount of the created superblock.
    [[nodiscard]] Result<Fd> mount(MountAttrs attrs = {});
    int fd() const { return fd_.get(); }

  private:
    explicit FsContext(Fd fd, std::string type) : fd_(std::move(fd)), type_(std::move(type)) {}
    Error with_log(Error e);  // appends the kernel's fs_context log message, if any
    Fd fd_;
    std::string type_;
};

// --- symlink-safe paths inside a root --------------------------------------------------------

// openat2(2) of `path` inside the directory tree `root`: `..`, absolute paths and absolute
// symlinks resolve as if `root` were "/" (RESOLVE_IN_ROOT), magic links (/proc/self/fd/N) and
// crossings into other mounts below are refused unless asked. With `no_symlinks`, any symlink
// on the path fails with ELOOP. The fd is O_CLOEXEC.
[[nodiscard]] Result<Fd> open_in_root(BorrowedFd root, const char* path, int flags,
                                      bool no_symlinks = false);

// openat2(2) of `path` relative to `dir` (or absolute) with RESOLVE_NO_SYMLINKS and
// RESOLVE_NO_MAGICLINKS: a symlink anywhere on the path, the last component included, fails
// with ELOOP. For a path already resolved once, opened again where a symlink swapped in since
// must not be followed. The fd is O_CLOEXEC.
[[nodiscard]] Result<Fd> open_no_symlinks(BorrowedFd dir, const char* path, int flags,
                                          unsigned mode = 0);

// Creates every missing directory of `path` (mode 0755) inside `root`, never following a
// symlink (a symlink anywhere on the path is ELOOP), and returns an O_PATH fd of the last one.
[[nodiscard]] Result<Fd> make_dirs_in_root(BorrowedFd root, const char* path, unsigned mode = 0755);
// Like make_dirs_in_root for the parent, then creates `path` as an empty file if missing (a bind
// target for a file) and returns an O_PATH fd of it. A symlink at `path` is ELOOP.
[[nodiscard]] Result<Fd> make_file_in_root(BorrowedFd root, const char* path, unsigned mode = 0644);

// Binds `source` (a host path, resolved by the caller) onto `target` inside `root` through the
// new mount API: the target is resolved with make_*_in_root (no symlink followed), then the
// cloned tree is moved onto that fd, so nothing outside `root` can be mounted over.
[[nodiscard]] Result<void> bind_into_root(const char* source, BorrowedFd root, const char* target,
                                          bool recursive = true);

}  // namespace butter
