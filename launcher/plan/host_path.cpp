#include "plan/host_path.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include <butter/mount.hpp>

namespace butter::launcher {

namespace {

// The components of `p`, in order ("" and "." dropped).
void push_components(std::deque<std::string>& q, std::string_view p, bool front) {
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i < p.size()) {
        std::size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        if (j > i && p.substr(i, j - i) != ".") parts.emplace_back(p.substr(i, j - i));
        i = j + 1;
    }
    if (front)
        q.insert(q.begin(), parts.begin(), parts.end());
    else
        q.insert(q.end(), parts.begin(), parts.end());
}

std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (const auto& p : parts)
        s += "/" + p;
    return s.empty() ? "/" : s;
}

}  // namespace

Result<HostPath> resolve_host_path(std::string_view path, Symlinks symlinks) {
    if (path.empty() || path[0] != '/')
        return fail(Error("resolve", EINVAL, std::string(path)).with_hint("not absolute"));
    std::deque<std::string> todo;
    push_components(todo, path, false);
    // The directories walked so far, "/" first: ".." goes back one without a lookup.
    std::vector<Fd> dirs;
    std::vector<std::string> names;
    BUTTER_ASSIGN_OR_RETURN(Fd root, open("/", O_PATH | O_DIRECTORY));
    dirs.push_back(std::move(root));
    int links = 0;
    while (!todo.empty()) {
        std::string name = std::move(todo.front());
        todo.pop_front();
        if (name == "..") {
            if (!names.empty()) {
                names.pop_back();
                dirs.pop_back();
            }
            continue;
        }
        std::string here = join(names) + (names.empty() ? "" : "/") + name;
        int fd = ::openat(dirs.back().get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_errno("openat", here);
        Fd next(fd);
        struct stat st {};
        if (::fstat(next.get(), &st) < 0) return fail_errno("fstat", here);
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = ::readlinkat(next.get(), "", target, sizeof target - 1);
            if (n < 0) return fail_errno("readlinkat", here);
            std::string_view text(target, static_cast<std::size_t>(n));
            if (symlinks != Symlinks::Follow && st.st_uid != 0)
                return fail(Error::message("openat",
                                           "a symlink (to '" + std::string(text) +
                                               "') that butter does not follow",
                                           here)
                                .with_hint("a sandbox could have made it; name its target"));
            if (++links > 40) return fail(Error("resolve", ELOOP, std::string(path)));
            if (text.starts_with("/")) {
                names.clear();
                dirs.resize(1);
            }
            push_components(todo, text, true);
            continue;
        }
        if (!todo.empty() && !S_ISDIR(st.st_mode)) return fail(Error("openat", ENOTDIR, here));
        names.push_back(std::move(name));
        dirs.push_back(std::move(next));
    }
    HostPath out;
    out.path = join(names);
    out.fd = std::move(dirs.back());
    if (::fstat(out.fd.get(), &out.st) < 0) return fail_errno("fstat", out.path);
    return out;
}

Result<Fd> reopen_host_path(const std::string& path, dev_t dev, ino_t ino, int flags) {
    BUTTER_ASSIGN_OR_RETURN(Fd fd, open_no_symlinks(AT_FDCWD, path.c_str(), flags));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("fstat", path);
    if (st.st_dev != dev || st.st_ino != ino)
        return fail(Error("openat2", ESTALE, path).with_hint("replaced since it was resolved"));
    return fd;
}

Result<HostFile> HostFile::at(std::string_view path) {
    auto slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash + 1 == path.size())
        return fail(Error("open", EINVAL, std::string(path)).with_hint("not a file path"));
    std::string_view name = path.substr(slash + 1);
    if (name == "." || name == "..")
        return fail(Error("open", EINVAL, std::string(path)).with_hint("not a file path"));
    BUTTER_ASSIGN_OR_RETURN(HostPath dir, resolve_host_path(path.substr(0, slash + 1)));
    if (!S_ISDIR(dir.st.st_mode)) return fail(Error("open", ENOTDIR, dir.path));
    HostFile f;
    f.dir_ = std::move(dir.fd);
    f.name_ = std::string(name);
    f.path_ = (dir.path == "/" ? "" : dir.path) + "/" + f.name_;
    return f;
}

