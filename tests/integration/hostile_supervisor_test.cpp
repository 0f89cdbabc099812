// The supervisor and the host side under attack (issue 31): what a sandbox controls (its
// output's volume, the readers it stalls, the names it writes, its denied calls) must never
// stop butter's time limit or stop request, its report, or reach the user's terminal raw.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Waits for a started butter at most `limit`; -1 (after SIGKILL) if it did not end by then.
int wait_at_most(pid_t pid, std::chrono::milliseconds limit) {
    auto until = Clock::now() + limit;
    while (Clock::now() < until) {
        int st = 0;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        std::this_thread::sleep_for(20ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
}

// Whether `s` is valid UTF-8 with no raw control character but \n.
bool clean_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
            ++i;
            continue;
        }
        std::size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

class HostileSupervisor : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
    }
    RunOptions opts() const {
        RunOptions o;
        o.cwd = work_.path();
        return o;
    }
    std::vector<std::string> with_tools(std::vector<std::string> rest) {
        std::vector<std::string> a{"run", "--ro-bind", std::string(hostile_bin()) + ":/hostile",
                                   "--ro-bind", std::string(probe_bin()) + ":/probe"};
        a.insert(a.end(), rest.begin(), rest.end());
        return a;
    }
    TempDir work_;
};

// 4. init shares butter's memory: its command line must show nothing of the host's.
TEST_F(HostileSupervisor, ProcOneShowsNothingOfButtersCommandLine) {
    auto r = run_butter(with_tools({"--set", "filesystem.hostname=\"secret-host-name\"", "--",
                                    "/bin/cat", "/proc/1/cmdline"}),
                        opts());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find("secret-host-name"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find(hostile_bin()), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("--ro-bind"), std::string::npos) << r.out;
}

// 6. A terminal that stops reading (the command's pty proxied to it) stops neither the time
// limit nor SIGTERM.
TEST_F(HostileSupervisor, StalledTerminalNeverStopsTheTimeLimitOrSigterm) {
    int master = -1, slave = -1;
    ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    RunOptions o = opts();
    o.stdout_fd = slave;  // its master is never read
    auto start = Clock::now();
    auto s = start_butter(with_tools({"--timeout", "2s", "--set", "supervise.stop_timeout=\"1s\"",
                                      "--set", "process.session=\"pty\"", "--", "/usr/bin/yes"}),
                          o);
    EXPECT_EQ(wait_at_most(s.pid, 15s), 124) << "the time limit did not stop the run";
    EXPECT_LT(Clock::now() - start, 10s);
    ::close(s.out_fd);
    auto t = start_butter(with_tools({"--set", "supervise.stop_timeout=\"1s\"", "--set",
                                      "process.session=\"pty\"", "--", "/usr/bin/yes"}),
                          o);
    std::this_thread::sleep_for(1s);
    ::kill(t.pid, SIGTERM);
    EXPECT_NE(wait_at_most(t.pid, 10s), -1) << "SIGTERM did not stop the run";
    ::close(t.out_fd);
    ::close(slave);
    ::close(master);
}

// 6. The same with tee output to a stalled terminal, and --events to a stalled pipe while the
// command makes denied calls as fast as it can.
TEST_F(HostileSupervisor, StalledTeeAndEventsReadersNeverStopTheTimeLimit) {
    int master = -1, slave = -1;
    ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    RunOptions o = opts();
    o.stdout_fd = slave;
    auto s = start_butter(
        with_tools({"--timeout", "2s", "--set", "supervise.stop_timeout=\"1s\"", "--set",
                    "output.stdout=\"tee:" + work_ / "out.log" + "\"", "--", "/usr/bin/yes"}),
        o);
    EXPECT_EQ(wait_at_most(s.pid, 15s), 124) << "tee to a stalled terminal held butter";
    ::close(s.out_fd);
    ::close(slave);
    ::close(master);

    int events[2];
    ASSERT_EQ(::pipe2(events, O_CLOEXEC), 0);  // never read
    RunOptions e = opts();
    e.fd5 = events[1];
    std::string rep = work_ / "r.json";
    auto d =
        start_butter(with_tools({"--timeout", "2s", "--events", "5", "--report", rep, "--set",
                                 "seccomp.report=true", "--", "/hostile", "deny-spin", "2", "10"}),
                     e);
    EXPECT_EQ(wait_at_most(d.pid, 15s), 124) << "--events to a stalled pipe held butter";
    EXPECT_NE(read_file(rep).find("\"reason\": \"time_limit\""), std::string::npos);
    ::close(d.out_fd);
    ::close(events[0]);
    ::close(events[1]);
}

