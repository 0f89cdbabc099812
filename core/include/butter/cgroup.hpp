// Cgroups, v2 or v1: find the hierarchy that holds a controller (the unified one when it has
// it, else the controller's v1 hierarchy), create a cgroup below the caller's own cgroup there,
// set limits, move processes in, read counters, and remove it again.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"

namespace butter {

enum class CgroupVersion { V1, V2 };

// Where a controller lives for the calling process.
struct CgroupHierarchy {
    CgroupVersion version = CgroupVersion::V2;
    std::string mount;  // the hierarchy's mount point, e.g. /sys/fs/cgroup/memory
    std::string own;    // the caller's cgroup in it, e.g. /process_api/abc ("/" for the root)
    std::string own_path() const { return own == "/" ? mount : mount + own; }
};

// The hierarchy with `controller` ("memory", "pids", "cpu"): the v2 one if its
// cgroup.controllers lists it, else a v1 hierarchy mounted with it. ENOENT: none has it.
// Reads /proc/self/cgroup and /proc/self/mountinfo. On v2, a caller that
// enable_subtree_controller moved into its leaf (kCgroupLeaf) gets the leaf's parent as `own`:
// the cgroup its sandboxes' cgroups go below.
[[nodiscard]] Result<CgroupHierarchy> find_cgroup_hierarchy(std::string_view controller);

// Whether systemd delegated the cgroup at `path` (its trusted.delegate or user.delegate
// xattr; unprivileged, also a cgroup owned by the caller). A cgroup systemd manages but did not
// delegate is not the caller's to divide: systemd rewrites its cgroup.subtree_control.
bool cgroup_delegated(const std::string& path);

// The leaf cgroup v2 a process moves into so that its own cgroup may enable controllers.
inline constexpr std::string_view kCgroupLeaf = "butter-supervisor";

// cgroup v2: makes `h`'s own cgroup a place for new cgroups with `controller`. Cgroups go
// only below a cgroup without processes (the kernel's "no internal processes" rule; the root
// is exempt): when the calling process is the only one there and `move_self`, it moves (all
// its threads) into the leaf `own/butter-supervisor` first; other processes there are EBUSY,
// naming how many. Then the controller is enabled in cgroup.subtree_control, unless it is
// already. ENOENT: the parent does not delegate the controller (not in cgroup.controllers).
[[nodiscard]] Result<void> enable_subtree_controller(const CgroupHierarchy& h,
                                                     std::string_view controller, bool move_self);

// The processes in the cgroup at `dir` (its cgroup.procs; those of its child cgroups are not).
[[nodiscard]] Result<std::vector<pid_t>> cgroup_processes(const std::string& dir);

// cgroup v2: `controller` enabled in cgroup.subtree_control of the cgroup at `dir` unless it
// is already (its processes, if any, are not moved: EBUSY then, but at the root). ENOENT: not
// in its cgroup.controllers.
[[nodiscard]] Result<void> enable_controller_in(const std::string& dir,
                                                std::string_view controller);

// An owned cgroup directory; the destructor removes it (best effort: a cgroup with live
// processes cannot be removed).
class Cgroup {
  public:
    // mkdir `name` below the caller's cgroup in `h`. EACCES/EROFS: not writable there (not root,
    // not delegated); EEXIST: already there.
    [[nodiscard]] static Result<Cgroup> create(const CgroupHierarchy& h, std::string_view name);
    Cgroup(Cgroup&& o) noexcept;
    Cgroup& operator=(Cgroup&& o) noexcept;
    Cgroup(const Cgroup&) = delete;
    ~Cgroup();

    const std::string& path() const { return path_; }
    CgroupVersion version() const { return version_; }
    bool has(std::string_view file) const;

    // Writes one control file (a single write, as the kernel wants).
    [[nodiscard]] Result<void> write(std::string_view file, std::string_view value) const;
    [[nodiscard]] Result<std::string> read(std::string_view file) const;
    // A number file ("max" reads as UINT64_MAX).
    [[nodiscard]] Result<std::uint64_t> read_number(std::string_view file) const;
    // The value of `key` in a flat keyed file (memory.events: "oom_kill 1").
    [[nodiscard]] Result<std::uint64_t> read_key(std::string_view file, std::string_view key) const;

    // Writes the pid to cgroup.procs.
    [[nodiscard]] Result<void> add(pid_t pid) const;
    [[nodiscard]] Result<std::vector<pid_t>> processes() const;
    // An O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP (v2 only).
    [[nodiscard]] Result<Fd> open_dir() const;
    // SIGKILLs every process in it (cgroup.kill on v2, else each pid), then removes it; retries
    // briefly while dying processes still hold it.
    [[nodiscard]] Result<void> destroy();

  private:
    Cgroup(std::string path, CgroupVersion v) : path_(std::move(path)), version_(v) {}
    std::string path_;
    CgroupVersion version_;
};

}  // namespace butter
