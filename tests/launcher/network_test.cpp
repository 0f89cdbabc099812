// network.mode = "user" before anything runs: the allow and publish entries (errors at the
// entry, canonical text), the plan (pasta's arguments, the ruleset, the errors of keys that
// need mode "user"), and the DNS messages butter's resolver reads and writes.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "profile/network_spec.hpp"
#include "seccomp/builtin.hpp"
#include "supervise/dns.hpp"

namespace butter::launcher {
namespace {

using profile::AllowEntry;

AllowEntry allow(const std::string& s) {
    auto v = profile::parse_allow(s);
    EXPECT_TRUE(std::holds_alternative<AllowEntry>(v)) << s;
    return std::holds_alternative<AllowEntry>(v) ? std::get<AllowEntry>(v) : AllowEntry{};
}

std::string allow_error(const std::string& s) {
    auto v = profile::parse_allow(s);
    return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : "";
}

TEST(NetworkSpec, AllowEntries) {
    EXPECT_EQ(allow("example.org:443").text(), "example.org:443");
    EXPECT_EQ(allow("Example.ORG.:443").text(), "example.org:443");
    EXPECT_EQ(allow("udp:192.0.2.1:53").text(), "udp:192.0.2.1:53");
    EXPECT_EQ(allow("tcp:10.1.2.0/24:5432").text(), "10.1.2.0/24:5432");
    EXPECT_EQ(allow("[2001:db8::1]:443").text(), "[2001:db8::1]:443");
    EXPECT_EQ(allow("[2001:db8::/32]:443").text(), "[2001:db8::/32]:443");
    AllowEntry w = allow("*.pkg.example:443");
    EXPECT_TRUE(w.matches("a.pkg.example"));
    EXPECT_TRUE(w.matches("b.a.pkg.example"));
    EXPECT_FALSE(w.matches("pkg.example"));  // the name itself is not its subdomain
    EXPECT_FALSE(w.matches("xpkg.example"));
    EXPECT_TRUE(allow("example.org:443").matches("example.org"));
    EXPECT_FALSE(allow("example.org:443").matches("www.example.org"));
}

TEST(NetworkSpec, AllowErrorsSayWhatIsWrong) {
    EXPECT_NE(allow_error("example.org").find("HOST:PORT"), std::string::npos);
    EXPECT_NE(allow_error("example.org:0").find("1 to 65535"), std::string::npos);
    EXPECT_NE(allow_error("example.org:https").find("1 to 65535"), std::string::npos);
    EXPECT_NE(allow_error("10.1.2.3/24:5432").find("host bits"), std::string::npos);
    EXPECT_NE(allow_error("10.1.2.0/33:5432").find("prefix"), std::string::npos);
    EXPECT_NE(allow_error("2001:db8::1:443").find("brackets"), std::string::npos);
    EXPECT_NE(allow_error("exa mple.org:443").find("not a DNS name"), std::string::npos);
    EXPECT_NE(allow_error("a.*.org:443").find("not a DNS name"), std::string::npos);
    EXPECT_NE(allow_error("300.1.1.1:80").find("not an IP address"), std::string::npos);
}

TEST(NetworkSpec, PublishEntries) {
    auto ok = [](const std::string& s) {
        auto v = profile::parse_publish(s);
        EXPECT_TRUE(std::holds_alternative<profile::Publish>(v)) << s;
        return std::holds_alternative<profile::Publish>(v) ? std::get<profile::Publish>(v).text()
                                                           : std::string();
    };
    EXPECT_EQ(ok("8080:80"), "8080:80");
    EXPECT_EQ(ok("udp:5353:53"), "udp:5353:53");
    EXPECT_EQ(ok("127.0.0.1:8080:80"), "127.0.0.1:8080:80");
    EXPECT_TRUE(std::holds_alternative<std::string>(profile::parse_publish("80")));
    EXPECT_TRUE(std::holds_alternative<std::string>(profile::parse_publish("8080:0")));
    EXPECT_TRUE(std::holds_alternative<std::string>(profile::parse_publish("host:8080:80")));
}

profile::Loaded load(std::vector<std::string> sets) {
    profile::LoadOptions o;
    o.search_path = {};
    o.overrides = std::move(sets);
    o.expansion = {"/tmp", "/root", "0"};
    return profile::load(std::nullopt, o);
}

std::string errors_of(const profile::Diagnostics& d) {
    std::string s;
    for (const auto& x : d)
        if (x.is_error()) s += x.render() + "\n";
    return s;
}

// The plan of the profile `sets` make (as root with `privileged`); `errors` its errors.
std::optional<SandboxPlan> plan_with(std::vector<std::string> sets, bool privileged,
                                     std::string& errors) {
    profile::Loaded l = load(std::move(sets));
    EXPECT_TRUE(l.ok());
    PlanOptions o;
    o.argv = {"true"};
    o.force_privileged = privileged;
    o.builtin_programs = seccomp::kBuiltinPrograms;
    profile::Diagnostics d;
    auto plan = make_plan(l.profile, o, d);
    errors = errors_of(d);
    return plan;
}

bool lacks_programs(const std::string& errors) {
    return errors.find("needs pasta") != std::string::npos ||
           errors.find("needs nft") != std::string::npos;
}

TEST(NetworkPlan, KeysThatNeedUserModeSaySo) {
    for (const char* key :
         {"network.allow=[\"example.org:443\"]", "network.audit=true",
          "network.publish=[\"8080:80\"]", "network.host_loopback=true", "network.landlock=true"}) {
        std::string errors;
        EXPECT_FALSE(plan_with({key}, false, errors)) << key;
        EXPECT_NE(errors.find("needs network.mode = \"user\""), std::string::npos) << errors;
    }
    // Without its own network namespace: one error, naming the mode.
    std::string errors;
    EXPECT_FALSE(plan_with({"network.mode=\"user\"", "namespaces.net=false"}, false, errors));
    EXPECT_EQ(errors,
              "--set network.mode=\"user\": network.mode \"user\" needs namespaces.net = true\n")
        << errors;
    // A bad entry is the profile's error, at the entry.
    profile::Loaded bad = load({"network.mode=\"user\"", "network.allow=[\"example.org\"]"});
    EXPECT_FALSE(bad.ok());
    std::string all;
    for (const auto& x : bad.diagnostics)
        all += x.render() + "\n";
    EXPECT_NE(all.find("network.allow: 'example.org' is not [tcp:|udp:]HOST:PORT"),
              std::string::npos)
        << all;
}

TEST(NetworkPlan, CapabilitiesThatGetPastTheRulesAreRefused) {
    auto errors = [](std::vector<std::string> sets) {
        std::string e;
        (void)plan_with(std::move(sets), true, e);
        return e;
    };
    std::string raw = errors({"network.mode=\"user\"", "network.allow=[\"web.test:80\"]",
                              "capabilities.keep_as_root=[\"CAP_NET_RAW\"]"});
    if (lacks_programs(raw)) GTEST_SKIP() << "[SKIP:PASTA] pasta or nft not installed";
    EXPECT_NE(raw.find("CAP_NET_RAW would let the command send frames"), std::string::npos) << raw;
    EXPECT_NE(errors({"network.mode=\"user\"", "capabilities.keep=[\"CAP_NET_ADMIN\"]"})
                  .find("CAP_NET_ADMIN would let the command change"),
              std::string::npos);
    // Without an allow-list or audit a raw socket gets past nothing butter promised.
    EXPECT_EQ(errors({"network.mode=\"user\"", "capabilities.keep_as_root=[\"CAP_NET_RAW\"]"}), "");
}

TEST(NetworkPlan, UserModeRunsPastaAndLoadsTheRules) {
    std::string errors;
    auto plan =
        plan_with({"network.mode=\"user\"", "network.allow=[\"web.test:80\", \"udp:192.0.2.1:53\"]",
                   "network.publish=[\"8080:80\", \"udp:5353:53\"]"},
                  false, errors);
    if (lacks_programs(errors)) GTEST_SKIP() << "[SKIP:PASTA] pasta or nft not installed";
    ASSERT_TRUE(plan) << errors;
    const auto& args = plan->net.pasta_args;
    auto has_arg = [&](std::vector<std::string> seq) {
        return std::search(args.begin(), args.end(), seq.begin(), seq.end()) != args.end();
    };
    EXPECT_TRUE(has_arg({"-t", "8080:80"}));
    EXPECT_TRUE(has_arg({"-u", "5353:53"}));
    EXPECT_TRUE(has_arg({"-T", "none"}));
    EXPECT_TRUE(has_arg({"--no-map-gw"}));  // the host's loopback stays out of reach
    EXPECT_TRUE(plan->net.filter);
    EXPECT_NE(plan->net.ruleset.find("ip daddr 192.0.2.1 udp dport 53 log"), std::string::npos)
        << plan->net.ruleset;
    EXPECT_NE(plan->net.ruleset.find("reject with tcp reset"), std::string::npos);
    EXPECT_NE(plan->resolv_conf.find("nameserver 127.0.0.53"), std::string::npos);
    // The way in: replies and the published ports alone; no multicast group but the link's
    // own discovery.
    EXPECT_NE(plan->net.ruleset.find("type filter hook input priority 0; policy drop;"),
              std::string::npos);
    EXPECT_NE(plan->net.ruleset.find("tcp dport 80 accept"), std::string::npos);
    EXPECT_NE(plan->net.ruleset.find("udp dport 53 accept"), std::string::npos);
    EXPECT_EQ(plan->net.ruleset.find("ff02"), std::string::npos);
    // Landlock's port rules only when asked (they know no address).
    EXPECT_TRUE(plan->landlock_ports.empty());
    // The rules' ports, for Landlock too where it has them.
    std::string audit = nft_ruleset(plan->net.allow, true, true);
    EXPECT_NE(audit.find("prefix \"audit\" accept"), std::string::npos);
    EXPECT_EQ(audit.find("reject"), std::string::npos);
}

TEST(NetworkPlan, LandlockPortsFromTheAllowListWhenAsked) {
    std::string errors;
    const std::vector<std::string> sets{"network.mode=\"user\"", "network.landlock=true",
                                        "network.allow=[\"web.test:80\", \"10.0.0.0/8:5432\", "
                                        "\"udp:192.0.2.1:53\", \"other.test:80\"]",
                                        "landlock.tcp_connect=[22]"};
    auto plan = plan_with(sets, false, errors);
    if (lacks_programs(errors)) GTEST_SKIP() << "[SKIP:PASTA] pasta or nft not installed";
    if (errors.find("has no TCP port rules") != std::string::npos) {
        EXPECT_NE(errors.find("network.landlock: this kernel's Landlock"), std::string::npos);
        GTEST_SKIP() << "[SKIP:LANDLOCK4] no Landlock ABI 4 here";
    }
    ASSERT_TRUE(plan) << errors;
    std::vector<std::uint16_t> ports;
    for (const auto& r : plan->landlock_ports)
        ports.push_back(r.port);
    // landlock.tcp_connect's, then the list's TCP ports once each (not UDP's), then butter's
    // resolver's (DNS over TCP).
    EXPECT_EQ(ports, (std::vector<std::uint16_t>{22, 80, 5432, 53}));
    // MPTCP sockets, which Landlock's TCP rules do not cover, are refused.
    EXPECT_NE(seccomp::program_key(load(sets).profile).find("arg2 = [262]"), std::string::npos);
    EXPECT_NE(plan->landlock_net, 0u);
    // Without an allow-list there are no ports to allow.
    EXPECT_FALSE(plan_with({"network.mode=\"user\"", "network.landlock=true"}, false, errors));
    EXPECT_NE(errors.find("network.landlock needs network.allow"), std::string::npos) << errors;
}

std::vector<std::uint8_t> query(const std::string& name, std::uint16_t type) {
    std::vector<std::uint8_t> m{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    std::size_t at = 0;
    while (at <= name.size()) {
        std::size_t dot = name.find('.', at);
        if (dot == std::string::npos) dot = name.size();
        m.push_back(static_cast<std::uint8_t>(dot - at));
        m.insert(m.end(), name.begin() + static_cast<long>(at),
                 name.begin() + static_cast<long>(dot));
        at = dot + 1;
    }
    m.push_back(0);
    m.insert(m.end(),
             {static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type), 0, 1});
    return m;
}

TEST(Dns, QueriesAndNxdomain) {
    auto m = query("WWW.Example.org", 1);
    auto q = dns::parse_question(m, false);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->id, 0x1234);
    EXPECT_EQ(q->name, "www.example.org");
    EXPECT_EQ(q->type, 1);
    EXPECT_FALSE(dns::parse_question(m, true));  // not a response
    auto r = dns::nxdomain(m, *q);
    EXPECT_EQ(r.size(), q->end);
    EXPECT_EQ(r[0], 0x12);
    EXPECT_EQ(r[3] & 0xf, 3);  // NXDOMAIN
    EXPECT_TRUE(r[2] & 0x80);  // a response
    // Hostile: truncated, a label running past the end, a NUL inside a name.
    for (std::size_t n = 0; n < m.size(); ++n)
        EXPECT_FALSE(dns::parse_question(std::span(m.data(), n), false)) << n;
    auto evil = query("a.b", 1);
    evil[12] = 60;
    EXPECT_FALSE(dns::parse_question(evil, false));
    auto nul = query("ab.c", 1);
    nul[13] = 0;
    EXPECT_FALSE(dns::parse_question(nul, false));
}

TEST(Dns, OnlyTheQuestionGoesOnInLowerCase) {
    // A query with the sandbox's own bits everywhere it could put them: flags, counts, a
    // record after the question, the name's letter case.
    auto m = query("WeB.TeSt", 28);
    m[2] = 0x07;  // AA, TC, RD (QR and the opcode as a query has them)
    m[3] = 0xff;
    m[11] = 1;  // one additional record
    m.insert(m.end(), {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0});
    auto q = dns::parse_question(m, false);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->qclass, 1);
    auto up = dns::question_only(m, *q, 0xbeef);
    auto want = query("web.test", 28);
    want[0] = 0xbe;
    want[1] = 0xef;
    want[2] = 0x01;
    want[3] = 0x00;
    EXPECT_EQ(up, want);
    // Types no address lookup asks, and other classes, are not forwarded with a list.
    EXPECT_TRUE(dns::common_type(1) && dns::common_type(28) && dns::common_type(65));
    EXPECT_FALSE(dns::common_type(255) || dns::common_type(10) || dns::common_type(0x1234));
    auto notimp = dns::nxdomain(m, *q, 4);
    EXPECT_EQ(notimp[3] & 0xf, 4);
}

TEST(Dns, AnswerAddresses) {
    auto m = query("web.test", 1);
    m[2] |= 0x80;  // a response
    m[7] = 2;      // two answers: a CNAME-less A record and an AAAA one
    auto q = dns::parse_question(m, true);
    ASSERT_TRUE(q);
    std::vector<std::uint8_t> a{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 5};
    std::vector<std::uint8_t> aaaa{0xc0, 0x0c, 0, 28, 0, 1, 0x80, 0, 0, 0, 0, 16};
    aaaa.insert(aaaa.end(), 16, 0x20);
    m.insert(m.end(), a.begin(), a.end());
    m.insert(m.end(), aaaa.begin(), aaaa.end());
    auto got = dns::answer_addresses(m, *q);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].family, AF_INET);
    EXPECT_EQ(got[0].ttl, 60u);
    EXPECT_EQ(got[0].bytes[0], 203);
    EXPECT_EQ(got[1].family, AF_INET6);
    EXPECT_EQ(got[1].ttl, 0u);  // the high bit set: zero (RFC 2181)
    // A record cut short is not read past the end.
    m.resize(m.size() - 3);
    EXPECT_EQ(dns::answer_addresses(m, *q).size(), 1u);
}

}  // namespace
}  // namespace butter::launcher
