// The hostile suite: tests/hostile/hostile.c attacks from inside the default and the untrusted
// profiles, as root and as nobody, and every attack must be contained. Where an attack can be
// shown to work safely outside a sandbox, a control run does that first, so that a "blocked"
// can never come from a broken attack.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

// The line starting with "NAME: ", or "" (the hostile program's report for one attempt).
std::string outcome(const std::string& out, const std::string& name) {
    for (const auto& l : lines(out))
        if (l.starts_with(name + ": ")) return l.substr(name.size() + 2);
    return "";
}

std::string mountinfo() {
    return host_mount_table();
}

// butter run -p PROFILE --ro-bind HOSTILE:/hostile [extra...] -- /hostile ARGS...
std::vector<std::string> hostile_run(const std::string& profile,
                                     const std::vector<std::string>& extra,
                                     const std::vector<std::string>& hostile_args) {
    std::vector<std::string> args{"run", "-p", profile, "--ro-bind",
                                  std::string(hostile_bin()) + ":/hostile"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--");
    args.push_back("/hostile");
    args.insert(args.end(), hostile_args.begin(), hostile_args.end());
    return args;
}

// A host process to aim at: `sleep 60`, killed with the object.
class HostSleeper {
  public:
    HostSleeper() {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Until it has exec'd: a ptrace attach (the control runs) before the exec would leave
        // the exec's SIGTRAP to kill it once the tracer is gone.
        std::string comm = "/proc/" + std::to_string(pid_) + "/comm";
        for (int i = 0; i < 2000; ++i) {
            std::ifstream in(comm);
            std::string name;
            if (std::getline(in, name) && name == "sleep") break;
            ::usleep(1000);
        }
    }
    ~HostSleeper() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    pid_t pid() const { return pid_; }
    bool alive() const {
        int st = 0;
        return ::waitpid(pid_, &st, WNOHANG) == 0;
    }

  private:
    pid_t pid_;
};

struct Param {
    const char* profile;
    bool nobody;
};
void PrintTo(const Param& p, std::ostream* os) {
    *os << p.profile << (p.nobody ? " as nobody" : " as root");
}

class Hostile : public ::testing::TestWithParam<Param> {
  protected:
    void SetUp() override {
        if (nobody()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        }
        // nobody runs butter from the root-run test: the set-up needs root either way.
        BUTTER_REQUIRE_ROOT();
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
        mounts_before_ = mountinfo();
    }
    void TearDown() override {
        // Nothing an attack did may show on the host.
        EXPECT_EQ(mountinfo(), mounts_before_) << "the host's mount table changed";
    }
    bool nobody() const { return GetParam().nobody; }
    bool untrusted() const { return std::string(GetParam().profile) == "untrusted"; }

    RunOptions opts() const {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_.path();
        o.env = {profile_path_env()};
        return o;
    }
    // butter run -p PROFILE [extra...] -- /hostile ARGS...
    RunResult attack(std::vector<std::string> hostile_args, std::vector<std::string> extra = {},
                     RunOptions o = {}) {
        if (o.cwd.empty()) {
            RunOptions base = opts();
            base.leak_fd = o.leak_fd;
            base.leak_path = o.leak_path;
            base.ctty = o.ctty;
            o = base;
        }
        return run_butter(hostile_run(GetParam().profile, extra, hostile_args), o);
    }
    // The hostile program straight on the host (the control runs).
    RunResult control(std::vector<std::string> hostile_args, RunOptions o = {}) {
        o.program = hostile_bin();
        return run_butter(hostile_args, o);
    }
    static void expect_no_escape(const RunResult& r) {
        EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << r.out << r.err;
    }

    TempDir work_;
    std::string mounts_before_;
};

TEST_P(Hostile, TiocstiCannotInjectIntoTheCallersTerminal) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    std::string slave_path = ::ptsname(master);
    ::chmod(slave_path.c_str(), 0666);
    int slave = ::open(slave_path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(slave, 0);
    termios t{};
    ASSERT_EQ(::tcgetattr(slave, &t), 0);
    ::cfmakeraw(&t);  // raw: an injected byte is readable at once, no line needed
    ASSERT_EQ(::tcsetattr(slave, TCSANOW, &t), 0);
    auto queued = [&] {
        int n = 0;
        EXPECT_EQ(::ioctl(slave, FIONREAD, &n), 0);
        return n;
    };

    // Control: the same program with the terminal as its controlling tty injects.
    RunOptions c;
    c.as_nobody = nobody();
    c.ctty = slave_path;
    auto ctl = control({"tty"}, c);
    EXPECT_EQ(outcome(ctl.out, "TIOCSTI fd 0"), "ESCAPED (returned 0)") << ctl.out << ctl.err;
    EXPECT_GT(queued(), 0) << "the control did not inject: the test proves nothing";
    ::tcflush(slave, TCIFLUSH);
    ASSERT_EQ(queued(), 0);

    RunOptions o;
    o.ctty = slave_path;
    auto r = attack({"tty"}, {}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    expect_no_escape(r);
    EXPECT_FALSE(outcome(r.out, "TIOCSTI fd 0").empty()) << r.out;
    EXPECT_EQ(queued(), 0) << "bytes reached the caller's terminal";
    // Sharing the caller's session (and so its terminal): the filter refuses the ioctls.
    auto shared = attack({"tty"}, {"--set", "process.session=\"inherit\""}, o);
    EXPECT_EQ(shared.code, 0) << shared.err;
    expect_no_escape(shared);
    EXPECT_EQ(outcome(shared.out, "TIOCSTI fd 0"), "blocked EPERM") << shared.out;
    EXPECT_EQ(queued(), 0) << "bytes reached the caller's terminal";
    ::close(slave);
    ::close(master);
}

TEST_P(Hostile, LeakedDirectoryFdCannotReachTheHost) {
    TempDir host;
    write_file(host / "secret", "host secret\n");
    ::chmod(host.path().c_str(), 0755);
    ::chmod((host / "secret").c_str(), 0644);

    RunOptions c;
    c.as_nobody = nobody();
    c.leak_fd = 7;
    c.leak_path = host.path();
    auto ctl = control({"fds", "secret"}, c);
    EXPECT_NE(ctl.out.find("openat(fd 7, secret): ESCAPED"), std::string::npos) << ctl.out;

    RunOptions o;
    o.leak_fd = 7;
    o.leak_path = host.path();
    auto r = attack({"fds", "secret"}, {}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "fds above 2: blocked EBADF\n");
}

TEST_P(Hostile, PtraceOfInitAndOfHostProcessesFails) {
    HostSleeper target;
    if (!nobody()) {
        // (Not pid 1 outside the sandbox: the host's init.)
        auto ctl = control({"ptrace", std::to_string(target.pid()), "no-init"});
        EXPECT_EQ(outcome(ctl.out, "PTRACE_ATTACH " + std::to_string(target.pid())),
                  "ESCAPED (returned 0)")
            << ctl.out;
    }
    auto r = attack({"ptrace", std::to_string(target.pid())});
    expect_no_escape(r);
    EXPECT_EQ(outcome(r.out, "PTRACE_ATTACH 1"), "blocked EPERM") << r.out;
    EXPECT_EQ(outcome(r.out, "open /proc/1/mem"), "blocked EACCES") << r.out;
    EXPECT_TRUE(target.alive());
}

TEST_P(Hostile, OpenByHandleAtCannotOpenAHostFile) {
    // A host file on /usr's filesystem (the sandbox holds a mount of it), not bound into the
    // sandbox: in the temporary directory, unless that is another filesystem (a tmpfs /tmp),
    // then in /var/tmp.
    auto dev_of = [](const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 ? st.st_dev : dev_t(-1);
    };
    std::optional<TempDir> tmp;
    tmp.emplace();
    if (dev_of(tmp->path()) != dev_of("/usr")) tmp.emplace("/var/tmp");
    if (dev_of(tmp->path()) != dev_of("/usr"))
        GTEST_SKIP() << "neither the temporary directory nor /var/tmp is on /usr's filesystem";
    TempDir& host = *tmp;
    write_file(host / "secret", "host secret\n");
    std::vector<unsigned char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
    auto* h = reinterpret_cast<file_handle*>(buf.data());
    h->handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    ASSERT_EQ(::name_to_handle_at(AT_FDCWD, (host / "secret").c_str(), h, &mount_id, 0), 0);
    char hex[3 * MAX_HANDLE_SZ + 16];
    int n = std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(h->handle_type));
    for (unsigned i = 0; i < h->handle_bytes; ++i)
        n += std::snprintf(hex + n, sizeof hex - static_cast<std::size_t>(n), "%02x",
                           h->f_handle[i]);

    if (!nobody()) {
        auto ctl = control({"handle", "/usr", hex});
        EXPECT_NE(ctl.out.find("read through the handle: host secret"), std::string::npos)
            << ctl.out;
    }
    auto r = attack({"handle", "/usr", hex});
    expect_no_escape(r);
    // default denies it by name (EPERM); untrusted does not allow it (ENOSYS).
    EXPECT_EQ(outcome(r.out, "open_by_handle_at"), untrusted() ? "blocked ENOSYS" : "blocked EPERM")
        << r.out;
}

TEST_P(Hostile, KernelTunablesCannotBeOpenedForWriting) {
    if (!nobody()) {
        auto ctl = control({"kernel-files"});
        EXPECT_EQ(outcome(ctl.out, "open /proc/sys/kernel/hostname for writing").substr(0, 7),
                  "ESCAPED")
            << ctl.out;
    }
    auto r = attack({"kernel-files"});
    EXPECT_EQ(r.code, 0) << r.err;
    expect_no_escape(r);
    EXPECT_EQ(lines(r.out).size(), 9u) << r.out;
}

TEST_P(Hostile, MountsCannotBeUndoneOrAdded) {
    auto r = attack({"remount"});
    EXPECT_EQ(r.code, 0) << r.err;
    expect_no_escape(r);
    EXPECT_EQ(lines(r.out).size(), 11u) << r.out;
    // The default profile denies @mount with EPERM; untrusted does not allow it (ENOSYS).
    EXPECT_EQ(outcome(r.out, "remount / read-write"),
              untrusted() ? "blocked ENOSYS" : "blocked EPERM");
}

TEST_P(Hostile, NestedUserNamespaceCannotUnlockTheMounts) {
    auto r = attack({"userns"});
    EXPECT_EQ(r.code, 0) << r.err;
    expect_no_escape(r);
    // No user namespace of its own by default (namespaces.nested_user = false).
    EXPECT_EQ(r.out, "unshare(CLONE_NEWUSER|CLONE_NEWNS): blocked EPERM\n");
    if (untrusted()) return;
    // Where a profile allows them, the masks and read-only mounts stay locked inside.
    auto nested = attack({"userns"}, {"--set", "namespaces.nested_user=true"});
    EXPECT_EQ(nested.code, 0) << nested.err;
    expect_no_escape(nested);
    EXPECT_EQ(outcome(nested.out, "unshare(CLONE_NEWUSER|CLONE_NEWNS)"), "allowed") << nested.out;
    EXPECT_EQ(lines(nested.out).size(), 5u) << nested.out;
}

TEST_P(Hostile, DeniedSyscallsFail) {
    if (!nobody()) {
        auto ctl = control({"syscalls"});
        EXPECT_EQ(outcome(ctl.out, "userfaultfd").substr(0, 7), "ESCAPED") << ctl.out;
        EXPECT_EQ(outcome(ctl.out, "perf_event_open").substr(0, 7), "ESCAPED") << ctl.out;
    }
    auto r = attack({"syscalls"});
    for (const char* name :
         {"userfaultfd", "keyctl", "add_key", "request_key", "perf_event_open", "bpf",
          "init_module", "kexec_load", "settimeofday", "acct", "swapoff"}) {
        std::string want = "blocked EPERM";
        // untrusted is an allow list: what it does not name gets its default, ENOSYS.
        if (untrusted() && std::string(name) != "userfaultfd" && std::string(name) != "bpf" &&
            std::string(name).find("key") == std::string::npos &&
            std::string(name) != "perf_event_open")
            want = "blocked ENOSYS";
        EXPECT_EQ(outcome(r.out, name), want) << name << "\n" << r.out;
    }
    // io_uring's requests bypass seccomp: denied by every shipped profile (as Docker does).
    EXPECT_EQ(outcome(r.out, "io_uring_setup"), "blocked EPERM") << r.out;
}

TEST_P(Hostile, X32AndInt80SyscallsNeverRun) {
    for (const char* a : {"x32", "int80"}) {
        auto r = attack({a});
        expect_no_escape(r);
        // The filter kills a foreign ABI (SIGSYS); a kernel without ia32 emulation faults
        // int 0x80 (SIGSEGV). Either way the call never ran.
        EXPECT_TRUE(r.code == 128 + SIGSYS || r.code == 128 + SIGSEGV) << a << ": " << r.code;
    }
}

TEST_P(Hostile, SignalsCannotReachHostProcesses) {
    HostSleeper target;
    auto r = attack({"kill", std::to_string(target.pid())});
    EXPECT_EQ(r.code, 0) << r.err;
    std::string p = std::to_string(target.pid());
    EXPECT_EQ(outcome(r.out, "kill(" + p + ", 0)"), "blocked ESRCH") << r.out;
    EXPECT_EQ(outcome(r.out, "kill(" + p + ", SIGKILL)"), "blocked ESRCH") << r.out;
    EXPECT_EQ(outcome(r.out, "kill(-1, SIGKILL)"),
              "delivered (inside the sandbox only, bystander killed)")
        << r.out;
    EXPECT_TRUE(target.alive());
}

TEST_P(Hostile, DoubleForkedDaemonDiesWithTheSandbox) {
    std::string tag = "butter-hostile-daemon-" + std::to_string(::getpid()) + "-" +
                      std::to_string(nobody()) + GetParam().profile;
    auto r = attack({"daemon", tag});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "daemon: started\n");
    // butter returns once the command exits; by then the pid namespace (daemon included) is
    // being torn down by the kernel.
    for (int i = 0; i < 50 && !pids_matching(tag).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(pids_matching(tag).empty()) << "the daemon outlived the sandbox";
}

TEST_P(Hostile, CommandIgnoringSigtermIsKilledAfterTheGracePeriod) {
    std::string tag = "butter-hostile-ignore-" + std::to_string(::getpid());
    auto start = std::chrono::steady_clock::now();
    auto r =
        attack({"ignore-term", tag}, {"--timeout", "1s", "--set", "supervise.stop_timeout=1s"});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 124) << r.err;
    EXPECT_LT(took, std::chrono::seconds(10));
    EXPECT_TRUE(pids_matching(tag).empty());
}