Result<Fd> HostFile::open_truncated() const {
    constexpr int kFlags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int fd = ::openat(dir_.get(), name_.c_str(), kFlags, 0644);
    bool replace = fd < 0 && errno == ELOOP;  // a symlink at the name
    if (fd < 0 && errno == ENXIO) {
        // A whiteout (0:0) a sandbox made, or a FIFO without a reader: replaced.
        struct stat at {};
        replace = ::fstatat(dir_.get(), name_.c_str(), &at, AT_SYMLINK_NOFOLLOW) == 0 &&
                  (S_ISFIFO(at.st_mode) || (S_ISCHR(at.st_mode) && at.st_rdev == 0));
        errno = ENXIO;
    }
    struct stat st {};
    if (fd >= 0) {
        if (::fstat(fd, &st) < 0) {
            Error e = Error::from_errno("fstat", path_);
            ::close(fd);
            return fail(std::move(e));
        }
        // A file with other names: truncating it would write through to them. And one that
        // someone else planted in a sticky, world-writable directory (/tmp) for butter to fill
        // (what fs.protected_regular refuses, where the host has it off).
        struct stat dir {};
        bool planted = S_ISREG(st.st_mode) && st.st_uid != ::geteuid() &&
                       ::fstat(dir_.get(), &dir) == 0 && (dir.st_mode & S_ISVTX) &&
                       (dir.st_mode & S_IWOTH) && st.st_uid != dir.st_uid;
        replace = S_ISREG(st.st_mode) && (st.st_nlink > 1 || planted);
        if (replace) ::close(fd);
        // A FIFO or socket may have a reader the sandbox placed there: a file or a device only.
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
            ::close(fd);
            return fail(Error::message("openat", "not a regular file or a device", path_));
        }
    }
    if (replace) {
        if (::unlinkat(dir_.get(), name_.c_str(), 0) < 0) return fail_errno("unlinkat", path_);
        fd = ::openat(dir_.get(), name_.c_str(), kFlags | O_EXCL, 0644);
    }
    if (fd < 0) return fail_errno("openat", path_);
    Fd out(fd);
    if (!replace && S_ISREG(st.st_mode) && ::ftruncate(out.get(), 0) < 0)
        return fail_errno("ftruncate", path_);
    BUTTER_TRY(set_nonblocking(out, false));
    return out;
}

namespace {

// A directory of butter's own user that the sandbox made unwritable (chmod 555, from inside):
// writable for butter again for as long as `this` lives, then as the sandbox left it.
class OwnDirWritable {
  public:
    explicit OwnDirWritable(int dir) : dir_(dir) {
        struct stat st {};
        if (::fstat(dir, &st) < 0 || st.st_uid != ::geteuid()) return;
        if ((st.st_mode & S_IRWXU) == S_IRWXU) return;
        if (::chmod(path().c_str(), (st.st_mode & 07777) | S_IRWXU) == 0)
            restore_ = st.st_mode & 07777;
    }
    ~OwnDirWritable() {
        if (restore_ >= 0) (void)::chmod(path().c_str(), static_cast<mode_t>(restore_));
    }
    OwnDirWritable(const OwnDirWritable&) = delete;
    OwnDirWritable& operator=(const OwnDirWritable&) = delete;
    bool changed() const { return restore_ >= 0; }

  private:
    // The descriptor is O_PATH (fchmod refuses it): its magic link, which names exactly it.
    std::string path() const { return "/proc/self/fd/" + std::to_string(dir_); }
    int dir_;
    int restore_ = -1;
};

}  // namespace

