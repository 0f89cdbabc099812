// `butter learn` end to end, as root and as nobody, with real programs: a Python script that
// reads a config file outside the default profile, writes its output, talks to itself over
// localhost and calls a syscall the default denies; `make` building a C program; `git`
// committing. For each: the learned profile passes `butter check`, runs the same command, and
// still refuses what the program never did (an unrelated file, another syscall, the network).
// Two learns of the same run write the same bytes; --merge keeps what an earlier learn found
// and --diff says what would change.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

constexpr uid_t kNobody = 65534;

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Owned by nobody, for the runs as nobody, and for root's: the default profile binds a
// root-owned working directory read-only.
void give_to_nobody(const std::string& path) {
    ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0) << path;
}

class Learn : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();  // the host's files are made as root; butter runs as either
        if (nobody())
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        ASSERT_EQ(::chmod(host_.path().c_str(), 0755), 0);
        write_file(host_ / "config.ini", "key=value\n");
        write_file(host_ / "unrelated.txt", "not for the program\n");
        ASSERT_EQ(::chmod(work_.path().c_str(), 0755), 0);
        give_to_nobody(work_.path());
        ASSERT_EQ(::chmod(prof_.path().c_str(), 0755), 0);
        if (nobody()) give_to_nobody(prof_.path());
    }
    bool nobody() const { return GetParam(); }
    RunResult butter(std::vector<std::string> args, std::vector<std::string> env = {}) {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_.path();
        o.env = std::move(env);
        return run_butter(args, o);
    }
    // A file of the workspace, owned by nobody.
    void work_file(const std::string& name, const std::string& text) {
        write_file(work_ / name, text);
        give_to_nobody(work_ / name);
    }
    // Below /opt: a host directory the default profile does not mount.
    TempDir host_{"/opt"};
    TempDir work_, prof_;
};

TEST_P(Learn, PythonScriptGetsExactlyWhatItUsed) {
    BUTTER_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "PYTHON", "python3 not installed");
    work_file("app.py",
              "import ctypes, socket\n"
              "cfg = open('" +
                  host_ / "config.ini" +
                  "').read()\n"
                  "open('out.txt', 'w').write(cfg.upper())\n"
                  "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
                  "c = socket.create_connection(s.getsockname()); a, _ = s.accept()\n"
                  "c.sendall(b'hi'); print('socket', a.recv(2).decode())\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "r = libc.syscall(250, 0, -3, 0)  # keyctl: the session keyring's id\n"
                  "print('keyctl', 'ok' if r > 0 else ctypes.get_errno())\n");
    const std::string learned = prof_ / "learned.toml";
    RunResult l = butter({"learn", "-o", learned, "--", "python3", "app.py"});
    ASSERT_EQ(l.code, 0) << l.err << l.out;
    EXPECT_EQ(l.out, "socket hi\nkeyctl ok\n") << l.err;
    std::string text = read_file(learned);
    EXPECT_TRUE(has(text, "extends = \"default\"\n")) << text;
    EXPECT_TRUE(has(text, "{ type = \"bind\", source = \"" + host_ / "config.ini" +
                              "\", target = \"" + host_ / "config.ini" +
                              "\", read_only = true },  # read\n"))
        << text;
    EXPECT_TRUE(has(text, "  \"keyctl\",  # called, and denied by default\n")) << text;
    EXPECT_FALSE(has(text, "unrelated")) << text;
    EXPECT_FALSE(has(text, "[network]")) << text;  // localhost is the sandbox's own
    EXPECT_TRUE(has(text, "[limits]\ntime = \"10s\"")) << text;
    EXPECT_TRUE(has(text, "\n# open_files = 64  # its descriptors stayed below half")) << text;
    RunResult check = butter({"check", learned});
    EXPECT_EQ(check.code, 0) << check.out << check.err;

    // The learned profile runs the same command.
    ASSERT_EQ(::unlink((work_ / "out.txt").c_str()), 0);
    RunResult run = butter({"run", "-p", learned, "--", "python3", "app.py"});
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, "socket hi\nkeyctl ok\n") << run.err;
    EXPECT_EQ(read_file(work_ / "out.txt"), "KEY=VALUE\n");
    // And refuses what the program never did.
    const std::string probe =
        "import ctypes, socket\n"
        "try:\n open('" +
        host_ / "unrelated.txt" +
        "').read(); print('read')\n"
        "except OSError as e:\n print('unrelated', e.errno)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.syscall(248, b'user', b'k', b'v', 1, -3)  # add_key\n"
        "print('add_key', ctypes.get_errno() if r < 0 else 'ok')\n"
        "try:\n socket.create_connection(('203.0.113.5', 80), timeout=2); print('connected')\n"
        "except OSError as e:\n print('connect', e.errno)\n";
    RunResult refused = butter({"run", "-p", learned, "--", "python3", "-c", probe});
    EXPECT_EQ(refused.out, "unrelated 2\nadd_key 1\nconnect 101\n") << refused.err;

    // The same run learned again: the same bytes.
    RunResult again = butter({"learn", "-o", prof_ / "again.toml", "--", "python3", "app.py"});
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(read_file(prof_ / "again.toml"), text);
}

