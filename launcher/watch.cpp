#include "watch.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace butter::launcher {

namespace {
using M = InotifyMask;
// What counts as a change: content written, renamed in or out, created, deleted, chmod/chown.
const InotifyMasks kChange = M::CloseWrite | M::MovedTo | M::MovedFrom | M::Create | M::Delete |
                             M::Attrib | M::DeleteSelf | M::MoveSelf;
}  // namespace

Result<Watcher> Watcher::create(const std::vector<std::string>& paths,
                                std::chrono::nanoseconds debounce) {
    BUTTER_ASSIGN_OR_RETURN(Inotify in, Inotify::create(InotifyFlag::NonBlock));
    BUTTER_ASSIGN_OR_RETURN(TimerFd t,
                            TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock));
    Watcher w(std::move(in), std::move(t), debounce);
    for (const std::string& p : paths) {
        struct stat st {};
        if (::stat(p.c_str(), &st) < 0) return fail_errno("stat", p);
        if (S_ISDIR(st.st_mode)) {
            BUTTER_ASSIGN_OR_RETURN(int wd, w.inotify_.add_watch(p, kChange | M::OnlyDir));
            w.names_[wd].push_back("");
        } else {
            auto slash = p.rfind('/');
            std::string dir = slash == 0 ? "/" : p.substr(0, slash);
            BUTTER_ASSIGN_OR_RETURN(int wd, w.inotify_.add_watch(dir, kChange | M::OnlyDir));
            w.names_[wd].push_back(p.substr(slash + 1));
        }
    }
    return w;
}

Result<void> Watcher::start(EventLoop& loop, Callback on_change) {
    callback_ = std::move(on_change);
    BUTTER_ASSIGN_OR_RETURN(
        in_reg_, loop.add(inotify_.fd(), IoEvent::In, [this](IoEvents) { on_events(); }));
    BUTTER_ASSIGN_OR_RETURN(timer_reg_,
                            loop.add(timer_.fd(), IoEvent::In, [this](IoEvents) { on_timer(); }));
    return {};
}

void Watcher::on_events() {
    for (;;) {
        auto evs = inotify_.read_events();
        if (!evs || evs->empty()) return;
        for (const InotifyEvent& e : *evs) {
            auto it = names_.find(e.wd);
            if (it == names_.end() && !e.is_overflow()) continue;
            bool wanted = e.is_overflow() || std::any_of(it->second.begin(), it->second.end(),
                                                         [&](const std::string& n) {
                                                             return n.empty() || n == e.name;
                                                         });
            if (!wanted) continue;
            if (count_++ == 0) {
                first_ = e.is_overflow() ? "(many changes)" : e.path();
                (void)timer_.set_relative(debounce_);
            }
        }
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
