// butter under systemd: sd_notify relay and socket activation, as a Type=notify,
// socket-activated unit would use them (a listener socket stands in for systemd).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <signal.h>
#include <unistd.h>
#include <cstring>

#include <chrono>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

class Service : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    std::vector<std::string> probe(std::vector<std::string> extra, std::vector<std::string> cmd) {
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.push_back("/probe");
        args.insert(args.end(), cmd.begin(), cmd.end());
        return args;
    }
    TempDir dir_;
};

// A datagram socket playing systemd's NOTIFY_SOCKET.
struct FakeSystemd {
    int fd = -1;
    std::string path;
    explicit FakeSystemd(const std::string& p) : path(p) {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ~FakeSystemd() { ::close(fd); }
    std::string receive(int ms = 2000) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1) return "<nothing>";
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "<error>";
    }
};

TEST_F(Service, ReadyReachesSystemdThroughTheRelay) {
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto r = run_butter(
        probe({"--set", "supervise.notify=true"}, {"notify", "READY=1;STATUS=serving;MAINPID=77"}),
        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "sent\n");
    // MAINPID is dropped: butter stays the unit's main process.
    EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=serving\n");
}

TEST_F(Service, PlaysATypeNotifyUnit) {
    // ExecStart=butter run -p ... -- daemon; systemd waits for READY=1, stops with SIGTERM,
    // and reads the exit status.
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto s = start_butter(
        probe({"--set", "supervise.notify=true", "--set", "supervise.stop_timeout=\"5s\""},
              {"service", "3"}),
        o);
    EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=serving\n");
    auto asked = std::chrono::steady_clock::now();
    ::kill(s.pid, SIGTERM);
    EXPECT_EQ(systemd.receive(), "STOPPING=1\n");
    EXPECT_EQ(wait_butter(s.pid), 3);  // the daemon's own status, passed through
    EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(5))
        << "not within the grace";
    ::close(s.out_fd);
}

TEST_F(Service, NotifyWithoutSystemdIsANoOp) {
    RunOptions o;
    o.cwd = dir_.path();
    auto r = run_butter(probe({"--set", "supervise.notify=true"}, {"notify", "READY=1"}), o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "no NOTIFY_SOCKET\n");
}

TEST_F(Service, NotifySocketIsNotLeakedWithoutNotify) {
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto r = run_butter(probe({}, {"notify", "READY=1"}), o);
    EXPECT_EQ(r.out, "no NOTIFY_SOCKET\n");
    EXPECT_EQ(systemd.receive(200), "<nothing>");
}

TEST_F(Service, SocketActivationPassesTheListeningFd) {
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    RunOptions o;
    o.cwd = dir_.path();
    o.listen_fd = l;
    o.stdout_file = dir_ / "out.txt";
    auto s = start_butter(probe({}, {"listen-serve"}), o);
    // The sandbox has no network of its own, yet serves on the host's socket it was given.
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    char buf[64] = {};
    pollfd p{c, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    ssize_t n = ::read(c, buf, sizeof buf - 1);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "hello from web\n");
    EXPECT_EQ(wait_butter(s.pid), 0);
    EXPECT_EQ(read_file(dir_ / "out.txt"), "served\n");
    ::close(c);
    ::close(l);
}

}  // namespace
}  // namespace butter::test
