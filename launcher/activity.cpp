#include "activity.hpp"

#include <dirent.h>
#include <sys/stat.h>

namespace butter::launcher {

namespace {
using M = InotifyMask;
const InotifyMasks kMask = M::Create | M::CloseWrite | M::Modify | M::Delete | M::MovedFrom |
                           M::MovedTo | M::OnlyDir | M::DontFollow | M::ExclUnlink;
}  // namespace

Result<FileActivity> FileActivity::create(const std::vector<std::string>& roots) {
    BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
    FileActivity a(std::move(in));
    for (const std::string& r : roots)
        a.watch_tree(r, false);
    return a;
}

void FileActivity::watch_tree(const std::string& dir, bool fresh) {
    if (inotify_.watch_count() >= kMaxWatches) {
        truncated_ = true;
        return;
    }
    if (!inotify_.add_watch(dir, kMask)) return;  // gone already, or not a directory
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        if (e->d_type == DT_DIR)
            subdirs.push_back(dir + "/" + n);
        else if (fresh)
            files_.emplace(dir + "/" + n, State::Created);
    }
    ::closedir(d);
    for (const std::string& s : subdirs)
        watch_tree(s, fresh);
}

Result<void> FileActivity::start(EventLoop& loop) {
    BUTTER_ASSIGN_OR_RETURN(reg_,
                            loop.add(inotify_.fd(), IoEvent::In, [this](IoEvents) { drain(); }));
    return {};
}

void FileActivity::drain() {
    for (;;) {
        auto evs = inotify_.read_events();
        if (!evs || evs->empty()) return;
        for (const InotifyEvent& e : *evs)
            on_event(e);
    }
}

void FileActivity::on_event(const InotifyEvent& e) {
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
    auto it = files_.find(path);
    if (e.has(M::Create | M::MovedTo)) {
        // Re-created after a delete: a modification of what was there before the run.
        if (it != files_.end() && it->second == State::Deleted)
            it->second = State::Modified;
        else if (it == files_.end())
            files_[path] = State::Created;
    } else if (e.has(M::CloseWrite | M::Modify)) {
        if (it == files_.end()) files_[path] = State::Modified;
    } else if (e.has(M::Delete | M::MovedFrom)) {
        if (it != files_.end() && it->second == State::Created)
            files_.erase(it);  // came and went
        else
            files_[path] = State::Deleted;
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
