#include "butter/fd.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sys.hpp"

namespace butter {

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);  // never retried: the fd is released even on EINTR
    fd_ = fd;
}

Result<void> Fd::close() {
    int fd = release();
    if (fd < 0) return {};
    if (::close(fd) < 0 && errno != EINTR) return fail_errno("close");
    return {};
}

Result<Fd> Fd::dup() const {
    int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)");
    return Fd(fd);
}

Result<void> Fd::set_nonblocking(bool on) const {
    return butter::set_nonblocking(fd_, on);
}

Result<void> set_nonblocking(BorrowedFd fd, bool on) {
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0) return fail_errno("fcntl(F_GETFL)");
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && ::fcntl(fd.get(), F_SETFL, wanted) < 0)
        return fail_errno("fcntl(F_SETFL)");
    return {};
}

Result<bool> Fd::nonblocking() const {
    return is_nonblocking(fd_);
}

Result<bool> is_nonblocking(BorrowedFd fd) {
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0) return fail_errno("fcntl(F_GETFL)");
    return (flags & O_NONBLOCK) != 0;
}

Result<Fd> open(const char* path, int flags, unsigned mode) {
    int fd = ::open(path, flags | O_CLOEXEC, mode);
    if (fd < 0) return fail_errno("open", path);
    return Fd(fd);
}

Result<Fd> openat(BorrowedFd dir, const char* path, int flags, unsigned mode) {
    int fd = ::openat(dir.get(), path, flags | O_CLOEXEC, mode);
    if (fd < 0) return fail_errno("openat", path);
    return Fd(fd);
}

std::string fd_path(BorrowedFd fd) {
    char link[32], buf[PATH_MAX];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
    ssize_t n = ::readlink(link, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

Result<std::string> read_all(BorrowedFd fd) {
    std::string out;
    std::size_t used = 0;
    for (;;) {
        if (out.size() - used < 4096) out.resize(out.size() + 8192);
        ssize_t n = sys::retry_eintr(
            [&] { return ::read(fd.get(), out.data() + used, out.size() - used); });
        if (n < 0) return fail_errno("read");
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    out.resize(used);
    return out;
}

Result<std::string> read_file(const char* path) {
    BUTTER_ASSIGN_OR_RETURN(Fd fd, open(path, O_RDONLY));
    return with_context(read_all(fd), path);
}

}  // namespace butter
