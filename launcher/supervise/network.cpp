#include "supervise/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <butter/net.hpp>
#include <butter/process.hpp>
#include <butter/splice.hpp>
#include <butter/unix_socket.hpp>

#include "child/child.hpp"
#include "plan/host_path.hpp"

namespace butter::launcher {

using profile::AllowEntry;

namespace {

constexpr int kReadyTimeoutMs = 10000;         // pasta and nft, each
constexpr std::uint32_t kMinOpenSeconds = 30;  // an answer's addresses stay open at least this

// Netlink messages, built in place (attributes 4-byte aligned, nests by their start).
class NlMessage {
  public:
    std::size_t begin(std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                      std::uint8_t family, std::uint16_t res_id) {
        std::size_t at = b_.size();
        b_.resize(at + NLMSG_HDRLEN + sizeof(nfgenmsg));
        auto* h = reinterpret_cast<nlmsghdr*>(b_.data() + at);
        h->nlmsg_type = type;
        h->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
        h->nlmsg_seq = seq;
        auto* g = reinterpret_cast<nfgenmsg*>(b_.data() + at + NLMSG_HDRLEN);
        g->nfgen_family = family;
        g->version = NFNETLINK_V0;
        g->res_id = htons(res_id);
        return at;
    }
    void end(std::size_t at) {
        reinterpret_cast<nlmsghdr*>(b_.data() + at)->nlmsg_len =
            static_cast<std::uint32_t>(b_.size() - at);
    }
    void attr(std::uint16_t type, const void* data, std::size_t len) {
        std::size_t at = b_.size();
        b_.resize(at + NLA_ALIGN(NLA_HDRLEN + len));
        auto* a = reinterpret_cast<nlattr*>(b_.data() + at);
        a->nla_type = type;
        a->nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
        if (len) std::memcpy(b_.data() + at + NLA_HDRLEN, data, len);
    }
    void str(std::uint16_t type, const char* s) { attr(type, s, std::strlen(s) + 1); }
    std::size_t nest(std::uint16_t type) {
        std::size_t at = b_.size();
        attr(static_cast<std::uint16_t>(type | NLA_F_NESTED), nullptr, 0);
        return at;
    }
    void end_nest(std::size_t at) {
        reinterpret_cast<nlattr*>(b_.data() + at)->nla_len =
            static_cast<std::uint16_t>(b_.size() - at);
    }
    const std::vector<std::uint8_t>& bytes() const { return b_; }

  private:
    std::vector<std::uint8_t> b_;
};

// Sends `m` and waits (up to a second) for the error-or-ack of the message `seq`.
Result<void> nl_call(int fd, const NlMessage& m, std::uint32_t seq, const char* what) {
    struct sockaddr_nl kernel {};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, m.bytes().data(), m.bytes().size(), 0,
                 reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel) < 0)
        return fail_errno("sendto", what);
    alignas(nlmsghdr) char buf[8192];
    for (;;) {
        struct pollfd p {
            fd, POLLIN, 0
        };
        int r = ::poll(&p, 1, 1000);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return fail(Error("netlink", r == 0 ? ETIMEDOUT : errno, what));
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return fail_errno("recv", what);
        }
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != seq) continue;
            int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
            if (err) return fail(Error("netlink", err, what));
            return {};
        }
    }
}

