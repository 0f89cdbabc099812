#include "butter/splice.hpp"

#include <unistd.h>

#include <array>
#include <climits>

#include "sys.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<SpliceFlag>, 4> kNames{{
    {SpliceFlag::Move, "Move"},
    {SpliceFlag::NonBlock, "NonBlock"},
    {SpliceFlag::More, "More"},
    {SpliceFlag::Gift, "Gift"},
}};

Result<std::size_t> byte_count(ssize_t r, const char* call) {
    if (r < 0) return fail_errno(call);
    return static_cast<std::size_t>(r);
}
}  // namespace

std::span<const FlagName<SpliceFlag>> flag_names(SpliceFlag) {
    return kNames;
}

Result<Pipe> Pipe::create(bool nonblocking, bool packet_mode) {
    int fds[2];
    int flags = O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0) | (packet_mode ? O_DIRECT : 0);
    if (::pipe2(fds, flags) < 0) return fail_errno("pipe2");
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

Result<std::size_t> splice(BorrowedFd in, std::int64_t* off_in, BorrowedFd out,
                           std::int64_t* off_out, std::size_t len, SpliceFlags flags) {
    static_assert(sizeof(loff_t) == sizeof(std::int64_t));
    ssize_t r = sys::retry_eintr([&] {
        return ::splice(in.get(), reinterpret_cast<loff_t*>(off_in), out.get(),
                        reinterpret_cast<loff_t*>(off_out), len, flags.raw());
    });
    return byte_count(r, "splice");
}

Result<std::size_t> tee(BorrowedFd in, BorrowedFd out, std::size_t len, SpliceFlags flags) {
    ssize_t r = sys::retry_eintr([&] { return ::tee(in.get(), out.get(), len, flags.raw()); });
    return byte_count(r, "tee");
}

Result<std::size_t> vmsplice(BorrowedFd pipe_write, std::span<const struct iovec> iov,
                             SpliceFlags flags) {
    ssize_t r = sys::retry_eintr(
        [&] { return ::vmsplice(pipe_write.get(), iov.data(), iov.size(), flags.raw()); });
    return byte_count(r, "vmsplice");
}

Result<std::size_t> pipe_size(BorrowedFd pipe) {
    int r = ::fcntl(pipe.get(), F_GETPIPE_SZ);
    if (r < 0) return fail_errno("fcntl(F_GETPIPE_SZ)");
    return static_cast<std::size_t>(r);
}

Result<std::size_t> set_pipe_size(BorrowedFd pipe, std::size_t size) {
    if (size > INT_MAX) return fail(Error("fcntl(F_SETPIPE_SZ)", EINVAL, std::to_string(size)));
    int r = ::fcntl(pipe.get(), F_SETPIPE_SZ, static_cast<int>(size));
    if (r < 0) return fail_errno("fcntl(F_SETPIPE_SZ)", std::to_string(size));
    return static_cast<std::size_t>(r);
}

}  // namespace butter
