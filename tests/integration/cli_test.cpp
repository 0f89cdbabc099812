// The butter binary's non-run commands, end to end.
#include <gtest/gtest.h>

#include <filesystem>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"

namespace butter::test {
namespace {

TEST(Cli, VersionAndHelp) {
    auto v = run_butter({"--version"});
    EXPECT_EQ(v.code, 0);
    EXPECT_TRUE(v.out.starts_with("butter ")) << v.out;
    auto h = run_butter({"--help"});
    EXPECT_EQ(h.code, 0);
    EXPECT_NE(h.out.find("butter run"), std::string::npos);
}

TEST(Cli, BadFlagIsOneLineNamingIt) {
    auto r = run_butter({"show", "--frob"});
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err, "butter: unknown option '--frob' for 'butter show'\n");
    auto run = run_butter({"run", "--timeout", "later", "--", "true"});
    EXPECT_EQ(run.code, 125);
    EXPECT_EQ(run.err,
              "butter: option '--timeout' expects a duration like 30s, 5m or 90 "
              "(seconds), got 'later'\n");
}

TEST(Cli, CheckPrintsEveryErrorAndExits1) {
    TempDir dir;
    std::string bad = dir / "bad.toml";
    write_file(bad, "[process]\nuser = true\ncwdd = \"/\"\n[limits]\ntime = \"forever\"\n");
    auto r = run_butter({"check", bad});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, bad + ":2:8: process.user: expected string or integer, got a boolean\n" + bad +
                         ":3:1: unknown key 'process.cwdd' (did you mean 'process.cwd'?)\n" + bad +
                         ":5:8: limits.time: invalid duration (expected a number with a unit: "
                         "500ms, 10s, 5m, 1h, 1h30m): 'forever'\n");
    std::string good = dir / "good.toml";
    write_file(good, "extends = \"default\"\n[network]\nmode = \"loopback\"\n");
    auto ok = run_butter({"check", good});
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_EQ(ok.out, good + ": ok\n");
}

TEST(Cli, ShowPrintsTomlThatCheckAccepts) {
    TempDir dir;
    auto shown = run_butter({"show", "--set", "limits.time=\"5m\""});
    ASSERT_EQ(shown.code, 0) << shown.err;
    EXPECT_NE(shown.out.find("[filesystem]"), std::string::npos);
    EXPECT_NE(shown.out.find("time = \"5m\""), std::string::npos);
    std::string path = dir / "shown.toml";
    write_file(path, shown.out);
    auto check = run_butter({"check", path});
    EXPECT_EQ(check.code, 0) << check.err << shown.out;
    auto again = run_butter({"show", "-p", path});
    EXPECT_EQ(again.out, shown.out);
}

TEST(Cli, ProfilesListsTheEmbeddedDefault) {
    TempDir dir;
    write_file(dir / "mine.toml", "description = \"my profile\"\n");
    RunOptions o;
    o.env = {"BUTTER_PROFILE_PATH=" + dir.path()};
    // A copy of butter, as installed (the build tree's own binary also finds the source
    // tree's profiles/, whose default.toml would be listed instead).
    std::filesystem::copy_file(butter_bin(), dir / "butter");
    o.program = dir / "butter";
    auto r = run_butter({"profiles"}, o);
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("mine"), std::string::npos);
    EXPECT_NE(r.out.find("my profile"), std::string::npos);
    EXPECT_NE(r.out.find("default (built in)"), std::string::npos);
    // The build tree's own finds the source tree's (unless it runs from a stage, as nobody's
    // tests do when the clone is unreachable).
    o.program.clear();
    auto build = run_butter({"profiles"}, o);
    EXPECT_EQ(build.code, 0);
    if (std::string(butter_bin()) == BUTTER_BIN) {
        EXPECT_NE(build.out.find(std::string(BUTTER_PROFILES_SRC) + "/untrusted.toml"),
                  std::string::npos)
            << build.out;
    }
}

TEST(Cli, SyscallsListsGroups) {
    auto all = run_butter({"syscalls"});
    EXPECT_EQ(all.code, 0);
    EXPECT_NE(all.out.find("@mount"), std::string::npos);
    auto mount = run_butter({"syscalls", "@mount"});
    EXPECT_EQ(mount.code, 0);
    EXPECT_NE(mount.out.find("pivot_root\n"), std::string::npos);
    EXPECT_NE(mount.out.find("move_mount\n"), std::string::npos);
    auto bad = run_butter({"syscalls", "@nope"});
    EXPECT_EQ(bad.code, 2);
}

// README's key reference is `butter show --keys=markdown`, verbatim, and its cells hold.
TEST(Cli, ReadmeKeyTableIsTheGeneratedOne) {
    auto keys = run_butter({"show", "--keys=markdown"});
    ASSERT_EQ(keys.code, 0);
    std::string readme = read_file(BUTTER_README);
    EXPECT_NE(readme.find(keys.out), std::string::npos)
        << "README.md's key table is stale: regenerate it with butter show --keys=markdown";
    std::size_t at = 0, rows = 0;
    for (std::size_t nl; (nl = keys.out.find('\n', at)) != std::string::npos; at = nl + 1, ++rows) {
        std::string line = keys.out.substr(at, nl - at);
        std::size_t cells = 0;
        for (std::size_t i = 0; i < line.size(); ++i)
            cells += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
        EXPECT_EQ(cells, 5U) << line;  // four cells: an unescaped '|' would make more
    }
    EXPECT_GT(rows, 40U);
}

}  // namespace
}  // namespace butter::test
