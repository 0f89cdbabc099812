// export_changes: the overlay's upper directory against its lower one, as overlayfs keeps
// them (a whiteout is a 0:0 character device, an opaque directory has overlay.opaque = "y"),
// written in the OCI layer convention (".wh.NAME", ".wh..wh..opq").
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "changes/changes.hpp"
#include "changes/tar.hpp"

namespace butter::launcher::changes {

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::Added:
            return "added";
        case Kind::Modified:
            return "modified";
        case Kind::Deleted:
            return "deleted";
    }
    return "?";
}

std::string quote_path(const std::string& path) {
    // As git's core.quotePath: every byte outside printable ASCII escaped (C1 controls, line
    // and paragraph separators, bidirectional overrides and invalid UTF-8 among them).
    bool plain = true;
    for (unsigned char c : path)
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') plain = false;
    if (plain) return path;
    std::string out = "\"";
    for (unsigned char c : path) {
        switch (c) {
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\%03o", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

Result<std::vector<std::string>> names_in(int dir, const std::string& path) {
    int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail_errno("openat", path.empty() ? "." : path);
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return fail_errno("fdopendir", path);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    int saved = errno;
    ::closedir(d);
    if (saved) return fail(Error("readdir", saved, path));
    std::sort(names.begin(), names.end());
    return names;
}

namespace {

bool is_whiteout(const struct stat& st) {
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// overlayfs's mark on a directory that hides the lower one's: user.* in a user namespace
// (userxattr), trusted.* otherwise.
bool is_opaque(int dir) {
    for (const char* name : {"user.overlay.opaque", "trusted.overlay.opaque"}) {
        char v[2];
        ssize_t n = ::fgetxattr(dir, name, v, sizeof v);
        if (n == 1 && v[0] == 'y') return true;
    }
    return false;
}

Result<Fd> open_dir(int at, const std::string& name, const std::string& path) {
    int fd = ::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("openat", path);
    return Fd(fd);
}

// How deep a tree the walk follows (two descriptors a level; a stack frame each).

struct Walk {
    const ExportOptions& o;
    Counts counts;
    std::optional<TarWriter> tar;
    // The most the files' contents may add up to: a tmpfs upper's size (a sparse file claims
    // more than the tmpfs holds; exporting it would write all of it).
    std::uint64_t limit = UINT64_MAX;
    int depth = 0;

    void change(Kind k, const std::string& path) {
        (k == Kind::Added      ? counts.added
         : k == Kind::Modified ? counts.modified
                               : counts.deleted)++;
        if (o.on_change) o.on_change(k, path);
    }

    TarEntry entry_of(const std::string& name, const struct stat& st) const {
        TarEntry e;
        e.name = name;
        e.mode = st.st_mode & 07777;
        e.uid = o.ids ? o.ids(st.st_uid, false) : st.st_uid;
        e.gid = o.ids ? o.ids(st.st_gid, true) : st.st_gid;
        e.mtime = st.st_mtim.tv_sec;
        return e;
    }

    Result<void> add(const TarEntry& e, int content = -1) {
        if (tar) BUTTER_TRY(tar->add(e, content));
        return {};
    }

    Result<void> dir(int up, int low, const std::string& prefix);
    Result<void> one(int up, int low, const std::string& prefix, const std::string& name);
};

Result<void> Walk::dir(int up, int low, const std::string& prefix) {
    if (++depth > kMaxDepth)
        return fail(
            Error::message("export", "deeper than 256 levels of directories", quote_path(prefix)));
    BUTTER_ASSIGN_OR_RETURN(std::vector<std::string> names, names_in(up, prefix));
    for (const std::string& name : names)
        BUTTER_TRY(one(up, low, prefix, name));
    --depth;
    return {};
}

// What the sandbox made unreadable (chmod 000) is the caller's own in the upper: readable
// again for the export (the archive keeps its mode), as root's CAP_DAC_OVERRIDE reads it.
void make_readable(int up, const std::string& name, const struct stat& st) {
    if (st.st_uid != ::geteuid()) return;
    mode_t want = S_ISDIR(st.st_mode) ? S_IRUSR | S_IXUSR : S_IRUSR;
    int fd = ::openat(up, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct stat now {};
    if (::fstat(fd, &now) == 0 && now.st_ino == st.st_ino && !S_ISLNK(now.st_mode))
        (void)::chmod(path, (now.st_mode & 07777) | want);
    ::close(fd);
}

Result<void> Walk::one(int up, int low, const std::string& prefix, const std::string& name) {
    std::string path = prefix + name;
    struct stat st {};
    if (::fstatat(up, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
        return fail_errno("fstatat", path);
    // A deletion in the layer format: a name of the sandbox's own there would delete NAME
    // wherever the layer is applied (".wh..git").
    // (A deletion of such a name has no form either: ".wh..wh.x" would be read as ".wh.x".)
    if (name.starts_with(".wh."))
        return fail(Error::message("export",
                                   "a name beginning with '.wh.', which an OCI layer "
                                   "reserves for deletions: it cannot be exported",
                                   quote_path(path)));
    struct stat lst {};
    bool in_lower = low >= 0 && ::fstatat(low, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0;
    if (is_whiteout(st)) {
        TarEntry e = entry_of(prefix + ".wh." + name, st);
        e.type = TarEntry::Type::File;
        e.mode = 0;
        e.size = 0;
        BUTTER_TRY(add(e));
        if (in_lower) change(Kind::Deleted, path);
        return {};
    }
    if (S_ISDIR(st.st_mode)) {
        if ((st.st_mode & (S_IRUSR | S_IXUSR)) != (S_IRUSR | S_IXUSR)) make_readable(up, name, st);
        BUTTER_ASSIGN_OR_RETURN(Fd sub, open_dir(up, name, path));
        bool opaque = is_opaque(sub.get());
        bool lower_dir = in_lower && S_ISDIR(lst.st_mode);
        TarEntry e = entry_of(path + "/", st);
        e.type = TarEntry::Type::Directory;
        BUTTER_TRY(add(e));
        if (!in_lower)
            change(Kind::Added, path + "/");
        else if (!lower_dir || (st.st_mode & 07777) != (lst.st_mode & 07777))
            change(Kind::Modified, path + "/");
        Fd lower_sub;
        if (lower_dir) {
            int fd = ::openat(low, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) lower_sub = Fd(fd);
        }
        if (opaque) {
            TarEntry w = entry_of(path + "/.wh..wh..opq", st);
            w.type = TarEntry::Type::File;
            w.mode = 0;
            BUTTER_TRY(add(w));
            // What the lower directory held and the upper one does not: gone.
            if (lower_sub.valid()) {
                auto old = names_in(lower_sub.get(), path);
                auto now = names_in(sub.get(), path);
                if (old && now) {
                    std::set<std::string> kept(now->begin(), now->end());
                    for (const std::string& n : *old)
                        if (!kept.count(n)) change(Kind::Deleted, path + "/" + n);
                }
            }
        }
        return dir(sub.get(), lower_sub.valid() ? lower_sub.get() : -1, path + "/");
    }
    TarEntry e = entry_of(path, st);
    if (S_ISREG(st.st_mode)) {
        if (counts.bytes + static_cast<std::uint64_t>(st.st_size) > limit)
            return fail(Error::message("export",
                                       "the changes claim more than the workspace holds (a "
                                       "sparse file of " +
                                           std::to_string(st.st_size) + " bytes?)",
                                       quote_path(path)));
        if (!(st.st_mode & S_IRUSR)) make_readable(up, name, st);
        int fd =
            ::openat(up, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) return fail_errno("openat", path);
        Fd file(fd);
        struct stat now {};
        if (::fstat(fd, &now) < 0) return fail_errno("fstat", path);
        if (!S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
            return fail(Error::message("openat", "replaced while it was exported", path));
        e.type = TarEntry::Type::File;
        e.size = static_cast<std::uint64_t>(now.st_size);
        BUTTER_TRY(add(e, fd));
        counts.bytes += e.size;
    } else if (S_ISLNK(st.st_mode)) {
        std::string text(4096, '\0');
        ssize_t n = ::readlinkat(up, name.c_str(), text.data(), text.size());
        if (n < 0) return fail_errno("readlinkat", path);
        text.resize(static_cast<std::size_t>(n));
        e.type = TarEntry::Type::Symlink;
        e.link = text;
        BUTTER_TRY(add(e));
    } else {
        // A FIFO, a socket, a device node: nothing that apply would make either.
        if (o.on_skip)
            o.on_skip(path, S_ISFIFO(st.st_mode)   ? "a FIFO"
                            : S_ISSOCK(st.st_mode) ? "a socket"
                                                   : "a device node");
        return {};
    }
    change(in_lower ? Kind::Modified : Kind::Added, path);
    return {};
}

}  // namespace

Result<Counts> export_changes(const Fd& upper, const Fd& lower, const ExportOptions& o) {
    Walk w{o, {}, {}};
    if (o.tar_fd >= 0) w.tar.emplace(o.tar_fd);
    struct statfs fs {};
    if (::fstatfs(upper.get(), &fs) == 0 && fs.f_type == TMPFS_MAGIC)
        w.limit = static_cast<std::uint64_t>(fs.f_blocks) * static_cast<std::uint64_t>(fs.f_bsize);
    BUTTER_TRY(w.dir(upper.get(), lower.valid() ? lower.get() : -1, ""));
    if (w.tar) BUTTER_TRY(w.tar->finish());
    return w.counts;
}

}  // namespace butter::launcher::changes
