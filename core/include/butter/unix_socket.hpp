// Unix stream/datagram socket pairs and passing descriptors over them (SCM_RIGHTS), for
// handing fds between a sandbox's setup child and its supervisor.
#pragma once

#include <sys/types.h>

#include <span>
#include <string>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"

namespace butter {

struct SocketPair {
    Fd first;
    Fd second;
    // socketpair(AF_UNIX, type | SOCK_CLOEXEC): type is SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
    [[nodiscard]] static Result<SocketPair> create(int type);
};

// sendmsg(2) of `data` (at least one byte is sent; an empty span sends one NUL) with `fds`
// attached as SCM_RIGHTS. The fds stay open on this side.
[[nodiscard]] Result<void> send_fds(BorrowedFd socket, std::span<const int> fds,
                                    std::span<const char> data = {});
// recvmsg(2) of up to `max_fds` descriptors (received close-on-exec) and up to `max_data` bytes.
// An empty `data` with no fds means the peer closed.
struct Received {
    std::vector<Fd> fds;
    std::string data;
    pid_t sender_pid = 0;  // SCM_CREDENTIALS's, on a socket with SO_PASSCRED (0: none came)
};
[[nodiscard]] Result<Received> recv_fds(BorrowedFd socket, std::size_t max_fds,
                                        std::size_t max_data = 256);

}  // namespace butter
