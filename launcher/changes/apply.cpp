// apply_changes and diff_changes: an OCI layer tar against a directory. The archive is read
// once; everything is checked (and each file's content staged) before the first change.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>

#include "changes/changes.hpp"
#include "changes/tar.hpp"

namespace butter::launcher::changes {

namespace {

Error refuse(const std::string& name, const std::string& why) {
    return Error::message("apply", why, quote_path(name));
}

// "./a//b/" -> "a/b"; nullopt for an absolute name, "..", or nothing at all.
std::optional<std::string> clean_name(const std::string& raw) {
    if (raw.empty() || raw[0] == '/') return std::nullopt;
    std::string out;
    std::size_t at = 0;
    while (at <= raw.size()) {
        std::size_t slash = raw.find('/', at);
        if (slash == std::string::npos) slash = raw.size();
        std::string_view part(raw.data() + at, slash - at);
        if (part == ".." || part.size() > 255) return std::nullopt;
        if (!part.empty() && part != ".") {
            if (!out.empty()) out += '/';
            out += part;
        }
        at = slash + 1;
    }
    if (out.empty()) return std::nullopt;
    return out;
}

std::pair<std::string, std::string> split(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash), path.substr(slash + 1)};
}

// `path` below `dir` without following any symlink on the way or at its end; -1 (errno set)
// when it cannot be had.
int open_beneath(const Fd& dir, const std::string& path, int flags) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how));
}

// What `path` below `dir` is now: its lstat, or nullopt when it is not there.
std::optional<struct stat> stat_beneath(const Fd& dir, const std::string& path) {
    auto [parent, name] = split(path);
    int fd = parent.empty() ? ::dup(dir.get()) : open_beneath(dir, parent, O_PATH | O_DIRECTORY);
    if (fd < 0) return std::nullopt;
    Fd p(fd);
    struct stat st {};
    if (::fstatat(p.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return std::nullopt;
    return st;
}

// Removes `name` in `parent` and all below it, never into another file system (a mount in the
// directory is not part of the overlay's view, nor of the archive's).
Result<void> remove_tree(int parent, const std::string& name, const std::string& path, dev_t dev,
                         int depth = 0) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return {};
        return fail_errno("fstatat", quote_path(path));
    }
    if (st.st_dev != dev)
        return fail(Error::message("apply", "a mount point: not removed", quote_path(path)));
    if (S_ISDIR(st.st_mode)) {
        if (depth >= kMaxDepth)
            return fail(Error::message("apply", "deeper than 256 levels", quote_path(path)));
        int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_errno("openat", quote_path(path));
        Fd d(fd);
        BUTTER_ASSIGN_OR_RETURN(std::vector<std::string> names,
                                names_in(d.get(), quote_path(path)));
        for (const std::string& n : names)
            BUTTER_TRY(remove_tree(d.get(), n, path + "/" + n, dev, depth + 1));
        if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) < 0)
            return fail_errno("unlinkat", quote_path(path));
        return {};
    }
    if (::unlinkat(parent, name.c_str(), 0) < 0) return fail_errno("unlinkat", quote_path(path));
    return {};
}

