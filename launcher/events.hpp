// --events FD: JSON lines as things happen, for tools that follow a run (a CI system, an IDE)
// without parsing logs: {"event": "started", ...}, "setup", "exec", "denied", "limit",
// "restart", "exit". Each line is written with one write(2).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace butter::launcher {

class Events {
  public:
    explicit Events(int fd = -1) : fd_(fd) {}
    bool on() const { return fd_ >= 0; }
    // {"event": NAME, "time": seconds since start, FIELDS...}; fields are raw JSON values.
    void emit(const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& fields = {});
    static std::string str(const std::string& s);  // a JSON string literal

  private:
    int fd_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace butter::launcher
