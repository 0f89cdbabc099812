// The command's stdout/stderr: butter's own (inherit), /dev/null, a file (the command writes
// it directly: nothing to copy), or tee to a file and butter's own stream, moved in the
// supervisor's loop with tee(2) and splice(2) so the bytes never enter user space.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>

#include "plan/plan.hpp"
#include "supervise/sink.hpp"

namespace butter::launcher {

class Output {
  public:
    // Opens what `spec` needs: the file (created/truncated, close-on-exec), or the pipe.
    // `stream` is the command's (1 or 2); `own_fd` the caller's stream that inherit and tee
    // write to (the same number, for the butter program).
    [[nodiscard]] static Result<Output> open(const OutputSpec& spec, int stream, int own_fd);

    // The fd the command gets as its stream, or -1 to inherit butter's.
    int child_fd() const;
    // After spawn: close the pipe's write end in butter (so EOF comes when the sandbox is done).
    void after_spawn();
    // Tee mode: start moving data on the loop.
    [[nodiscard]] Result<void> start(EventLoop& loop);
    // Moves everything still in the pipe (the command is gone: no more data will come),
    // waiting for butter's stream to take it; any of `interrupt_fds` readable (the signalfd,
    // the time limit's timerfd) ends the wait and drops the rest. When `stopping`, moves only
    // what the stream takes at once.
    void drain(std::span<const int> interrupt_fds = {}, bool stopping = false);
    // A new pipe for the next run of the command (restart); nothing without tee.
    [[nodiscard]] Result<void> reopen_pipe_if_tee();

    // What the command wrote (all of it reached the file unless error() says otherwise; what
    // butter's own stream did not take in time is not counted out).
    std::uint64_t bytes() const { return bytes_; }
    // The first error writing the file (disk full): reported once, copying to butter's own
    // stream goes on so the command never blocks on a full pipe.
    const std::optional<Error>& error() const { return error_; }

  private:
    Output(OutputSpec spec, int stream, int own_fd)
        : spec_(std::move(spec)), stream_(stream), own_fd_(own_fd) {}
    // Moves what is readable now; false at EOF. When butter's stream is full, stops reading
    // the command's pipe and waits on the loop for the stream to take what it is owed.
    bool pump();
    Result<void> watch_input();
    // Moves the `pending_` bytes (already in the file) to butter's stream without blocking;
    // false while the stream is full.
    bool flush_pending();
    bool flush_pending_blocking(std::span<const int> interrupt_fds);
    void wait_writable();
    void on_writable();
    Result<void> reopen_pipe();
    OutputSpec spec_;
    int stream_;
    int own_fd_;
    Fd file_;
    Fd read_, write_;          // the command's pipe (tee)
    Fd dup_read_, dup_write_;  // tee(2)'s copy, spliced to the file
    EventLoop* loop_ = nullptr;
    EventLoop::Registration reg_;
    Sink own_;                 // butter's stream, written without blocking
    std::size_t pending_ = 0;  // at the head of the pipe: in the file, owed to butter's stream
    std::uint64_t bytes_ = 0;
    std::optional<Error> error_;
};

}  // namespace butter::launcher
