// Each shipped profile runs a real program and keeps what its header promises.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

const std::string kProfiles = profiles_src();

class Profiles : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (GetParam()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        } else {
            BUTTER_REQUIRE_ROOT();
        }
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    bool nobody() const { return GetParam(); }
    RunResult run(const std::string& profile, std::vector<std::string> cmd,
                  std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"run", "-p", profile, "--ro-bind",
                                      std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.insert(args.end(), cmd.begin(), cmd.end());
        RunOptions o;
        o.cwd = dir_.path();
        o.as_nobody = nobody();
        o.env = {"BUTTER_PROFILE_PATH=" + kProfiles, "BUTTER_TEST_MARKER=leaked"};
        return run_butter(args, o);
    }
    TempDir dir_;
};

TEST(ShippedProfiles, AllCheckCleanAndDescribeThemselves) {
    DIR* d = ::opendir(kProfiles.c_str());
    ASSERT_NE(d, nullptr);
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (!name.ends_with(".toml")) continue;
        ++n;
        std::string path = kProfiles + "/" + name;
        std::ifstream in(path);
        std::string first;
        std::getline(in, first);
        EXPECT_EQ(first,
                  "# " + name.substr(0, name.size() - 5) + ": " + first.substr(first.find(':') + 2))
            << name << " lacks its '# NAME: who it is for' header";
        RunOptions o;
        o.env = {"BUTTER_PROFILE_PATH=" + kProfiles};
        auto r = run_butter({"check", path}, o);
        EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    }
    ::closedir(d);
    EXPECT_EQ(n, 6);
    RunOptions o;
    o.env = {"BUTTER_PROFILE_PATH=" + kProfiles};
    auto list = run_butter({"profiles"}, o);
    for (const char* p : {"untrusted", "ci", "build", "service", "network-client", "default"})
        EXPECT_NE(list.out.find(p), std::string::npos) << list.out;
}

TEST_P(Profiles, UntrustedIsReadOnlyOfflineAndFiltered) {
    auto py = run("untrusted", {"python3", "-c", "print(sum(range(10)))"});
    EXPECT_EQ(py.out, "45\n") << py.err;
    EXPECT_EQ(run("untrusted", {"/probe", "write", dir_ / "x"}).out,
              "EROFS\n");                                                    // workspace: read-only
    EXPECT_EQ(run("untrusted", {"/probe", "write", "/tmp/x"}).out, "ok\n");  // private /tmp
    EXPECT_EQ(run("untrusted", {"/probe", "exists", "/home"}).out, "no\n");
    EXPECT_EQ(run("untrusted", {"/probe", "exists", "/etc/passwd"}).out, "no\n");
    // No netlink under its filter: count the interfaces in /proc instead (lo only).
    EXPECT_EQ(
        run("untrusted", {"sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"}).out,
        "lo\n");
    // A clean environment, and a private writable home at HOME.
    auto env = run("untrusted", {"sh", "-c", "echo ${BUTTER_TEST_MARKER:-clean} && touch $HOME/f"});
    EXPECT_EQ(env.out, "clean\n") << env.err;
    EXPECT_EQ(env.code, 0) << env.err;
    EXPECT_EQ(run("untrusted", {"/probe", "try-syscall", "mount"}).out, "ENOSYS\n");  // not allowed
    EXPECT_EQ(run("untrusted", {"/probe", "try-syscall", "io_uring_setup"}).out, "EPERM\n");
    EXPECT_EQ(run("untrusted", {"/probe", "try-syscall", "unshare-user"}).out, "EPERM\n");
    EXPECT_EQ(run("untrusted", {"/probe", "try-syscall", "clone-newuser"}).out, "EPERM\n");
    EXPECT_EQ(
        run("untrusted", {"/probe", "try-syscall", "socket:" + std::to_string(AF_NETLINK)}).out,
        "EAFNOSUPPORT\n");
    EXPECT_EQ(run("untrusted", {"/probe", "try-syscall", "tiocsti-junk"}).out, "EPERM\n");
    if (!nobody()) {
        auto hog = run("untrusted", {"/probe", "alloc", "1024"});
        EXPECT_EQ(hog.code, 137) << hog.err;
    }
}

// A job's tools write their config and caches under HOME: git's global config, here.
TEST_P(Profiles, CiGivesGitAWritableHome) {
    if (::access("/usr/bin/git", X_OK) != 0) GTEST_SKIP() << "no git on this host";
    auto git = run("ci", {"sh", "-c",
                          "git config --global user.name job && git config --global user.name && "
                          "git init -q repo && cd repo && git -c user.email=j@x commit -q "
                          "--allow-empty -m one && git log --format=%an"});
    EXPECT_EQ(git.out, "job\njob\n") << git.err;
    EXPECT_EQ(git.code, 0) << git.err;
}

