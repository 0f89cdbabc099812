#include "butter/aio.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "../support/tmpdir.hpp"
#include "butter/loop.hpp"

namespace butter {
namespace {

TEST(Aio, ScatterGatherWriteThenRead) {
    test::TempDir dir;
    int fd = ::open((dir / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    auto ctx = AioContext::create(8);
    ASSERT_TRUE(ctx) << ctx.error().what();
    // Gather three buffers into one write at offset 100, and a plain write at offset 0.
    std::string a = "alpha-", b = "bravo-", c = "charlie";
    struct iovec w[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    std::string head = "HEAD";
    AioRequest reqs[] = {
        AioRequest::writev(fd, w, 100, 1),
        AioRequest::write(fd, std::as_bytes(std::span(head)), 0, 2),
    };
    auto n = ctx->submit(reqs);
    ASSERT_TRUE(n) << n.error().what();
    EXPECT_EQ(*n, 2u);
    auto done = ctx->wait(2);
    ASSERT_TRUE(done) << done.error().what();
    ASSERT_EQ(done->size(), 2u);
    std::map<std::uint64_t, std::int64_t> results;
    for (auto& d : *done)
        results[d.user_data] = d.result;
    EXPECT_EQ(results[1], 19);
    EXPECT_EQ(results[2], 4);
    EXPECT_EQ(ctx->in_flight(), 0u);

    // Scatter the 19 bytes back into two buffers of 8 and 11.
    char x[8], y[11];
    struct iovec r[2] = {{x, sizeof x}, {y, sizeof y}};
    AioRequest read = AioRequest::readv(fd, r, 100, 3);
    ASSERT_TRUE(ctx->submit(std::span(&read, 1)));
    auto back = ctx->read_event();  // blocking
    ASSERT_TRUE(back && back->has_value());
    EXPECT_EQ((*back)->user_data, 3u);
    EXPECT_EQ((*back)->bytes(), 19u);
    EXPECT_EQ(std::string(x, 8), "alpha-br");
    EXPECT_EQ(std::string(y, 11), "avo-charlie");
    ::close(fd);
    EXPECT_EQ(test::read_file(dir / "f").substr(0, 4), "HEAD");
}

TEST(Aio, ErrorsArriveAsCompletions) {
    test::TempDir dir;
    int fd = ::open((dir / "w").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    auto ctx = AioContext::create(4, AioFlag::NonBlock);
    ASSERT_TRUE(ctx);
    char buf[4];
    AioRequest req = AioRequest::read(fd, std::as_writable_bytes(std::span(buf)), 0, 9);
    auto n = ctx->submit(std::span(&req, 1));
    // A read of a write-only fd fails either at submission or in the completion.
    if (!n) {
        EXPECT_EQ(n.error().errno_value(), EBADF);
    } else {
        auto c = ctx->wait(1);
        ASSERT_TRUE(c && c->size() == 1);
        EXPECT_FALSE((*c)[0].ok());
        EXPECT_EQ((*c)[0].error(), EBADF);
    }
    ::close(fd);
    auto none = ctx->read_event();
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
}

Task<std::vector<std::uint64_t>> collect(Async<AioContext>& aio, int count) {
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < count; ++i) {
        auto c = co_await aio.next();
        if (!c) break;
        ids.push_back(c->user_data);
    }
    co_return ids;
}

TEST(Aio, CompletionsOnTheEventLoop) {
    test::TempDir dir;
    int fd = ::open((dir / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    auto loop = EventLoop::create();
    auto ctx = AioContext::create(16);
    ASSERT_TRUE(ctx);
    auto aio = Async<AioContext>::create(*loop, std::move(*ctx));
    ASSERT_TRUE(aio) << aio.error().what();
    std::vector<std::string> bufs;
    for (int i = 0; i < 5; ++i)
        bufs.push_back(std::string(512, static_cast<char>('a' + i)));
    std::vector<AioRequest> reqs;
    for (int i = 0; i < 5; ++i)
        reqs.push_back(
            AioRequest::write(fd, std::as_bytes(std::span(bufs[static_cast<std::size_t>(i)])),
                              i * 512, static_cast<std::uint64_t>(100 + i)));
    ASSERT_TRUE(aio->source().submit(reqs));
    auto ids = loop->run_until_complete(collect(*aio, 5));
    ASSERT_TRUE(ids);
    std::sort(ids->begin(), ids->end());
    EXPECT_EQ(*ids, (std::vector<std::uint64_t>{100, 101, 102, 103, 104}));
    ::close(fd);
    std::string content = test::read_file(dir / "f");
    ASSERT_EQ(content.size(), 2560u);
    EXPECT_EQ(content.substr(2048), std::string(512, 'e'));
}

}  // namespace
}  // namespace butter
