// The few DNS messages butter's resolver reads and writes (RFC 1035): a query's question, the
// NXDOMAIN answer to a name network.allow does not list, and the addresses of an answer. Every
// length is checked against the message: what the sandbox sends is hostile, and so is an
// answer (a spoofed one may come from anywhere the host's resolver's address does).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace butter::launcher::dns {

struct Question {
    std::uint16_t id = 0;
    std::string name;  // lower case, no final dot
    std::uint16_t type = 0;
    std::uint16_t qclass = 0;
    std::size_t end = 0;  // the offset just past the (first) question
};

// A query (QR clear, one question, opcode QUERY) or a response's question; nullopt if
// malformed.
std::optional<Question> parse_question(std::span<const std::uint8_t> msg, bool response);

// The answer to `query` (parsed as `q`) with no records and `rcode`: its header and question,
// QR and RA set. RCODE 3 (NXDOMAIN) says the name does not exist, 4 (NOTIMP) that butter does
// not forward such a question.
std::vector<std::uint8_t> nxdomain(std::span<const std::uint8_t> query, const Question& q,
                                   int rcode = 3);

// The question types a resolver asks for a name's addresses and services (A, NS, CNAME, SOA,
// PTR, MX, TXT, AAAA, SRV, SVCB, HTTPS): with an allow-list, the only ones forwarded, so that
// the type chosen carries little of a sandbox's data to an allowed name's servers.
bool common_type(std::uint16_t type);

// What goes on to the host's resolver for `msg` (parsed as `q`): the question alone, its name
// in lower case, under butter's header (id `id`, a standard query, recursion desired).
std::vector<std::uint8_t> question_only(std::span<const std::uint8_t> msg, const Question& q,
                                        std::uint16_t id);

struct Address {
    int family = 0;  // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};
    std::uint32_t ttl = 0;
};
// The A and AAAA records of a response's answer section (names in them are not checked: the
// chain of CNAMEs ends at the addresses of the name asked).
std::vector<Address> answer_addresses(std::span<const std::uint8_t> msg, const Question& q);

}  // namespace butter::launcher::dns