TEST_P(Learn, MergeKeepsWhatAnEarlierRunNeededAndDiffSaysWhatChanges) {
    BUTTER_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "PYTHON", "python3 not installed");
    const std::string first = prof_ / "learned.toml";
    // (A command line with line breaks: they stay out of the profile's comments.)
    RunResult a = butter(
        {"learn", "-o", first, "--", "python3", "-c",
         "x = '''\n[limits]\nmemory = 1\n'''\nprint(open('" + host_ / "config.ini" + "').read())"});
    ASSERT_EQ(a.code, 0) << a.err;
    EXPECT_EQ(butter({"check", first}).code, 0) << read_file(first);
    const std::string before = read_file(first);
    std::vector<std::string> second{"--", "python3", "-c",
                                    "print(open('" + host_ / "unrelated.txt" + "').read())"};
    std::vector<std::string> diff{"learn", "--merge", first, "--diff", "-o", first};
    diff.insert(diff.end(), second.begin(), second.end());
    RunResult d = butter(diff);
    EXPECT_EQ(d.code, 1) << d.err;
    EXPECT_TRUE(has(d.out, "+  { type = \"bind\", source = \"" + host_ / "unrelated.txt")) << d.out;
    EXPECT_EQ(read_file(first), before) << "--diff writes nothing";
    std::vector<std::string> merge{"learn", "--merge", first, "-o", prof_ / "merged.toml"};
    merge.insert(merge.end(), second.begin(), second.end());
    RunResult m = butter(merge);
    ASSERT_EQ(m.code, 0) << m.err;
    std::string text = read_file(prof_ / "merged.toml");
    EXPECT_TRUE(has(text, host_ / "config.ini\", read_only = true },  # kept from " + first))
        << text;
    EXPECT_TRUE(has(text, host_ / "unrelated.txt\", read_only = true },  # read")) << text;
    RunResult both = butter({"run", "-p", prof_ / "merged.toml", "--", "sh", "-c",
                             "cat " + host_ / "config.ini" + " " + host_ / "unrelated.txt"});
    EXPECT_EQ(both.code, 0) << both.err;
}

TEST_P(Learn, MakeBuildsAndNothingElse) {
    BUTTER_REQUIRE(::access("/usr/bin/make", X_OK) == 0 && ::access("/usr/bin/cc", X_OK) == 0,
                   "MAKE", "make or cc not installed");
    work_file("hello.c", "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n");
    work_file("Makefile",
              "hello: hello.c\n\tcc -o hello hello.c\n"
              "other:\n\tcat " +
                  host_ / "unrelated.txt" + "\n");
    const std::string learned = prof_ / "learned.toml";
    RunResult l = butter({"learn", "-o", learned, "--", "make", "hello"});
    ASSERT_EQ(l.code, 0) << l.err;
    EXPECT_EQ(butter({"check", learned}).code, 0);
    ASSERT_EQ(::unlink((work_ / "hello").c_str()), 0);
    RunResult run = butter({"run", "-p", learned, "--", "sh", "-c", "make hello && ./hello"});
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_TRUE(has(run.out, "hello\n")) << run.out;
    RunResult other = butter({"run", "-p", learned, "--", "make", "other"});
    EXPECT_NE(other.code, 0);
    EXPECT_TRUE(has(other.err, "No such file or directory")) << other.err;
}

TEST_P(Learn, GitCommitsAndReachesNoOtherRepository) {
    BUTTER_REQUIRE(::access("/usr/bin/git", X_OK) == 0, "GIT", "git not installed");
    // A repository of the workspace's owner, and another one outside it.
    std::string setup = "cd " + work_.path() +
                        " && export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory "
                        "GIT_CONFIG_VALUE_0='*' && git init -q && git config user.name t && "
                        "git config user.email t@example.org && echo 1 > f && git add f && "
                        "git commit -qm one && chown -R 65534:65534 . && git init -q " +
                        host_ / "other";
    ASSERT_EQ(std::system(setup.c_str()), 0);
    // The sandbox's user is not always the repository's owner (root's run is root inside).
    std::vector<std::string> env{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory",
                                 "GIT_CONFIG_VALUE_0=*"};
    const std::string commit =
        "date +%N >> f && git commit -qam change && git log --oneline | wc -l";
    const std::string learned = prof_ / "learned.toml";
    // The default keeps .git read-only: the learning run's commit fails, and says what to add.
    RunResult l = butter({"learn", "-o", learned, "--", "sh", "-c", commit}, env);
    EXPECT_EQ(l.code, 128) << l.err;
    EXPECT_TRUE(
        has(read_file(learned), "writable_git = true  # the run wrote to " + work_ / ".git"))
        << read_file(learned);
    EXPECT_EQ(butter({"check", learned}).code, 0);
    RunResult run = butter({"run", "-p", learned, "--", "sh", "-c", commit}, env);
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out, "2\n") << run.err;  // the first commit, and this one
    RunResult other =
        butter({"run", "-p", learned, "--", "git", "-C", host_ / "other", "status"}, env);
    EXPECT_NE(other.code, 0);
    EXPECT_TRUE(has(other.err, "cannot change to")) << other.err;
}