TEST_P(Hostile, FillingTmpStopsAtItsSize) {
    auto r = attack({"fill", "/tmp"});
    EXPECT_EQ(r.code, 0) << r.err;
    unsigned long long bytes = 0;
    char err[32] = {0};
    ASSERT_EQ(std::sscanf(r.out.c_str(), "fill: %llu bytes, then %31s", &bytes, err), 2) << r.out;
    // default: a 256M tmpfs; untrusted: 64M, and a 64M file size limit besides.
    unsigned long long limit = (untrusted() ? 64ULL : 256ULL) << 20;
    EXPECT_LE(bytes, limit);
    EXPECT_GE(bytes, limit - (4ULL << 20));
    EXPECT_TRUE(std::string(err) == "ENOSPC" || std::string(err) == "EFBIG") << err;
}

TEST_P(Hostile, SetuidBinaryGainsNothing) {
    // A setuid-root copy of the hostile program; outside, it runs with euid 0.
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    std::string suid = dir / "suid";
    {
        std::ifstream in(hostile_bin(), std::ios::binary);
        std::ofstream out(suid, std::ios::binary);
        out << in.rdbuf();
    }
    ASSERT_EQ(::chown(suid.c_str(), 0, 0), 0);
    ASSERT_EQ(::chmod(suid.c_str(), 04755), 0);
    RunOptions c;
    c.as_nobody = true;
    c.program = suid;
    auto ctl = run_butter({"euid"}, c);
    EXPECT_EQ(ctl.out, "euid 65534 0\n") << "the control did not gain root: " << ctl.err;

    std::vector<std::string> args{
        "run", "-p", GetParam().profile, "--ro-bind", suid + ":/suid", "--", "/suid", "euid"};
    auto r = run_butter(args, opts());
    EXPECT_EQ(r.code, 0) << r.err;
    int ruid = -1, euid = -1;
    ASSERT_EQ(std::sscanf(r.out.c_str(), "euid %d %d", &ruid, &euid), 2) << r.out;
    EXPECT_EQ(euid, ruid);
}

