#include "butter/splice.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "../support/tmpdir.hpp"

namespace butter {
namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(gen());
    return s;
}

// Moves everything from file `in` to file `out` through a pipe with splice only.
void splice_file(int in, int out, std::size_t total) {
    auto pipe = Pipe::create();
    ASSERT_TRUE(pipe);
    std::size_t moved = 0;
    while (moved < total) {
        auto n = splice(in, nullptr, pipe->write, nullptr, 1 << 16, SpliceFlag::Move);
        ASSERT_TRUE(n) << n.error().what();
        ASSERT_GT(*n, 0u);
        std::size_t left = *n;
        while (left > 0) {
            auto m = splice(pipe->read, nullptr, out, nullptr, left, SpliceFlag::Move);
            ASSERT_TRUE(m) << m.error().what();
            left -= *m;
        }
        moved += *n;
    }
    auto eof = splice(in, nullptr, pipe->write, nullptr, 1 << 16);
    ASSERT_TRUE(eof);
    EXPECT_EQ(*eof, 0u);
}

TEST(Splice, CopiesMultiMiBFileExactly) {
    test::TempDir dir;
    const std::string data = random_bytes(5 * 1024 * 1024 + 123, 1);
    test::write_file(dir / "in", data);
    int in = ::open((dir / "in").c_str(), O_RDONLY | O_CLOEXEC);
    int out = ::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    splice_file(in, out, data.size());
    ::close(in);
    ::close(out);
    EXPECT_TRUE(test::read_file(dir / "out") == data);
}

TEST(Splice, ExplicitOffsetsLeaveFilePositionAlone) {
    test::TempDir dir;
    test::write_file(dir / "in", "0123456789");
    int in = ::open((dir / "in").c_str(), O_RDONLY | O_CLOEXEC);
    auto pipe = Pipe::create();
    std::int64_t off = 4;
    auto n = splice(in, &off, pipe->write, nullptr, 3);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 3u);
    EXPECT_EQ(off, 7);
    EXPECT_EQ(::lseek(in, 0, SEEK_CUR), 0);
    char buf[3];
    ASSERT_EQ(::read(pipe->read.get(), buf, 3), 3);
    EXPECT_EQ(std::string(buf, 3), "456");
    ::close(in);
}

TEST(Splice, NeedsAPipeOnOneSide) {
    test::TempDir dir;
    test::write_file(dir / "a", "x");
    int a = ::open((dir / "a").c_str(), O_RDONLY | O_CLOEXEC);
    int b = ::open((dir / "b").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    auto r = splice(a, nullptr, b, nullptr, 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), EINVAL);
    EXPECT_STREQ(r.error().call(), "splice");
    ::close(a);
    ::close(b);
}

TEST(Tee, DuplicatesAStreamByteForByte) {
    // A child writes 4 MiB into pipe A; we tee A into B, then splice A into file 1 and B into
    // file 2. Both files must equal the source.
    test::TempDir dir;
    const std::string data = random_bytes(4 * 1024 * 1024, 2);
    auto a = Pipe::create();
    auto b = Pipe::create();
    ASSERT_TRUE(a && b);
    pid_t pid = ::fork();
    if (pid == 0) {
        a->read.reset();
        std::size_t off = 0;
        while (off < data.size()) {
            ssize_t w = ::write(a->write.get(), data.data() + off, data.size() - off);
            if (w <= 0) ::_exit(1);
            off += static_cast<std::size_t>(w);
        }
        ::_exit(0);
    }
    a->write.reset();
    int f1 = ::open((dir / "1").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int f2 = ::open((dir / "2").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    for (;;) {
        auto t = tee(a->read, b->write, 1 << 20);
        ASSERT_TRUE(t) << t.error().what();
        if (*t == 0) break;  // writer closed and pipe empty
        // Consume exactly what was duplicated from both pipes.
        for (auto [src, dst] : {std::pair<int, int>{a->read.get(), f1}, {b->read.get(), f2}}) {
            std::size_t left = *t;
            while (left > 0) {
                auto s = splice(src, nullptr, dst, nullptr, left);
                ASSERT_TRUE(s) << s.error().what();
                left -= *s;
            }
        }
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_EQ(st, 0);
    ::close(f1);
    ::close(f2);
    EXPECT_TRUE(test::read_file(dir / "1") == data);
    EXPECT_TRUE(test::read_file(dir / "2") == data);
}

TEST(Vmsplice, GathersBuffersIntoPipe) {
    auto p = Pipe::create();
    ASSERT_TRUE(p);
    std::string a = "hello, ", b = "vmsplice";
    struct iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    auto n = vmsplice(p->write, iov);
    ASSERT_TRUE(n) << n.error().what();
    EXPECT_EQ(*n, a.size() + b.size());
    char buf[64];
    ssize_t r = ::read(p->read.get(), buf, sizeof buf);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(r)), "hello, vmsplice");
}

TEST(Pipe, CapacityGetSet) {
    auto p = Pipe::create(true);
    ASSERT_TRUE(p);
    EXPECT_TRUE(::fcntl(p->read.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(p->write.get(), F_GETFD) & FD_CLOEXEC);
    auto size = pipe_size(p->write);
    ASSERT_TRUE(size);
    EXPECT_EQ(*size, 65536u);
    auto set = set_pipe_size(p->write, 100000);  // rounded up to a power-of-two of pages
    ASSERT_TRUE(set) << set.error().what();
    EXPECT_EQ(*set, 131072u);
    EXPECT_EQ(*pipe_size(p->read), 131072u);
    // A full non-blocking pipe reports EAGAIN through the Error.
    std::string chunk(131072, 'x');
    ASSERT_EQ(::write(p->write.get(), chunk.data(), chunk.size()), 131072);
    struct iovec iov = {chunk.data(), 1};
    auto full = vmsplice(p->write, std::span(&iov, 1), SpliceFlag::NonBlock);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().errno_value(), EAGAIN);
    auto shrink = set_pipe_size(p->write, 4096);
    ASSERT_FALSE(shrink);
    EXPECT_EQ(shrink.error().errno_value(), EBUSY);
}

}  // namespace
}  // namespace butter
