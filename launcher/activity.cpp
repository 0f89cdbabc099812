#include "activity.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

#include <butter/namespace.hpp>

namespace butter::launcher {

namespace {
using M = InotifyMask;
const InotifyMasks kInotifyMask = M::Create | M::CloseWrite | M::Modify | M::Delete | M::MovedFrom |
                                  M::MovedTo | M::OnlyDir | M::DontFollow | M::ExclUnlink;
using F = FanotifyMask;
const FanotifyMasks kFanotifyMask =
    F::Create | F::Delete | F::MovedFrom | F::MovedTo | F::Modify | F::CloseWrite | F::OnDir;
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

// The subdirectories of `dir` (and with `files`, the other entries).
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

}  // namespace

Result<FileActivity> FileActivity::create(const std::vector<std::string>& roots, bool fanotify) {
    if (fanotify)
        if (auto a = with_fanotify(roots)) return a;
    return with_inotify(roots);
}

Result<FileActivity> FileActivity::with_inotify(const std::vector<std::string>& roots) {
    BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
    FileActivity a;
    a.inotify_.emplace(std::move(in));
    for (const std::string& r : roots)
        a.watch_tree(r, false);
    return a;
}

Result<FileActivity> FileActivity::with_fanotify(const std::vector<std::string>& roots) {
    BUTTER_ASSIGN_OR_RETURN(Fanotify fan,
                            Fanotify::create(kFanotifyReportDfidName | FanotifyInit::NonBlock));
    FileActivity a;
    a.fanotify_.emplace(std::move(fan));
    for (const std::string& r : roots) {
        char real[PATH_MAX];
        if (!::realpath(r.c_str(), real)) continue;  // gone: nothing of it to report
        a.roots_.push_back(real);
        auto fsid = fsid_of(real);
        if (!fsid) continue;
        if (!a.mount_fds_.count(*fsid)) {
            BUTTER_ASSIGN_OR_RETURN(Fd fd, open(real, O_RDONLY | O_DIRECTORY));
            // EINVAL or ENODEV: a filesystem that cannot report handles (inotify can).
            BUTTER_TRY(a.fanotify_->add_mark(real, kFanotifyMask, FanotifyMarkType::Filesystem));
            a.mount_fds_.emplace(*fsid, std::move(fd));
        }
        a.cache_tree(real, *fsid);
    }
    return a;
}

// Remembers the handle of each directory below `dir` (a filesystem mounted inside gets a mark
// of its own), so that events on a directory removed before they are read still resolve.
void FileActivity::cache_tree(const std::string& dir, std::uint64_t fsid) {
    if (dirs_.size() >= kMaxWatches) return;  // the rest resolves when its events come
    auto h = name_to_handle(AT_FDCWD, dir.c_str(), fsid);
    if (!h) return;
    dirs_[handle_key(*h)] = dir;
    std::vector<std::string> subdirs;
    list_dir(dir, subdirs, nullptr);
    struct stat parent {};
    if (::stat(dir.c_str(), &parent) < 0) return;
    for (const std::string& s : subdirs) {
        struct stat st {};
        if (::lstat(s.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        std::uint64_t sub = fsid;
        if (st.st_dev != parent.st_dev) {
            auto id = fsid_of(s);
            if (!id) continue;
            sub = *id;
            if (!mount_fds_.count(sub)) {
                auto fd = open(s.c_str(), O_RDONLY | O_DIRECTORY);
                if (!fd || !fanotify_->add_mark(s, kFanotifyMask, FanotifyMarkType::Filesystem)) {
                    truncated_ = true;  // a filesystem inside that fanotify cannot watch
                    continue;
                }
                mount_fds_.emplace(sub, std::move(*fd));
            }
        }
        cache_tree(s, sub);
    }
}

void FileActivity::watch_tree(const std::string& dir, bool fresh) {
    if (inotify_->watch_count() >= kMaxWatches) {
        truncated_ = true;
        return;
    }
    if (!inotify_->add_watch(dir, kInotifyMask)) return;  // gone already, or not a directory
    std::vector<std::string> subdirs, files;
    list_dir(dir, subdirs, fresh ? &files : nullptr);
    for (const std::string& f : files)
        files_.emplace(f, State::Created);
    for (const std::string& s : subdirs)
        watch_tree(s, fresh);
}

Result<void> FileActivity::start(EventLoop& loop) {
    int fd = fanotify_ ? fanotify_->fd() : inotify_->fd();
    BUTTER_ASSIGN_OR_RETURN(reg_, loop.add(fd, IoEvent::In, [this](IoEvents) { drain(); }));
    return {};
}

void FileActivity::drain() {
    for (;;) {
        if (fanotify_) {
            auto evs = fanotify_->read_events();
            if (!evs || evs->empty()) return;
            for (const FanotifyEvent& e : *evs)
                on_fanotify(e);
        } else {
            auto evs = inotify_->read_events();
            if (!evs || evs->empty()) return;
            for (const InotifyEvent& e : *evs)
                on_inotify(e);
        }
    }
}

void FileActivity::on_inotify(const InotifyEvent& e) {
    if (e.is_overflow()) {
        truncated_ = true;
        return;
    }
    if (e.name.empty()) return;  // events on the watched directory itself
    std::string path = e.path();
    if (e.is_dir()) {
        // A new directory: watch it (and whatever was made in it before the watch existed).
        if (e.has(M::Create | M::MovedTo)) watch_tree(path, true);
        return;
    }
    if (e.has(M::Create | M::MovedTo))
        record(path, Change::Create);
    else if (e.has(M::CloseWrite | M::Modify))
        record(path, Change::Write);
    else if (e.has(M::Delete | M::MovedFrom))
        record(path, Change::Delete);
}

bool FileActivity::from_sandbox(pid_t pid) const {
    if (pid == ::getpid()) return false;  // butter's own files: outputs, the report
    if (!pid_ns_) return true;
    auto ns = namespace_id(pid, Namespace::Pid);
    return !ns || *ns == *pid_ns_;  // gone by now: it cannot be told apart, so it counts
}

bool FileActivity::under_roots(const std::string& path) const {
    for (const std::string& r : roots_)
        if (path.size() > r.size() && path.compare(0, r.size(), r) == 0 &&
            (r == "/" || path[r.size()] == '/'))
            return true;
    return false;
}

std::optional<std::string> FileActivity::dir_of(const FileHandle& h) {
    std::string key = handle_key(h);
    if (auto it = dirs_.find(key); it != dirs_.end()) return it->second;
    auto m = mount_fds_.find(h.fsid);
    if (m == mount_fds_.end()) return std::nullopt;
    auto fd = open_by_handle(m->second, h, O_PATH);
    if (!fd) return std::nullopt;
    std::string p = fd_path(*fd);
    if (p.empty() || p[0] != '/' || p.ends_with(" (deleted)")) return std::nullopt;
    dirs_[key] = p;
    return p;
}

void FileActivity::fresh_tree(const std::string& dir, int depth) {
    if (depth > kMaxDepth) return;
    if (auto fsid = fsid_of(dir); fsid && dirs_.size() < kMaxWatches)
        if (auto h = name_to_handle(AT_FDCWD, dir.c_str(), *fsid)) dirs_[handle_key(*h)] = dir;
    std::vector<std::string> subdirs, files;
    list_dir(dir, subdirs, &files);
    for (const std::string& f : files)
        record(f, Change::Create);
    for (const std::string& s : subdirs)
        fresh_tree(s, depth + 1);
}

void FileActivity::on_fanotify(const FanotifyEvent& e) {
    if (e.is_overflow()) {
        truncated_ = true;
        return;
    }
    if (!from_sandbox(e.pid)) return;
    const FileHandle* h = nullptr;
    for (const FileHandle& x : e.handles)
        if (x.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) h = &x;
    if (!h || h->name.empty() || h->name == ".") return;
    auto dir = dir_of(*h);
    if (!dir) {
        truncated_ = true;  // a directory that went before its handle could be resolved
        return;
    }
    std::string path = (*dir == "/" ? "" : *dir) + "/" + h->name;
    if (!under_roots(path)) return;
    bool created = e.mask.any(F::Create | F::MovedTo);
    bool written = e.mask.any(F::Modify | F::CloseWrite);
    bool gone = e.mask.any(F::Delete | F::MovedFrom);
    if (e.is_dir()) {
        if (created && !gone) fresh_tree(path);
        return;
    }
    // The queue merges the events of one name: a create and a delete in one event happened
    // in the order that leaves what is there now.
    if (created && gone) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            record(path, Change::Delete);
            record(path, Change::Create);
        } else {
            record(path, Change::Create);
            record(path, Change::Delete);
        }
        return;
    }
    if (created) record(path, Change::Create);
    if (written) record(path, Change::Write);
    if (gone) record(path, Change::Delete);
}

void FileActivity::record(const std::string& path, Change c) {
    auto it = files_.find(path);
    switch (c) {
        case Change::Create:
            // Re-created after a delete: a modification of what was there before the run.
            if (it != files_.end() && it->second == State::Deleted)
                it->second = State::Modified;
            else if (it == files_.end())
                files_[path] = State::Created;
            break;
        case Change::Write:
            if (it == files_.end()) files_[path] = State::Modified;
            break;
        case Change::Delete:
            if (it != files_.end() && it->second == State::Created)
                files_.erase(it);  // came and went
            else
                files_[path] = State::Deleted;
            break;
    }
}

std::vector<std::string> FileActivity::with(State s) const {
    std::vector<std::string> out;
    for (const auto& [p, st] : files_)
        if (st == s) out.push_back(p);
    return out;
}

std::vector<std::string> FileActivity::created() const {
    return with(State::Created);
}
std::vector<std::string> FileActivity::modified() const {
    return with(State::Modified);
}
std::vector<std::string> FileActivity::deleted() const {
    return with(State::Deleted);
}

}  // namespace butter::launcher