INSTANTIATE_TEST_SUITE_P(Profiles, Hostile,
                         ::testing::Values(Param{"default", false}, Param{"default", true},
                                           Param{"untrusted", false}, Param{"untrusted", true}),
                         [](const auto& p) {
                             return std::string(p.param.profile) +
                                    (p.param.nobody ? "_AsNobody" : "_AsRoot");
                         });

// Bombs need the cgroup limits, which need root here (v1 hierarchies).
class HostileBombs : public ::testing::TestWithParam<const char*> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();
        // untrusted runs the command as nobody: the working directory must admit it.
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
    }
    RunResult attack(std::vector<std::string> extra, std::vector<std::string> hostile_args) {
        RunOptions o;
        o.cwd = work_.path();
        o.env = {profile_path_env()};
        return run_butter(hostile_run(GetParam(), extra, hostile_args), o);
    }
    TempDir work_;
};

TEST_P(HostileBombs, ForkBombStopsAtThePidsLimit) {
    auto r = attack({"--set", "limits.pids=32", "--set", "limits.optional=false"}, {"forkbomb"});
    int n = 0;
    char err[32] = {0};
    ASSERT_EQ(std::sscanf(r.out.c_str(), "forkbomb: stopped after %d (%31[A-Z])", &n, err), 2)
        << r.out << r.err;
    EXPECT_LT(n, 32);
    EXPECT_STREQ(err, "EAGAIN");
}

