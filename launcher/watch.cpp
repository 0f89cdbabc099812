#include "watch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

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

Result<Watcher> Watcher::create(const std::vector<std::string>& paths,
                                std::chrono::nanoseconds debounce, bool fanotify) {
    BUTTER_ASSIGN_OR_RETURN(TimerFd t,
                            TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
    Watcher w(std::move(t), debounce);
    if (fanotify) {
        BUTTER_ASSIGN_OR_RETURN(FanotifyTree tree, FanotifyTree::create(kFanotifyChange));
        w.fanotify_.emplace(std::move(tree));
        for (const std::string& p : paths) {
            struct stat st {};
            if (::stat(p.c_str(), &st) < 0) return fail_errno("stat", p);
            bool dir = S_ISDIR(st.st_mode);
            auto slash = p.rfind('/');
            std::string at = dir ? p : slash == 0 ? "/" : p.substr(0, slash);
            BUTTER_ASSIGN_OR_RETURN(std::string real, w.fanotify_->add(at));
            if (dir) {
                (void)w.fanotify_->cache_tree(real);
                w.targets_.push_back({real, true});
            } else {
                w.fanotify_->cache(real);
                w.targets_.push_back({(real == "/" ? "" : real) + p.substr(slash), false});
            }
        }
        return w;
    }
    BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
    w.inotify_.emplace(std::move(in));
    for (const std::string& p : paths) {
        struct stat st {};
        if (::stat(p.c_str(), &st) < 0) return fail_errno("stat", p);
        if (S_ISDIR(st.st_mode)) {
            BUTTER_ASSIGN_OR_RETURN(int wd, w.inotify_->add_watch(p, kChange | M::OnlyDir));
            w.names_[wd].push_back("");
        } else {
            auto slash = p.rfind('/');
            std::string dir = slash == 0 ? "/" : p.substr(0, slash);
            BUTTER_ASSIGN_OR_RETURN(int wd, w.inotify_->add_watch(dir, kChange | M::OnlyDir));
            w.names_[wd].push_back(p.substr(slash + 1));
        }
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
            auto it = names_.find(e.wd);
            if (it == names_.end() && !e.is_overflow()) continue;
            bool wanted = e.is_overflow() || std::any_of(it->second.begin(), it->second.end(),
                                                         [&](const std::string& n) {
                                                             return n.empty() || n == e.name;
                                                         });
            if (wanted) changed(e.is_overflow() ? "(many changes)" : e.path());
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
            auto path = fanotify_->path_of(e);
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
