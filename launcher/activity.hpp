// report.file_activity: the files the sandbox created, modified and deleted in its writable
// binds (the only places its writes reach the host), from recursive inotify watches on the
// bind sources. New directories are watched as they appear. A file created and then deleted
// in the run is not listed; one created and then written is "created".
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/inotify.hpp>
#include <butter/loop.hpp>

namespace butter::launcher {

class FileActivity {
  public:
    static constexpr std::size_t kMaxWatches = 16384;

    // Watches every directory below each root (up to kMaxWatches; `truncated()` says so).
    [[nodiscard]] static Result<FileActivity> create(const std::vector<std::string>& roots);
    FileActivity(FileActivity&&) = default;
    FileActivity& operator=(FileActivity&&) = default;
    [[nodiscard]] Result<void> start(EventLoop& loop);
    // Reads what is still queued (call after the sandbox is gone).
    void drain();

    std::vector<std::string> created() const;
    std::vector<std::string> modified() const;
    std::vector<std::string> deleted() const;
    bool truncated() const { return truncated_; }

  private:
    enum class State { Created, Modified, Deleted };
    explicit FileActivity(Inotify in) : inotify_(std::move(in)) {}
    // `fresh`: the directory appeared during the run, so what is already in it was created.
    void watch_tree(const std::string& dir, bool fresh);
    void on_event(const InotifyEvent& e);
    std::vector<std::string> with(State s) const;

    Inotify inotify_;
    std::map<std::string, State> files_;
    bool truncated_ = false;
    EventLoop::Registration reg_;
};

}  // namespace butter::launcher