// 7. A reader of butter's output that goes away (`| head -c 10`) is no reason to die: the
// report is written, the status is the run's.
TEST_F(HostileSupervisor, ClosedPipeNeverKillsButter) {
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    RunOptions o = opts();
    o.stdout_fd = out[1];
    std::string rep = work_ / "r.json";
    auto s = start_butter(
        with_tools({"--timeout", "1s", "--report", rep, "--set",
                    "output.stdout=\"tee:" + work_ / "out.log" + "\"", "--", "/usr/bin/yes"}),
        o);
    ::close(out[1]);
    char ten[10];
    ASSERT_EQ(::read(out[0], ten, sizeof ten), 10);
    ::close(out[0]);  // as head -c 10 does
    EXPECT_EQ(wait_at_most(s.pid, 15s), 124);
    std::string j = read_file(rep);
    EXPECT_NE(j.find("\"reason\": \"time_limit\""), std::string::npos);
    // What the command wrote, which the file holds: not what the gone reader took.
    struct stat st {};
    ASSERT_EQ(::stat((work_ / "out.log").c_str(), &st), 0);
    EXPECT_GT(st.st_size, 1 << 20);
    EXPECT_NE(j.find("\"stdout_bytes\": " + std::to_string(st.st_size)), std::string::npos) << j;
    ::close(s.out_fd);
}

// 8. A cgroup left by a butter that was killed (its pid gone) is removed by the next run.
TEST_F(HostileSupervisor, StaleCgroupsAreRemovedByTheNextRun) {
    BUTTER_REQUIRE_ROOT();
    // This process's memory cgroup (v1 here, else v2): where butter makes its own.
    std::ifstream in("/proc/self/cgroup");
    std::string line, own, mount;
    while (std::getline(in, line)) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        std::string ctrls = line.substr(a + 1, b - a - 1);
        if (ctrls == "memory" || ctrls.find("memory,") == 0) {
            own = line.substr(b + 1);
            mount = "/sys/fs/cgroup/memory";
        }
    }
    if (own.empty()) GTEST_SKIP() << "no v1 memory hierarchy here";
    pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);
    std::string base = mount + (own == "/" ? "" : own) + "/butter-" + std::to_string(gone);
    // The first sandbox of that process, and its third; a run with another limit than the
    // one they were made for removes them all the same.
    for (const std::string& stale : {base, base + "-2"})
        ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0) << stale;
    auto r = run_butter(with_tools({"--set", "limits.pids=64", "--", "/bin/true"}), opts());
    EXPECT_EQ(r.code, 0) << r.err;
    for (const std::string& stale : {base, base + "-2"}) {
        struct stat st {};
        bool left = ::stat(stale.c_str(), &st) == 0;
        if (left) ::rmdir(stale.c_str());
        EXPECT_FALSE(left) << stale << " survived the next run";
    }
}

