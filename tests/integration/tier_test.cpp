// Isolation tiers (plan/tier.cpp) end to end, as root and as nobody: on a host that refuses
// user namespaces (a seccomp filter as Docker's, or user.max_user_namespaces = 0 in a user
// namespace of the test's own) the default profile runs in the landlock tier, confined to its
// paths; isolation.minimum fails closed; and in the namespaces tier the Landlock layer still
// denies what a mount gives only by mistake.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include <butter/landlock.hpp>

#include "../support/butter_run.hpp"
#include "../support/stage.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

int landlock_abi() {
    return ::butter::landlock_abi_version().value_or(0);
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

class TierTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (nobody()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        } else {
            BUTTER_REQUIRE_ROOT();
        }
        BUTTER_REQUIRE(landlock_abi() > 0, "LANDLOCK", "Landlock unavailable");
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
        ASSERT_EQ(::chmod(outside_.path().c_str(), 0755), 0);
        write_file(outside_ / "secret", "host secret\n");
        ASSERT_EQ(::chmod((outside_ / "secret").c_str(), 0644), 0);
    }
    bool nobody() const { return GetParam(); }
    RunOptions opts() const {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_.path();
        o.deny_user_namespaces = true;
        return o;
    }
    RunResult sh(const std::string& script, std::vector<std::string> extra = {},
                 RunOptions o = {}) {
        if (o.cwd.empty()) o = opts();
        std::vector<std::string> args{"run", "--report", report()};
        args.insert(args.end(), extra.begin(), extra.end());
        for (const char* a : {"--", "/bin/sh", "-c"})
            args.push_back(a);
        args.push_back(script);
        return run_butter(args, o);
    }
    std::string report() const { return work_ / "report.json"; }
    TempDir work_, outside_;
};

// The default profile where user namespaces are refused: the landlock tier, said on stderr and
// in the report; the host's files outside the profile's paths unreadable, nothing written
// outside the workspace and the private TMPDIR and HOME, which go after the run.
TEST_P(TierTest, DefaultProfileFallsBackToLandlockWhenUserNamespacesAreRefused) {
    auto r = sh("cat " + outside_ / "secret" +
                    " 2>/dev/null || echo secret-denied; "
                    "echo x > " +
                    outside_ / "planted" +
                    " 2>/dev/null || echo write-denied; "
                    "echo t > \"$TMPDIR/t\" && echo > \"$HOME/h\" && echo private-ok; "
                    "echo \"$TMPDIR\" > " +
                    work_ / "tmpdir" + " 2>/dev/null; " +
                    "cat /etc/hostname >/dev/null && echo system-readable; "
                    "echo made > made.txt 2>/dev/null; true",
                {"--set", "report.file_activity=true"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(has(r.out, "secret-denied")) << r.out;
    EXPECT_TRUE(has(r.out, "write-denied")) << r.out;
    EXPECT_TRUE(has(r.out, "private-ok")) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "system-readable")) << r.out;
    EXPECT_FALSE(has(r.out, "host secret"));
    EXPECT_NE(::access((outside_ / "planted").c_str(), F_OK), 0);
    EXPECT_TRUE(has(r.err, "butter: isolation: the landlock tier (the namespaces were refused"))
        << r.err;
    std::string json = read_file(report());
    EXPECT_TRUE(has(json, "\"tier\": \"landlock\"")) << json;
    EXPECT_TRUE(has(json, "\"uncovered\": [\"pid namespace")) << json;
    if (nobody()) {
        // (As root the workspace is root's, read-only to the sandbox's unprivileged ids.)
        EXPECT_TRUE(has(json, "\"created\": [\"" + work_ / "made.txt" + "\"")) << json;
        std::string tmpdir = read_file(work_ / "tmpdir");
        ASSERT_FALSE(tmpdir.empty());
        tmpdir.pop_back();
        EXPECT_NE(::access(tmpdir.c_str(), F_OK), 0) << tmpdir << " outlived the run";
    }
}

