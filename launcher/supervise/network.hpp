// network.mode = "user" at run time (the plan's net: plan/network.cpp). Before the command
// runs, in the sandbox's own user and network namespaces (entered through its pidfd): a
// short-lived helper brings lo up, binds butter's DNS socket at kResolver and, with
// network.allow or network.audit, opens the netlink sockets for the rules' log and sets and
// execs nft to load the ruleset; pasta connects the namespace to the host's network. Then the
// supervisor answers the sandbox's DNS itself (NXDOMAIN for a name the allow-list does not
// have; an allowed name's addresses enter the rules' sets for their TTL before the answer
// goes back) and records what the rules log. pasta is butter's child, killed with the
// sandbox (and by its death signal with butter).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>

#include <butter/sandbox.hpp>

#include "plan/plan.hpp"
#include "supervise/dns.hpp"
#include "supervise/events.hpp"
#include "supervise/log.hpp"

namespace butter::launcher {

using NetworkUse = butter::SandboxOutcome::NetworkUse;

// A network of the host's (its routing tables), as address and mask.
struct HostNetwork {
    int family = 0;
    std::array<std::uint8_t, 16> addr{}, mask{};
};

class UserNetwork {
  public:
    // Opens what must be opened before the sandbox exists: the programs and the socket
    // to the host's DNS server.
    [[nodiscard]] static Result<std::unique_ptr<UserNetwork>> prepare(const SandboxPlan& plan);
    UserNetwork(const UserNetwork&) = delete;
    UserNetwork& operator=(const UserNetwork&) = delete;
    ~UserNetwork();

    // Spawn's last step before the child goes on (spawn.hpp: SpawnExtras::before_go): the
    // helper, nft and pasta, each done or failed (a one-line error) when this returns.
    [[nodiscard]] Result<void> attach(pid_t sandbox_pid, int sandbox_pidfd);
    // The DNS socket, the rules' log and pasta's stderr on the loop.
    [[nodiscard]] Result<void> start(EventLoop& loop, Events& events, Log& log);
    // pasta killed and reaped; the sockets closed.
    void stop();
    // What the sandbox asked and reached, for the report (names, then connections).
    std::vector<NetworkUse> uses() const;
    // How many new destinations came past the record's bound (kMaxUses) and were counted only.
    std::size_t dropped() const { return dropped_; }
    static constexpr std::size_t kMaxUses = 4096;

  private:
    explicit UserNetwork(const SandboxPlan& plan) : plan_(&plan) {}
    struct Pending;
    struct TcpQuery;
    // A query from the sandbox: nullopt if malformed (dropped); else its question, with
    // `p` filled for the way on, or `nx` the NXDOMAIN answer to send back (recorded refused).
    std::optional<dns::Question> admit(std::span<const std::uint8_t> msg, Pending& p,
                                       std::vector<std::uint8_t>& nx);
    // The host resolver's answer for `p`: recorded, its addresses opened; false if it must not
    // go back (an address the rules could not take).
    bool take_answer(std::span<const std::uint8_t> msg, const dns::Question& q, const Pending& p);
    void on_query();
    void on_upstream();
    void on_tcp_accept();
    void on_tcp_client(TcpQuery* c, IoEvents ev);
    void on_tcp_upstream(TcpQuery* c, IoEvents ev);
    void close_tcp(TcpQuery* c);
    void on_log();
    void on_pasta_stderr();
    Result<void> open_set(const dns::Address& a, const profile::AllowEntry& e,
                          std::uint32_t seconds);
    void record(NetworkUse use);
    bool on_host_network(const dns::Address& a) const;
    std::vector<HostNetwork> host_networks_;

    const SandboxPlan* plan_;
    Fd pasta_exe_, nft_exe_;
    Fd upstream_;  // connected to the host's DNS server, in the host's network
    struct sockaddr_storage server_ {};  // that server, for DNS over TCP
    socklen_t server_len_ = 0;
    Fd dns_, dns_tcp_, nft_nl_, log_nl_;  // made in the sandbox's network namespace
    Fd pasta_, pasta_err_;                // pasta's pidfd and the read end of its stderr
    std::uint32_t nl_seq_ = 1;
    struct Pending {
        struct sockaddr_storage client {};
        socklen_t client_len = 0;
        std::uint16_t id = 0;
        std::string name;
        bool allowed = false;  // by the allow-list (else through the audit)
        std::int64_t sent_ns = 0;
    };
    std::map<std::uint16_t, Pending> pending_;
    // DNS over TCP (a truncated UDP answer's retry): one query at a time per connection, each
    // on a TCP connection of its own to the host's server; the oldest closed past kMaxTcp.
    struct TcpQuery {
        Fd client, upstream;
        std::vector<std::uint8_t> in, up_in, out, up_out;  // from and to each, framed
        std::size_t out_at = 0, up_out_at = 0;
        Pending p;
        std::uint16_t id = 0;  // the upstream query's
        EventLoop::Registration client_reg, up_reg;
    };
    static constexpr std::size_t kMaxTcp = 16;
    std::list<std::unique_ptr<TcpQuery>> tcp_;
    EventLoop* loop_ = nullptr;
    std::uint16_t next_id_ = 0;
    std::map<std::string, std::string> names_;  // address -> the name it answered
    std::map<
        std::tuple<std::string, std::string, std::string, std::uint16_t, std::string, std::string>,
        NetworkUse>
        uses_;
    std::size_t dropped_ = 0;
    std::set<std::string> warned_;  // the DNS-rebinding warnings given (64 at most)
    Events* events_ = nullptr;
    Log* log_ = nullptr;
    EventLoop::Registration dns_reg_, upstream_reg_, log_reg_, err_reg_, tcp_reg_;
    std::string err_text_;
};

}  // namespace butter::launcher
