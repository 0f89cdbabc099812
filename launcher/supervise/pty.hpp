// session = "pty": a pseudo-terminal for the command. butter keeps the master and proxies it
// to its own stdin/stdout (raw mode on a real terminal, restored at the end), copies the
// window size at start and on SIGWINCH. The command never holds the caller's terminal, so
// TIOCSTI/TIOCLINUX can only reach its own pty; ^C, ^Z and job control work inside, through
// the pty's line discipline.
#pragma once

#include <termios.h>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>

#include "supervise/sink.hpp"

namespace butter::launcher {

class PtyProxy {
  public:
    // posix_openpt + grantpt + unlockpt; the slave opened close-on-exec for the child.
    [[nodiscard]] static Result<PtyProxy> create();
    // A terminal the sandbox makes in its own devpts: its master comes later (adopt).
    static PtyProxy deferred() { return PtyProxy(); }
    // The master the sandbox sent; copying starts once start() has run too.
    [[nodiscard]] Result<void> adopt(Fd master);
    PtyProxy(PtyProxy&&) noexcept;
    PtyProxy& operator=(PtyProxy&&) = delete;
    ~PtyProxy();  // restores butter's terminal

    int slave() const { return slave_.get(); }
    // After spawn: butter's copy of the slave is closed; raw mode on; copying starts.
    [[nodiscard]] Result<void> start(EventLoop& loop);
    // Copies butter's window size to the pty (the kernel then signals the command).
    void resize();
    // Copies what the command still wrote (after it exited), waiting for butter's stdout at
    // most a moment.
    void drain();

    // What one read moves at most; also each direction's backlog (sink.hpp): a side that does
    // not take its bytes stops the reading of the other, never the supervisor.
    static constexpr std::size_t kChunk = 64 * 1024;

  private:
    PtyProxy() = default;
    void from_master();
    void from_stdin();
    Result<void> watch_master();
    Result<void> watch_stdin();
    Result<void> attach_master();
    Fd master_, slave_;
    bool raw_ = false;
    struct termios saved_ {};
    EventLoop* loop_ = nullptr;
    Sink out_, in_;  // butter's stdout; the master
    bool stdin_done_ = false;
    EventLoop::Registration master_reg_, stdin_reg_;
};

}  // namespace butter::launcher
