// The new root: propagation first (MS_REC|MS_SLAVE, or pivot_root fails on a shared parent),
// every bind source opened as a detached tree while the host paths are still visible, an
// empty tmpfs root, the mounts in plan order with every target resolved inside the root
// without following symlinks, pivot_root with the old root detached, /proc hardening, and the
// root made read-only.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>

#include <butter/mount.hpp>

#include "child/child.hpp"
#include "plan/host_path.hpp"

namespace butter::launcher {

namespace {

using profile::MountType;

std::pair<std::string, std::string> split_parent(const std::string& target) {
    auto slash = target.rfind('/');
    return {target.substr(0, slash), target.substr(slash + 1)};
}

// /proc entries that leak host state or offer host-wide knobs, as OCI runtimes treat them.
constexpr std::array<const char*, 5> kProcReadOnly = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
constexpr std::array<const char*, 8> kProcMaskedFiles = {
    "kcore",       "keys",          "key-users", "timer_list",
    "sched_debug", "latency_stats", "kmsg",      "config.gz"};
constexpr std::array<const char*, 3> kProcMaskedDirs = {"acpi", "scsi", "asound"};

// mount(2) onto the directory behind `target_fd`, named "." as the working directory. Not as
// /proc/self/fd/N: a process's first such lookup makes its /proc entries (~25 us in a plain
// process, more in the sandbox's; without them the default run starts ~0.2 ms sooner). The
// working directory stays there: build_rootfs names every other path in full, and moves to
// the new root before it pivots.
Result<void> mount_at(int target_fd, const char* source, const char* fstype, MountFlags flags,
                      const char* data) {
    std::string what = std::string(fstype ? fstype : "bind") + " " + source;
    if (::fchdir(target_fd) < 0) return fail_errno("fchdir", "the mount point of " + what);
    if (::mount(source, ".", fstype, flags.raw(), data) < 0) return fail_errno("mount", what);
    return {};
}

// Whether `name` in `dir` is already a symlink to `text` (a root directory used before).
bool same_symlink(int dir, const char* name, const std::string& text) {
    int saved = errno;
    char buf[4096];
    ssize_t n = ::readlinkat(dir, name, buf, sizeof buf);
    errno = saved;
    return n >= 0 && std::string_view(buf, static_cast<std::size_t>(n)) == text;
}

// A detached view of the directory `dir` alone (a clone of its mount, rooted there), `attrs`
// set: to bind it elsewhere, or in its own place with other flags.
Result<Fd> tree_of_dir(const Fd& dir, MountAttrs attrs) {
    BUTTER_ASSIGN_OR_RETURN(Fd tree,
                            open_tree(dir, "", OpenTreeFlag::Clone | OpenTreeFlag::EmptyPath));
    MountSetattr a;
    a.set = attrs;
    BUTTER_TRY(mount_setattr(tree, "", false, a));
    return tree;
}

Result<void> build_dev(const MountStep& m, int root,
                       const std::array<Fd, kDevNodes.size()>& nodes) {
    BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
    // nodev: the nodes are bind mounts of the host's, with their own flags. Not noexec: shm is
    // a directory here (as bwrap has it), where a shared mapping may be executable.
    if (m.on_root_fs) {
        // The root tmpfs's own directory, bound in place: writable once the root is not.
        BUTTER_ASSIGN_OR_RETURN(Fd tree, tree_of_dir(at, MountAttr::NoSuid | MountAttr::NoDev));
        BUTTER_TRY(move_mount(tree, "", at, ""));
        // Its mode, through the directory below (the same inode), as mount_at names it.
        if (::fchdir(at.get()) < 0) return fail_errno("fchdir", m.target);
        if (::chmod(".", m.mode) < 0) return fail_errno("chmod", m.target);
    } else {
        BUTTER_TRY(mount_at(at.get(), "tmpfs", "tmpfs", MountFlag::NoSuid | MountFlag::NoDev,
                            m.options.c_str()));
    }
    // The fd still names the directory under the new mount: open the mount's root.
    BUTTER_ASSIGN_OR_RETURN(Fd dev,
                            open_in_root(root, m.target.c_str(), O_PATH | O_DIRECTORY, true));
    // The tmpfs just mounted is this process's alone (no one else sees the new mount
    // namespace yet): its names need no symlink-safe lookup. A regular file is each node's
    // mount point (mknodat makes one without an fd to close).
    for (std::size_t i = 0; i < kDevNodes.size(); ++i) {
        if (!nodes[i].valid()) continue;  // the host lacks it (no /dev/tty without a tty)
        if (::mknodat(dev.get(), kDevNodes[i], S_IFREG | 0666, 0) < 0)
            return fail_errno("mknodat", m.target + "/" + kDevNodes[i]);
        BUTTER_TRY(move_mount(nodes[i], "", dev.get(), kDevNodes[i]));
    }
    for (auto [name, link] : {std::pair{"fd", "/proc/self/fd"},
                              {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"},
                              {"stderr", "/proc/self/fd/2"},
                              {"ptmx", "pts/ptmx"}}) {
        if (::symlinkat(link, dev.get(), name) < 0)
            return fail_errno("symlinkat", m.target + "/" + name);
    }
    for (const char* sub : {"pts", "shm"})
        if (::mkdirat(dev.get(), sub, 0755) < 0) return fail_errno("mkdirat", m.target + "/" + sub);
    // mkdirat's mode passes through the umask.
    if (::fchmodat(dev.get(), "shm", 01777, 0) < 0)
        return fail_errno("fchmodat", m.target + "/shm");
    BUTTER_ASSIGN_OR_RETURN(Fd pts, open_in_root(dev, "pts", O_PATH | O_DIRECTORY, true));
    return mount_at(pts.get(), "devpts", "devpts", MountFlag::NoSuid | MountFlag::NoExec,
                    "newinstance,ptmxmode=0666,mode=0620");
}

// What a /proc entry this kernel lacks makes of a mount on it: ENOENT, skipped. No access(2)
// probe first: a probe per entry costs as much as the mount it guards.
Result<bool> mounted_unless_missing(Result<void> r) {
    if (r) return true;
    if (r.error().errno_value() == ENOENT) return false;
    return fail(std::move(r).error());
}

// One mask for many entries: the first that exists gets the detached `tree`, the others a
// bind of that first one.
struct Mask {
    Fd tree;
    std::string first;  // where the tree went
};

Result<void> mask_entry(Mask& mask, const std::string& path) {
    if (!mask.first.empty()) {
        BUTTER_TRY(mounted_unless_missing(bind_mount(mask.first.c_str(), path.c_str(), false)));
        return {};
    }
    BUTTER_ASSIGN_OR_RETURN(
        bool moved, mounted_unless_missing(move_mount(mask.tree, "", AT_FDCWD, path.c_str())));
    if (moved) mask.first = path;
    return {};
}

constexpr MountAttrs kMaskAttrs =
    MountAttr::ReadOnly | MountAttr::NoSuid | MountAttr::NoDev | MountAttr::NoExec;

// After pivot_root: /proc of the sandbox, its host knobs read-only and its leaks masked: files
// with the host's /dev/null (cloned before the old root went away), directories with an empty
// read-only one (the root tmpfs's, under the proc mount; else a tmpfs made here).
Result<void> harden_proc(const std::string& proc, Mask& files, Mask& dirs) {
    for (const char* name : kProcReadOnly) {
        std::string p = proc + "/" + name;
        BUTTER_ASSIGN_OR_RETURN(bool bound,
                                mounted_unless_missing(bind_mount(p.c_str(), p.c_str(), true)));
        if (!bound) continue;
        BUTTER_TRY(bind_remount(p.c_str(), MountFlag::ReadOnly | MountFlag::NoSuid |
                                               MountFlag::NoDev | MountFlag::NoExec));
    }
    for (const char* name : kProcMaskedFiles)
        BUTTER_TRY(mask_entry(files, proc + "/" + name));
    if (!dirs.tree.valid() && dirs.first.empty()) {
        BUTTER_ASSIGN_OR_RETURN(FsContext fs, FsContext::open("tmpfs"));
        BUTTER_TRY(fs.set("mode", "0755"));
        BUTTER_TRY(fs.create());
        BUTTER_ASSIGN_OR_RETURN(dirs.tree, fs.mount(kMaskAttrs));
    }
    for (const char* name : kProcMaskedDirs)
        BUTTER_TRY(mask_entry(dirs, proc + "/" + name));
    return {};
}

// An OCI config's linux.sysctl: "net.ipv4.ip_forward" is /proc/sys/net/ipv4/ip_forward (of the
// sandbox's /proc: its namespaces' own). A key with "/" or ".." never leaves /proc/sys.
Result<void> write_sysctl(const std::string& key, const std::string& value) {
    std::string path = "/proc/sys/";
    for (char c : key)
        path += c == '.' ? '/' : c;
    if (key.find('/') != std::string::npos || key.find("..") != std::string::npos)
        return fail(Error::message("sysctl", "not a sysctl name", key));
    auto fd = open_no_symlinks(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (!fd) return fail(std::move(fd).error());
    if (::write(fd->get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        return fail_errno("write", path);
    return {};
}

// After pivot_root, an OCI container's maskedPaths and readonlyPaths (SandboxPlan): a path
// that is missing or a symlink is left as it is (its target is not what the config named).
Result<void> harden_oci(const SandboxPlan& plan, Mask& files, Mask& dirs) {
    if (files.tree.valid() && files.first.empty()) {
        // The host's /dev/null, read-only: not a file the container's root may chmod.
        MountSetattr ro;
        ro.set = kMaskAttrs;
        BUTTER_TRY(mount_setattr(files.tree, "", false, ro));
    }
    for (const std::string& p : plan.masked_paths) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) < 0) {
            if (errno == ENOENT || errno == ENOTDIR) continue;
            return fail_errno("lstat", p);
        }
        if (S_ISLNK(st.st_mode)) continue;
        if (S_ISDIR(st.st_mode) && !dirs.tree.valid() && dirs.first.empty()) {
            BUTTER_ASSIGN_OR_RETURN(FsContext fs, FsContext::open("tmpfs"));
            BUTTER_TRY(fs.set("mode", "0755"));
            BUTTER_TRY(fs.create());
            BUTTER_ASSIGN_OR_RETURN(dirs.tree, fs.mount(kMaskAttrs));
        }
        BUTTER_TRY(mask_entry(S_ISDIR(st.st_mode) ? dirs : files, p));
    }
    for (const std::string& p : plan.readonly_paths) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) continue;
        if (S_ISLNK(st.st_mode)) continue;
        BUTTER_ASSIGN_OR_RETURN(bool bound,
                                mounted_unless_missing(bind_mount(p.c_str(), p.c_str(), true)));
        if (!bound) continue;
        BUTTER_TRY(bind_remount(p.c_str(), MountFlag::ReadOnly | MountFlag::NoSuid |
                                               MountFlag::NoDev | MountFlag::NoExec));
    }
    return {};
}

// A cgroup file system that cannot be mounted (in a user namespace without a cgroup namespace
// of its own: rootless podman with cgroups disabled): the host's /sys/fs/cgroup, read-only, as
// runc and crun bind it then. Still the host's tree here (the new root is not in place yet).
Result<void> bind_host_cgroups(const Fd& at) {
    BUTTER_ASSIGN_OR_RETURN(Fd tree, open_tree(AT_FDCWD, "/sys/fs/cgroup",
                                               OpenTreeFlag::Clone | OpenTreeFlag::Recursive));
    MountSetattr ro;
    ro.set = MountAttr::ReadOnly | MountAttr::NoSuid | MountAttr::NoDev | MountAttr::NoExec;
    BUTTER_TRY(mount_setattr(tree, "", true, ro));
    return move_mount(tree, "", at, "");
}

// One of linux.devices: made with mknod at its path (a node there already is taken if it is
// the same device: a rerun), or in a user namespace, where no node can be made, the host's node
// of that path (`host`, checked at take_sources to be of the device's kind and numbers) bound
// onto a file made there. The directory may be one a container writes meanwhile (a shared
// volume, an image's /dev): after the mknod the name is opened once, O_PATH|O_NOFOLLOW, and
// used only if it is a node of the device's kind and numbers (a symlink or another node
// swapped in is refused); owner, mode and the bind go through that fd, never the name again.
// The node is a read-only bind of itself without nodev: usable where every other mount is
// nodev, never chmod'ed or chown'ed through.
Result<void> make_device(const SandboxPlan::Device& d, const Fd& root, Fd& host, bool userns) {
    auto slash = d.path.rfind('/');
    std::string dir = slash == 0 ? "/" : d.path.substr(0, slash);
    std::string name = d.path.substr(slash + 1);
    BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, dir.c_str()));
    MountSetattr attr;
    attr.set = MountAttr::ReadOnly | MountAttr::NoSuid | MountAttr::NoExec;
    attr.clear = MountAttr::NoDev;
    if (::mknodat(at.get(), name.c_str(), d.type | (d.mode & 07777), makedev(d.major, d.minor)) ==
            0 ||
        errno == EEXIST) {
        int fd = ::openat(at.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_errno("openat", d.path);
        Fd node(fd);
        struct stat st {};
        if (::fstat(fd, &st) < 0) return fail_errno("fstat", d.path);
        if ((st.st_mode & S_IFMT) != d.type || st.st_rdev != makedev(d.major, d.minor))
            return fail(Error::message("linux.devices",
                                       "not the device the config names (replaced, or there "
                                       "already)",
                                       d.path));
        if (::fchownat(fd, "", d.uid, d.gid, AT_EMPTY_PATH) < 0)
            return fail_errno("fchownat", d.path);
        // (through the fd: chmod of /proc/self/fd/N is the inode's, without the umask)
        std::string self = "/proc/self/fd/" + std::to_string(fd);
        if (::chmod(self.c_str(), d.mode & 07777) < 0) return fail_errno("chmod", d.path);
        if (d.type == S_IFIFO) return {};
        BUTTER_ASSIGN_OR_RETURN(Fd tree,
                                open_tree(node, "", OpenTreeFlag::Clone | OpenTreeFlag::EmptyPath));
        BUTTER_TRY(mount_setattr(tree, "", false, attr));
        return move_mount(tree, "", node, "");
    }
    if (errno == EPERM && userns && host.valid()) {
        BUTTER_TRY(mount_setattr(host, "", false, attr));
        BUTTER_ASSIGN_OR_RETURN(Fd file, make_file_in_root(root, d.path.c_str(), 0600));
        return move_mount(host, "", file, "");
    }
    if (errno == EPERM && userns)
        return fail(Error("mknodat", EPERM,
                          d.path + " (in a user namespace, only a node the host has at that path "
                                   "can be bound)"));
    return fail_errno("mknodat", d.path);
}

