// Namespaces and kernel surface closed by default, limits that fail closed: each attack from
// inside the shipped profiles, as root and as nobody, checked from outside where it can be.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include <butter/landlock.hpp>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

struct Param {
    const char* profile;
    bool nobody;
};
void PrintTo(const Param& p, std::ostream* os) {
    *os << p.profile << (p.nobody ? " as nobody" : " as root");
}

// The kernel's Landlock ABI (0 without Landlock): signal and abstract-socket scoping need 6
// (Linux 6.12). Below it butter refuses, or warns, as each test checks.
int landlock_abi() {
    auto v = landlock_abi_version();
    return v ? *v : 0;
}

class HostileKernel : public ::testing::TestWithParam<Param> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();
        if (nobody()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        }
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
    }
    bool nobody() const { return GetParam().nobody; }
    // Unprivileged without a pid namespace, only Landlock's signal scope (ABI 6) keeps butter
    // out of the sandbox's reach: below it the run is refused, and says why.
    bool refused_without_signal_scope(const RunResult& r) const {
        if (!nobody() || landlock_abi() >= 6) return false;
        EXPECT_EQ(r.code, 125);
        EXPECT_NE(r.err.find("this kernel cannot keep the sandbox from signalling butter"),
                  std::string::npos)
            << r.err;
        return true;
    }
    std::string profile() const { return GetParam().profile; }
    RunOptions opts() const {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_.path();
        o.env = {profile_path_env()};
        return o;
    }
    // butter run -p PROFILE --ro-bind hostile:/hostile --ro-bind probe:/probe [extra] -- ARGS
    RunResult run(std::vector<std::string> cmd, std::vector<std::string> extra = {},
                  RunOptions o = {}) {
        if (o.cwd.empty()) {
            RunOptions base = opts();
            base.forged_listen_fds = o.forged_listen_fds;
            o = base;
        }
        std::vector<std::string> args{"run",
                                      "-p",
                                      profile(),
                                      "--ro-bind",
                                      std::string(hostile_bin()) + ":/hostile",
                                      "--ro-bind",
                                      std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.insert(args.end(), cmd.begin(), cmd.end());
        return run_butter(args, o);
    }
    TempDir work_;
};

// 1, 2. clone3's flags are out of seccomp's sight: a filter that restricts namespaces makes it
// ENOSYS (libc falls back to clone, whose flags it checks); no new user namespace at all by
// default (namespaces.nested_user = false).
TEST_P(HostileKernel, NoNamespacesThroughClone3OrUnshare) {
    auto r = run({"/hostile", "clone3"});
    EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << r.out << r.err;
    for (const std::string& l : lines_of(r.out)) {
        if (l.starts_with("clone3(")) {
            EXPECT_NE(l.find("blocked ENOSYS"), std::string::npos) << l;
        }
        if (l.starts_with("unshare(CLONE_NEWUSER")) {
            EXPECT_NE(l.find("blocked EPERM"), std::string::npos) << l;
        }
    }
    EXPECT_EQ(lines_of(r.out).size(), 16u) << r.out;
    // The user namespace limit inside is 0 as well, for what the filter cannot see.
    auto limit = run({"/bin/cat", "/proc/sys/user/max_user_namespaces"});
    EXPECT_EQ(limit.out, "0\n") << limit.err;
    // A profile that needs them says so (untrusted keeps its own clone rule).
    if (profile() == "untrusted") return;
    auto nested = run({"/hostile", "clone3"}, {"--set", "namespaces.nested_user=true"});
    EXPECT_NE(nested.out.find("clone3(CLONE_NEWUSER): ESCAPED"), std::string::npos)
        << nested.out << nested.err;
}

// 3. The bounding set holds exactly capabilities.keep.
TEST_P(HostileKernel, BoundingSetIsExactlyTheKeptCapabilities) {
    auto r = run({"/probe", "caps"});
    EXPECT_NE(r.out.find("CapBnd=0000000000000000"), std::string::npos) << r.out << r.err;
    if (profile() == "untrusted") return;
    auto kept = run({"/probe", "caps"}, {"--set", "capabilities.keep=[\"CAP_NET_BIND_SERVICE\"]"});
    EXPECT_NE(kept.out.find("CapBnd=0000000000000400"), std::string::npos) << kept.out << kept.err;
}

