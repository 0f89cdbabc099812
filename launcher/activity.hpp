// report.file_activity: the files the sandbox created, modified and deleted in its writable
// binds (the only places its writes reach the host). A file created and then deleted in the
// run is not listed; one created and then written is "created".
//
// Two backends:
// - fanotify (root: CAP_SYS_ADMIN; fanotify_tree.hpp): every directory of the binds at once
//   (no watch limit, no race with a directory made during the run; the directories that
//   exist at the start are cached, so one removed before its events are read still
//   resolves), and only the sandbox's writes count: neither butter's own nor those of a live
//   process outside the sandbox's pid namespace (a writer gone by then is counted).
// - inotify (otherwise, or where fanotify refuses the filesystem): recursive watches on the
//   bind sources, new directories watched as they appear; they see every writer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/inotify.hpp>
#include <butter/loop.hpp>

#include "fanotify_tree.hpp"

namespace butter::launcher {

class FileActivity {
  public:
    enum class Backend { Inotify, Fanotify };
    static constexpr std::size_t kMaxWatches = 16384;

    // With `fanotify`, tries that backend first (falling back to inotify where it is refused).
    // Watches (or caches) every directory below each root up to kMaxWatches; `truncated()`
    // says when that, a queue overflow or an unresolvable directory made the list partial.
    [[nodiscard]] static Result<FileActivity> create(const std::vector<std::string>& roots,
                                                     bool fanotify);
    FileActivity(FileActivity&&) = default;
    FileActivity& operator=(FileActivity&&) = default;
    [[nodiscard]] Result<void> start(EventLoop& loop);
    // fanotify: the sandbox whose writes count, after each spawn (its pid namespace, when it
    // has one).
    void set_sandbox(std::optional<std::uint64_t> pid_ns) { pid_ns_ = pid_ns; }
    // Reads what is still queued (call after the sandbox is gone).
    void drain();

    Backend backend() const { return fanotify_ ? Backend::Fanotify : Backend::Inotify; }
    std::vector<std::string> created() const;
    std::vector<std::string> modified() const;
    std::vector<std::string> deleted() const;
    bool truncated() const { return truncated_; }

  private:
    enum class State { Created, Modified, Deleted };
    enum class Change { Create, Write, Delete };
    FileActivity() = default;
    static Result<FileActivity> with_fanotify(const std::vector<std::string>& roots);
    static Result<FileActivity> with_inotify(const std::vector<std::string>& roots);
    // inotify: `fresh`: the directory appeared during the run, so what is already in it was
    // created.
    void watch_tree(const std::string& dir, bool fresh);
    void on_inotify(const InotifyEvent& e);
    void on_fanotify(const FanotifyEvent& e);
    bool under_roots(const std::string& path) const;
    // A directory that arrived during the run: what it holds was created.
    void fresh_tree(const std::string& dir, int depth = 0);

    void record(const std::string& path, Change c);
    std::vector<std::string> with(State s) const;

    std::optional<Inotify> inotify_;
    std::optional<FanotifyTree> fanotify_;
    std::vector<std::string> roots_;  // real paths (fanotify)
    std::optional<std::uint64_t> pid_ns_;
    std::map<std::string, State> files_;
    bool truncated_ = false;
    EventLoop::Registration reg_;
};

}  // namespace butter::launcher
