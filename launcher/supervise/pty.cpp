#include "supervise/pty.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace butter::launcher {

Result<PtyProxy> PtyProxy::create() {
    PtyProxy p;
    int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return fail_errno("posix_openpt");
    p.master_ = Fd(m);
    if (::grantpt(m) < 0) return fail_errno("grantpt");
    if (::unlockpt(m) < 0) return fail_errno("unlockpt");
    char name[128];
    if (::ptsname_r(m, name, sizeof name) != 0) return fail_errno("ptsname_r");
    BUTTER_ASSIGN_OR_RETURN(p.slave_, open(name, O_RDWR | O_NOCTTY));
    p.resize();
    return p;
}

PtyProxy::PtyProxy(PtyProxy&& o) noexcept
    : master_(std::move(o.master_)), slave_(std::move(o.slave_)), raw_(o.raw_), saved_(o.saved_) {
    o.raw_ = false;
}

PtyProxy::~PtyProxy() {
    if (raw_) ::tcsetattr(0, TCSANOW, &saved_);
}

void PtyProxy::resize() {
    if (!master_.valid()) return;
    struct winsize ws {};
    if (::ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) ::ioctl(master_.get(), TIOCSWINSZ, &ws);
}

Result<void> PtyProxy::start(EventLoop& loop) {
    slave_.reset();  // EIO on the master once the sandbox's copies are gone
    // TCSANOW, never TCSAFLUSH: what the user typed ahead is the command's input.
    if (::isatty(0) && ::tcgetattr(0, &saved_) == 0) {
        struct termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(0, TCSANOW, &raw) == 0) raw_ = true;
    }
    loop_ = &loop;
    BUTTER_ASSIGN_OR_RETURN(out_, Sink::open(1, kChunk));
    BUTTER_TRY(out_.attach(loop, [this] { (void)watch_master(); }));
    return master_.valid() ? attach_master() : Result<void>{};
}

Result<void> PtyProxy::adopt(Fd master) {
    if (master_.valid()) return {};  // one terminal per run
    master_ = std::move(master);
    resize();
    return loop_ ? attach_master() : Result<void>{};
}

Result<void> PtyProxy::attach_master() {
    BUTTER_ASSIGN_OR_RETURN(in_, Sink::open(master_.get(), kChunk, true));
    BUTTER_TRY(in_.attach(*loop_, [this] { (void)watch_stdin(); }));
    BUTTER_TRY(watch_master());
    // stdin may be a file or /dev/null, which epoll refuses: then the command just gets no input.
    (void)watch_stdin();
    return {};
}

Result<void> PtyProxy::watch_master() {
    if (master_reg_.active() || !master_.valid()) return {};
    BUTTER_ASSIGN_OR_RETURN(master_reg_,
                            loop_->add(master_, IoEvent::In, [this](IoEvents) { from_master(); }));
    return {};
}

Result<void> PtyProxy::watch_stdin() {
    if (stdin_reg_.active() || stdin_done_) return {};
    BUTTER_ASSIGN_OR_RETURN(stdin_reg_,
                            loop_->add(0, IoEvent::In, [this](IoEvents) { from_stdin(); }));
    return {};
}

void PtyProxy::from_master() {
    char buf[kChunk];
    for (;;) {
        if (out_.backlog() > 0) {
            master_reg_.reset();  // until butter's stdout has taken what it holds
            return;
        }
        ssize_t n = ::read(master_.get(), buf, sizeof buf);
        if (n > 0) {
            (void)out_.write(std::string_view(buf, static_cast<std::size_t>(n)));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        master_reg_.reset();  // EIO: every slave is closed
        return;
    }
}

void PtyProxy::from_stdin() {
    if (in_.backlog() > 0) {
        stdin_reg_.reset();  // until the command's terminal has taken what it holds
        return;
    }
    char buf[4096];
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        // End of input: as a terminal user would, send EOF (^D) once, then stop reading.
        (void)in_.write("\x04");
        stdin_done_ = true;
        stdin_reg_.reset();
        return;
    }
    (void)in_.write(std::string_view(buf, static_cast<std::size_t>(n)));
    if (in_.backlog() > 0) stdin_reg_.reset();
}

void PtyProxy::drain() {
    if (!master_.valid()) return;
    // What the command left in the terminal, to a reader that takes it within a moment.
    for (int i = 0; i < 64; ++i) {
        from_master();
        if (!out_.flush_for(200)) break;
        struct pollfd p {
            master_.get(), POLLIN, 0
        };
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
    }
}

}  // namespace butter::launcher