// nfnetlink_log: this socket gets group `group`'s packets, their first 128 bytes, as they come.
Result<void> bind_log_group(int fd, std::uint16_t group) {
    NlMessage m;
    std::size_t at =
        m.begin((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, NLM_F_ACK, 1, AF_UNSPEC, group);
    nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
    m.attr(NFULA_CFG_CMD, &cmd, sizeof cmd);
    m.end(at);
    BUTTER_TRY(nl_call(fd, m, 1, "nfnetlink_log bind"));
    NlMessage mode;
    at = mode.begin((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, NLM_F_ACK, 2, AF_UNSPEC, group);
    nfulnl_msg_config_mode cm{};
    cm.copy_range = htonl(128);
    cm.copy_mode = NFULNL_COPY_PACKET;
    mode.attr(NFULA_CFG_MODE, &cm, sizeof cm);
    // Each packet at once (the default batches 100, or a second).
    std::uint32_t one = htonl(1);
    mode.attr(NFULA_CFG_QTHRESH, &one, sizeof one);
    mode.end(at);
    return nl_call(fd, mode, 2, "nfnetlink_log copy mode");
}

Result<Fd> netlink_socket() {
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return fail_errno("socket", "AF_NETLINK NETLINK_NETFILTER");
    Fd s(fd);
    struct sockaddr_nl me {};
    me.nl_family = AF_NETLINK;
    if (::bind(s.get(), reinterpret_cast<struct sockaddr*>(&me), sizeof me) < 0)
        return fail_errno("bind", "AF_NETLINK NETLINK_NETFILTER");
    return s;
}

// What the helper runs with (a fork of the supervisor: its own copy of memory).
struct HelperArgs {
    int back = -1;           // the socket the sockets go back on, with "ok" or an error
    int sandbox_pidfd = -1;  // whose namespaces it enters
    int ruleset = -1;        // nft's stdin; -1: no rules
    int nft_stderr = -1;
    int nft_exe = -1;
    char** envp = nullptr;
};

// The helper's work in the sandbox's namespaces: the sockets, sent back, then nft (this
// process, exec'd) with the ruleset. Never returns.
[[noreturn]] void helper(const HelperArgs& h) {
    auto die = [&](const Error& e) {
        std::string t = e.what();
        (void)::send(h.back, t.data(), t.size(), MSG_NOSIGNAL);
        ::_exit(1);
    };
    const bool rules = h.ruleset >= 0;
    if (::setns(h.sandbox_pidfd, CLONE_NEWUSER | CLONE_NEWNET) < 0)
        die(Error::from_errno("setns", "the sandbox's user and network namespaces"));
    // Nothing in the sandbox may ptrace or read this process (its memory is butter's).
    (void)::prctl(PR_SET_DUMPABLE, 0);
    if (auto r = set_link_up("lo"); !r) die(r.error());
    int dns = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (dns < 0) die(Error::from_errno("socket", "the DNS socket"));
    struct sockaddr_in at {};
    at.sin_family = AF_INET;
    at.sin_port = htons(53);
    ::inet_pton(AF_INET, kResolver, &at.sin_addr);
    if (::bind(dns, reinterpret_cast<struct sockaddr*>(&at), sizeof at) < 0)
        die(Error::from_errno("bind", std::string(kResolver) + ":53"));
    // DNS over TCP on the same address (a truncated answer's retry).
    int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (tcp < 0) die(Error::from_errno("socket", "the DNS socket (TCP)"));
    if (::bind(tcp, reinterpret_cast<struct sockaddr*>(&at), sizeof at) < 0 ||
        ::listen(tcp, 16) < 0)
        die(Error::from_errno("bind", std::string(kResolver) + ":53 (TCP)"));
    std::vector<int> fds{dns, tcp};
    if (rules) {
        auto sets = netlink_socket();
        if (!sets) die(sets.error());
        auto log = netlink_socket();
        if (!log) die(log.error());
        if (auto r = bind_log_group(log->get(), kNflogGroup); !r) die(r.error());
        int big = 1 << 20;
        (void)::setsockopt(log->get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        fds.push_back(sets->release());
        fds.push_back(log->release());
    }
    const char ok[] = "ok";
    if (!send_fds(h.back, fds, std::span<const char>(ok, 2))) ::_exit(1);
    if (!rules) ::_exit(0);
    // nft keeps CAP_NET_ADMIN over the namespace across its exec as an ambient capability:
    // this process's ids are not the namespace's root (unmapped yet, or root's own, which
    // the sandbox's range does not map), so the exec would drop every other.
    struct __user_cap_header_struct hdr {
        _LINUX_CAPABILITY_VERSION_3, 0
    };
    struct __user_cap_data_struct caps[2]{};
    if (::syscall(SYS_capget, &hdr, caps) < 0) ::_exit(126);
    caps[CAP_TO_INDEX(CAP_NET_ADMIN)].inheritable |= CAP_TO_MASK(CAP_NET_ADMIN);
    if (::syscall(SYS_capset, &hdr, caps) < 0 ||
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0) {
        std::string e = "capset: " + std::string(std::strerror(errno)) + "\n";
        (void)!::write(h.nft_stderr, e.data(), e.size());
        ::_exit(126);
    }
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || ::dup2(h.ruleset, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(h.nft_stderr, 2) < 0)
        ::_exit(127);
    char nft[] = "nft", f[] = "-f", dash[] = "-";
    char* argv[] = {nft, f, dash, nullptr};
    ::syscall(SYS_execveat, h.nft_exe, "", argv, h.envp, AT_EMPTY_PATH);
    std::string e = "execveat: " + std::string(std::strerror(errno)) + "\n";
    (void)!::write(2, e.data(), e.size());
    ::_exit(127);
}

// Polls `fd` for input, up to `ms`; false on timeout.
bool readable(int fd, int ms) {
    struct pollfd p {
        fd, POLLIN, 0
    };
    for (;;) {
        int r = ::poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

std::string read_all(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while (s.size() < 65536 && (n = ::read(fd, buf, sizeof buf)) > 0)
        s.append(buf, static_cast<std::size_t>(n));
    return s;
}

// A program's stderr, as one line: its lines but syslog's complaints (pasta's when it has no
// syslog), joined.
std::string one_line(const std::string& text) {
    std::string out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(at, nl - at);
        at = nl + 1;
        // pasta's lines start with a timestamp ("1796586340.6492: ").
        std::size_t digits = line.find_first_not_of("0123456789.");
        if (digits != std::string::npos && digits > 0 && line.compare(digits, 2, ": ") == 0)
            line.erase(0, digits + 2);
        // Not failures: syslog missing (pasta logs there too), a host without IPv6 (or v4).
        if (line.empty() || line.find("to syslog") != std::string::npos ||
            line.find("No external routable interface") != std::string::npos)
            continue;
        out += (out.empty() ? "" : "; ") + line;
    }
    return out;
}

// Waits for `pidfd`'s process to exit (up to `ms`, then SIGKILL): its status.
ExitStatus wait_exit(const Fd& pidfd, int ms) {
    if (!readable(pidfd.get(), ms)) (void)pidfd_send_signal(pidfd, SIGKILL);
    auto st = waitid_pidfd(pidfd);
    if (st && *st) return **st;
    return ExitStatus{ExitStatus::Kind::Killed, SIGKILL, 0};
}

// A forked child of the supervisor that dies with it.
Result<CloneResult> fork_child() {
    pid_t parent = ::getpid();
    CloneArgs args;
    BUTTER_ASSIGN_OR_RETURN(CloneResult c, clone3(args));
    if (c.is_child()) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::getppid() != parent) ::_exit(1);
        // A program's start as from a shell: every signal default and unblocked (the
        // supervisor ignores SIGPIPE and blocks the rest; pasta takes an ignored SIGPIPE
        // for a failure to install its handlers).
        for (int sig = 1; sig < NSIG; ++sig)
            if (sig != SIGKILL && sig != SIGSTOP) (void)::signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
    }
    return c;
}

// Addresses no allowed name may open (DNS rebinding): private (RFC 1918, 100.64/10, ULA),
// loopback, link-local, unspecified, this-network, benchmarking, IETF, reserved, broadcast and
// multicast ones, and IPv6 forms that wrap an IPv4 address (mapped, NAT64, 6to4).
bool special_address(const dns::Address& a) {
    const std::uint8_t* b = a.bytes.data();
    std::uint8_t v4[4];
    bool is4 = a.family == AF_INET;
    if (!is4) {
        static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const std::uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
        if (std::memcmp(b, mapped, 12) == 0 || std::memcmp(b, nat64, 12) == 0) {
            std::memcpy(v4, b + 12, 4);
            b = v4;
            is4 = true;
        } else if (b[0] == 0x20 && b[1] == 0x02) {  // 6to4: 2002:AABB:CCDD::/48
            std::memcpy(v4, b + 2, 4);
            b = v4;
            is4 = true;
        }
    }
    if (is4)
        return b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 ||
               (b[0] == 169 && b[1] == 254) || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
               (b[0] == 192 && b[1] == 168) || (b[0] == 192 && b[1] == 0 && b[2] == 0) ||
               (b[0] == 198 && (b[1] & 0xfe) == 18) || (b[0] == 100 && (b[1] & 0xc0) == 64);
    static const std::uint8_t zero[16] = {};
    bool unspecified_or_loopback = std::memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1);
    return unspecified_or_loopback || b[0] == 0xff || (b[0] & 0xfe) == 0xfc ||
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0);
}

