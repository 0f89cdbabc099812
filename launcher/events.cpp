#include "events.hpp"

#include <unistd.h>

#include <cstdio>

namespace butter::launcher {

std::string Events::str(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

void Events::emit(const std::string& name,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
    if (fd_ < 0) return;
    char t[32];
    std::snprintf(t, sizeof t, "%.6f",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    std::string line = "{\"event\": " + str(name) + ", \"time\": " + t;
    for (const auto& [k, v] : fields)
        line += ", " + str(k) + ": " + v;
    line += "}\n";
    // A reader that went away must not stop the run.
    [[maybe_unused]] ssize_t n = ::write(fd_, line.data(), line.size());
}

}  // namespace butter::launcher
