#include "supervise/output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <butter/splice.hpp>

#include "plan/host_path.hpp"

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

Result<Output> Output::open(const OutputSpec& spec, int stream, int own_fd) {
    Output o(spec, stream, own_fd);
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
    if (spec_.kind == OutputSpec::Kind::Inherit) return own_fd_ == stream_ ? -1 : own_fd_;
    return file_.valid() ? file_.get() : -1;
}

void Output::after_spawn() {
    write_.reset();
}

Result<void> Output::start(EventLoop& loop) {
    if (spec_.kind != OutputSpec::Kind::Tee) return {};
    loop_ = &loop;
    if (!own_.valid()) {
        BUTTER_ASSIGN_OR_RETURN(own_, Sink::open(own_fd_, 64 * 1024));
        BUTTER_TRY(own_.attach(loop, [this] { on_writable(); }));
    }
    return watch_input();
}

Result<void> Output::watch_input() {
    BUTTER_ASSIGN_OR_RETURN(reg_, loop_->add(read_, IoEvent::In, [this](IoEvents) {
        if (!pump()) reg_.reset();
    }));
    return {};
}

bool Output::flush_pending() {
    auto drop_owed = [&] {  // butter's stream is gone (EPIPE): what it was owed is dropped
        discard(read_.get(), pending_);
        pending_ = 0;
    };
    while (pending_ > 0) {
        // butter's stream is written without blocking (sink.hpp): a reader that stops reading
        // stalls the command (as tee(1) would), never the supervisor's loop.
        if (!own_.flush()) return false;
        if (own_.broken()) {
            drop_owed();
            break;
        }
        Result<std::size_t> n = [&] {
            NoSigpipe quiet;
            return splice(read_, nullptr, own_.fd(), nullptr, pending_,
                          SpliceFlag::Move | SpliceFlag::NonBlock);
        }();
        if (n && *n > 0) {
            pending_ -= *n;
            continue;
        }
        int e = n ? EIO : n.error().errno_value();
        if (e == EAGAIN) return false;
        if (e == EINTR) continue;
        if (e != EINVAL) {
            drop_owed();
            break;
        }
        // Not spliceable: through a buffer, the sink keeping what the stream does not take.
        char buf[65536];
        ssize_t r = ::read(read_.get(), buf, std::min(pending_, sizeof buf));
        if (r <= 0) {
            pending_ = 0;
            break;
        }
        (void)own_.write(std::string_view(buf, static_cast<std::size_t>(r)));
        pending_ -= static_cast<std::size_t>(r);
    }
    return true;
}

void Output::wait_writable() {
    reg_.reset();  // no more input until butter's stream takes what it is owed
    own_.notify_when_writable();
}

void Output::on_writable() {
    if (!flush_pending()) {
        own_.notify_when_writable();
        return;
    }
    if (!reg_.active())
        if (auto w = watch_input(); !w && !error_) error_ = w.error();
}

bool Output::flush_pending_blocking(std::span<const int> interrupt_fds) {
    while (!flush_pending()) {
        pollfd p[4] = {{own_.fd(), POLLOUT, 0}};
        nfds_t count = 1;
        for (int fd : interrupt_fds)
            if (fd >= 0 && count < 4) p[count++] = {fd, POLLIN, 0};
        int n = ::poll(p, count, -1);
        if (n < 0 && errno == EINTR) continue;
        bool interrupted = n < 0;
        for (nfds_t i = 1; i < count; ++i)
            interrupted = interrupted || (p[i].revents & POLLIN);
        if (interrupted) {
            // A stop request or the time limit ends the wait: the rest is dropped.
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
            bytes_ += *t;
        } else {
            // The file failed: keep the command's output flowing to butter's stream.
            int avail = 0;
            if (::ioctl(read_.get(), FIONREAD, &avail) < 0) return false;
            if (avail > 0) {
                pending_ = static_cast<std::size_t>(avail);
                bytes_ += pending_;
                continue;
            }
            pollfd p{read_.get(), POLLIN, 0};
            return !(::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP));  // empty: EOF or not yet
        }
    }
}

void Output::drain(std::span<const int> interrupt_fds, bool stopping) {
    if (spec_.kind != OutputSpec::Kind::Tee || !read_.valid()) return;
    // The sandbox is gone: everything in the pipe goes out now, and an empty pipe means done.
    // Normally butter waits for its reader (no byte is lost) unless a signal or the time limit
    // interrupts; when butter is stopping it moves only what fits at once.
    for (;;) {
        bool flushed = stopping ? flush_pending() : flush_pending_blocking(interrupt_fds);
        if (!flushed) {
            int avail = 0;
            if (::ioctl(read_.get(), FIONREAD, &avail) == 0 && avail > 0)
                discard(read_.get(), static_cast<std::size_t>(avail));
            pending_ = 0;
            break;
        }
        if (!pump()) break;
        if (pending_ > 0) continue;
        int avail = 0;
        if (::ioctl(read_.get(), FIONREAD, &avail) < 0 || avail == 0) break;
    }
    // What the sink still holds (a terminal's share), to a reader that takes it within a
    // moment; a stop request or the time limit has already cut the wait short.
    if (!stopping) (void)own_.flush_for(200);
    reg_.reset();
}

}  // namespace butter::launcher
