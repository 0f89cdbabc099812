#include "supervise/dns.hpp"

#include <sys/socket.h>

#include <cctype>
#include <cstring>

namespace butter::launcher::dns {

namespace {

std::uint16_t u16(std::span<const std::uint8_t> m, std::size_t at) {
    return static_cast<std::uint16_t>(m[at] << 8 | m[at + 1]);
}

// Skips a (possibly compressed) name at `at`; the offset past it, or nullopt.
std::optional<std::size_t> skip_name(std::span<const std::uint8_t> m, std::size_t at) {
    for (int labels = 0; labels < 128; ++labels) {
        if (at >= m.size()) return std::nullopt;
        std::uint8_t len = m[at];
        if ((len & 0xc0) == 0xc0) return at + 2 <= m.size() ? std::optional(at + 2) : std::nullopt;
        if (len & 0xc0) return std::nullopt;
        if (len == 0) return at + 1;
        at += 1 + len;
    }
    return std::nullopt;
}

}  // namespace

std::optional<Question> parse_question(std::span<const std::uint8_t> m, bool response) {
    if (m.size() < 12) return std::nullopt;
    Question q;
    q.id = u16(m, 0);
    std::uint16_t flags = u16(m, 2);
    bool qr = flags & 0x8000;
    if (qr != response || ((flags >> 11) & 0xf) != 0 || u16(m, 4) != 1) return std::nullopt;
    std::size_t at = 12;
    // The question's name, uncompressed (a query's is; a response's first is too).
    for (;;) {
        if (at >= m.size()) return std::nullopt;
        std::uint8_t len = m[at++];
        if (len == 0) break;
        if (len > 63 || at + len > m.size() || q.name.size() + len + 1 > 254) return std::nullopt;
        if (!q.name.empty()) q.name += '.';
        for (std::size_t i = 0; i < len; ++i) {
            unsigned char c = m[at + i];
            // Names butter compares: letters, digits, '-' and '_' only; anything else (a dot
            // inside a label, a NUL) is a name no allow entry is, and refused as malformed.
            if (!(std::isalnum(c) || c == '-' || c == '_')) return std::nullopt;
            q.name += static_cast<char>(std::tolower(c));
        }
        at += len;
    }
    if (at + 4 > m.size()) return std::nullopt;
    q.type = u16(m, at);
    q.end = at + 4;
    return q;
}

std::vector<std::uint8_t> nxdomain(std::span<const std::uint8_t> query, const Question& q) {
    std::vector<std::uint8_t> r(query.begin(), query.begin() + static_cast<long>(q.end));
    std::uint16_t flags = u16(query, 2);
    flags = static_cast<std::uint16_t>((flags & 0x0100) | 0x8000 | 0x0080 | 3);  // RD kept
    r[2] = static_cast<std::uint8_t>(flags >> 8);
    r[3] = static_cast<std::uint8_t>(flags);
    std::memset(r.data() + 6, 0, 6);  // no answer, authority or additional records
    return r;
}

std::vector<Address> answer_addresses(std::span<const std::uint8_t> m, const Question& q) {
    std::vector<Address> out;
    if (m.size() < 12) return out;
    unsigned answers = u16(m, 6);
    std::size_t at = q.end;
    for (unsigned i = 0; i < answers && i < 256; ++i) {
        auto past = skip_name(m, at);
        if (!past || *past + 10 > m.size()) break;
        at = *past;
        std::uint16_t type = u16(m, at), cls = u16(m, at + 2);
        std::uint32_t ttl = static_cast<std::uint32_t>(u16(m, at + 4)) << 16 | u16(m, at + 6);
        std::uint16_t len = u16(m, at + 8);
        at += 10;
        if (at + len > m.size()) break;
        if (cls == 1 && ((type == 1 && len == 4) || (type == 28 && len == 16))) {
            Address a;
            a.family = type == 1 ? AF_INET : AF_INET6;
            std::memcpy(a.bytes.data(), m.data() + at, len);
            a.ttl = ttl > 0x7fffffff ? 0 : ttl;  // RFC 2181: the high bit set means zero
            out.push_back(a);
        }
        at += len;
    }
    return out;
}

}  // namespace butter::launcher::dns