// A job run as root is a container's root: chown, setgroups/initgroups and a server on a low
// localhost port work, on what the job owns; a job run as a user has no capabilities.
TEST_P(Profiles, CiRootHasAContainersCapabilities) {
    auto caps = run("ci", {"/probe", "caps"});
    if (nobody()) {
        EXPECT_EQ(caps.out.substr(0, 32), "CapEff=0000000000000000 CapPrm=0") << caps.err;
        return;
    }
    EXPECT_EQ(caps.out.substr(0, 23), "CapEff=00000000000425fb") << caps.err;
    auto r = run("ci", {"sh", "-c",
                        "touch w && chown 1000:1000 w && touch /tmp/t && chown 1000:1000 /tmp/t && "
                        "stat -c %u /tmp/t && setpriv --groups=5,6 id -G && "
                        "cat /etc/shadow >/dev/null 2>&1 || echo shadow-unreadable"});
    EXPECT_EQ(r.out, "1000\n0 5 6\nshadow-unreadable\n") << r.err;
    if (::access("/usr/bin/python3", X_OK) == 0) {
        auto py = run("ci", {"python3", "-c",
                             "import os, socket\n"
                             "s = socket.socket(); s.bind(('127.0.0.1', 80)); s.listen()\n"
                             "c = socket.create_connection(('127.0.0.1', 80)); print('port 80')\n"
                             "os.initgroups('root', 0); print(os.getgroups())"});
        EXPECT_EQ(py.out, "port 80\n[0]\n") << py.err;
    }
    // Another profile keeps none as root.
    EXPECT_EQ(run("default", {"/probe", "caps"}).out.substr(0, 23), "CapEff=0000000000000000");
    // A user's workspace (idmapped): chown to other ids works there too (tar, cp -a), landing as
    // the sandbox's own host ids; the owner's own files stay the owner's.
    TempDir ws;
    ASSERT_EQ(::chown(ws.path().c_str(), 1000, 1000), 0);
    RunOptions o;
    o.cwd = ws.path();
    o.env = {"BUTTER_PROFILE_PATH=" + kProfiles};
    auto chown = run_butter({"run", "-p", "ci", "--", "sh", "-c",
                             "touch mine other && chown 1000:1000 other && stat -c '%u %g' other"},
                            o);
    EXPECT_EQ(chown.out, "1000 1000\n") << chown.err;
    struct stat mine {
    }, other{};
    ASSERT_EQ(::stat((ws / "mine").c_str(), &mine), 0);
    ASSERT_EQ(::stat((ws / "other").c_str(), &other), 0);
    EXPECT_EQ(mine.st_uid, 1000u) << "the workspace owner's";
    EXPECT_NE(other.st_uid, 0u) << "never host root";
    EXPECT_NE(other.st_uid, 1000u) << "inside 1000 is not the workspace owner";
}

TEST_P(Profiles, CiWritesTheWorkspaceAndTheReport) {
    auto r = run(
        "ci", {"sh", "-c", "echo built > artifact.txt; touch /etc/x 2>/dev/null || echo etc-ro"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "etc-ro\n");
    EXPECT_EQ(read_file(dir_ / "artifact.txt"), "built\n");
    std::string report = read_file(dir_ / "butter-report.json");
    EXPECT_NE(report.find("\"status\": 0"), std::string::npos) << report;
    EXPECT_NE(report.find(dir_ / "artifact.txt"), std::string::npos) << "file activity: " << report;
    EXPECT_EQ(run("ci", {"/probe", "ifaces"}).out, "lo:up\n");
}

TEST_P(Profiles, BuildCompilesWithCcMakeAndCmake) {
    write_file(dir_ / "hello.c",
               "#include <stdio.h>\nint main(void){puts(\"built in butter\");return 0;}\n");
    write_file(dir_ / "Makefile", "hello: hello.c\n\tcc -O2 -o hello hello.c\n");
    auto make = run("build", {"sh", "-c", "make -s && ./hello"});
    EXPECT_EQ(make.out, "built in butter\n") << make.err;
    write_file(dir_ / "CMakeLists.txt",
               "cmake_minimum_required(VERSION 3.13)\nproject(h C)\nadd_executable(h2 hello.c)\n");
    auto cmake =
        run("build",
            {"sh", "-c", "cmake -S . -B b >/dev/null && cmake --build b >/dev/null && ./b/h2"});
    EXPECT_EQ(cmake.out, "built in butter\n") << cmake.err;
    EXPECT_EQ(run("build", {"/probe", "ifaces"}).out, "lo:up\n");
}

TEST_P(Profiles, ServiceHasLoopbackStateDirAndRestarts) {
    EXPECT_EQ(run("service", {"/probe", "ifaces"}).out, "lo:up\n");
    std::string count = dir_ / "runs";
    auto r =
        run("service",
            {"sh", "-c", "echo run >> " + count + "; [ $(wc -l < " + count + ") -ge 2 ] || exit 1"},
            {"--set", "supervise.restart_delay=\"50ms\""});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_file(count), "run\nrun\n");  // crashed once, restarted, then succeeded
}

TEST_P(Profiles, NetworkClientUsesTheHostNetwork) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(s, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    auto r = run("network-client", {"/probe", "connect", std::to_string(ntohs(a.sin_port))});
    EXPECT_EQ(r.out, "connected\n") << r.err;
    ::close(s);
    EXPECT_EQ(run("network-client", {"/probe", "exists", "/home"}).out, "no\n");
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, Profiles, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

}  // namespace
}  // namespace butter::test
