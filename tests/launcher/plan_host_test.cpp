// make_plan against hosts of the test's making (fake_host.hpp): what the plan decides from the
// host's facts, with nothing read from this machine.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include "../support/fake_host.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"

namespace butter::launcher {
namespace {

using test::FakeHost;

profile::Profile profile_of(const std::string& toml) {
    profile::LoadOptions o;
    o.search_path = {};
    o.expansion = {"/work", "/home/me", "1000"};
    profile::Loaded l = profile::load_text(toml, "test.toml", o);
    EXPECT_TRUE(l.ok()) << (l.diagnostics.empty() ? "" : l.diagnostics[0].render());
    return l.profile;
}

std::optional<SandboxPlan> plan_on(const FakeHost& host, const std::string& toml,
                                   profile::Diagnostics& d) {
    PlanOptions o;
    o.argv = {"make", "test"};
    o.host = &host;
    return make_plan(profile_of(toml), o, d);
}

std::string errors(const profile::Diagnostics& d) {
    std::string s;
    for (const auto& x : d)
        if (x.is_error()) s += x.render() + "\n";
    return s;
}

const MountStep* mount_at(const SandboxPlan& p, const std::string& target) {
    for (const MountStep& m : p.mounts)
        if (m.target == target) return &m;
    return nullptr;
}

constexpr const char* kWorkspace = R"(extends = "builtin:default"
[filesystem]
mounts = [
  { type = "bind", source = "/usr", target = "/usr", read_only = true },
  { type = "bind", source = "/bin", target = "/bin" },
  { type = "bind", source = "$PWD", target = "$PWD" },
  { type = "bind", source = "/tmp", target = "/tmp" },
]
)";

TEST(PlanOnAHost, RootMapsTheHostsSubordinateRangeAndIdmapsByOwner) {
    FakeHost host;
    host.root_ = true;
    host.uid_ = host.gid_ = 0;
    host.subuid = {0, 200000, 65536};
    host.subgid = {0, 300000, 65536};
    profile::Diagnostics d;
    auto plan = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(plan) << errors(d);
    EXPECT_TRUE(plan->privileged);
    EXPECT_FALSE(plan->child_writes_maps);
    ASSERT_EQ(plan->uid_map.size(), 1u);
    EXPECT_EQ(plan->uid_map[0].outside, 200000u);
    EXPECT_EQ(plan->gid_map[0].outside, 300000u);
    // The caller's workspace: written as its owner. /tmp (root's, world-writable): as the
    // sandbox's own ids. /bin: the host's symlink, the same inside.
    const MountStep* work = mount_at(*plan, "/work");
    ASSERT_NE(work, nullptr);
    EXPECT_TRUE(work->idmap);
    EXPECT_EQ(work->source_uid, 1000u);
    EXPECT_TRUE(work->map_owner);
    const MountStep* tmp = mount_at(*plan, "/tmp");
    ASSERT_NE(tmp, nullptr);
    EXPECT_FALSE(tmp->map_owner);
    EXPECT_FALSE(tmp->map_group);
    EXPECT_FALSE(tmp->idmap) << "a plain bind: the sandbox's own ids";
    EXPECT_FALSE(tmp->read_only);
    const MountStep* bin = mount_at(*plan, "/bin");
    ASSERT_NE(bin, nullptr);
    EXPECT_EQ(bin->type, profile::MountType::Symlink);
    EXPECT_EQ(bin->source, "usr/bin");
}

// session = "auto" (the default profile's): a pty when butter's stdin, stdout and stderr are
// terminals and the profile passes stdin on; input stdin = "null" drops is a warning.
TEST(PlanOnAHost, AutoSessionAndDroppedInput) {
    FakeHost host;
    profile::Diagnostics d;
    auto plain = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(plain) << errors(d);
    EXPECT_FALSE(plain->pty) << "no terminal";
    host.terminals[0] = host.terminals[1] = host.terminals[2] = true;
    auto tty = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(tty) << errors(d);
    EXPECT_TRUE(tty->pty);
    EXPECT_EQ(tty->pty_ptmx, "") << "no dev mount: butter's own devpts";
    std::string with_dev = kWorkspace;
    with_dev.insert(with_dev.rfind(']'), "  { type = \"dev\", target = \"/dev\" },\n");
    auto dev = plan_on(host, with_dev, d);
    ASSERT_TRUE(dev) << errors(d);
    EXPECT_EQ(dev->pty_ptmx, "/dev/pts/ptmx") << "the sandbox's own devpts";
    host.terminals[2] = false;  // 2>log
    EXPECT_FALSE(plan_on(host, kWorkspace, d)->pty);
    host.terminals[2] = true;
    profile::Diagnostics nd;
    auto null = plan_on(host, std::string(kWorkspace) + "[process]\nstdin = \"null\"\n", nd);
    ASSERT_TRUE(null) << errors(nd);
    EXPECT_FALSE(null->pty) << "no input to give a terminal";
    auto warned = [](const profile::Diagnostics& ds, const std::string& what) {
        return std::any_of(ds.begin(), ds.end(), [&](const auto& x) {
            return x.severity == profile::Diagnostic::Severity::Warning &&
                   x.message.find("does not read butter's stdin (a " + what + ")") !=
                       std::string::npos;
        });
    };
    EXPECT_TRUE(warned(nd, "terminal"));
    host.terminals[0] = false;
    host.stdio_types[0] = S_IFIFO;
    profile::Diagnostics pd;
    ASSERT_TRUE(plan_on(host, std::string(kWorkspace) + "[process]\nstdin = \"null\"\n", pd));
    EXPECT_TRUE(warned(pd, "pipe"));
    host.stdio_types[0] = S_IFCHR;  // /dev/null
    profile::Diagnostics qd;
    ASSERT_TRUE(plan_on(host, std::string(kWorkspace) + "[process]\nstdin = \"null\"\n", qd));
    EXPECT_FALSE(warned(qd, "pipe") || warned(qd, "terminal"));
}

// The home tmpfs: at the caller's $HOME, or at a named user's passwd home (as docker run
// --user has it), with HOME set to it.
TEST(PlanOnAHost, HomeIsTheCallersOrTheNamedUsers) {
    FakeHost host;
    host.root_ = true;
    host.uid_ = host.gid_ = 0;
    host.env_ = {"PATH=/usr/bin:/bin", "HOME=/root"};
    host.users["builder"] = 2000;
    host.primary[2000] = 2100;
    host.homes_of[2000] = "/home/builder";
    profile::Diagnostics d;
    auto has_env = [](const SandboxPlan& p, const std::string& kv) {
        return std::find(p.env.begin(), p.env.end(), kv) != p.env.end();
    };
    auto keep = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(keep) << errors(d);
    EXPECT_TRUE(has_env(*keep, "HOME=/root"));
    ASSERT_NE(mount_at(*keep, "/root"), nullptr);
    auto named = plan_on(host, std::string(kWorkspace) + "[process]\nuser = \"builder\"\n", d);
    ASSERT_TRUE(named) << errors(d);
    EXPECT_TRUE(has_env(*named, "HOME=/home/builder"));
    const MountStep* h = mount_at(*named, "/home/builder");
    ASSERT_NE(h, nullptr);
    EXPECT_NE(h->options.find("uid=2000,gid=2100"), std::string::npos) << h->options;
}

TEST(PlanOnAHost, UsersAndGroupsComeFromTheHostsDatabase) {
    FakeHost host;
    host.root_ = true;
    host.users["builder"] = 2000;
    host.primary[2000] = 2100;
    profile::Diagnostics d;
    auto plan = plan_on(host, std::string(kWorkspace) + "[process]\nuser = \"builder\"\n", d);
    ASSERT_TRUE(plan) << errors(d);
    EXPECT_EQ(plan->uid, 2000u);
    EXPECT_EQ(plan->gid, 2100u);  // the user's primary group
    EXPECT_EQ(plan->uid_map[0].outside, 2000u);
    profile::Diagnostics unknown;
    EXPECT_FALSE(
        plan_on(host, std::string(kWorkspace) + "[process]\nuser = \"nosuch\"\n", unknown));
    EXPECT_NE(errors(unknown).find("process.user: no user named 'nosuch'"), std::string::npos)
        << errors(unknown);
}

TEST(PlanOnAHost, UnprivilegedMapsTheCallersOwnIds) {
    FakeHost host;
    host.uid_ = 1234;
    host.gid_ = 5678;
    profile::Diagnostics d;
    auto plan = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(plan) << errors(d);
    EXPECT_TRUE(plan->child_writes_maps);
    EXPECT_EQ(plan->uid_map[0].outside, 1234u);
    EXPECT_EQ(plan->gid_map[0].outside, 5678u);
    EXPECT_FALSE(mount_at(*plan, "/work")->idmap);
}

TEST(PlanOnAHost, TheHomeAndMissingSourcesAreRefused) {
    FakeHost host;
    profile::Diagnostics d;
    EXPECT_FALSE(plan_on(host,
                         "extends = \"builtin:default\"\n[filesystem]\nmounts = [{ type = "
                         "\"bind\", source = \"/home/me\", target = \"/h\" }, { type = \"bind\", "
                         "source = \"/nope\", target = \"/n\" }]\n",
                         d));
    std::string e = errors(d);
    EXPECT_NE(e.find("it is the home directory /home/me"), std::string::npos) << e;
    EXPECT_NE(e.find("mount source '/nope' does not exist"), std::string::npos) << e;
}

TEST(PlanOnAHost, GitPartsOfTheHostBecomeReadOnlyBindsAndPins) {
    FakeHost host;
    struct stat dir = FakeHost::stat_of("/work/.git", {});
    host.git["/work"] = {{".git", dir, false}, {"sub", dir, true}, {"sub/.git", dir, false}};
    profile::Diagnostics d;
    auto plan = plan_on(host, kWorkspace, d);
    ASSERT_TRUE(plan) << errors(d);
    ASSERT_NE(mount_at(*plan, "/work/.git"), nullptr);
    EXPECT_TRUE(mount_at(*plan, "/work/.git")->read_only);
    EXPECT_FALSE(mount_at(*plan, "/work/sub")->read_only);  // pinned, writable as around it
    EXPECT_TRUE(mount_at(*plan, "/work/sub/.git")->read_only);
}

TEST(PlanOnAHost, LimitsAboveTheHardLimitAndMissingLandlockScopes) {
    FakeHost host;
    host.hard[RLIMIT_NOFILE] = 1024;
    host.scopes = {};
    profile::Diagnostics d;
    EXPECT_FALSE(plan_on(
        host, std::string(kWorkspace) + "[limits]\nopen_files = 4096\n[namespaces]\npid = false\n",
        d));
    std::string e = errors(d);
    EXPECT_NE(e.find("limits.open_files: 4096 is above butter's own hard limit 1024"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("namespaces.pid = false: this kernel cannot"), std::string::npos) << e;
}

TEST(PlanOnAHost, EnvironmentAndWatchdogFromTheHost) {
    FakeHost host;
    host.env_ = {"PATH=/opt/bin", "SECRET=x", "WATCHDOG_USEC=5000000", "WATCHDOG_PID=4242",
                 "NOTIFY_SOCKET=/run/n"};
    profile::Diagnostics d;
    auto plan = plan_on(host,
                        std::string(kWorkspace) +
                            "[process.env]\nclear = true\nkeep = [\"PATH\"]\n[supervise]\n"
                            "notify = true\n",
                        d);
    ASSERT_TRUE(plan) << errors(d);
    auto has = [&](const std::string& kv) {
        return std::find(plan->env.begin(), plan->env.end(), kv) != plan->env.end();
    };
    EXPECT_TRUE(has("PATH=/opt/bin"));
    EXPECT_FALSE(has("SECRET=x"));
    EXPECT_FALSE(has("NOTIFY_SOCKET=/run/n"));  // the relay's, added at run time
    EXPECT_TRUE(has("WATCHDOG_USEC=5000000"));  // WATCHDOG_PID was butter's (the host's pid)
    EXPECT_EQ(plan->exec_candidates, std::vector<std::string>{"/opt/bin/make"});
}

}  // namespace
}  // namespace butter::launcher