// --events says it too: an "isolation" event with the tier and why, then the "started" one
// with the run's isolation.
TEST_P(TierTest, TheFallbackIsAnEvent) {
    RunOptions o = opts();
    o.fd5_file = work_ / "events.jsonl";
    auto r = run_butter({"run", "--events", "5", "--", "true"}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string ev = read_file(work_ / "events.jsonl");
    auto isolation = ev.find("{\"event\": \"isolation\"");
    auto started = ev.find("{\"event\": \"started\"");
    ASSERT_NE(isolation, std::string::npos) << ev;
    ASSERT_NE(started, std::string::npos) << ev;
    EXPECT_LT(isolation, started) << ev;
    EXPECT_TRUE(has(ev.substr(isolation, started - isolation),
                    "\"tier\": \"landlock\", \"reason\": \"the namespaces were refused: "))
        << ev;
    EXPECT_TRUE(has(ev.substr(started), "\"isolation\": {\"tier\": \"landlock\"")) << ev;
}

// Signals and abstract unix sockets of the host: scoped out (Landlock ABI 6).
TEST_P(TierTest, LandlockTierScopesSignalsAndAbstractSockets) {
    BUTTER_REQUIRE(landlock_abi() >= 6, "LANDLOCK_SCOPE", "Landlock ABI 6 (scopes) unavailable");
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(l, 0);
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::string name = "butter-tier-test-" + std::to_string(::getpid());
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(::listen(l, 4), 0);
    std::string script =
        "import socket, os, errno\n"
        "try:\n"
        "    s = socket.socket(socket.AF_UNIX); s.connect('\\0" +
        name +
        "'); print('connected')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
        "try:\n"
        "    os.kill(os.getppid(), 0); print('signalled')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n";
    auto r = run_butter({"run", "--", "/usr/bin/python3", "-c", script}, opts());
    ::close(l);
    EXPECT_EQ(r.code, 0) << r.err;
    // (No unix socket at all here: the scope holds for one passed in.)
    EXPECT_EQ(r.out, "EAFNOSUPPORT\nEPERM\n") << r.err;
}

// network.mode = "none" without a network namespace: no inet socket at all.
TEST_P(TierTest, LandlockTierHasNoNetworkForNone) {
    auto r = run_butter({"run", "--", "/usr/bin/python3", "-c",
                         "import socket, errno\n"
                         "try:\n"
                         "    socket.socket(); print('socket')\n"
                         "except OSError as e:\n"
                         "    print(errno.errorcode[e.errno])\n"},
                        opts());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "EAFNOSUPPORT\n") << r.err;
}

// isolation.minimum = "namespaces" (the untrusted profile's): no run below, one line why.
TEST_P(TierTest, MinimumNamespacesFailsClosed) {
    auto r = sh("echo ran", {"--set", "isolation.minimum=namespaces"});
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(has(r.err,
                    "isolation.minimum = \"namespaces\": no lower tier; --set "
                    "isolation.minimum=landlock allows the landlock tier"))
        << r.err;
    EXPECT_TRUE(has(r.err, "refused")) << r.err;
    RunOptions staged = opts();
    staged.env = {profile_path_env()};  // the shipped profiles, where nobody may read them
    auto u = run_butter({"run", "-p", "untrusted", "--", "/bin/true"}, staged);
    EXPECT_EQ(u.code, 125);
    EXPECT_TRUE(has(u.err, "no lower tier")) << u.err;
}

// A tier asked for: landlock on a host that allows namespaces; below the minimum, an error
// naming the flag.
TEST_P(TierTest, TierCanBeChosenButNotBelowTheMinimum) {
    RunOptions o = opts();
    o.deny_user_namespaces = false;
    auto r = sh("cat " + outside_ / "secret" + " 2>/dev/null || echo secret-denied",
                {"--set", "isolation.tier=landlock"}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "secret-denied\n");
    std::string json = read_file(report());
    EXPECT_TRUE(has(json, "\"tier\": \"landlock\", \"reason\": \"isolation.tier\"")) << json;
    auto below = sh("true", {"--set", "isolation.tier=seccomp"}, o);
    EXPECT_EQ(below.code, 125);
    EXPECT_TRUE(has(below.err,
                    "--set isolation.tier=seccomp: isolation: the seccomp tier is "
                    "below isolation.minimum = \"landlock\""))
        << below.err;
}

// The seccomp tier: the filters alone (the host's files as the user's), and still no network.
TEST_P(TierTest, SeccompTierIsTheFiltersAlone) {
    auto r = sh("cat " + outside_ / "secret" +
                    "; python3 -c 'import socket; socket.socket()' 2>&1 | tail -1",
                {"--set", "isolation.tier=seccomp", "--set", "isolation.minimum=seccomp"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(has(r.out, "host secret")) << r.out;
    EXPECT_TRUE(has(r.out, "Address family not supported")) << r.out;
    std::string json = read_file(report());
    EXPECT_TRUE(has(json, "\"tier\": \"seccomp\"")) << json;
    EXPECT_TRUE(has(json, "\"landlock_abi\": 0")) << json;
}

// A bind the landlock tier cannot give (another path than its source's) refuses the tier with
// the reason, instead of running without it.
TEST_P(TierTest, ABindElsewhereNeedsTheNamespacesTier) {
    auto r = sh("echo ran", {"--ro-bind", outside_.path() + ":/data"});
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(has(r.err, "needs a mount namespace")) << r.err;
    EXPECT_TRUE(has(r.err, "no lower tier could be planned")) << r.err;
}

// An attacker's review: the host's unix sockets with a path are not hidden without a mount
// namespace, and Landlock does not cover connect(): no unix socket but socketpair's.
TEST_P(TierTest, HostUnixSocketsWithAPathAreOutOfReach) {
    TempDir sockdir;
    ASSERT_EQ(::chmod(sockdir.path().c_str(), 0777), 0);
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(l, 0);
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::string path = sockdir / "host.sock";
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::chmod(path.c_str(), 0777), 0);
    ASSERT_EQ(::listen(l, 4), 0);
    std::string script =
        "import socket, errno\n"
        "try:\n"
        "    s = socket.socket(socket.AF_UNIX); s.connect('" +
        path +
        "'); print('connected')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
        "a, b = socket.socketpair(); a.send(b'x'); print(b.recv(1).decode())\n";
    auto r = run_butter({"run", "--", "/usr/bin/python3", "-c", script}, opts());
    ::close(l);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "EAFNOSUPPORT\nx\n") << r.err;
}