// 9. Names the sandbox chooses reach the user's terminal escaped, and the report is valid
// UTF-8 JSON whatever bytes they hold.
TEST_F(HostileSupervisor, SandboxNamesNeverDriveTheTerminalOrBreakTheReport) {
    TempDir watched;
    ASSERT_EQ(::chmod(watched.path().c_str(), 0777), 0);
    std::string rep = work_ / "r.json";
    RunOptions o = opts();
    auto r = run_butter(
        with_tools({"--report", rep, "--set", "report.file_activity=true", "--set",
                    "watch.paths=[\"" + watched.path() + "\"]", "--set", "watch.debounce=\"50ms\"",
                    "--bind", watched.path(), "--", "/bin/sh", "-c",
                    "printf x > \"$(printf '" + watched.path() +
                        "/\\033[2J\\033[Hbutter: all good\\007\\r\\177\\377\\376')\"; sleep 0.3"}),
        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("watch: "), std::string::npos) << "no watch line: " << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "raw ESC on the terminal";
    EXPECT_EQ(r.err.find('\x07'), std::string::npos);
    EXPECT_EQ(r.err.find('\r'), std::string::npos);
    EXPECT_TRUE(clean_utf8(r.err)) << r.err;
    std::string j = read_file(rep);
    EXPECT_TRUE(clean_utf8(j)) << j;
    EXPECT_NE(j.find("butter: all good"), std::string::npos) << "the name is not listed";
}

// 11. Denied calls cost the supervisor (outside the sandbox's cgroup) a bounded CPU share.
TEST_F(HostileSupervisor, DeniedCallsCostTheSupervisorBoundedCpu) {
    BUTTER_REQUIRE_ROOT();
    auto s = start_butter(with_tools({"--timeout", "3s", "--set", "seccomp.report=true", "--",
                                      "/hostile", "deny-spin", "4", "10"}),
                          opts());
    std::this_thread::sleep_for(2500ms);
    std::ifstream in("/proc/" + std::to_string(s.pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    long utime = 0, stime = 0;
    for (int i = 3; fields >> f && i <= 15; ++i) {
        if (i == 14) utime = std::stol(f);
        if (i == 15) stime = std::stol(f);
    }
    double cpu = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    EXPECT_LT(cpu, 0.5) << "butter spent " << cpu << " CPU-seconds answering denials";
    EXPECT_EQ(wait_at_most(s.pid, 15s), 124);
    ::close(s.out_fd);
}

// 3. The file activity never follows what the sandbox swaps in: a directory renamed away and
// replaced by a symlink to a host directory, with a new subdirectory made just before (whose
// walk would go through the link). Root (fanotify) and nobody (inotify).
class HostileActivity : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();
        if (GetParam()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "no user namespaces for nobody");
        }
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
        ASSERT_EQ(::chmod(secret_.path().c_str(), 0755), 0);
        ASSERT_EQ(::chmod(reports_.path().c_str(), 0777), 0);  // nobody writes its report
    }
    RunResult ci(const std::string& script, const std::string& report) {
        RunOptions o;
        o.as_nobody = GetParam();
        o.cwd = work_.path();
        o.env = {profile_path_env()};
        return run_butter({"run", "-p", "ci", "--report", report, "--", "/bin/sh", "-c", script},
                          o);
    }
    TempDir work_, secret_, reports_;
};

TEST_P(HostileActivity, NeverFollowsASymlinkSwappedIntoTheWorkspace) {
    // A host directory outside the workspace with names that must not show.
    ASSERT_EQ(::mkdir((secret_ / "inner").c_str(), 0755), 0);
    write_file(secret_ / "inner/id_rsa-SECRET-NAME", "x");
    ASSERT_EQ(::mkdir((work_ / "X").c_str(), 0777), 0);
    std::string rep = reports_ / "r.json";
    for (int i = 0; i < 5; ++i) {
        auto r = ci("mkdir X/inner; mv X X2; ln -s " + secret_.path() +
                        " X; touch X2/mine; "
                        "sleep 0.1; rm -rf X2 X; mkdir X",
                    rep);
        EXPECT_EQ(r.code, 0) << r.err;
        std::string j = read_file(rep);
        std::string files = j.substr(j.find("\"files\""));
        EXPECT_EQ(files.find("SECRET-NAME"), std::string::npos) << j;
        EXPECT_EQ(files.find(secret_.path()), std::string::npos) << j;
    }
}

