// Whole directory trees through fanotify (root: CAP_SYS_ADMIN), for report.file_activity and
// [watch]: a filesystem mark on each tree's filesystem reporting directory handles and names,
// so every directory below is covered at once (no per-directory watch, no race with one made
// meanwhile). Each event's directory is resolved from its handle through a cache; caching a
// directory up front keeps its events resolvable after it is removed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/fanotify.hpp>

namespace butter::launcher {

class FanotifyTree {
  public:
    static constexpr std::size_t kMaxCached = 16384;

    [[nodiscard]] static Result<FanotifyTree> create(FanotifyMasks mask);
    FanotifyTree(FanotifyTree&&) = default;
    FanotifyTree& operator=(FanotifyTree&&) = default;

    // Covers `dir`'s filesystem (once per filesystem) and returns dir's real path. EINVAL or
    // ENODEV: a filesystem that cannot report handles.
    [[nodiscard]] Result<std::string> add(const std::string& dir);
    // Caches the handles of `dir` and the directories below it (up to kMaxCached); a filesystem
    // mounted inside gets a mark of its own. False if one could not be marked.
    bool cache_tree(const std::string& dir, int depth = 0);
    // Caches one directory's handle.
    void cache(const std::string& dir);

    // The path an event names (its directory, resolved, and its entry name); nullopt for an
    // event without one, or whose directory went before it could be resolved (`unresolved`).
    std::optional<std::string> path_of(const FanotifyEvent& e, bool* unresolved = nullptr);
    // The writer is not the sandbox: butter itself, or a live process outside `pid_ns`. One
    // gone by the time its event is read cannot be told apart: it counts as the sandbox's.
    static bool foreign(pid_t pid, std::optional<std::uint64_t> pid_ns);

    Fanotify& group() { return fan_; }

  private:
    FanotifyTree(Fanotify fan, FanotifyMasks mask) : fan_(std::move(fan)), mask_(mask) {}
    bool mark(const std::string& dir, std::uint64_t fsid);
    std::optional<std::string> dir_of(const FileHandle& h);

    Fanotify fan_;
    FanotifyMasks mask_;
    std::map<std::uint64_t, Fd> mount_fds_;    // fsid -> an fd on that filesystem
    std::map<std::string, std::string> dirs_;  // fsid, type and handle bytes -> path
};

// True if `path` is `root` or below it.
bool path_within(const std::string& path, const std::string& root);
// The subdirectories of `dir` as paths (and with `files`, its other entries).
void list_dir(const std::string& dir, std::vector<std::string>& subdirs,
              std::vector<std::string>* files = nullptr);

}  // namespace butter::launcher