// The same review: what the command starts ends with the run (no new session or process
// group to leave the command's, which butter kills whole), and it cannot reprioritize butter.
TEST_P(TierTest, EveryProcessEndsWithTheRunAndButterKeepsItsPriority) {
    std::string marker = "tier-survivor-" + std::to_string(::getpid());
    std::string py = R"(import os
try:
    os.setsid(); print("setsid")
except OSError as e: print(e.errno)
try:
    os.setpriority(os.PRIO_PROCESS, os.getppid(), 19); print("reniced")
except OSError as e: print(e.errno))";
    auto r = sh("python3 -c '" + py + "'; (exec -a " + marker + " sleep 30) & echo started");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "1\n1\nstarted\n") << r.err;  // EPERM twice
    EXPECT_TRUE(pids_matching(marker).empty()) << "a process outlived the run";
}

// The second attacker round: a datagram socketpair end reaches a host socket with a path
// (sendto, connect): streams only; io_uring (its own socket and connect) is refused whatever
// the profile's deny list says; chmod by path never lets group or others write (Landlock has
// no right for modes; a compiler's chmod +x works); no System V IPC to outlive the run.
TEST_P(TierTest, NoDatagramPairIoUringMetadataByPathOrSysvIpc) {
    TempDir sockdir;
    ASSERT_EQ(::chmod(sockdir.path().c_str(), 0777), 0);
    int l = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(l, 0);
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::string sock = sockdir / "log.sock";
    std::memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
    std::string mine = outside_ / "mine";
    write_file(mine, "x");
    ASSERT_EQ(::chmod(mine.c_str(), 0600), 0);
    ASSERT_EQ(::chown(mine.c_str(), nobody() ? 65534 : 600113152, 0), 0);
    std::string py = R"(import socket, errno, os
def attempt(what, f):
    try:
        f(); print(what, 'ok')
    except OSError as e:
        print(what, errno.errorcode[e.errno])
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendto(b'x', ')" +
                     sock + R"(')
attempt('dgram', pair)
attempt('chmod', lambda: os.chmod(')" +
                     mine + R"(', 0o777))
open(os.environ['TMPDIR'] + '/out', 'w').close()
attempt('chmod-exec', lambda: os.chmod(os.environ['TMPDIR'] + '/out', 0o755))
)";
    // (A profile whose own deny list leaves io_uring out. The probe at its own path: shmget
    // and io_uring_setup, raw; a minimal Python has no ctypes.)
    std::string probe = probe_bin();
    auto r =
        run_butter({"run", "--ro-bind", probe, "--set", "seccomp.deny=[]", "--", "/bin/sh", "-c",
                    "/usr/bin/python3 -c \"$0\"; " + probe + " try-syscall nr:29; " + probe +
                        " try-syscall io_uring_setup; true",
                    py},
                   opts());
    ::close(l);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "dgram EPROTONOSUPPORT\nchmod EPERM\nchmod-exec ok\nEPERM\nENOSYS\n") << r.err;
    struct stat st {};
    ASSERT_EQ(::stat(mine.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, TierTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

// The same where the kernel's limit refuses them (a hardened host's user.max_user_namespaces),
// for nobody (root's id map in a test's own user namespace maps no unprivileged id to run as).
TEST(TierNobody, FallsBackWhenTheUserNamespaceLimitIsZero) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    BUTTER_REQUIRE(landlock_abi() > 0, "LANDLOCK", "Landlock unavailable");
    TempDir work, outside;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    write_file(outside / "secret", "host secret\n");
    ASSERT_EQ(::chmod(outside.path().c_str(), 0755), 0);
    ASSERT_EQ(::chmod((outside / "secret").c_str(), 0644), 0);
    RunOptions o;
    o.as_nobody = true;
    o.cwd = work.path();
    o.no_user_namespaces = true;
    auto r = run_butter({"run", "--report", work / "report.json", "--", "/bin/sh", "-c",
                         "cat " + outside / "secret" + " 2>/dev/null || echo secret-denied"},
                        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "secret-denied\n") << r.err;
    EXPECT_TRUE(has(read_file(work / "report.json"), "\"tier\": \"landlock\""));
}

// The command's stdin file is readable as it was opened, never writable (both tiers): the
// Landlock rule for an inherited fd follows its open mode.
TEST(TierNobody, AFileGivenAsStdinIsNotWritable) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    BUTTER_REQUIRE(landlock_abi() > 0, "LANDLOCK", "Landlock unavailable");
    TempDir work, outside;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    ASSERT_EQ(::chmod(outside.path().c_str(), 0777), 0);
    std::string data = outside / "data.txt";
    write_file(data, "original\n");
    ASSERT_EQ(::chown(data.c_str(), 65534, 65534), 0);
    for (const char* tier : {"namespaces", "landlock"}) {
        RunOptions o;
        o.as_nobody = true;
        o.cwd = work.path();
        o.stdin_data = std::nullopt;
        o.program = "/bin/sh";
        auto r = run_butter({"-c", std::string(butter_bin()) + " run --set isolation.tier=" + tier +
                                       " -- /bin/sh -c 'cat; echo changed > /proc/self/fd/0 "
                                       "2>/dev/null || echo denied' < " +
                                       data},
                            o);
        EXPECT_EQ(r.code, 0) << tier << ": " << r.err;
        EXPECT_EQ(r.out, "original\ndenied\n") << tier << ": " << r.err;
        EXPECT_EQ(read_file(data), "original\n") << tier;
    }
}

// In the namespaces tier a mount the plan never made reaches nothing it does not allow: a
// host mount that propagates into a read-only bind after the sandbox started is writable as
// mounted (a propagated mount does not take the bind's read-only flag), and the Landlock layer
// keeps it read-only as the bind was declared. Without the layer (the control) it is written.
// Root mounts; the sandbox is nobody's.
TEST(TierNamespaces, LandlockDeniesWhatAPropagatedMountWouldAllow) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(landlock_abi() > 0, "LANDLOCK", "Landlock unavailable");
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    // Not below /tmp: the sandbox's /tmp is a writable tmpfs, whose rule covers every mount
    // below it (Landlock's rules only add rights down the tree; README's security model).
    TempDir d("/var/tmp");
    ASSERT_EQ(::chmod(d.path().c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((d / "sub").c_str(), 0755), 0);
    // A shared mount of the test's own at d (the host's / may be private): what is mounted
    // below it later reaches the sandbox's bind of it, a slave.
    ASSERT_EQ(::mount(d.path().c_str(), d.path().c_str(), nullptr, MS_BIND, nullptr), 0);
    ASSERT_EQ(::mount(nullptr, d.path().c_str(), nullptr, MS_SHARED, nullptr), 0);
    auto attempt = [&](bool landlock) {
        std::string ready = d / "sub/ready";
        std::string script = "echo up; for i in $(seq 200); do [ -e " + ready +
                             " ] && break; sleep 0.05; done; echo w > " + d / "sub/planted" +
                             " 2>/dev/null && echo written || echo denied";
        // As nobody: its bind is made in its own mount namespace, a slave of the host's (a
        // tree root clones in the host's namespace would be private; nothing propagates).
        RunOptions o;
        o.as_nobody = true;
        o.cwd = "/";
        Started s = start_butter({"run", "--ro-bind", d.path(), "--set",
                                  std::string("landlock.enabled=") + (landlock ? "true" : "false"),
                                  "--", "/bin/sh", "-c", script},
                                 o);
        // The host mounts a tmpfs there once the sandbox runs.
        EXPECT_EQ(read_line(s.out_fd, 15000), "up");
        EXPECT_EQ(::mount("tmpfs", (d / "sub").c_str(), "tmpfs", 0, "size=1M"), 0);
        write_file(ready, "");
        std::string out = read_line(s.out_fd, 15000) + "\n";
        ::close(s.out_fd);
        EXPECT_EQ(wait_butter(s.pid), 0);
        bool planted = ::access((d / "sub/planted").c_str(), F_OK) == 0;
        EXPECT_EQ(::umount2((d / "sub").c_str(), MNT_DETACH), 0);
        return std::make_pair(out, planted);
    };
    auto [control, control_planted] = attempt(false);
    EXPECT_EQ(control, "written\n") << "the mistake this layer is for did not happen";
    EXPECT_TRUE(control_planted);
    auto [confined, confined_planted] = attempt(true);
    EXPECT_EQ(confined, "denied\n");
    EXPECT_FALSE(confined_planted);
    EXPECT_EQ(::umount2(d.path().c_str(), MNT_DETACH), 0);
}

}  // namespace
}  // namespace butter::test