// Whether the tree at `path` could be removed by the caller, checked before anything changes:
// every directory in it writable, none on another file system, at most 256 levels.
Result<void> check_removable(const Fd& dir, const std::string& path, dev_t dev,
                             const std::string& entry) {
    int fd = open_beneath(dir, path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return {};  // not a directory: its parent's check covers it
    struct Level {
        DIR* d;
        std::string path;
    };
    std::vector<Level> stack;
    auto push = [&](int dfd, std::string p) -> Result<void> {
        struct stat st {};
        if (::fstat(dfd, &st) < 0 || st.st_dev != dev) {
            ::close(dfd);
            return fail(refuse(entry, "'" + quote_path(p) +
                                          "' is a mount point: a change there is not the "
                                          "sandbox's"));
        }
        if (::faccessat(dfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
            ::close(dfd);
            return fail(Error("faccessat", EACCES, quote_path(p))
                            .with_context("apply(\"" + quote_path(entry) + "\")"));
        }
        if (stack.size() >= kMaxDepth) {
            ::close(dfd);
            return fail(refuse(entry, "deeper than 256 levels"));
        }
        DIR* d = ::fdopendir(dfd);
        if (!d) {
            ::close(dfd);
            return fail_errno("fdopendir", quote_path(p));
        }
        stack.push_back({d, std::move(p)});
        return {};
    };
    Result<void> r = push(fd, path);
    while (r && !stack.empty()) {
        struct dirent* e = ::readdir(stack.back().d);
        if (!e) {
            ::closedir(stack.back().d);
            stack.pop_back();
            continue;
        }
        std::string_view n = e->d_name;
        if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
        int sub = ::openat(::dirfd(stack.back().d), e->d_name,
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) continue;
        r = push(sub, stack.back().path + "/" + std::string(n));
    }
    for (Level& l : stack)
        ::closedir(l.d);
    return r;
}

struct Op {
    enum Type { Dir, File, Symlink, Delete, Opaque } type = File;
    std::string path;  // clean, relative to the directory
    unsigned mode = 0;
    std::int64_t mtime = 0;
    std::string link;
    std::string staged;  // File: its name in the staging directory
    std::optional<Kind> change;
};

// As export_changes names it: a directory with a "/".
std::string shown(const Op& op) {
    return op.type == Op::Dir ? op.path + "/" : op.path;
}

// The archive checked and its files staged: what apply_changes then does.
struct Plan {
    std::vector<Op> ops;
    Counts counts;
};

// The state of each path as the archive leaves it so far: 'd', 'f', 'l', or 'x' (deleted).
using Shadow = std::map<std::string, char>;

void forget_below(Shadow& s, const std::string& path) {
    for (auto it = s.lower_bound(path + "/"); it != s.end() && it->first.starts_with(path + "/");)
        it = s.erase(it);
}

// Every directory on the way to `path` is one (in the archive, or in `dir` unless the archive
// removed it): else the entry would be written through a symlink or into a file.
Result<void> check_parents(const Fd& dir, dev_t top_dev, const Shadow& shadow,
                           const std::string& path, const std::string& entry) {
    std::size_t at = 0;
    while ((at = path.find('/', at)) != std::string::npos) {
        std::string parent = path.substr(0, at++);
        if (auto it = shadow.find(parent); it != shadow.end()) {
            if (it->second == 'd' || it->second == 'x') continue;
            return fail(refuse(entry, "'" + quote_path(parent) + "' is a " +
                                          (it->second == 'l' ? "symlink" : "file") +
                                          " in the archive: the entry would be written "
                                          "through it"));
        }
        bool removed = false;
        for (std::string up = parent; !up.empty(); up = split(up).first)
            if (auto it = shadow.find(up); it != shadow.end() && it->second == 'x') removed = true;
        if (removed) continue;
        auto st = stat_beneath(dir, parent);
        if (!st) continue;  // made as a directory when applied
        if (S_ISLNK(st->st_mode))
            return fail(refuse(entry, "'" + quote_path(parent) +
                                          "' is a symlink in the directory: butter does not "
                                          "write through it"));
        if (!S_ISDIR(st->st_mode))
            return fail(
                refuse(entry, "'" + quote_path(parent) + "' is not a directory in the directory"));
        if (st->st_dev != top_dev)
            return fail(refuse(entry, "'" + quote_path(parent) +
                                          "' is a mount point: a change there is not the "
                                          "sandbox's"));
    }
    return {};
}

struct Staging {
    const Fd& dir;
    std::string name;
    Fd fd;
    std::size_t count = 0;
    ~Staging() {
        struct stat st {};
        if (fd.valid() && ::fstat(fd.get(), &st) == 0)
            (void)remove_tree(dir.get(), name, name, st.st_dev);
    }
};

Result<void> make_staging(Staging& s) {
    std::random_device rd;
    for (int i = 0; i < 16; ++i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ".butter-apply-%d-%08x", static_cast<int>(::getpid()), rd());
        if (::mkdirat(s.dir.get(), buf, 0700) == 0) {
            s.name = buf;
            int fd = ::openat(s.dir.get(), buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return fail_errno("openat", buf);
            s.fd = Fd(fd);
            return {};
        }
        if (errno != EEXIST) return fail_errno("mkdirat", buf);
    }
    return fail(Error("mkdirat", EEXIST, ".butter-apply-*"));
}

// Reads and checks the whole archive; stages each file's content unless `staging` is null.
Result<Plan> read_plan(int tar, const Fd& dir, Staging* staging, const std::atomic<bool>* cancel) {
    Plan plan;
    Shadow shadow;
    TarReader r(tar);
    struct stat top {};
    if (::fstat(dir.get(), &top) < 0) return fail_errno("fstat", "the directory");
    // The directory an entry changes must be writable (the deepest one that exists on the way
    // to it): found now, not halfway through the renames.
    std::map<std::string, bool> writable;
    auto check_writable = [&](const std::string& path, const std::string& entry) -> Result<void> {
        std::string d = split(path).first;
        for (;;) {
            auto st = d.empty() ? std::optional<struct stat>(std::in_place) : stat_beneath(dir, d);
            if (st && (d.empty() || S_ISDIR(st->st_mode))) break;
            if (d.empty()) break;
            d = split(d).first;
        }
        auto it = writable.find(d);
        if (it == writable.end()) {
            int fd = d.empty() ? ::dup(dir.get()) : open_beneath(dir, d, O_PATH | O_DIRECTORY);
            bool ok = fd >= 0 && ::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) == 0;
            if (fd >= 0) ::close(fd);
            it = writable.emplace(d, ok).first;
        }
        if (!it->second)
            return fail(Error("faccessat", EACCES, quote_path(d.empty() ? "." : d))
                            .with_context("apply(\"" + quote_path(entry) + "\")"));
        return {};
    };
    for (;;) {
        if (cancel && *cancel) return fail(Error("apply", EINTR, "interrupted"));
        BUTTER_ASSIGN_OR_RETURN(std::optional<TarEntry> e, r.next());
        if (!e) break;
        const std::string& raw = e->name;
        auto name = clean_name(raw);
        if (!name) {
            if (!raw.empty() && raw.find_first_not_of("./") == std::string::npos &&
                e->type == TarEntry::Type::Directory)
                continue;  // "./": the directory itself
            return fail(refuse(raw, raw.starts_with("/") ? "an absolute name"
                                    : raw.find("..") != std::string::npos
                                        ? "a name that leaves the directory ('..')"
                                        : "a name component longer than 255 bytes"));
        }
        switch (e->type) {
            case TarEntry::Type::File:
            case TarEntry::Type::Directory:
            case TarEntry::Type::Symlink:
                break;
            case TarEntry::Type::HardLink:
                return fail(refuse(raw, "a hard link (to '" + quote_path(e->link) +
                                            "'): butter applies files, directories and "
                                            "symlinks only"));
            case TarEntry::Type::CharDevice:
            case TarEntry::Type::BlockDevice:
                return fail(refuse(raw, "a device node"));
            case TarEntry::Type::Fifo:
                return fail(refuse(raw, "a FIFO"));
            case TarEntry::Type::Other:
                return fail(refuse(raw, std::string("an entry of type '") + e->raw_type + "'"));
        }
        // A set-group-ID directory only hands its group on (a shared project directory):
        // allowed. Any other set-id bit is refused.
        bool sgid_dir = e->type == TarEntry::Type::Directory && !(e->mode & S_ISUID);
        if ((e->mode & (S_ISUID | S_ISGID)) && !sgid_dir)
            return fail(refuse(raw, "a set-user-ID or set-group-ID file"));
        auto [parent, base] = split(*name);
        Op op;
        op.mode = e->mode & (e->type == TarEntry::Type::Directory ? 03777 : 01777);
        op.mtime = e->mtime;
        if (base.starts_with(".wh.") && e->type == TarEntry::Type::File) {
            if (base == ".wh..wh..opq") {
                if (parent.empty())
                    return fail(refuse(raw, "an opaque mark on the directory itself"));
                op.type = Op::Opaque;
                op.path = parent;
            } else {
                std::string gone = base.substr(4);
                if (gone.empty() || gone == "." || gone == ".." || gone.starts_with(".wh."))
                    return fail(refuse(raw, "a whiteout without a name"));
                op.type = Op::Delete;
                op.path = parent.empty() ? gone : parent + "/" + gone;
            }
        } else {
            op.type = e->type == TarEntry::Type::Directory ? Op::Dir
                      : e->type == TarEntry::Type::Symlink ? Op::Symlink
                                                           : Op::File;
            op.path = *name;
            op.link = e->link;
        }
        BUTTER_TRY(check_parents(dir, top.st_dev, shadow, op.path, raw));
        BUTTER_TRY(check_writable(op.type == Op::Opaque ? op.path + "/x" : op.path, raw));
        auto seen = shadow.find(op.path);
        struct stat now {};
        bool on_disk = false;
        if (seen == shadow.end()) {
            if (auto st = stat_beneath(dir, op.path)) {
                now = *st;
                on_disk = true;
            }
        }
        bool there = seen != shadow.end() ? seen->second != 'x' : on_disk;
        if (on_disk && now.st_dev != top.st_dev)
            return fail(refuse(raw, "'" + quote_path(op.path) +
                                        "' is a mount point: a change there is not the "
                                        "sandbox's"));
        // What goes away whole (a deleted or replaced directory, an opaque one's contents)
        // must be removable, all of it, before anything changes.
        if (on_disk && S_ISDIR(now.st_mode) && op.type != Op::Dir)
            BUTTER_TRY(check_removable(dir, op.path, top.st_dev, raw));
        switch (op.type) {
            case Op::Delete:
                if (there) op.change = Kind::Deleted;
                shadow[op.path] = 'x';
                forget_below(shadow, op.path);
                break;
            case Op::Opaque:
                if (auto it = shadow.find(op.path); it == shadow.end() || it->second != 'd')
                    return fail(refuse(raw,
                                       "an opaque mark for a directory the archive does "
                                       "not have"));
                forget_below(shadow, op.path);
                // What the directory holds now goes (what the archive adds after comes back).
                if (int fd = open_beneath(dir, op.path, O_RDONLY | O_DIRECTORY); fd >= 0) {
                    Fd d(fd);
                    BUTTER_ASSIGN_OR_RETURN(std::vector<std::string> names,
                                            names_in(d.get(), quote_path(op.path)));
                    for (const std::string& n : names) {
                        Op gone;
                        gone.type = Op::Delete;
                        gone.path = op.path + "/" + n;
                        gone.change = Kind::Deleted;
                        ++plan.counts.deleted;
                        plan.ops.push_back(std::move(gone));
                    }
                }
                break;
            case Op::Dir:
                if (!there)
                    op.change = Kind::Added;
                else if (on_disk && (!S_ISDIR(now.st_mode) || (now.st_mode & 07777) != op.mode))
                    op.change = Kind::Modified;
                shadow[op.path] = 'd';
                break;
            case Op::File:
            case Op::Symlink:
                if (on_disk && S_ISDIR(now.st_mode)) {
                    // The directory and all it holds go first.
                    Op gone;
                    gone.type = Op::Delete;
                    gone.path = op.path;
                    gone.change = Kind::Deleted;
                    ++plan.counts.deleted;
                    plan.ops.push_back(std::move(gone));
                }
                op.change = there ? Kind::Modified : Kind::Added;
                if (shadow.count(op.path) && shadow.at(op.path) == 'd')
                    forget_below(shadow, op.path);
                shadow[op.path] = op.type == Op::File ? 'f' : 'l';
                break;
        }
        if (op.type == Op::File) {
            plan.counts.bytes += e->size;
            if (staging) {
                op.staged = std::to_string(staging->count++);
                int fd = ::openat(staging->fd.get(), op.staged.c_str(),
                                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) return fail_errno("openat", staging->name + "/" + op.staged);
                Fd f(fd);
                BUTTER_TRY(r.content(f.get()));
                if (::fchmod(fd, op.mode) < 0) return fail_errno("fchmod", op.path);
                struct timespec t[2] = {{op.mtime, 0}, {op.mtime, 0}};
                if (::futimens(fd, t) < 0) return fail_errno("futimens", op.path);
            }
        }
        if (op.change)
            (*op.change == Kind::Added      ? plan.counts.added
             : *op.change == Kind::Modified ? plan.counts.modified
                                            : plan.counts.deleted)++;
        plan.ops.push_back(std::move(op));
    }
    return plan;
}

// The directory that holds `path`, every directory on the way opened without following a
// symlink, and made where missing.
// An invalid Fd when `create` is false and a directory on the way is missing.
Result<Fd> parent_of(const Fd& dir, dev_t dev, const std::string& path, bool create = true) {
    int cur = ::dup(dir.get());
    if (cur < 0) return fail_errno("dup", path);
    Fd at(cur);
    std::string parent = split(path).first;
    std::size_t start = 0;
    while (!parent.empty() && start <= parent.size()) {
        std::size_t slash = parent.find('/', start);
        if (slash == std::string::npos) slash = parent.size();
        std::string part = parent.substr(start, slash - start);
        if (create) (void)::mkdirat(at.get(), part.c_str(), 0755);
        int fd = ::openat(at.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && !create) return Fd();
        if (fd < 0) return fail_errno("openat", quote_path(parent.substr(0, slash)));
        at = Fd(fd);
        struct stat st {};
        if (::fstat(fd, &st) < 0 || st.st_dev != dev)
            return fail(Error::message("apply", "a mount point: not changed",
                                       quote_path(parent.substr(0, slash))));
        start = slash + 1;
    }
    return at;
}

Result<void> commit(const Plan& plan, const Fd& dir, Staging& staging, const ApplyOptions& o) {
    std::vector<std::pair<std::string, std::int64_t>> dir_times;
    struct stat top {};
    if (::fstat(dir.get(), &top) < 0) return fail_errno("fstat", "the directory");
    const dev_t dev = top.st_dev;
    for (const Op& op : plan.ops) {
        bool removes = op.type == Op::Delete || op.type == Op::Opaque;
        BUTTER_ASSIGN_OR_RETURN(Fd parent, parent_of(dir, dev, op.path, !removes));
        if (!parent.valid()) continue;  // nothing there to remove
        std::string name = split(op.path).second;
        struct stat st {};
        bool there = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        switch (op.type) {
            case Op::Delete:
                BUTTER_TRY(remove_tree(parent.get(), name, op.path, dev));
                break;
            case Op::Opaque: {
                int fd = ::openat(parent.get(), name.c_str(),
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) return fail_errno("openat", op.path);
                Fd d(fd);
                BUTTER_ASSIGN_OR_RETURN(std::vector<std::string> names, names_in(d.get(), op.path));
                for (const std::string& n : names)
                    BUTTER_TRY(remove_tree(d.get(), n, op.path + "/" + n, dev));
                break;
            }
            case Op::Dir:
                if (there && !S_ISDIR(st.st_mode)) {
                    BUTTER_TRY(remove_tree(parent.get(), name, op.path, dev));
                    there = false;
                }
                if (!there) {
                    if (::mkdirat(parent.get(), name.c_str(), 0700) < 0)
                        return fail_errno("mkdirat", op.path);
                }
                // Its mode through a descriptor of the directory itself: a name swapped for a
                // symlink in between is not followed (fchmodat follows one).
                {
                    int fd = ::openat(parent.get(), name.c_str(),
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                    if (fd < 0) return fail_errno("openat", quote_path(op.path));
                    Fd d(fd);
                    struct stat now {};
                    if (::fstat(fd, &now) < 0) return fail_errno("fstat", quote_path(op.path));
                    if (now.st_dev != dev)
                        return fail(Error::message("apply", "a mount point: not changed",
                                                   quote_path(op.path)));
                    if (::fchmod(fd, op.mode) < 0) return fail_errno("fchmod", quote_path(op.path));
                }
                dir_times.emplace_back(op.path, op.mtime);
                break;
            case Op::File:
            case Op::Symlink: {
                if (there && S_ISDIR(st.st_mode))
                    BUTTER_TRY(remove_tree(parent.get(), name, op.path, dev));
                std::string staged = op.staged;
                if (op.type == Op::Symlink) {
                    staged = std::to_string(staging.count++);
                    if (::symlinkat(op.link.c_str(), staging.fd.get(), staged.c_str()) < 0)
                        return fail_errno("symlinkat", op.path);
                    struct timespec t[2] = {{op.mtime, 0}, {op.mtime, 0}};
                    (void)::utimensat(staging.fd.get(), staged.c_str(), t, AT_SYMLINK_NOFOLLOW);
                }
                if (::renameat(staging.fd.get(), staged.c_str(), parent.get(), name.c_str()) < 0)
                    return fail_errno("renameat", op.path);
                break;
            }
        }
        if (op.change && o.on_change) o.on_change(*op.change, shown(op));
    }
    // Directories' times last: what was made in them moved them.
    for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it) {
        BUTTER_ASSIGN_OR_RETURN(Fd parent, parent_of(dir, dev, it->first));
        struct timespec t[2] = {{it->second, 0}, {it->second, 0}};
        (void)::utimensat(parent.get(), split(it->first).second.c_str(), t, AT_SYMLINK_NOFOLLOW);
    }
    return {};
}

}  // namespace

