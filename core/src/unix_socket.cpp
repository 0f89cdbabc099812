#include "butter/unix_socket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sys.hpp"

namespace butter {

Result<SocketPair> SocketPair::create(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0) return fail_errno("socketpair");
    return SocketPair{Fd(fds[0]), Fd(fds[1])};
}

Result<void> send_fds(BorrowedFd socket, std::span<const int> fds, std::span<const char> data) {
    char nul = 0;
    struct iovec iov {};
    iov.iov_base = data.empty() ? &nul : const_cast<char*>(data.data());
    iov.iov_len = data.empty() ? 1 : data.size();
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = sys::retry_eintr([&] { return ::sendmsg(socket.get(), &msg, MSG_NOSIGNAL); });
    if (n < 0) return fail_errno("sendmsg");
    return {};
}

Result<Received> recv_fds(BorrowedFd socket, std::size_t max_fds, std::size_t max_data) {
    Received out;
    out.data.resize(max_data > 0 ? max_data : 1);
    struct iovec iov {
        out.data.data(), out.data.size()
    };
    std::vector<char> control(CMSG_SPACE(sizeof(struct ucred)) +
                              CMSG_SPACE(sizeof(int) * (max_fds > 0 ? max_fds : 1)));
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = sys::retry_eintr([&] { return ::recvmsg(socket.get(), &msg, MSG_CMSG_CLOEXEC); });
    if (n < 0) return fail_errno("recvmsg");
    out.data.resize(static_cast<std::size_t>(n));
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred u;
            std::memcpy(&u, CMSG_DATA(c), sizeof u);
            out.sender_pid = u.pid;
            continue;
        }
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            out.fds.emplace_back(fd);
        }
    }
    // (the room for credentials may hold more fds than asked for when none come)
    if ((msg.msg_flags & MSG_CTRUNC) || out.fds.size() > max_fds)
        return fail(Error("recvmsg", EMSGSIZE, "fds truncated"));
    return out;
}

}  // namespace butter
