#include "butter/unix_socket.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "butter/splice.hpp"

namespace butter {
namespace {

TEST(UnixSocket, PassesDescriptorsAndData) {
    auto pair = SocketPair::create(SOCK_SEQPACKET);
    ASSERT_TRUE(pair) << pair.error().what();
    auto pipe = Pipe::create();
    int fds[] = {pipe->read.get(), pipe->write.get()};
    std::string msg = "hello";
    ASSERT_TRUE(send_fds(pair->first, fds, msg));
    auto got = recv_fds(pair->second, 4);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(got->data, "hello");
    ASSERT_EQ(got->fds.size(), 2u);
    EXPECT_TRUE(::fcntl(got->fds[0].get(), F_GETFD) & FD_CLOEXEC);
    // The received write end feeds the original read end.
    ASSERT_EQ(::write(got->fds[1].get(), "z", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(pipe->read.get(), &c, 1), 1);
    EXPECT_EQ(c, 'z');
}

TEST(UnixSocket, PeerCloseReadsEmpty) {
    auto pair = SocketPair::create(SOCK_STREAM);
    pair->first.reset();
    auto got = recv_fds(pair->second, 1);
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->data.empty());
    EXPECT_TRUE(got->fds.empty());
}

TEST(UnixSocket, TooManyFdsIsAnError) {
    auto pair = SocketPair::create(SOCK_STREAM);
    auto pipe = Pipe::create();
    // Four fds where one was expected (the control buffer rounds up to 8 bytes, so two would fit).
    int fds[] = {pipe->read.get(), pipe->write.get(), pipe->read.get(), pipe->write.get()};
    ASSERT_TRUE(send_fds(pair->first, fds));
    auto got = recv_fds(pair->second, 1);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().errno_value(), EMSGSIZE);
}

}  // namespace
}  // namespace butter
