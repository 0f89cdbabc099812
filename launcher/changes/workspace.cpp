#include "changes/workspace.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

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

// apply_changes in a child with `uid`/`gid` (no supplementary groups, no capabilities): its
// error text comes back on a pipe.
Result<Counts> apply_as(uid_t uid, gid_t gid, const Fd& archive, const Fd& dir) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe2", "workspace.commit");
    Fd rd(p[0]), wr(p[1]);
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork", "workspace.commit");
    if (pid == 0) {
        rd = Fd();
        std::string out;
        if (::setgroups(0, nullptr) < 0 || ::setresgid(gid, gid, gid) < 0 ||
            ::setresuid(uid, uid, uid) < 0) {
            out = "E" + Error::from_errno("setresuid", std::to_string(uid)).what();
        } else if (auto c = apply_changes(archive.get(), dir, {}); c) {
            out = "C" + std::to_string(c->added) + " " + std::to_string(c->modified) + " " +
                  std::to_string(c->deleted) + " " + std::to_string(c->bytes);
        } else {
            out = "E" + c.error().what();
        }
        (void)!::write(wr.get(), out.data(), out.size());
        ::_exit(0);
    }
    wr = Fd();
    std::string got;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(rd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got.starts_with("C")) {
        Counts c;
        unsigned long long a = 0, m = 0, d = 0, b = 0;
        if (std::sscanf(got.c_str() + 1, "%llu %llu %llu %llu", &a, &m, &d, &b) == 4) {
            c.added = a;
            c.modified = m;
            c.deleted = d;
            c.bytes = b;
        }
        return c;
    }
    if (got.starts_with("E"))
        return fail(Error::message("apply", got.substr(1), "as uid " + std::to_string(uid)));
    return fail(Error::message("apply", "its process died", "as uid " + std::to_string(uid)));
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
    // As root, a user's directory takes the changes from that user, in a process with their
    // ids alone: what they own and may write, as their own edits would (root's files there,
    // a symlink the user swaps in, a mount of root's below stay out of reach).
    struct stat st {};
    if (::fstat(lower.get(), &st) < 0) return fail_errno("fstat", c.workspace);
    Result<Counts> applied = ::geteuid() == 0 && st.st_uid != 0
                                 ? apply_as(st.st_uid, st.st_gid, archive, lower)
                                 : apply_changes(archive.get(), lower, {});
    if (!applied) {
        r.commit_error = applied.error().what();
        return r;
    }
    r.committed = true;
    return r;
}

}  // namespace butter::launcher::changes