// 4. io_uring (its requests bypass seccomp) is denied by every shipped profile.
TEST_P(HostileKernel, IoUringIsDenied) {
    auto r = run({"/hostile", "syscalls"});
    EXPECT_NE(r.out.find("io_uring_setup: blocked EPERM"), std::string::npos) << r.out << r.err;
}

// 5. The cgroup namespace is rooted at the sandbox's own cgroup: nothing of the host's layout
// or butter's pid shows.
TEST_P(HostileKernel, CgroupNamespaceShowsOnlyTheRoot) {
    std::vector<std::string> extra;
    if (!nobody()) extra = {"--set", "limits.memory=\"256M\"", "--set", "limits.pids=100"};
    auto r = run({"/bin/cat", "/proc/self/cgroup"}, extra);
    EXPECT_EQ(r.code, 0) << r.err;
    for (const std::string& l : lines_of(r.out))
        EXPECT_TRUE(l.ends_with(":/")) << l << "\n" << r.out;
    EXPECT_EQ(r.out.find("butter"), std::string::npos) << r.out;
}

// 7. LISTEN_FDS is honoured only for sockets that butter was really given.
TEST_P(HostileKernel, ForgedListenFdsNeverHandOverButtersOwnFds) {
    RunOptions o;
    o.forged_listen_fds = 4;
    auto r = run({"/probe", "fds"}, {}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "fds:\n");
}

// 8. Without a pid namespace, the time limit still ends everything the command started.
// `--set` flags for a run without a pid namespace: the profile's mounts without /proc (a pid
// namespace's own).
std::vector<std::string> without_pid_namespace() {
    return {"--set",
            "namespaces.pid=false",
            "--set",
            "filesystem.mounts=[{ type = \"bind\", source = \"/usr\", target = \"/usr\", "
            "read_only = true }, { type = \"bind\", source = \"/bin\", target = \"/bin\", "
            "read_only = true }, { type = \"bind\", source = \"/lib\", target = \"/lib\", "
            "read_only = true }, { type = \"bind\", source = \"/lib64\", target = \"/lib64\", "
            "read_only = true }, { type = \"dev\", target = \"/dev\" }]",
            "--set",
            "process.cwd=\"/\""};
}

