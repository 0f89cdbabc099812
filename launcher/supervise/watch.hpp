// [watch]: host paths watched on the supervisor's loop. A file is watched through its
// directory (editors replace files by rename). With inotify (the default) a directory's own
// entries count; with fanotify (watch.backend, root; fanotify_tree.hpp) everything below it,
// and the writes of the sandbox itself and of butter do not (a sandbox writer already gone
// when its event is read cannot be told apart and counts). Changes are debounced: the first
// starts a timer, everything until it fires counts as one change.
//
// Each path is opened as planned (host_path.hpp: what it named then, or an error) and watched
// through that descriptor, so a symlink swapped in since is never followed; what an event
// names is the planned path, or (fanotify) a path resolved from the event's handle and checked
// to lie below it.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/inotify.hpp>
#include <butter/loop.hpp>
#include <butter/timerfd.hpp>

#include "plan/plan.hpp"
#include "supervise/fanotify_tree.hpp"

namespace butter::launcher {

class Watcher {
  public:
    // `on_change(path, count)`: the first changed path of a burst and how many changes it had.
    using Callback = std::function<void(const std::string&, unsigned)>;

    [[nodiscard]] static Result<Watcher> create(const std::vector<SandboxPlan::WatchPath>& paths,
                                                std::chrono::nanoseconds debounce,
                                                bool fanotify = false);
    // Movable until start(): the loop's callbacks hold `this` from then on.
    Watcher(Watcher&&) = default;
    Watcher& operator=(Watcher&&) = default;
    [[nodiscard]] Result<void> start(EventLoop& loop, Callback on_change);
    // fanotify: the sandbox whose own writes are no changes, after each spawn.
    void set_sandbox(std::optional<std::uint64_t> pid_ns) { pid_ns_ = pid_ns; }

  private:
    Watcher(TimerFd timer, std::chrono::nanoseconds debounce)
        : timer_(std::move(timer)), debounce_(debounce) {}
    void on_events();
    void on_fanotify();
    void changed(const std::string& path);
    void on_timer();

    std::optional<Inotify> inotify_;
    std::optional<FanotifyTree> fanotify_;
    struct Target {
        std::string path;  // resolved
        bool tree;         // a directory: anything below; else this one file
    };
    std::vector<Target> targets_;
    std::optional<std::uint64_t> pid_ns_;
    TimerFd timer_;
    std::chrono::nanoseconds debounce_;
    struct Watched {
        std::string dir;                 // the directory's planned path
        std::vector<std::string> names;  // watched names in it ("" = any)
    };
    std::map<int, Watched> watched_;  // inotify: wd -> what it stands for
    std::string first_;
    unsigned count_ = 0;
    Callback callback_;
    EventLoop::Registration in_reg_, timer_reg_;
};

}  // namespace butter::launcher
