// butter pool (launcher/pool): commands handed to prepared sandboxes get what a plain run
// gives, one sandbox each; only the pool's own user reaches it; it ends with its daemon; a
// changed profile is refused; statuses, signals, the time limit and reports as `butter run`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <butter/pool.hpp>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "supervise/descendants.hpp"

namespace butter::test {
namespace {

class Pool : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();
        static int n = 0;
        name_ = "gtest-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    }
    void TearDown() override {
        if (started_) (void)run_butter({"pool", "stop", name_}, opts());
        // Whatever a failed test left of its pool ("butter pool NAME" in ps) goes too.
        for (pid_t p : pids_matching("butter pool " + name_ + " "))
            ::kill(p, SIGKILL);
        (void)::unlink(socket().c_str());
    }
    RunOptions opts() const {
        RunOptions o;
        o.cwd = work_.path();
        o.env = {profile_path_env()};
        return o;
    }
    RunResult start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"pool", "start", name_};
        args.insert(args.end(), extra.begin(), extra.end());
        RunResult r = run_butter(args, opts());
        started_ = r.code == 0;
        return r;
    }
    RunResult pooled(std::vector<std::string> command, std::vector<std::string> flags = {}) {
        std::vector<std::string> args{"run", "--pool", name_};
        args.insert(args.end(), flags.begin(), flags.end());
        args.push_back("--");
        args.insert(args.end(), command.begin(), command.end());
        return run_butter(args, opts());
    }
    RunResult plain(std::vector<std::string> command) {
        std::vector<std::string> args{"run", "--"};
        args.insert(args.end(), command.begin(), command.end());
        return run_butter(args, opts());
    }
    std::string socket() const { return "/run/butter/pool/" + name_ + ".sock"; }

    TempDir work_;
    std::string name_;
    bool started_ = false;
};

TEST_F(Pool, CommandsSeeTheIsolationOfAPlainRun) {
    // The hostile program's attacks, through the pool and through a plain run of the same
    // profile: the same outcome, line for line.
    std::filesystem::copy_file(hostile_bin(), work_.path() + "/hostile");
    auto s = start();
    ASSERT_EQ(s.code, 0) << s.err;
    for (const char* attack : {"kernel-files", "remount", "userns", "syscalls", "x32"}) {
        auto p = pooled({"./hostile", attack});
        auto r = plain({"./hostile", attack});
        EXPECT_EQ(p.code, r.code) << attack << "\n" << p.err;
        EXPECT_EQ(p.out, r.out) << attack;
        EXPECT_EQ(p.out.find("ESCAPED"), std::string::npos) << p.out;
    }
    // And what the command sees of its sandbox.
    const std::string probe =
        "hostname; id -u; pwd; ls -A /tmp | wc -l; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; "
        "echo; ls /proc | grep -c '^[0-9]'; echo $HOME";
    auto p = pooled({"sh", "-c", probe});
    auto r = plain({"sh", "-c", probe});
    EXPECT_EQ(p.code, 0) << p.err;
    // (init's command line differs: "butter pool" and "butter run", the host's paths hidden
    // either way)
    auto without_line = [](std::string text, int n) {
        std::size_t at = 0;
        for (int i = 0; i < n; ++i)
            at = text.find('\n', at) + 1;
        return text.erase(at, text.find('\n', at) + 1 - at);
    };
    EXPECT_EQ(without_line(p.out, 5), without_line(r.out, 5)) << p.out << "\n" << r.out;
    EXPECT_NE(p.out.find("butter pool " + name_ + " "), std::string::npos) << p.out;
    EXPECT_EQ(p.out.find("start"), std::string::npos) << p.out;  // (its command line hidden)
}

