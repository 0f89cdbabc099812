#include "butter/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

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

}  // namespace butter
