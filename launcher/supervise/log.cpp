#include "supervise/log.hpp"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace butter::launcher {

Log::Log(int verbosity, int fd, Callback callback)
    : verbosity_(verbosity), fd_(fd), callback_(std::move(callback)) {
    // Without blocking (sink.hpp): a terminal that stops reading loses log lines, never stalls
    // the supervisor. Where it cannot be had, plain writes.
    if (fd >= 0)
        if (auto s = Sink::open(fd, kBacklog)) sink_ = std::move(*s);
}

Log::~Log() {
    if (!sink_.valid()) return;
    (void)sink_.flush_for(200);
    if (dropped_ > 0) {
        std::string l =
            "butter: " + std::to_string(dropped_) + " log lines dropped (stderr was not read)\n";
        (void)sink_.write(l);
        (void)sink_.flush_for(200);
    }
}

void Log::attach(EventLoop& loop) {
    if (sink_.valid()) (void)sink_.attach(loop);
}

void Log::warn(const char* fmt, ...) {
    if (verbosity_ < 1) return;
    va_list ap;
    va_start(ap, fmt);
    line(fmt, ap);
    va_end(ap);
}

void Log::info(const char* fmt, ...) {
    if (verbosity_ < 2) return;
    va_list ap;
    va_start(ap, fmt);
    line(fmt, ap);
    va_end(ap);
}

void Log::line(const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::string l = std::string("butter: ") + buf;
    if (callback_) callback_(l);
    if (fd_ < 0) return;
    l += "\n";
    if (!sink_.valid()) {
        (void)!::write(fd_, l.data(), l.size());
        return;
    }
    if (!sink_.write(l)) ++dropped_;
}

}  // namespace butter::launcher
