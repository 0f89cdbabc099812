// Profile -> SandboxPlan: pure, no privileges needed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include <butter/landlock.hpp>

#include "../support/tmpdir.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "profile/seccomp_rules.hpp"
#include "profile/toml_reader.hpp"
#include "seccomp/policy.hpp"
#include "spawn/spawn.hpp"

namespace butter::launcher {
namespace {

using profile::MountType;

profile::Profile load_default(std::vector<std::string> sets = {}, std::string pwd = "/tmp") {
    profile::LoadOptions o;
    o.search_path = {};
    o.overrides = std::move(sets);
    o.expansion = {pwd, "/root", std::to_string(::getuid())};
    profile::Loaded l = profile::load(std::nullopt, o);
    EXPECT_TRUE(l.ok());
    return l.profile;
}

std::optional<SandboxPlan> plan_of(const profile::Profile& p, bool privileged,
                                   profile::Diagnostics& d, PlanOptions o = {}) {
    o.argv = o.argv.empty() ? std::vector<std::string>{"sh", "-c", "true"} : o.argv;
    o.force_privileged = privileged;
    o.builtin_programs = seccomp::kBuiltinPrograms;
    return make_plan(p, o, d);
}

const MountStep* find_mount(const SandboxPlan& p, const std::string& target) {
    for (const auto& m : p.mounts)
        if (m.target == target) return &m;
    return nullptr;
}

TEST(Plan, DefaultProfileUnprivileged) {
    profile::Diagnostics d;
    auto plan = plan_of(load_default({}, "/usr/share"), false, d);
    ASSERT_TRUE(plan);
    Namespaces want = Namespace::User | Namespace::Mount | Namespace::Pid | Namespace::Uts |
                      Namespace::Ipc | Namespace::Net | Namespace::Cgroup;
    EXPECT_EQ(plan->namespaces, want);
    EXPECT_TRUE(plan->child_writes_maps);
    ASSERT_EQ(plan->uid_map.size(), 1u);
    EXPECT_EQ(plan->uid_map[0].outside, ::getuid());
    EXPECT_EQ(plan->uid_map[0].inside, ::getuid());
    EXPECT_EQ(plan->uid_map[0].count, 1u);
    EXPECT_EQ(plan->hostname, "sandbox");
    const MountStep* usr = find_mount(*plan, "/usr");
    ASSERT_NE(usr, nullptr);
    EXPECT_TRUE(usr->read_only);
    EXPECT_FALSE(usr->idmap);
    const MountStep* cwd = find_mount(*plan, "/usr/share");
    ASSERT_NE(cwd, nullptr);
    EXPECT_FALSE(cwd->read_only);
    EXPECT_TRUE(plan->has_proc);
    EXPECT_FALSE(plan->seccomp.empty());
    EXPECT_FALSE(plan->seccomp_listener);
    EXPECT_EQ(plan->seccomp_errno, EPERM);
    EXPECT_TRUE(plan->keep_caps.empty());
    EXPECT_TRUE(plan->no_new_privs);
    EXPECT_EQ(plan->cwd, "/usr/share");
    EXPECT_FALSE(plan->time_limit.has_value());
}

// The Landlock layer follows the mounts: read-only ones readable, writable ones writable,
// /dev with its devices' ioctls, the root as mounted; off where a domain would refuse the
// mounts the profile lets the sandbox make.
// The landlock tier (plan/tier.cpp): no namespaces, the binds as rules on their host paths
// (with their identity), the private directory writable, TMPDIR and HOME in it, what is not
// covered listed; a bind elsewhere, an overlay or a root directory refuse the tier.
TEST(Plan, LandlockTierRulesAreTheBindsOnHostPaths) {
    auto abi = landlock_abi_version();
    if (!abi) GTEST_SKIP() << "no Landlock here";
    test::TempDir priv;
    PlanOptions o;
    o.tier = profile::Tier::Landlock;
    o.tier_reason = "refused";
    o.private_dir = priv.path();
    profile::Diagnostics d;
    auto plan = plan_of(load_default({}, "/usr/share"), false, d, o);
    ASSERT_TRUE(plan) << (d.empty() ? "" : d[0].render());
    EXPECT_EQ(plan->tier, profile::Tier::Landlock);
    EXPECT_EQ(plan->tier_reason, "refused");
    EXPECT_TRUE(plan->namespaces.empty());
    // Only the writable binds stay (for report.file_activity): nothing is mounted.
    ASSERT_EQ(plan->mounts.size(), 1u);
    EXPECT_EQ(plan->mounts[0].source, "/usr/share");
    EXPECT_FALSE(plan->mounts[0].read_only);
    EXPECT_TRUE(plan->no_new_privs);
    EXPECT_EQ(plan->uid, ::getuid());
    std::map<std::string, SandboxPlan::LandlockPath> rules;
    for (const auto& r : plan->landlock_paths)
        rules[r.path] = r;
    LandlockFsAccess read = LandlockFs::ReadFile | LandlockFs::ReadDir | LandlockFs::Execute;
    ASSERT_TRUE(rules.count("/usr"));
    EXPECT_EQ(LandlockFsAccess::from_raw(rules["/usr"].access), read);
    struct stat st {};
    ASSERT_EQ(::stat("/usr", &st), 0);
    EXPECT_EQ(rules["/usr"].ino, st.st_ino);
    EXPECT_TRUE(LandlockFsAccess::from_raw(rules["/usr/share"].access).has(LandlockFs::MakeReg));
    EXPECT_TRUE(LandlockFsAccess::from_raw(rules[priv.path()].access).has(LandlockFs::MakeReg));
    EXPECT_FALSE(rules.count("/")) << "the host's / is not the sandbox's empty root";
    EXPECT_FALSE(rules.count("/tmp"));
    EXPECT_TRUE(rules.count("/dev/null"));
    EXPECT_FALSE(rules.count("/dev/shm"));
    auto env = [&](const std::string& key) {
        for (const auto& kv : plan->env)
            if (kv.starts_with(key + "=")) return kv.substr(key.size() + 1);
        return std::string();
    };
    EXPECT_EQ(env("TMPDIR"), priv.path() + "/tmp");
    EXPECT_EQ(env("HOME"), priv.path() + "/home");
    EXPECT_FALSE(plan->uncovered.empty());
    EXPECT_EQ(plan->uncovered[0], "pid namespace (the host's processes are in sight)");

    profile::Diagnostics elsewhere;
    EXPECT_FALSE(plan_of(load_default({"filesystem.mounts=[{type=\"bind\", source=\"/usr\", "
                                       "target=\"/opt/usr\"}]"}),
                         false, elsewhere, o));
    // A read-only bind inside a writable one: the outer rule would cover it.
    test::TempDir ws;
    ASSERT_EQ(::mkdir((ws / "ro").c_str(), 0755), 0);
    profile::Diagnostics nested;
    PlanOptions binds = o;
    binds.binds = {{ws.path(), ""}};
    binds.ro_binds = {{ws / "ro", ""}};
    EXPECT_FALSE(plan_of(load_default({}), false, nested, binds));
    EXPECT_TRUE(std::any_of(nested.begin(), nested.end(), [](const auto& x) {
        return x.message.find("is read-only inside the writable") != std::string::npos &&
               x.loc.file == "--ro-bind";
    })) << (nested.empty() ? "" : nested[0].render());
    // Without a process group of its own, or with a notify socket inside a root of its own.
    for (const char* key : {"process.session=inherit", "supervise.notify=true"}) {
        profile::Diagnostics refused;
        EXPECT_FALSE(plan_of(load_default({key}), false, refused, o)) << key;
    }
    profile::Diagnostics below;
    PlanOptions seccomp_tier = o;
    seccomp_tier.tier = profile::Tier::Seccomp;
    EXPECT_FALSE(plan_of(load_default({}), false, below, seccomp_tier));
    EXPECT_TRUE(std::any_of(below.begin(), below.end(), [](const auto& x) {
        return x.message.find("below isolation.minimum = \"landlock\"") != std::string::npos;
    }));
}

TEST(Plan, LandlockRulesFollowTheMounts) {
    auto abi = landlock_abi_version();
    if (!abi) GTEST_SKIP() << "no Landlock here";
    profile::Diagnostics d;
    auto plan = plan_of(load_default({}, "/usr/share"), false, d);
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->landlock_abi, *abi);
    EXPECT_EQ(plan->landlock_fs, landlock_fs_rights(*abi).raw());
    std::map<std::string, LandlockFsAccess> rules;
    for (const auto& r : plan->landlock_paths)
        rules[r.path] = LandlockFsAccess::from_raw(r.access);
    LandlockFsAccess read = LandlockFs::ReadFile | LandlockFs::ReadDir | LandlockFs::Execute;
    EXPECT_EQ(rules["/"], read);
    EXPECT_EQ(rules["/usr"], read);
    EXPECT_TRUE(rules["/tmp"].has(LandlockFs::MakeReg));
    EXPECT_TRUE(rules["/usr/share"].has(LandlockFs::RemoveFile));  // the workspace
    EXPECT_FALSE(rules["/usr/share"].has(LandlockFs::MakeChar));
    EXPECT_TRUE(rules["/proc"].has(LandlockFs::WriteFile));
    EXPECT_FALSE(rules["/proc"].has(LandlockFs::Execute));
    if (*abi >= 5) {
        EXPECT_TRUE(rules["/dev"].has(LandlockFs::IoctlDev));
        EXPECT_FALSE(rules["/tmp"].has(LandlockFs::IoctlDev));
    }
    EXPECT_TRUE(plan->landlock_ports.empty());
    EXPECT_EQ(plan->landlock_net, 0u);

