#include "butter/fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace butter {
namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

TEST(Fd, ClosesOnDestruction) {
    int raw;
    {
        auto fd = open("/dev/null", O_RDONLY);
        ASSERT_TRUE(fd) << fd.error().what();
        raw = fd->get();
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_FALSE(is_open(raw));
}

TEST(Fd, OpenIsCloseOnExec) {
    auto fd = open("/dev/null", O_RDONLY);
    ASSERT_TRUE(fd);
    EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Fd, OpenErrorNamesPath) {
    auto fd = open("/nonexistent/file", O_RDONLY);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().errno_value(), ENOENT);
    EXPECT_EQ(fd.error().what(), "open(\"/nonexistent/file\"): No such file or directory");
}

TEST(Fd, MoveTransfersOwnership) {
    Fd a = *open("/dev/null", O_RDONLY);
    int raw = a.get();
    Fd b = std::move(a);
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
    Fd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_TRUE(is_open(raw));
}

TEST(Fd, MoveAssignClosesPrevious) {
    Fd a = *open("/dev/null", O_RDONLY);
    Fd b = *open("/dev/null", O_RDONLY);
    int old = a.get();
    a = std::move(b);
    EXPECT_FALSE(is_open(old));
}

TEST(Fd, ReleaseAndReset) {
    Fd a = *open("/dev/null", O_RDONLY);
    int raw = a.release();
    EXPECT_FALSE(a.valid());
    EXPECT_TRUE(is_open(raw));
    a.reset(raw);
    a.reset();
    EXPECT_FALSE(is_open(raw));
}

TEST(Fd, ExplicitCloseReportsOnce) {
    Fd a = *open("/dev/null", O_RDONLY);
    int raw = a.get();
    EXPECT_TRUE(a.close());
    EXPECT_FALSE(is_open(raw));
    EXPECT_TRUE(a.close());  // nothing left to close
}

TEST(Fd, DupIsIndependentAndCloexec) {
    Fd a = *open("/dev/null", O_RDONLY);
    Fd b = *a.dup();
    EXPECT_NE(a.get(), b.get());
    EXPECT_TRUE(::fcntl(b.get(), F_GETFD) & FD_CLOEXEC);
    a.reset();
    EXPECT_TRUE(is_open(b.get()));
}

TEST(Fd, NonBlocking) {
    Fd a = *open("/dev/null", O_RDONLY);
    EXPECT_FALSE(*a.nonblocking());
    ASSERT_TRUE(a.set_nonblocking(true));
    EXPECT_TRUE(*a.nonblocking());
    EXPECT_TRUE(::fcntl(a.get(), F_GETFL) & O_NONBLOCK);
    ASSERT_TRUE(a.set_nonblocking(false));
    EXPECT_FALSE(*a.nonblocking());
}

TEST(Fd, ErrorsOnBadFd) {
    EXPECT_EQ(set_nonblocking(BorrowedFd(-1), true).error().errno_value(), EBADF);
}

}  // namespace
}  // namespace butter
