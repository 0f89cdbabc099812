// [seccomp] end to end: foreign ABIs, syscalls newer than the filter knows, argument rules,
// per-rule actions, and named denials.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <chrono>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

class SeccompRun : public ::testing::Test {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    RunResult probe(std::vector<std::string> probe_args, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.push_back("/probe");
        args.insert(args.end(), probe_args.begin(), probe_args.end());
        RunOptions o;
        o.cwd = dir_.path();
        return run_butter(args, o);
    }
    // Profiles live where only root may write (a profile in a directory that others may
    // write is refused).
    std::string profile(const std::string& body) {
        ::chmod(profiles_.path().c_str(), 0755);
        std::string p = profiles_ / "p.toml";
        write_file(p, "extends = \"default\"\n" + body);
        return p;
    }
    TempDir dir_, profiles_;
};

TEST_F(SeccompRun, X32SyscallKillsTheCommand) {
    auto r = probe({"try-syscall", "x32-getpid"});
    EXPECT_EQ(r.code, 128 + SIGSYS) << r.out << r.err;
}

TEST_F(SeccompRun, Int80SyscallNeverRuns) {
    // SIGSYS where IA32 emulation reaches seccomp; a fault where int 0x80 reaches nothing.
    auto bare = run_in_child([] {
        ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the fault into an abort
        long ret;
        asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        return ret > 0 ? 0 : 1;
    });
    int expected = bare.exited ? 128 + SIGSYS : 128 + bare.signal;
    auto r = probe({"try-syscall", "int80-getpid"});
    EXPECT_EQ(r.code, expected) << r.out << r.err;
    EXPECT_EQ(r.out, "");  // the probe never got to print a result
}

TEST_F(SeccompRun, SyscallsNewerThanTheFilterGetEnosys) {
    // listmount (458) exists since Linux 6.8 but not in libseccomp 2.5's table: without the
    // catch-all it would run (and fail with EINVAL/EFAULT on our null arguments).
    long bare = ::syscall(458, 0, 0, 0, 0);
    int bare_errno = errno;
    if (bare == -1 && bare_errno == ENOSYS) GTEST_SKIP() << "kernel without syscall 458";
    auto r = probe({"try-syscall", "nr:458"});
    EXPECT_EQ(r.out, "ENOSYS\n") << r.err;
    auto far = probe({"try-syscall", "nr:1000"});
    EXPECT_EQ(far.out, "ENOSYS\n");
}

TEST_F(SeccompRun, ArgumentRules) {
    std::string p = profile(R"([seccomp]
rules = [
  { syscall = "ioctl", match = { arg1 = ["TIOCSTI", "TIOCLINUX"] }, action = "errno:EPERM" },
  { syscall = "socket", unless = { arg0 = ["AF_UNIX", "AF_INET", "AF_INET6"] }, action = "errno:EAFNOSUPPORT" },
  { syscall = "clone", match = { arg0 = { any_bit = ["CLONE_NEWUSER", "CLONE_NEWNS"] } }, action = "errno:EACCES" },
]
)");
    EXPECT_EQ(probe({"try-syscall", "tiocsti-junk"}, {"-p", p}).out, "EPERM\n");
    EXPECT_EQ(probe({"try-syscall", "socket:" + std::to_string(AF_NETLINK)}, {"-p", p}).out,
              "EAFNOSUPPORT\n");
    EXPECT_EQ(probe({"try-syscall", "socket:" + std::to_string(AF_PACKET)}, {"-p", p}).out,
              "EAFNOSUPPORT\n");
    EXPECT_EQ(probe({"try-syscall", "socket:" + std::to_string(AF_UNIX)}, {"-p", p}).code, 0);
    EXPECT_EQ(probe({"try-syscall", "socket:" + std::to_string(AF_INET6)}, {"-p", p}).code, 0);
    EXPECT_EQ(probe({"try-syscall", "clone-newuser"}, {"-p", p}).out, "EACCES\n");
    EXPECT_EQ(probe({"try-syscall", "clone3"}, {"-p", p}).out, "ENOSYS\n");
    // Without the profile's rules: butter's own refuses TIOCSTI in every session (a new
    // session could take a terminal fd it holds as its controlling tty, then type into it).
    EXPECT_EQ(probe({"try-syscall", "tiocsti-junk"}).out, "EPERM\n");
}

TEST_F(SeccompRun, PerRuleActions) {
    std::string p = profile(R"([seccomp]
rules = [
  { syscall = "kcmp", action = "kill" },
  { syscall = "getcpu", action = "errno:ENOMEDIUM" },
  { syscall = "sched_getattr", action = "log" },
]
)");
    EXPECT_EQ(probe({"try-syscall", "nr:" + std::to_string(SYS_kcmp)}, {"-p", p}).code,
              128 + SIGSYS);
    EXPECT_EQ(probe({"try-syscall", "nr:" + std::to_string(SYS_getcpu)}, {"-p", p}).out,
              "ENOMEDIUM\n");
    // log: the call runs (and fails on its null arguments with the kernel's own errno).
    EXPECT_EQ(probe({"try-syscall", "nr:" + std::to_string(SYS_sched_getattr)}, {"-p", p}).out,
              "EINVAL\n");
}

