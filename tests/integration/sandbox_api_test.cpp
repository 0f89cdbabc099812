// butter/sandbox.hpp from a test program: real sandboxes through the library API, several at
// once on one loop, and what the API promises its caller (errors, stop, events, cleanup).
#include <butter/sandbox.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <butter/timerfd.hpp>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"

namespace butter {
namespace {

using namespace std::chrono_literals;

SandboxOptions command(std::vector<std::string> argv) {
    SandboxOptions o;
    o.command = std::move(argv);
    return o;
}

TEST(SandboxApi, OutcomesAsTheButterProgramReportsThem) {
    auto ok = run_sandbox(SandboxProfile::builtin(), command({"/bin/sh", "-c", "exit 0"}));
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_EQ(ok->kind, SandboxOutcome::Kind::Exited);
    EXPECT_EQ(ok->exit_status(), 0);
    EXPECT_NE(ok->report.find("\"status\": 0"), std::string::npos) << ok->report;

    auto three = run_sandbox(SandboxProfile::builtin(), command({"/bin/sh", "-c", "exit 3"}));
    ASSERT_TRUE(three);
    EXPECT_EQ(three->exit_status(), 3);

    auto missing = run_sandbox(SandboxProfile::builtin(), command({"no-such-command-here"}));
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->kind, SandboxOutcome::Kind::ExecFailed);
    EXPECT_EQ(missing->exit_status(), 127);

    SandboxOptions slow = command({"/bin/sleep", "30"});
    slow.timeout = 300ms;
    auto timed = run_sandbox(SandboxProfile::builtin(), slow);
    ASSERT_TRUE(timed);
    EXPECT_EQ(timed->kind, SandboxOutcome::Kind::TimedOut);
    EXPECT_EQ(timed->exit_status(), 124);
}

// The profile's own isolation: the library's sandboxes are the butter program's.
TEST(SandboxApi, IsolatedAsTheProfileSays) {
    test::TempDir d;
    auto out = d / "out";
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    SandboxOptions o = command({"/bin/sh", "-c", "echo $$; hostname; ls /home 2>&1 | wc -l"});
    o.stdout_fd = fd;
    auto r = run_sandbox(SandboxProfile::builtin(), o);
    ::close(fd);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->exit_status(), 0) << r->message;
    std::string text = test::read_file(out);
    EXPECT_EQ(text.substr(0, 2), "2\n") << text;  // the command, after init, in its pid namespace
}

TEST(SandboxApi, ProfileErrorsNameTheirPlace) {
    auto bad = SandboxProfile::parse("[namespaces]\nuser = \"yes\"\n", "mine.toml");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().text().rfind("mine.toml:2:", 0), 0u) << bad.error().what();

    auto p = SandboxProfile::builtin();
    auto set = p.set("limits.memory", "\"lots\"");
    ASSERT_FALSE(set);
    EXPECT_NE(set.error().text().find("limits.memory"), std::string::npos) << set.error().what();
    EXPECT_TRUE(p.set("limits.pids", "64"));
    EXPECT_NE(p.to_toml().find("pids = 64"), std::string::npos) << p.to_toml();
    EXPECT_FALSE(p.set("no.such.key", "1"));

    auto none = SandboxProfile::load("no-such-profile-anywhere");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().text().find("no profile named"), std::string::npos);

    EXPECT_FALSE(Sandbox::create(SandboxProfile::builtin(), SandboxOptions{}));
    auto nopid = SandboxProfile::builtin();
    ASSERT_TRUE(nopid.set("namespaces.pid", "false"));
    auto refused = Sandbox::create(nopid, command({"/bin/true"}));
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().text().find("pid namespace"), std::string::npos);
}

// Several at once on one loop, a stop() and the events as they come.
TEST(SandboxApi, SeveralAtOnceWithStopAndEvents) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    std::vector<std::string> events;
    SandboxOptions a = command({"/bin/sleep", "30"});
    a.on_event = [&](std::string_view e) { events.emplace_back(e); };
    auto stopped = Sandbox::create(SandboxProfile::builtin(), a);
    auto quick = Sandbox::create(SandboxProfile::builtin(), command({"/bin/true"}));
    ASSERT_TRUE(stopped && quick);
    ASSERT_TRUE(stopped->start(*loop));
    ASSERT_TRUE(quick->start(*loop));
    EXPECT_FALSE(stopped->start(*loop));  // once
    auto timer = TimerFd::create(Clock::Monotonic, TimerFdFlag::NonBlock);
    ASSERT_TRUE(timer && timer->set_relative(300ms));
    auto reg = loop->add(timer->fd(), IoEvent::In, [&](IoEvents) {
        (void)timer->read_event();
        EXPECT_GT(stopped->pid(), 0);
        stopped->stop();
    });
    ASSERT_TRUE(reg);
    auto both = [&]() -> Task<std::pair<int, int>> {
        auto q = co_await quick->wait();
        auto s = co_await stopped->wait();
        co_return std::pair<int, int>(q ? q->exit_status() : -1,
                                      s ? static_cast<int>(s->stop) : -1);
    };
    auto r = loop->run_until_complete(both());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, 0);
    EXPECT_EQ(r->second, static_cast<int>(SandboxOutcome::Stop::StopRequest));
    EXPECT_TRUE(stopped->done());
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.front().rfind("{\"event\": \"started\"", 0), 0u) << events.front();
    EXPECT_EQ(events.back().rfind("{\"event\": \"exit\"", 0), 0u) << events.back();
}