Result<Counts> apply_changes(int tar, const Fd& dir, const ApplyOptions& o) {
    if (o.dry_run) {
        auto checked = read_plan(tar, dir, nullptr, o.cancel);
        if (!checked) return fail(std::move(checked).error());
        Plan& plan = *checked;
        for (const Op& op : plan.ops)
            if (op.change && o.on_change) o.on_change(*op.change, shown(op));
        return plan.counts;
    }
    Staging staging{dir, {}, {}, 0};
    BUTTER_TRY(make_staging(staging));
    auto plan = read_plan(tar, dir, &staging, o.cancel);
    if (!plan) return fail(std::move(plan).error().with_hint("nothing was changed"));
    if (auto c = commit(*plan, dir, staging, o); !c)
        return fail(std::move(c).error().with_hint("the entries before this one were applied"));
    return plan->counts;
}

// --- diff ---------------------------------------------------------------------------------

namespace {

std::vector<std::string_view> lines_of(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at < s.size()) {
        std::size_t nl = s.find('\n', at);
        std::size_t end = nl == std::string_view::npos ? s.size() : nl + 1;
        out.push_back(s.substr(at, end - at));
        at = end;
    }
    return out;
}

bool is_text(std::string_view s) {
    return s.find('\0') == std::string_view::npos;
}