// The host's own networks and gateways, from its routing tables (/proc/net/route and
// ipv6_route, butter's network namespace, read before the sandbox exists): an allowed name
// answered with one of them opens nothing either (a LAN of public addresses, its router).
std::vector<HostNetwork> host_networks() {
    std::vector<HostNetwork> out;
    if (FILE* f = std::fopen("/proc/net/route", "re")) {
        char line[512];
        while (std::fgets(line, sizeof line, f)) {
            char iface[64];
            unsigned dest = 0, gw = 0, flags = 0, refcnt = 0, use = 0, metric = 0, mask = 0;
            if (std::sscanf(line, "%63s %x %x %x %u %u %u %x", iface, &dest, &gw, &flags, &refcnt,
                            &use, &metric, &mask) != 8)
                continue;
            auto add = [&](std::uint32_t addr, std::uint32_t m) {
                HostNetwork n;
                n.family = AF_INET;
                std::memcpy(n.addr.data(), &addr, 4);  // the file's are in network order
                std::memcpy(n.mask.data(), &m, 4);
                out.push_back(n);
            };
            if (mask != 0) add(dest, mask);     // a network on a link (not the default route)
            if (gw != 0) add(gw, 0xffffffffu);  // a gateway
        }
        std::fclose(f);
    }
    if (FILE* f = std::fopen("/proc/net/ipv6_route", "re")) {
        char line[512];
        auto hex = [](const char* h, std::array<std::uint8_t, 16>& b) {
            for (int i = 0; i < 16; ++i)
                b[i] =
                    static_cast<std::uint8_t>(std::stoul(std::string(h + 2 * i, 2), nullptr, 16));
        };
        while (std::fgets(line, sizeof line, f)) {
            char dest[33], src[33], gw[33];
            unsigned plen = 0, splen = 0;
            if (std::sscanf(line, "%32s %x %32s %x %32s", dest, &plen, src, &splen, gw) != 5 ||
                std::strlen(dest) != 32 || std::strlen(gw) != 32)
                continue;
            if (plen > 0 && plen < 128) {
                HostNetwork n;
                n.family = AF_INET6;
                hex(dest, n.addr);
                for (unsigned bit = 0; bit < plen; ++bit)
                    n.mask[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
                out.push_back(n);
            }
            HostNetwork g;
            g.family = AF_INET6;
            hex(gw, g.addr);
            if (std::any_of(g.addr.begin(), g.addr.end(), [](std::uint8_t x) { return x != 0; })) {
                g.mask.fill(0xff);
                out.push_back(g);
            }
        }
        std::fclose(f);
    }
    return out;
}

std::string address_string(int family, const std::uint8_t* bytes) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, bytes, buf, sizeof buf);
    return buf;
}

}  // namespace

