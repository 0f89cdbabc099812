// Without a pid namespace a sandbox's processes are plain descendants of butter on the host,
// and one that detaches (setsid, a double fork) would be reparented to the host's init and
// outlive the run. So butter becomes a child subreaper for such a run (orphans below it are
// reparented to it instead), and ends every descendant when the run ends or is stopped, as the
// kernel does for a pid namespace when its init exits.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <butter/error.hpp>

namespace butter::launcher {

// Whether `pid` (as this process sees it) belongs to the sandbox whose first process is
// `first`: in its pid namespace `pid_ns` when it has one, else a descendant of `first`.
bool in_sandbox(pid_t pid, pid_t first, std::optional<std::uint64_t> pid_ns);

// Every descendant of `root` now (children, theirs, ...), found through /proc.
std::vector<pid_t> descendants_of(pid_t root);

// PR_SET_CHILD_SUBREAPER on the calling process (process-wide, until it exits).
[[nodiscard]] Result<void> become_subreaper();

// SIGKILL to every descendant of this process (found through /proc, children of killed ones
// included as they are reparented here), then, with `reap`, waits for them: until none is
// left or `max_rounds` passes found more. Without `reap` nothing is waited for (a caller that
// still waits for one child by its pidfd). Returns how many processes it signalled.
// `group` > 0: that process group too, each round, in one kill(2) (the command's own, when it
// leads a session: what forks faster than /proc can be read still ends with its group).
std::size_t kill_descendants(bool reap, int max_rounds = 200, pid_t group = 0);

}  // namespace butter::launcher
