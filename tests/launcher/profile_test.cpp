// The profile layer: units, the schema's key table, loading with extends and --set, and
// golden diagnostics for one broken rule per file in testdata/bad.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "../support/tmpdir.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "profile/schema.hpp"
#include "profile/toml_reader.hpp"
#include "profile/units.hpp"

namespace butter::launcher::profile {
namespace {

using namespace std::chrono_literals;

const std::string kData = BUTTER_TESTDATA;

LoadOptions options_for(const std::string& dir) {
    LoadOptions o;
    o.search_path = {dir};
    o.expansion = {"/work/space", "/home/me", "1000"};
    return o;
}

TEST(Units, Durations) {
    EXPECT_EQ(*parse_duration("500ms"), 500ms);
    EXPECT_EQ(*parse_duration("10s"), 10s);
    EXPECT_EQ(*parse_duration("5m"), 5min);
    EXPECT_EQ(*parse_duration("1h30m"), 90min);
    EXPECT_EQ(*parse_duration("2d"), 48h);
    EXPECT_EQ(*parse_duration("250us"), 250us);
    for (const char* bad : {"", "10", "10 s", "s", "1x", "-5s", "1.5s", "99999999999999999999s"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
    EXPECT_EQ(format_duration(90min), "1h30m");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(10s), "10s");
}

TEST(Units, Sizes) {
    EXPECT_EQ(*parse_size("512"), 512u);
    EXPECT_EQ(*parse_size("64K"), 64u << 10);
    EXPECT_EQ(*parse_size("256M"), 256u << 20);
    EXPECT_EQ(*parse_size("2G"), 2ULL << 30);
    EXPECT_EQ(*parse_size("1T"), 1ULL << 40);
    EXPECT_EQ(*parse_size("4MiB"), 4u << 20);
    EXPECT_EQ(*parse_size("4mb"), 4u << 20);
    for (const char* bad : {"", "M", "12Q", "1.5G", "-1", "5 M", "99999999999T"})
        EXPECT_FALSE(parse_size(bad)) << bad;
    EXPECT_EQ(format_size(256u << 20), "256M");
    EXPECT_EQ(format_size(1536u << 10), "1536K");
    EXPECT_EQ(format_size(1000), "1000");
}

TEST(Expand, OnlyThreeVariables) {
    Expansion x{"/w", "/h", "7"};
    EXPECT_EQ(expand("$PWD/a:$HOME:$UID", x), "/w/a:/h:7");
    EXPECT_EQ(expand("$PATH $USER $", x), "$PATH $USER $");
}

TEST(Schema, EmbeddedDefaultLoadsClean) {
    Loaded l = load(std::nullopt, options_for("/nonexistent"));
    for (const auto& d : l.diagnostics)
        ADD_FAILURE() << d.render();
    EXPECT_EQ(l.chain, std::vector<std::string>{kEmbeddedDefaultName});
    EXPECT_EQ(l.profile.filesystem.hostname, "sandbox");
    EXPECT_EQ(l.profile.process.cwd, "/work/space");
    EXPECT_TRUE(l.profile.namespaces.net);
    EXPECT_FALSE(l.profile.namespaces.time);
    ASSERT_FALSE(l.profile.filesystem.mounts.empty());
    EXPECT_EQ(l.profile.filesystem.mounts.back().target, "/work/space");
    EXPECT_EQ(l.profile.filesystem.mounts.back().source, "/work/space");
    EXPECT_TRUE(l.profile.filesystem.mounts.front().read_only);
}

TEST(Schema, ShowRoundTripsThroughTheParser) {
    Loaded l = load(std::nullopt, options_for("/nonexistent"));
    std::string shown = show_profile(l.profile);
    Loaded again = load_text(shown, "shown.toml", options_for("/nonexistent"));
    for (const auto& d : again.diagnostics)
        ADD_FAILURE() << d.render() << "\n" << shown;
    EXPECT_EQ(show_profile(again.profile), shown);
    // Non-default values survive too.
    LoadOptions o = options_for("/nonexistent");
    o.overrides = {"limits.time=\"1h30m\"", "limits.memory=\"2G\"", "process.user=1000",
                   "process.env.set={ CI = \"true\" }", "seccomp.allow=[\"read\"]"};
    Loaded custom = load(std::nullopt, o);
    ASSERT_TRUE(custom.ok());
    std::string s = show_profile(custom.profile);
    EXPECT_NE(s.find("time = \"1h30m\""), std::string::npos) << s;
    EXPECT_NE(s.find("memory = \"2G\""), std::string::npos) << s;
    EXPECT_NE(s.find("user = 1000"), std::string::npos) << s;
    Loaded back = load_text(s, "custom.toml", options_for("/nonexistent"));
    EXPECT_TRUE(back.ok());
    EXPECT_EQ(show_profile(back.profile), s);
}

TEST(Schema, EveryKeyIsDocumented) {
    auto docs = key_docs();
    EXPECT_GE(docs.size(), 45u);
    for (const auto& d : docs) {
        EXPECT_FALSE(d.doc.empty()) << d.key;
        EXPECT_FALSE(d.type.empty()) << d.key;
    }
}

TEST(Loader, ExtendsMergesTablesAndReplacesArrays) {
    test::TempDir dir;
    test::write_file(dir / "base.toml",
                     "description = \"base\"\n[process]\ncwd = \"/a\"\nstdin = \"null\"\n"
                     "[seccomp]\ndeny = [\"mount\", \"ptrace\"]\n");
    test::write_file(dir / "child.toml",
                     "extends = \"base\"\n[process]\ncwd = \"/b\"\n[seccomp]\ndeny = [\"bpf\"]\n");
    Loaded l = load(std::string("child"), options_for(dir.path()));
    ASSERT_TRUE(l.ok()) << l.diagnostics[0].render();
    EXPECT_EQ(l.profile.description, "base");
    EXPECT_EQ(l.profile.process.cwd, "/b");
    EXPECT_EQ(l.profile.process.stdin_mode, StdinMode::Null);
    EXPECT_EQ(l.profile.seccomp.deny, std::vector<std::string>{"bpf"});
    EXPECT_EQ(l.chain.size(), 2u);
}

TEST(Loader, ExtendsDefaultUsesTheEmbeddedProfile) {
    test::TempDir dir;
    test::write_file(dir / "mine.toml", "extends = \"default\"\n[network]\nmode = \"loopback\"\n");
    Loaded l = load(dir / "mine.toml", options_for("/nonexistent"));
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l.profile.network.mode, NetworkMode::Loopback);
    EXPECT_EQ(l.profile.filesystem.hostname, "sandbox");
}

TEST(Loader, SetOverridesWithTomlOrBareValues) {
    LoadOptions o = options_for("/nonexistent");
    o.overrides = {"filesystem.hostname=box", "namespaces.net=false", "network.mode=\"host\"",
                   "limits.pids=64"};
    Loaded l = load(std::nullopt, o);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l.profile.filesystem.hostname, "box");
    EXPECT_FALSE(l.profile.namespaces.net);
    EXPECT_EQ(l.profile.network.mode, NetworkMode::Host);
    EXPECT_EQ(*l.profile.limits.pids, 64u);
    // Bare words that start like a number or a date are strings too.
    for (std::string word : {"10s", "1d", "-x", "0x1g", "2026-12-03x"}) {
        o.overrides = {"filesystem.hostname=" + word};
        Loaded w = load(std::nullopt, o);
        ASSERT_TRUE(w.ok()) << word;
        EXPECT_EQ(w.profile.filesystem.hostname, word);
    }
    o.overrides = {"limits.pids=0x40"};
    EXPECT_EQ(*load(std::nullopt, o).profile.limits.pids, 64u);
    o.overrides = {"process.nope=1"};
    Loaded bad = load(std::nullopt, o);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.diagnostics.back().render(), "--set process.nope=1: unknown key 'process.nope'");
}

