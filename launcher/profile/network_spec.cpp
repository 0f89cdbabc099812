#include "profile/network_spec.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace butter::launcher::profile {

namespace {

std::string lower(std::string_view s) {
    std::string r(s);
    std::transform(r.begin(), r.end(), r.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return r;
}

bool parse_port(std::string_view s, std::uint16_t& port) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 65535)
        return false;
    port = static_cast<std::uint16_t>(v);
    return true;
}

// A DNS name as RFC 1123 has it: labels of letters, digits and '-', 1 to 63 characters,
// not starting or ending with '-'; 253 characters at most.
bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t at = 0;
    while (at <= s.size()) {
        std::size_t dot = s.find('.', at);
        if (dot == std::string_view::npos) dot = s.size();
        std::string_view label = s.substr(at, dot - at);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
        at = dot + 1;
    }
    return true;
}

// Strips "tcp:" or "udp:".
Protocol take_protocol(std::string_view& s) {
    if (s.starts_with("udp:")) {
        s.remove_prefix(4);
        return Protocol::Udp;
    }
    if (s.starts_with("tcp:")) s.remove_prefix(4);
    return Protocol::Tcp;
}

}  // namespace

const char* to_string(Protocol p) {
    return p == Protocol::Udp ? "udp" : "tcp";
}

bool AllowEntry::matches(std::string_view qname) const {
    if (kind == Kind::Name) return qname == name;
    if (kind != Kind::Wildcard) return false;
    return qname.size() > name.size() + 1 && qname.ends_with(name) &&
           qname[qname.size() - name.size() - 1] == '.';
}

std::string AllowEntry::text() const {
    std::string host;
    if (kind == Kind::Name) host = name;
    if (kind == Kind::Wildcard) host = "*." + name;
    if (kind == Kind::Ipv4 || kind == Kind::Ipv6) {
        char buf[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(kind == Kind::Ipv4 ? AF_INET : AF_INET6, address.data(), buf, sizeof buf);
        unsigned full = kind == Kind::Ipv4 ? 32 : 128;
        host = buf;
        if (prefix != full) host += "/" + std::to_string(prefix);
        if (kind == Kind::Ipv6) host = "[" + host + "]";
    }
    return (protocol == Protocol::Udp ? "udp:" : "") + host + ":" + std::to_string(port);
}

std::variant<AllowEntry, std::string> parse_allow(std::string_view s) {
    const std::string quoted = "'" + std::string(s) + "'";
    AllowEntry e;
    e.protocol = take_protocol(s);
    std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return quoted + " is not [tcp:|udp:]HOST:PORT (e.g. \"example.org:443\")";
    if (!parse_port(s.substr(colon + 1), e.port))
        return quoted + ": the port must be a number from 1 to 65535";
    std::string_view host = s.substr(0, colon);
    std::string_view prefix;
    bool bracketed = host.front() == '[';
    if (bracketed) {
        std::size_t close = host.find(']');
        if (close == std::string_view::npos || close + 1 != host.size())
            return quoted + ": an IPv6 address goes in brackets, e.g. \"[2001:db8::1]:443\"";
        host = host.substr(1, close - 1);
    }
    if (std::size_t slash = host.find('/'); slash != std::string_view::npos) {
        prefix = host.substr(slash + 1);
        host = host.substr(0, slash);
    }
    std::string h(host);
    if (::inet_pton(AF_INET6, h.c_str(), e.address.data()) == 1) {
        if (!bracketed)
            return quoted + ": an IPv6 address goes in brackets, e.g. \"[2001:db8::1]:443\"";
        e.kind = AllowEntry::Kind::Ipv6;
        e.prefix = 128;
    } else if (::inet_pton(AF_INET, h.c_str(), e.address.data()) == 1) {
        e.kind = AllowEntry::Kind::Ipv4;
        e.prefix = 32;
    } else if (bracketed || !prefix.empty() || std::isdigit(static_cast<unsigned char>(h.back()))) {
        return quoted + ": '" + h + "' is not an IP address";
    } else {
        std::string name = lower(h);
        if (name.ends_with('.')) name.pop_back();
        if (name.starts_with("*.")) {
            e.kind = AllowEntry::Kind::Wildcard;
            name.erase(0, 2);
        }
        if (!valid_name(name))
            return quoted + ": '" + h +
                   "' is not a DNS name (letters, digits and '-', labels separated by dots; "
                   "'*.' only in front)";
        e.name = std::move(name);
        return e;
    }
    if (!prefix.empty()) {
        unsigned full = e.kind == AllowEntry::Kind::Ipv4 ? 32 : 128;
        unsigned v = 0;
        auto [end, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), v);
        if (ec != std::errc() || end != prefix.data() + prefix.size() || v > full)
            return quoted + ": the prefix length must be 0 to " + std::to_string(full);
        e.prefix = v;
        // The network's own address: bits past the prefix are zero (a typo otherwise).
        for (unsigned bit = v; bit < full; ++bit)
            if (e.address[bit / 8] & (0x80 >> (bit % 8)))
                return quoted + ": host bits set past /" + std::to_string(v) +
                       " (the network address, e.g. \"10.1.2.0/24\")";
    }
    return e;
}

std::string Publish::text() const {
    std::string a = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    return (protocol == Protocol::Udp ? "udp:" : "") + (a.empty() ? "" : a + ":") +
           std::to_string(host_port) + ":" + std::to_string(port);
}

std::variant<Publish, std::string> parse_publish(std::string_view s) {
    const std::string quoted = "'" + std::string(s) + "'";
    Publish p;
    p.protocol = take_protocol(s);
    std::size_t last = s.rfind(':');
    if (last == std::string_view::npos || last == 0)
        return quoted + " is not [tcp:|udp:][ADDRESS:]HOSTPORT:PORT (e.g. \"8080:80\")";
    std::size_t mid = s.rfind(':', last - 1);
    std::string_view host_port =
        mid == std::string_view::npos ? s.substr(0, last) : s.substr(mid + 1, last - mid - 1);
    if (!parse_port(host_port, p.host_port) || !parse_port(s.substr(last + 1), p.port))
        return quoted + ": ports are numbers from 1 to 65535";
    if (mid != std::string_view::npos) {
        std::string_view a = s.substr(0, mid);
        if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
        p.address = std::string(a);
        unsigned char buf[16];
        if (::inet_pton(AF_INET, p.address.c_str(), buf) != 1 &&
            ::inet_pton(AF_INET6, p.address.c_str(), buf) != 1)
            return quoted + ": '" + p.address + "' is not an IP address of the host";
    }
    return p;
}

}  // namespace butter::launcher::profile
