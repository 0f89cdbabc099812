#include "supervise/fanotify_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

#include <butter/namespace.hpp>

namespace butter::launcher {

namespace {

std::optional<std::uint64_t> fsid_of(int fd) {
    struct statfs st {};
    if (::fstatfs(fd, &st) < 0) return std::nullopt;
    std::uint64_t id = 0;
    static_assert(sizeof st.f_fsid == sizeof id);
    std::memcpy(&id, &st.f_fsid, sizeof id);
    return id;
}

std::string handle_key(const FileHandle& h) {
    std::string k(reinterpret_cast<const char*>(&h.fsid), sizeof h.fsid);
    k += std::to_string(h.handle_type) + ":";
    k.append(reinterpret_cast<const char*>(h.handle.data()), h.handle.size());
    return k;
}

std::string join(const std::string& dir, const std::string& name) {
    return (dir == "/" ? "" : dir) + "/" + name;
}

}  // namespace

bool path_within(const std::string& path, const std::string& root) {
    if (path == root) return true;
    return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
           (root == "/" || path[root.size()] == '/');
}

void for_each_entry(int dir, const std::function<void(const std::string&, bool)>& f) {
    int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) return;
    DIR* d = ::fdopendir(copy);
    if (!d) {
        ::close(copy);
        return;
    }
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st {};
            is_dir =
                ::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        f(n, is_dir);
    }
    ::closedir(d);
}

Result<FanotifyTree> FanotifyTree::create(FanotifyMasks mask) {
    BUTTER_ASSIGN_OR_RETURN(Fanotify fan,
                            Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock));
    return FanotifyTree(std::move(fan), mask);
}

bool FanotifyTree::mark(int dir, std::uint64_t fsid) {
    if (mount_fds_.count(fsid)) return true;
    // The descriptor's own directory, named through /proc (the magic link is the object).
    std::string self = "/proc/self/fd/" + std::to_string(dir);
    if (!fan_.add_mark(self, mask_, FanotifyMarkType::Filesystem)) return false;
    int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) return false;
    mount_fds_.emplace(fsid, Fd(copy));
    return true;
}

Result<void> FanotifyTree::add(int dir, const std::string& path) {
    auto fsid = fsid_of(dir);
    if (!fsid) return fail_errno("fstatfs", path);
    if (mount_fds_.count(*fsid)) return {};
    BUTTER_TRY(
        fan_.add_mark("/proc/self/fd/" + std::to_string(dir), mask_, FanotifyMarkType::Filesystem));
    int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) return fail_errno("openat", path);
    mount_fds_.emplace(*fsid, Fd(copy));
    return {};
}

void FanotifyTree::cache(int dir, const std::string& path, std::uint64_t fsid) {
    if (auto h = name_to_handle(dir, "", fsid, AT_EMPTY_PATH)) remember(handle_key(*h), path);
}

bool FanotifyTree::full() const {
    return dirs_.size() >= kMaxCached || cached_bytes_ >= kMaxCachedBytes;
}

void FanotifyTree::remember(const std::string& key, const std::string& path) {
    auto it = dirs_.find(key);
    if (it == dirs_.end()) {
        if (full()) return;  // the rest resolves when its events come
        cached_bytes_ += key.size() + path.size();
        dirs_.emplace(key, path);
        return;
    }
    cached_bytes_ += path.size();
    cached_bytes_ -= it->second.size();
    it->second = path;
}

void FanotifyTree::cache_dir(int dir, const std::string& path) {
    if (auto fsid = fsid_of(dir)) cache(dir, path, *fsid);
}

bool FanotifyTree::cache_tree(int dir, const std::string& path,
                              const std::function<void(const std::string&)>& file, int depth) {
    if (full() || depth > kMaxDepth) return false;
    struct stat parent {};
    if (::fstat(dir, &parent) < 0) return true;  // gone meanwhile
    auto fsid = fsid_of(dir);
    if (!fsid) return true;
    cache(dir, path, *fsid);
    bool all = true;
    for_each_entry(dir, [&](const std::string& name, bool is_dir) {
        std::string child = join(path, name);
        if (!is_dir) {
            if (file) file(child);
            return;
        }
        int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return;  // gone, or not a directory any more
        Fd sub(fd);
        struct stat st {};
        if (::fstat(fd, &st) < 0) return;
        if (st.st_dev != parent.st_dev) {
            auto sub_fsid = fsid_of(fd);
            if (!sub_fsid || !mark(fd, *sub_fsid)) {
                all = false;  // a filesystem inside that fanotify cannot cover
                return;
            }
        }
        all = cache_tree(fd, child, file, depth + 1) && all;
    });
    return all;
}

std::optional<std::string> FanotifyTree::dir_of(const FileHandle& h) {
    std::string key = handle_key(h);
    // Where it is now, as the kernel names it: a rename since it was cached is followed, a
    // symlink planted on its old path is not.
    if (auto m = mount_fds_.find(h.fsid); m != mount_fds_.end()) {
        if (auto fd = open_by_handle(m->second, h, O_PATH)) {
            std::string p = fd_path(*fd);
            if (!p.empty() && p[0] == '/' && !p.ends_with(" (deleted)")) {
                remember(key, p);
                return p;
            }
        }
    }
    if (auto it = dirs_.find(key); it != dirs_.end()) return it->second;  // removed since
    return std::nullopt;
}

const FileHandle* FanotifyTree::record(const FanotifyEvent& e, std::uint8_t type) {
    for (const FileHandle& x : e.handles)
        if (x.info_type == type) return &x;
    return nullptr;
}

std::optional<std::string> FanotifyTree::path_of(const FileHandle& h, bool* unresolved) {
    if (h.name.empty() || h.name == ".") return std::nullopt;
    auto dir = dir_of(h);
    if (!dir) {
        if (unresolved) *unresolved = true;
        return std::nullopt;
    }
    return join(*dir, h.name);
}

Result<Fd> FanotifyTree::open_entry(const FileHandle& h, int flags) {
    auto m = mount_fds_.find(h.fsid);
    if (m == mount_fds_.end()) return fail(Error("open_by_handle_at", ESTALE, h.name));
    BUTTER_ASSIGN_OR_RETURN(Fd dir, open_by_handle(m->second, h, O_PATH | O_DIRECTORY));
    int fd = ::openat(dir.get(), h.name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("openat", h.name);
    return Fd(fd);
}

bool FanotifyTree::foreign(pid_t pid, std::optional<std::uint64_t> pid_ns) {
    if (pid == ::getpid()) return true;  // butter's own files: outputs, the report
    if (!pid_ns) return false;
    auto ns = namespace_id(pid, Namespace::Pid);
    return ns && *ns != *pid_ns;
}

}  // namespace butter::launcher
