#include "supervise/watch.hpp"

#include <fcntl.h>
#include <linux/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "plan/host_path.hpp"

namespace butter::launcher {

namespace {
using M = InotifyMask;
// What counts as a change: content written, renamed in or out, created, deleted, chmod/chown.
const InotifyMasks kChange = M::CloseWrite | M::MovedTo | M::MovedFrom | M::Create | M::Delete |
                             M::Attrib | M::DeleteSelf | M::MoveSelf;
using F = FanotifyMask;
const FanotifyMasks kFanotifyChange =
    F::CloseWrite | F::MovedTo | F::MovedFrom | F::Create | F::Delete | F::Attrib | F::OnDir;
}  // namespace

Result<Watcher> Watcher::create(const std::vector<SandboxPlan::WatchPath>& paths,
                                std::chrono::nanoseconds debounce, bool fanotify) {
    BUTTER_ASSIGN_OR_RETURN(TimerFd t,
                            TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
    Watcher w(std::move(t), debounce);
    if (fanotify) {
        BUTTER_ASSIGN_OR_RETURN(FanotifyTree tree, FanotifyTree::create(kFanotifyChange));
        w.fanotify_.emplace(std::move(tree));
    } else {
        BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
        w.inotify_.emplace(std::move(in));
    }
    for (const SandboxPlan::WatchPath& p : paths) {
        // What was planned, opened again without following anything (host_path.hpp).
        BUTTER_ASSIGN_OR_RETURN(Fd self, reopen_host_path(p.path, p.dev, p.ino));
        struct stat st {};
        if (::fstat(self.get(), &st) < 0) return fail_errno("fstat", p.path);
        bool dir = S_ISDIR(st.st_mode);
        auto slash = p.path.rfind('/');
        std::string parent = slash == 0 ? "/" : p.path.substr(0, slash);
        std::string name = p.path.substr(slash + 1);
        // A file is watched through its directory: that one is opened as planned too (the
        // planned path holds no symlink).
        Fd at;
        if (dir) {
            at = std::move(self);
        } else {
            BUTTER_ASSIGN_OR_RETURN(HostPath d, resolve_host_path(parent));
            at = std::move(d.fd);
        }
        std::string via = "/proc/self/fd/" + std::to_string(at.get());
        if (w.fanotify_) {
            std::string dir_path = dir ? p.path : parent;
            BUTTER_TRY(w.fanotify_->add(at.get(), dir_path));
            if (dir) {
                (void)w.fanotify_->cache_tree(at.get(), p.path);
                w.targets_.push_back({p.path, true});
            } else {
                w.fanotify_->cache_dir(at.get(), parent);
                w.targets_.push_back({p.path, false});
            }
            continue;
        }
        BUTTER_ASSIGN_OR_RETURN(int wd, w.inotify_->add_watch(via, kChange | M::OnlyDir));
        Watched& watched = w.watched_[wd];
        watched.dir = dir ? p.path : parent;
        watched.names.push_back(dir ? "" : name);
    }
    return w;
}

Result<void> Watcher::start(EventLoop& loop, Callback on_change) {
    callback_ = std::move(on_change);
    int fd = fanotify_ ? fanotify_->group().fd() : inotify_->fd();
    BUTTER_ASSIGN_OR_RETURN(in_reg_, loop.add(fd, IoEvent::In, [this](IoEvents) {
        if (fanotify_)
            on_fanotify();
        else
            on_events();
    }));
    BUTTER_ASSIGN_OR_RETURN(timer_reg_,
                            loop.add(timer_.fd(), IoEvent::In, [this](IoEvents) { on_timer(); }));
    return {};
}

void Watcher::on_events() {
    for (;;) {
        auto evs = inotify_->read_events();
        if (!evs || evs->empty()) return;
        for (const InotifyEvent& e : *evs) {
            if (e.is_overflow()) {
                changed("(many changes)");
                continue;
            }
            auto it = watched_.find(e.wd);
            if (it == watched_.end()) continue;
            const std::vector<std::string>& names = it->second.names;
            bool wanted = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
                return n.empty() || n == e.name;
            });
            const std::string& dir = it->second.dir;
            if (wanted) changed(e.name.empty() ? dir : (dir == "/" ? "" : dir) + "/" + e.name);
        }
    }
}

void Watcher::on_fanotify() {
    for (;;) {
        auto evs = fanotify_->group().read_events();
        if (!evs || evs->empty()) return;
        for (const FanotifyEvent& e : *evs) {
            if (e.is_overflow()) {
                changed("(many changes)");
                continue;
            }
            // The sandbox's own writes and butter's are no changes; everyone else's are.
            if (e.pid == ::getpid() || (pid_ns_ && !FanotifyTree::foreign(e.pid, pid_ns_)))
                continue;
            const FileHandle* h = FanotifyTree::record(e, FAN_EVENT_INFO_TYPE_DFID_NAME);
            auto path = h ? fanotify_->path_of(*h) : std::nullopt;
            if (!path) continue;
            bool wanted = std::any_of(targets_.begin(), targets_.end(), [&](const Target& t) {
                return t.tree ? path_within(*path, t.path) : *path == t.path;
            });
            if (wanted) changed(*path);
        }
    }
}

void Watcher::changed(const std::string& path) {
    if (count_++ == 0) {
        first_ = path;
        (void)timer_.set_relative(debounce_);
    }
}

void Watcher::on_timer() {
    (void)timer_.read_event();
    if (count_ == 0) return;
    std::string path = std::move(first_);
    unsigned n = count_;
    count_ = 0;
    callback_(path, n);
}

}  // namespace butter::launcher
