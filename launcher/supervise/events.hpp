// --events FD: JSON lines as things happen, for tools that follow a run (a CI system, an IDE)
// without parsing logs: {"event": "started", ...}, "setup", "exec", "denied", "limit",
// "restart", "exit". Each line is written with one write(2).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <butter/loop.hpp>

#include "supervise/sink.hpp"

namespace butter::launcher {

class Events {
  public:
    using Callback = std::function<void(std::string_view line)>;  // one JSON object, no newline

    // To `fd` (< 0: none), written without blocking (sink.hpp): a reader that stops reading
    // loses events (the last, "exit", says how many), never stalls the supervisor. And to
    // `callback`, each as it happens (the library API).
    explicit Events(int fd = -1, Callback callback = {});
    ~Events();
    Events(const Events&) = delete;
    Events& operator=(const Events&) = delete;
    bool on() const { return sink_.valid() || callback_; }
    // Times count from `t` (the butter program's start) instead of the construction.
    void count_from(std::chrono::steady_clock::time_point t) { start_ = t; }
    void attach(EventLoop& loop);
    // {"event": NAME, "time": seconds since start, FIELDS...}; fields are raw JSON values.
    // "exit" carries "dropped": how many events a reader that stopped reading lost.
    void emit(const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& fields = {});
    static std::string str(const std::string& s);  // a JSON string literal (text.hpp)

  private:
    static constexpr std::size_t kBacklog = 1 << 20;
    Sink sink_;
    Callback callback_;
    std::size_t dropped_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace butter::launcher
