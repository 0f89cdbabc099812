#include "supervise/activity.hpp"

#include <fcntl.h>
#include <linux/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butter/mount.hpp>

#include "plan/host_path.hpp"

namespace butter::launcher {

namespace {
using M = InotifyMask;
// Through /proc/self/fd/N: that magic link must be followed (no DontFollow), onto the very
// directory the descriptor holds.
const InotifyMasks kInotifyMask = M::Create | M::CloseWrite | M::Modify | M::Delete | M::MovedFrom |
                                  M::MovedTo | M::OnlyDir | M::ExclUnlink;
using F = FanotifyMask;
const FanotifyMasks kFanotifyMask =
    F::Create | F::Delete | F::Rename | F::Modify | F::CloseWrite | F::OnDir;
// Pending moves (inotify: a MovedFrom waiting for its MovedTo).
constexpr std::size_t kMaxMoves = 1024;

std::string join(const std::string& dir, const std::string& name) {
    return (dir == "/" ? "" : dir) + "/" + name;
}

}  // namespace

Result<FileActivity> FileActivity::create(const std::vector<Root>& roots, bool fanotify) {
    if (fanotify)
        if (auto a = with_fanotify(roots)) return a;
    return with_inotify(roots);
}

Result<FileActivity> FileActivity::with_inotify(const std::vector<Root>& roots) {
    BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
    FileActivity a;
    a.inotify_.emplace(std::move(in));
    for (const Root& r : roots) {
        // What was planned, or nothing (host_path.hpp): never what a name leads to now.
        BUTTER_ASSIGN_OR_RETURN(Fd fd,
                                reopen_host_path(r.path, r.dev, r.ino, O_PATH | O_DIRECTORY));
        a.roots_.emplace_back(r.path, std::move(fd));
        a.watch_dir(a.roots_.back().second.get(), -1, "", a.roots_.size() - 1, 0, false);
    }
    return a;
}

Result<FileActivity> FileActivity::with_fanotify(const std::vector<Root>& roots) {
    BUTTER_ASSIGN_OR_RETURN(FanotifyTree tree, FanotifyTree::create(kFanotifyMask));
    FileActivity a;
    a.fanotify_.emplace(std::move(tree));
    for (const Root& r : roots) {
        BUTTER_ASSIGN_OR_RETURN(Fd fd,
                                reopen_host_path(r.path, r.dev, r.ino, O_PATH | O_DIRECTORY));
        BUTTER_TRY(a.fanotify_->add(fd.get(), r.path));
        if (!a.fanotify_->cache_tree(fd.get(), r.path)) a.truncated_ = true;
        a.roots_.emplace_back(r.path, std::move(fd));
    }
    return a;
}

// --- inotify ----------------------------------------------------------------------------------

void FileActivity::watch_dir(int dir, int parent, const std::string& name, std::size_t root,
                             int depth, bool fresh) {
    if (depth > kMaxDepth || nodes_.size() >= kMaxWatches) {
        truncated_ = true;
        return;
    }
    auto wd = inotify_->add_watch("/proc/self/fd/" + std::to_string(dir), kInotifyMask);
    if (!wd) return;                // gone already, or not a directory
    if (nodes_.count(*wd)) return;  // watched already (under another name: a race with a move)
    nodes_[*wd] = {parent, name, root, depth};
    if (parent >= 0) children_[{parent, name}] = *wd;
    std::string here = fresh ? path_of(*wd).value_or("") : "";
    for_each_entry(dir, [&](const std::string& n, bool is_dir) {
        if (!is_dir) {
            if (fresh && !here.empty()) record(join(here, n), Change::Create);
            return;
        }
        int fd = ::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return;
        Fd sub(fd);
        watch_dir(fd, *wd, n, root, depth + 1, fresh);
    });
}

std::optional<std::string> FileActivity::rel_of(int wd) const {
    std::vector<const std::string*> names;
    for (int i = 0; i <= kMaxDepth + 1; ++i) {
        auto it = nodes_.find(wd);
        if (it == nodes_.end()) return std::nullopt;
        if (it->second.parent < 0) {
            std::string rel;
            for (auto n = names.rbegin(); n != names.rend(); ++n)
                rel += (rel.empty() ? "" : "/") + **n;
            return rel;
        }
        names.push_back(&it->second.name);
        wd = it->second.parent;
    }
    return std::nullopt;
}

std::size_t FileActivity::root_of(int wd) const {
    for (int i = 0; i <= kMaxDepth + 1; ++i) {
        auto it = nodes_.find(wd);
        if (it == nodes_.end()) break;
        if (it->second.parent < 0) return it->second.root;
        wd = it->second.parent;
    }
    return 0;
}

std::optional<std::string> FileActivity::path_of(int wd) const {
    auto rel = rel_of(wd);
    if (!rel) return std::nullopt;
    const std::string& root = roots_[root_of(wd)].first;
    return rel->empty() ? root : join(root, *rel);
}

Result<Fd> FileActivity::open_beneath(int wd, const std::string& name) const {
    auto rel = rel_of(wd);
    if (!rel) return fail(Error("openat2", ENOENT, name));
    std::string path = rel->empty() ? name : *rel + "/" + name;
    return open_in_root(roots_[root_of(wd)].second, path.c_str(), O_RDONLY | O_DIRECTORY, true);
}

std::optional<int> FileActivity::child(int parent, const std::string& name) const {
    auto it = children_.find({parent, name});
    if (it == children_.end()) return std::nullopt;
    return it->second;
}

void FileActivity::forget_tree(int wd) {
    std::vector<int> todo{wd};
    while (!todo.empty()) {
        int w = todo.back();
        todo.pop_back();
        for (auto it = children_.lower_bound({w, ""});
             it != children_.end() && it->first.first == w; it = children_.erase(it))
            todo.push_back(it->second);
        (void)inotify_->remove_watch(w);
        nodes_.erase(w);
    }
}

void FileActivity::on_inotify(const InotifyEvent& e) {
    if (e.is_overflow()) {
        truncated_ = true;
        return;
    }
    if (e.has(M::Ignored)) {
        if (auto it = nodes_.find(e.wd); it != nodes_.end()) {
            children_.erase({it->second.parent, it->second.name});
            nodes_.erase(it);
        }
        return;
    }
    if (e.name.empty()) return;  // events on the watched directory itself
    auto here = path_of(e.wd);
    if (!here) return;
    std::string path = join(*here, e.name);
    if (e.is_dir()) {
        if (e.has(M::MovedFrom)) {
            if (moves_.size() < kMaxMoves)
                moves_[e.cookie] = {e.wd, e.name};
            else
                truncated_ = true;
            return;
        }
        bool moved_in = false;
        if (e.has(M::MovedTo)) {
            auto m = moves_.find(e.cookie);
            if (m != moves_.end()) {
                // A rename within the binds: the watched tree moves along, nothing is re-read.
                auto [from_wd, from_name] = m->second;
                moves_.erase(m);
                auto from_dir = path_of(from_wd);
                if (auto c = child(from_wd, from_name)) {
                    children_.erase({from_wd, from_name});
                    Node& n = nodes_[*c];
                    n.parent = e.wd;
                    n.name = e.name;
                    children_[{e.wd, e.name}] = *c;
                }
                moved_dir(from_dir ? std::optional(join(*from_dir, from_name)) : std::nullopt,
                          path);
                return;
            }
            moved_in = true;  // from outside the binds: what it holds is new here
            moved_dir(std::nullopt, path);
        }
        if (e.has(M::Create) || moved_in) {
            auto fd = open_beneath(e.wd, e.name);
            if (fd) {
                auto parent = nodes_.find(e.wd);
                watch_dir(fd->get(), e.wd, e.name, root_of(e.wd),
                          parent == nodes_.end() ? 0 : parent->second.depth + 1, true);
            } else if (fd.error().errno_value() != ENOENT) {
                truncated_ = true;  // a symlink swapped in on the way: not followed, not seen
            }
        }
        // A removed directory: its files went one by one, its watch says IN_IGNORED; one that
        // came during the run (by a move) and went again leaves no entry.
        if (e.has(M::Delete)) record(path + "/", Change::Delete);
        return;
    }
    if (e.has(M::Create | M::MovedTo))
        record(path, Change::Create);
    else if (e.has(M::CloseWrite | M::Modify))
        record(path, Change::Write);
    else if (e.has(M::Delete | M::MovedFrom))
        record(path, Change::Delete);
}

void FileActivity::settle_moves() {
    // Every event the queue held has been read: a MovedFrom without its MovedTo left the binds.
    for (const auto& [cookie, from] : moves_) {
        auto dir = path_of(from.first);
        if (auto c = child(from.first, from.second)) forget_tree(*c);
        if (dir) moved_dir(join(*dir, from.second), std::nullopt);
    }
    moves_.clear();
}

// --- fanotify ---------------------------------------------------------------------------------

bool FileActivity::under_roots(const std::string& path) const {
    for (const auto& r : roots_)
        if (path != r.first && path_within(path, r.first)) return true;
    return false;
}

void FileActivity::fresh_tree(const FileHandle& at) {
    auto path = fanotify_->path_of(at);
    auto fd = fanotify_->open_entry(at, O_RDONLY | O_DIRECTORY);
    if (!path || !fd) return;  // gone again, or a symlink: nothing of ours to walk
    bool all = fanotify_->cache_tree(fd->get(), *path,
                                     [&](const std::string& f) { record(f, Change::Create); });
    if (!all) truncated_ = true;
}

void FileActivity::on_fanotify(const FanotifyEvent& e) {
    if (e.is_overflow()) {
        truncated_ = true;
        return;
    }
    if (FanotifyTree::foreign(e.pid, pid_ns_)) return;
    bool unresolved = false;
    auto within = [&](const FileHandle* h) -> std::optional<std::string> {
        if (!h) return std::nullopt;
        auto p = fanotify_->path_of(*h, &unresolved);
        if (p && under_roots(*p)) return p;
        return std::nullopt;
    };
    if (e.mask.any(F::Rename)) {
        const FileHandle* to = FanotifyTree::record(e, FAN_EVENT_INFO_TYPE_NEW_DFID_NAME);
        auto old_path = within(FanotifyTree::record(e, FAN_EVENT_INFO_TYPE_OLD_DFID_NAME));
        auto new_path = within(to);
        if (unresolved) truncated_ = true;
        if (e.is_dir()) {
            moved_dir(old_path, new_path);
            if (new_path && !old_path) fresh_tree(*to);  // from outside: what it holds is new
        } else {
            if (old_path) record(*old_path, Change::Delete);
            if (new_path) record(*new_path, Change::Create);
        }
        return;
    }
    const FileHandle* h = FanotifyTree::record(e, FAN_EVENT_INFO_TYPE_DFID_NAME);
    auto p = within(h);
    if (unresolved) truncated_ = true;  // a directory that went before it could be resolved
    if (!p) return;
    const std::string& path = *p;
    bool created = e.mask.any(F::Create);
    bool written = e.mask.any(F::Modify | F::CloseWrite);
    bool gone = e.mask.any(F::Delete);
    if (e.is_dir()) {
        if (created && !gone) fresh_tree(*h);
        if (gone && !created) record(path + "/", Change::Delete);
        return;
    }
    // The queue merges the events of one name: a create and a delete in one event happened
    // in the order that leaves what is there now.
    if (created && gone) {
        if (fanotify_->open_entry(*h, O_PATH)) {
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

// --- both -------------------------------------------------------------------------------------

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
            if (!evs || evs->empty()) break;
            for (const InotifyEvent& e : *evs)
                on_inotify(e);
        }
    }
    settle_moves();
}

void FileActivity::moved_dir(const std::optional<std::string>& from,
                             const std::optional<std::string>& to) {
    if (from) {
        // What was recorded below it moves with it, or leaves the binds with it.
        std::string prefix = *from + "/";
        std::vector<std::pair<std::string, State>> moved;
        auto it = files_.lower_bound(prefix);
        if (it != files_.end() && it->first == prefix) ++it;  // the directory's own entry
        while (it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0) {
            if (to) moved.emplace_back(*to + "/" + it->first.substr(prefix.size()), it->second);
            path_bytes_ -= it->first.size();
            it = files_.erase(it);
        }
        for (auto& [p, s] : moved)
            if (auto at = add(p)) (*at)->second = s;
        record(prefix, Change::Delete);
    }
    if (to) record(*to + "/", Change::Create);
}

std::optional<std::map<std::string, FileActivity::State>::iterator> FileActivity::add(
    const std::string& path) {
    auto it = files_.find(path);
    if (it != files_.end()) return it;
    // The report's bounds: butter's memory is not the sandbox's to fill.
    if (files_.size() >= kMaxEntries || path_bytes_ + path.size() > kMaxPathBytes) {
        truncated_ = true;
        return std::nullopt;
    }
    path_bytes_ += path.size();
    return files_.emplace(path, State::Created).first;
}

void FileActivity::record(const std::string& path, Change c) {
    auto it = files_.find(path);
    switch (c) {
        case Change::Create:
            // Re-created after a delete: a modification of what was there before the run.
            if (it != files_.end() && it->second == State::Deleted)
                it->second = State::Modified;
            else if (it == files_.end())
                (void)add(path);
            break;
        case Change::Write:
            if (it == files_.end())
                if (auto at = add(path)) (*at)->second = State::Modified;
            break;
        case Change::Delete:
            if (it != files_.end() && it->second == State::Created) {
                path_bytes_ -= it->first.size();
                files_.erase(it);  // came and went
            } else if (it != files_.end()) {
                it->second = State::Deleted;
            } else if (auto at = add(path)) {
                (*at)->second = State::Deleted;
            }
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
