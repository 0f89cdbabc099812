#include "cli/cli.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace butter::launcher {
namespace {

Result<Cli> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "butter");
    return parse_cli(args);
}

TEST(Cli, RunWithEverything) {
    auto c = parse({"run", "-p", "ci", "--set", "a.b=1", "--set=c=2", "--bind", "/src:/dst",
                    "--ro-bind", "/etc", "--timeout", "30s", "--", "make", "-j2"});
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->command, Cli::Command::Run);
    EXPECT_EQ(*c->profile, "ci");
    EXPECT_EQ(c->sets, (std::vector<std::string>{"a.b=1", "c=2"}));
    ASSERT_EQ(c->binds.size(), 1u);
    EXPECT_EQ(c->binds[0].second, "/dst");
    EXPECT_EQ(c->ro_binds[0].first, "/etc");
    EXPECT_EQ(c->ro_binds[0].second, "");
    EXPECT_EQ(*c->timeout, std::chrono::seconds(30));
    EXPECT_EQ(c->args, (std::vector<std::string>{"make", "-j2"}));
}

TEST(Cli, CommandFlagsAreNotButters) {
    auto c = parse({"run", "ls", "-la", "--timeout", "5s"});
    ASSERT_TRUE(c);
    EXPECT_EQ(c->args, (std::vector<std::string>{"ls", "-la", "--timeout", "5s"}));
    EXPECT_FALSE(c->timeout);
}

TEST(Cli, ErrorsNameTheFlag) {
    EXPECT_EQ(parse({"run", "--frob", "x"}).error().text(),
              "unknown option '--frob' for 'butter run'");
    EXPECT_EQ(parse({"run", "--timeout"}).error().text(), "option '--timeout' needs a value");
    EXPECT_EQ(parse({"run", "--timeout", "soon", "--", "x"}).error().text(),
              "option '--timeout' expects a duration like 30s, 5m or 90 (seconds), got 'soon'");
    EXPECT_EQ(parse({"run", "--timeout", "0", "--", "x"}).error().text(),
              "option '--timeout' expects a duration like 30s, 5m or 90 (seconds), got '0'");
    EXPECT_EQ(parse({"run", "--bind", "src:rel", "--", "x"}).error().text(),
              "option '--bind' expects SRC[:DST] with an absolute DST, got 'src:rel'");
    EXPECT_EQ(parse({"run", "--set", "novalue", "--", "x"}).error().text(),
              "option '--set' expects KEY=VALUE, got 'novalue'");
    EXPECT_EQ(parse({"run"}).error().text(),
              "'butter run' needs a command (butter run -- COMMAND)");
    EXPECT_EQ(parse({"check", "--bind", "/x"}).error().text(),
              "option '--bind' does not apply to 'butter check'");
    EXPECT_EQ(parse({"frobnicate"}).error().text(),
              "unknown command 'frobnicate' (run, learn, check, show, profiles, syscalls, doctor, "
              "apply, diff, pool, oci)");
    // learn's own flags, and run's that it does not take.
    EXPECT_EQ(parse({"learn"}).error().text(),
              "'butter learn' needs a command (butter learn -- COMMAND)");
    EXPECT_EQ(parse({"learn", "--diff", "--", "x"}).error().text(),
              "option '--diff' compares with a profile: give -o FILE or --merge FILE");
    EXPECT_EQ(parse({"learn", "-o", "--", "x"}).error().text(),
              "option '-o' expects a file, got '--'");
    EXPECT_EQ(parse({"learn", "--report", "r.json", "--", "x"}).error().text(),
              "option '--report' does not apply to 'butter learn'");
    EXPECT_EQ(parse({"run", "--merge", "a.toml", "--", "x"}).error().text(),
              "option '--merge' does not apply to 'butter run'");
    auto l = parse({"learn", "-p", "ci", "-o", "out.toml", "--merge=old.toml", "--offline",
                    "python3", "app.py"});
    ASSERT_TRUE(l);
    EXPECT_EQ(l->command, Cli::Command::Learn);
    EXPECT_EQ(*l->output, "out.toml");
    EXPECT_EQ(*l->merge, "old.toml");
    EXPECT_TRUE(l->offline);
    EXPECT_EQ(l->args, (std::vector<std::string>{"python3", "app.py"}));
    EXPECT_EQ(parse({}).error().text(), "no command given (try 'butter --help')");
    EXPECT_EQ(parse({"check"}).error().text(), "'butter check' needs at least one profile");
}

