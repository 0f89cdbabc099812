// What a sandbox changed in an overlay (its upper directory against the lower one), exported
// as an OCI layer tar or listed; and such a tar applied to a directory or shown as a diff.
// The upper directory is the sandbox's work: walked with O_NOFOLLOW relative to directory fds,
// its symlinks read as text, never followed. An archive to apply is hostile too: every path is
// confined to the target directory, and what is refused is refused before anything changes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>

namespace butter::launcher::changes {

struct Counts {
    std::uint64_t added = 0, modified = 0, deleted = 0;
    std::uint64_t bytes = 0;  // of the added and modified files' contents
};

enum class Kind { Added, Modified, Deleted };
const char* kind_name(Kind k);  // "added", "modified", "deleted"

// Host ids -> the sandbox's (the tar records the owners as the sandbox saw them).
using IdMapper = std::function<std::uint32_t(std::uint32_t host_id, bool group)>;

struct ExportOptions {
    int tar_fd = -1;  // write the OCI layer tar here; -1: none
    // Each change, in the archive's order (sorted by name): --changes - prints them.
    std::function<void(Kind, const std::string& path)> on_change;
    IdMapper ids;  // nullptr: the host's ids as they are
    // What a layer cannot carry (a FIFO, a socket, a device node), left out.
    std::function<void(const std::string& path, const char* what)> on_skip;
};

// `path` as one line of text: as it is, or in double quotes with C escapes when it holds a
// control character, a backslash or a double quote (as git quotes paths): a name with a
// newline cannot pass for two entries.
std::string quote_path(const std::string& path);

// How deep a tree export walks and apply removes or checks (a stack frame and a descriptor a
// level).
inline constexpr int kMaxDepth = 256;

// The names in the directory `dir` (an fd of it), sorted; `path` names it in errors.
[[nodiscard]] Result<std::vector<std::string>> names_in(int dir, const std::string& path);

// Walks `upper` (a directory fd) against `lower` (the directory under the overlay; an invalid
// fd: everything is added).
[[nodiscard]] Result<Counts> export_changes(const Fd& upper, const Fd& lower,
                                            const ExportOptions& o);

struct ApplyOptions {
    bool dry_run = false;  // validate, and say what would change, but change nothing
    std::function<void(Kind, const std::string& path)> on_change;
    // Set (by a signal handler): stop while the archive is read and staged, before anything
    // changes; the renames that follow are not interrupted.
    const std::atomic<bool>* cancel = nullptr;
};

// Applies the tar read from `tar` to the directory `dir` (an O_DIRECTORY fd). A name of the
// sandbox's beginning with ".wh." cannot be exported (the layer format takes it for a deletion):
// export_changes refuses it. Every entry is
// checked first: a name that is absolute or has "..", a device node, a FIFO, a hard link, a
// set-id bit, a path through a symlink (in the archive or in `dir`) is an error, and nothing
// is changed. Then the files are staged in a directory of `dir`'s and renamed into place.
[[nodiscard]] Result<Counts> apply_changes(int tar, const Fd& dir, const ApplyOptions& o);

// A unified diff of the tar's text files against `dir` (binary files, symlinks, modes,
// replaced types and deletions of what is not a text file as one line each), written to
// `out`; the counts are of the differences found (none: the tar changes nothing in `dir`).
[[nodiscard]] Result<Counts> diff_changes(int tar, const Fd& dir,
                                          const std::function<void(const std::string&)>& out);

// The unified diff of two texts (3 lines of context), "" when they are equal; nullopt when it
// would be too large to compute.
std::optional<std::string> unified_diff(std::string_view a, std::string_view b,
                                        const std::string& a_name, const std::string& b_name);

}  // namespace butter::launcher::changes
