#include "pty.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace butter::launcher {

namespace {
void write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}
}  // namespace

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
    if (raw_) ::tcsetattr(0, TCSAFLUSH, &saved_);
}

void PtyProxy::resize() {
    struct winsize ws {};
    if (::ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) ::ioctl(master_.get(), TIOCSWINSZ, &ws);
}

Result<void> PtyProxy::start(EventLoop& loop) {
    slave_.reset();  // EIO on the master once the sandbox's copies are gone
    if (::isatty(0) && ::tcgetattr(0, &saved_) == 0) {
        struct termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(0, TCSAFLUSH, &raw) == 0) raw_ = true;
    }
    BUTTER_TRY(set_nonblocking(master_, true));
    BUTTER_ASSIGN_OR_RETURN(master_reg_,
                            loop.add(master_, IoEvent::In, [this](IoEvents) { from_master(); }));
    // stdin may be a file or /dev/null, which epoll refuses: then the command just gets no input.
    if (auto r = loop.add(0, IoEvent::In, [this](IoEvents) { from_stdin(); }))
        stdin_reg_ = std::move(*r);
    return {};
}

void PtyProxy::from_master() {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(master_.get(), buf, sizeof buf);
        if (n > 0) {
            write_all(1, buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        master_reg_.reset();  // EIO: every slave is closed
        return;
    }
}

void PtyProxy::from_stdin() {
    char buf[4096];
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        // End of input: as a terminal user would, send EOF (^D) once, then stop reading.
        char eof = 4;
        write_all(master_.get(), &eof, 1);
        stdin_reg_.reset();
        return;
    }
    write_all(master_.get(), buf, static_cast<std::size_t>(n));
}

void PtyProxy::drain() {
    from_master();
}

}  // namespace butter::launcher