Result<std::unique_ptr<UserNetwork>> UserNetwork::prepare(const SandboxPlan& plan) {
    std::unique_ptr<UserNetwork> n(new UserNetwork(plan));
    const auto& net = plan.net;
    BUTTER_ASSIGN_OR_RETURN(n->pasta_exe_,
                            reopen_host_path(net.pasta, net.pasta_dev, net.pasta_ino));
    if (!net.ruleset.empty()) {
        BUTTER_ASSIGN_OR_RETURN(n->nft_exe_, reopen_host_path(net.nft, net.nft_dev, net.nft_ino));
    }
    struct sockaddr_storage ss {};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<struct sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, net.dns_server.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(53);
        len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, net.dns_server.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(53);
        len = sizeof *v6;
    } else {
        return fail(
            Error::message("network.mode", "not an address of a DNS server", net.dns_server));
    }
    n->server_ = ss;
    n->server_len_ = len;
    int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail_errno("socket", "the host's DNS server");
    n->upstream_ = Fd(fd);
    if (::connect(fd, reinterpret_cast<struct sockaddr*>(&ss), len) < 0)
        return fail_errno("connect", "the host's DNS server " + net.dns_server);
    std::uint16_t r = 0;
    if (::getrandom(&r, sizeof r, 0) == sizeof r) n->next_id_ = r;
    if (net.filter) n->host_networks_ = host_networks();
    return n;
}

UserNetwork::~UserNetwork() {
    stop();
}

Result<void> UserNetwork::attach(pid_t sandbox_pid, int sandbox_pidfd) {
    const auto& net = plan_->net;
    const bool rules = !net.ruleset.empty();
    // pasta first: it takes longest, and the helper's work overlaps it.
    BUTTER_ASSIGN_OR_RETURN(Pipe ready, Pipe::create());
    BUTTER_ASSIGN_OR_RETURN(Pipe err, Pipe::create());
    std::vector<std::string> args{"pasta"};
    args.insert(args.end(), net.pasta_args.begin(), net.pasta_args.end());
    args.insert(args.end(), {"--pid", "/proc/self/fd/3", std::to_string(sandbox_pid)});
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path_env, nullptr};
    BUTTER_ASSIGN_OR_RETURN(CloneResult pasta, fork_child());
    if (pasta.is_child()) {
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(null, 1) < 0 ||
            ::dup2(err.write.get(), 2) < 0 || ::dup2(ready.write.get(), 3) < 0)
            ::_exit(127);
        ::syscall(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC);
        ::syscall(SYS_execveat, pasta_exe_.get(), "", argv.data(), envp, AT_EMPTY_PATH);
        std::string e = "pasta: execveat: " + std::string(std::strerror(errno)) + "\n";
        (void)!::write(2, e.data(), e.size());
        ::_exit(127);
    }
    pasta_ = std::move(pasta.pidfd);
    ready.write.reset();
    err.write.reset();
    pasta_err_ = std::move(err.read);

    // The helper, then nft (the helper's own process, exec'd) with the ruleset on stdin.
    BUTTER_ASSIGN_OR_RETURN(SocketPair back, SocketPair::create(SOCK_SEQPACKET));
    Fd ruleset, nft_err_read, nft_err_write;
    if (rules) {
        int m = ::memfd_create("butter-ruleset", MFD_CLOEXEC);
        if (m < 0) return fail_errno("memfd_create", "the nftables ruleset");
        ruleset = Fd(m);
        if (::write(m, net.ruleset.data(), net.ruleset.size()) !=
                static_cast<ssize_t>(net.ruleset.size()) ||
            ::lseek(m, 0, SEEK_SET) < 0)
            return fail_errno("write", "the nftables ruleset");
        BUTTER_ASSIGN_OR_RETURN(Pipe e, Pipe::create());
        nft_err_read = std::move(e.read);
        nft_err_write = std::move(e.write);
    }
    BUTTER_ASSIGN_OR_RETURN(CloneResult agent, fork_child());
    if (agent.is_child())
        helper({back.second.get(), sandbox_pidfd, rules ? ruleset.get() : -1, nft_err_write.get(),
                nft_exe_.get(), envp});
    back.second.reset();
    nft_err_write.reset();
    auto got = readable(back.first.get(), kReadyTimeoutMs)
                   ? recv_fds(back.first, 4, 1024)
                   : Result<Received>(fail(Error("network", ETIMEDOUT, "the helper")));
    ExitStatus agent_status = wait_exit(agent.pidfd, kReadyTimeoutMs);
    if (!got) return fail(std::move(got).error().with_context("network.mode = \"user\""));
    if (got->data != "ok" || got->fds.size() != (rules ? 4u : 2u))
        return fail(Error::message("network.mode = \"user\"",
                                   got->data.empty() ? "the helper failed" : got->data.c_str()));
    dns_ = std::move(got->fds[0]);
    dns_tcp_ = std::move(got->fds[1]);
    if (rules) {
        nft_nl_ = std::move(got->fds[2]);
        log_nl_ = std::move(got->fds[3]);
        BUTTER_TRY(set_nonblocking(log_nl_.get(), true));
        if (!agent_status.exited() || agent_status.code != 0) {
            std::string text = one_line(read_all(nft_err_read.get()));
            return fail(Error::message("nft",
                                       "the rules of network.allow and network.audit were "
                                       "refused: " +
                                           (text.empty() ? agent_status.to_string() : text)));
        }
    }
    // pasta is ready when it writes its pid (after the namespace's interface is up).
    struct pollfd p[2] = {{ready.read.get(), POLLIN, 0}, {pasta_.get(), POLLIN, 0}};
    std::int64_t deadline = monotonic_ns() + kReadyTimeoutMs * 1'000'000LL;
    for (;;) {
        int left = static_cast<int>((deadline - monotonic_ns()) / 1'000'000);
        int r = left > 0 ? ::poll(p, 2, left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            (void)pidfd_send_signal(pasta_, SIGKILL);
            return fail(Error("pasta", ETIMEDOUT, "not ready after 10 s"));
        }
        if (p[0].revents & POLLIN) {
            char buf[32];
            if (::read(ready.read.get(), buf, sizeof buf) > 0) break;
        }
        if (p[1].revents || (p[0].revents & POLLHUP)) {
            ExitStatus st = wait_exit(pasta_, 1000);
            pasta_.reset();
            std::string text = one_line(read_all(pasta_err_.get()));
            if (text.find("Failed to bind") != std::string::npos && ::geteuid() != 0)
                text +=
                    " (a host port below 1024 needs root, or a lower "
                    "net.ipv4.ip_unprivileged_port_start)";
            return fail(Error::message("pasta", "could not connect the sandbox's network: " +
                                                    (text.empty() ? st.to_string() : text)));
        }
    }
    BUTTER_TRY(set_nonblocking(pasta_err_.get(), true));
    return {};
}

