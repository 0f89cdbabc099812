// Supervision end to end: graceful stop, restarts, outputs, the JSON report, log levels.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

class Supervise : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    std::vector<std::string> probe_args(std::vector<std::string> extra,
                                        std::vector<std::string> cmd) {
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.push_back("/probe");
        args.insert(args.end(), cmd.begin(), cmd.end());
        return args;
    }
    RunOptions opts() const {
        RunOptions o;
        o.cwd = dir_.path();
        return o;
    }
    void pty_session(bool automatic);
    TempDir dir_;
};

// The value of "key" in butter's flat JSON report, as text.
std::string json_field(const std::string& json, const std::string& key) {
    auto at = json.find("\"" + key + "\": ");
    if (at == std::string::npos) return "<missing>";
    at += key.size() + 4;
    auto end = json.find_first_of(",\n", at);
    if (json[at] == '{' || json[at] == '[') {
        // The matching bracket (the report's strings hold no brackets).
        int depth = 0;
        for (end = at; end < json.size(); ++end) {
            if (json[end] == '{' || json[end] == '[') ++depth;
            if ((json[end] == '}' || json[end] == ']') && --depth == 0) break;
        }
        ++end;
    }
    return json.substr(at, end - at);
}

// A word-wise FNV-style hash over a file (its size must be a multiple of 8), 0 if unreadable.
std::uint64_t file_hash(const std::string& path, std::uint64_t* size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    std::uint64_t h = 1469598103934665603ULL;
    *size = 0;
    static std::uint64_t buf[1 << 17];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        // Whole words only: the last partial word of a read is carried into the next.
        std::size_t words = static_cast<std::size_t>(n) / 8;
        for (std::size_t i = 0; i < words; ++i)
            h = (h ^ buf[i]) * 1099511628211ULL;
        *size += words * 8;
        if (n % 8 != 0) ::lseek(fd, -(n % 8), SEEK_CUR);
    }
    ::close(fd);
    return h;
}

// The bytes `probe emit N` writes (N a multiple of 8), hashed the same way.
std::uint64_t expected_hash(std::uint64_t n) {
    std::uint64_t h = 1469598103934665603ULL, x = 88172645463325252ULL;
    for (std::uint64_t done = 0; done < n; done += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h = (h ^ x) * 1099511628211ULL;
    }
    return h;
}

