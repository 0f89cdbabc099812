// A destination the supervisor writes to from its loop (its stdout and stderr, --events FD, the
// pty's master) that never blocks it: a reader that stops reading (a stalled terminal, a full
// pipe) stalls the source the bytes come from, or loses log lines, but never the time limit
// or a stop request.
//
// A terminal, pipe or FIFO is reopened through /proc/self/fd as an open file description of
// butter's own, in non-blocking mode: the caller's description (shared with its shell) stays
// as it was. A socket is written with MSG_DONTWAIT; a regular file as it is (its writes do not
// wait for a reader). What the destination does not take at once waits in a backlog of at
// most `limit` bytes, written when the loop says the destination is writable.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>

namespace butter::launcher {

// The butter program ignores SIGPIPE while it supervises (and says so here); a process that
// embeds the library does not, and a write to a pipe whose reader is gone would kill it. While
// a NoSigpipe lives, this thread's SIGPIPE is blocked, and one that a write raised meanwhile is
// taken (not one that was pending before): the write fails with EPIPE, nothing else happens.
void set_sigpipe_ignored(bool ignored);
class NoSigpipe {
  public:
    NoSigpipe();
    ~NoSigpipe();
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;

  private:
    bool active_ = false;
    bool pending_before_ = false;
    sigset_t old_{};
};

class Sink {
  public:
    Sink() = default;
    // `fd` stays the caller's; `owned` says it is butter's own already (set non-blocking as
    // it is, not reopened).
    [[nodiscard]] static Result<Sink> open(int fd, std::size_t limit, bool owned = false);
    Sink(Sink&&) = default;
    Sink& operator=(Sink&&) = default;

    bool valid() const { return fd_ >= 0; }
    // The descriptor writes go to (non-blocking unless a regular file): for splice(2).
    int fd() const { return fd_; }
    // Writes what the destination takes now and queues the rest. False, taking nothing, when
    // the rest would not fit in the backlog.
    bool write(std::string_view data);
    // Writes the backlog as far as the destination takes it; true once it is empty.
    bool flush();
    std::size_t backlog() const { return backlog_.size(); }
    std::size_t room() const { return limit_ > backlog_.size() ? limit_ - backlog_.size() : 0; }
    // The reader is gone for good (EPIPE, or a write error): writes are dropped from then on.
    bool broken() const { return broken_; }
    // Flushes the backlog whenever the destination becomes writable, calling `drained` each
    // time it empties (a source paused while it was full goes on).
    [[nodiscard]] Result<void> attach(EventLoop& loop, std::function<void()> drained = {});
    // Calls the `drained` callback once the destination is writable, backlog or not (a caller
    // that splices into fd() and got EAGAIN).
    void notify_when_writable();
    // Waits (poll) up to `timeout_ms` for the backlog to go out; true if it did.
    bool flush_for(int timeout_ms);

  private:
    // One write of `data` without blocking: bytes taken (0 when the destination is full).
    std::size_t write_some(std::string_view data);
    void arm();

    Fd reopened_;  // our own description of the destination, when reopened
    int fd_ = -1;
    bool socket_ = false;
    // The caller's own description, which we may not reopen (a pipe another user made, mode
    // 0600): written PIPE_BUF bytes at a time, each after poll(2) says there is room for them.
    bool polled_ = false;
    bool broken_ = false;
    std::size_t limit_ = 0;
    std::string backlog_;
    EventLoop* loop_ = nullptr;
    EventLoop::Registration reg_;
    std::function<void()> drained_;
    bool want_writable_ = false;
};

}  // namespace butter::launcher