Result<void> UserNetwork::start(EventLoop& loop, Events& events, Log& log) {
    loop_ = &loop;
    events_ = &events;
    log_ = &log;
    if (dns_.valid()) {
        BUTTER_ASSIGN_OR_RETURN(dns_reg_,
                                loop.add(dns_, IoEvent::In, [this](IoEvents) { on_query(); }));
        BUTTER_ASSIGN_OR_RETURN(
            upstream_reg_, loop.add(upstream_, IoEvent::In, [this](IoEvents) { on_upstream(); }));
        BUTTER_ASSIGN_OR_RETURN(
            tcp_reg_, loop.add(dns_tcp_, IoEvent::In, [this](IoEvents) { on_tcp_accept(); }));
    }
    if (log_nl_.valid()) {
        BUTTER_ASSIGN_OR_RETURN(log_reg_,
                                loop.add(log_nl_, IoEvent::In, [this](IoEvents) { on_log(); }));
    }
    if (pasta_err_.valid()) {
        BUTTER_ASSIGN_OR_RETURN(
            err_reg_, loop.add(pasta_err_, IoEvent::In, [this](IoEvents) { on_pasta_stderr(); }));
    }
    return {};
}

void UserNetwork::stop() {
    if (log_nl_.valid()) on_log();  // what the rules logged last
    dns_reg_.reset();
    upstream_reg_.reset();
    log_reg_.reset();
    err_reg_.reset();
    tcp_reg_.reset();
    tcp_.clear();
    if (pasta_.valid()) {
        (void)pidfd_send_signal(pasta_, SIGKILL);
        (void)waitid_pidfd(pasta_);  // ECHILD if the descendants' sweep reaped it first
        pasta_.reset();
    }
    dns_.reset();
    dns_tcp_.reset();
    nft_nl_.reset();
    log_nl_.reset();
    pasta_err_.reset();
}

void UserNetwork::on_pasta_stderr() {
    char buf[4096];
    ssize_t n = ::read(pasta_err_.get(), buf, sizeof buf);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN) err_reg_.reset();
        return;
    }
    err_text_.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = err_text_.find('\n')) != std::string::npos) {
        std::string line = one_line(err_text_.substr(0, nl));
        err_text_.erase(0, nl + 1);
        if (!line.empty() && log_) log_->warn("pasta: %s", line.c_str());
    }
    if (err_text_.size() > 4096) err_text_.clear();
}

void UserNetwork::record(NetworkUse use) {
    // One entry per destination and verdict (a connection allowed, then refused once its
    // name's time ran out, is two). Past the bound new ones are counted, never an older one
    // pushed out: the sandbox cannot clean the record of what it did first.
    auto key =
        std::make_tuple(use.kind, use.name, use.address, use.port, use.protocol, use.verdict);
    auto it = uses_.find(key);
    unsigned count = 1;
    if (it != uses_.end()) {
        count = ++it->second.count;
    } else if (uses_.size() < kMaxUses) {
        use.count = 1;
        uses_.emplace(key, use);
    } else {
        ++dropped_;
    }
    // Every one as it happens, up to a bound per destination (a loop of retries stays short).
    if (events_ && events_->on() && count <= 16) {
        std::vector<std::pair<std::string, std::string>> f;
        if (!use.name.empty()) f.push_back({"name", Events::str(use.name)});
        if (use.kind == "connection") {
            f.push_back({"address", Events::str(use.address)});
            f.push_back({"port", std::to_string(use.port)});
            f.push_back({"protocol", Events::str(use.protocol)});
        }
        f.push_back({"verdict", Events::str(use.verdict)});
        events_->emit(use.kind, f);
    }
}

std::vector<NetworkUse> UserNetwork::uses() const {
    std::vector<NetworkUse> out;
    for (const auto& [key, use] : uses_)
        if (use.kind == "dns") out.push_back(use);
    for (const auto& [key, use] : uses_)
        if (use.kind != "dns") out.push_back(use);
    return out;
}

bool UserNetwork::on_host_network(const dns::Address& a) const {
    for (const HostNetwork& n : host_networks_) {
        if (n.family != a.family) continue;
        std::size_t len = a.family == AF_INET ? 4 : 16;
        bool in = true;
        for (std::size_t i = 0; i < len && in; ++i)
            in = (a.bytes[i] & n.mask[i]) == (n.addr[i] & n.mask[i]);
        if (in) return true;
    }
    return false;
}

