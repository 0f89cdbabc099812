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
    q.qclass = u16(m, at + 2);
    q.end = at + 4;
    return q;
}

bool common_type(std::uint16_t type) {
    switch (type) {
        case 1:
        case 2:
        case 5:
        case 6:
        case 12:
        case 15:
        case 16:
        case 28:
        case 33:
        case 64:
        case 65:
            return true;
        default:
            return false;
    }
}

std::vector<std::uint8_t> nxdomain(std::span<const std::uint8_t> query, const Question& q,
                                   int rcode) {
    std::vector<std::uint8_t> r(query.begin(), query.begin() + static_cast<long>(q.end));
    std::uint16_t flags = u16(query, 2);
    flags = static_cast<std::uint16_t>((flags & 0x0100) | 0x8000 | 0x0080 | (rcode & 0xf));
    r[2] = static_cast<std::uint8_t>(flags >> 8);
    r[3] = static_cast<std::uint8_t>(flags);
    std::memset(r.data() + 6, 0, 6);  // no answer, authority or additional records
    return r;
}

std::vector<std::uint8_t> question_only(std::span<const std::uint8_t> msg, const Question& q,
                                        std::uint16_t id) {
    // The question alone, under a header of butter's: nothing else the sandbox wrote reaches
    // the host's resolver.
    std::vector<std::uint8_t> query(msg.begin(), msg.begin() + static_cast<long>(q.end));
    query[0] = static_cast<std::uint8_t>(id >> 8);
    query[1] = static_cast<std::uint8_t>(id);
    query[2] = 0x01;  // a standard query, recursion desired
    query[3] = 0x00;
    std::memset(query.data() + 6, 0, 6);  // no answer, authority or additional records
    // The name in lower case (its letters' case would carry bits of the sandbox's choosing).
    // Length bytes are below 64, never a letter.
    for (std::size_t i = 12; i + 4 < q.end; ++i)
        if (query[i] >= 'A' && query[i] <= 'Z') query[i] = static_cast<std::uint8_t>(query[i] + 32);
    return query;
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