// 5. A rename storm (a directory of 3,000 files renamed 100 times) costs the supervisor its
// bounded bookkeeping, not a listing of every file at every rename.
TEST_P(HostileActivity, RenameStormKeepsTheSupervisorSmall) {
    ASSERT_EQ(::mkdir((work_ / "d0").c_str(), 0777), 0);
    for (int i = 0; i < 3000; ++i)
        write_file(work_ / ("d0/f" + std::to_string(i)), "");
    std::string rep = reports_ / "r.json";
    RunOptions o;
    o.as_nobody = GetParam();
    o.cwd = work_.path();
    o.env = {profile_path_env()};
    auto s = start_butter({"run", "-p", "ci", "--report", rep, "--", "/bin/sh", "-c",
                           "i=0; while [ $i -lt 100 ]; do mv d$i d$((i+1)); i=$((i+1)); done"},
                          o);
    int st = 0;
    struct rusage ru {};
    ASSERT_EQ(::wait4(s.pid, &st, 0, &ru), s.pid);
    ::close(s.out_fd);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // butter's own peak (the sandbox's processes here are a shell and mv: a few MB).
#if !defined(__SANITIZE_ADDRESS__)  // (ASan keeps 256 MB of freed memory in quarantine)
    EXPECT_LT(ru.ru_maxrss, 64 * 1024) << "peak RSS " << ru.ru_maxrss << " kB";
#endif
    std::string j = read_file(rep);
    EXPECT_LT(j.size(), 4096u) << j.substr(0, 2000);
    EXPECT_NE(j.find("\"created\": [\"" + work_.path() + "/d100/\"]"), std::string::npos) << j;
    EXPECT_NE(j.find("\"deleted\": [\"" + work_.path() + "/d0/\"]"), std::string::npos) << j;
}

// 3b. Long paths: 60 levels of 250-byte names, and 1,500 files of 250-byte names there (23 MB
// of paths): the list stops at its byte bound and says so; butter's memory and the report stay
// small.
TEST_P(HostileActivity, LongPathsAreBoundedByBytesNotOnlyByCount) {
    std::string rep = reports_ / "r.json";
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no python3";
    std::string name(250, 'n');
    RunOptions o;
    o.as_nobody = GetParam();
    o.cwd = work_.path();
    o.env = {profile_path_env()};
    auto s = start_butter({"run", "-p", "ci", "--report", rep, "--", "/usr/bin/python3", "-c",
                           "import os\n"
                           "n = '" +
                               name +
                               "'\n"
                               "for i in range(60):\n    os.mkdir(n); os.chdir(n)\n"
                               "for i in range(1500):\n    open(str(i) + n[:240], 'w').close()\n"},
                          o);
    int st = 0;
    struct rusage ru {};
    ASSERT_EQ(::wait4(s.pid, &st, 0, &ru), s.pid);
    ::close(s.out_fd);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
#if !defined(__SANITIZE_ADDRESS__)  // (ASan keeps 256 MB of freed memory in quarantine)
    EXPECT_LT(ru.ru_maxrss, 160 * 1024) << "peak RSS " << ru.ru_maxrss << " kB";
#endif
    std::string j = read_file(rep);
    EXPECT_LT(j.size(), 20u << 20);
    EXPECT_NE(j.find("\"partial\": true"), std::string::npos) << j.substr(0, 300);
}

// 10. Deeper than the bound (or than PATH_MAX): said, not hidden.
TEST_P(HostileActivity, DeepDirectoriesMakeTheListPartialNotSilent) {
    std::string rep = reports_ / "r.json";
    // 80 levels: deeper than the bound (64).
    auto r =
        ci("i=0; while [ $i -lt 80 ]; do d=dddddddddddddddddddddddddddddddddddddddd; "
           "mkdir $d && cd $d || exit 3; i=$((i+1)); done; sleep 0.2; echo x > deep-file",
           rep);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string j = read_file(rep);
    bool listed = j.find("deep-file") != std::string::npos;
    EXPECT_TRUE(listed || j.find("\"partial\": true") != std::string::npos) << j.substr(0, 500);
    if (!listed) {
        EXPECT_NE(r.err.find("the list is partial"), std::string::npos) << r.err;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, HostileActivity, ::testing::Values(false, true),
                         [](const auto& p) {
                             return p.param ? "AsNobodyInotify" : "AsRootFanotify";
                         });

}  // namespace
}  // namespace butter::test