// An OCI container's /dev (a tmpfs of its config's): the host's device nodes and the links an
// OCI runtime provides (runtime-spec's "Default Devices"); what the config mounted there
// already (a devpts at pts, shm) stays. Then linux.devices' nodes.
Result<void> populate_oci_dev(const MountStep& m, const Fd& root,
                              const std::array<Fd, kDevNodes.size()>& nodes,
                              const std::vector<SandboxPlan::Device>& devices,
                              std::vector<Fd>& host_devices, bool userns) {
    BUTTER_ASSIGN_OR_RETURN(Fd dev, make_dirs_in_root(root, m.target.c_str()));
    BUTTER_ASSIGN_OR_RETURN(dev, open_in_root(dev, ".", O_PATH | O_DIRECTORY, true));
    // Read-only binds: the nodes are the host's own files, which a container's root (without a
    // user namespace: host root) could otherwise chmod or chown; reads and writes of the devices
    // are unaffected.
    MountSetattr ro;
    ro.set = MountAttr::ReadOnly | MountAttr::NoSuid | MountAttr::NoExec;
    for (std::size_t i = 0; i < kDevNodes.size(); ++i) {
        if (!nodes[i].valid()) continue;
        if (::mknodat(dev.get(), kDevNodes[i], S_IFREG | 0666, 0) < 0 && errno != EEXIST)
            return fail_errno("mknodat", m.target + "/" + kDevNodes[i]);
        BUTTER_TRY(mount_setattr(nodes[i], "", false, ro));
        BUTTER_TRY(move_mount(nodes[i], "", dev.get(), kDevNodes[i]));
    }
    for (auto [name, link] : {std::pair{"fd", "/proc/self/fd"},
                              {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"},
                              {"stderr", "/proc/self/fd/2"},
                              {"ptmx", "pts/ptmx"},
                              {"core", "/proc/kcore"}}) {
        if (::symlinkat(link, dev.get(), name) < 0 &&
            !(errno == EEXIST && same_symlink(dev.get(), name, link)))
            return fail_errno("symlinkat", m.target + "/" + name);
    }
    for (std::size_t i = 0; i < devices.size(); ++i) {
        // A default node listed again (an engine's --privileged lists every host device) is
        // the one there already, if it is the same device.
        const SandboxPlan::Device& d = devices[i];
        bool is_default = false;
        for (std::size_t k = 0; k < kDevNodes.size(); ++k) {
            if (!nodes[k].valid() || d.path != std::string("/dev/") + kDevNodes[k]) continue;
            struct stat st {};
            if (::fstat(nodes[k].get(), &st) < 0) return fail_errno("fstat", d.path);
            if ((st.st_mode & S_IFMT) != d.type || st.st_rdev != makedev(d.major, d.minor))
                return fail(
                    Error::message("linux.devices", "not the default device at its path", d.path));
            is_default = true;
        }
        if (!is_default) BUTTER_TRY(make_device(d, root, host_devices[i], userns));
    }
    return {};
}

}  // namespace