constexpr std::uint64_t kDiffLimit = 16 << 20;

}  // namespace

// Myers' O((N+M)D) difference. Each step keeps only its own diagonals (2d+1 of them, not the
// whole vector: memory O(D^2)), and the search gives up past a bound on D and on the work.
std::optional<std::string> unified_diff(std::string_view a, std::string_view b,
                                        const std::string& a_name, const std::string& b_name) {
    if (a == b) return std::string();
    auto x = lines_of(a), y = lines_of(b);
    const long n = static_cast<long>(x.size()), m = static_cast<long>(y.size());
    const long max = n + m;
    constexpr long kMaxD = 2000;
    constexpr long kMaxWork = 200'000'000;  // diagonal steps
    std::vector<long> v(static_cast<std::size_t>(2 * max + 3), 0);
    auto at = [&](long k) -> long& { return v[static_cast<std::size_t>(k + max + 1)]; };
    // trace[d]: the furthest x on diagonals -d..d before step d (index k + d).
    std::vector<std::vector<long>> trace;
    long found = -1, work = 0;
    for (long d = 0; d <= std::min(max, kMaxD) && found < 0; ++d) {
        std::vector<long> slice(static_cast<std::size_t>(2 * d + 1));
        for (long k = -d; k <= d; ++k)
            slice[static_cast<std::size_t>(k + d)] = at(k);
        trace.push_back(std::move(slice));
        for (long k = -d; k <= d; k += 2) {
            long xi = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? at(k + 1) : at(k - 1) + 1;
            long yi = xi - k;
            while (xi < n && yi < m &&
                   x[static_cast<std::size_t>(xi)] == y[static_cast<std::size_t>(yi)]) {
                ++xi;
                ++yi;
            }
            at(k) = xi;
            if (xi >= n && yi >= m) {
                found = d;
                break;
            }
        }
        work += max;
        if (work > kMaxWork) return std::nullopt;
    }
    if (found < 0) return std::nullopt;
    // Back from (n, m): the script as (op, line) with op ' ', '-', '+'.
    std::vector<std::pair<char, std::string_view>> script;
    long xi = n, yi = m;
    for (long d = found; d > 0; --d) {
        const std::vector<long>& pv = trace[static_cast<std::size_t>(d)];
        auto prev = [&](long kk) {
            return kk < -d || kk > d ? -1 : pv[static_cast<std::size_t>(kk + d)];
        };
        long k = xi - yi;
        long prev_k = (k == -d || (k != d && prev(k - 1) < prev(k + 1))) ? k + 1 : k - 1;
        long px = prev(prev_k), py = px - prev_k;
        while (xi > px && yi > py) {
            script.push_back({' ', x[static_cast<std::size_t>(--xi)]});
            --yi;
        }
        if (xi == px)
            script.push_back({'+', y[static_cast<std::size_t>(--yi)]});
        else
            script.push_back({'-', x[static_cast<std::size_t>(--xi)]});
    }
    while (xi > 0 && yi > 0) {
        script.push_back({' ', x[static_cast<std::size_t>(--xi)]});
        --yi;
    }
    std::reverse(script.begin(), script.end());
    std::string out = "--- " + a_name + "\n+++ " + b_name + "\n";
    constexpr std::size_t kContext = 3;
    std::size_t i = 0;
    long a_line = 0, b_line = 0;  // lines of a and b before script[i]
    std::vector<long> a_at(script.size() + 1), b_at(script.size() + 1);
    for (std::size_t j = 0; j < script.size(); ++j) {
        a_at[j] = a_line;
        b_at[j] = b_line;
        if (script[j].first != '+') ++a_line;
        if (script[j].first != '-') ++b_line;
    }
    a_at[script.size()] = a_line;
    b_at[script.size()] = b_line;
    while (i < script.size()) {
        if (script[i].first == ' ') {
            ++i;
            continue;
        }
        std::size_t start = i >= kContext ? i - kContext : 0;
        std::size_t end = i;
        // Extend over changes closer than 2 * context apart.
        for (;;) {
            while (end < script.size() && script[end].first != ' ')
                ++end;
            std::size_t next = end;
            while (next < script.size() && script[next].first == ' ')
                ++next;
            if (next < script.size() && next - end <= 2 * kContext) {
                end = next;
                continue;
            }
            end = std::min(script.size(), end + kContext);
            break;
        }
        long a_count = a_at[end] - a_at[start], b_count = b_at[end] - b_at[start];
        char head[96];
        std::snprintf(head, sizeof head, "@@ -%ld,%ld +%ld,%ld @@\n",
                      a_count ? a_at[start] + 1 : a_at[start], a_count,
                      b_count ? b_at[start] + 1 : b_at[start], b_count);
        out += head;
        for (std::size_t j = start; j < end; ++j) {
            out += script[j].first;
            out += script[j].second;
            if (!script[j].second.ends_with('\n')) out += "\n\\ No newline at end of file\n";
        }
        i = end;
    }
    return out;
}