std::optional<dns::Question> UserNetwork::admit(std::span<const std::uint8_t> msg, Pending& p,
                                                std::vector<std::uint8_t>& nx) {
    const auto& net = plan_->net;
    auto q = dns::parse_question(msg, false);
    if (!q) return std::nullopt;  // not a query butter answers: dropped (the client times out)
    p.allowed = !net.filter || std::any_of(net.allow.begin(), net.allow.end(),
                                           [&](const AllowEntry& e) { return e.matches(q->name); });
    p.id = q->id;
    p.name = q->name;
    p.sent_ns = monotonic_ns();
    if (!p.allowed && !net.audit) {
        record({"dns", q->name, "", 0, "", "refused", 1});
        nx = dns::nxdomain(msg, *q);
    } else if (net.filter && !net.audit && (q->qclass != 1 || !dns::common_type(q->type))) {
        // An allowed name, asked in a class or type that no address lookup uses: not
        // forwarded (NOTIMP), so that these 32 bits carry nothing to its servers.
        nx = dns::nxdomain(msg, *q, 4);
    }
    return q;
}

void UserNetwork::on_query() {
    for (int budget = 0; budget < 64; ++budget) {
        std::uint8_t buf[4096];
        Pending p;
        p.client_len = sizeof p.client;
        ssize_t n = ::recvfrom(dns_.get(), buf, sizeof buf, 0,
                               reinterpret_cast<struct sockaddr*>(&p.client), &p.client_len);
        if (n <= 0) return;
        std::span<const std::uint8_t> msg(buf, static_cast<std::size_t>(n));
        std::vector<std::uint8_t> nx;
        auto q = admit(msg, p, nx);
        if (!q) continue;
        if (!nx.empty()) {
            (void)::sendto(dns_.get(), nx.data(), nx.size(), 0,
                           reinterpret_cast<struct sockaddr*>(&p.client), p.client_len);
            continue;
        }
        // On to the host's server under an id of ours (two clients' ids may be the same).
        std::erase_if(pending_, [&](const auto& kv) {
            return p.sent_ns - kv.second.sent_ns > 10'000'000'000LL;
        });
        if (pending_.size() >= 1024) pending_.erase(pending_.begin());
        // A random id of those not waiting (an off-path forger has 16 bits to guess).
        std::uint16_t id = 0;
        do {
            if (::getrandom(&id, sizeof id, 0) != sizeof id) id = ++next_id_;
        } while (pending_.count(id));
        auto query = dns::question_only(msg, *q, id);
        pending_[id] = p;
        if (::send(upstream_.get(), query.data(), query.size(), 0) < 0) pending_.erase(id);
    }
}

bool UserNetwork::take_answer(std::span<const std::uint8_t> msg, const dns::Question& q,
                              const Pending& p) {
    const auto& net = plan_->net;
    record({"dns", p.name, "", 0, "", p.allowed ? "allowed" : "audit", 1});
    bool refused = false;
    for (const dns::Address& a : dns::answer_addresses(msg, q)) {
        std::string addr = address_string(a.family, a.bytes.data());
        if (names_.size() < 65536 || names_.count(addr)) names_[addr] = p.name;
        if (!net.filter || !p.allowed) continue;
        // DNS rebinding: a name the list allows, answered with a special address (private,
        // loopback, link-local, multicast, ...) or one of the host's own networks and
        // gateways, opens nothing; the list may name such an address itself.
        if (special_address(a) || on_host_network(a)) {
            if (log_ && warned_.size() < 64 && warned_.insert(p.name + " " + addr).second)
                log_->warn(
                    "network.allow: %s answered %s, an address of a private network or of "
                    "the host's own: not opened (list the address to allow it)",
                    p.name.c_str(), addr.c_str());
            continue;
        }
        // Open the firewall before the sandbox has the address: its connect follows at once.
        for (const AllowEntry& e : net.allow) {
            if (!e.matches(p.name)) continue;
            if (auto r = open_set(a, e, std::max(a.ttl, kMinOpenSeconds)); !r) {
                if (log_) log_->warn("network.allow: %s", r.error().what().c_str());
                refused = true;
            }
        }
    }
    return !refused;  // no answer rather than an address that would not work
}

void UserNetwork::on_upstream() {
    for (int budget = 0; budget < 64; ++budget) {
        std::uint8_t buf[4096];
        ssize_t n = ::recv(upstream_.get(), buf, sizeof buf, 0);
        if (n <= 0) return;
        std::span<const std::uint8_t> msg(buf, static_cast<std::size_t>(n));
        auto q = dns::parse_question(msg, true);
        if (!q) continue;
        auto it = pending_.find(q->id);
        if (it == pending_.end() || it->second.name != q->name) continue;  // not ours, or forged
        Pending p = std::move(it->second);
        pending_.erase(it);
        if (!take_answer(msg, *q, p)) continue;
        buf[0] = static_cast<std::uint8_t>(p.id >> 8);
        buf[1] = static_cast<std::uint8_t>(p.id);
        (void)::sendto(dns_.get(), buf, static_cast<std::size_t>(n), 0,
                       reinterpret_cast<struct sockaddr*>(&p.client), p.client_len);
    }
}