Result<Fd> clone_bind_source(const MountStep& m, bool as_slave) {
    // What the plan resolved, unless it was replaced since (host_path.hpp): never a symlink.
    BUTTER_ASSIGN_OR_RETURN(Fd src, reopen_host_path(m.source, m.source_dev, m.source_ino));
    BUTTER_ASSIGN_OR_RETURN(Fd tree, open_tree(src, "",
                                               OpenTreeFlag::Clone | OpenTreeFlag::Recursive |
                                                   OpenTreeFlag::EmptyPath));
    MountSetattr attr;
    attr.set = MountAttrs::from_raw(m.attrs);
    if (m.read_only) attr.set |= MountAttr::ReadOnly;
    if (as_slave) attr.propagation = MS_SLAVE;
    if (attr.set.raw() != 0 || as_slave) BUTTER_TRY(mount_setattr(tree, "", true, attr));
    return tree;
}

std::array<Fd, kDevNodes.size()> clone_dev_nodes() {
    std::array<Fd, kDevNodes.size()> out;
    for (std::size_t i = 0; i < kDevNodes.size(); ++i) {
        std::string path = std::string("/dev/") + kDevNodes[i];
        if (auto t = open_tree(AT_FDCWD, path.c_str(), OpenTreeFlag::Clone)) out[i] = std::move(*t);
    }
    return out;
}

