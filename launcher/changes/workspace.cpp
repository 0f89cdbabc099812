#include "changes/workspace.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace butter::launcher::changes {

namespace {

// The sandbox's id for a host id under `map` (the overflow id where it has none).
std::uint32_t inside_of(const std::vector<IdMapping>& map, std::uint32_t host) {
    for (const IdMapping& m : map)
        if (host >= m.outside && host - m.outside < m.count) return m.inside + (host - m.outside);
    return map.empty() ? host : 65534;
}

// An unnamed file for the archive that is applied: in the workspace's own filesystem (disk,
// not memory, for a large change), else in memory.
Result<Fd> scratch(const Fd& dir) {
    int fd = ::openat(dir.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return Fd(fd);
    fd = ::memfd_create("butter-changes", MFD_CLOEXEC);
    if (fd < 0) return fail_errno("memfd_create", "the changes to apply");
    return Fd(fd);
}

}  // namespace

Result<WorkspaceResult> finish_workspace(const SandboxPlan& plan, const Fd& upper,
                                         const HostFile* file, bool succeeded,
                                         const std::function<void(const std::string&)>& line,
                                         const std::function<void(const std::string&)>& warn) {
    WorkspaceResult r;
    const auto& c = plan.changes;
    bool commit = c.commit == profile::CommitPolicy::Always ||
                  (c.commit == profile::CommitPolicy::OnSuccess && succeeded);
    BUTTER_ASSIGN_OR_RETURN(Fd lower,
                            reopen_host_path(c.workspace, c.dev, c.ino, O_RDONLY | O_DIRECTORY));
    ExportOptions o;
    o.ids = [&](std::uint32_t id, bool group) {
        return inside_of(group ? plan.gid_map : plan.uid_map, id);
    };
    if (c.path == "-")
        o.on_change = [&](Kind k, const std::string& path) {
            line(std::string(kind_name(k)) + " " + quote_path(path));
        };
    o.on_skip = [&](const std::string& path, const char* what) {
        warn("left out " + quote_path(path) + ": " + what +
             " (a layer carries files, directories and symlinks)");
    };
    // A tmpfs upper with no room left: what the command wrote last may have failed.
    struct statfs fs {};
    if (::fstatfs(upper.get(), &fs) == 0 && fs.f_type == TMPFS_MAGIC && fs.f_bavail == 0)
        warn(
            "the workspace's changes filled its tmpfs (workspace.size): writes past it failed "
            "in the sandbox");
    Fd archive;  // the archive written, to read back for the commit
    if (file) {
        BUTTER_TRY(file->replace_with([&](int fd) -> Result<void> {
            o.tar_fd = fd;
            BUTTER_ASSIGN_OR_RETURN(r.counts, export_changes(upper, lower, o));
            if (commit) {
                int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0) return fail_errno("fcntl", file->path());
                archive = Fd(copy);
            }
            return {};
        }));
    } else if (commit) {
        BUTTER_ASSIGN_OR_RETURN(archive, scratch(lower));
        o.tar_fd = archive.get();
        BUTTER_ASSIGN_OR_RETURN(r.counts, export_changes(upper, lower, o));
    } else {
        BUTTER_ASSIGN_OR_RETURN(r.counts, export_changes(upper, lower, o));
    }
    if (!commit) return r;
    if (::lseek(archive.get(), 0, SEEK_SET) < 0) return fail_errno("lseek", "the changes");
    ApplyOptions a;
    // As root, what is applied to a user's directory is that user's, as their own edits are.
    struct stat st {};
    if (::geteuid() == 0 && ::fstat(lower.get(), &st) == 0 && st.st_uid != 0)
        a.owner = std::pair{st.st_uid, st.st_gid};
    BUTTER_TRY(with_context(apply_changes(archive.get(), lower, a), "workspace.commit"));
    r.committed = true;
    return r;
}

}  // namespace butter::launcher::changes