TEST_F(Pool, ConsecutiveCommandsShareNothing) {
    auto s = start({"--size", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    std::string tag = "pool-left-behind-" + name_;
    auto first = pooled({"sh", "-c",
                         "echo secret > /tmp/x; echo secret > $HOME/y; (exec -a " + tag +
                             " sleep 60 &) ; echo $$"});
    ASSERT_EQ(first.code, 0) << first.err;
    auto second = pooled({"sh", "-c",
                          "if [ -e /tmp/x ] || [ -e $HOME/y ]; then echo seen; else echo clean; "
                          "fi; ls /proc | grep '^[0-9]' | wc -l; echo $$"});
    ASSERT_EQ(second.code, 0) << second.err;
    // Nothing in /tmp or the home; its own sh and ls, wc, grep alone: a fresh pid namespace.
    EXPECT_EQ(second.out.substr(0, second.out.find('\n')), "clean") << second.out;
    EXPECT_EQ(first.out, second.out.substr(second.out.rfind('\n', second.out.size() - 2) + 1));
    for (int i = 0; i < 100 && !pids_matching(tag).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(pids_matching(tag).empty()) << "the first command's process outlived it";
}

TEST_F(Pool, ExitStatusSignalsTimeLimitAndReport) {
    auto s = start({"--set", "limits.time=\"2s\"", "--set", "supervise.stop_timeout=\"1s\""});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_EQ(pooled({"sh", "-c", "exit 7"}).code, 7);
    EXPECT_EQ(pooled({"sh", "-c", "kill -KILL $$"}).code, 128 + SIGKILL);
    auto missing = pooled({"no-such-program"});
    EXPECT_EQ(missing.code, 127);
    EXPECT_NE(missing.err.find("no-such-program"), std::string::npos) << missing.err;
    auto out = pooled({"sh", "-c", "echo out; echo err >&2; read x; echo \"got $x\""});
    EXPECT_EQ(out.out, "out\ngot \n") << out.err;
    EXPECT_NE(out.err.find("err\n"), std::string::npos) << out.err;
    // The time limit counts from the command's start, not the sandbox's preparation.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(pooled({"sh", "-c", "sleep 1; echo done"}).out, "done\n");
    auto slow = pooled({"sleep", "30"});
    EXPECT_EQ(slow.code, 124) << slow.err;
    EXPECT_NE(slow.err.find("time limit reached"), std::string::npos) << slow.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
    // The report, as --report writes it for a plain run.
    auto rep = pooled({"sh", "-c", "exit 3"}, {"--report", work_.path() + "/report.json"});
    EXPECT_EQ(rep.code, 3);
    std::string json = read_file(work_.path() + "/report.json");
    EXPECT_NE(json.find(R"("command": ["sh", "-c", "exit 3"])"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("exit_code": 3)"), std::string::npos) << json;
}

TEST_F(Pool, SignalsToTheClientReachTheCommand) {
    auto s = start();
    ASSERT_EQ(s.code, 0) << s.err;
    RunOptions o = opts();
    auto client = start_butter({"run", "--pool", name_, "--", "sh", "-c",
                                "trap 'echo usr1' USR1; echo ready; while :; do sleep 0.1; done"},
                               o);
    ASSERT_EQ(read_line(client.out_fd), "ready");
    ::kill(client.pid, SIGUSR1);
    EXPECT_EQ(read_line(client.out_fd), "usr1");
    ::kill(client.pid, SIGTERM);  // a stop, as for `butter run`: the command's stop signal
    EXPECT_EQ(wait_butter(client.pid), 128 + SIGTERM);
    ::close(client.out_fd);
}

TEST_F(Pool, OnlyItsOwnUserMayUseIt) {
    BUTTER_REQUIRE(have_userns(), "USERNS", "nobody needs a user namespace here");
    ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);  // (nobody's client runs there)
    auto s = start();
    ASSERT_EQ(s.code, 0) << s.err;
    struct stat st {};
    ASSERT_EQ(::stat(socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const std::string connect =
        "import socket,struct,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('refused', e.errno); "
        "sys.exit(0)\n"
        "try:\n s.sendall(struct.pack('<II', 0x31505442, 1))\nexcept OSError:\n pass\n"
        "d=b''\nwhile True:\n try:\n  "
        "c=s.recv(4096)\n except OSError:\n  break\n if not c: break\n d+=c\nprint('reply', "
        "d[4:].decode(errors='replace'))\n";
    RunOptions nobody = opts();
    nobody.as_nobody = true;
    nobody.program = "/usr/bin/python3";
    auto r = run_butter({"-c", connect, socket()}, nobody);
    EXPECT_EQ(r.out, "refused 13\n") << r.out << r.err;
    // Even where the directories and the socket let nobody in, the daemon does not serve
    // another uid.
    const std::string dir = "/run/butter/pool";
    ASSERT_EQ(::chmod("/run/butter", 0711), 0);
    ASSERT_EQ(::chmod(dir.c_str(), 0711), 0);
    ASSERT_EQ(::chmod(socket().c_str(), 0666), 0);
    r = run_butter({"-c", connect, socket()}, nobody);
    (void)::chmod(socket().c_str(), 0600);
    (void)::chmod(dir.c_str(), 0700);
    (void)::chmod("/run/butter", 0700);
    EXPECT_NE(r.out.find("belongs to uid 0: uid 65534 may not use it"), std::string::npos)
        << r.out << r.err;
    // (and a client of its own refuses a directory others may write)
}

TEST_F(Pool, KillingThePoolKillsItsSandboxes) {
    RunOptions o = opts();
    auto daemon = start_butter({"pool", "start", name_, "--size", "3", "--foreground"}, o);
    // Ready once a command runs.
    RunResult r;
    for (int i = 0; i < 100; ++i) {
        r = pooled({"true"});
        if (r.code == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(r.code, 0) << r.err;
    std::vector<pid_t> sandboxes;
    for (int i = 0; i < 100 && launcher::descendants_of(daemon.pid).size() < 6; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sandboxes = launcher::descendants_of(daemon.pid);
    ASSERT_GE(sandboxes.size(), 6u);  // a supervisor and a sandbox's init, at least, for each
    ::kill(daemon.pid, SIGKILL);
    (void)wait_butter(daemon.pid);
    ::close(daemon.out_fd);
    auto alive = [&] {
        std::size_t n = 0;
        for (pid_t p : sandboxes)
            if (::kill(p, 0) == 0) ++n;
        return n;
    };
    for (int i = 0; i < 250 && alive() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(alive(), 0u);
    // Its socket is left, and a new start takes its place.
    auto again = start({"--size", "1"});
    EXPECT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(pooled({"true"}).code, 0);
}

TEST_F(Pool, AChangedProfileIsRefused) {
    const std::string profile = work_.path() + "/mine.toml";
    write_file(profile, "extends = \"default\"\ndescription = \"mine\"\n");
    auto s = start({"-p", profile, "--size", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_EQ(pooled({"true"}).code, 0);
    write_file(profile, "extends = \"default\"\ndescription = \"mine, changed\"\n");
    auto r = pooled({"true"});
    EXPECT_EQ(r.code, 125);
    EXPECT_NE(r.err.find("its profile " + profile + " changed"), std::string::npos) << r.err;
}

TEST_F(Pool, StopEndsRunningCommandsAndRemovesTheSocket) {
    auto s = start();
    ASSERT_EQ(s.code, 0) << s.err;
    RunOptions o = opts();
    auto client =
        start_butter({"run", "--pool", name_, "--", "sh", "-c", "echo ready; sleep 60"}, o);
    ASSERT_EQ(read_line(client.out_fd), "ready");
    auto stop = run_butter({"pool", "stop", name_}, opts());
    EXPECT_EQ(stop.code, 0) << stop.err;
    started_ = false;
    EXPECT_EQ(wait_butter(client.pid), 128 + SIGTERM);
    ::close(client.out_fd);
    EXPECT_NE(::access(socket().c_str(), F_OK), 0);
    auto gone = pooled({"true"});
    EXPECT_EQ(gone.code, 125);
    EXPECT_NE(gone.err.find("is not running"), std::string::npos) << gone.err;
}

TEST_F(Pool, BadRequestsSayWhy) {
    auto bad_name = run_butter({"pool", "start", "../x"}, opts());
    EXPECT_EQ(bad_name.code, 125);
    EXPECT_NE(bad_name.err.find("a pool's name is"), std::string::npos) << bad_name.err;
    auto restart =
        run_butter({"pool", "start", name_, "--set", "supervise.restart=\"always\""}, opts());
    EXPECT_EQ(restart.code, 125);
    EXPECT_NE(restart.err.find("supervise.restart"), std::string::npos) << restart.err;
    auto mixed = run_butter({"run", "--pool", name_, "--set", "limits.pids=5", "--", "true"});
    EXPECT_EQ(mixed.code, 125);
    EXPECT_NE(mixed.err.find("belong to 'butter pool start'"), std::string::npos) << mixed.err;
    auto size = run_butter({"pool", "start", name_, "--size", "0"});
    EXPECT_EQ(size.code, 2);
    EXPECT_NE(size.err.find("'--size'"), std::string::npos) << size.err;
    auto s = start({"--size", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    auto twice = start();
    started_ = true;
    EXPECT_EQ(twice.code, 1);
    EXPECT_NE(twice.err.find("is already running"), std::string::npos) << twice.err;
    // A working directory the sandboxes do not bind.
    RunOptions elsewhere = opts();
    elsewhere.cwd = "/";
    auto cwd = run_butter({"run", "--pool", name_, "--", "true"}, elsewhere);
    EXPECT_EQ(cwd.code, 125);
    EXPECT_NE(cwd.err.find("the current directory / is not in its sandboxes"), std::string::npos)
        << cwd.err;
    // A subdirectory of the bind is fine.
    ASSERT_EQ(::mkdir((work_.path() + "/sub").c_str(), 0755), 0);
    RunOptions sub = opts();
    sub.cwd = work_.path() + "/sub";
    auto in_sub = run_butter({"run", "--pool", name_, "--", "pwd"}, sub);
    EXPECT_EQ(in_sub.out, work_.path() + "/sub\n") << in_sub.err;
}

TEST_F(Pool, TheLibraryHandsCommandsToo) {
    auto missing = butter::Pool::open(name_);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().what().find("is not running"), std::string::npos)
        << missing.error().what();
    auto s = start();
    ASSERT_EQ(s.code, 0) << s.err;
    auto pool = butter::Pool::open(name_);
    ASSERT_TRUE(pool) << pool.error().what();
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    butter::PoolCommand c;
    c.argv = {"sh", "-c", "echo \"$GREETING from $(pwd)\"; exit 4"};
    c.env = {"GREETING=hello", "PATH=/usr/bin:/bin"};
    c.cwd = work_.path();
    c.stdout_fd = out[1];
    c.report = true;
    auto r = pool->run(c);
    ::close(out[1]);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->exit_status, 4) << r->messages;
    char buf[256] = {};
    ssize_t n = ::read(out[0], buf, sizeof buf - 1);
    ::close(out[0]);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0),
              "hello from " + work_.path() + "\n");
    EXPECT_NE(r->report.find(R"("exit_code": 4)"), std::string::npos) << r->report;
    EXPECT_TRUE(pool->stop());
    started_ = false;
}

TEST_F(Pool, ACommandTooLongIsRefusedAndThePoolGoesOn) {
    // 4 MB of argv, under the client's bound; with the PATH candidates the supervisor adds, over
    // the child's: refused, and the pool (and its stop) unaffected.
    auto s = start({"--size", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    const std::string client =
        "import socket,struct,os,array,sys\n"
        "def frame(parts):\n b=b''.join(struct.pack('<I',len(p))+p for p in parts)\n "
        "return struct.pack('<I',len(b))+b\n"
        "arg=b'x'*200000\ncmd=frame([b'\\0'.join([arg]*20), b'PATH=/a:/b:/c:/d:/e:/f', b'', "
        "os.getcwd().encode(), b'0'])\n"
        "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "s.sendall(struct.pack('<II',0x31505442,1))\n"
        "s.sendmsg([cmd[:1]],[(socket.SOL_SOCKET,socket.SCM_RIGHTS,array.array('i',[0,1,2]))])\n"
        "s.sendall(cmd[1:])\nd=b''\nwhile True:\n c=s.recv(65536)\n if not c: break\n "
        "d+=c\nprint(d[8:11].decode(errors='replace'), b'too long' in d)\n";
    RunOptions o = opts();
    o.program = "/usr/bin/python3";
    auto r = run_butter({"-c", client, socket()}, o);
    EXPECT_EQ(r.out, "125 True\n") << r.out << r.err;
    EXPECT_EQ(pooled({"true"}).code, 0);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(run_butter({"pool", "stop", name_}, opts()).code, 0);
    started_ = false;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(Pool, TheCallersProcessStateAndConfinementHold) {
    auto s = start({"--size", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    const std::string b = std::string(butter_bin()) + " run --pool " + name_ + " -- ";
    RunOptions o = opts();
    o.program = "/bin/sh";
    // What a plain run's command would get from the shell that runs butter: its ignored
    // signals (SIGINT here, with whatever this test's own environment ignores, as nohup's
    // SIGHUP), umask, limits and nice value.
    auto r = run_butter({"-c",
                         "umask 077; ulimit -n 99; trap '' INT; grep SigIgn /proc/$$/status; "
                         "nice -n 3 " +
                             b +
                             "sh -c 'umask; ulimit -n; grep SigIgn /proc/self/status; "
                             "cut -d\" \" -f19 /proc/self/stat'"},
                        o);
    std::string ignored = r.out.substr(0, r.out.find('\n') + 1);
    EXPECT_NE(ignored.find("SigIgn:\t"), std::string::npos) << r.out;
    EXPECT_EQ(r.out, ignored + "0077\n99\n" + ignored + "3\n") << r.err;
    // A caller confined more than the pool is refused, not served beyond its confinement.
    for (const std::string& wrap :
         {std::string("unshare -n "), std::string("setpriv --no-new-privs ")}) {
        auto c = run_butter({"-c", wrap + b + "true"}, o);
        EXPECT_EQ(c.code, 125) << wrap;
        EXPECT_NE(c.err.find("use butter run there"), std::string::npos) << c.err;
    }
}

}  // namespace
}  // namespace butter::test