namespace {

// What the mounts are made from, taken before the root tmpfs can hide it: each bind's detached
// tree, the host's device nodes, /dev/null for /proc's masks.
struct OverlayLayers {
    std::string lower;  // lowerdir: the layer trees, as /proc/self/fd/N, top first
    Fd upper, work;
};

struct Sources {
    std::vector<Fd> trees;                // per plan.mounts entry (binds only)
    std::vector<OverlayLayers> overlays;  // per plan.mounts entry (overlays only)
    std::array<Fd, kDevNodes.size()> dev_nodes;
    std::vector<Fd> devices;  // per plan.devices entry: the host's node there (if it matches)
    Mask masked_files, masked_dirs;
};

Result<void> take_sources(const SandboxPlan& plan, const ChildChannels& ch, StepError& where,
                          Sources& src) {
    src.trees.resize(plan.mounts.size());
    bool have_dev_nodes = ch.have_host_trees;
    if (ch.have_host_trees) {  // made by the parent; ours to consume
        if (ch.null_tree >= 0) src.masked_files.tree = Fd(ch.null_tree);
        for (std::size_t i = 0; i < kDevNodes.size(); ++i)
            if (ch.dev_nodes[i] >= 0) src.dev_nodes[i] = Fd(ch.dev_nodes[i]);
    } else if (plan.has_proc || !plan.masked_paths.empty()) {
        BUTTER_ASSIGN_OR_RETURN(src.masked_files.tree,
                                open_tree(AT_FDCWD, "/dev/null", OpenTreeFlag::Clone));
    }
    src.devices.resize(plan.devices.size());
    for (std::size_t i = 0; i < plan.devices.size(); ++i) {
        // The host's node at the device's path, for a user namespace (make_device): the clone
        // of a node of that kind and those numbers, no symlink followed at its end.
        const SandboxPlan::Device& d = plan.devices[i];
        if (d.type == S_IFIFO) continue;
        auto tree =
            open_tree(AT_FDCWD, d.path.c_str(), OpenTreeFlag::Clone | OpenTreeFlag::NoFollow);
        struct stat st {};
        if (tree && ::fstat(tree->get(), &st) == 0 && (st.st_mode & S_IFMT) == d.type &&
            st.st_rdev == makedev(d.major, d.minor))
            src.devices[i] = std::move(*tree);
    }
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountStep& m = plan.mounts[i];
        where.mount = static_cast<int>(i);
        if ((m.type == MountType::Dev || m.type == MountType::DevNodes) && !have_dev_nodes) {
            src.dev_nodes = clone_dev_nodes();
            have_dev_nodes = true;
        }
        if (m.type != MountType::Bind) continue;
        if (ch.prepared.size() > i && ch.prepared[i] >= 0) {
            src.trees[i] = Fd(ch.prepared[i]);  // made by the parent; ours to consume
            continue;
        }
        // Our mounts are slaves of the host's already (build_rootfs): so is a clone of them.
        BUTTER_ASSIGN_OR_RETURN(src.trees[i], clone_bind_source(m, false));
    }
    where.mount = -1;
    return {};
}