namespace butter::launcher {
namespace {

// Root's sandboxes: root's own subordinate range, else one that no user has or will get
// (another user's range would let that user's namespaces signal them and own their files).
TEST(RootRange, RootsLineElseAboveWhatUseraddHandsOut) {
    EXPECT_EQ(root_range_from("root:200000:65536\n", "", "", false).outside, 200000u);
    EXPECT_EQ(root_range_from("", "0:300000:70000\n", "", true).outside, 300000u);
    EXPECT_EQ(root_range_from("", "0:300000:70000\n", "", true).count, 65536u);
    // Debian's first user owns 100000: root's is above SUB_UID_MAX (600100000 by default).
    IdMapping r = root_range_from("alice:100000:65536\n", "alice:100000:65536\n", "", false);
    EXPECT_GT(r.outside, 600100000u);
    EXPECT_EQ(r.outside % 65536, 0u);
    EXPECT_EQ(r.count, 65536u);
    // login.defs moves it; a range someone was given up there pushes it past that range.
    std::string defs = "# comment\nSUB_UID_MAX\t\t1000000\nSUB_GID_MAX 900000\n";
    IdMapping d = root_range_from("", "", defs, false);
    EXPECT_EQ(d.outside, 1048576u);
    IdMapping past = root_range_from("bob:1048576:131072\n", "", defs, true);
    EXPECT_EQ(past.outside, 1048576u + 131072u);
}

}  // namespace
}  // namespace butter::launcher