TEST(Loader, MissingProfileIsOneError) {
    Loaded l = load(std::string("nosuch"), options_for("/nonexistent"));
    ASSERT_EQ(l.diagnostics.size(), 1u);
    EXPECT_EQ(l.diagnostics[0].render(),
              "nosuch: no profile named 'nosuch' (looked in /nonexistent, and the built-in "
              "default)");
}

TEST(Loader, AllErrorsAreReportedNotJustTheFirst) {
    Loaded l = load_text("[process]\ncwdd = 1\n[namespaces]\nnet = 3\n[limits]\ntime = \"x\"\n",
                         "many.toml", options_for("/nonexistent"));
    EXPECT_EQ(l.diagnostics.size(), 3u);
}

TEST(Loader, ListsProfilesWithDescriptions) {
    test::TempDir dir;
    test::write_file(dir / "ci.toml", "description = \"for CI\"\n");
    auto all = list_profiles({dir.path()});
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "ci");
    EXPECT_EQ(all[0].description, "for CI");
    EXPECT_EQ(all[1].name, "default");
    EXPECT_EQ(all[1].path, kEmbeddedDefaultName);
}

// Every file in testdata/bad breaks one rule; its .expected holds the exact first error,
// with FILE standing for the file's path.
std::vector<std::string> bad_profiles() {
    std::vector<std::string> names;
    DIR* d = ::opendir((kData + "/bad").c_str());
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        std::string n = e->d_name;
        if (n.ends_with(".toml") && !n.starts_with("cycle_b")) names.push_back(n);
    }
    if (d) ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