TEST_F(Supervise, SigtermStopsGracefullyWithTheStopSignal) {
    auto s = start_butter(
        probe_args({"--set", "supervise.stop_signal=\"SIGUSR1\"", "--report", dir_ / "r.json"},
                   {"wait-signal"}),
        opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    ::kill(s.pid, SIGTERM);
    EXPECT_EQ(read_line(s.out_fd), "got USR1");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
    std::string r = read_file(dir_ / "r.json");
    EXPECT_EQ(json_field(r, "reason"), "\"stop_request\"");
    EXPECT_EQ(json_field(r, "exit_code"), "0");
}

TEST_F(Supervise, StopTimeoutKillsACommandIgnoringTheSignal) {
    auto start = std::chrono::steady_clock::now();
    auto s = start_butter(
        probe_args({"--set", "supervise.stop_timeout=\"200ms\""}, {"ignore-term", "6161"}), opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    ::kill(s.pid, SIGTERM);
    EXPECT_EQ(wait_butter(s.pid), 128 + SIGKILL);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_TRUE(pids_matching("ignore-term 6161").empty());
    ::close(s.out_fd);
}

// Without a user namespace, a command of another user (process.user) still gets the stop
// signal: init, which forwards it, takes the command's ids (a capless root's kill(2) may not
// signal another user's process: the stop waited out its timeout and ended in SIGKILL).
TEST_F(Supervise, StopSignalReachesACommandOfAnotherUserWithoutAUserNamespace) {
    BUTTER_REQUIRE_ROOT();  // no user namespace
    auto start = std::chrono::steady_clock::now();
    auto s = start_butter(
        probe_args({"--set", "namespaces.user=false", "--set", "process.user=\"nobody\"", "--set",
                    "process.group=\"nogroup\"", "--set", "supervise.stop_timeout=\"30s\""},
                   {"wait-signal"}),
        opts());
    ASSERT_EQ(read_line(s.out_fd), "ready");
    ::kill(s.pid, SIGTERM);
    EXPECT_EQ(read_line(s.out_fd), "got TERM");
    EXPECT_EQ(wait_butter(s.pid), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    ::close(s.out_fd);
}

TEST_F(Supervise, RestartOnFailureStopsAtTheBurstLimit) {
    std::string count = dir_ / "count";
    auto r = run_butter(
        {"run", "--report", dir_ / "r.json", "--set", "supervise.restart=\"on-failure\"", "--set",
         "supervise.restart_delay=\"50ms\"", "--set", "supervise.restart_burst=3", "--", "sh", "-c",
         "echo run >> " + count + "; exit 3"},
        opts());
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(read_file(count), "run\nrun\nrun\nrun\n");  // the first run and 3 restarts
    EXPECT_NE(r.err.find("3 restarts within 10000 ms: giving up"), std::string::npos) << r.err;
    std::string rep = read_file(dir_ / "r.json");
    EXPECT_EQ(json_field(rep, "restarts"), "3");
    EXPECT_EQ(json_field(rep, "reason"), "\"restart_limit\"");
}

TEST_F(Supervise, NoRestartAfterSuccessOnFailurePolicy) {
    std::string count = dir_ / "count";
    auto r = run_butter({"run", "--set", "supervise.restart=\"on-failure\"", "--", "sh", "-c",
                         "echo run >> " + count},
                        opts());
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(read_file(count), "run\n");
}

TEST_F(Supervise, RestartAlwaysUntilStopped) {
    std::string count = dir_ / "count";
    auto s =
        start_butter({"run", "--set", "supervise.restart=\"always\"", "--set",
                      "supervise.restart_delay=\"20ms\"", "--set", "supervise.restart_burst=1000",
                      "--", "sh", "-c", "echo run >> " + count + "; sleep 0.05"},
                     opts());
    // Three runs (however loaded the machine), then the stop.
    auto runs_so_far = [&] {
        struct stat st {};
        if (::stat(count.c_str(), &st) != 0) return 0L;
        std::string t = read_file(count);
        return static_cast<long>(std::count(t.begin(), t.end(), '\n'));
    };
    for (int i = 0; i < 1000 && runs_so_far() < 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::kill(s.pid, SIGTERM);
    // The status of the run the stop met: killed by the stop signal, or 0 between runs.
    int code = wait_butter(s.pid);
    EXPECT_TRUE(code == 128 + SIGTERM || code == 0) << code;
    ::close(s.out_fd);
    std::string runs = read_file(count);
    EXPECT_GE(std::count(runs.begin(), runs.end(), '\n'), 3);
}

TEST_F(Supervise, TeeMovesAGibibyteWithoutLosingAByte) {
    constexpr std::uint64_t kBytes = 1ULL << 30;
    RunOptions o = opts();
    o.stdout_file = dir_ / "stdout.bin";
    auto r = run_butter(probe_args({"--set", "output.stdout=\"tee:" + (dir_ / "tee.bin") + "\"",
                                    "--report", dir_ / "r.json"},
                                   {"emit", std::to_string(kBytes)}),
                        o);
    ASSERT_EQ(r.code, 0) << r.err;
    std::uint64_t want = expected_hash(kBytes), size = 0;
    EXPECT_EQ(file_hash(dir_ / "tee.bin", &size), want);
    EXPECT_EQ(size, kBytes);
    EXPECT_EQ(file_hash(dir_ / "stdout.bin", &size), want);
    EXPECT_EQ(size, kBytes);
    EXPECT_NE(read_file(dir_ / "r.json").find("\"stdout_bytes\": 1073741824"), std::string::npos);
}

TEST_F(Supervise, FileAndNullOutputs) {
    auto r =
        run_butter({"run", "--set", "output.stdout=\"file:" + (dir_ / "out.txt") + "\"", "--set",
                    "output.stderr=\"null\"", "--", "sh", "-c", "echo to-file; echo hidden >&2"},
                   opts());
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(read_file(dir_ / "out.txt"), "to-file\n");
}

TEST_F(Supervise, FullDiskIsReportedNotAHang) {
    BUTTER_REQUIRE_ROOT();
    std::string d = dir_.path(), small = dir_ / "small";
    ASSERT_EQ(::mkdir(small.c_str(), 0755), 0);
    auto r = run_in_child([&] {
        std::string e = private_mount_namespace();
        CHILD_ASSERT(e.empty(), e);
        CHILD_ASSERT(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k") == 0, "mount");
        RunOptions o;
        o.cwd = d;
        o.stdout_file = d + "/stdout.bin";
        auto res = run_butter({"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--set",
                               "output.stdout=\"tee:" + small + "/out.bin\"", "--report",
                               d + "/r.json", "--", "/probe", "emit", "4194304"},
                              o);
        CHILD_ASSERT(res.code == 0, "exit " << res.code << ": " << res.err);
        CHILD_ASSERT(res.err.find("No space left on device") != std::string::npos, res.err);
        struct stat st {};
        CHILD_ASSERT(::stat((d + "/stdout.bin").c_str(), &st) == 0 && st.st_size == 4194304,
                     "stdout got " << st.st_size);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
    EXPECT_NE(json_field(read_file(dir_ / "r.json"), "output").find("No space left on device"),
              std::string::npos);
}

TEST_F(Supervise, ReportFieldsMatchKnownRuns) {
    std::string rp = dir_ / "r.json";
    auto r = run_butter(probe_args({"--report", rp}, {"spin", "300"}), opts());
    ASSERT_EQ(r.code, 0) << r.err;
    std::string j = read_file(rp);
    EXPECT_EQ(json_field(j, "status"), "0");
    EXPECT_EQ(json_field(j, "reason"), "\"exited\"");
    EXPECT_GE(std::stod(json_field(j, "user_cpu_seconds")), 0.25);
    EXPECT_GE(std::stod(json_field(j, "wall_seconds")), 0.25);
    EXPECT_EQ(json_field(j, "restarts"), "0");

    auto mem = run_butter(probe_args({"--report", rp}, {"alloc", "64"}), opts());
    ASSERT_EQ(mem.code, 0);
    EXPECT_GE(std::stoull(json_field(read_file(rp), "max_rss_bytes")), 64ULL << 20);

    auto sig = run_butter({"run", "--report", rp, "--", "sh", "-c", "kill -USR2 $$"}, opts());
    EXPECT_EQ(sig.code, 128 + SIGUSR2);
    std::string js = read_file(rp);
    EXPECT_EQ(json_field(js, "signal"), "\"SIGUSR2\"");
    EXPECT_EQ(json_field(js, "exit_code"), "null");

    auto timeout =
        run_butter(probe_args({"--report", rp, "--timeout", "200ms"}, {"sleep", "10"}), opts());
    EXPECT_EQ(timeout.code, 124);
    std::string jt = read_file(rp);
    EXPECT_EQ(json_field(jt, "reason"), "\"time_limit\"");
    EXPECT_EQ(json_field(jt, "limits_hit"), "[\"time\"]");

    auto denied =
        run_butter({"run", "--report", rp, "--set", "seccomp.report=true", "--", "sh", "-c",
                    "mount -t tmpfs x /mnt 2>/dev/null; mount -t tmpfs x /mnt 2>/dev/null; true"},
                   opts());
    EXPECT_EQ(json_field(read_file(rp), "denied_syscalls"), "{\"mount\": 2}");

    auto missing = run_butter({"run", "--report", rp, "--", "no-such-cmd"}, opts());
    EXPECT_EQ(missing.code, 127);
    std::string jm = read_file(rp);
    EXPECT_EQ(json_field(jm, "reason"), "\"exec_failed\"");
    EXPECT_EQ(json_field(jm, "error"), "\"no-such-cmd: command not found\"");
}

TEST_F(Supervise, FileActivityInWritableBinds) {
    std::string rp = dir_ / "r.json";
    std::string files;
    // fanotify watches the whole file system: another test's flood of events in /tmp can
    // overflow the queue, and then the report says "partial" (rightly). Tried again then.
    for (int attempt = 0; attempt < 3; ++attempt) {
        write_file(dir_ / "existing", "old\n");
        write_file(dir_ / "doomed", "x\n");
        ASSERT_EQ(::chmod((dir_ / "existing").c_str(), 0666), 0);
        ASSERT_EQ(::chmod((dir_ / "doomed").c_str(), 0666), 0);
        std::filesystem::remove_all(dir_ / "deep");
        std::filesystem::remove(dir_ / "created.txt");
        auto r = run_butter(
            {"run", "--report", rp, "--set", "report.file_activity=true", "--", "sh", "-c",
             "echo new > created.txt; echo more >> existing; rm -f doomed; "
             "mkdir -p deep/er && echo x > deep/er/file; echo t > temp; rm temp; "
             "echo private > /tmp/not-reported"},
            opts());
        ASSERT_EQ(r.code, 0) << r.err;
        files = json_field(read_file(rp), "files");
        if (files.find("\"partial\": true") == std::string::npos) break;
    }
    std::string d = dir_.path();
    // The report itself is written by butter after the run: not the sandbox's activity.
    EXPECT_EQ(files, "{\"created\": [\"" + d + "/created.txt\", \"" + d +
                         "/deep/er/file\"], \"modified\": [\"" + d +
                         "/existing\"], \"deleted\": [\"" + d + "/doomed\"], \"backend\": " +
                         (is_root() ? "\"fanotify\"" : "\"inotify\"") + ", \"partial\": false}")
        << files;
}

// A host process writing into the bound directory while the sandbox runs: fanotify (root)
// tells its writes from the sandbox's; inotify (unprivileged) sees every writer. Also a
// directory removed with its files before the events are read.
class FileActivityWriters : public Supervise, public ::testing::WithParamInterface<bool> {};

TEST_P(FileActivityWriters, OnlyTheSandboxsWritesWithFanotify) {
    bool nobody = GetParam();
    if (nobody) BUTTER_REQUIRE_ROOT();  // to run butter as nobody
    if (!nobody && !is_root()) GTEST_SKIP() << "fanotify needs root";
    std::string files;
    // fanotify watches the whole file system: another test's flood of events in /tmp can
    // overflow the queue, and then the report says "partial" (rightly). Tried again then.
    for (int attempt = 0; attempt < 3; ++attempt) {
        for (const char* f : {"a", "b", "go", "host.txt"})
            std::filesystem::remove(dir_ / f);
        ASSERT_EQ(::mkdir((dir_ / "old").c_str(), 0777), 0);
        ASSERT_EQ(::chmod((dir_ / "old").c_str(), 0777), 0);  // past the umask
        write_file(dir_ / "old/file", "x\n");
        ASSERT_EQ(::chmod((dir_ / "old/file").c_str(), 0666), 0);
        std::string rp = dir_ / "r.json";
        RunOptions o = opts();
        o.as_nobody = nobody;
        auto s = start_butter(
            {"run", "--report", rp, "--set", "report.file_activity=true", "--", "sh", "-c",
             "echo a > a; rm -r old; echo ready;"
             " while [ ! -e go ]; do sleep 0.01; done; echo b > b"},
            o);
        ASSERT_GT(s.pid, 0);
        ASSERT_EQ(read_line(s.out_fd), "ready");
        write_file(dir_ / "host.txt", "from the host\n");  // this test process: alive throughout
        write_file(dir_ / "go", "");
        EXPECT_EQ(wait_butter(s.pid), 0);
        ::close(s.out_fd);
        files = json_field(read_file(rp), "files");
        if (files.find("\"partial\": true") == std::string::npos) break;
    }
    std::string d = dir_.path();
    if (nobody) {
        EXPECT_EQ(files, "{\"created\": [\"" + d + "/a\", \"" + d + "/b\", \"" + d + "/go\", \"" +
                             d + "/host.txt\"], \"modified\": [], \"deleted\": [\"" + d +
                             "/old/\", \"" + d + "/old/file\"], \"backend\": \"inotify\", " +
                             "\"partial\": false}")
            << files;
    } else {
        EXPECT_EQ(files, "{\"created\": [\"" + d + "/a\", \"" + d + "/b\"], \"modified\": [], " +
                             "\"deleted\": [\"" + d + "/old/\", \"" + d +
                             "/old/file\"], \"backend\": \"fanotify\", \"partial\": false}")
            << files;
    }
}

INSTANTIATE_TEST_SUITE_P(AsRootAndNobody, FileActivityWriters, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

TEST_F(Supervise, ReportToStdoutAfterTheCommandsOutput) {
    auto r = run_butter({"run", "--report", "-", "--", "echo", "out"}, opts());
    EXPECT_EQ(r.code, 0);
    EXPECT_TRUE(r.out.starts_with("out\n{\n")) << r.out;
}

// --events to a pipe another user made (root's, mode 0600: butter as nobody may not reopen
// it for a non-blocking description of its own): written to as it is, never blocking.
TEST_F(Supervise, EventsToAnotherUsersPipe) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    RunOptions o = opts();
    o.as_nobody = true;
    o.cwd = "/";
    o.fd5 = p[1];
    auto r = run_butter({"run", "--events", "5", "--", "/bin/true"}, o);
    ::close(p[1]);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string ev;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0)
        ev.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    EXPECT_NE(ev.find("{\"event\": \"started\""), std::string::npos) << ev << r.err;
    EXPECT_NE(ev.find("{\"event\": \"exit\""), std::string::npos) << ev;
}

TEST_F(Supervise, EventsStreamAndSetupTimings) {
    RunOptions o = opts();
    o.fd5_file = dir_ / "events.jsonl";
    auto r = run_butter(
        {"run", "--events", "5", "--report", dir_ / "r.json", "--set", "seccomp.report=true", "--",
         "sh", "-c", "mount -t tmpfs x /mnt 2>/dev/null; exit 4"},
        o);
    EXPECT_EQ(r.code, 4) << r.err;
    std::string ev = read_file(dir_ / "events.jsonl");
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = ev.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(ev.substr(at, nl - at));
    ASSERT_GE(lines.size(), 5u) << ev;
    EXPECT_TRUE(lines.front().starts_with("{\"event\": \"started\"")) << lines.front();
    EXPECT_NE(lines.front().find("\"user\": "), std::string::npos)
        << "namespace ids: " << lines.front();
    EXPECT_NE(lines.front().find("\"isolation\": {\"tier\": \"namespaces\""), std::string::npos)
        << lines.front();
    EXPECT_NE(ev.find("{\"event\": \"setup\""), std::string::npos);
    EXPECT_NE(ev.find("\"step\": \"mounts and pivot_root\""), std::string::npos);
    EXPECT_NE(ev.find("{\"event\": \"exec\""), std::string::npos);
    EXPECT_NE(ev.find("{\"event\": \"denied\", "), std::string::npos);
    EXPECT_NE(ev.find("\"syscall\": \"mount\""), std::string::npos);
    EXPECT_TRUE(lines.back().starts_with("{\"event\": \"exit\"")) << lines.back();
    EXPECT_NE(lines.back().find("\"status\": 4"), std::string::npos);
    // The report carries the same setup steps.
    std::string setup = json_field(read_file(dir_ / "r.json"), "setup");
    EXPECT_NE(setup.find("\"step\": \"clone and id maps\""), std::string::npos) << setup;
    EXPECT_NE(setup.find("\"step\": \"seccomp and exec\""), std::string::npos) << setup;
    auto bad = run_butter({"run", "--events", "77", "--", "true"}, opts());
    EXPECT_EQ(bad.code, 125);
    EXPECT_NE(bad.err.find("'--events' expects an open file descriptor"), std::string::npos);
}

// butter runs on a terminal (the test's pty) and gives the command a terminal of its own, in
// the sandbox's devpts: with session = "pty", and with the default profile's "auto" (a person
// at a terminal: job control works in an interactive shell).
TEST_F(Supervise, PtySessionProxiesATerminal) {
    for (bool automatic : {false, true}) {
        SCOPED_TRACE(automatic ? "session = auto" : "session = pty");
        pty_session(automatic);
    }
}

void Supervise::pty_session(bool automatic) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    struct winsize ws {};
    ws.ws_row = 33;
    ws.ws_col = 99;
    ASSERT_EQ(::ioctl(master, TIOCSWINSZ, &ws), 0);
    std::string slave = ::ptsname(master);
    const char* bin = butter_bin();  // staged by this process, not by the forked copy
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setsid();
        int s = ::open(slave.c_str(), O_RDWR);
        for (int fd = 0; fd < 3; ++fd)
            ::dup2(s, fd);
        if (::chdir(dir_.path().c_str()) < 0) ::_exit(99);
        const char* script =
            "stty size; tty; test -t 0 && echo on-a-tty; bash -ic 'case $- in *m*) echo "
            "job-control;; esac' 2>&1; read line; echo got:$line";
        if (automatic)
            ::execl(bin, "butter", "run", "--", "sh", "-c", script, nullptr);
        else
            ::execl(bin, "butter", "run", "--set", "process.session=\"pty\"", "--", "sh", "-c",
                    script, nullptr);
        ::_exit(98);
    }
    std::string seen;
    auto wait_for = [&](const std::string& what) {
        for (int i = 0; i < 100 && seen.find(what) == std::string::npos; ++i) {
            struct pollfd p {
                master, POLLIN, 0
            };
            if (::poll(&p, 1, 50) == 1) {
                char buf[256];
                ssize_t n = ::read(master, buf, sizeof buf);
                if (n > 0) seen.append(buf, static_cast<std::size_t>(n));
            }
        }
        return seen.find(what) != std::string::npos;
    };
    EXPECT_TRUE(wait_for("33 99")) << seen;       // the window size reached the inner terminal
    EXPECT_TRUE(wait_for("/dev/pts/0")) << seen;  // its own devpts's first terminal
    EXPECT_TRUE(wait_for("on-a-tty")) << seen;
    EXPECT_TRUE(wait_for("job-control")) << seen;
    EXPECT_EQ(seen.find("no job control"), std::string::npos) << seen;
    ASSERT_EQ(::write(master, "hello\r", 6), 6);
    EXPECT_TRUE(wait_for("got:hello")) << seen;
    EXPECT_EQ(wait_butter(pid), 0);
    ::close(master);
}

// A terminal whose output is not a terminal outside: no CRLF, no echo of piped input; the
// default profile's "auto" gives such a run no terminal at all.
TEST_F(Supervise, PtyChangesNothingAPipeWouldNot) {
    auto r = run_butter(
        {"run", "--set", "process.session=pty", "--", "sh", "-c", "tty; printf 'a\\nb\\n'"},
        opts());
    EXPECT_EQ(r.out, "/dev/pts/0\na\nb\n") << r.err;
    auto no_tty = run_butter({"run", "--", "sh", "-c", "tty || true"}, opts());
    EXPECT_EQ(no_tty.out, "not a tty\n") << no_tty.err;
    RunOptions piped = opts();
    piped.stdin_data = "b\na\n";
    auto sorted = run_butter({"run", "--set", "process.session=pty", "--", "sort"}, piped);
    EXPECT_EQ(sorted.out, "a\nb\n") << sorted.err;
}

// Input piped into butter: passed on (stdin = "inherit"), or a warning where the profile drops
// it (stdin = "null"), never dropped silently.
TEST_F(Supervise, PipedStdinIsPassedOnOrWarnedAbout) {
    RunOptions piped = opts();
    piped.stdin_data = "b\na\n";
    auto inherit = run_butter({"run", "--", "sort"}, piped);
    EXPECT_EQ(inherit.out, "a\nb\n") << inherit.err;
    EXPECT_EQ(inherit.err, "");
    auto dropped = run_butter({"run", "--set", "process.stdin=null", "--", "sort"}, piped);
    EXPECT_EQ(dropped.out, "");
    EXPECT_NE(dropped.err.find("warning: process.stdin = \"null\": the command does not read "
                               "butter's stdin (a pipe); --set process.stdin=inherit passes it"),
              std::string::npos)
        << dropped.err;
    auto quiet = run_butter({"run", "--set", "process.stdin=null", "--", "true"}, opts());
    EXPECT_EQ(quiet.err, "") << "no warning when stdin is not piped";
}

// A report in a subdirectory of the workspace: the sandbox could move that directory and put
// its own report in its place. Refused before the run; the workspace's top is fine.
TEST_F(Supervise, ReportInAMovableDirectoryIsRefused) {
    ASSERT_EQ(::mkdir((dir_ / "out").c_str(), 0777), 0);
    auto r = run_butter({"run", "--report", dir_ / "out/r.json", "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_NE(r.err.find("lies in a subdirectory of the writable bind"), std::string::npos)
        << r.err;
    auto top = run_butter({"run", "--report", dir_ / "r.json", "--", "true"}, opts());
    EXPECT_EQ(top.code, 0) << top.err;
}

TEST_F(Supervise, QuietAndVerbose) {
    auto v = run_butter({"run", "--verbose", "--", "true"}, opts());
    EXPECT_NE(v.err.find("butter: sandbox started: pid "), std::string::npos) << v.err;
    EXPECT_NE(v.err.find("butter: command exited 0"), std::string::npos) << v.err;
    auto q = run_butter({"run", "--quiet", "--set", "seccomp.report=true", "--", "sh", "-c",
                         "mount -t tmpfs x /mnt 2>/dev/null; true"},
                        opts());
    EXPECT_EQ(q.err, "");
    auto normal = run_butter({"run", "--", "true"}, opts());
    EXPECT_EQ(normal.err, "");
}

}  // namespace
}  // namespace butter::test