TEST_P(HostileBombs, MemoryBombIsKilledAtTheMemoryLimit) {
    TempDir d;
    std::string report = d / "report.json";
    auto r =
        attack({"--set", "limits.memory=64M", "--set", "limits.optional=false", "--report", report},
               {"membomb"});
    EXPECT_EQ(r.code, 128 + SIGKILL) << r.out << r.err;
    std::string rep = read_file(report);
    EXPECT_NE(rep.find("\"reason\": \"oom\""), std::string::npos) << rep;
    EXPECT_NE(rep.find("\"limits_hit\": [\"memory\"]"), std::string::npos) << rep;
}

INSTANTIATE_TEST_SUITE_P(Profiles, HostileBombs, ::testing::Values("default", "untrusted"));

// A mount target that a host process swaps for a symlink while butter sets up (runc's
// CVE-2021-30465): the mount must land where the profile says or butter must refuse, never
// follow the link.
TEST(HostileRace, SymlinkSwappedMountTargetIsRefusedNotFollowed) {
    BUTTER_REQUIRE_ROOT();
    TempDir data, work, profiles;
    ::chmod(work.path().c_str(), 0777);
    std::string profile = profiles / "race.toml";
    write_file(profile,
               "extends = \"default\"\n"
               "[filesystem]\n"
               "mounts = [\n"
               "  { type = \"proc\", target = \"/proc\" },\n"
               "  { type = \"bind\", source = \"" +
                   data.path() +
                   "\", target = \"/data\" },\n"
                   "  { type = \"tmpfs\", target = \"/data/sub/inner\" },\n"
                   "]\n");
    std::string before = mountinfo();
    RunOptions o;
    o.cwd = work.path();
    auto args = hostile_run(profile, {"--set", "process.cwd=\"/\""}, {"mounts"});

    // Deterministic: a symlink already in place is refused with the path named.
    ASSERT_EQ(::symlink("/", (data / "sub").c_str()), 0);
    auto pre = run_butter(args, o);
    EXPECT_EQ(pre.code, 125) << pre.out;
    EXPECT_NE(pre.err.find("/data/sub"), std::string::npos) << pre.err;
    ASSERT_EQ(::unlink((data / "sub").c_str()), 0);

    // Racing: a thread flips data/sub between a directory and a symlink.
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        std::string sub = data / "sub", dir = data / "sub.dir", link = data / "sub.link";
        ::mkdir(dir.c_str(), 0755);
        ::mkdir((dir + "/inner").c_str(), 0755);
        ::symlink("/", link.c_str());
        while (!stop) {
            ::rename(dir.c_str(), sub.c_str());
            ::rename(sub.c_str(), dir.c_str());
            ::rename(link.c_str(), sub.c_str());
            ::rename(sub.c_str(), link.c_str());
        }
    });
    int mounted = 0, refused = 0;
    for (int i = 0; i < 40; ++i) {
        auto r = run_butter(args, o);
        if (r.code == 0) {
            ++mounted;
            // The tmpfs is on the directory that was /data/sub (the flipper may have renamed
            // it to sub.dir since) and nowhere else (through the link it would be /inner).
            auto points = lines(r.out);
            auto inner = std::count_if(points.begin(), points.end(),
                                       [](const std::string& p) { return p.ends_with("/inner"); });
            EXPECT_EQ(inner, 1) << r.out;
            EXPECT_TRUE(std::count(points.begin(), points.end(), "/data/sub/inner") == 1 ||
                        std::count(points.begin(), points.end(), "/data/sub.dir/inner") == 1)
                << r.out;
        } else {
            ++refused;
            EXPECT_EQ(r.code, 125) << r.out << r.err;
        }
    }
    stop = true;
    flipper.join();
    EXPECT_EQ(mounted + refused, 40);
    EXPECT_EQ(mountinfo(), before) << "the host's mount table changed";
}

}  // namespace
}  // namespace butter::test