    profile::Diagnostics off;
    auto none = plan_of(load_default({"landlock.enabled=false"}), false, off);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->landlock_paths.empty());
    EXPECT_EQ(none->landlock_fs, 0u);

    profile::Diagnostics admin;
    auto mounting = plan_of(load_default({"capabilities.keep=[\"CAP_SYS_ADMIN\"]"}), false, admin);
    ASSERT_TRUE(mounting);
    EXPECT_TRUE(mounting->landlock_paths.empty());
    EXPECT_TRUE(std::any_of(admin.begin(), admin.end(), [](const auto& x) {
        return x.message.find("no Landlock file rules") != std::string::npos;
    }));

    profile::Diagnostics ports;
    auto net = plan_of(load_default({"landlock.tcp_connect=[443, 80]", "landlock.tcp_bind=[8080]"}),
                       false, ports);
    if (*abi < 4) {
        EXPECT_FALSE(net);
        return;
    }
    ASSERT_TRUE(net);
    EXPECT_EQ(net->landlock_net, (LandlockNet::ConnectTcp | LandlockNet::BindTcp).raw());
    ASSERT_EQ(net->landlock_ports.size(), 3u);
    EXPECT_EQ(net->landlock_ports[0].port, 443);
    EXPECT_EQ(net->landlock_ports[2].port, 8080);
    EXPECT_EQ(net->landlock_ports[2].access, LandlockNetAccess(LandlockNet::BindTcp).raw());
}

