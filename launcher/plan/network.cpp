// network.mode = "user": pasta for the link to the host's network, butter's DNS inside, and
// with network.allow or network.audit an nftables ruleset in the sandbox's own network
// namespace, loaded before the command runs (supervise/network.cpp carries it out). The
// programs butter runs for it (pasta, nft) are root's: found on PATH, a file root owns and
// only root may write, exec'd through a descriptor of the identity planned here.
#include <linux/capability.h>
#include <sys/stat.h>

#include <algorithm>

#include "plan/planner.hpp"

namespace butter::launcher {

using profile::AllowEntry;
using profile::error_at;
using profile::NetworkMode;

namespace {

// `name` on `path_var` (the caller's PATH, else the usual one): the first that is root's
// regular file, executable and writable by root alone. Others are skipped: a directory on
// PATH that a sandbox could write (a writable bind of ~/bin) must not give butter a program
// to run outside the sandbox.
std::optional<HostPath> root_program(const HostFacts& host, const std::string& name,
                                     std::string path_var) {
    if (path_var.empty()) path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    std::size_t at = 0;
    while (at <= path_var.size()) {
        std::size_t colon = path_var.find(':', at);
        if (colon == std::string::npos) colon = path_var.size();
        std::string dir = path_var.substr(at, colon - at);
        at = colon + 1;
        if (dir.empty() || dir[0] != '/') continue;
        auto found = host.resolve(dir + "/" + name, Symlinks::RootOnly);
        if (!found) continue;
        const struct stat& st = found->st;
        if (S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 0111) &&
            !(st.st_mode & (S_IWGRP | S_IWOTH)))
            return std::move(*found);
    }
    return std::nullopt;
}

std::string address_text(const AllowEntry& e) {
    std::string t = e.text();
    std::string_view v = t;
    if (v.starts_with("udp:")) v.remove_prefix(4);
    v = v.substr(0, v.rfind(':'));
    if (v.starts_with('[')) v = v.substr(1, v.size() - 2);
    return std::string(v);
}

}  // namespace

std::string nft_ruleset(const std::vector<AllowEntry>& allow, bool filter, bool audit,
                        const std::vector<profile::Publish>& publish) {
    const std::string log = "log group " + std::to_string(kNflogGroup) + " prefix ";
    // The link's own neighbour discovery and multicast listener reports (the kernel's, to
    // pasta): nothing else to a multicast group, which would reach every host of the link.
    const std::string link =
        "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
        "nd-router-advert, mld-listener-report, mld2-listener-report } accept\n";
    // In: replies to what the sandbox sent, and new connections to published ports only
    // (pasta passes any datagram to a port the sandbox sent from). Its loopback only from its
    // own addresses: a packet it sends itself from a remote's address (IPV6_FREEBIND) would
    // make a connection-tracking entry whose "replies" go out to that remote. A TCP reset from
    // a remote's address is the rules' own refusal (reject), and makes no such entry.
    std::string r =
        "table inet butter {\n"
        "\tset names4 { type ipv4_addr . inet_proto . inet_service; flags timeout; }\n"
        "\tset names6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority 0; policy drop;\n"
        "\t\tiif \"lo\" fib saddr type local accept\n"
        "\t\tiif \"lo\" tcp flags & rst == rst accept\n"  // the rules' own refusals
        "\t\tiif \"lo\" drop\n"  // a source address not its own, bound with IPV6_FREEBIND
        "\t\tct state established,related accept\n" +
        link;
    for (const profile::Publish& pub : publish)
        r += std::string("\t\t") + to_string(pub.protocol) + " dport " + std::to_string(pub.port) +
             " accept\n";
    r += "\t}\n";
    if (!filter && !audit) return r + "}\n";
    r += "\tchain output {\n"
         "\t\ttype filter hook output priority 0; policy accept;\n"
         "\t\toif \"lo\" fib saddr type local accept\n"
         "\t\toif \"lo\" tcp flags & rst == rst accept\n"
         "\t\toif \"lo\" drop\n"
         "\t\tct state established,related accept\n" +
         link;
    const std::string allowed = log + "\"allow\" accept\n";
    if (filter) {
        r += "\t\tip daddr . meta l4proto . th dport @names4 " + allowed;
        r += "\t\tip6 daddr . meta l4proto . th dport @names6 " + allowed;
        for (const AllowEntry& e : allow) {
            if (e.is_name()) continue;
            r += std::string("\t\t") + (e.kind == AllowEntry::Kind::Ipv4 ? "ip" : "ip6") +
                 " daddr " + address_text(e) + " " + to_string(e.protocol) + " dport " +
                 std::to_string(e.port) + " " + allowed;
        }
    }
    if (audit) {
        r += "\t\t" + log + "\"audit\" accept\n";
    } else {
        r += "\t\t" + log + "\"deny\"\n";
        r += "\t\tmeta l4proto tcp reject with tcp reset\n";
        r += "\t\tdrop\n";
    }
    return r + "\t}\n}\n";
}

