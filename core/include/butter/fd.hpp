// butter::Fd: the unique owner of a file descriptor.
//
// Move-only; the destructor closes the descriptor once and ignores the result (on Linux the fd
// is gone even when close(2) fails, so it is never retried). Call `close()` to see the error of
// the final close, for example on a file that was written. Every fd libbutter creates is
// close-on-exec. Non-owning parameters take `int` or `BorrowedFd`.
#pragma once

#include <string>
#include <utility>

#include "butter/error.hpp"

namespace butter {

// A non-owning view of a descriptor, for parameters that only use it.
class BorrowedFd {
  public:
    constexpr BorrowedFd(int fd) : fd_(fd) {}  // NOLINT: implicit on purpose
    constexpr int get() const { return fd_; }

  private:
    int fd_;
};

class Fd {
  public:
    Fd() = default;
    // Adopts `fd`, which must be -1 or an open descriptor nobody else owns.
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    operator BorrowedFd() const { return BorrowedFd(fd_); }  // NOLINT

    // Gives up ownership; the caller must close the returned fd.
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }
    // Closes the owned fd (ignoring errors) and adopts `fd`.
    void reset(int fd = -1);
    // Closes the owned fd and reports close(2)'s error (EIO, ENOSPC, EDQUOT on some filesystems).
    [[nodiscard]] Result<void> close();

    // dup(2) as F_DUPFD_CLOEXEC; the copy is an independent owner.
    [[nodiscard]] Result<Fd> dup() const;
    // Sets or clears O_NONBLOCK (fcntl F_SETFL).
    [[nodiscard]] Result<void> set_nonblocking(bool on) const;
    // Whether O_NONBLOCK is set (fcntl F_GETFL).
    [[nodiscard]] Result<bool> nonblocking() const;

  private:
    int fd_ = -1;
};

// Sets or clears O_NONBLOCK on a descriptor (fcntl F_GETFL/F_SETFL), owned or not.
[[nodiscard]] Result<void> set_nonblocking(BorrowedFd fd, bool on);
// Whether O_NONBLOCK is set on a descriptor (fcntl F_GETFL).
[[nodiscard]] Result<bool> is_nonblocking(BorrowedFd fd);

// open(2) with O_CLOEXEC always added.
[[nodiscard]] Result<Fd> open(const char* path, int flags, unsigned mode = 0);
[[nodiscard]] Result<Fd> openat(BorrowedFd dir, const char* path, int flags, unsigned mode = 0);

// Reads `fd` from its current offset to EOF (read(2), retried on EINTR; a short read is not
// EOF, only a read of 0 is). Blocks on a pipe or socket until the writer closes it.
[[nodiscard]] Result<std::string> read_all(BorrowedFd fd);
// The path /proc gives for an open fd (readlink of /proc/self/fd/N: " (deleted)" appended for
// an unlinked file), or "" if it cannot be read.
std::string fd_path(BorrowedFd fd);
// Reads a whole file: open(2) O_RDONLY|O_CLOEXEC, then read_all. Errors name the path. No
// iostreams: their locale set-up costs more than the read at start-up.
[[nodiscard]] Result<std::string> read_file(const char* path);

}  // namespace butter