// `butter run` with no -p clones the sandbox before it reads the profile (spawn.hpp): the
// embedded default must keep asking for what that child starts with, as root and not.
TEST(Plan, EmbeddedDefaultFitsTheEarlyChild) {
    for (bool privileged : {false, true}) {
        profile::Diagnostics d;
        auto plan = plan_of(load_default(), privileged, d);
        ASSERT_TRUE(plan);
        EXPECT_TRUE(EarlyChild::fits(*plan)) << "privileged " << privileged;
    }
    profile::Diagnostics d;
    auto timens = plan_of(load_default({"namespaces.time=true"}), false, d);
    ASSERT_TRUE(timens);
    EXPECT_FALSE(EarlyChild::fits(*timens));
    auto shared_net =
        plan_of(load_default({"namespaces.net=false", "network.mode=\"host\""}), false, d);
    ASSERT_TRUE(shared_net);
    EXPECT_FALSE(EarlyChild::fits(*shared_net));
}

// (A filter of its own: compiled, so not under valgrind.)
TEST(Plan, ListenerCompiledFilterDoesNotFitTheEarlyChild) {
    profile::Diagnostics d;
    auto listener = plan_of(load_default({"seccomp.report=true"}), false, d);
    ASSERT_TRUE(listener);
    EXPECT_FALSE(EarlyChild::fits(*listener));
}

