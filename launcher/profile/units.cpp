#include "profile/units.hpp"

#include <array>
#include <cctype>
#include <limits>

namespace butter::launcher::profile {

namespace {

Error bad(const char* what, std::string_view text, const char* expected) {
    return Error::message(what, std::string("invalid ") + what + " (expected " + expected + ")",
                          std::string(text));
}

// Parses leading digits into `out`; false on overflow or no digits.
bool take_number(std::string_view& s, std::uint64_t& out) {
    std::size_t i = 0;
    out = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
        if (out > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
        out = out * 10 + d;
        ++i;
    }
    s.remove_prefix(i);
    return i > 0;
}

}  // namespace

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    constexpr const char* kExpected = "a number with a unit: 500ms, 10s, 5m, 1h, 1h30m";
    struct Unit {
        std::string_view name;
        std::uint64_t ns;
    };
    static constexpr std::array<Unit, 7> kUnits{{{"ns", 1},
                                                 {"us", 1'000},
                                                 {"ms", 1'000'000},
                                                 {"s", 1'000'000'000},
                                                 {"m", 60'000'000'000},
                                                 {"h", 3'600'000'000'000},
                                                 {"d", 86'400'000'000'000}}};
    std::string_view s = text;
    if (s.empty()) return fail(bad("duration", text, kExpected));
    std::uint64_t total = 0;
    while (!s.empty()) {
        std::uint64_t n;
        if (!take_number(s, n)) return fail(bad("duration", text, kExpected));
        const Unit* unit = nullptr;
        for (const Unit& u : kUnits) {
            // Longest match first: "ms" before "m", "ns"/"us" before nothing else clashing.
            if (s.starts_with(u.name) && (!unit || u.name.size() > unit->name.size())) unit = &u;
        }
        if (!unit) return fail(bad("duration", text, kExpected));
        s.remove_prefix(unit->name.size());
        if (n > std::numeric_limits<std::int64_t>::max() / unit->ns ||
            total + n * unit->ns >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return fail(bad("duration", text, "a duration below 292 years"));
        total += n * unit->ns;
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

Result<std::uint64_t> parse_size(std::string_view text) {
    constexpr const char* kExpected = "bytes or a number with K, M, G or T: 64K, 256M, 2G";
    std::string_view s = text;
    std::uint64_t n;
    if (!take_number(s, n)) return fail(bad("size", text, kExpected));
    std::uint64_t mult = 1;
    if (!s.empty()) {
        switch (std::toupper(static_cast<unsigned char>(s[0]))) {
            case 'K':
                mult = 1ULL << 10;
                break;
            case 'M':
                mult = 1ULL << 20;
                break;
            case 'G':
                mult = 1ULL << 30;
                break;
            case 'T':
                mult = 1ULL << 40;
                break;
            case 'B':
                mult = 1;
                break;
            default:
                return fail(bad("size", text, kExpected));
        }
        s.remove_prefix(1);
        if (mult != 1 && (s == "B" || s == "iB" || s == "b")) s = {};
        if (!s.empty()) return fail(bad("size", text, kExpected));
    }
    if (n > std::numeric_limits<std::uint64_t>::max() / mult)
        return fail(bad("size", text, "a size below 16 EiB"));
    return n * mult;
}

std::string format_duration(std::chrono::nanoseconds d) {
    std::uint64_t ns = static_cast<std::uint64_t>(d.count());
    if (ns == 0) return "0s";
    if (ns % 1'000'000'000 != 0) {
        if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
        if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
        return std::to_string(ns) + "ns";
    }
    std::uint64_t s = ns / 1'000'000'000;
    std::string out;
    if (s >= 3600) {
        out += std::to_string(s / 3600) + "h";
        s %= 3600;
    }
    if (s >= 60) {
        out += std::to_string(s / 60) + "m";
        s %= 60;
    }
    if (s > 0) out += std::to_string(s) + "s";
    return out;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr std::array<std::pair<char, int>, 4> kUnits{
        {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}}};
    for (auto [c, shift] : kUnits) {
        std::uint64_t unit = 1ULL << shift;
        if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + c;
    }
    return std::to_string(bytes);
}

}  // namespace butter::launcher::profile
