// network.allow and network.publish entries: parsed once (the schema's checks and the plan),
// so that a profile's typo is an error at its line and column, never a rule that matches
// nothing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace butter::launcher::profile {

enum class Protocol : std::uint8_t { Tcp = 6, Udp = 17 };
const char* to_string(Protocol p);

// One destination the sandbox may reach: "[tcp:|udp:]HOST:PORT", HOST a name
// ("example.org"), a wildcard over a name's subdomains ("*.pkg.example", not the name
// itself), an IPv4 address or network ("10.1.2.0/24") or an IPv6 one in brackets
// ("[2001:db8::/32]").
struct AllowEntry {
    Protocol protocol = Protocol::Tcp;
    enum class Kind { Name, Wildcard, Ipv4, Ipv6 } kind = Kind::Name;
    std::string name;  // Name: lower case, no final dot; Wildcard: the suffix after "*."
    std::array<std::uint8_t, 16> address{};  // Ipv4: the first 4 bytes, network order
    unsigned prefix = 0;                     // Ipv4: 0..32, Ipv6: 0..128
    std::uint16_t port = 0;
    // Whether the DNS name `qname` (lower case, no final dot) is one this entry allows.
    bool matches(std::string_view qname) const;
    bool is_name() const { return kind == Kind::Name || kind == Kind::Wildcard; }
    std::string text() const;  // canonical, as written back by `butter show`
};

// A port of the host forwarded into the sandbox: "[tcp:|udp:][ADDRESS:]HOSTPORT:PORT".
struct Publish {
    Protocol protocol = Protocol::Tcp;
    std::string address;  // "" all the host's addresses; else an IPv4 or IPv6 address
    std::uint16_t host_port = 0, port = 0;
    std::string text() const;
};

// The entry, or the error's text (without the key).
std::variant<AllowEntry, std::string> parse_allow(std::string_view s);
std::variant<Publish, std::string> parse_publish(std::string_view s);

}  // namespace butter::launcher::profile