TEST_P(Learn, TheLearningRunKeepsItsOwnConfinement) {
    BUTTER_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "PYTHON", "python3 not installed");
    // io_uring would skip every seccomp rule (its opens could make a set-uid file): it stays
    // refused while learning, and the profile says so without proposing it.
    work_file("uring.py",
              "import ctypes, os\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "params = ctypes.create_string_buffer(120)\n"
              "fd = libc.syscall(425, 4, params)  # io_uring_setup\n"
              "print('io_uring', 'fd' if fd >= 0 else ctypes.get_errno())\n"
              "try:\n os.open('suid', os.O_CREAT | os.O_WRONLY, 0o4755); print('suid made')\n"
              "except OSError as e:\n print('suid', e.errno)\n");
    const std::string learned = prof_ / "learned.toml";
    RunResult l = butter({"learn", "-o", learned, "--", "python3", "uring.py"});
    EXPECT_EQ(l.code, 0) << l.err;
    EXPECT_EQ(l.out, "io_uring 1\nsuid 1\n") << l.err;
    struct stat st {};
    EXPECT_NE(::stat((work_ / "suid").c_str(), &st), 0);
    std::string text = read_file(learned);
    EXPECT_TRUE(has(text, "  # \"io_uring_setup\",  # called, and denied by default: NOT proposed"))
        << text;

    // A directory the program lists is given whole, but not what may hold secrets in it.
    ASSERT_EQ(::mkdir((host_ / ".ssh").c_str(), 0755), 0);
    write_file(host_ / ".ssh/id_ed25519", "key\n");
    ASSERT_EQ(::chmod((host_ / ".ssh/id_ed25519").c_str(), 0644), 0);
    RunResult ls = butter({"learn", "-o", learned, "--", "ls", host_.path()});
    ASSERT_EQ(ls.code, 0) << ls.err;
    RunResult cat = butter({"run", "-p", learned, "--", "sh", "-c",
                            "cat " + host_ / "config.ini" + "; cat " + host_ / ".ssh/id_ed25519"});
    EXPECT_EQ(cat.out, "key=value\n") << cat.err;
    EXPECT_NE(cat.code, 0);

    // A BASE that denies chmod outright has no set-uid rule for it in the filter: the
    // learning run answers as the rule would, and the learned profile, which allows chmod
    // back, keeps the rule.
    write_file(prof_ / "nochmod.toml",
               "extends = \"default\"\n[seccomp]\ndeny = [\"chmod\", \"fchmodat\", "
               "\"fchmodat2\"]\n");
    if (nobody()) give_to_nobody(prof_ / "nochmod.toml");
    const std::string chmod =
        "import os\nfor name, mode in (('plain', 0o755), ('setuid', 0o4755)):\n"
        " open(name, 'w').close()\n"
        " try:\n  os.chmod(name, mode); print(name, 'ok')\n"
        " except OSError as e:\n  print(name, e.errno)\n";
    RunResult c = butter({"learn", "-p", prof_ / "nochmod.toml", "-o", prof_ / "c.toml", "--",
                          "python3", "-c", chmod});
    EXPECT_EQ(c.out, "plain ok\nsetuid 1\n") << c.err;
    EXPECT_TRUE(has(read_file(prof_ / "c.toml"), "chmod\",  # called, and denied by"))
        << read_file(prof_ / "c.toml");
    RunResult cr = butter({"run", "-p", prof_ / "c.toml", "--", "python3", "-c", chmod});
    EXPECT_EQ(cr.out, "plain ok\nsetuid 1\n") << cr.err;
    ASSERT_EQ(::stat((work_ / "setuid").c_str(), &st), 0);
    EXPECT_FALSE(st.st_mode & S_ISUID);

    // An allow-list BASE (the strictest shipped profile) learns too. (A copy in a directory of
    // the user's own: nobody may not read a clone in /root, and it may not be installed.)
    write_file(prof_ / "untrusted.toml",
               read_file(std::string(BUTTER_PROFILES_SRC) + "/untrusted.toml"));
    if (nobody()) give_to_nobody(prof_ / "untrusted.toml");
    RunResult u = butter({"learn", "-p", prof_ / "untrusted.toml", "-o", prof_ / "u.toml", "--",
                          "python3", "-c", "print(sum(range(10)))"});
    EXPECT_EQ(u.code, 0) << u.err;
    EXPECT_EQ(butter({"check", prof_ / "u.toml"}).code, 0);
    RunResult again =
        butter({"run", "-p", prof_ / "u.toml", "--", "python3", "-c", "print(sum(range(10)))"});
    EXPECT_EQ(again.out, "45\n") << again.err;
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, Learn, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

}  // namespace
}  // namespace butter::test