TEST(Plan, MergedUsrSymlinksStaySymlinks) {
    char buf[64];
    ssize_t n = ::readlink("/bin", buf, sizeof buf);
    if (n <= 0) GTEST_SKIP() << "/bin is not a symlink on this host";
    profile::Diagnostics d;
    auto plan = plan_of(load_default(), false, d);
    ASSERT_TRUE(plan);
    const MountStep* bin = find_mount(*plan, "/bin");
    ASSERT_NE(bin, nullptr);
    EXPECT_EQ(bin->type, MountType::Symlink);
    EXPECT_EQ(bin->source, std::string(buf, static_cast<std::size_t>(n)));
}

TEST(Plan, RootMapsARangeAndIdmapsBinds) {
    profile::Diagnostics d;
    test::TempDir work;  // a user's project: not root's (bound read-only), not a home
    if (::geteuid() == 0) {
        ASSERT_EQ(::chown(work.path().c_str(), 12345, 12345), 0);
    }
    auto plan = plan_of(load_default({}, work.path()), true, d);
    ASSERT_TRUE(plan) << (d.empty() ? "" : d.front().render());
    EXPECT_FALSE(plan->child_writes_maps);
    ASSERT_EQ(plan->uid_map.size(), 1u);
    EXPECT_EQ(plan->uid_map[0].inside, 0u);
    EXPECT_GT(plan->uid_map[0].outside, 0u) << "uid 0 inside must not be host root";
    EXPECT_GE(plan->uid_map[0].count, 1u);
    EXPECT_EQ(plan->uid, 0u);
    const MountStep* cwd = find_mount(*plan, work.path());
    ASSERT_NE(cwd, nullptr);
    EXPECT_TRUE(cwd->idmap);
    EXPECT_EQ(cwd->source_uid, ::geteuid() == 0 ? 12345u : ::geteuid());
    EXPECT_TRUE(cwd->map_owner);
    // Read-only and host root's: never mapped to the sandbox's root.
    EXPECT_FALSE(find_mount(*plan, "/usr")->idmap);
}

TEST(Plan, UnprivilegedCannotPickAnotherUser) {
    if (::getuid() == 1234) GTEST_SKIP();
    profile::Diagnostics d;
    auto plan = plan_of(load_default({"process.user=1234"}), false, d);
    EXPECT_FALSE(plan);
    EXPECT_TRUE(std::any_of(d.begin(), d.end(), [](const auto& x) {
        return x.message.find("own uid") != std::string::npos;
    }));
    // The group that user's entry would give is not a second error about process.group.
    EXPECT_FALSE(std::any_of(d.begin(), d.end(), [](const auto& x) {
        return x.message.find("process.group") != std::string::npos;
    }));
}

TEST(Plan, CwdOverTmpReplacesTheTmpfs) {
    profile::Diagnostics d;
    auto plan = plan_of(load_default({}, "/tmp"), false, d);
    ASSERT_TRUE(plan);
    const MountStep* tmp = find_mount(*plan, "/tmp");
    ASSERT_NE(tmp, nullptr);
    EXPECT_EQ(tmp->type, MountType::Bind);
    EXPECT_EQ(std::count_if(plan->mounts.begin(), plan->mounts.end(),
                            [](const MountStep& m) { return m.target == "/tmp"; }),
              1);
}

