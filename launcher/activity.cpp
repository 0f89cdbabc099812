#include "activity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace butter::launcher {

namespace {
using M = InotifyMask;
const InotifyMasks kInotifyMask = M::Create | M::CloseWrite | M::Modify | M::Delete | M::MovedFrom |
                                  M::MovedTo | M::OnlyDir | M::DontFollow | M::ExclUnlink;
using F = FanotifyMask;
const FanotifyMasks kFanotifyMask =
    F::Create | F::Delete | F::MovedFrom | F::MovedTo | F::Modify | F::CloseWrite | F::OnDir;
constexpr int kMaxDepth = 64;

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
    BUTTER_ASSIGN_OR_RETURN(FanotifyTree tree, FanotifyTree::create(kFanotifyMask));
    FileActivity a;
    a.fanotify_.emplace(std::move(tree));
    for (const std::string& r : roots) {
        BUTTER_ASSIGN_OR_RETURN(std::string real, a.fanotify_->add(r));
        if (!a.fanotify_->cache_tree(real)) a.truncated_ = true;
        a.roots_.push_back(std::move(real));
    }
    return a;
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
    int fd = fanotify_ ? fanotify_->group().fd() : inotify_->fd();
    BUTTER_ASSIGN_OR_RETURN(reg_, loop.add(fd, IoEvent::In, [this](IoEvents) { drain(); }));
    return {};
}

void FileActivity::drain() {
    for (;;) {
        if (fanotify_) {
            auto evs = fanotify_->group().read_events();
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

bool FileActivity::under_roots(const std::string& path) const {
    for (const std::string& r : roots_)
        if (path != r && path_within(path, r)) return true;
    return false;
}

void FileActivity::fresh_tree(const std::string& dir, int depth) {
    if (depth > kMaxDepth) return;
    fanotify_->cache(dir);
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
    if (FanotifyTree::foreign(e.pid, pid_ns_)) return;
    bool unresolved = false;
    auto p = fanotify_->path_of(e, &unresolved);
    if (unresolved) truncated_ = true;  // a directory that went before it could be resolved
    if (!p || !under_roots(*p)) return;
    const std::string& path = *p;
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
