// Zero-copy data movement: splice(2), tee(2), vmsplice(2), and pipes with a settable capacity.
//
// splice moves pages between a pipe and another fd (one side must be a pipe); tee duplicates
// a pipe's contents into another pipe without consuming them; vmsplice maps user memory into a
// pipe. All return the byte count moved, which may be less than asked; 0 from splice means EOF
// on the input. With SpliceFlag::NonBlock (or a non-blocking pipe) EAGAIN is reported as an
// Error with errno EAGAIN.
#pragma once

#include <fcntl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

enum class SpliceFlag : unsigned {
    Move = SPLICE_F_MOVE,          // a hint: move pages instead of copying
    NonBlock = SPLICE_F_NONBLOCK,  // do not block on the pipe (the other fd may still block)
    More = SPLICE_F_MORE,          // more data follows (a TCP_CORK-like hint for sockets)
    Gift = SPLICE_F_GIFT,          // vmsplice: the pages are gifted to the kernel
};
std::span<const FlagName<SpliceFlag>> flag_names(SpliceFlag);
using SpliceFlags = Flags<SpliceFlag>;

// A pipe(2) pair, both ends close-on-exec.
struct Pipe {
    Fd read;
    Fd write;
    // pipe2(O_CLOEXEC [| O_NONBLOCK] [| O_DIRECT]).
    [[nodiscard]] static Result<Pipe> create(bool nonblocking = false, bool packet_mode = false);
};

// `off_in`/`off_out`: nullptr to use (and advance) the file position; else read/write at that
// offset and advance the variable (never for the pipe side, which has no offset: ESPIPE).
[[nodiscard]] Result<std::size_t> splice(BorrowedFd in, std::int64_t* off_in, BorrowedFd out,
                                         std::int64_t* off_out, std::size_t len,
                                         SpliceFlags flags = {});
// Duplicates up to `len` bytes from pipe `in` into pipe `out`; `in` keeps its data.
[[nodiscard]] Result<std::size_t> tee(BorrowedFd in, BorrowedFd out, std::size_t len,
                                      SpliceFlags flags = {});
// Maps (or copies) the user buffers into the pipe's write end. Without Gift the pages must not
// be modified until the reader has consumed them.
[[nodiscard]] Result<std::size_t> vmsplice(BorrowedFd pipe_write, std::span<const struct iovec> iov,
                                           SpliceFlags flags = {});

// F_GETPIPE_SZ: the pipe's capacity in bytes.
[[nodiscard]] Result<std::size_t> pipe_size(BorrowedFd pipe);
// F_SETPIPE_SZ: sets the capacity (rounded up to a power-of-two number of pages by the kernel)
// and returns the capacity set. EPERM: above fs.pipe-max-size without CAP_SYS_RESOURCE; EBUSY:
// smaller than the data in the pipe.
[[nodiscard]] Result<std::size_t> set_pipe_size(BorrowedFd pipe, std::size_t size);

}  // namespace butter
