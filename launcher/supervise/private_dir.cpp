#include "supervise/private_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

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

// Empties the tree below `top` without recursion (a sandbox may nest directories deeply),
// holding a descriptor of each directory on the way down: never a path, never "..", so a
// directory renamed meanwhile is emptied where it is and nothing above the tree is reached.
// Nothing is followed; a directory on another file system is an error; at most kMaxDepth
// descriptors (a subtree below that is moved up to the top first), and a bounded number of
// passes (a process that still writes there cannot keep this going).
constexpr std::size_t kMaxDepth = 256;
constexpr std::size_t kMaxPasses = 1'000'000;

Result<void> empty_tree(const Fd& top, const std::string& path) {
    struct stat st {};
    if (::fstat(top.get(), &st) < 0) return fail_errno("fstat", path);
    const dev_t dev = st.st_dev;
    std::vector<Fd> stack;
    int first = ::fcntl(top.get(), F_DUPFD_CLOEXEC, 3);
    if (first < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", path);
    stack.emplace_back(first);
    for (std::size_t pass = 0; !stack.empty(); ++pass) {
        if (pass == kMaxPasses) return fail(Error("unlinkat", EBUSY, path + " (still changing)"));
        const Fd& cur = stack.back();
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
        std::string into_name;
        Result<void> failed;
        errno = 0;
        while (struct dirent* e = ::readdir(d)) {
            const char* n = e->d_name;
            if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
            struct stat est {};
            if (::fstatat(cur.get(), n, &est, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT) failed = fail_errno("fstatat", path + "/.../" + n);
            } else if (!S_ISDIR(est.st_mode)) {
                if (::unlinkat(cur.get(), n, 0) < 0 && errno != ENOENT)
                    failed = fail_errno("unlinkat", path + "/.../" + n);
            } else if (est.st_dev != dev) {
                failed = fail(Error("unlinkat", EXDEV, path + "/.../" + n));
            } else if (::unlinkat(cur.get(), n, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                if (errno != ENOTEMPTY && errno != EEXIST) {
                    failed = fail_errno("unlinkat", path + "/.../" + n);
                } else {
                    auto sub = open_dir_in(cur.get(), n, dev, path);
                    if (!sub) {
                        // Its owner took its rights away (chmod 0): given back through a
                        // descriptor of the directory itself, never its name again.
                        int o = ::openat(cur.get(), n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        struct stat ost {};
                        if (o >= 0 && ::fstat(o, &ost) == 0 && S_ISDIR(ost.st_mode) &&
                            ost.st_dev == dev) {
                            std::string self = "/proc/self/fd/" + std::to_string(o);
                            (void)::chmod(self.c_str(), 0700);
                            sub = open_dir_in(cur.get(), n, dev, path);
                        }
                        if (o >= 0) ::close(o);
                    }
                    if (!sub) {
                        failed = fail(std::move(sub).error());
                    } else {
                        into = std::move(*sub);
                        into_name = n;
                    }
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
            if (stack.size() == kMaxDepth) {
                // Deeper than the descriptors kept: that subtree moves up to the top (within
                // the tree, on its file system), and its removal starts over from there.
                std::string up = ".butter-up-" + std::to_string(pass);
                if (::renameat(cur.get(), into_name.c_str(), stack.front().get(), up.c_str()) < 0)
                    return fail_errno("renameat", path + " (deeper than 256 levels)");
                stack.resize(1);
                continue;
            }
            stack.push_back(std::move(into));
            continue;
        }
        // Empty: its parent's next pass removes it.
        stack.pop_back();
    }
    return {};
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

Result<void> PrivateDir::prepare(uid_t uid, gid_t gid) {
    owner_uid_ = uid;
    owner_gid_ = gid;
    bool others = uid != ::geteuid();
    // Theirs, as the tmpfs home would be (its name in the parent stays out of their reach:
    // Landlock gives them nothing there).
    if (others && ::fchown(dir_.get(), uid, gid) < 0) return fail_errno("fchown", path_);
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
    Result<void> emptied;
    if (owner_uid_ != ::geteuid()) {
        // As the command's ids, in a child of their own: the removal can do nothing the
        // sandbox could not have done itself, whatever it left or still changes there.
        pid_t pid = ::fork();
        if (pid < 0) {
            emptied = fail_errno("fork", path_);
        } else if (pid == 0) {
            if (::setgroups(0, nullptr) < 0 ||
                ::setresgid(owner_gid_, owner_gid_, owner_gid_) < 0 ||
                ::setresuid(owner_uid_, owner_uid_, owner_uid_) < 0)
                ::_exit(EPERM);
            auto r = empty_tree(dir_, path_);
            ::_exit(r ? 0 : (r.error().errno_value() ? r.error().errno_value() : EIO));
        } else {
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                emptied = fail(Error("unlinkat", WIFEXITED(status) ? WEXITSTATUS(status) : EINTR,
                                     path_ + " (emptied as the command's user)"));
        }
    } else {
        emptied = empty_tree(dir_, path_);
    }
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
        owner_uid_ = o.owner_uid_;
        owner_gid_ = o.owner_gid_;
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
