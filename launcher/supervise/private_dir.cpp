#include "supervise/private_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace butter::launcher {

namespace {

// Opens the directory `name` in `at` as it is (never through a symlink), on file system `dev`.
Result<Fd> open_dir_in(int at, const char* name, dev_t dev, const std::string& path) {
    int fd = ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("openat", path);
    Fd d(fd);
    struct stat st {};
    if (::fstat(fd, &st) < 0) return fail_errno("fstat", path);
    if (st.st_dev != dev) return fail(Error("openat", EXDEV, path));
    return d;
}

// Empties the tree below `top` without recursion (a sandbox may nest directories as deep as
// it likes): into each directory that is not empty, back up through ".." once it is. Nothing
// is followed; a directory on another file system is an error.
Result<void> empty_tree(const Fd& top, const std::string& path) {
    struct stat st {};
    if (::fstat(top.get(), &st) < 0) return fail_errno("fstat", path);
    const dev_t dev = st.st_dev;
    int cur_fd = ::fcntl(top.get(), F_DUPFD_CLOEXEC, 3);
    if (cur_fd < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", path);
    Fd cur(cur_fd);
    std::size_t depth = 0;
    for (;;) {
        // Its owner may have made it read-only: writable again for the removal.
        (void)::fchmod(cur.get(), 0700);
        int listing = ::openat(cur.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (listing < 0) return fail_errno("openat", path);
        DIR* d = ::fdopendir(listing);
        if (!d) {
            ::close(listing);
            return fail_errno("fdopendir", path);
        }
        Fd into;
        Result<void> failed;
        errno = 0;
        while (struct dirent* e = ::readdir(d)) {
            const char* n = e->d_name;
            if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
            struct stat est {};
            if (::fstatat(cur.get(), n, &est, AT_SYMLINK_NOFOLLOW) < 0) {
                failed = fail_errno("fstatat", path + "/.../" + n);
                break;
            }
            if (!S_ISDIR(est.st_mode)) {
                if (::unlinkat(cur.get(), n, 0) < 0) failed = fail_errno("unlinkat", path);
            } else if (est.st_dev != dev) {
                failed = fail(Error("unlinkat", EXDEV, path + "/.../" + n));
            } else if (::unlinkat(cur.get(), n, AT_REMOVEDIR) < 0) {
                if (errno != ENOTEMPTY && errno != EEXIST) {
                    failed = fail_errno("unlinkat", path);
                } else {
                    // Its owner may have taken its own rights away (chmod 0): back as ours.
                    (void)::fchmodat(cur.get(), n, 0700, 0);
                    auto sub = open_dir_in(cur.get(), n, dev, path);
                    if (!sub)
                        failed = fail(std::move(sub).error());
                    else
                        into = std::move(*sub);
                }
            }
            if (!failed || into.valid()) break;
            errno = 0;
        }
        bool read_error = errno != 0 && failed && !into.valid();
        ::closedir(d);
        if (!failed) return failed;
        if (read_error) return fail_errno("readdir", path);
        if (into.valid()) {
            cur = std::move(into);
            ++depth;
            continue;
        }
        if (depth == 0) return {};
        // Empty: up again, where it goes with the next pass over its parent.
        BUTTER_ASSIGN_OR_RETURN(cur, open_dir_in(cur.get(), "..", dev, path));
        --depth;
    }
}

}  // namespace

Result<PrivateDir> PrivateDir::create() {
    const char* base = std::getenv("TMPDIR");
    std::string parent = base && base[0] == '/' ? base : "/tmp";
    int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) return fail_errno("open", parent + " (for the private TMPDIR and HOME)");
    PrivateDir out;
    out.parent_ = Fd(pfd);
    for (int attempt = 0; attempt < 100; ++attempt) {
        unsigned char bytes[6];
        if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes))
            return fail_errno("getrandom");
        static const char kAlphabet[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        std::string name = "butter-";
        for (unsigned char b : bytes)
            name += kAlphabet[b % 62];
        if (::mkdirat(pfd, name.c_str(), 0700) < 0) {
            if (errno == EEXIST) continue;
            return fail_errno("mkdirat", parent + "/" + name);
        }
        out.name_ = name;
        out.path_ = (parent == "/" ? "" : parent) + "/" + name;
        struct stat st {};
        if (::fstat(pfd, &st) < 0) return fail_errno("fstat", parent);
        auto d = open_dir_in(pfd, name.c_str(), st.st_dev, out.path_);
        if (!d) {
            // (Not ours to remove: something else is at the name now.)
            out.name_.clear();
            return fail(std::move(d).error());
        }
        out.dir_ = std::move(*d);
        return out;
    }
    return fail(Error("mkdirat", EEXIST, parent + "/butter-*"));
}

Result<void> PrivateDir::prepare(uid_t uid, gid_t gid) const {
    bool others = uid != ::geteuid();
    if (others && ::fchmod(dir_.get(), 0711) < 0) return fail_errno("fchmod", path_);
    for (const char* sub : {"tmp", "home"}) {
        std::string p = path_ + "/" + sub;
        if (::mkdirat(dir_.get(), sub, 0700) < 0) return fail_errno("mkdirat", p);
        if (others && ::fchownat(dir_.get(), sub, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            return fail_errno("fchownat", p);
    }
    return {};
}

Result<void> PrivateDir::remove() {
    if (!dir_.valid()) return {};
    auto emptied = empty_tree(dir_, path_);
    Result<void> out = emptied;
    if (emptied) {
        // The name, if it still is this directory.
        struct stat mine {
        }, there{};
        if (::fstat(dir_.get(), &mine) == 0 &&
            ::fstatat(parent_.get(), name_.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
            mine.st_dev == there.st_dev && mine.st_ino == there.st_ino &&
            ::unlinkat(parent_.get(), name_.c_str(), AT_REMOVEDIR) < 0)
            out = fail_errno("unlinkat", path_);
    }
    dir_.reset();
    parent_.reset();
    return out;
}

PrivateDir& PrivateDir::operator=(PrivateDir&& o) noexcept {
    if (this != &o) {
        (void)remove();
        parent_ = std::move(o.parent_);
        dir_ = std::move(o.dir_);
        name_ = std::move(o.name_);
        path_ = std::move(o.path_);
    }
    return *this;
}

PrivateDir::~PrivateDir() {
    (void)remove();
}

}  // namespace butter::launcher
