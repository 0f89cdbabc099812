#include "text.hpp"

#include <cstdio>

namespace butter::launcher {

namespace {

// The length of the valid UTF-8 sequence at s[i] (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or 0; its code point in *cp.
std::size_t utf8_at(std::string_view s, std::size_t i, char32_t* cp) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = b(0);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xe  ? 3
                    : (c >> 3) == 0x1e ? 4
                                       : 0;
    if (n == 0 || i + n > s.size()) return 0;
    char32_t v = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80) return 0;
        v = (v << 6) | (b(k) & 0x3f);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < kMin[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

// C1 controls (U+0080..U+009F: CSI and the like, for a terminal that takes 8-bit controls), and
// the invisible characters that reorder or break what a terminal shows around them (bidi
// overrides and isolates, the line and paragraph separators).
bool hidden_control(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void hex_byte(std::string& out, const char* format, unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, format, c);
    out += buf;
}

}  // namespace

std::string terminal_safe(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        std::size_t n = utf8_at(s, i, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7f || hidden_control(cp)) {
            for (std::size_t k = 0; k < (n ? n : 1); ++k)
                hex_byte(out, "\\x%02x", static_cast<unsigned char>(s[i + k]));
            i += n ? n : 1;
            continue;
        }
        if (cp == '\\')
            out += "\\\\";
        else
            out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    out.reserve(s.size() + 2);
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        std::size_t n = utf8_at(s, i, &cp);
        if (n == 0) {
            out += "\xef\xbf\xbd";  // U+FFFD
            ++i;
            continue;
        }
        if (cp == '"') {
            out += "\\\"";
        } else if (cp == '\\') {
            out += "\\\\";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp < 0x20 || cp == 0x7f || hidden_control(cp)) {
            // Valid JSON either way; escaped, a report printed on a terminal stays as written.
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
            out += buf;
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    return out + "\"";
}

}  // namespace butter::launcher
