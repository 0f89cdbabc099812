// Whole directory trees through fanotify (root: CAP_SYS_ADMIN), for report.file_activity and
// [watch]: a filesystem mark on each tree's filesystem reporting directory handles and names,
// so every directory below is covered at once (no per-directory watch, no race with one made
// meanwhile). An event's directory is resolved from its handle when the event is handled
// (open_by_handle_at, then the kernel's own current path of it), so a rename or a symlink
// swapped in since cannot make it name another place; the handles of the directories seen are
// cached with their last path, for the events of a directory removed before they are read.
// Trees are walked by descriptor (openat O_NOFOLLOW, fdopendir), never by path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
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
    // The cache's handles and paths (a path may be 64 levels of 255-byte names) in all.
    static constexpr std::size_t kMaxCachedBytes = 8u << 20;
    static constexpr int kMaxDepth = 64;

    [[nodiscard]] static Result<FanotifyTree> create(FanotifyMasks mask);
    FanotifyTree(FanotifyTree&&) = default;
    FanotifyTree& operator=(FanotifyTree&&) = default;

    // Covers the filesystem of the directory open at `dir` (once per filesystem), whose path
    // is `path`. EINVAL or ENODEV: a filesystem that cannot report handles (or FAN_RENAME).
    [[nodiscard]] Result<void> add(int dir, const std::string& path);
    // Caches the handles of the directory open at `dir` (named `path`) and of those below it
    // (up to kMaxCached or kMaxCachedBytes, kMaxDepth deep); a filesystem mounted inside gets a
    // mark of its own. For each other entry, `file(path)` (a tree that arrived during the run: its
    // files are new). False if something was left out (a filesystem that could not be marked, a
    // bound).
    bool cache_tree(int dir, const std::string& path,
                    const std::function<void(const std::string&)>& file = {}, int depth = 0);

    // Caches the handle of the directory open at `dir` alone.
    void cache_dir(int dir, const std::string& path);
    // The path of a directory handle now (nullopt: gone, and never cached).
    std::optional<std::string> dir_of(const FileHandle& h);
    // The entry an event's record names: its directory resolved now, and its name; nullopt for
    // a record without one, or whose directory went before it could be resolved (`unresolved`).
    std::optional<std::string> path_of(const FileHandle& h, bool* unresolved = nullptr);
    // The record of an event of `type` (FAN_EVENT_INFO_TYPE_DFID_NAME, _OLD_, _NEW_), or null.
    static const FileHandle* record(const FanotifyEvent& e, std::uint8_t type);
    // Opens the directory entry a record names (O_NOFOLLOW: a symlink there is not opened).
    [[nodiscard]] Result<Fd> open_entry(const FileHandle& h, int flags);
    // The writer is not the sandbox: butter itself, or a live process outside `pid_ns`. One
    // gone by the time its event is read cannot be told apart: it counts as the sandbox's.
    static bool foreign(pid_t pid, std::optional<std::uint64_t> pid_ns);

    Fanotify& group() { return fan_; }

  private:
    FanotifyTree(Fanotify fan, FanotifyMasks mask) : fan_(std::move(fan)), mask_(mask) {}
    bool mark(int dir, std::uint64_t fsid);
    void cache(int dir, const std::string& path, std::uint64_t fsid);
    bool full() const;
    void remember(const std::string& key, const std::string& path);

    Fanotify fan_;
    FanotifyMasks mask_;
    std::map<std::uint64_t, Fd> mount_fds_;    // fsid -> an fd on that filesystem
    std::map<std::string, std::string> dirs_;  // fsid, type and handle bytes -> last path
    std::size_t cached_bytes_ = 0;
};

// True if `path` is `root` or below it.
bool path_within(const std::string& path, const std::string& root);
// Each entry of the directory open at `dir` (its own fd stays as it is): `f(name, is_dir)`.
void for_each_entry(int dir, const std::function<void(const std::string&, bool)>& f);

}  // namespace butter::launcher
