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

#include <dirent.h>
#include <grp.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <thread>

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
    // One datagram (fds that come with it are counted in `fds_received` and closed, as
    // systemd does with a barrier's).
    std::string receive(int ms = 2000) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1) return "<nothing>";
        char buf[1 << 16];
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                int f;
                std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                ::close(f);
                ++fds_received;
            }
        }
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "<error>";
    }
    int fds_received = 0;
};

// One datagram to the socket at `path`; false if it could not be sent.
bool send_datagram(const std::string& path, const char* msg) {
    int f = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bool sent =
        ::sendto(f, msg, std::strlen(msg), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) > 0;
    ::close(f);
    return sent;
}

// The relay made to read late (a busy supervisor, here stopped: a result that does not hang on
// a race), then let go: nothing forged may have reached systemd, and the service still stops
// as a Type=notify unit does (its STOPPING=1, exit 0).
void hold(const Started& s) {
    int st = 0;
    ASSERT_EQ(::kill(s.pid, SIGSTOP), 0);
    ASSERT_EQ(::waitpid(s.pid, &st, WUNTRACED), s.pid);
}
void release_and_stop(FakeSystemd& systemd, const Started& s) {
    ASSERT_EQ(::kill(s.pid, SIGCONT), 0);
    EXPECT_EQ(systemd.receive(300), "<nothing>");
    ::kill(s.pid, SIGTERM);
    EXPECT_EQ(systemd.receive(), "STOPPING=1\n");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

TEST_F(Service, ReadyReachesSystemdThroughTheRelay) {
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto r = run_butter(
        probe({"--set", "supervise.notify=true"},
              {"notify", "READY=1;STATUS=serving;MAINPID=77;X=1|MAINPID=78;NOTIFYACCESS=all"}),
        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "sent\n");
    // MAINPID is dropped (butter stays the unit's main process), also after a '\r', which
    // systemd splits on as on '\n'; so is NOTIFYACCESS, and what sd_notify(3) does not know.
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
        // -v: a message the relay drops says why on stderr.
        probe({"-v", "--set", "supervise.notify=true", "--set", "supervise.stop_timeout=\"5s\""},
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

// The relay takes datagrams from the sandbox only, and what it relays is whole (a datagram cut
// at a buffer's end could end in a line that says something else). The attack: a process of
// butter's own uid outside the sandbox (another sandbox with $XDG_RUNTIME_DIR or /tmp bound
// in) finds the relay's socket where butter made it, sends and exits at once: a sender gone by
// the time its datagram is read passed for the sandbox's. Now no host path names the socket
// (the sandbox's child binds it in a tmpfs of its own): nothing to find, nothing relayed.
TEST_F(Service, NotifyRelayTakesNothingFromOutsideAndNothingCut) {
    FakeSystemd systemd(dir_ / "notify.sock");
    TempDir runtime, tmp;  // where butter would make the relay's socket
    ASSERT_EQ(::chmod(runtime.path().c_str(), 0755), 0);
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path, "XDG_RUNTIME_DIR=" + runtime.path(),
             "TMPDIR=" + tmp.path()};
    auto s = start_butter(probe({"--set", "supervise.notify=true"}, {"service", "0"}), o);
    ASSERT_EQ(systemd.receive(), "READY=1\nSTATUS=serving\n");
    // Every socket below the runtime directory and TMPDIR, two levels down.
    std::vector<std::string> sockets;
    for (const std::string& top : {runtime.path(), tmp.path()}) {
        std::vector<std::string> dirs = {top};
        for (std::size_t i = 0; i < dirs.size(); ++i) {
            DIR* d = ::opendir(dirs[i].c_str());
            if (!d) continue;
            while (dirent* e = ::readdir(d)) {
                std::string name = e->d_name, path = dirs[i] + "/" + name;
                struct stat st {};
                if (name == "." || name == ".." || ::lstat(path.c_str(), &st) < 0) continue;
                if (S_ISSOCK(st.st_mode)) sockets.push_back(path);
                if (S_ISDIR(st.st_mode) && i == 0) dirs.push_back(path);
            }
            ::closedir(d);
        }
    }
    EXPECT_TRUE(sockets.empty()) << "the relay's socket has a host path: " << sockets[0];
    // Each forger has sent and is gone, reaped, when the relay reads.
    hold(s);
    for (const std::string& relay : sockets) {
        pid_t forger = ::fork();
        if (forger == 0) ::_exit(send_datagram(relay, "STATUS=forged") ? 0 : 1);
        ::waitpid(forger, nullptr, 0);
    }
    release_and_stop(systemd, s);

    auto cut = run_butter(probe({"--set", "supervise.notify=true"}, {"notify-cut"}), o);
    EXPECT_EQ(cut.out, "sent\n") << cut.err;
    std::string got = systemd.receive(500);
    EXPECT_EQ(got.find("\nREADY=1\n"), std::string::npos) << "a cut line became READY=1";
    EXPECT_TRUE(got == "<nothing>" || got.ends_with("READY=1-NOT-REALLY\n")) << got.size();
}

// A process that may look into a sandboxed one's root (/proc/PID/root: without a user
// namespace, any process of the sandbox's host uid; here nobody's) reaches the relay's socket
// by name. The attack: it sends, and is gone by the time the relay reads (here the supervisor
// is held meanwhile, for a result that does not hang on a race); a sender gone then was taken
// for the sandbox's. Now only the command's own process counts once gone.
TEST_F(Service, NotifyRelayRefusesAGoneSenderFromOutside) {
    BUTTER_REQUIRE_ROOT();  // a sandbox without a user namespace, as nobody
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto s = start_butter(
        probe({"--set", "supervise.notify=true", "--set", "namespaces.user=false", "--set",
               "process.user=\"nobody\"", "--set", "process.group=\"nogroup\""},
              {"service", "0"}),
        o);
    ASSERT_EQ(systemd.receive(), "READY=1\nSTATUS=serving\n");
    // The relay's socket through a sandboxed process's root: butter's descendants' (init's is
    // closed to others: it is not dumpable; the command's is not).
    std::vector<std::string> relays;
    std::vector<pid_t> pids = {s.pid};
    for (std::size_t i = 0; i < pids.size(); ++i) {
        std::string p = std::to_string(pids[i]);
        if (i > 0) relays.push_back("/proc/" + p + "/root/run/host/notify/notify");
        std::istringstream children(read_file("/proc/" + p + "/task/" + p + "/children"));
        for (pid_t c; children >> c;)
            pids.push_back(c);
    }
    ASSERT_FALSE(relays.empty()) << "no sandboxed process found";
    hold(s);
    pid_t forger = ::fork();
    if (forger == 0) {
        if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
            ::setresuid(65534, 65534, 65534) < 0)
            ::_exit(2);
        for (const std::string& relay : relays)
            if (send_datagram(relay, "STATUS=forged")) ::_exit(0);
        ::_exit(1);
    }
    int st = 0;
    ::waitpid(forger, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "the forger could not send: no attack";
    release_and_stop(systemd, s);
}

// The fds of a message the relay drops were closed on the supervisor's loop: a TCP socket with
// SO_LINGER and a full send buffer towards a peer that never reads made that close wait (up to
// the linger time, here an hour; in fact until the sandbox ended), the time limit and SIGTERM
// with it; so did a unix socket holding such a one in flight. A child of the supervisor now
// does the last close as it exits (an exiting process never lingers).
TEST_F(Service, NotifyRelayCannotBeStalledByTheFdsItDrops) {
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    for (const char* how : {"notify-linger", "notify-linger-nested"}) {
        auto start = std::chrono::steady_clock::now();
        auto r = run_butter(
            probe({"--timeout", "1s", "--set", "supervise.notify=true"}, {how, "30"}), o);
        EXPECT_EQ(r.out, "sent\n") << how << ": " << r.err;
        EXPECT_NE(r.err.find("time limit"), std::string::npos) << how << ": " << r.err;
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << how;
    }
}

// sd_notify_barrier(): BARRIER=1 carries an fd that the manager closes; relayed without it, the
// service waits in vain.
TEST_F(Service, NotifyBarrierPassesItsFd) {
    FakeSystemd systemd(dir_ / "notify.sock");
    RunOptions o;
    o.cwd = dir_.path();
    o.env = {"NOTIFY_SOCKET=" + systemd.path};
    auto s = start_butter(probe({"--set", "supervise.notify=true"}, {"notify-barrier"}), o);
    EXPECT_EQ(systemd.receive(), "BARRIER=1\n");
    EXPECT_EQ(systemd.fds_received, 1);
    EXPECT_EQ(read_line(s.out_fd), "barrier ok");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

}  // namespace
}  // namespace butter::test