TEST_P(HostileKernel, TimeLimitEndsTheWholeTreeWithoutAPidNamespace) {
    std::string tag =
        "butter-kernel-daemon-" + std::to_string(::getpid()) + profile() + (nobody() ? "n" : "r");
    std::vector<std::string> no_pidns = without_pid_namespace();
    std::vector<std::string> limited = no_pidns;
    for (const char* a : {"--timeout", "1s", "--set", "supervise.stop_timeout=\"1s\""})
        limited.push_back(a);
    auto r = run({"/bin/sh", "-c", "/hostile daemon " + tag + "; sleep 60"}, limited);
    if (refused_without_signal_scope(r)) return;
    EXPECT_EQ(r.code, 124) << r.out << r.err;
    for (int i = 0; i < 50 && !pids_matching(tag).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(pids_matching(tag).empty()) << "a descendant outlived the time limit";
    // And when the command ends by itself, so does what it left behind.
    auto done = run({"/hostile", "daemon", tag}, no_pidns);
    EXPECT_EQ(done.code, 0) << done.err;
    for (int i = 0; i < 50 && !pids_matching(tag).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(pids_matching(tag).empty()) << "a daemon outlived the run";
}

// 8b. Without a pid namespace butter is in sight, and without privileges under the sandbox's
// own host uid: still, the sandbox can neither stop nor kill it (its time limit holds), nor
// set its limits.
TEST_P(HostileKernel, WithoutAPidNamespaceButterCannotBeSignalledOrLimited) {
    std::vector<std::string> no_pidns = without_pid_namespace();
    no_pidns.insert(no_pidns.begin(), {"--timeout", "2s"});
    auto start = std::chrono::steady_clock::now();
    auto r = run({"/bin/sh", "-c",
                  "kill -STOP $PPID 2>/dev/null; s=$?; kill -KILL $PPID 2>/dev/null; k=$?; "
                  "prlimit --pid $PPID --cpu=1 2>/dev/null; "
                  "echo $s $k $?; sleep 30"},
                 no_pidns);
    if (refused_without_signal_scope(r)) return;
    EXPECT_EQ(r.code, 124) << r.out << r.err;
    EXPECT_EQ(r.out, "1 1 1\n") << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

// 12. With the host's network, the host's abstract unix sockets stay out of reach.
TEST_P(HostileKernel, HostAbstractSocketsAreUnreachableWithTheHostNetwork) {
    std::string name = "butter-host-abstract-" + std::to_string(::getpid());
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(::listen(s, 4), 0);
    RunOptions c;
    c.as_nobody = nobody();
    c.program = hostile_bin();
    auto ctl = run_butter({"abstract", name}, c);
    EXPECT_NE(ctl.out.find("ESCAPED"), std::string::npos) << "the control could not connect";
    auto r = run({"/hostile", "abstract", name},
                 {"--set", "namespaces.net=false", "--set", "network.mode=\"host\""});
    if (landlock_abi() < 6) {
        // Nothing can scope them on this kernel: the run says so, every time.
        EXPECT_NE(r.err.find("this kernel cannot keep the host's abstract unix sockets"),
                  std::string::npos)
            << r.err;
    } else {
        EXPECT_NE(r.out.find("blocked EPERM"), std::string::npos) << r.out << r.err;
    }
    ::close(s);
}

INSTANTIATE_TEST_SUITE_P(Profiles, HostileKernel,
                         ::testing::Values(Param{"default", false}, Param{"default", true},
                                           Param{"untrusted", false}, Param{"untrusted", true}),
                         [](const auto& p) {
                             return std::string(p.param.profile) +
                                    (p.param.nobody ? "_AsNobody" : "_AsRoot");
                         });

// 9. Limits never vanish: unprivileged and without a writable cgroup, untrusted's pids limit
// still holds (RLIMIT_NPROC in the sandbox's own user namespace).
TEST(HostileLimits, ForkBombUnderUntrustedAsNobodyWithoutACgroup) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    TempDir work;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    RunOptions o;
    o.as_nobody = true;
    o.cwd = work.path();
    o.env = {profile_path_env()};
    std::string report = work / "report.json";
    auto r = run_butter({"run", "-p", "untrusted", "--report", report, "--ro-bind",
                         std::string(hostile_bin()) + ":/hostile", "--", "/hostile", "forkbomb"},
                        o);
    int n = 0;
    char err[32] = {0};
    ASSERT_EQ(std::sscanf(r.out.c_str(), "forkbomb: stopped after %d (%31[A-Z])", &n, err), 2)
        << r.out << r.err;
    EXPECT_LT(n, 64);
    std::string rep = read_file(report);
    EXPECT_NE(rep.find("\"pids\": {\"value\": 64, \"enforced_by\": \"RLIMIT_NPROC"),
              std::string::npos)
        << rep;
}

// 9b. ... and its memory limit: each process's address space (RLIMIT_AS), shared mappings
// included, which RLIMIT_DATA did not count.
TEST(HostileLimits, SharedMemoryUnderUntrustedAsNobodyWithoutACgroup) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    TempDir work;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    RunOptions o;
    o.as_nobody = true;
    o.cwd = work.path();
    o.env = {profile_path_env()};
    for (const char* kind : {"private", "shared"}) {
        auto r = run_butter(
            {"run", "-p", "untrusted", "--set", "limits.memory=\"128M\"", "--ro-bind",
             std::string(hostile_bin()) + ":/hostile", "--", "/hostile", "membomb", kind},
            o);
        unsigned mib = 0;
        ASSERT_EQ(std::sscanf(r.out.c_str(), "membomb: mmap failed after %u MiB", &mib), 1)
            << kind << ": " << r.out << r.err;
        EXPECT_LE(mib, 128u) << kind;
    }
}

}  // namespace
}  // namespace butter::test
