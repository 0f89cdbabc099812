#include "supervise/sink.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace butter::launcher {

namespace {
std::atomic<bool> sigpipe_ignored{false};
}  // namespace

void set_sigpipe_ignored(bool ignored) {
    sigpipe_ignored.store(ignored, std::memory_order_relaxed);
}

NoSigpipe::NoSigpipe() {
    if (sigpipe_ignored.load(std::memory_order_relaxed)) return;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    pending_before_ = sigismember(&pending, SIGPIPE) == 1;
    active_ = ::pthread_sigmask(SIG_BLOCK, &pipe, &old_) == 0;
}

NoSigpipe::~NoSigpipe() {
    if (!active_) return;
    if (!pending_before_) {
        sigset_t pipe, pending;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigemptyset(&pending);
        ::sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            struct timespec now {};
            while (::sigtimedwait(&pipe, nullptr, &now) < 0 && errno == EINTR) {
            }
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

Result<Sink> Sink::open(int fd, std::size_t limit, bool owned) {
    Sink s;
    s.limit_ = limit;
    struct stat st {};
    if (::fstat(fd, &st) < 0) return fail_errno("fstat", "fd " + std::to_string(fd));
    s.fd_ = fd;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return s;  // never waits for a reader
    if (S_ISSOCK(st.st_mode)) {
        s.socket_ = true;
        return s;
    }
    if (owned) {
        BUTTER_TRY(set_nonblocking(fd, true));
        return s;
    }
    // A description of our own: O_NONBLOCK on the caller's would reach its shell too.
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    int r = ::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (r < 0) {
        if (errno == ENXIO) {  // a pipe or FIFO without a reader: gone already
            s.broken_ = true;
            return s;
        }
        if ((errno == EACCES || errno == EPERM) && S_ISFIFO(st.st_mode)) {
            s.polled_ = true;  // another user's pipe: written as it is, never blocking
            return s;
        }
        return fail_errno("open", self + " (a non-blocking writer)");
    }
    s.reopened_ = Fd(r);
    s.fd_ = r;
    return s;
}

std::size_t Sink::write_some(std::string_view data) {
    if (broken_ || data.empty()) return 0;
    NoSigpipe quiet;
    if (polled_) {
        // A pipe with room says POLLOUT for at least PIPE_BUF bytes, which a write takes whole.
        std::size_t done = 0;
        while (done < data.size()) {
            struct pollfd p {
                fd_, POLLOUT, 0
            };
            if (::poll(&p, 1, 0) != 1) break;
            if (p.revents & (POLLERR | POLLHUP)) {
                broken_ = true;
                break;
            }
            ssize_t n = ::write(fd_, data.data() + done,
                                std::min<std::size_t>(PIPE_BUF, data.size() - done));
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN) broken_ = true;
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        return done;
    }
    for (;;) {
        ssize_t n = socket_ ? ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                            : ::write(fd_, data.data(), data.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN) broken_ = true;  // EPIPE and the like: no one to write to
        return 0;
    }
}

bool Sink::write(std::string_view data) {
    if (broken_) return true;  // dropped: nothing will ever take it
    if (flush()) {
        data.remove_prefix(std::min(write_some(data), data.size()));
        if (data.empty() || broken_) return true;
        // Part of it went: the rest must follow, or the stream is cut mid-way (over the limit
        // by at most this one write).
    } else if (data.size() > room()) {
        return false;
    }
    backlog_.append(data);
    arm();
    return true;
}

bool Sink::flush() {
    while (!backlog_.empty() && !broken_) {
        std::size_t n = write_some(backlog_);
        if (n == 0) break;
        backlog_.erase(0, n);
    }
    if (broken_) backlog_.clear();
    return backlog_.empty();
}

void Sink::arm() {
    if (!loop_ || reg_.active() || (backlog_.empty() && !want_writable_)) return;
    auto r = loop_->add(fd_, IoEvent::Out, [this](IoEvents) {
        if (!flush()) return;
        reg_.reset();
        want_writable_ = false;
        if (drained_) drained_();
    });
    if (r) reg_ = std::move(*r);
}

void Sink::notify_when_writable() {
    want_writable_ = true;
    arm();
}

Result<void> Sink::attach(EventLoop& loop, std::function<void()> drained) {
    loop_ = &loop;
    drained_ = std::move(drained);
    arm();
    return {};
}

bool Sink::flush_for(int timeout_ms) {
    struct timespec start {};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    while (!flush()) {
        struct timespec now {};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms) return false;
        struct pollfd p {
            fd_, POLLOUT, 0
        };
        if (::poll(&p, 1, static_cast<int>(timeout_ms - spent)) < 0 && errno != EINTR) return false;
    }
    return true;
}

}  // namespace butter::launcher
