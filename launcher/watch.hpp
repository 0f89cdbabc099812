// [watch]: host paths watched with inotify on the supervisor's loop. A file is watched through
// its directory (editors replace files by rename), a directory directly. Changes are
// debounced: the first starts a timer, everything until it fires counts as one change.
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

namespace butter::launcher {

class Watcher {
  public:
    // `on_change(path, count)`: the first changed path of a burst and how many changes it had.
    using Callback = std::function<void(const std::string&, unsigned)>;

    [[nodiscard]] static Result<Watcher> create(const std::vector<std::string>& paths,
                                                std::chrono::nanoseconds debounce);
    // Movable until start(): the loop's callbacks hold `this` from then on.
    Watcher(Watcher&&) = default;
    Watcher& operator=(Watcher&&) = default;
    [[nodiscard]] Result<void> start(EventLoop& loop, Callback on_change);

  private:
    Watcher(Inotify in, TimerFd timer, std::chrono::nanoseconds debounce)
        : inotify_(std::move(in)), timer_(std::move(timer)), debounce_(debounce) {}
    void on_events();
    void on_timer();

    Inotify inotify_;
    TimerFd timer_;
    std::chrono::nanoseconds debounce_;
    std::map<int, std::vector<std::string>> names_;  // wd -> watched names ("" = any)
    std::string first_;
    unsigned count_ = 0;
    Callback callback_;
    EventLoop::Registration in_reg_, timer_reg_;
};

}  // namespace butter::launcher
