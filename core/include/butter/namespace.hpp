// Namespaces: the kinds as a typed flag set, unshare(2), setns(2), namespace fds and ids, and
// the uid/gid maps of a user namespace (uid_map, gid_map, setgroups).
//
// clone3 with namespace flags lives in process.hpp: pass `Namespaces::raw()` as its flags.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace butter {

enum class Namespace : std::uint64_t {
    Mount = CLONE_NEWNS,
    Uts = CLONE_NEWUTS,
    Ipc = CLONE_NEWIPC,
    User = CLONE_NEWUSER,
    Pid = CLONE_NEWPID,
    Net = CLONE_NEWNET,
    Cgroup = CLONE_NEWCGROUP,
    Time = CLONE_NEWTIME,
};
std::span<const FlagName<Namespace>> flag_names(Namespace);
using Namespaces = Flags<Namespace>;

inline constexpr Namespaces kAllNamespaces =
    Namespaces::from_raw(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                         CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME);

// The /proc/PID/ns/ file name of one kind: "mnt", "uts", "ipc", "user", "pid", "net",
// "cgroup", "time".
std::string_view proc_name(Namespace ns);

// unshare(2) with the namespace flags. A new user namespace must be the only thread's;
// unsharing Pid or Time affects only the children created afterwards.
[[nodiscard]] Result<void> unshare(Namespaces namespaces);
// setns(2): joins the namespace `fd` refers to (a /proc/PID/ns file, or a pidfd with the
// kinds in `kinds`). `kinds` empty: any kind the fd is.
[[nodiscard]] Result<void> setns(BorrowedFd fd, Namespaces kinds = {});
// Opens /proc/PID/ns/KIND (pid 0: the caller).
[[nodiscard]] Result<Fd> open_namespace(pid_t pid, Namespace kind);
// The namespace's inode number, the id that `ls -l /proc/PID/ns` shows.
[[nodiscard]] Result<std::uint64_t> namespace_id(pid_t pid, Namespace kind);

// One line of a uid_map or gid_map: ids [inside, inside+count) map to [outside, outside+count).
struct IdMapping {
    std::uint32_t inside = 0;
    std::uint32_t outside = 0;
    std::uint32_t count = 1;
};
// "0 1000 1\n" lines, as the kernel wants them written in one write(2).
std::string format_id_map(std::span<const IdMapping> map);

// Writes /proc/PID/uid_map (pid 0: the caller). Allowed once per namespace. Unprivileged
// writers may only map their own euid with count 1; more needs CAP_SETUID in the parent
// namespace (root, or newuidmap). EPERM otherwise.
[[nodiscard]] Result<void> write_uid_map(pid_t pid, std::span<const IdMapping> map);
// Writes /proc/PID/gid_map. Unprivileged writers must first deny setgroups.
[[nodiscard]] Result<void> write_gid_map(pid_t pid, std::span<const IdMapping> map);
// The same with the text already formatted (format_id_map): a caller that has just forked
// writes a child's maps without allocating, so without copy-on-write faults on its heap.
[[nodiscard]] Result<void> write_uid_map(pid_t pid, std::string_view map_text);
[[nodiscard]] Result<void> write_gid_map(pid_t pid, std::string_view map_text);
// Writes "deny" or "allow" to /proc/PID/setgroups (before gid_map).
[[nodiscard]] Result<void> write_setgroups(pid_t pid, bool allow);

// A user namespace with the given maps, for idmapped mounts (mount_setattr's userns_fd): a
// throwaway child sharing the caller's memory (CLONE_VM, so no page tables are copied) creates
// it and waits while the caller (who needs CAP_SETUID/CAP_SETGID over the ids) writes the
// maps; the returned fd keeps the namespace alive after the child is reaped.
// A clone or unshare with namespaces refused: `e` with the likely reason when it can be seen
// (EPERM in a chroot, where the kernel refuses new user namespaces).
Error namespace_refused(Error e);

[[nodiscard]] Result<Fd> make_user_namespace(std::span<const IdMapping> uid_map,
                                             std::span<const IdMapping> gid_map);

// The caller's current uid_map / gid_map lines.
[[nodiscard]] Result<std::vector<IdMapping>> read_uid_map(pid_t pid);
[[nodiscard]] Result<std::vector<IdMapping>> read_gid_map(pid_t pid);

}  // namespace butter