TEST_F(SeccompRun, ReportNamesEachDeniedSyscallOnce) {
    RunOptions o;
    o.cwd = dir_.path();
    auto r =
        run_butter({"run", "--set", "seccomp.report=true", "--", "sh", "-c",
                    "mount -t tmpfs none /mnt 2>/dev/null; mount -t tmpfs none /mnt 2>/dev/null; "
                    "echo $?"},
                   o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "32\n");  // mount(8)'s "mount failure": the call still failed
    EXPECT_NE(
        r.err.find("butter: denied: mount(\"none\", \"/mnt\", \"tmpfs\", 0x0, 0x0) = EPERM\n"),
        std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("denied: mount", r.err.find("denied: mount") + 1), std::string::npos)
        << "logged twice: " << r.err;
}

// Inside a sandbox whose manager holds a listener (nested butter, LXD), the kernel refuses
// butter's own: the denials come from the kernel log, by the sandbox's audit session.
TEST_F(SeccompRun, ReportFallsBackToTheKernelLogWhenTheListenerIsTaken) {
    BUTTER_REQUIRE_ROOT();
    BUTTER_REQUIRE(::access("/proc/self/loginuid", F_OK) == 0, "AUDIT",
                   "a kernel without audit writes no seccomp records");
    std::string p = profile(
        "[seccomp]\nreport = true\n"
        "rules = [{ syscall = \"getcpu\", action = \"errno:ENOMEDIUM\" }]\n");
    std::string rp = dir_ / "r.json";
    RunOptions o;
    o.cwd = dir_.path();
    o.outer_listener = true;
    const std::string logged =
        "butter: denied: mount = EPERM (from the kernel log: no arguments)\n";
    RunResult r;
    // The kernel rate-limits its log (printk_ratelimit: 10 records in 5 s, machine-wide), so
    // on a busy machine both records can be dropped: another run after the window, at most
    // four in all. Everything but the log line must hold in every run.
    for (int attempt = 0; attempt < 4; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5500));
        r = run_butter({"run", "-p", p, "--report", rp, "--ro-bind",
                        std::string(probe_bin()) + ":/probe", "--", "sh", "-c",
                        "/probe try-syscall nr:" + std::to_string(SYS_getcpu) +
                            "; mount -t tmpfs none /mnt 2>/dev/null;"
                            " mount -t tmpfs none /mnt 2>/dev/null; echo $?"},
                       o);
        ASSERT_EQ(r.code, 0) << r.err;
        ASSERT_EQ(r.out, "ENOMEDIUM\n32\n");
        if (r.err.find(logged) != std::string::npos) break;
    }
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "ENOMEDIUM\n32\n");  // both calls still failed, each as its rule says
    EXPECT_NE(r.err.find(logged), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("denied: mount", r.err.find("denied: mount") + 1), std::string::npos)
        << "logged twice: " << r.err;
    // A rule's own errno is no reported denial (as with notification); the kernel rate-limits
    // its log, so the count is at least one of the two.
    EXPECT_EQ(r.err.find("getcpu"), std::string::npos) << r.err;
    std::string report = read_file(rp);
    EXPECT_TRUE(report.find("\"denied_syscalls\": {\"mount\": 2}") != std::string::npos ||
                report.find("\"denied_syscalls\": {\"mount\": 1}") != std::string::npos)
        << report;
}

TEST_F(SeccompRun, ReportSaysSoWhenNeitherListenerNorKernelLogCanBeHad) {
    BUTTER_REQUIRE_ROOT();  // to run butter as nobody
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable");
    if (read_file("/proc/sys/kernel/dmesg_restrict") == "0\n")
        GTEST_SKIP() << "kernel.dmesg_restrict=0: nobody may read the kernel log here";
    RunOptions o;
    o.cwd = dir_.path();
    o.as_nobody = true;
    o.outer_listener = true;
    auto r = run_butter({"run", "--set", "seccomp.report=true", "--", "sh", "-c",
                         "mount -t tmpfs none /mnt 2>/dev/null; echo $?"},
                        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "32\n");
    EXPECT_NE(r.err.find("butter: seccomp.report: no user notification here (EBUSY: an outer "
                         "filter holds the one listener), and the kernel log cannot be read ("),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("denials are not reported\n"), std::string::npos) << r.err;
}

TEST_F(SeccompRun, UnknownNamesAreErrorsWithPositions) {
    std::string p = profile("[seccomp]\ndeny = [\"mount\", \"frobnicate\"]\n");
    auto r = probe({"pid"}, {"-p", p});
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.err, p + ":3:18: seccomp: unknown syscall 'frobnicate'\n");
}

}  // namespace
}  // namespace butter::test
