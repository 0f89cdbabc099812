// Linux native AIO (io_setup/io_submit/io_getevents/io_destroy): submit scatter/gather reads
// and writes at file offsets and reap their completions, a completion-based interface rather
// than a readiness-based one. Every request signals the context's eventfd, so an AioContext is
// event-like (each event is one completion) and plugs into the EventLoop like any other fd.
//
// Buffers and iovec arrays belong to the caller and must stay valid until the request's
// completion has been read. Regular files complete asynchronously only with O_DIRECT; without
// it the kernel may complete during io_submit, which is still correct.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "butter/error.hpp"
#include "butter/eventfd.hpp"
#include "butter/fd.hpp"

namespace butter {

struct AioRequest {
    enum class Op { Read, Write, ReadV, WriteV, Fsync, Fdsync };
    Op op = Op::Read;
    int fd = -1;
    std::int64_t offset = 0;
    void* buffer = nullptr;  // Read/Write
    std::size_t length = 0;
    const struct iovec* iov = nullptr;  // ReadV/WriteV
    std::size_t iov_count = 0;
    std::uint64_t user_data = 0;  // returned with the completion

    static AioRequest read(int fd, std::span<std::byte> buf, std::int64_t offset,
                           std::uint64_t data);
    static AioRequest write(int fd, std::span<const std::byte> buf, std::int64_t offset,
                            std::uint64_t data);
    static AioRequest readv(int fd, std::span<const struct iovec> iov, std::int64_t offset,
                            std::uint64_t data);
    static AioRequest writev(int fd, std::span<const struct iovec> iov, std::int64_t offset,
                             std::uint64_t data);
    static AioRequest fsync(int fd, std::uint64_t data);
};

struct AioCompletion {
    std::uint64_t user_data = 0;
    std::int64_t result = 0;  // bytes transferred, or -errno
    bool ok() const { return result >= 0; }
    int error() const { return result < 0 ? static_cast<int>(-result) : 0; }
    std::size_t bytes() const { return result > 0 ? static_cast<std::size_t>(result) : 0; }
};

enum class AioFlag : int { NonBlock = 1 };
std::span<const FlagName<AioFlag>> flag_names(AioFlag);

class AioContext {
  public:
    using Event = AioCompletion;

    // io_setup(max_events) plus the completion eventfd. EAGAIN: fs.aio-max-nr reached.
    [[nodiscard]] static Result<AioContext> create(unsigned max_events = 128,
                                                   Flags<AioFlag> flags = {});
    AioContext(AioContext&& o) noexcept;
    AioContext& operator=(AioContext&& o) noexcept;
    ~AioContext();  // io_destroy: waits for in-flight requests

    // io_submit(2). Returns how many were queued (from the front); EAGAIN: the ring is full.
    [[nodiscard]] Result<std::size_t> submit(std::span<const AioRequest> requests);
    // io_getevents(2): waits for at least `min` completions (up to `timeout`; nullopt: no
    // limit) and returns all that are ready, up to the context's size.
    [[nodiscard]] Result<std::vector<AioCompletion>> wait(
        std::size_t min, std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

    // Event-like: one completion (buffered first). Blocks until one completes unless the
    // eventfd is non-blocking (NonBlock, or under Async), then nullopt when none is ready.
    [[nodiscard]] Result<std::optional<AioCompletion>> read_event();
    [[nodiscard]] Result<std::vector<AioCompletion>> read_events();
    std::size_t in_flight() const { return in_flight_; }
    // The eventfd signalled on every completion.
    int fd() const { return notify_.fd(); }

  private:
    AioContext(std::uint64_t ctx, unsigned size, EventFd notify)
        : ctx_(ctx), size_(size), notify_(std::move(notify)) {}
    Result<void> reap(bool block);
    std::uint64_t ctx_ = 0;
    unsigned size_ = 0;
    std::size_t in_flight_ = 0;
    EventFd notify_;
    std::deque<AioCompletion> pending_;
};

}  // namespace butter
