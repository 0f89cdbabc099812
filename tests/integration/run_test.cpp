// `butter run` end to end with the default profile, as root and as nobody: each test runs the
// probe inside a real sandbox and asserts what it sees.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include <butter/landlock.hpp>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "spawn/spawn.hpp"

namespace butter::test {
namespace {

class RunTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (nobody()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        } else {
            BUTTER_REQUIRE_ROOT();
        }
        ASSERT_EQ(::chmod(work_.path().c_str(), 0777), 0);
    }
    bool nobody() const { return GetParam(); }

    RunOptions opts() const {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_.path();
        return o;
    }
    // butter run [extra...] -- /probe ARGS...
    RunResult probe(std::vector<std::string> probe_args, std::vector<std::string> extra = {},
                    RunOptions o = {}) {
        if (o.cwd.empty()) o = opts();
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.push_back("/probe");
        args.insert(args.end(), probe_args.begin(), probe_args.end());
        return run_butter(args, o);
    }
    TempDir work_;
};

TEST_P(RunTest, HostnameIsTheProfiles) {
    auto r = probe({"hostname"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "sandbox\n");
    auto other = probe({"hostname"}, {"--set", "filesystem.hostname=box2"});
    EXPECT_EQ(other.out, "box2\n") << other.err;
}

TEST_P(RunTest, OwnPidNamespaceHidesHostProcesses) {
    auto r = probe({"pid"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "2\n");  // PID 1 is butter's init
    auto procs = probe({"procs"});
    EXPECT_EQ(procs.out, "2\n") << "init and the probe only";
}

// A time namespace takes the fork-like spawn (the kernel refuses CLONE_VM into one): the same
// sandbox, in a time namespace of its own.
TEST_P(RunTest, TimeNamespaceRunsTheSameSandbox) {
    char host[64] = {};
    ASSERT_GT(::readlink("/proc/self/ns/time", host, sizeof host - 1), 0);
    auto r = probe({"ns", "time"}, {"--set", "namespaces.time=true"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out, std::string(host) + "\n");
    EXPECT_EQ(r.out.rfind("time:[", 0), 0u) << r.out;
    EXPECT_EQ(probe({"pid"}, {"--set", "namespaces.time=true"}).out, "2\n");
    EXPECT_EQ(probe({"ns", "time"}).out, std::string(host) + "\n") << "time = false: the host's";
}

TEST_P(RunTest, HostPathsNotBoundAreAbsent) {
    for (const char* p : {"/root", "/home", "/var", "/srv", "/boot"}) {
        auto r = probe({"exists", p}, {"--set", "filesystem.home=none"});
        EXPECT_EQ(r.out, "no\n") << p;
    }
    EXPECT_EQ(probe({"exists", "/usr/bin"}).out, "yes\n");
}

// filesystem.home = "tmpfs" (the default profile's): an empty home owned by the command's user
// at $HOME, HOME set to it, gone after the run; the workspace below it is bound over it.
TEST_P(RunTest, HomeIsAnEmptyPrivateTmpfsOwnedByTheUser) {
    TempDir home;
    ASSERT_EQ(::chmod(home.path().c_str(), 0777), 0);
    std::string h = home / "user";
    ASSERT_EQ(::mkdir(h.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(h.c_str(), 0777), 0);
    std::string project = h + "/project";
    ASSERT_EQ(::mkdir(project.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(project.c_str(), 0777), 0);
    write_file(h + "/.secret", "host\n");
    RunOptions o = opts();
    o.env = {"HOME=" + h};
    o.cwd = project;
    auto env = probe({"env", "HOME"}, {}, o);
    EXPECT_EQ(env.out, h + "\n") << env.err;
    auto ids = probe({"ids"}, {}, o);
    auto owner = probe({"owner", h}, {}, o);
    ASSERT_FALSE(ids.out.empty()) << ids.err;
    EXPECT_EQ(owner.out, ids.out.substr(0, ids.out.size() - 1) + " 700\n") << owner.err;
    EXPECT_EQ(probe({"exists", h + "/.secret"}, {}, o).out, "no\n") << "the host's home is hidden";
    EXPECT_EQ(probe({"write", h + "/.gitconfig"}, {}, o).out, "ok\n");
    EXPECT_FALSE(std::filesystem::exists(h + "/.gitconfig"))
        << "written to the tmpfs, not the host";
    EXPECT_EQ(probe({"write", project + "/out"}, {}, o).out, "ok\n") << "the workspace over it";
    EXPECT_EQ(read_file(project + "/out"), "probe\n");
    // A profile's own HOME wins; "none" leaves the caller's HOME and mounts nothing.
    EXPECT_EQ(probe({"env", "HOME"}, {"--set", "process.env.set.HOME=/tmp"}, o).out, "/tmp\n");
    auto none = probe({"exists", h + "/.secret"}, {"--set", "filesystem.home=none"}, o);
    EXPECT_EQ(none.out, "no\n") << none.err;
    // No usable HOME: /root for uid 0 inside, /home/sandbox otherwise.
    o.env = {"HOME=/"};
    auto fallback = probe({"env", "HOME"}, {}, o);
    EXPECT_TRUE(fallback.out == "/root\n" || fallback.out == "/home/sandbox\n") << fallback.out;
    auto fallback_write =
        probe({"write", fallback.out.substr(0, fallback.out.size() - 1) + "/f"}, {}, o);
    EXPECT_EQ(fallback_write.out, "ok\n") << fallback_write.err;
}

// Read-only binds of a user's tree show it owned by the sandbox's user (as root: idmapped; as a
// user: its own files are its); host root's files stay unmapped (their private files unread).
TEST_P(RunTest, ReadOnlyBindsShowTheirOwners) {
    TempDir src;
    std::string repo = src / "repo";
    ASSERT_EQ(::mkdir(repo.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(src.path().c_str(), 0755), 0);
    write_file(repo + "/f", "x\n");
    if (!nobody()) {
        ASSERT_EQ(::chown(repo.c_str(), 1000, 1000), 0);
        ASSERT_EQ(::chown((repo + "/f").c_str(), 1000, 1000), 0);
    }
    auto ids = probe({"ids"});
    ASSERT_FALSE(ids.out.empty()) << ids.err;
    std::string me = ids.out.substr(0, ids.out.size() - 1);
    if (!nobody()) {  // nobody's are root's on the host: not its own
        auto r = probe({"owner", "/repo/f"}, {"--ro-bind", repo + ":/repo"});
        EXPECT_EQ(r.out, me + " 644\n") << r.err;
        EXPECT_EQ(probe({"owner", "/repo"}, {"--ro-bind", repo + ":/repo"}).out, me + " 755\n");
        EXPECT_EQ(probe({"write", "/repo/f"}, {"--ro-bind", repo + ":/repo"}).out, "EROFS\n");
    }
    EXPECT_EQ(probe({"owner", "/usr"}).out, "65534 65534 755\n") << "host root: unmapped";
    TempDir secret;  // a file only host root may read, bound read-only
    ASSERT_EQ(::chmod(secret.path().c_str(), 0755), 0);
    write_file(secret / "key", "private\n");
    ASSERT_EQ(::chmod((secret / "key").c_str(), 0600), 0);
    auto key = probe({"read", "/s/key"}, {"--ro-bind", secret.path() + ":/s"});
    EXPECT_EQ(key.out, "EACCES\n") << key.err;
    // Host root's, readable by its group only (as /etc/shadow): the group is not mapped either.
    ASSERT_EQ(::chown((secret / "key").c_str(), 0, 42), 0);
    ASSERT_EQ(::chmod((secret / "key").c_str(), 0640), 0);
    auto by_group = probe({"read", "/s/key"}, {"--ro-bind", (secret / "key") + ":/s/key"});
    EXPECT_EQ(by_group.out, "EACCES\n") << by_group.err;
    auto dir_group = probe({"read", "/s/key"}, {"--ro-bind", secret.path() + ":/s"});
    EXPECT_EQ(dir_group.out, "EACCES\n") << dir_group.err;
}

// Run from / (cron, a unit without WorkingDirectory=): the workspace bind is left out, not the
// whole host bound and not an error; the command starts in the sandbox's own /.
TEST_P(RunTest, RunFromTheRootDirectoryBindsNoWorkspace) {
    RunOptions o = opts();
    o.cwd = "/";
    auto r = probe({"exists", "/root/.."}, {}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(probe({"exists", "/var"}, {}, o).out, "no\n") << "the host's / is not bound";
    EXPECT_EQ(probe({"write", "/x"}, {}, o).out, "EROFS\n");
}

TEST_P(RunTest, ReadOnlyBindsCannotBeWritten) {
    EXPECT_EQ(probe({"write", "/usr/butter-probe-file"}).out, "EROFS\n");
    EXPECT_EQ(probe({"write", "/etc/butter-probe-file"}).out, "EROFS\n");
    EXPECT_EQ(probe({"write", "/new-file-in-root"}).out, "EROFS\n");
    EXPECT_EQ(probe({"write", "/proc/sys/kernel/hostname"}).out, "EROFS\n");
    if (::access("/proc/sysrq-trigger", F_OK) == 0) {  // absent without CONFIG_MAGIC_SYSRQ
        EXPECT_EQ(probe({"write", "/proc/sysrq-trigger"}).out, "EROFS\n");
    }
    struct stat st {};
    EXPECT_NE(::stat("/usr/butter-probe-file", &st), 0);
}

TEST_P(RunTest, WorkspaceIsWritableAndLandsOnTheHostWithItsOwner) {
    std::string file = work_ / "from-sandbox.txt";
    auto r = probe({"write", file});
    EXPECT_EQ(r.out, "ok\n") << r.err;
    EXPECT_EQ(read_file(file), "probe\n");
    struct stat st {
    }, dir{};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    ASSERT_EQ(::stat(work_.path().c_str(), &dir), 0);
    if (nobody()) {
        EXPECT_EQ(st.st_uid, 65534u);
        return;
    }
    // Root mode: uid 0 inside is an unprivileged host id. In a root-owned directory that others
    // may write, the sandbox writes as that id, never as root.
    EXPECT_EQ(dir.st_uid, 0u);
    EXPECT_NE(st.st_uid, 0u);
    EXPECT_NE(st.st_gid, 0u);
    // A user's directory is idmapped: the writes land as its owner.
    ASSERT_EQ(::chown(work_.path().c_str(), 12345, 12346), 0);
    ASSERT_EQ(::chmod(work_.path().c_str(), 0755), 0);
    std::string mine = work_ / "mine.txt";
    auto m = probe({"write", mine});
    EXPECT_EQ(m.out, "ok\n") << m.err;
    ASSERT_EQ(::stat(mine.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 12345u);
    EXPECT_EQ(st.st_gid, 12346u);
    // Root's own directory is bound read-only, saying so, unless the profile maps host root.
    ASSERT_EQ(::chown(work_.path().c_str(), 0, 0), 0);
    auto ro = probe({"write", work_ / "ro.txt"});
    EXPECT_NE(ro.out, "ok\n");
    EXPECT_NE(ro.err.find("is owned by root: bound read-only"), std::string::npos) << ro.err;
    auto mapped = probe({"write", work_ / "root.txt"}, {"--set", "filesystem.map_host_root=true"});
    EXPECT_EQ(mapped.out, "ok\n") << mapped.err;
    ASSERT_EQ(::stat((work_ / "root.txt").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
}

TEST_P(RunTest, PrivateTmpIsEmptyAndWritable) {
    auto r = probe({"write", "/tmp/scratch"});
    EXPECT_EQ(r.out, "ok\n") << r.err;
    struct stat st {};
    EXPECT_NE(::stat("/tmp/scratch", &st), 0) << "the sandbox's /tmp reached the host";
}

// "none" as Docker and bubblewrap have it: only the sandbox's own loopback, up ("loopback" is
// the same); "host" the host's interfaces.
TEST_P(RunTest, NoNetworkButItsOwnLoopback) {
    auto r = probe({"ifaces"});
    EXPECT_EQ(r.out, "lo:up\n") << r.err;
    auto up = probe({"ifaces"}, {"--set", "network.mode=loopback"});
    EXPECT_EQ(up.out, "lo:up\n") << up.err;
    // The host's: as many as it has (a VM without a network device has lo alone).
    std::size_t host_ifaces = 0;
    for (const auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
        (void)e;
        ++host_ifaces;
    }
    auto host = probe({"ifaces"}, {"--set", "network.mode=host"});
    EXPECT_EQ(static_cast<std::size_t>(std::count(host.out.begin(), host.out.end(), '\n')),
              host_ifaces)
        << host.out;
}

TEST_P(RunTest, HostLoopbackPortIsUnreachable) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(s, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    std::string port = std::to_string(ntohs(a.sin_port));
    auto r = probe({"connect", port});
    EXPECT_EQ(r.out, "ECONNREFUSED\n") << "the sandbox's own loopback has no listener";
    auto lo = probe({"connect", port}, {"--set", "network.mode=loopback"});
    EXPECT_EQ(lo.out, "ECONNREFUSED\n") << "the sandbox's own loopback has no listener";
    ::close(s);
}

TEST_P(RunTest, NoCapabilitiesNoNewPrivsAndSeccomp) {
    auto r = probe({"caps"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("CapEff=0000000000000000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapPrm=0000000000000000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("NoNewPrivs=1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Seccomp=2"), std::string::npos) << r.out;
}

TEST_P(RunTest, DeniedSyscallsFailWithTheProfilesErrno) {
    auto r = probe({"try-syscall", "mount"});
    EXPECT_EQ(r.out, "EPERM\n");
    // The filter, not just the missing capability: a different errno shows it.
    for (const char* sc : {"mount", "keyctl", "bpf", "perf_event_open", "userfaultfd", "swapon",
                           "init_module", "reboot", "ptrace"}) {
        auto e = probe({"try-syscall", sc}, {"--set", "seccomp.errno=\"EACCES\""});
        EXPECT_EQ(e.out, "EACCES\n") << sc << ": " << e.err;
    }
    auto allowed = probe({"try-syscall", "getpid"}, {"--set", "seccomp.errno=\"EACCES\""});
    EXPECT_EQ(allowed.code, 0);
}

TEST_P(RunTest, InheritedFdsAreClosed) {
    RunOptions o = opts();
    o.leak_fd = 5;
    auto r = probe({"fds"}, {}, o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "fds:\n");
}

TEST_P(RunTest, TimeLimitGives124AndLeavesNothing) {
    auto start = std::chrono::steady_clock::now();
    // The root and nobody runs of this test may overlap (ctest -j2): a tag of its own each.
    std::string tag = nobody() ? "4243" : "4242";
    auto r = probe({"ignore-term", tag},
                   {"--timeout", "300ms", "--set", "supervise.stop_timeout=\"300ms\""});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 124) << r.err;
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_TRUE(pids_matching("ignore-term " + tag).empty());
}

TEST_P(RunTest, ExitCodesFollowDesign) {
    EXPECT_EQ(run_butter({"run", "--", "sh", "-c", "exit 7"}, opts()).code, 7);
    EXPECT_EQ(run_butter({"run", "--", "sh", "-c", "kill -9 $$"}, opts()).code, 137);
    auto missing = run_butter({"run", "--", "no-such-command-xyz"}, opts());
    EXPECT_EQ(missing.code, 127);
    EXPECT_NE(missing.err.find("no-such-command-xyz: command not found"), std::string::npos)
        << missing.err;
    EXPECT_EQ(run_butter({"run", "--", "/etc/passwd"}, opts()).code, 126);  // not executable
    // A script without #! runs under sh, as a shell and execvp(3) run it.
    write_file(work_ / "nobang", "echo ran $1\nexit 3\n");
    ASSERT_EQ(::chmod((work_ / "nobang").c_str(), 0755), 0);
    auto nobang = run_butter({"run", "--", work_ / "nobang", "arg"}, opts());
    EXPECT_EQ(nobang.code, 3) << nobang.err;
    EXPECT_EQ(nobang.out, "ran arg\n");
    // Worded as a shell words them.
    auto dir = run_butter({"run", "--", "/usr"}, opts());
    EXPECT_EQ(dir.code, 126);
    EXPECT_NE(dir.err.find("butter: /usr: Is a directory"), std::string::npos) << dir.err;
    auto path = run_butter({"run", "--", "/no/such/file"}, opts());
    EXPECT_EQ(path.code, 127);
    EXPECT_NE(path.err.find("butter: /no/such/file: No such file or directory"), std::string::npos)
        << path.err;
    auto denied = run_butter({"run", "--", "/etc/passwd"}, opts());  // mode 644
    EXPECT_NE(denied.err.find("butter: /etc/passwd: Permission denied"), std::string::npos)
        << denied.err;
}

TEST_P(RunTest, BadProfileIsPositionedAnd125) {
    TempDir profiles;  // root's, 0755: a profile where others may write is refused
    ASSERT_EQ(::chmod(profiles.path().c_str(), 0755), 0);
    std::string bad = profiles / "bad.toml";
    write_file(bad, "description = \"x\"\n[process]\ncwdd = \"/\"\n");
    auto r = run_butter({"run", "-p", bad, "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.err, bad + ":3:1: unknown key 'process.cwdd' (did you mean 'process.cwd'?)\n");
}

// A profile that someone else, or a sandbox through a writable bind, could have written is
// refused, whatever it says (issue 31: a planted default.toml merged into untrusted).
TEST_P(RunTest, ProfilesOthersCouldWriteAreRefused) {
    std::string planted = work_ / "default.toml";  // work_ is 0777
    write_file(planted, "[namespaces]\nuser = false\n[process]\nno_new_privs = false\n");
    auto r = run_butter({"run", "-p", planted, "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.err, planted + ": profile not trusted: '" + work_.path() +
                         "' is writable by others (mode 0777; chmod go-w it)\n");
    // On the search path too; and the shipped profiles extend the built-in default, not a
    // "default" the path holds.
    RunOptions o = opts();
    o.env = {"BUTTER_PROFILE_PATH=" + work_.path() + ":" + profiles_src()};
    auto named = run_butter({"run", "-p", "default", "--", "true"}, o);
    EXPECT_EQ(named.code, 125);
    EXPECT_NE(named.err.find("profile not trusted"), std::string::npos) << named.err;
    auto untrusted = run_butter({"run", "-p", "untrusted", "--", "/bin/true"}, o);
    EXPECT_EQ(untrusted.code, 0) << untrusted.err;
    // A file of another user's (as root: uid 12345's) is refused as well.
    if (nobody()) return;
    TempDir other;
    ASSERT_EQ(::chmod(other.path().c_str(), 0755), 0);
    std::string theirs = other / "p.toml";
    write_file(theirs, "description = \"x\"\n");
    ASSERT_EQ(::chown(theirs.c_str(), 12345, 12345), 0);
    auto foreign = run_butter({"run", "-p", theirs, "--", "true"}, opts());
    EXPECT_EQ(foreign.code, 125);
    EXPECT_NE(foreign.err.find("belongs to uid 12345"), std::string::npos) << foreign.err;
}

TEST_P(RunTest, ChildSetupErrorNamesStepPathAndErrno) {
    auto r = run_butter({"run", "--set", "process.cwd=\"/no/such/dir\"", "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.err,
              "butter: setup failed: working directory: chdir(\"/no/such/dir\"): No such file or "
              "directory\n");
}

TEST_P(RunTest, MissingBindSourceIsAnError) {
    auto r = run_butter({"run", "--bind", "/no/such/source", "--", "true"}, opts());
    EXPECT_EQ(r.code, 125);
    EXPECT_EQ(r.err, "--bind /no/such/source: mount source '/no/such/source' does not exist\n");
}

TEST_P(RunTest, SignalsAreForwarded) {
    auto s = start_butter(
        {"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--", "/probe", "wait-signal"},
        opts());
    ASSERT_GT(s.pid, 0);
    EXPECT_EQ(read_line(s.out_fd), "ready");
    ::kill(s.pid, SIGHUP);
    EXPECT_EQ(read_line(s.out_fd), "got HUP");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
}

TEST_P(RunTest, KillingButterKillsTheSandbox) {
    auto s = start_butter({"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--", "/probe",
                           "wait-signal", nobody() ? "7374" : "7373"},
                          opts());
    std::string needle = std::string("wait-signal ") + (nobody() ? "7374" : "7373");
    ASSERT_EQ(read_line(s.out_fd), "ready");
    ASSERT_FALSE(pids_matching(needle).empty());
    ::kill(s.pid, SIGKILL);
    wait_butter(s.pid);
    ::close(s.out_fd);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        gone = pids_matching(needle).empty();
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(gone) << "the sandboxed command outlived butter";
}

TEST_P(RunTest, InitReapsOrphans) {
    auto r = probe({"orphans", "20"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "0\n") << "zombies left";
}

TEST_P(RunTest, DaemonDoesNotOutliveTheSandbox) {
    std::string tag = nobody() ? "daemon-nobody" : "daemon-root";
    auto r = probe({"spawn-daemon", tag});
    EXPECT_EQ(r.out, "spawned\n") << r.err;
    EXPECT_TRUE(pids_matching("spawn-daemon " + tag).empty());
}

TEST_P(RunTest, ProcIsTheSandboxsOwnAndMasked) {
    // Masked with an empty file where the host has them.
    for (const char* f : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kmsg"}) {
        if (::access(f, F_OK) == 0) {
            EXPECT_EQ(probe({"read", f}).out, "\n") << f;
        }
    }
    if (::access("/proc/acpi", F_OK) == 0) {
        EXPECT_EQ(probe({"write", "/proc/acpi/x"}).out, "EROFS\n");
    }
    EXPECT_EQ(probe({"read", "/proc/1/comm"}).out, "butter-init\n");
}

// /dev is a directory of the tmpfs root bound in place, /dev/shm a sticky world-writable
// directory in it, a masked /proc directory an empty read-only one; with a directory as the
// root, /dev is a tmpfs of its own and the masks one made for them. Root mode: the device
// nodes and /dev/null come from the supervisor, with CAP_SYS_ADMIN kept from the child.
TEST_P(RunTest, DevShmAndMaskedProcDirs) {
    bool acpi = ::access("/proc/acpi", F_OK) == 0;
    for (int variant = 0; variant < 3; ++variant) {
        bool tmpfs_root = variant != 1;
        SCOPED_TRACE(variant == 0   ? "tmpfs root"
                     : variant == 1 ? "directory root"
                                    : "CAP_SYS_ADMIN kept");
        TempDir root;
        ASSERT_EQ(::chmod(root.path().c_str(), 0777), 0);
        std::vector<std::string> extra;
        if (!tmpfs_root) extra = {"--set", "filesystem.root=\"" + root.path() + "\""};
        if (variant == 2) extra = {"--set", "capabilities.keep=[\"CAP_SYS_ADMIN\"]"};
        std::string fs = tmpfs_root ? "same" : "other";
        auto dev = probe({"dir", "/dev"}, extra);
        EXPECT_EQ(dev.out.substr(0, 4), "755 ") << dev.err;
        EXPECT_EQ(dev.out.substr(dev.out.size() - fs.size() - 1), fs + "\n");
        EXPECT_EQ(probe({"dir", "/dev/shm"}, extra).out, "1777 0 " + fs + "\n");
        EXPECT_EQ(probe({"write", "/dev/shm/x"}, extra).out, "ok\n");
        EXPECT_EQ(probe({"write", "/dev/full"}, extra).out, "ENOSPC\n");  // the device
        if (::access("/proc/keys", F_OK) == 0) {
            EXPECT_EQ(probe({"read", "/proc/keys"}, extra).out, "\n");
        }
        if (acpi) {
            EXPECT_EQ(probe({"dir", "/proc/acpi"}, extra).out, "755 0 " + fs + "\n");
            EXPECT_EQ(probe({"write", "/proc/acpi/x"}, extra).out, "EROFS\n");
        }
    }
}

TEST_P(RunTest, RunsAsUserZeroOrSelf) {
    auto r = probe({"ids"});
    EXPECT_EQ(r.out, nobody() ? "65534 65534\n" : "0 0\n");
    if (nobody()) {
        auto zero = probe({"ids"}, {"--set", "process.user=0", "--set", "process.group=0"});
        EXPECT_EQ(zero.out, "0 0\n") << zero.err;
    }
}

// The sandbox is cloned while butter reads the profile and is moved to another CPU meanwhile
// (launcher/spawn.hpp); a plan with other namespaces (here: the host's network) starts its own. The
// command must not tell the two apart: the same CPUs as butter's, signal mask, capabilities,
// filter.
TEST_P(RunTest, EarlyStartGivesTheCommandWhatAnyStartDoes) {
    auto fields = [](const std::string& status) {
        std::string out;
        std::istringstream in(status);
        for (std::string line; std::getline(in, line);)
            for (const char* key : {"Cpus_allowed_list:", "SigBlk:", "SigIgn:", "CapInh:",
                                    "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:",
                                    "Seccomp_filters:", "Uid:", "Gid:", "Groups:"})
                if (line.starts_with(key)) out += line + "\n";
        return out;
    };
    auto early = run_butter({"run", "--", "cat", "/proc/self/status"}, opts());
    ASSERT_EQ(early.code, 0) << early.err;
    auto usual = run_butter({"run", "--set", "namespaces.net=false", "--set",
                             "network.mode=\"host\"", "--", "cat", "/proc/self/status"},
                            opts());
    ASSERT_EQ(usual.code, 0) << usual.err;
    EXPECT_EQ(fields(early.out), fields(usual.out));
    std::string own = read_file("/proc/self/status");
    auto at = own.find("Cpus_allowed_list:");
    ASSERT_NE(at, std::string::npos);
    std::string cpus = own.substr(at, own.find('\n', at) - at);
    EXPECT_NE(early.out.find(cpus + "\n"), std::string::npos) << early.out;
}

// A namespace the kernel refuses (here: the user namespace butter runs in allows no network
// namespace) is one line naming the call and errno, exit 125, both for the early start and for
// the usual one (a time namespace does not fit the early child).
TEST(RunLimits, RefusedNamespaceIsAOneLineError) {
    BUTTER_REQUIRE_ROOT();
    TempDir work;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    RunOptions o;
    o.no_net_namespaces = true;
    o.as_nobody = true;
    o.cwd = work.path();
    // (Where the profile allows a lower tier, the run goes on in it: tier_test.cpp.)
    const std::string no_lower =
        " (isolation.minimum = \"namespaces\": no lower tier; --set "
        "isolation.minimum=landlock allows the landlock tier)\n";
    auto early = run_butter({"run", "--set", "isolation.minimum=namespaces", "--", "true"}, o);
    EXPECT_EQ(early.code, 125);
    // (BUTTER_SPAWN=fork, the CI lane without the early child, and sanitizer builds, which
    // clone fork-like: the usual start's message. The test reads the mode as butter does.)
    auto mode = launcher::spawn_mode_from_env();
    ASSERT_TRUE(mode.has_value());
    EXPECT_EQ(
        early.err,
        *mode == launcher::SpawnMode::Fork
            ? "butter: isolation: clone3: No space left on device" + no_lower
            : "butter: setup failed: namespaces: unshare: No space left on device" + no_lower);
    auto usual = run_butter({"run", "--set", "isolation.minimum=namespaces", "--set",
                             "namespaces.time=true", "--", "true"},
                            o);
    EXPECT_EQ(usual.code, 125);
    EXPECT_EQ(usual.err, "butter: isolation: clone3: No space left on device" + no_lower);
}

TEST(RunAsRoot, NamedUserInside) {
    BUTTER_REQUIRE_ROOT();
    auto r = run_butter({"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--set",
                         "process.user=\"nobody\"", "--", "/probe", "ids"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "65534 65534\n");
}

// Root mode's idmapped bind of $PWD is a clone that the supervisor makes of the host's mount.
// A clone of a shared mount is its peer: a mount the sandbox made below $PWD would show on the
// host. The host side here: a shared tmpfs in a mount namespace of the test's own.
TEST(RunAsRoot, SandboxMountsDoNotReachTheHost) {
    BUTTER_REQUIRE_ROOT();
    TempDir w;
    const char* script =
        "mount -t tmpfs none \"$1\" && mount --make-shared \"$1\" && mkdir \"$1/sub\" && "
        "cd \"$1\" && \"$2\" run --set 'capabilities.keep=[\"CAP_SYS_ADMIN\"]' "
        "--set 'seccomp.deny=[]' -- /bin/sh -c 'mount -t tmpfs none sub && echo mounted' && "
        "grep -c \" $1/sub \" /proc/self/mountinfo";
    RunOptions o;
    o.program = "/usr/bin/unshare";
    auto r = run_butter({"--mount", "/bin/sh", "-c", script, "sh", w.path(), butter_bin()}, o);
    EXPECT_EQ(r.out, "mounted\n0\n") << r.err;
}

// A sandbox that keeps CAP_SYS_ADMIN (and may mount) can clear the read-only flag of a bind
// made outside it: such a bind must never be idmapped to host root's files (it would write as
// host root), whether the profile made it read-only or butter did (a root-owned workspace).
TEST(RunAsRoot, KeptSysAdminCannotWriteThroughAReadOnlyBind) {
    BUTTER_REQUIRE_ROOT();
    TempDir work;  // root's, 0755: bound read-only
    TempDir ro;
    ASSERT_EQ(::chmod(work.path().c_str(), 0755), 0);
    ASSERT_EQ(::chmod(ro.path().c_str(), 0755), 0);
    write_file(ro / "f", "host\n");
    RunOptions o;
    o.cwd = work.path();
    std::string script = "mount -o remount,bind,rw " + work.path() + " && touch " +
                         (work / "pwned") +
                         "; mount -o remount,bind,rw /ro && echo x > /ro/f; true";
    auto r = run_butter(
        {"run", "--set", "capabilities.keep=[\"CAP_SYS_ADMIN\"]", "--set", "seccomp.deny=[]",
         "--ro-bind", ro.path() + ":/ro", "--", "/bin/sh", "-c", script},
        o);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(std::filesystem::exists(work / "pwned")) << r.err;
    EXPECT_EQ(read_file(ro / "f"), "host\n") << r.err;
}

// process.user and process.group by name: the sandbox's own /etc (here a bind of a directory
// holding only its passwd and group), then the host's; no NSS inside butter itself.
TEST(RunAsRoot, UserNamesComeFromTheSandboxsEtcThenTheHosts) {
    BUTTER_REQUIRE_ROOT();
    TempDir work, etc;
    ASSERT_EQ(::chmod(work.path().c_str(), 0777), 0);
    ASSERT_EQ(::chmod(etc.path().c_str(), 0755), 0);
    write_file(etc / "passwd", "root:x:0:0::/root:/bin/sh\nbuilder:x:4321:4400::/:/bin/sh\n");
    write_file(etc / "group", "root:x:0:\nbuilders:x:4500:\n");
    RunOptions o;
    o.cwd = work.path();
    auto run = [&](std::vector<std::string> set) {
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe",
                                      "--ro-bind", etc.path() + ":/etc"};
        for (const auto& s : set) {
            args.push_back("--set");
            args.push_back(s);
        }
        args.insert(args.end(), {"--", "/probe", "ids"});
        return run_butter(args, o);
    };
    auto only_inside = run({"process.user=builder"});
    EXPECT_EQ(only_inside.out, "4321 4400\n") << only_inside.err;  // its primary group
    auto group = run({"process.user=builder", "process.group=builders"});
    EXPECT_EQ(group.out, "4321 4500\n") << group.err;
    auto only_host = run({"process.user=nobody"});  // not in the sandbox's passwd
    EXPECT_EQ(only_host.out, "65534 65534\n") << only_host.err;
    auto none = run({"process.user=no-such-user-anywhere"});
    EXPECT_EQ(none.code, 125);
    EXPECT_NE(none.err.find("process.user: no user named 'no-such-user-anywhere'"),
              std::string::npos)
        << none.err;
}

// A workspace's .git that root owns (0700) stays as unreadable inside as it is to others: the
// read-only bind over it maps no root ids.
TEST(RunAsRoot, RootsGitInAUsersWorkspaceStaysUnreadable) {
    BUTTER_REQUIRE_ROOT();
    TempDir ws;
    ASSERT_EQ(::chown(ws.path().c_str(), 1000, 1000), 0);
    ASSERT_EQ(::mkdir((ws / ".git").c_str(), 0700), 0);
    write_file(ws / ".git/secret", "root's\n");
    ASSERT_EQ(::chmod((ws / ".git/secret").c_str(), 0600), 0);
    RunOptions o;
    o.cwd = ws.path();
    auto r = run_butter({"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--", "/probe",
                         "read", ws / ".git/secret"},
                        o);
    EXPECT_EQ(r.out, "EACCES\n") << r.err;
}

// The Landlock layer is on in every run where the kernel has Landlock, and the report says
// what confined the command.
TEST_P(RunTest, LandlockLayerIsOnAndTheReportSaysSo) {
    auto abi = ::butter::landlock_abi_version();
    std::string report = work_.path() + "/report.json";
    auto r = run_butter({"run", "--report", report, "--", "/bin/sh", "-c",
                         "cat /etc/hostname >/dev/null && echo x > /tmp/x && echo ran"},
                        opts());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "ran\n");
    std::string json = read_file(report);
    EXPECT_NE(json.find("\"tier\": \"namespaces\""), std::string::npos) << json;
    if (abi) {
        EXPECT_NE(json.find("\"landlock_abi\": " + std::to_string(*abi)), std::string::npos)
            << json;
        EXPECT_EQ(json.find("\"landlock_paths\": 0,"), std::string::npos) << json;
    }
}

// landlock.tcp_connect: the listed ports only (EACCES for the rest), below the program.
TEST_P(RunTest, LandlockTcpConnectAllowsTheListedPortsOnly) {
    auto abi = ::butter::landlock_abi_version();
    BUTTER_REQUIRE(abi && *abi >= 4, "LANDLOCK_NET", "Landlock ABI 4 (TCP ports) unavailable");
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(l, 0);
    struct sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l, 4), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
    int port = ntohs(a.sin_port);
    std::string script =
        "import socket, errno\n"
        "for p in (" +
        std::to_string(port) + ", " + std::to_string(port == 65535 ? 1 : port + 1) +
        "):\n"
        "    s = socket.socket()\n"
        "    try:\n"
        "        s.connect(('127.0.0.1', p)); print('ok')\n"
        "    except OSError as e:\n"
        "        print(errno.errorcode[e.errno])\n";
    auto r = run_butter({"run", "--set", "network.mode=host", "--set",
                         "landlock.tcp_connect=[" + std::to_string(port) + "]", "--",
                         "/usr/bin/python3", "-c", script},
                        opts());
    ::close(l);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "ok\nEACCES\n") << r.err;
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, RunTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

}  // namespace
}  // namespace butter::test