Result<Counts> diff_changes(int tar, const Fd& dir,
                            const std::function<void(const std::string&)>& out) {
    Counts counts;
    TarReader r(tar);
    auto old_fd = [&](const std::string& path) -> Fd {
        int fd = open_beneath(dir, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        return fd < 0 ? Fd() : Fd(fd);
    };
    // A file's content, whole, or nullopt when it is larger than the diff limit.
    auto read_all = [](int fd) -> std::optional<std::string> {
        struct stat st {};
        if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return std::string();
        if (static_cast<std::uint64_t>(st.st_size) > kDiffLimit) return std::nullopt;
        std::string s(static_cast<std::size_t>(st.st_size), '\0');
        std::size_t at = 0;
        while (at < s.size()) {
            ssize_t n = ::read(fd, s.data() + at, s.size() - at);
            if (n <= 0) break;
            at += static_cast<std::size_t>(n);
        }
        s.resize(at);
        return s;
    };
    auto link_of = [&](const std::string& path) {
        auto [p, b] = split(path);
        int pfd = p.empty() ? ::dup(dir.get()) : open_beneath(dir, p, O_PATH | O_DIRECTORY);
        if (pfd < 0) return std::string();
        Fd pf(pfd);
        char buf[4096];
        ssize_t n = ::readlinkat(pf.get(), b.c_str(), buf, sizeof buf);
        return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
    };
    auto what = [](const struct stat& st) {
        return S_ISDIR(st.st_mode) ? "directory" : S_ISLNK(st.st_mode) ? "symlink" : "file";
    };
    auto mode_line = [&](const std::string& q, unsigned before, unsigned after) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ": %04o => %04o\n", before & 07777, after & 07777);
        out("mode " + q + buf);
    };
    auto text_diff = [&](const std::string& before, const std::string& after, const std::string& a,
                         const std::string& b, const std::string& q) {
        if (!is_text(after) || !is_text(before)) {
            if (after != before) out("Binary files " + a + " and " + b + " differ\n");
            return;
        }
        auto d = unified_diff(before, after, a, b);
        if (!d)
            out("Files " + a + " and " + b + " differ (too many changes to show) " + q + "\n");
        else
            out(*d);
    };
    for (;;) {
        BUTTER_ASSIGN_OR_RETURN(std::optional<TarEntry> e, r.next());
        if (!e) break;
        auto name = clean_name(e->name);
        if (!name) {
            if (e->type == TarEntry::Type::Directory &&
                e->name.find_first_not_of("./") == std::string::npos)
                continue;
            return fail(refuse(e->name, e->name.starts_with("/") ? "an absolute name"
                                                                 : "a name that leaves the "
                                                                   "directory ('..')"));
        }
        auto [parent, base] = split(*name);
        if (base.starts_with(".wh.") && e->type == TarEntry::Type::File) {
            if (base == ".wh..wh..opq") {
                ++counts.modified;
                out("replaced directory " + quote_path(parent) + "/\n");
                continue;
            }
            std::string gone = parent.empty() ? base.substr(4) : parent + "/" + base.substr(4);
            auto st = stat_beneath(dir, gone);
            if (!st) continue;
            ++counts.deleted;
            std::string q = quote_path(gone);
            if (S_ISREG(st->st_mode)) {
                Fd f = old_fd(gone);
                auto old = f.valid() ? read_all(f.get()) : std::optional<std::string>("");
                if (old && is_text(*old)) {
                    if (auto d = unified_diff(*old, "", "a/" + q, "/dev/null")) {
                        out(*d);
                        continue;
                    }
                }
            }
            out(std::string("deleted ") + what(*st) + " " + q + (S_ISDIR(st->st_mode) ? "/" : "") +
                "\n");
            continue;
        }
        auto old_st = stat_beneath(dir, *name);
        std::string q = quote_path(*name);
        if (e->type == TarEntry::Type::Directory) {
            if (!old_st) {
                ++counts.added;
                out("new directory " + q + "/\n");
            } else if (!S_ISDIR(old_st->st_mode)) {
                ++counts.modified;
                out(std::string("replaced ") + what(*old_st) + " " + q + " by a directory\n");
            } else if ((old_st->st_mode & 07777) != e->mode) {
                ++counts.modified;
                mode_line(q + "/", old_st->st_mode, e->mode);
            }
            continue;
        }
        if (e->type == TarEntry::Type::Symlink) {
            std::string now = "symlink " + q + " -> " + quote_path(e->link);
            if (!old_st) {
                ++counts.added;
                out("new " + now + "\n");
            } else if (!S_ISLNK(old_st->st_mode)) {
                ++counts.modified;
                out(std::string("replaced ") + what(*old_st) + " " + q + " by a " + now + "\n");
            } else if (std::string before = link_of(*name); before != e->link) {
                ++counts.modified;
                out(now + " (was -> " + quote_path(before) + ")\n");
            }
            continue;
        }
        if (e->type != TarEntry::Type::File) {
            ++counts.modified;
            out("changed " + q + " (not a file)\n");
            continue;
        }
        bool was_file = old_st && S_ISREG(old_st->st_mode);
        if (old_st && !was_file) {
            ++counts.modified;
            out(std::string("replaced ") + what(*old_st) + " " + q + " by a file\n");
        }
        std::string a = was_file ? "a/" + q : "/dev/null", b = "b/" + q;
        if (was_file && (old_st->st_mode & 07777) != e->mode) {
            ++counts.modified;
            mode_line(q, old_st->st_mode, e->mode);
        }
        Fd f = was_file ? old_fd(*name) : Fd();
        std::optional<std::string> old = f.valid() ? read_all(f.get()) : std::string();
        if (e->size > kDiffLimit || !old) {
            // Too large to show: compared block by block.
            bool same =
                was_file && f.valid() && static_cast<std::uint64_t>(old_st->st_size) == e->size;
            if (same && ::lseek(f.get(), 0, SEEK_SET) < 0) same = false;
            std::string block;
            BUTTER_TRY(r.content_each([&](std::string_view chunk) {
                if (!same) return;
                block.resize(chunk.size());
                std::size_t at = 0;
                while (at < chunk.size()) {
                    ssize_t n = ::read(f.get(), block.data() + at, chunk.size() - at);
                    if (n <= 0) break;
                    at += static_cast<std::size_t>(n);
                }
                same = at == chunk.size() && std::string_view(block) == chunk;
            }));
            if (!same) {
                ++(was_file ? counts.modified : counts.added);
                counts.bytes += e->size;
                out("Files " + a + " and " + b + " differ (larger than a diff shows)\n");
            }
            continue;
        }
        BUTTER_ASSIGN_OR_RETURN(std::string now, r.content_string(kDiffLimit));
        if (was_file && now == *old) continue;
        ++(was_file ? counts.modified : counts.added);
        counts.bytes += e->size;
        text_diff(*old, now, a, b, q);
    }
    return counts;
}

}  // namespace butter::launcher::changes