// What people type: --help after any command, bare seconds, relative bind sources.
TEST(Cli, HabitsOfOtherTools) {
    for (const char* cmd : {"run", "learn", "check", "show", "profiles", "syscalls", "doctor"}) {
        auto h = parse({cmd, "--help"});
        ASSERT_TRUE(h) << cmd;
        EXPECT_EQ(h->command, Cli::Command::Help) << cmd;
        EXPECT_EQ(parse({cmd, "-h"})->command, Cli::Command::Help) << cmd;
    }
    // After the command's first word, --help is the command's.
    EXPECT_EQ(parse({"run", "ls", "--help"})->args, (std::vector<std::string>{"ls", "--help"}));
    auto t = parse({"run", "--timeout", "5", "--", "x"});
    ASSERT_TRUE(t) << t.error().what();
    EXPECT_EQ(*t->timeout, std::chrono::seconds(5));
    EXPECT_FALSE(parse({"run", "--timeout", "-5", "--", "x"}));
    std::string cwd = std::filesystem::current_path().string();
    auto b = parse({"run", "--bind", ".", "--ro-bind", "sub/dir/:/dst", "--", "x"});
    ASSERT_TRUE(b) << b.error().what();
    EXPECT_EQ(b->binds[0].first, cwd);
    EXPECT_EQ(b->binds[0].second, "");
    EXPECT_EQ(b->ro_binds[0].first, cwd + "/sub/dir");
    EXPECT_EQ(b->ro_binds[0].second, "/dst");
}

TEST(Cli, OtherCommands) {
    EXPECT_EQ(parse({"--version"})->command, Cli::Command::Version);
    EXPECT_EQ(parse({"--help"})->command, Cli::Command::Help);
    auto check = parse({"check", "a.toml", "b"});
    EXPECT_EQ(check->args, (std::vector<std::string>{"a.toml", "b"}));
    auto show = parse({"show", "-p", "ci"});
    EXPECT_EQ(*show->profile, "ci");
    EXPECT_EQ(parse({"syscalls", "@mount"})->args, std::vector<std::string>{"@mount"});
    EXPECT_FALSE(parse({"profiles", "extra"}));
}

TEST(Cli, Pools) {
    auto start = parse({"pool", "start", "ci", "-p", "ci", "--size", "4", "--foreground"});
    ASSERT_TRUE(start) << start.error().text();
    EXPECT_EQ(start->command, Cli::Command::Pool);
    EXPECT_EQ(start->args, (std::vector<std::string>{"start", "ci"}));
    EXPECT_EQ(start->pool_size, 4u);
    EXPECT_TRUE(start->foreground);
    auto run = parse({"run", "--pool", "ci", "--report", "r.json", "--", "make"});
    ASSERT_TRUE(run) << run.error().text();
    EXPECT_EQ(*run->pool, "ci");
    EXPECT_EQ(run->args, std::vector<std::string>{"make"});
    EXPECT_EQ(parse({"pool", "start"}).error().text(),
              "'butter pool' takes start or stop and a pool's name (butter pool start NAME, "
              "butter pool stop NAME)");
    EXPECT_EQ(parse({"pool", "restart", "ci"}).error().text(),
              "'butter pool' takes start or stop and a pool's name (butter pool start NAME, "
              "butter pool stop NAME)");
    EXPECT_EQ(parse({"pool", "stop", "ci", "--size", "3"}).error().text(),
              "'butter pool stop' takes only the pool's name");
    EXPECT_EQ(parse({"pool", "start", "ci", "--size", "65"}).error().text(),
              "option '--size' expects a number from 1 to 64, got '65'");
    EXPECT_EQ(parse({"run", "--size", "3", "--", "x"}).error().text(),
              "option '--size' does not apply to 'butter run'");
    EXPECT_EQ(parse({"run", "--pool", "ci", "--bind", "/a", "--", "x"}).error().text(),
              "option '--pool' runs the command in a sandbox the pool prepared from its profile: "
              "-p, --set, --bind, --ro-bind, --timeout, --events and --changes belong to 'butter "
              "pool start'");
    EXPECT_EQ(parse({"pool", "start", "ci", "--report", "x"}).error().text(),
              "option '--report' does not apply to 'butter pool'");
}

// The guess made before parsing, that starts the sandbox early.
TEST(Cli, SandboxRunIsGuessedBeforeParsing) {
    auto guess = [](std::vector<const char*> argv) {
        argv.insert(argv.begin(), "butter");
        return may_run_a_sandbox(static_cast<int>(argv.size()), argv.data());
    };
    EXPECT_TRUE(guess({"run", "--", "true"}));
    EXPECT_TRUE(guess({"run", "true", "-x"}));
    EXPECT_TRUE(guess({"run", "-p", "ci", "--set", "a.b=1", "--", "true"}));
    EXPECT_TRUE(guess({"run", "--bind", "/a:/b", "--timeout", "5s", "-q", "true"}));
    EXPECT_FALSE(guess({"run", "-p", "ci"}));  // "ci" is -p's: no command
    EXPECT_FALSE(guess({"run", "--"}));
    EXPECT_FALSE(guess({"run"}));
    EXPECT_FALSE(guess({"run", "-q"}));
    EXPECT_FALSE(guess({"check", "--", "true"}));
    EXPECT_FALSE(guess({"run", "--pool", "ci", "--", "true"}));  // a pool's sandbox runs it
}

}  // namespace
}  // namespace butter::launcher
