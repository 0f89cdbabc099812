#include "output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <butter/splice.hpp>

#include "host_path.hpp"

namespace butter::launcher {

namespace {
constexpr std::size_t kChunk = 1 << 20;

// Writes `len` bytes from pipe `in` to `out`: splice, or read/write where `out` refuses
// splice (a terminal). False when `out` fails.
bool move(int in, int out, std::size_t len, std::optional<Error>* err) {
    while (len > 0) {
        auto n = splice(in, nullptr, out, nullptr, len, SpliceFlag::Move);
        if (n && *n > 0) {
            len -= *n;
            continue;
        }
        if (!n && n.error().errno_value() == EINVAL) {  // not spliceable: copy
            char buf[65536];
            ssize_t r = ::read(in, buf, std::min(len, sizeof buf));
            if (r <= 0) return false;
            for (ssize_t off = 0; off < r;) {
                ssize_t w = ::write(out, buf + off, static_cast<std::size_t>(r - off));
                if (w < 0) {
                    if (errno == EINTR) continue;
                    if (err && !*err) *err = Error::from_errno("write");
                    return false;
                }
                off += w;
            }
            len -= static_cast<std::size_t>(r);
            continue;
        }
        if (err && !*err) *err = n ? Error("splice", EIO) : n.error();
        return false;
    }
    return true;
}

// Throws away `len` bytes from a pipe (when the file has failed).
void discard(int in, std::size_t len) {
    char buf[65536];
    while (len > 0) {
        ssize_t r = ::read(in, buf, std::min(len, sizeof buf));
        if (r <= 0) return;
        len -= static_cast<std::size_t>(r);
    }
}
}  // namespace

Result<Output> Output::open(const OutputSpec& spec, int own_fd) {
    Output o(spec, own_fd);
    using K = OutputSpec::Kind;
    if (spec.kind == K::Null) {
        BUTTER_ASSIGN_OR_RETURN(o.file_, butter::open("/dev/null", O_WRONLY));
    } else if (spec.kind == K::File || spec.kind == K::Tee) {
        // The path may lie where a sandbox wrote before: host_path.hpp.
        auto file = HostFile::at(spec.path);
        if (!file) return fail(std::move(file).error().with_context("output"));
        BUTTER_ASSIGN_OR_RETURN(o.file_, file->open_truncated());
    }
    if (spec.kind == K::Tee) {
        BUTTER_TRY(o.reopen_pipe());
        BUTTER_ASSIGN_OR_RETURN(Pipe dup, Pipe::create(true));
        o.dup_read_ = std::move(dup.read);
        o.dup_write_ = std::move(dup.write);
        (void)set_pipe_size(o.dup_write_, kChunk);  // best effort: fewer, larger moves
    }
    return o;
}

Result<void> Output::reopen_pipe() {
    pending_ = 0;
    BUTTER_ASSIGN_OR_RETURN(Pipe p, Pipe::create());
    read_ = std::move(p.read);
    write_ = std::move(p.write);
    (void)set_pipe_size(read_, kChunk);
    return set_nonblocking(read_, true);
}

Result<void> Output::reopen_pipe_if_tee() {
    if (spec_.kind != OutputSpec::Kind::Tee) return {};
    return reopen_pipe();
}

int Output::child_fd() const {
    if (spec_.kind == OutputSpec::Kind::Tee) return write_.get();
    return file_.valid() ? file_.get() : -1;
}

void Output::after_spawn() {
    write_.reset();
}

Result<void> Output::start(EventLoop& loop) {
    if (spec_.kind != OutputSpec::Kind::Tee) return {};
    loop_ = &loop;
    return watch_input();
}

Result<void> Output::watch_input() {
    BUTTER_ASSIGN_OR_RETURN(reg_, loop_->add(read_, IoEvent::In, [this](IoEvents) {
        if (!pump()) reg_.reset();
    }));
    return {};
}

bool Output::flush_pending() {
    while (pending_ > 0) {
        // Non-blocking on butter's stream whatever its own flags: a reader that stops reading
        // must stall the command (as tee(1) would), never the supervisor's loop.
        auto n = splice(read_, nullptr, own_fd_, nullptr, pending_,
                        SpliceFlag::Move | SpliceFlag::NonBlock);
        if (n && *n > 0) {
            pending_ -= *n;
            bytes_ += *n;
            continue;
        }
        if (!n && n.error().errno_value() == EAGAIN) return false;
        if (!n && n.error().errno_value() == EINTR) continue;
        // Not spliceable (a terminal): copy; gone (EPIPE): drop what it was owed.
        std::size_t len = pending_;
        if (!move(read_.get(), own_fd_, len, nullptr)) discard(read_.get(), len);
        bytes_ += len;
        pending_ = 0;
    }
    return true;
}

void Output::wait_writable() {
    reg_.reset();  // no more input until butter's stream takes what it is owed
    auto r = loop_->add(own_fd_, IoEvent::Out, [this](IoEvents) {
        if (!flush_pending()) return;
        out_reg_.reset();
        if (auto w = watch_input(); !w && !error_) error_ = w.error();
    });
    if (r) {
        out_reg_ = std::move(*r);
        return;
    }
    // Not pollable: wait in place.
    (void)flush_pending_blocking(-1);
}

bool Output::flush_pending_blocking(int interrupt_fd) {
    while (!flush_pending()) {
        pollfd p[2] = {{own_fd_, POLLOUT, 0}, {interrupt_fd, POLLIN, 0}};
        int n = ::poll(p, interrupt_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || (p[1].revents & POLLIN)) {
            // A signal for the supervisor (a stop request) ends the wait: the rest is dropped.
            discard(read_.get(), pending_);
            pending_ = 0;
            return false;
        }
    }
    return true;
}

bool Output::pump() {
    for (;;) {
        if (pending_ > 0 && !flush_pending()) {
            wait_writable();
            return true;
        }
        if (!error_) {
            // Duplicate what the pipe holds, then move the copy to the file; the original
            // then goes to butter's stream.
            auto t = tee(read_, dup_write_, kChunk, SpliceFlag::NonBlock);
            if (!t) {
                if (t.error().errno_value() == EAGAIN) return true;
                error_ = t.error();
                continue;
            }
            if (*t == 0) return false;  // EOF
            if (!move(dup_read_.get(), file_.get(), *t, &error_)) discard(dup_read_.get(), *t);
            pending_ = *t;
        } else {
            // The file failed: keep the command's output flowing to butter's stream.
            int avail = 0;
            if (::ioctl(read_.get(), FIONREAD, &avail) < 0) return false;
            if (avail > 0) {
                pending_ = static_cast<std::size_t>(avail);
                continue;
            }
            pollfd p{read_.get(), POLLIN, 0};
            return !(::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP));  // empty: EOF or not yet
        }
    }
}

void Output::drain(int interrupt_fd, bool stopping) {
    if (spec_.kind != OutputSpec::Kind::Tee || !read_.valid()) return;
    // The sandbox is gone: everything in the pipe goes out now, and an empty pipe means done.
    // Normally butter waits for its reader (no byte is lost) unless a signal interrupts; when
    // butter is stopping (a stop request, the time limit) it moves only what fits at once.
    out_reg_.reset();
    for (;;) {
        bool flushed = stopping ? flush_pending() : flush_pending_blocking(interrupt_fd);
        if (!flushed) {
            int avail = 0;
            if (::ioctl(read_.get(), FIONREAD, &avail) == 0 && avail > 0)
                discard(read_.get(), static_cast<std::size_t>(avail));
            pending_ = 0;
            break;
        }
        if (!pump()) break;
        out_reg_.reset();
        if (pending_ > 0) continue;
        int avail = 0;
        if (::ioctl(read_.get(), FIONREAD, &avail) < 0 || avail == 0) break;
    }
    out_reg_.reset();
    reg_.reset();
}

}  // namespace butter::launcher