// /dev and /proc's masks use the tmpfs root's own directories where those are the root's: not
// with a size (a tmpfs of its own), not under another mount (a bind's are the host's), not
// with a directory as the root.
TEST(Plan, DevAndProcOnTheTmpfsRootUseItsDirectories) {
    profile::Diagnostics d;
    auto plan = plan_of(load_default(), false, d);
    ASSERT_TRUE(plan);
    EXPECT_TRUE(find_mount(*plan, "/dev")->on_root_fs);
    EXPECT_TRUE(find_mount(*plan, "/proc")->on_root_fs);

    auto other = plan_of(load_default({R"(filesystem.mounts=[
        { type = "dev", target = "/dev", size = "1M" },
        { type = "bind", source = "/tmp", target = "/x" },
        { type = "dev", target = "/x/dev" }, { type = "proc", target = "/x/proc" },
        { type = "proc", target = "/proc" }])"}),
                         false, d);
    ASSERT_TRUE(other) << (d.empty() ? "" : d.front().render());
    EXPECT_FALSE(find_mount(*other, "/dev")->on_root_fs);
    EXPECT_FALSE(find_mount(*other, "/x/dev")->on_root_fs);
    EXPECT_FALSE(find_mount(*other, "/x/proc")->on_root_fs);
    EXPECT_TRUE(find_mount(*other, "/proc")->on_root_fs);

    test::TempDir root;
    auto in_dir = plan_of(load_default({"filesystem.root=\"" + root.path() + "\""}), false, d);
    ASSERT_TRUE(in_dir);
    EXPECT_FALSE(find_mount(*in_dir, "/dev")->on_root_fs);
    EXPECT_FALSE(find_mount(*in_dir, "/proc")->on_root_fs);
}

TEST(Plan, CliBindsAndTimeout) {
    test::TempDir dir;
    PlanOptions o;
    o.binds = {{dir.path(), "/data"}};
    o.ro_binds = {{"/etc/hostname", ""}};
    o.timeout = std::chrono::seconds(3);
    profile::Diagnostics d;
    auto plan = plan_of(load_default(), false, d, o);
    ASSERT_TRUE(plan);
    const MountStep* data = find_mount(*plan, "/data");
    ASSERT_NE(data, nullptr);
    EXPECT_FALSE(data->read_only);
    const MountStep* host = find_mount(*plan, "/etc/hostname");
    ASSERT_NE(host, nullptr);
    EXPECT_TRUE(host->read_only);
    EXPECT_FALSE(host->source_is_dir);
    EXPECT_EQ(*plan->time_limit, std::chrono::seconds(3));
}

// The profile's $PWD bind from / is left out (a note); a literal bind onto / is an error.
TEST(Plan, NoMountOntoRoot) {
    profile::Diagnostics d;
    auto plan = plan_of(load_default({}, "/"), false, d);
    ASSERT_TRUE(plan);
    EXPECT_EQ(find_mount(*plan, "/"), nullptr);
    profile::Diagnostics d2;
    EXPECT_FALSE(plan_of(load_default({"filesystem.mounts=[{type=\"bind\", source=\"/usr\", "
                                       "target=\"/\"}]"}),
                         false, d2));
}

TEST(Plan, EnvironmentClearKeepSet) {
    ::setenv("BUTTER_TEST_KEEP", "k", 1);
    ::setenv("BUTTER_TEST_DROP", "d", 1);
    profile::Diagnostics d;
    auto plan =
        plan_of(load_default({"process.env.clear=true", "process.env.keep=[\"BUTTER_TEST_KEEP\"]",
                              "process.env.set={ CI = \"true\" }"}),
                false, d);
    ASSERT_TRUE(plan);
    auto has = [&](const std::string& kv) {
        return std::find(plan->env.begin(), plan->env.end(), kv) != plan->env.end();
    };
    EXPECT_TRUE(has("BUTTER_TEST_KEEP=k"));
    EXPECT_FALSE(has("BUTTER_TEST_DROP=d"));
    EXPECT_TRUE(has("CI=true"));
    EXPECT_TRUE(std::any_of(plan->env.begin(), plan->env.end(),
                            [](const std::string& kv) { return kv.starts_with("PATH="); }));
}