std::string fd_path(const Fd& fd) {
    return "/proc/self/fd/" + std::to_string(fd.get());
}

// A tmpfs upper: "mode=...,size=...,nr_inodes=..." as fsconfig(2) keys.
Result<Fd> upper_tmpfs(const std::string& options) {
    BUTTER_ASSIGN_OR_RETURN(FsContext fs, FsContext::open("tmpfs"));
    std::size_t at = 0;
    while (at < options.size()) {
        std::size_t comma = options.find(',', at);
        if (comma == std::string::npos) comma = options.size();
        std::string kv = options.substr(at, comma - at);
        std::size_t eq = kv.find('=');
        BUTTER_TRY(fs.set(kv.substr(0, eq).c_str(),
                          eq == std::string::npos ? nullptr : kv.c_str() + eq + 1));
        at = comma + 1;
    }
    BUTTER_TRY(fs.create());
    return fs.mount(MountAttr::NoSuid | MountAttr::NoDev);
}

// `name` in `dir` (`where`, for errors), made if missing, opened without following a symlink.
Result<Fd> layer_dir(const Fd& dir, const char* name, const std::string& where,
                     bool* made = nullptr) {
    bool created = ::mkdirat(dir.get(), name, 0700) == 0;
    if (!created && errno != EEXIST) return fail_errno("mkdirat", where + "/" + name);
    if (made) *made = created;
    int fd = ::openat(dir.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("openat", where + "/" + name);
    return Fd(fd);
}

// Whether the directory `fd` holds nothing but "." and "..".
bool empty_dir(int fd) {
    alignas(8) char buf[512];
    long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    for (long at = 0; at < n;) {
        auto* d = reinterpret_cast<struct dirent64*>(buf + at);
        std::string_view name = d->d_name;
        if (name != "." && name != "..") return false;
        at += d->d_reclen;
    }
    return n >= 0;
}

// Overlay `i`'s layers, attached at `staging` before the root covers them there (kernels
// before 6.15 take no layer outside the mounter's mount namespace; the overlay keeps private
// clones of them once made, and they go with the old root): its lower trees, and its upper
// directory, on a host directory or a tmpfs of the sandbox's own. A new upper directory takes
// the owner and mode of the top lower one (the overlay's root shows the upper's). The
// workspace overlay's upper goes to the supervisor, which exports its changes after the run.
Result<void> stage_overlay(const SandboxPlan& plan, std::size_t i, const char* staging,
                           const ChildChannels& ch, Sources& src) {
    const MountStep& o = plan.mounts[i];
    OverlayLayers& ol = src.overlays[i];
    std::size_t first = i - o.layers;
    bool host_upper = o.options.empty();
    std::size_t lowers = o.layers - (host_upper ? 1 : 0);
    for (std::size_t k = first; k < i; ++k)
        BUTTER_TRY(move_mount(src.trees[k], "", AT_FDCWD, staging));
    for (std::size_t k = first; k < first + lowers; ++k)
        ol.lower += (ol.lower.empty() ? "" : ":") + fd_path(src.trees[k]);
    Fd upper_fs;
    if (host_upper) {
        // DIR/overlay, 0700 (spawn.cpp's make_upper_dirs has the reason).
        Fd dir = std::move(src.trees[i - 1]);
        BUTTER_ASSIGN_OR_RETURN(upper_fs, layer_dir(dir, "overlay", plan.mounts[i - 1].source));
        if (::fchmod(upper_fs.get(), 0700) < 0)
            return fail_errno("fchmod", plan.mounts[i - 1].source + "/overlay");
    } else {
        BUTTER_ASSIGN_OR_RETURN(upper_fs, upper_tmpfs(o.options));
        BUTTER_TRY(move_mount(upper_fs, "", AT_FDCWD, staging));
    }
    bool made = false;
    std::string where =
        host_upper ? plan.mounts[i - 1].source + "/overlay" : std::string("(the tmpfs upper)");
    BUTTER_ASSIGN_OR_RETURN(ol.upper, layer_dir(upper_fs, "upper", where, &made));
    BUTTER_ASSIGN_OR_RETURN(ol.work, layer_dir(upper_fs, "work", where));
    if (made || empty_dir(ol.upper.get())) {
        struct stat top {};
        if (::fstat(src.trees[first].get(), &top) < 0) return fail_errno("fstat", o.target);
        if (::fchown(ol.upper.get(), top.st_uid, top.st_gid) < 0)
            return fail_errno("fchown", o.target + " (its upper directory)");
        if (::fchmod(ol.upper.get(), top.st_mode & 07777) < 0)
            return fail_errno("fchmod", o.target + " (its upper directory)");
    }
    if (plan.namespaces.has(Namespace::User)) {
        // userxattr: the overlay's own attributes in the user.* namespace, which tmpfs has
        // only since Linux 6.6.
        if (::fsetxattr(ol.upper.get(), "user.butter", "", 0, 0) < 0) {
            if (errno == EOPNOTSUPP)
                return fail(Error("fsetxattr", EOPNOTSUPP, o.target + " (its upper directory)")
                                .with_hint(host_upper ? "its filesystem has no user xattrs, which "
                                                        "an overlay in a user namespace needs"
                                                      : "tmpfs has no user xattrs before Linux "
                                                        "6.6, and an overlay in a user "
                                                        "namespace needs them: use upper = a "
                                                        "host directory"));
            return fail_errno("fsetxattr", o.target + " (its upper directory)");
        }
        (void)::fremovexattr(ol.upper.get(), "user.butter");
    }
    if (static_cast<int>(i) == plan.changes.mount)
        BUTTER_TRY(send_fd(ch.control_fd, ControlMessage::Changes, ol.upper.get()));
    return {};
}

Result<void> mount_overlay(const SandboxPlan& plan, const MountStep& m, OverlayLayers& ol,
                           const Fd& root) {
    BUTTER_ASSIGN_OR_RETURN(FsContext fs, FsContext::open("overlay"));
    BUTTER_TRY(fs.set("lowerdir", ol.lower.c_str()));
    BUTTER_TRY(fs.set("upperdir", fd_path(ol.upper).c_str()));
    BUTTER_TRY(fs.set("workdir", fd_path(ol.work).c_str()));
    if (plan.namespaces.has(Namespace::User)) BUTTER_TRY(fs.set("userxattr"));
    BUTTER_TRY(fs.set("xino", "off"));
    BUTTER_TRY(fs.set("uuid", "off"));
    if (auto r = fs.create(); !r) {
        if (r.error().errno_value() != EINVAL) return r;
        return fail(std::move(r).error().with_hint(
            "a lower layer holds mounts of the host's (in a user namespace they cannot be "
            "left out), or the layers overlap"));
    }
    BUTTER_ASSIGN_OR_RETURN(Fd tree, fs.mount(MountAttr::NoSuid | MountAttr::NoDev));
    BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
    BUTTER_TRY(move_mount(tree, "", at, ""));
    ol = {};  // the overlay holds its layers now
    return {};
}

// The new root, attached at `staging`: a sized tmpfs, or a clone of filesystem.root.
Result<Fd> attach_root(const SandboxPlan& plan, const char* staging) {
    if (plan.root_dir.empty()) {
        BUTTER_TRY(butter::mount("tmpfs", staging, "tmpfs", MountFlag::NoSuid | MountFlag::NoDev,
                                 plan.root_options.c_str()));
    } else {
        BUTTER_ASSIGN_OR_RETURN(Fd dir,
                                reopen_host_path(plan.root_dir, plan.root_dev, plan.root_ino));
        BUTTER_ASSIGN_OR_RETURN(Fd tree, open_tree(dir, "",
                                                   OpenTreeFlag::Clone | OpenTreeFlag::Recursive |
                                                       OpenTreeFlag::EmptyPath));
        if (plan.root_attrs != 0) {
            MountSetattr attr;
            attr.set = MountAttrs::from_raw(plan.root_attrs);
            BUTTER_TRY(mount_setattr(tree, "", true, attr));
        }
        if (plan.no_init) {
            // An OCI container's root over its own directory, as runc mounts it: its
            // createContainer hooks see the runtime's file system whole (a staging /tmp would
            // hide the host's). The tree's fd is the new root's.
            BUTTER_TRY(move_mount(tree, "", dir, ""));
            return tree;
        }
        BUTTER_TRY(move_mount(tree, "", AT_FDCWD, staging));
    }
    return open(staging, O_PATH | O_DIRECTORY);
}

// One mount of the plan, in the new root open at `root`.
Result<void> mount_one(const SandboxPlan& plan, std::size_t i, const Fd& root, Sources& src) {
    const MountStep& m = plan.mounts[i];
    switch (m.type) {
        case MountType::Overlay:
            return mount_overlay(plan, m, src.overlays[i], root);
        case MountType::Bind: {
            if (m.layer) return {};  // the overlay after it holds it
            Fd& tree = src.trees[i];
            Result<Fd> at = m.source_is_dir ? make_dirs_in_root(root, m.target.c_str())
                                            : make_file_in_root(root, m.target.c_str());
            if (!at) return fail(std::move(at).error());
            return move_mount(tree, "", *at, "");
        }
        case MountType::Symlink: {
            auto [parent, name] = split_parent(m.target);
            Fd dir;
            if (!parent.empty()) {  // at the top: the root's own fd does
                BUTTER_ASSIGN_OR_RETURN(dir, make_dirs_in_root(root, parent.c_str()));
            }
            int at = dir.valid() ? dir.get() : root.get();
            if (::symlinkat(m.source.c_str(), at, name.c_str()) < 0 &&
                !(errno == EEXIST && same_symlink(at, name.c_str(), m.source)))
                return fail_errno("symlinkat", m.target);
            return {};
        }
        case MountType::Tmpfs: {
            BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
            MountFlags flags = MountFlag::NoSuid | MountFlag::NoDev;
            if (m.read_only) flags |= MountFlag::ReadOnly;  // an empty, unwritable directory
            return mount_at(at.get(), "tmpfs", "tmpfs", flags, m.options.c_str());
        }
        case MountType::Proc: {
            BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
            if (m.on_root_fs && !src.masked_dirs.tree.valid()) {
                // The empty directory that the proc mount is about to cover.
                BUTTER_ASSIGN_OR_RETURN(src.masked_dirs.tree, tree_of_dir(at, kMaskAttrs));
            }
            return mount_at(at.get(), "proc", "proc",
                            MountFlag::NoSuid | MountFlag::NoDev | MountFlag::NoExec, nullptr);
        }
        case MountType::Mqueue: {
            BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
            return mount_at(at.get(), "mqueue", "mqueue",
                            MountFlag::NoSuid | MountFlag::NoDev | MountFlag::NoExec, nullptr);
        }
        case MountType::Dev:
            return build_dev(m, root.get(), src.dev_nodes);
        case MountType::DevNodes:
            return populate_oci_dev(m, root, src.dev_nodes, plan.devices, src.devices,
                                    plan.namespaces.has(Namespace::User) || plan.joined_user_ns);
        case MountType::Kernel: {
            BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, m.target.c_str()));
            auto made = mount_at(at.get(), m.source.empty() ? m.fstype.c_str() : m.source.c_str(),
                                 m.fstype.c_str(), MountFlags::from_raw(m.flags),
                                 m.options.empty() ? nullptr : m.options.c_str());
            int err = made ? 0 : made.error().errno_value();
            if ((m.fstype == "cgroup2" || m.fstype == "cgroup") && (err == EPERM || err == EBUSY))
                return bind_host_cgroups(at);
            return made;
        }
        case MountType::Dir:
            BUTTER_TRY(make_dirs_in_root(root, m.target.c_str(), m.mode));
            return {};
    }
    return {};
}

