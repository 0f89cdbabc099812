// report.file_activity: the files the sandbox created, modified and deleted in its writable
// binds (the only places its writes reach the host). A file created and then deleted in the
// run is not listed; one created and then written is "created". A directory moved within the
// binds is one entry each way, its path with a trailing '/' (what was recorded below it moves
// with it); one moved out is deleted, one moved in is walked for what it holds.
//
// Everything here is driven by the sandbox, so everything is bounded (kMaxWatches directories,
// kMaxEntries paths of kMaxPathBytes in all, kMaxDepth levels) and a list cut at a bound says
// so (truncated()); and
// nothing the sandbox names is followed: trees are walked by descriptor (openat O_NOFOLLOW,
// fdopendir, and openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from the bind's root), paths
// are kept as a tree of watched directories (renames move nodes), never read back from a name.
//
// Two backends:
// - fanotify (root: CAP_SYS_ADMIN; fanotify_tree.hpp): every directory of the binds at once
//   (no watch limit, no race with a directory made during the run), directories resolved from
//   their handles when an event is handled, renames as FAN_RENAME (old and new name in one
//   event); only the sandbox's writes count: neither butter's own nor those of a live process
//   outside the sandbox's pid namespace (a writer gone by then is counted).
// - inotify (otherwise, or where fanotify refuses the filesystem): a watch per directory
//   (through /proc/self/fd/N of a descriptor, not a path), moves paired by cookie; they see
//   every writer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/inotify.hpp>
#include <butter/loop.hpp>

#include "supervise/fanotify_tree.hpp"

namespace butter::launcher {

class FileActivity {
  public:
    enum class Backend { Inotify, Fanotify };
    static constexpr std::size_t kMaxWatches = 16384;
    static constexpr std::size_t kMaxEntries = 65536;
    static constexpr int kMaxDepth = 64;
    // The paths' bytes in all (each may be 64 levels of 255-byte names).
    static constexpr std::size_t kMaxPathBytes = 16u << 20;

    // A writable bind's source: its resolved path and identity (plan.hpp MountStep).
    struct Root {
        std::string path;
        dev_t dev = 0;
        ino_t ino = 0;
    };
    // With `fanotify`, tries that backend first (falling back to inotify where it is refused).
    [[nodiscard]] static Result<FileActivity> create(const std::vector<Root>& roots, bool fanotify);
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
    static Result<FileActivity> with_fanotify(const std::vector<Root>& roots);
    static Result<FileActivity> with_inotify(const std::vector<Root>& roots);

    // inotify: a watched directory, in a tree: its parent's watch (-1 for a root) and name.
    struct Node {
        int parent = -1;
        std::string name;
        std::size_t root = 0;  // index into roots_ (roots only)
        int depth = 0;
    };
    // Watches the directory open at `dir` (named `name` in `parent`) and every one below;
    // `fresh`: it appeared during the run, so the files it holds were created.
    void watch_dir(int dir, int parent, const std::string& name, std::size_t root, int depth,
                   bool fresh);
    std::optional<std::string> path_of(int wd) const;
    std::optional<std::string> rel_of(int wd) const;  // below its root ("" for the root)
    std::size_t root_of(int wd) const;
    // Opens `name` in watched `wd` beneath its root without following any symlink.
    Result<Fd> open_beneath(int wd, const std::string& name) const;
    std::optional<int> child(int parent, const std::string& name) const;
    void forget_tree(int wd);
    void on_inotify(const InotifyEvent& e);
    void settle_moves();  // moves whose other half never came: out of (or into) the roots

    void on_fanotify(const FanotifyEvent& e);
    bool under_roots(const std::string& path) const;
    // A directory that arrived during the run (fanotify): what it holds was created.
    void fresh_tree(const FileHandle& at);

    void record(const std::string& path, Change c);
    // The entry for `path`, made (as Created) if the bounds allow; nullopt when they do not.
    std::optional<std::map<std::string, State>::iterator> add(const std::string& path);
    // A directory moved from `from` to `to` (either may be outside the roots: nullopt).
    void moved_dir(const std::optional<std::string>& from, const std::optional<std::string>& to);
    std::vector<std::string> with(State s) const;

    std::optional<Inotify> inotify_;
    std::optional<FanotifyTree> fanotify_;
    std::vector<std::pair<std::string, Fd>> roots_;        // resolved path, O_PATH descriptor
    std::map<int, Node> nodes_;                            // inotify: wd -> node
    std::map<std::pair<int, std::string>, int> children_;  // (parent wd, name) -> wd
    std::map<std::uint32_t, std::pair<int, std::string>> moves_;  // cookie -> (wd, old name)
    std::optional<std::uint64_t> pid_ns_;
    std::map<std::string, State> files_;
    std::size_t path_bytes_ = 0;
    bool truncated_ = false;
    EventLoop::Registration reg_;
};

}  // namespace butter::launcher
