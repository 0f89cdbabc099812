// The supervisor's log: one line per event, errors always, the rest by verbosity. To an fd (the
// butter program's stderr: written without blocking, sink.hpp) and/or to a callback (the library
// API's embedder).
#pragma once

#include <cstdarg>
#include <cstddef>
#include <functional>
#include <string_view>

#include <butter/loop.hpp>

#include "supervise/sink.hpp"

namespace butter::launcher {

class Log {
  public:
    using Callback = std::function<void(std::string_view line)>;  // "butter: ...", no newline

    // `verbosity`: 0 errors only, 1 warnings, 2 every event. `fd` < 0: no fd.
    Log(int verbosity, int fd, Callback callback = {});
    ~Log();
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    void attach(EventLoop& loop);
    void warn(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void info(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  private:
    static constexpr std::size_t kBacklog = 64 * 1024;
    void line(const char* fmt, va_list ap);
    int verbosity_;
    int fd_;
    Sink sink_;
    Callback callback_;
    std::size_t dropped_ = 0;
};

}  // namespace butter::launcher