void Planner::network() {
    const auto& n = p.network;
    const bool user = n.mode == NetworkMode::User;
    auto needs_user = [&](const char* key, bool set) {
        if (set && !user)
            out.push_back(error_at(p.loc_of(key),
                                   std::string(key) +
                                       " needs network.mode = \"user\" (the sandbox's own network "
                                       "namespace, which butter connects and filters" +
                                       (n.mode == NetworkMode::Host
                                            ? "; with the host's network nothing below the program "
                                              "could)"
                                            : ")")));
    };
    needs_user("network.publish", !n.publish.empty());
    needs_user("network.host_loopback", n.host_loopback);
    needs_user("network.allow", !n.allow.empty());
    needs_user("network.audit", n.audit);
    needs_user("network.landlock", n.landlock);
    if (user && n.landlock && n.allow.empty())
        out.push_back(error_at(p.loc_of("network.landlock"),
                               "network.landlock needs network.allow (the ports it allows)"));
    if (!user) return;
    if (!p.namespaces.net) return;                      // identity() says so
    if (plan.tier < profile::Tier::Namespaces) return;  // host_view() says why not
    auto& net = plan.net;
    net.on = true;
    net.audit = n.audit;
    net.filter = !n.allow.empty();
    for (const std::string& s : n.allow) {
        auto v = profile::parse_allow(s);
        if (auto* e = std::get_if<AllowEntry>(&v)) net.allow.push_back(*e);
    }
    const std::string path_var = host.env("PATH").value_or("");
    // A root-owned program on PATH, or the error naming its package.
    auto program = [&](const char* name, const char* package,
                       const std::string& path) -> std::optional<HostPath> {
        auto found = root_program(host, name, path);
        if (!found)
            out.push_back(error_at(p.loc_of("network.mode"),
                                   std::string("network.mode = \"user\" needs ") + name +
                                       " (Debian's " + package + " package: apt install " +
                                       package + "); no root-owned " + name + " on PATH"));
        return found;
    };
    auto pasta = program("pasta", "passt", path_var);
    if (!pasta) return;
    net.pasta = pasta->path;
    net.pasta_dev = pasta->st.st_dev;
    net.pasta_ino = pasta->st.st_ino;
    // Quiet, in the foreground (butter's child, killed with the sandbox), the interface and
    // routes configured at once; no port forwarded either way unless published, and the host's
    // loopback unreachable unless asked for.
    std::vector<std::string> tcp, udp;
    std::vector<profile::Publish> published;
    for (const std::string& s : n.publish) {
        auto v = profile::parse_publish(s);
        if (auto* pub = std::get_if<profile::Publish>(&v)) {
            std::string spec = (pub->address.empty() ? "" : pub->address + "/") +
                               std::to_string(pub->host_port) + ":" + std::to_string(pub->port);
            (pub->protocol == profile::Protocol::Udp ? udp : tcp).push_back(spec);
            published.push_back(*pub);
        }
    }
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const std::string& x : v)
            s += (s.empty() ? "" : ",") + x;
        return s.empty() ? std::string("none") : s;
    };
    net.pasta_args = {"--quiet", "--foreground", "--config-net", "-t", join(tcp), "-u",
                      join(udp), "-T",           "none",         "-U", "none"};
    if (!n.host_loopback) net.pasta_args.push_back("--no-map-gw");
    // As root pasta would become nobody, who may not enter the sandbox's user namespace.
    if (plan.privileged) {
        net.pasta_args.push_back("--runas");
        net.pasta_args.push_back("0");
    }
    net.dns_server = host.dns_server();
    plan.resolv_conf = std::string("# butter: the sandbox's DNS (network.mode = \"user\")\n") +
                       "nameserver " + kResolver + "\n";
    // The rules: always the way in (published ports and replies only), with network.allow
    // or network.audit the way out.
    auto nft = program("nft", "nftables", path_var.empty() ? "" : path_var + ":/usr/sbin:/sbin");
    if (!nft) return;
    net.nft = nft->path;
    net.nft_dev = nft->st.st_dev;
    net.nft_ino = nft->st.st_ino;
    net.ruleset = nft_ruleset(net.allow, net.filter, net.audit, published);
    // A command that keeps CAP_NET_ADMIN could change the rules; one that keeps CAP_NET_RAW
    // could send and receive frames that they never see (packet sockets).
    for (const char* key : {"capabilities.keep", "capabilities.keep_as_root"}) {
        const auto& list = std::string(key) == "capabilities.keep" ? p.capabilities.keep
                                                                   : p.capabilities.keep_as_root;
        if (lists_capability(list, CAP_NET_ADMIN))
            out.push_back(error_at(p.loc_of(key), std::string(key) +
                                                      ": CAP_NET_ADMIN would let the command "
                                                      "change butter's rules of network.mode = "
                                                      "\"user\""));
        if ((net.filter || net.audit) && lists_capability(list, CAP_NET_RAW))
            out.push_back(error_at(p.loc_of(key),
                                   std::string(key) +
                                       ": CAP_NET_RAW would let the command send frames that the "
                                       "rules of network.allow and network.audit never see"));
    }
    // Landlock TCP rules only with network.landlock (plan/landlock.cpp): Landlock knows ports,
    // not addresses, and refuses the sandbox's own loopback services on other ports, with
    // EACCES and before the rules could record the attempt.
}

}  // namespace butter::launcher
