#include "output.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <butter/splice.hpp>

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
        BUTTER_ASSIGN_OR_RETURN(
            o.file_, butter::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
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
    BUTTER_ASSIGN_OR_RETURN(reg_, loop.add(read_, IoEvent::In, [this](IoEvents) {
        if (!pump()) reg_.reset();
    }));
    return {};
}

bool Output::pump() {
    for (;;) {
        std::size_t n = 0;
        if (!error_) {
            // Duplicate what the pipe holds, then move the copy to the file and the original
            // to butter's stream.
            auto t = tee(read_, dup_write_, kChunk, SpliceFlag::NonBlock);
            if (!t) {
                if (t.error().errno_value() == EAGAIN) return true;
                error_ = t.error();
                continue;
            }
            if (*t == 0) return false;  // EOF
            n = *t;
            if (!move(dup_read_.get(), file_.get(), n, &error_)) discard(dup_read_.get(), n);
        } else {
            // The file failed: keep the command's output flowing to butter's stream.
            auto sp = splice(read_, nullptr, own_fd_, nullptr, kChunk, SpliceFlag::NonBlock);
            if (!sp) {
                if (sp.error().errno_value() == EAGAIN) return true;
                char buf[65536];
                ssize_t r = ::read(read_.get(), buf, sizeof buf);
                if (r <= 0) return r != 0;
                (void)!::write(own_fd_, buf, static_cast<std::size_t>(r));
                bytes_ += static_cast<std::uint64_t>(r);
                continue;
            }
            if (*sp == 0) return false;
            bytes_ += *sp;
            continue;
        }
        move(read_.get(), own_fd_, n, nullptr);
        bytes_ += n;
    }
}

void Output::drain() {
    if (spec_.kind != OutputSpec::Kind::Tee || !read_.valid()) return;
    // pump() stops at EAGAIN; the sandbox is gone, so an empty pipe means done.
    while (pump()) {
        int avail = 0;
        if (::ioctl(read_.get(), FIONREAD, &avail) < 0 || avail == 0) break;
    }
    reg_.reset();
}

}  // namespace butter::launcher