// A Sandbox that goes away while it runs takes its processes with it; the process's signal
// mask, dumpable flag and descriptors are as they were.
TEST(SandboxApi, DestroyedWhileRunningLeavesNothing) {
    auto r = test::run_in_child([] {
        sigset_t mask_before{}, mask_after{};  // (zeroed: the kernel fills 8 of the 128 bytes)
        ::pthread_sigmask(SIG_BLOCK, nullptr, &mask_before);
        int dumpable = ::prctl(PR_GET_DUMPABLE);
        auto count_fds = [] {
            int n = 0;
            for (int fd = 0; fd < 1024; ++fd)
                n += ::fcntl(fd, F_GETFD) >= 0;
            return n;
        };
        int fds = count_fds();
        pid_t pid = 0;
        {
            auto loop = EventLoop::create();
            CHILD_ASSERT(loop, "loop");
            auto box = Sandbox::create(SandboxProfile::builtin(), command({"/bin/sleep", "30"}));
            CHILD_ASSERT(box, box.error().what());
            CHILD_ASSERT(box->start(*loop), "start");
            for (int i = 0; i < 200 && box->pid() == 0; ++i)
                CHILD_ASSERT(loop->run_once(10), "run_once");
            pid = box->pid();
            CHILD_ASSERT(pid > 0, "never started");
        }
        CHILD_ASSERT(::kill(pid, 0) < 0 && errno == ESRCH, "the sandbox outlived its Sandbox");
        ::pthread_sigmask(SIG_BLOCK, nullptr, &mask_after);
        CHILD_ASSERT(std::memcmp(&mask_before, &mask_after, sizeof mask_after) == 0,
                     "mask: " << std::hex << *reinterpret_cast<std::uint64_t*>(&mask_before)
                              << " -> " << *reinterpret_cast<std::uint64_t*>(&mask_after));
        CHILD_ASSERT(::prctl(PR_GET_DUMPABLE) == dumpable, "dumpable");
        CHILD_ASSERT(count_fds() == fds, "fds: " << count_fds() << " vs " << fds);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(SandboxApi, IgnoredSigchldIsRefusedNotLost) {
    auto r = test::run_in_child([] {
        ::signal(SIGCHLD, SIG_IGN);
        auto loop = EventLoop::create();
        auto box = Sandbox::create(SandboxProfile::builtin(), command({"/bin/true"}));
        CHILD_ASSERT(box, box.error().what());
        auto started = box->start(*loop);
        CHILD_ASSERT(!started, "started with SIGCHLD ignored");
        CHILD_ASSERT(started.error().text().find("SIGCHLD") != std::string::npos,
                     started.error().what());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

// A stop or a signal right after start(), before the command has even been executed, is held
// until the exec and then delivered: not dropped by the sandbox's init, which has no handler
// yet (a pid namespace's init ignores what it has none for).
TEST(SandboxApi, StopAndSignalRightAfterStartReachTheCommand) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    auto stopped = Sandbox::create(SandboxProfile::builtin(), command({"/bin/sleep", "100"}));
    auto signalled = Sandbox::create(SandboxProfile::builtin(), command({"/bin/sleep", "100"}));
    ASSERT_TRUE(stopped && signalled);
    ASSERT_TRUE(stopped->start(*loop));
    ASSERT_TRUE(signalled->start(*loop));
    stopped->stop();
    signalled->signal(SIGUSR1);
    auto t0 = std::chrono::steady_clock::now();
    auto both = [&]() -> Task<std::pair<Result<SandboxOutcome>, Result<SandboxOutcome>>> {
        auto a = co_await stopped->wait();
        auto b = co_await signalled->wait();
        co_return std::pair(std::move(a), std::move(b));
    };
    auto r = loop->run_until_complete(both());
    ASSERT_TRUE(r && r->first && r->second);
    // SIGTERM ends sleep at once (the grace period before SIGKILL is 10 s).
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(r->first->exit_status(), 128 + SIGTERM);
    EXPECT_EQ(r->first->stop, SandboxOutcome::Stop::StopRequest);
    EXPECT_EQ(r->second->exit_status(), 128 + SIGUSR1);
}

// After wait(), the run's resources are gone even while the caller keeps the Sandbox: its
// descriptors (pipes, timers, watches) and cgroups; the outcome has the set-up's steps
// without an event callback; a timeout must be positive.
TEST(SandboxApi, FinishedSandboxHoldsNothingAndSaysItsSteps) {
    auto r = test::run_in_child([] {
        auto count_fds = [] {
            int n = 0;
            for (int fd = 0; fd < 4096; ++fd)
                n += ::fcntl(fd, F_GETFD) >= 0;
            return n;
        };
        int before = count_fds();
        auto profile = SandboxProfile::builtin();
        CHILD_ASSERT(profile.set("report.file_activity", "true"), "set file_activity");
        CHILD_ASSERT(profile.set("output.stdout", "\"tee:/dev/null\""), "set tee");
        SandboxOptions o = command({"/bin/sh", "-c", "echo hi"});
        o.timeout = 10s;
        auto box = Sandbox::create(profile, o);
        CHILD_ASSERT(box, "create");
        auto loop = EventLoop::create();
        CHILD_ASSERT(loop && box->start(*loop), "start");
        auto out = loop->run_until_complete(box->wait());
        CHILD_ASSERT(out && *out && (*out)->exit_status() == 0, "run");
        CHILD_ASSERT(!(*out)->setup_steps.empty(), "setup steps without on_event");
        // The loop's own epoll fd stays; the sandbox's are gone though the Sandbox lives.
        CHILD_ASSERT(count_fds() == before + 1, "fds left after wait()");
        SandboxOptions zero = command({"/bin/true"});
        zero.timeout = 0s;
        CHILD_ASSERT(!Sandbox::create(SandboxProfile::builtin(), zero), "timeout 0 accepted");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
