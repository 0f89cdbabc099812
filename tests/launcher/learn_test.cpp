// butter learn's profile from what a run did, without running anything: files folded into
// their directory when most of it was read, secrets only as a comment, caches as a tmpfs,
// what BASE covers left out, syscall groups, destinations by name, the hints of a refused run.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <array>
#include <csignal>
#include <string>

#include "../support/tmpdir.hpp"
#include "learn/learn.hpp"
#include "profile/loader.hpp"
#include "profile/toml_reader.hpp"
#include "seccomp/policy.hpp"

namespace butter::launcher {
namespace {

using test::TempDir;
using test::write_file;
using Learned = RunOutcome::Learned;

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

struct Fixture {
    profile::Loaded base;
    SandboxPlan plan;
    RunOutcome outcome;
    explicit Fixture(std::string_view text = {}) {
        profile::LoadOptions o;
        o.search_path = {};
        o.expansion = {"/work", "/home/me", "1000"};
        base = text.empty() ? profile::load(std::nullopt, o)
                            : profile::load_text(text, "base.toml", o);
        MountStep usr;
        usr.source = "/usr";
        usr.target = "/usr";
        usr.read_only = true;
        MountStep work;
        work.target = "/work";
        plan.mounts = {usr, work};
        outcome.wall = std::chrono::seconds(1);
        outcome.max_rss_bytes = 10 << 20;
    }
    std::string propose() {
        learn::Input in;
        in.extends = "default";
        in.tree = &base.tree;
        in.base = &base.profile;
        in.base_plan = &plan;
        in.outcome = &outcome;
        in.command = {"prog", "a b\n[x]"};
        return learn::propose(in);
    }
};

TEST(Learn, FilesFoldSecretsStayCommentsCachesAreTmpfs) {
    TempDir host;
    const std::string d = host.path();
    for (const char* sub : {"/lib", "/few", "/.ssh"})
        ASSERT_EQ(::mkdir((d + sub).c_str(), 0755), 0);
    for (const char* f : {"a", "b", "c"})
        write_file(d + "/lib/" + std::string(f), "x");
    write_file(d + "/few/one", "x");
    for (const char* f : {"two", "three", "four"})
        write_file(d + "/few/" + std::string(f), "x");
    ASSERT_EQ(::mkdir((d + "/out").c_str(), 0755), 0);
    write_file(d + "/.ssh/id_ed25519", "secret");
    Fixture f;
    auto& p = f.outcome.learned.paths;
    p[d + "/lib/a"] = Learned::Read;
    p[d + "/lib/b"] = Learned::Exec;
    p[d + "/few/one"] = Learned::Read;
    p[d + "/out/new.txt"] = Learned::Write | Learned::Create;
    p[d + "/.ssh/id_ed25519"] = Learned::Read;
    p[d + "/missing"] = Learned::Read;        // looked for, not there
    p["/usr/lib/libc.so.6"] = Learned::Read;  // BASE's
    p["/usr/share/x"] = Learned::Write;       // under BASE's read-only /usr
    p["/work/f"] = Learned::Write;            // BASE's writable
    p["/var/tmp/scratch"] = Learned::Write | Learned::Create;
    p["/proc/self/status"] = Learned::Read;
    std::string text = f.propose();
    // Two of lib's three entries: lib, read-only; one of few's four: that file.
    EXPECT_TRUE(has(text, "source = \"" + d + "/lib\", target = \"" + d +
                              "/lib\", read_only = true },  # most of its entries read and "
                              "executed\n"))
        << text;
    EXPECT_TRUE(has(text, "source = \"" + d + "/few/one\"")) << text;
    EXPECT_FALSE(has(text, d + "/few\"")) << text;
    EXPECT_TRUE(has(text, "{ type = \"bind\", source = \"" + d + "/out\", target = \"" + d +
                              "/out\" },  # tried to write and create in\n"))
        << text;
    EXPECT_TRUE(has(text, "  # { type = \"bind\", source = \"" + d + "/.ssh/id_ed25519\"")) << text;
    EXPECT_TRUE(has(text, "NOT proposed: may hold ssh keys")) << text;
    EXPECT_TRUE(has(text, "{ type = \"tmpfs\", target = \"/var/tmp\" },  # a cache")) << text;
    EXPECT_TRUE(has(text, "# /usr: written under, but default mounts it read-only")) << text;
    EXPECT_FALSE(has(text, "missing")) << text;
    EXPECT_FALSE(has(text, "/proc/self")) << text;
    EXPECT_FALSE(has(text, "libc.so")) << text;
    // The command line's line break stays in its comment.
    EXPECT_TRUE(has(text, "from a run of: prog a b\\x0a[x]\n")) << text;
    // Stable: the same input, the same text.
    EXPECT_EQ(f.propose(), text);
}

TEST(Learn, ADirectoryGivenWholeHidesItsSecretsAndNothingBecomesTheRoot) {
    TempDir host;
    const std::string d = host.path();
    ASSERT_EQ(::mkdir((d + "/app").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((d + "/app/.ssh").c_str(), 0700), 0);
    write_file(d + "/app/.ssh/id_rsa", "key");
    write_file(d + "/app/.netrc", "password");
    write_file(d + "/app/conf", "x");
    Fixture f;
    auto& p = f.outcome.learned.paths;
    p[d + "/app"] = Learned::List;
    // mkdir -p of what exists tried nothing; a file made at the root is no bind.
    p["/opt"] = Learned::Create;
    p[d] = Learned::Create;
    p["/newfile"] = Learned::Create | Learned::Write;
    std::string text = f.propose();
    const std::string bind = "  { type = \"bind\", source = \"" + d + "/app\", target = \"" + d +
                             "/app\", read_only = true },  # listed\n";
    const std::string netrc = "  { type = \"bind\", source = \"/dev/null\", target = \"" + d +
                              "/app/.netrc\", read_only = true },  # hides what may hold "
                              "passwords in " +
                              d + "/app\n";
    const std::string ssh = "  { type = \"tmpfs\", target = \"" + d +
                            "/app/.ssh\", read_only = true },  # hides what may hold ssh keys in " +
                            d + "/app\n";
    // Each mask after the directory's bind.
    ASSERT_TRUE(has(text, bind + netrc + ssh)) << text;
    EXPECT_FALSE(has(text, "target = \"/\" }")) << text;
    EXPECT_FALSE(has(text, "source = \"/opt\"")) << text;
    EXPECT_TRUE(has(text, "# /newfile: tried to create it, in /, which is no bind of its own"))
        << text;
}

TEST(Learn, OneBindADirectoryEveryKindOfSecretNoBytesTomlCannotHold) {
    TempDir host;
    const std::string d = host.path();
    ASSERT_EQ(::mkdir((d + "/proj").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((d + "/proj/sub").c_str(), 0755), 0);
    for (const char* f :
         {"/proj/.npmrc", "/proj/id_rsa", "/proj/sub/server.pem", "/proj/.env", "/proj/ok.txt"})
        write_file(d + f, "x");
    ASSERT_EQ(::symlink("/nonexistent", (d + "/proj/.aws").c_str()), 0);
    write_file(d + "/bad\xff\xfe", "x");
    Fixture f;
    auto& p = f.outcome.learned.paths;
    p[d + "/proj"] = Learned::List;
    p[d + "/proj/new"] = Learned::Create | Learned::Write;  // the same directory, writable
    p[d + "/bad\xff\xfe"] = Learned::Read;
    p["/usr/lib"] = Learned::Create;  // mkdir -p of what BASE has: nothing
    std::string text = f.propose();
    // One bind of proj, writable, with both uses.
    EXPECT_TRUE(has(text, "{ type = \"bind\", source = \"" + d + "/proj\", target = \"" + d +
                              "/proj\" },  # listed; tried to write and create in\n"))
        << text;
    EXPECT_FALSE(has(text, "/proj\", read_only = true }")) << text;
    for (const char* masked :
         {"/proj/.npmrc", "/proj/id_rsa", "/proj/sub/server.pem", "/proj/.env"}) {
        std::string line = "{ type = \"bind\", source = \"/dev/null\", target = \"" + d + masked +
                           "\", read_only = true }";
        EXPECT_TRUE(has(text, line)) << masked << "\n" << text;
        EXPECT_EQ(text.find(line), text.rfind(line)) << "once: " << masked;
    }
    EXPECT_FALSE(has(text, "ok.txt")) << text;
    EXPECT_TRUE(has(text, "# " + d +
                              "/proj/.aws: named like what holds cloud credentials, but "
                              "not a file or directory"))
        << text;
    EXPECT_TRUE(has(text, "/bad\\xff\\xfe: not valid UTF-8")) << text;
    EXPECT_FALSE(has(text, "/usr: written under")) << text;
    // Every byte of the profile is UTF-8 (what `butter check` reads).
    for (unsigned char c : text)
        ASSERT_LT(c, 0x80) << text;
}

TEST(Learn, MergeKeepsAnEarlierRunsGitAndLargerLimits) {
    Fixture f;
    profile::Diagnostics d;
    auto earlier = profile::parse_toml(
        "extends = \"default\"\n[filesystem]\nwritable_git = true\n[limits]\ntime = \"5m\"\n"
        "memory = \"1G\"\npids = 8\nopen_files = 4096\n",
        "earlier.toml", d);
    ASSERT_TRUE(earlier);
    learn::Input in;
    in.extends = "default";
    in.tree = &f.base.tree;
    in.base = &f.base.profile;
    in.base_plan = &f.plan;
    in.outcome = &f.outcome;
    in.merge = &*earlier;
    in.merge_name = "earlier.toml";
    f.outcome.peak_memory = 10 << 20;
    f.outcome.peak_pids = 2;
    std::string text = learn::propose(in);
    EXPECT_TRUE(has(text, "writable_git = true  # kept from earlier.toml\n")) << text;
    EXPECT_TRUE(has(text, "time = \"5m\"  # kept from earlier.toml\n")) << text;
    EXPECT_TRUE(has(text, "memory = \"1G\"  # kept from earlier.toml\n")) << text;
    EXPECT_TRUE(has(text, "pids = 16  # it ran fewer")) << text;  // larger than the earlier 8
    EXPECT_TRUE(has(text, "\nopen_files = 4096  # kept from earlier.toml\n")) << text;
}

TEST(Learn, SyscallsDestinationsAndLimits) {
    Fixture f;
    f.outcome.learned.syscalls["keyctl"].count = 2;
    f.outcome.learned.syscalls["io_uring_setup"].refused = true;
    f.outcome.learned.syscalls["socket"].arg0 = {16};
    for (const char* n : {"reboot", "kexec_load", "kexec_file_load"})
        f.outcome.learned.syscalls[n].count = 1;
    f.outcome.network = {{"dns", "web.test", "", 0, "", "audit", 1},
                         {"connection", "web.test", "203.0.113.5", 443, "tcp", "audit", 2},
                         {"connection", "", "2001:db8::1", 53, "udp", "audit", 1},
                         {"connection", "", "203.0.113.9", 0, "icmp", "audit", 1}};
    f.outcome.wall = std::chrono::seconds(20);
    f.outcome.peak_memory = 100ull << 20;
    f.outcome.peak_pids = 3;
    f.outcome.learned.max_fd = 40;
    std::string text = f.propose();
    EXPECT_TRUE(has(text, "  \"@reboot\",  # every member called")) << text;
    EXPECT_FALSE(has(text, "\"kexec_load\"")) << text;
    EXPECT_TRUE(has(text, "  \"keyctl\",  # called, and denied by default\n")) << text;
    EXPECT_TRUE(has(text,
                    "  # \"io_uring_setup\",  # called, and denied by default: NOT proposed "
                    "(refused while learning too: io_uring's requests skip every seccomp "
                    "rule)"))
        << text;
    EXPECT_TRUE(has(text, "  \"socket\",  # called, and denied by default (families 16)\n"))
        << text;
    EXPECT_TRUE(has(text, "mode = \"user\"")) << text;
    EXPECT_TRUE(has(text, "  \"udp:[2001:db8::1]:53\",  # connected to 2001:db8::1\n")) << text;
    EXPECT_TRUE(has(text, "  \"web.test:443\",  # connected to 203.0.113.5\n")) << text;
    EXPECT_FALSE(has(text, "203.0.113.9")) << text;
    EXPECT_TRUE(has(text, "time = \"1m\"")) << text;
    EXPECT_TRUE(has(text, "\nmemory = \"256M\"")) << text;
    EXPECT_TRUE(has(text, "\npids = 16")) << text;
    EXPECT_TRUE(has(text, "\n# open_files = 128  # its descriptors stayed below half")) << text;
    EXPECT_FALSE(has(text, "rules = [")) << "a deny list's socket is no allow list's";
}

TEST(Learn, AnAllowListGetsRulesForTheArgumentsSeen) {
    Fixture f("[seccomp]\ndefault = \"errno:ENOSYS\"\nallow = [\"read\"]\n");
    ASSERT_TRUE(f.base.ok());
    f.outcome.learned.syscalls["socket"].arg0 = {1, 10};
    f.outcome.learned.syscalls["ioctl"].arg1 = {0x5401};
    std::string text = f.propose();
    EXPECT_TRUE(has(text,
                    "  \"read\",\n  \"ioctl\",  # called, and denied by default (requests "
                    "0x5401)\n"))
        << text;
    EXPECT_TRUE(has(text,
                    "  { syscall = \"socket\", unless = { arg0 = [1, 10] }, action = "
                    "\"errno:EAFNOSUPPORT\" },  # the socket families the run used\n"))
        << text;
    EXPECT_TRUE(has(text,
                    "  { syscall = \"ioctl\", unless = { arg1 = [21505] }, action = "
                    "\"errno:ENOTTY\" },  # the ioctl requests the run made\n"))
        << text;
}

TEST(Learn, ButtersOwnRulesAnswerWhatTheFilterNoLongerHolds) {
    using seccomp::implicit_rule_errno;
    seccomp::ImplicitChecks all;
    std::array<std::uint64_t, 6> a{};
    a[1] = 04755;
    EXPECT_EQ(implicit_rule_errno("chmod", a, all), EPERM);
    a[1] = 0755;
    EXPECT_EQ(implicit_rule_errno("chmod", a, all), 0);
    a = {static_cast<std::uint64_t>(AT_FDCWD), 0, O_CREAT | O_WRONLY, 02755};
    EXPECT_EQ(implicit_rule_errno("openat", a, all), EPERM);
    a = {0, 0, 02000};
    EXPECT_EQ(implicit_rule_errno("fchmodat", a, all), EPERM);
    EXPECT_EQ(implicit_rule_errno("openat2", a, all), ENOSYS);
    EXPECT_EQ(implicit_rule_errno("setxattr", a, all), EOPNOTSUPP);
    a = {CLONE_NEWUSER | SIGCHLD};
    EXPECT_EQ(implicit_rule_errno("unshare", a, all), EPERM);
    EXPECT_EQ(implicit_rule_errno("clone3", a, all), ENOSYS);
    EXPECT_EQ(implicit_rule_errno("keyctl", a, all), 0);
    seccomp::ImplicitChecks none{false, false, false, EPERM};
    EXPECT_EQ(implicit_rule_errno("unshare", a, none), 0);
}

TEST(Learn, HintsSayWhichKeyToAdd) {
    SandboxPlan plan;
    RunOutcome o;
    o.denied = {{"keyctl", 1}, {"ptrace", 2}};
    plan.seccomp_listed_denials = {"ptrace"};
    o.network = {{"connection", "other.test", "203.0.113.6", 80, "tcp", "refused", 1},
                 {"dns", "nope.test", "", 0, "", "refused", 1}};
    auto h = learn::hints(plan, o);
    EXPECT_EQ(h, (std::vector<std::string>{
                     "add \"keyctl\" to seccomp.allow", "remove \"ptrace\" from seccomp.deny",
                     "add \"other.test:80\" to network.allow",
                     "add \"nope.test:PORT\" to network.allow (its DNS was refused)"}));
}

}  // namespace
}  // namespace butter::launcher
