#include "butter/aio.hpp"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>

#include <array>
#include <cstring>

#include "sys.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<AioFlag>, 1> kNames{{{AioFlag::NonBlock, "NonBlock"}}};

std::uint64_t ptr(const void* p) {
    return reinterpret_cast<std::uint64_t>(p);
}
}  // namespace

std::span<const FlagName<AioFlag>> flag_names(AioFlag) {
    return kNames;
}

AioRequest AioRequest::read(int fd, std::span<std::byte> buf, std::int64_t offset,
                            std::uint64_t data) {
    return {Op::Read, fd, offset, buf.data(), buf.size(), nullptr, 0, data};
}
AioRequest AioRequest::write(int fd, std::span<const std::byte> buf, std::int64_t offset,
                             std::uint64_t data) {
    return {Op::Write,  fd,      offset, const_cast<std::byte*>(buf.data()),
            buf.size(), nullptr, 0,      data};
}
AioRequest AioRequest::readv(int fd, std::span<const struct iovec> iov, std::int64_t offset,
                             std::uint64_t data) {
    return {Op::ReadV, fd, offset, nullptr, 0, iov.data(), iov.size(), data};
}
AioRequest AioRequest::writev(int fd, std::span<const struct iovec> iov, std::int64_t offset,
                              std::uint64_t data) {
    return {Op::WriteV, fd, offset, nullptr, 0, iov.data(), iov.size(), data};
}
AioRequest AioRequest::fsync(int fd, std::uint64_t data) {
    return {Op::Fsync, fd, 0, nullptr, 0, nullptr, 0, data};
}

Result<AioContext> AioContext::create(unsigned max_events, Flags<AioFlag> flags) {
    Flags<EventFdFlag> ef;
    if (flags.has(AioFlag::NonBlock)) ef |= EventFdFlag::NonBlock;
    BUTTER_ASSIGN_OR_RETURN(EventFd notify, EventFd::create(0, ef));
    aio_context_t ctx = 0;
    int r = sys::io_setup(max_events, &ctx);
    if (r < 0) return fail(Error("io_setup", -r, std::to_string(max_events)));
    return AioContext(ctx, max_events, std::move(notify));
}

AioContext::AioContext(AioContext&& o) noexcept
    : ctx_(std::exchange(o.ctx_, 0)),
      size_(o.size_),
      in_flight_(std::exchange(o.in_flight_, 0)),
      notify_(std::move(o.notify_)),
      pending_(std::move(o.pending_)) {}

AioContext& AioContext::operator=(AioContext&& o) noexcept {
    if (this != &o) {
        if (ctx_) sys::io_destroy(ctx_);
        ctx_ = std::exchange(o.ctx_, 0);
        size_ = o.size_;
        in_flight_ = std::exchange(o.in_flight_, 0);
        notify_ = std::move(o.notify_);
        pending_ = std::move(o.pending_);
    }
    return *this;
}

AioContext::~AioContext() {
    if (ctx_) sys::io_destroy(ctx_);
}

Result<std::size_t> AioContext::submit(std::span<const AioRequest> requests) {
    std::vector<struct iocb> cbs(requests.size());
    std::vector<struct iocb*> ptrs(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const AioRequest& r = requests[i];
        struct iocb& cb = cbs[i];
        std::memset(&cb, 0, sizeof cb);
        cb.aio_data = r.user_data;
        cb.aio_fildes = static_cast<std::uint32_t>(r.fd);
        cb.aio_offset = r.offset;
        cb.aio_flags = IOCB_FLAG_RESFD;
        cb.aio_resfd = static_cast<std::uint32_t>(notify_.fd());
        switch (r.op) {
            case AioRequest::Op::Read:
                cb.aio_lio_opcode = IOCB_CMD_PREAD;
                break;
            case AioRequest::Op::Write:
                cb.aio_lio_opcode = IOCB_CMD_PWRITE;
                break;
            case AioRequest::Op::ReadV:
                cb.aio_lio_opcode = IOCB_CMD_PREADV;
                break;
            case AioRequest::Op::WriteV:
                cb.aio_lio_opcode = IOCB_CMD_PWRITEV;
                break;
            case AioRequest::Op::Fsync:
                cb.aio_lio_opcode = IOCB_CMD_FSYNC;
                break;
            case AioRequest::Op::Fdsync:
                cb.aio_lio_opcode = IOCB_CMD_FDSYNC;
                break;
        }
        if (r.op == AioRequest::Op::ReadV || r.op == AioRequest::Op::WriteV) {
            cb.aio_buf = ptr(r.iov);
            cb.aio_nbytes = r.iov_count;
        } else {
            cb.aio_buf = ptr(r.buffer);
            cb.aio_nbytes = r.length;
        }
        ptrs[i] = &cb;
    }
    int n = sys::io_submit(ctx_, static_cast<long>(ptrs.size()), ptrs.data());
    if (n < 0) return fail(Error("io_submit", -n));
    in_flight_ += static_cast<std::size_t>(n);
    return static_cast<std::size_t>(n);
}

Result<std::vector<AioCompletion>> AioContext::wait(
    std::size_t min, std::optional<std::chrono::nanoseconds> timeout) {
    std::vector<struct io_event> events(size_);
    struct timespec ts {};
    if (timeout) {
        ts.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
    }
    int n = sys::retry_eintr([&] {
        int r = sys::io_getevents(ctx_, static_cast<long>(min), static_cast<long>(events.size()),
                                  events.data(), timeout ? &ts : nullptr);
        if (r < 0) errno = -r;
        return r < 0 ? -1 : r;
    });
    if (n < 0) return fail_errno("io_getevents");
    std::vector<AioCompletion> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const struct io_event& e = events[static_cast<std::size_t>(i)];
        out.push_back({e.data, e.res});
    }
    in_flight_ -= std::min(in_flight_, out.size());
    return out;
}

Result<void> AioContext::reap(bool block) {
    // Reset the eventfd before reaping: a completion landing in between is reaped now and only
    // leaves a spurious wake-up, never a lost one.
    struct pollfd p {
        notify_.fd(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) == 1) BUTTER_TRY(notify_.read_event());
    BUTTER_ASSIGN_OR_RETURN(
        auto done, wait(block && in_flight_ > 0 ? 1 : 0,
                        block ? std::nullopt : std::optional(std::chrono::nanoseconds(0))));
    for (auto& c : done)
        pending_.push_back(c);
    return {};
}

Result<std::optional<AioCompletion>> AioContext::read_event() {
    if (pending_.empty()) {
        BUTTER_ASSIGN_OR_RETURN(bool nonblocking, is_nonblocking(notify_.fd()));
        BUTTER_TRY(reap(!nonblocking));
        if (pending_.empty()) return std::optional<AioCompletion>();
    }
    std::optional<AioCompletion> c(pending_.front());
    pending_.pop_front();
    return c;
}

Result<std::vector<AioCompletion>> AioContext::read_events() {
    if (pending_.empty()) {
        BUTTER_ASSIGN_OR_RETURN(bool nonblocking, is_nonblocking(notify_.fd()));
        BUTTER_TRY(reap(!nonblocking));
    }
    std::vector<AioCompletion> out(pending_.begin(), pending_.end());
    pending_.clear();
    return out;
}

}  // namespace butter
