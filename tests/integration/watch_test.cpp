// [watch]: a change to a watched host path logs, signals the command, or restarts it; a burst
// of changes counts once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

using namespace std::chrono_literals;

class Watch : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
        conf_ = dir_ / "app.conf";
        write_file(conf_, "v1\n");
        // Root's file, which a sandbox (never host root) may write only when others may.
        ASSERT_EQ(::chmod(conf_.c_str(), 0666), 0);
    }
    RunOptions opts() const {
        RunOptions o;
        o.cwd = dir_.path();
        return o;
    }
    std::vector<std::string> args(const std::string& on_change, std::vector<std::string> cmd) {
        std::vector<std::string> a{"run",
                                   "--ro-bind",
                                   std::string(probe_bin()) + ":/probe",
                                   "--set",
                                   "watch.paths=[\"" + conf_ + "\"]",
                                   "--set",
                                   "watch.on_change=\"" + on_change + "\"",
                                   "--set",
                                   "watch.debounce=\"150ms\"",
                                   "--"};
        a.insert(a.end(), cmd.begin(), cmd.end());
        return a;
    }
    TempDir dir_;
    std::string conf_;
};

TEST_F(Watch, SignalAction) {
    auto s = start_butter(args("signal:SIGHUP", {"/probe", "wait-signal"}), opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    write_file(conf_, "v2\n");
    EXPECT_EQ(read_line(s.out_fd), "got HUP");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

TEST_F(Watch, ReplacedByRenameCountsAsAChange) {
    auto s = start_butter(args("signal:SIGUSR1", {"/probe", "wait-signal"}), opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    // How editors save: write a new file, rename it over the old one.
    write_file(dir_ / "app.conf.tmp", "v3\n");
    ASSERT_EQ(::rename((dir_ / "app.conf.tmp").c_str(), conf_.c_str()), 0);
    EXPECT_EQ(read_line(s.out_fd), "got USR1");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

TEST_F(Watch, RestartAction) {
    std::string count = dir_ / "count";
    auto s =
        start_butter(args("restart", {"sh", "-c", "echo run >> " + count + "; sleep 30"}), opts());
    for (int i = 0; i < 100 && read_file(count) != "run\n"; ++i)
        std::this_thread::sleep_for(20ms);
    ASSERT_EQ(read_file(count), "run\n");
    write_file(conf_, "v2\n");
    for (int i = 0; i < 200 && read_file(count) != "run\nrun\n"; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(read_file(count), "run\nrun\n");
    ::kill(s.pid, SIGTERM);
    wait_butter(s.pid);
    ::close(s.out_fd);
}

TEST_F(Watch, LogLineNamesThePathOnce) {
    RunOptions o = opts();
    // The command itself makes the burst: five writes in a row, then waits past the debounce.
    auto r = run_butter(
        args("log",
             {"sh", "-c", "for i in 1 2 3 4 5; do echo $i > " + conf_ + "; done; sleep 0.6"}),
        o);
    EXPECT_EQ(r.code, 0) << r.err;
    auto first = r.err.find("butter: watch: " + conf_ + " changed");
    EXPECT_NE(first, std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("butter: watch:", first + 1), std::string::npos)
        << "more than one line: " << r.err;
}

TEST_F(Watch, MissingPathIsAnError) {
    auto r = run_butter({"run", "--set", "watch.paths=[\"/no/such/file\"]", "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_NE(r.err.find("watch.paths: '/no/such/file' does not exist"), std::string::npos)
        << r.err;
}

// fanotify (root): anywhere below a watched directory, and not the sandbox's own writes.
TEST_F(Watch, FanotifyWatchesTheWholeTreeButNotTheSandboxsOwnWrites) {
    BUTTER_REQUIRE_ROOT();
    std::string tree = dir_ / "tree";
    ASSERT_EQ(::mkdir(tree.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(tree.c_str(), 0777), 0);
    auto s = start_butter(
        {"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--set",
         "watch.paths=[\"" + tree + "\"]", "--set", "watch.on_change=\"signal:SIGHUP\"", "--set",
         "watch.debounce=\"100ms\"", "--set", "watch.backend=\"fanotify\"", "--", "sh", "-c",
         "mkdir -p tree/deep && echo own > tree/deep/own && "
         "exec /probe wait-signal"},
        opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    // The sandbox's own writes (three events) triggered nothing within a few debounces.
    EXPECT_EQ(read_line(s.out_fd, 500), "");
    write_file(tree + "/deep/from-host", "x\n");  // two levels down: inotify would not see it
    EXPECT_EQ(read_line(s.out_fd), "got HUP");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

TEST_F(Watch, FanotifyBackendNeedsRootAndValuesAreChecked) {
    RunOptions o = opts();
    o.as_nobody = is_root();
    auto r = run_butter({"run", "--set", "watch.paths=[\"" + conf_ + "\"]", "--set",
                         "watch.backend=\"fanotify\"", "--", "true"},
                        o);
    EXPECT_EQ(r.code, 125);
    EXPECT_NE(r.err.find("watch.backend: fanotify needs root (CAP_SYS_ADMIN); use inotify"),
              std::string::npos)
        << r.err;
    auto bad = run_butter({"run", "--set", "watch.backend=\"dnotify\"", "--", "true"}, opts());
    EXPECT_EQ(bad.code, 125);
    EXPECT_NE(bad.err.find("'dnotify' is not one of: inotify, fanotify"), std::string::npos)
        << bad.err;
}

}  // namespace
}  // namespace butter::test