namespace {

// A DNS message with its TCP length in front (RFC 1035 4.2.2).
std::vector<std::uint8_t> framed(std::span<const std::uint8_t> msg) {
    std::vector<std::uint8_t> f(2 + msg.size());
    f[0] = static_cast<std::uint8_t>(msg.size() >> 8);
    f[1] = static_cast<std::uint8_t>(msg.size());
    if (!msg.empty()) std::memcpy(f.data() + 2, msg.data(), msg.size());
    return f;
}

// The first framed message in `in`, if whole (taken out of it).
std::optional<std::vector<std::uint8_t>> unframe(std::vector<std::uint8_t>& in) {
    if (in.size() < 2) return std::nullopt;
    std::size_t len = static_cast<std::size_t>(in[0] << 8 | in[1]);
    if (in.size() < 2 + len) return std::nullopt;
    std::vector<std::uint8_t> msg(in.begin() + 2, in.begin() + 2 + static_cast<long>(len));
    in.erase(in.begin(), in.begin() + 2 + static_cast<long>(len));
    return msg;
}

// Reads what `fd` has into `to` (bounded by one whole message, its length and 64 KiB): false
// on end of file or an error other than EAGAIN.
bool read_some(int fd, std::vector<std::uint8_t>& to) {
    std::uint8_t buf[4096];
    for (;;) {
        if (to.size() >= 2 + 65535) return true;
        std::size_t room = std::min(sizeof buf, 2 + 65535 - to.size());
        ssize_t n = ::recv(fd, buf, room, MSG_DONTWAIT);
        if (n > 0) {
            to.insert(to.end(), buf, buf + n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

// Writes what is left of `out` from `at`: false on an error other than EAGAIN.
bool write_some(int fd, const std::vector<std::uint8_t>& out, std::size_t& at) {
    while (at < out.size()) {
        ssize_t n = ::send(fd, out.data() + at, out.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            at += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
}

}  // namespace

void UserNetwork::on_tcp_accept() {
    for (int budget = 0; budget < 16; ++budget) {
        int fd = ::accept4(dns_tcp_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (tcp_.size() >= kMaxTcp) close_tcp(tcp_.front().get());
        auto c = std::make_unique<TcpQuery>();
        c->client = Fd(fd);
        TcpQuery* raw = c.get();
        auto reg = loop_->add(c->client, IoEvent::In,
                              [this, raw](IoEvents ev) { on_tcp_client(raw, ev); });
        if (!reg) continue;
        c->client_reg = std::move(*reg);
        tcp_.push_back(std::move(c));
    }
}

void UserNetwork::close_tcp(TcpQuery* c) {
    tcp_.remove_if([c](const std::unique_ptr<TcpQuery>& t) { return t.get() == c; });
}

void UserNetwork::on_tcp_client(TcpQuery* c, IoEvents ev) {
    if (ev.any(IoEvent::Err | IoEvent::Hup)) return close_tcp(c);  // gone: no answer to give
    bool open = true;
    for (;;) {
        if (c->out_at < c->out.size()) {  // an answer going back
            if (!write_some(c->client.get(), c->out, c->out_at)) return close_tcp(c);
            if (c->out_at < c->out.size()) {
                if (!c->client_reg.modify(IoEvent::Out)) close_tcp(c);
                return;
            }
            c->out.clear();
            c->out_at = 0;
            if (!c->client_reg.modify(IoEvent::In)) return close_tcp(c);
        }
        if (c->upstream.valid()) return;  // one query at a time (its interest is off meanwhile)
        if (ev.any(IoEvent::In)) open = read_some(c->client.get(), c->in);
        ev = IoEvents{};
        auto msg = unframe(c->in);  // a next query may be read already (pipelined)
        if (!msg) {
            if (!open || c->in.size() >= 2 + 65535) close_tcp(c);
            return;
        }
        std::vector<std::uint8_t> nx;
        auto q = admit(*msg, c->p, nx);
        if (!q) return close_tcp(c);
        if (!nx.empty()) {
            c->out = framed(nx);
            continue;
        }
        // On to the host's server, over TCP as the sandbox asked (its answer may be long).
        int fd = ::socket(server_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return close_tcp(c);
        c->upstream = Fd(fd);
        if (::connect(fd, reinterpret_cast<struct sockaddr*>(&server_), server_len_) < 0 &&
            errno != EINPROGRESS)
            return close_tcp(c);
        if (::getrandom(&c->id, sizeof c->id, 0) != sizeof c->id) c->id = ++next_id_;
        c->up_out = framed(dns::question_only(*msg, *q, c->id));
        c->up_out_at = 0;
        c->up_in.clear();
        auto reg =
            loop_->add(c->upstream, IoEvent::Out, [this, c](IoEvents e) { on_tcp_upstream(c, e); });
        if (!reg || !c->client_reg.modify(IoEvents{})) return close_tcp(c);
        c->up_reg = std::move(*reg);
        return;
    }
}

void UserNetwork::on_tcp_upstream(TcpQuery* c, IoEvents ev) {
    if (ev.any(IoEvent::Err | IoEvent::Hup) && !ev.any(IoEvent::In)) return close_tcp(c);
    if (c->up_out_at < c->up_out.size()) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(c->upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0 ||
            !write_some(c->upstream.get(), c->up_out, c->up_out_at))
            return close_tcp(c);
        if (c->up_out_at == c->up_out.size() && !c->up_reg.modify(IoEvent::In)) return close_tcp(c);
        return;
    }
    bool open = !(ev & IoEvent::In) || read_some(c->upstream.get(), c->up_in);
    auto msg = unframe(c->up_in);
    if (!msg) {
        if (!open || c->up_in.size() >= 2 + 65535) close_tcp(c);
        return;
    }
    auto q = dns::parse_question(*msg, true);
    if (!q || q->id != c->id || q->name != c->p.name || !take_answer(*msg, *q, c->p))
        return close_tcp(c);
    c->up_reg.reset();
    c->upstream.reset();
    (*msg)[0] = static_cast<std::uint8_t>(c->p.id >> 8);
    (*msg)[1] = static_cast<std::uint8_t>(c->p.id);
    c->out = framed(*msg);
    c->out_at = 0;
    on_tcp_client(c, IoEvents{});
}

Result<void> UserNetwork::open_set(const dns::Address& a, const AllowEntry& e,
                                   std::uint32_t seconds) {
    // The key: address . protocol . port, each in a 4-byte register of its own.
    std::uint8_t key[24] = {};
    std::size_t alen = a.family == AF_INET ? 4 : 16;
    std::memcpy(key, a.bytes.data(), alen);
    key[alen] = static_cast<std::uint8_t>(e.protocol);
    key[alen + 4] = static_cast<std::uint8_t>(e.port >> 8);
    key[alen + 5] = static_cast<std::uint8_t>(e.port);
    std::uint32_t seq = ++nl_seq_;
    NlMessage m;
    std::size_t at = m.begin(NFNL_MSG_BATCH_BEGIN, 0, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    m.end(at);
    at = m.begin((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_ACK, seq,
                 NFPROTO_INET, 0);
    m.str(NFTA_SET_ELEM_LIST_TABLE, "butter");
    m.str(NFTA_SET_ELEM_LIST_SET, a.family == AF_INET ? "names4" : "names6");
    std::size_t list = m.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    std::size_t elem = m.nest(NFTA_LIST_ELEM);
    std::size_t k = m.nest(NFTA_SET_ELEM_KEY);
    m.attr(NFTA_DATA_VALUE, key, alen + 8);
    m.end_nest(k);
    std::uint64_t ms = htobe64(static_cast<std::uint64_t>(seconds) * 1000);
    m.attr(NFTA_SET_ELEM_TIMEOUT, &ms, sizeof ms);
    m.end_nest(elem);
    m.end_nest(list);
    m.end(at);
    at = m.begin(NFNL_MSG_BATCH_END, 0, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    m.end(at);
    return nl_call(nft_nl_.get(), m, seq, "nftables set element");
}

void UserNetwork::on_log() {
    const auto& net = plan_->net;
    alignas(nlmsghdr) char buf[65536];
    for (int budget = 0; budget < 256; ++budget) {
        ssize_t n = ::recv(log_nl_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno == ENOBUFS && log_)
                log_->warn("network: some connections were not recorded (too many at once)");
            if (n < 0 && errno == ENOBUFS) continue;
            return;
        }
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) continue;
            auto* data = static_cast<const std::uint8_t*>(NLMSG_DATA(h));
            std::size_t len = h->nlmsg_len - NLMSG_HDRLEN;
            if (len < sizeof(nfgenmsg)) continue;
            std::string prefix;
            std::span<const std::uint8_t> packet;
            for (std::size_t at = NLMSG_ALIGN(sizeof(nfgenmsg)); at + NLA_HDRLEN <= len;) {
                auto* a = reinterpret_cast<const nlattr*>(data + at);
                if (a->nla_len < NLA_HDRLEN || at + a->nla_len > len) break;
                const std::uint8_t* v = data + at + NLA_HDRLEN;
                std::size_t vlen = a->nla_len - NLA_HDRLEN;
                std::uint16_t type = a->nla_type & NLA_TYPE_MASK;
                if (type == NFULA_PREFIX)
                    prefix.assign(reinterpret_cast<const char*>(v),
                                  strnlen(reinterpret_cast<const char*>(v), vlen));
                if (type == NFULA_PAYLOAD) packet = {v, vlen};
                at += NLA_ALIGN(a->nla_len);
            }
            if (packet.size() < 20) continue;
            NetworkUse use;
            use.kind = "connection";
            unsigned proto = 0;
            std::size_t l4 = 0;
            if ((packet[0] >> 4) == 4) {
                proto = packet[9];
                l4 = (packet[0] & 0xf) * 4u;
                use.address = address_string(AF_INET, packet.data() + 16);
            } else if ((packet[0] >> 4) == 6 && packet.size() >= 40) {
                proto = packet[6];
                l4 = 40;
                use.address = address_string(AF_INET6, packet.data() + 24);
                // Past the extension headers: hop-by-hop, routing and destination options (in
                // 8-byte units after the first 8), fragment (8 bytes).
                for (int hops = 0;
                     hops < 8 && (proto == 0 || proto == 43 || proto == 60 || proto == 44);
                     ++hops) {
                    if (packet.size() < l4 + 8) break;
                    unsigned next = packet[l4];
                    l4 += proto == 44 ? 8u : (packet[l4 + 1] + 1u) * 8u;
                    proto = next;
                }
            } else {
                continue;
            }
            use.protocol = proto == 6    ? "tcp"
                           : proto == 17 ? "udp"
                           : proto == 1  ? "icmp"
                           : proto == 58 ? "icmpv6"
                                         : std::to_string(proto);
            if ((proto == 6 || proto == 17) && packet.size() >= l4 + 4)
                use.port = static_cast<std::uint16_t>(packet[l4 + 2] << 8 | packet[l4 + 3]);
            if (auto it = names_.find(use.address); it != names_.end()) use.name = it->second;
            use.verdict = prefix == "allow" ? "allowed" : prefix == "audit" ? "audit" : "refused";
            (void)net;
            record(use);
        }
    }
}

}  // namespace butter::launcher
