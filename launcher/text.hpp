// Text a sandbox controls (file names, sd_notify messages, syscall arguments) on its way to a
// terminal or a JSON document: it must not drive the terminal (ESC sequences that clear the
// screen or print a fake line, BEL, CR) nor break the document (invalid UTF-8, NUL).
#pragma once

#include <string>
#include <string_view>

namespace butter::launcher {

// For a terminal: control characters (C0, DEL, and the C1 range U+0080..U+009F), bidi
// overrides and isolates and the line/paragraph separators, a backslash, and bytes that are not
// UTF-8 become \xNN (\\ for the backslash); the rest is kept as is.
std::string terminal_safe(std::string_view s);

// A JSON string literal, always valid UTF-8: ", \ and control characters (DEL, C1, bidi
// overrides and isolates, line/paragraph separators included) are escaped, so that a report
// printed on a terminal cannot drive it; each byte that is not part of valid UTF-8 becomes
// U+FFFD.
std::string json_string(std::string_view s);

// The first line of `rest` (without its '\n'), removed from `rest`; files read as text line by
// line (passwd, subuid, login.defs, git's config).
inline std::string_view next_line(std::string_view& rest) {
    std::string_view line = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(line.size() < rest.size() ? line.size() + 1 : rest.size());
    return line;
}

}  // namespace butter::launcher