// network.mode = "user": the sandbox's /etc/resolv.conf, a file of its own tmpfs bound over
// whatever the root has there (the host's, through a read-only /etc).
Result<void> place_resolv_conf(const SandboxPlan& plan, const Fd& root) {
    BUTTER_ASSIGN_OR_RETURN(Fd fs, upper_tmpfs("mode=0755,size=16k,nr_inodes=4"));
    int fd = ::openat(fs.get(), "resolv.conf", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return fail_errno("openat", "resolv.conf");
    Fd file(fd);
    const std::string& text = plan.resolv_conf;
    if (::write(file.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail_errno("write", "resolv.conf");
    BUTTER_ASSIGN_OR_RETURN(Fd tree, open_tree(fs, "resolv.conf", OpenTreeFlag::Clone));
    BUTTER_ASSIGN_OR_RETURN(Fd at, make_file_in_root(root, "/etc/resolv.conf"));
    return move_mount(tree, "", at, "");
}

// supervise.notify under systemd: the relay's datagram socket, bound in a tmpfs of the
// sandbox's own (read-only once it is there) and handed to the supervisor. No host path ever
// names it: a process outside the sandbox cannot send to it, whatever it has bound in.
Result<void> place_notify_socket(const SandboxPlan& plan, const ChildChannels& ch, const Fd& root) {
    auto [parent, name] = split_parent(plan.notify_socket);
    BUTTER_ASSIGN_OR_RETURN(Fd fs, upper_tmpfs("mode=0755,size=4k,nr_inodes=4"));
    int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail_errno("socket(AF_UNIX)", plan.notify_socket);
    Fd sock(s);
    int on = 1;
    if (::setsockopt(s, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
        return fail_errno("setsockopt(SO_PASSCRED)", plan.notify_socket);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (name.size() >= sizeof addr.sun_path)
        return fail(Error::message("bind", "path too long", plan.notify_socket));
    std::memcpy(addr.sun_path, name.c_str(), name.size());
    // Named from the tmpfs as the working directory (as mount_at does: no /proc lookup).
    if (::fchdir(fs.get()) < 0) return fail_errno("fchdir", plan.notify_socket);
    if (::bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0)
        return fail_errno("bind", plan.notify_socket);
    // Any id the sandbox's processes run as may send.
    if (::fchmodat(fs.get(), name.c_str(), 0666, 0) < 0)
        return fail_errno("fchmodat", plan.notify_socket);
    MountSetattr ro;
    ro.set = MountAttr::ReadOnly;  // (a socket takes datagrams on a read-only mount)
    BUTTER_TRY(mount_setattr(fs, "", false, ro));
    BUTTER_ASSIGN_OR_RETURN(Fd at, make_dirs_in_root(root, parent.c_str()));
    BUTTER_TRY(move_mount(fs, "", at, ""));
    return send_fd(ch.control_fd, ControlMessage::NotifySocket, s);
}

}  // namespace

Result<void> build_rootfs(const SandboxPlan& plan, const ChildChannels& ch, StepError& where) {
    where.step = Step::Propagation;
    BUTTER_TRY(set_propagation("/", Propagation::Slave, true));

    // Sources first: once the root tmpfs is attached it may hide them.
    where.step = Step::PrepareBinds;
    Sources src;
    BUTTER_TRY(take_sources(plan, ch, where, src));
    struct stat st {};
    const char* staging = ::stat("/tmp", &st) == 0 && S_ISDIR(st.st_mode) ? "/tmp" : "/mnt";
    src.overlays.resize(plan.mounts.size());
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        if (plan.mounts[i].type != MountType::Overlay) continue;
        where.mount = static_cast<int>(i);
        BUTTER_TRY(stage_overlay(plan, i, staging, ch, src));
    }
    where.mount = -1;

    where.step = Step::Root;
    BUTTER_ASSIGN_OR_RETURN(Fd root, attach_root(plan, staging));

    where.step = Step::Mount;
    for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
        where.mount = static_cast<int>(i);
        BUTTER_TRY(mount_one(plan, i, root, src));
    }
    where.mount = -1;
    if (!plan.resolv_conf.empty()) BUTTER_TRY(place_resolv_conf(plan, root));
    if (!plan.notify_socket.empty()) BUTTER_TRY(place_notify_socket(plan, ch, root));

    // An OCI config's createContainer hooks: in the container's namespaces, its mounts made,
    // the runtime's file system still the root (their paths are the runtime's).
    if (!plan.create_container_hooks.empty()) {
        where.step = Step::Hooks;
        BUTTER_TRY(run_container_hooks(plan.create_container_hooks, ch));
    }

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // only the new root, with no directory needed for the old one.
    where.step = Step::PivotRoot;
    if (::fchdir(root.get()) < 0) return fail_errno("fchdir", staging);
    BUTTER_TRY(pivot_root(".", "."));
    BUTTER_TRY(umount2(".", UmountFlag::Detach));
    if (::chdir("/") < 0) return fail_errno("chdir", "/");

    where.step = Step::Proc;
    if (plan.no_init) {  // (OCI)
        where.step = Step::Sysctl;
        for (const auto& [key, value] : plan.sysctls)
            BUTTER_TRY(write_sysctl(key, value));
        where.step = Step::Proc;
        BUTTER_TRY(harden_oci(plan, src.masked_files, src.masked_dirs));
    }
    for (std::size_t i = 0; i < plan.mounts.size() && !plan.no_init; ++i) {
        if (plan.mounts[i].type != MountType::Proc) continue;
        where.mount = static_cast<int>(i);
        BUTTER_TRY(harden_proc(plan.mounts[i].target, src.masked_files, src.masked_dirs));
    }
    where.mount = -1;

    where.step = Step::ReadOnlyRoot;
    if (plan.read_only_root) {
        // mount_setattr sets only what it names: a rootfs directory's locked flags stay as
        // they are (a MS_REMOUNT would have to repeat them).
        MountSetattr ro;
        ro.set = MountAttr::ReadOnly;
        BUTTER_TRY(mount_setattr(AT_FDCWD, "/", false, ro));
    }
    return {};
}

}  // namespace butter::launcher