Result<void> HostFile::replace(std::string_view data) const {
    return replace_with([&](int fd) -> Result<void> {
        for (std::size_t done = 0; done < data.size();) {
            ssize_t n = ::write(fd, data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return fail_errno("write", path_);
            done += static_cast<std::size_t>(n);
        }
        return {};
    });
}

Result<void> HostFile::check_replaceable() const {
    struct stat at {};
    if (::fstatat(dir_.get(), name_.c_str(), &at, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(at.st_mode))
            return fail(Error("open", EISDIR, path_).with_hint("name a file, not a directory"));
        if (at.st_uid == 0 && !S_ISREG(at.st_mode) && !(S_ISCHR(at.st_mode) && at.st_rdev != 0))
            return fail(Error::message(
                "open", "root's own, neither a file nor a device: not replaced", path_));
    }
    if (::faccessat(dir_.get(), ".", W_OK | X_OK, AT_EACCESS) < 0)
        return fail_errno("faccessat", path_ + " (its directory)");
    return {};
}

Result<void> HostFile::replace_with(const std::function<Result<void>(int fd)>& write) const {
    // A device at the name (--report /dev/null, /dev/stderr's terminal) is written, never
    // replaced by a file: a sandbox can make no device but a whiteout (0:0), which is replaced
    // like anything else it may plant. What root made there that is neither (/dev/stdout, a
    // symlink) is the caller's mistake: refused, not replaced.
    struct stat at {};
    bool exists = ::fstatat(dir_.get(), name_.c_str(), &at, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && at.st_uid == 0 && !S_ISREG(at.st_mode) &&
        !(S_ISCHR(at.st_mode) && at.st_rdev != 0) && !S_ISDIR(at.st_mode))
        return fail(
            Error::message("openat", "root's own, neither a file nor a device: not replaced", path_)
                .with_hint("name another file, or - for stdout"));
    if (exists && S_ISCHR(at.st_mode) && at.st_rdev != 0) {
        BUTTER_ASSIGN_OR_RETURN(Fd dev, open_truncated());
        return write(dev.get());
    }
    std::random_device rd;
    char tmp[64];
    std::snprintf(tmp, sizeof tmp, ".butter-%08x.tmp", rd());
    constexpr int kCreate = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(dir_.get(), tmp, kCreate, 0644);
    // The directory may be one the sandbox could write, and so chmod: the report is butter's
    // to write all the same (a report left unwritten leaves whatever the sandbox put there).
    std::optional<OwnDirWritable> writable;
    if (fd < 0 && errno == EACCES) {
        writable.emplace(dir_.get());
        if (writable->changed())
            fd = ::openat(dir_.get(), tmp, kCreate, 0644);
        else
            errno = EACCES;
    }
    if (fd < 0) return fail_errno("openat", path_ + " (a new file beside it)");
    Fd out(fd);
    if (auto w = write(out.get()); !w) {
        ::unlinkat(dir_.get(), tmp, 0);
        return w;
    }
    if (auto c = out.close(); !c) {
        ::unlinkat(dir_.get(), tmp, 0);
        return c;
    }
    if (::renameat(dir_.get(), tmp, dir_.get(), name_.c_str()) == 0) return {};
    // A directory at the name (EISDIR, or ENOTEMPTY/EEXIST for a directory over a directory):
    // exchanged with the report, and what was planted set aside beside it (removed if empty).
    Error e = Error::from_errno("renameat", path_);
    if ((errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST) &&
        ::renameat2(dir_.get(), tmp, dir_.get(), name_.c_str(), RENAME_EXCHANGE) == 0) {
        if (::unlinkat(dir_.get(), tmp, AT_REMOVEDIR) < 0) {
            std::string aside = name_ + ".planted-" + std::to_string(rd() % 100000000);
            (void)::renameat(dir_.get(), tmp, dir_.get(), aside.c_str());
        }
        return {};
    }
    ::unlinkat(dir_.get(), tmp, 0);
    return fail(std::move(e));
}

}  // namespace butter::launcher
