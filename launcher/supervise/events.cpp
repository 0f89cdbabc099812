#include "supervise/events.hpp"

#include "text.hpp"

#include <unistd.h>

#include <cstdio>

namespace butter::launcher {

std::string Events::str(const std::string& s) {
    return json_string(s);
}

Events::Events(int fd, Callback callback) : callback_(std::move(callback)) {
    if (fd < 0) return;
    if (auto s = Sink::open(fd, kBacklog)) sink_ = std::move(*s);
}

Events::~Events() {
    if (sink_.valid()) (void)sink_.flush_for(200);
}

void Events::attach(EventLoop& loop) {
    if (sink_.valid()) (void)sink_.attach(loop);
}

void Events::emit(const std::string& name,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
    if (!on()) return;
    char t[32];
    std::snprintf(t, sizeof t, "%.6f",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    std::string line = "{\"event\": " + str(name) + ", \"time\": " + t;
    for (const auto& [k, v] : fields)
        line += ", " + str(k) + ": " + v;
    if (name == "exit") line += ", \"dropped\": " + std::to_string(dropped_);
    line += "}";
    if (callback_) callback_(line);
    if (!sink_.valid()) return;
    line += "\n";
    bool taken = sink_.write(line);
    if (!taken && name == "exit") {  // the last one gets a moment more
        (void)sink_.flush_for(200);
        taken = sink_.write(line);
    }
    if (!taken) ++dropped_;
}

}  // namespace butter::launcher
