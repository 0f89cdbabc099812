// Raw system calls: the only place libbutter calls syscall(2) directly, and the only place
// for kernel constants that the installed headers may lack. Each shim returns what the kernel
// returns (a value >= 0, or -errno) and never touches errno-based reporting; the public
// wrappers turn -errno into Result at the boundary (liburing's convention).
#pragma once

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace butter::sys {

inline long ret(long r) {
    return r < 0 ? -errno : r;
}

// Landlock (linux/landlock.h of Debian 12 stops at ABI 2): the ruleset attribute as of ABI 6,
// the rule types, and the access rights and scopes each ABI added.
struct landlock_ruleset_attr_v6 {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;  // ABI 4
    std::uint64_t scoped;              // ABI 6
};
struct landlock_path_beneath_attr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
} __attribute__((packed));
struct landlock_net_port_attr {
    std::uint64_t allowed_access;
    std::uint64_t port;
};
constexpr int kLandlockRulePathBeneath = 1;
constexpr int kLandlockRuleNetPort = 2;
constexpr unsigned kLandlockCreateRulesetVersion = 1U << 0;
inline long landlock_create_ruleset(const void* attr, std::size_t size, unsigned flags) {
    return ret(::syscall(SYS_landlock_create_ruleset, attr, size, flags));
}
inline long landlock_add_rule(int ruleset, int type, const void* attr, unsigned flags) {
    return ret(::syscall(SYS_landlock_add_rule, ruleset, type, attr, flags));
}
inline long landlock_restrict_self(int ruleset, unsigned flags) {
    return ret(::syscall(SYS_landlock_restrict_self, ruleset, flags));
}

inline pid_t getpid() {
    return static_cast<pid_t>(::syscall(SYS_getpid));
}
inline pid_t getppid() {
    return static_cast<pid_t>(::syscall(SYS_getppid));
}
inline pid_t gettid() {
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

inline int pidfd_open(pid_t pid, unsigned flags) {
    return static_cast<int>(ret(::syscall(SYS_pidfd_open, pid, flags)));
}
inline int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
    return static_cast<int>(ret(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags)));
}
inline int pidfd_getfd(int pidfd, int targetfd, unsigned flags) {
    return static_cast<int>(ret(::syscall(SYS_pidfd_getfd, pidfd, targetfd, flags)));
}
// clone3 with fork-like semantics (no stack): returns 0 in the child, the pid in the parent.
inline long clone3(struct clone_args* args, std::size_t size) {
    return ret(::syscall(SYS_clone3, args, size));
}
// clone(2) with fork-like semantics; with CLONE_PIDFD the parent's pidfd lands in *pidfd
// (x86-64 argument order: flags, stack, parent_tid, child_tid, tls).
inline long clone(std::uint64_t flags, int* pidfd) {
    return ret(::syscall(SYS_clone, flags, nullptr, pidfd, nullptr, nullptr));
}
inline int pivot_root(const char* new_root, const char* put_old) {
    return static_cast<int>(ret(::syscall(SYS_pivot_root, new_root, put_old)));
}
inline int close_range(unsigned first, unsigned last, unsigned flags) {
    return static_cast<int>(ret(::syscall(SYS_close_range, first, last, flags)));
}

// Linux native AIO (no glibc wrappers).
inline int io_setup(unsigned nr, aio_context_t* ctx) {
    return static_cast<int>(ret(::syscall(SYS_io_setup, nr, ctx)));
}
inline int io_destroy(aio_context_t ctx) {
    return static_cast<int>(ret(::syscall(SYS_io_destroy, ctx)));
}
inline int io_submit(aio_context_t ctx, long n, struct iocb** iocbs) {
    return static_cast<int>(ret(::syscall(SYS_io_submit, ctx, n, iocbs)));
}
inline int io_getevents(aio_context_t ctx, long min, long max, struct io_event* events,
                        struct timespec* timeout) {
    return static_cast<int>(ret(::syscall(SYS_io_getevents, ctx, min, max, events, timeout)));
}

// Calls `fn` again while it fails with EINTR. Only for calls where a retry is correct (read,
// write, waitid, epoll_wait, ...), never for close(2).
template <typename F>
auto retry_eintr(F&& fn) {
    for (;;) {
        auto r = fn();
        if (r >= 0 || errno != EINTR) return r;
    }
}

// Reads until `len` bytes or EOF. Returns the byte count (short only at EOF) or -errno.
// Caveat (as folly's readFull): on error the bytes already read are consumed and lost, and on a
// non-blocking fd EAGAIN after a partial read is reported as -EAGAIN.
inline long read_full(int fd, void* buf, std::size_t len) {
    std::size_t done = 0;
    while (done < len) {
        ssize_t r =
            retry_eintr([&] { return ::read(fd, static_cast<char*>(buf) + done, len - done); });
        if (r < 0) return -errno;
        if (r == 0) break;
        done += static_cast<std::size_t>(r);
    }
    return static_cast<long>(done);
}

// Writes all `len` bytes. Returns `len` or -errno (with the same caveats as read_full).
inline long write_full(int fd, const void* buf, std::size_t len) {
    std::size_t done = 0;
    while (done < len) {
        ssize_t r = retry_eintr(
            [&] { return ::write(fd, static_cast<const char*>(buf) + done, len - done); });
        if (r < 0) return -errno;
        done += static_cast<std::size_t>(r);
    }
    return static_cast<long>(done);
}

}  // namespace butter::sys
