// Host paths named by a profile or the command line, opened so that a sandbox cannot redirect
// them. Anything a sandbox could write is hostile (SECURITY.md): a symlink it left in a
// writable bind, in /tmp, in a directory a previous run could reach. So a host path is walked
// from "/" one component at a time (openat O_PATH|O_NOFOLLOW), and a symlink on the way is
// followed only if root owns it (no sandbox ever writes as host root: plan.cpp) or the caller
// said so for this path. The result is the path with every symlink resolved and the identity
// (device, inode) of what it names: opened again later with open_no_symlinks and checked
// against that identity, a swap in between is caught, never followed.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <functional>
#include <string>
#include <string_view>

#include <butter/error.hpp>
#include <butter/fd.hpp>

namespace butter::launcher {

enum class Symlinks {
    RootOnly,  // follow only symlinks owned by root (uid 0)
    Follow,    // follow every symlink (the profile's follow_symlinks = true)
};

struct HostPath {
    std::string path;  // absolute, without symlinks, "." or ".."
    struct stat st {};
    Fd fd;  // O_PATH of what `path` names
};

// Resolves the absolute `path`. Errors name the call and the path; a symlink that is not
// followed is a message naming the link and its text (errno 0), e.g.
// `openat("/work/out"): a symlink (to '/etc') that butter does not follow — hint: ...`.
[[nodiscard]] Result<HostPath> resolve_host_path(std::string_view path,
                                                 Symlinks symlinks = Symlinks::RootOnly);

// Opens `path` (resolved before) again without following any symlink, and checks that it is
// still the object with `dev` and `ino`: else ESTALE ("replaced since").
[[nodiscard]] Result<Fd> reopen_host_path(const std::string& path, dev_t dev, ino_t ino,
                                          int flags = O_PATH);

// A file butter writes on the host (output.*, the report): its directory resolved as above
// and held open from before the sandbox runs, the file itself created in that directory
// without following a symlink at its name.
class HostFile {
  public:
    HostFile() = default;
    [[nodiscard]] static Result<HostFile> at(std::string_view path);
    const std::string& path() const { return path_; }
    // Opened for writing, truncated, with O_NOFOLLOW and O_NONBLOCK (a FIFO without a reader
    // is ENXIO, not a hang). A symlink at the name, or a regular file with other hard links
    // (truncating it would write through to them), is replaced by a new file; a FIFO or a
    // socket there (whose reader could be anyone's) is an error.
    [[nodiscard]] Result<Fd> open_truncated() const;
    // Writes `data` to a new file in the directory and renames it over the name (readers see
    // the old file or the whole new one; a symlink or hard link at the name is replaced). A
    // device at the name (/dev/null) is written as it is.
    [[nodiscard]] Result<void> replace(std::string_view data) const;
    // Before the run, for a file the run must be able to replace: not a directory, not root's
    // non-file (replace() refuses those), and a directory the caller may write.
    [[nodiscard]] Result<void> check_replaceable() const;
    // The same with what `write` writes to the new file (open for reading and writing: a
    // writer may dup it to read it back after the rename).
    [[nodiscard]] Result<void> replace_with(const std::function<Result<void>(int fd)>& write) const;

  private:
    Fd dir_;
    std::string name_, path_;
};

}  // namespace butter::launcher