TEST(Profile, OversizedOrSpecialFilesAreRefusedBeforeReading) {
    test::TempDir d;
    std::string big = d / "big.toml";
    test::write_file(big, std::string(kMaxProfileBytes + 1, '#'));
    Diagnostics out;
    EXPECT_FALSE(read_toml_file(big, out));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].render(),
              big + ": cannot read profile: " + std::to_string(kMaxProfileBytes + 1) +
                  " bytes, over the 1 MiB a profile may have");
    Diagnostics dev;
    EXPECT_FALSE(read_toml_file("/dev/zero", dev));
    ASSERT_EQ(dev.size(), 1u);
    EXPECT_EQ(dev[0].render(), "/dev/zero: cannot read profile: not a regular file");
    // A kernel file that says it is empty and never ends: read up to the bound, no further.
    Diagnostics proc;
    EXPECT_FALSE(read_toml_file("/proc/self/pagemap", proc));
    ASSERT_EQ(proc.size(), 1u);
    EXPECT_NE(proc[0].render().find("over the 1 MiB a profile may have"), std::string::npos)
        << proc[0].render();
    // Named by path, a FIFO or a device is not "no such file".
    Loaded l = load(std::string("/dev/null"), LoadOptions{});
    ASSERT_FALSE(l.diagnostics.empty());
    EXPECT_EQ(l.diagnostics[0].render(), "/dev/null: not a regular file (a profile is one)");
}

class GoldenDiagnostics : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenDiagnostics, ExactFirstError) {
    std::string dir = kData + "/bad";
    std::string path = dir + "/" + GetParam();
    Loaded l = load(path, options_for(dir));
    Diagnostics d = l.diagnostics;
    if (l.ok()) {
        PlanOptions po;
        po.argv = {"true"};
        po.builtin_programs = seccomp::kBuiltinPrograms;
        (void)make_plan(l.profile, po, d);
    }
    auto first = std::find_if(d.begin(), d.end(), [](const Diagnostic& x) { return x.is_error(); });
    ASSERT_NE(first, d.end()) << "no error for " << GetParam();
    std::string got = first->render();
    for (std::size_t pos; (pos = got.find(dir + "/")) != std::string::npos;)
        got.replace(pos, dir.size() + 1, "");
    std::string expected_path =
        dir + "/" + GetParam().substr(0, GetParam().size() - 5) + ".expected";
    if (std::getenv("BUTTER_UPDATE_GOLDEN")) {
        std::ofstream(expected_path) << got << "\n";
        return;
    }
    std::string expected = test::read_file(expected_path);
    ASSERT_FALSE(expected.empty()) << "missing " << expected_path;
    EXPECT_EQ(got + "\n", expected);
}

INSTANTIATE_TEST_SUITE_P(Bad, GoldenDiagnostics, ::testing::ValuesIn(bad_profiles()),
                         [](const auto& p) {
                             std::string n = p.param.substr(0, p.param.size() - 5);
                             return n;
                         });

}  // namespace
}  // namespace butter::launcher::profile