TEST(Plan, CommandSearchUsesTheSandboxPath) {
    profile::Diagnostics d;
    PlanOptions o;
    o.argv = {"ls"};
    auto plan =
        plan_of(load_default({"process.env.clear=true", "process.env.set={ PATH = \"/x:/y\" }"}),
                false, d, o);
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->exec_candidates, (std::vector<std::string>{"/x/ls", "/y/ls"}));
}

TEST(Plan, ReportAndCustomErrnoCompileTheFilter) {
    profile::Diagnostics d;
    auto plan =
        plan_of(load_default({"seccomp.errno=\"EACCES\"", "seccomp.report=true"}), false, d);
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->seccomp_errno, EACCES);
    EXPECT_TRUE(plan->seccomp_listener);
}

// The programs compiled at build time are what compiling the shipped profiles gives now.
TEST(Plan, BuiltinProgramsMatchACompileOfTheShippedProfiles) {
    ASSERT_FALSE(seccomp::kBuiltinPrograms.empty());
    std::size_t found = 0;
    for (const char* name : {"default", "ci", "build", "service", "network-client", "untrusted"}) {
        profile::LoadOptions o;
        o.search_path = {BUTTER_PROFILES_SRC};
        profile::Loaded l = profile::load(std::string(name), o);
        ASSERT_TRUE(l.ok()) << name;
        std::string key = seccomp::program_key(l.profile);
        profile::Diagnostics d;
        auto fresh = seccomp::compile(l.profile, d);
        ASSERT_TRUE(fresh) << name;
        for (const auto& b : seccomp::kBuiltinPrograms) {
            if (b.key != key) continue;
            ++found;
            ASSERT_EQ(b.count, fresh->program.size()) << name;
            EXPECT_EQ(std::memcmp(b.insns, fresh->program.data(), b.count * sizeof *b.insns), 0)
                << name;
            EXPECT_EQ(b.uses_notify, fresh->uses_notify) << name;
            EXPECT_EQ(b.denied_errno, fresh->denied_errno) << name;
        }
    }
    EXPECT_EQ(found, 6u) << "a shipped profile's program is not built in";
}

// butter's own rules (seccomp/policy.hpp implicit_rules) parse and compile in a deny list and
// in an allow list, and say which key asked for them.
TEST(Plan, ImplicitRulesCompileInDenyAndAllowLists) {
    for (const char* base : {"default", "untrusted"}) {
        profile::LoadOptions o;
        o.search_path = {BUTTER_PROFILES_SRC};
        o.overrides = {"process.session=\"inherit\""};
        profile::Loaded l = profile::load(std::string(base), o);
        ASSERT_TRUE(l.ok()) << base;
        auto rules = seccomp::implicit_rules(l.profile);
        ASSERT_FALSE(rules.empty());
        bool tiocsti = false;
        for (const auto& r : rules) {
            profile::Diagnostics d;
            auto tree = profile::parse_toml("r = " + r.text, "<implicit>", d);
            ASSERT_TRUE(tree) << r.text;
            EXPECT_TRUE(profile::parse_seccomp_rule(*tree->find("r"), d)) << r.text;
            EXPECT_TRUE(d.empty()) << r.text;
            tiocsti = tiocsti || std::string(r.key) == "process.session";
        }
        // untrusted has an ioctl rule of its own, which decides for ioctl.
        EXPECT_EQ(tiocsti, std::string(base) == "default") << base;
        profile::Diagnostics d;
        EXPECT_TRUE(seccomp::compile(l.profile, d)) << base;
        EXPECT_FALSE(profile::has_errors(d)) << (d.empty() ? "" : d.front().render());
    }
}

TEST(Plan, NormalizeTarget) {
    EXPECT_EQ(*normalize_target("/a//b/./c/"), "/a/b/c");
    EXPECT_EQ(*normalize_target("/"), "/");
    EXPECT_FALSE(normalize_target("a/b"));
    EXPECT_FALSE(normalize_target("/a/../b"));
}

}  // namespace
}  // namespace butter::launcher
