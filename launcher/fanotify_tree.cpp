#include "fanotify_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

#include <butter/namespace.hpp>

namespace butter::launcher {

namespace {

constexpr int kMaxDepth = 64;

std::optional<std::uint64_t> fsid_of(const std::string& path) {
    struct statfs st {};
    if (::statfs(path.c_str(), &st) < 0) return std::nullopt;
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

}  // namespace

bool path_within(const std::string& path, const std::string& root) {
    if (path == root) return true;
    return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
           (root == "/" || path[root.size()] == '/');
}

void list_dir(const std::string& dir, std::vector<std::string>& subdirs,
              std::vector<std::string>* files) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        if (e->d_type == DT_DIR)
            subdirs.push_back(dir + "/" + n);
        else if (files)
            files->push_back(dir + "/" + n);
    }
    ::closedir(d);
}

Result<FanotifyTree> FanotifyTree::create(FanotifyMasks mask) {
    BUTTER_ASSIGN_OR_RETURN(Fanotify fan,
                            Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock));
    return FanotifyTree(std::move(fan), mask);
}

bool FanotifyTree::mark(const std::string& dir, std::uint64_t fsid) {
    if (mount_fds_.count(fsid)) return true;
    auto fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd || !fan_.add_mark(dir, mask_, FanotifyMarkType::Filesystem)) return false;
    mount_fds_.emplace(fsid, std::move(*fd));
    return true;
}

Result<std::string> FanotifyTree::add(const std::string& dir) {
    char real[PATH_MAX];
    if (!::realpath(dir.c_str(), real)) return fail_errno("realpath", dir);
    auto fsid = fsid_of(real);
    if (!fsid) return fail_errno("statfs", real);
    if (!mount_fds_.count(*fsid)) {
        BUTTER_ASSIGN_OR_RETURN(Fd fd, open(real, O_RDONLY | O_DIRECTORY));
        BUTTER_TRY(fan_.add_mark(real, mask_, FanotifyMarkType::Filesystem));
        mount_fds_.emplace(*fsid, std::move(fd));
    }
    return std::string(real);
}

void FanotifyTree::cache(const std::string& dir) {
    if (dirs_.size() >= kMaxCached) return;  // the rest resolves when its events come
    auto fsid = fsid_of(dir);
    if (!fsid) return;
    if (auto h = name_to_handle(AT_FDCWD, dir.c_str(), *fsid)) dirs_[handle_key(*h)] = dir;
}

bool FanotifyTree::cache_tree(const std::string& dir, int depth) {
    if (dirs_.size() >= kMaxCached || depth > kMaxDepth) return true;
    cache(dir);
    struct stat parent {};
    if (::stat(dir.c_str(), &parent) < 0) return true;
    std::vector<std::string> subdirs;
    list_dir(dir, subdirs);
    bool all = true;
    for (const std::string& s : subdirs) {
        struct stat st {};
        if (::lstat(s.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        if (st.st_dev != parent.st_dev) {
            auto fsid = fsid_of(s);
            if (!fsid || !mark(s, *fsid)) {
                all = false;  // a filesystem inside that fanotify cannot cover
                continue;
            }
        }
        all = cache_tree(s, depth + 1) && all;
    }
    return all;
}

std::optional<std::string> FanotifyTree::dir_of(const FileHandle& h) {
    std::string key = handle_key(h);
    if (auto it = dirs_.find(key); it != dirs_.end()) return it->second;
    auto m = mount_fds_.find(h.fsid);
    if (m == mount_fds_.end()) return std::nullopt;
    auto fd = open_by_handle(m->second, h, O_PATH);
    if (!fd) return std::nullopt;
    std::string p = fd_path(*fd);
    if (p.empty() || p[0] != '/' || p.ends_with(" (deleted)")) return std::nullopt;
    if (dirs_.size() < kMaxCached) dirs_[key] = p;
    return p;
}

std::optional<std::string> FanotifyTree::path_of(const FanotifyEvent& e, bool* unresolved) {
    const FileHandle* h = nullptr;
    for (const FileHandle& x : e.handles)
        if (x.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) h = &x;
    if (!h || h->name.empty() || h->name == ".") return std::nullopt;
    auto dir = dir_of(*h);
    if (!dir) {
        if (unresolved) *unresolved = true;
        return std::nullopt;
    }
    return (*dir == "/" ? "" : *dir) + "/" + h->name;
}

bool FanotifyTree::foreign(pid_t pid, std::optional<std::uint64_t> pid_ns) {
    if (pid == ::getpid()) return true;  // butter's own files: outputs, the report
    if (!pid_ns) return false;
    auto ns = namespace_id(pid, Namespace::Pid);
    return ns && *ns != *pid_ns;
}

}  // namespace butter::launcher
