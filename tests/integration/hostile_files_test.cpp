// Nothing a sandbox writes is trusted afterwards: every file or symlink a sandbox can leave in a
// writable bind (or anywhere it can write) is hostile for the next run and for the host. Each
// test plants what an attacker would, then checks from outside that the next run still holds,
// that no host file changed and that no set-id file appeared. Run as root and as nobody.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>

#include <atomic>
#include <cerrno>
#include <functional>
#include <sstream>
#include <thread>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

constexpr uid_t kNobody = 65534;
// An ordinary host user that owns a workspace (no such account needed).
constexpr uid_t kUser = 12345;

// Every path below `dir` (depth first), its lstat.
void walk(const std::string& dir,
          const std::function<void(const std::string&, const struct stat&)>& f) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string p = dir + "/" + n;
        struct stat st {};
        if (::lstat(p.c_str(), &st) < 0) continue;
        f(p, st);
        if (S_ISDIR(st.st_mode)) walk(p, f);
    }
    ::closedir(d);
}

struct Param {
    bool nobody;
    uid_t owner;  // of the workspace
};
void PrintTo(const Param& p, std::ostream* os) {
    *os << (p.nobody ? "as nobody" : "as root") << ", workspace owned by " << p.owner;
}

class HostileFiles : public ::testing::TestWithParam<Param> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();  // the set-up chowns; nobody runs butter from here
        if (nobody()) {
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        }
        ASSERT_EQ(::chmod(base_.path().c_str(), 0755), 0);
        work_ = base_ / "work";
        ASSERT_EQ(::mkdir(work_.c_str(), 0755), 0);
        ASSERT_EQ(::chown(work_.c_str(), owner(), owner()), 0);
        // A host directory the sandbox never sees, holding the victims.
        victims_ = base_ / "victims";
        ASSERT_EQ(::mkdir(victims_.c_str(), 0755), 0);
        ASSERT_EQ(::chown(victims_.c_str(), runner(), runner()), 0);
        victim_ = victims_ + "/victim";
        write_file(victim_, "host file\n");
        ASSERT_EQ(::chown(victim_.c_str(), runner(), runner()), 0);
    }
    bool nobody() const { return GetParam().nobody; }
    uid_t owner() const { return GetParam().owner; }
    // Who runs butter.
    uid_t runner() const { return nobody() ? kNobody : 0; }

    RunOptions opts() const {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = work_;
        o.env = {profile_path_env()};
        return o;
    }
    RunResult butter(std::vector<std::string> args, RunOptions o = {}) {
        if (o.cwd.empty()) o = opts();
        return run_butter(args, o);
    }
    // `butter run [extra...] -- sh -c SCRIPT` in the workspace.
    RunResult sh(const std::string& script, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"run"};
        args.insert(args.end(), extra.begin(), extra.end());
        for (std::string a : {"--", "/bin/sh", "-c"})
            args.push_back(a);
        args.push_back(script);
        return butter(args);
    }
    void expect_victim_untouched() {
        EXPECT_EQ(read_file(victim_), "host file\n") << "the host file was overwritten";
        struct stat st {};
        ASSERT_EQ(::lstat(victim_.c_str(), &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode));
    }

    TempDir base_;
    std::string work_, victims_, victim_;
};

// 1. A compiled seccomp program that butter keeps on disk is something a sandbox can rewrite:
// the next run of the same profile must still filter.
TEST_P(HostileFiles, SeccompFilterCannotBeSwitchedOffForLaterRuns) {
    // The runtime directory lies in the workspace, so the sandbox can reach whatever butter
    // keeps there (as /tmp/butter-UID is reached from `cd /tmp`).
    std::string xdg = work_ + "/xdg";
    ASSERT_EQ(::mkdir(xdg.c_str(), 0700), 0);
    ASSERT_EQ(::chown(xdg.c_str(), runner(), runner()), 0);
    RunOptions o = opts();
    o.env.push_back("XDG_RUNTIME_DIR=" + xdg);
    std::vector<std::string> keyctl{"run",   "--ro-bind", std::string(probe_bin()) + ":/probe",
                                    "--",    "/probe",    "try-syscall",
                                    "keyctl"};
    auto first = butter(keyctl, o);
    EXPECT_EQ(first.out, "EPERM\n") << first.err;

    auto poison = butter({"run", "--ro-bind", std::string(hostile_bin()) + ":/hostile", "--",
                          "/hostile", "poison-cache", xdg + "/butter"},
                         o);
    EXPECT_EQ(poison.out.find("ESCAPED"), std::string::npos) << poison.out;

    auto after = butter(keyctl, o);
    EXPECT_EQ(after.out, "EPERM\n") << "keyctl ran: the filter was switched off\n"
                                    << poison.out << after.err;
    // Nothing of butter's is kept where a sandbox could write it.
    struct stat st {};
    EXPECT_NE(::lstat((xdg + "/butter").c_str(), &st), 0) << "butter wrote into the runtime dir";
}

// 2. No set-id file and no file of host root's ever comes out of a sandbox.
TEST_P(HostileFiles, NoSetIdFilesReachTheHost) {
    auto r = butter({"run", "--ro-bind", std::string(hostile_bin()) + ":/hostile", "--", "/hostile",
                     "setuid", work_});
    EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << r.out << r.err;
    int files = 0;
    walk(work_, [&](const std::string& p, const struct stat& st) {
        ++files;
        EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u)
            << p << " is set-id: " << std::oct << st.st_mode;
        if (owner() != 0) {
            EXPECT_NE(st.st_uid, 0u) << p << " belongs to host root";
        }
        EXPECT_NE(st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 0111), true)
            << p << " is a root-owned executable";
    });
    if (owner() == 0 && !nobody()) {
        // A root-owned directory: the sandbox does not write there as host root.
        EXPECT_EQ(files, 0) << r.out;
        EXPECT_NE(r.err.find("owned by root"), std::string::npos) << r.err;
    } else {
        EXPECT_GT(files, 0) << "the attack wrote nothing: the test proves nothing\n" << r.out;
    }
}

// 3. A report or output file that a previous run replaced with a symlink.
TEST_P(HostileFiles, ReportAndOutputNeverFollowPlantedSymlinks) {
    if (owner() == 0 && !nobody()) GTEST_SKIP() << "the sandbox cannot write a root-owned dir";
    // The ci profile keeps its report in the workspace.
    auto plant = sh("ln -s " + victim_ + " butter-report.json && ln -s " + victim_ +
                    " out.log && ln -s " + victims_ + " sub");
    ASSERT_EQ(plant.code, 0) << plant.err;

    auto r = butter({"run", "-p", "ci", "--set", "output.stdout=\"file:" + work_ + "/out.log\"",
                     "--", "/bin/echo", "sandbox output"});
    EXPECT_EQ(r.code, 0) << r.err;
    expect_victim_untouched();
    // Written where asked, as files of their own: the links were replaced, not followed.
    EXPECT_EQ(read_file(work_ + "/out.log"), "sandbox output\n");
    EXPECT_NE(read_file(work_ + "/butter-report.json").find("\"status\": 0"), std::string::npos);
    struct stat st {};
    ASSERT_EQ(::lstat((work_ + "/butter-report.json").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));

    // tee output, and a report below a directory the sandbox made a symlink.
    auto t = butter({"run", "--set", "output.stdout=\"tee:" + work_ + "/out.log\"", "--report",
                     work_ + "/sub/report.json", "--", "/bin/true"});
    EXPECT_EQ(t.code, 125) << t.err;
    EXPECT_NE(t.err.find("symlink"), std::string::npos) << t.err;
    struct stat v {};
    EXPECT_NE(::lstat((victims_ + "/report.json").c_str(), &v), 0) << "written through sub";
    expect_victim_untouched();
}

// 3b. The report in the workspace is butter's, whatever the job leaves at its path or does to
// the directory: a forged report under a directory made unwritable, a directory at the name.
TEST_P(HostileFiles, JobCannotForgeOrSuppressItsReport) {
    if (owner() == 0 && !nobody()) GTEST_SKIP() << "the sandbox cannot write a root-owned dir";
    auto forged = butter({"run", "-p", "ci", "--", "/bin/sh", "-c",
                          "echo '{\"status\": 0, \"FORGED\": true}' > butter-report.json; "
                          "chmod 555 .; exit 3"});
    EXPECT_EQ(forged.code, 3) << forged.err;
    std::string j = read_file(work_ + "/butter-report.json");
    EXPECT_EQ(j.find("\"FORGED\": true"), std::string::npos) << j;  // (escaped in "command")
    EXPECT_NE(j.find("\"status\": 3"), std::string::npos) << j;
    struct stat st {};
    ASSERT_EQ(::stat(work_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0555u) << "the job's own mode, back as it left it";
    ASSERT_EQ(::chmod(work_.c_str(), 0755), 0);
    // (As root the report is root's, which the job cannot remove: a first run without one.)
    ASSERT_EQ(::unlink((work_ + "/butter-report.json").c_str()), 0);

    auto dir = butter({"run", "-p", "ci", "--", "/bin/sh", "-c",
                       "rm -f butter-report.json; mkdir butter-report.json; "
                       "echo FORGED > butter-report.json/x; exit 4"});
    EXPECT_EQ(dir.code, 4) << dir.err;
    ASSERT_EQ(::lstat((work_ + "/butter-report.json").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_NE(read_file(work_ + "/butter-report.json").find("\"status\": 4"), std::string::npos);
}

// 4. A bind source that a previous run made a symlink: never followed unless the profile says.
TEST_P(HostileFiles, BindSourcesNeverFollowPlantedSymlinks) {
    if (owner() == 0 && !nobody()) GTEST_SKIP() << "the sandbox cannot write a root-owned dir";
    auto plant = sh("ln -s " + victims_ + " out");
    ASSERT_EQ(plant.code, 0) << plant.err;
    auto r = butter({"run", "--bind", work_ + "/out:/out", "--", "/bin/cat", "/out/victim"});
    EXPECT_EQ(r.code, 125) << r.out;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("symlink"), std::string::npos) << r.err;
    // The same for the root directory and watched paths.
    auto root = butter({"run", "--set", "filesystem.root=\"" + work_ + "/out\"", "--", "/victim"});
    EXPECT_EQ(root.code, 125);
    EXPECT_NE(root.err.find("symlink"), std::string::npos) << root.err;
    auto watch =
        butter({"run", "--set", "watch.paths=[\"" + work_ + "/out/victim\"]", "--", "/bin/true"});
    EXPECT_EQ(watch.code, 125);
    EXPECT_NE(watch.err.find("symlink"), std::string::npos) << watch.err;
    expect_victim_untouched();

    // Where the profile says so, the link is followed (once, at planning).
    std::string profile = victims_ + "/follow.toml";
    write_file(profile,
               "extends = \"default\"\n"
               "[filesystem]\n"
               "mounts = [\n"
               "  { type = \"bind\", source = \"/usr\", target = \"/usr\", read_only = true },\n"
               "  { type = \"bind\", source = \"/bin\", target = \"/bin\", read_only = true, "
               "optional = true },\n"
               "  { type = \"bind\", source = \"/lib\", target = \"/lib\", read_only = true, "
               "optional = true },\n"
               "  { type = \"bind\", source = \"/lib64\", target = \"/lib64\", read_only = true, "
               "optional = true },\n"
               "  { type = \"bind\", source = \"" +
                   work_ +
                   "/out\", target = \"/out\", read_only = true, follow_symlinks = true },\n"
                   "]\n");
    auto followed = butter(
        {"run", "-p", profile, "--set", "process.cwd=\"/\"", "--", "/bin/cat", "/out/victim"});
    EXPECT_EQ(followed.code, 0) << followed.err;
    EXPECT_EQ(followed.out, "host file\n");
}

// 4b. The window between planning and mounting: a bind source swapped for a symlink while
// butter sets up is refused or bound as it was, never followed.
TEST_P(HostileFiles, BindSourceSwappedDuringSetUpIsNeverFollowed) {
    if (owner() == 0 && !nobody()) GTEST_SKIP() << "the sandbox cannot write a root-owned dir";
    std::string src = work_ + "/src", dir = work_ + "/src.dir", link = work_ + "/src.link";
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    write_file(dir + "/mine", "mine\n");
    write_file(victims_ + "/mine", "host file\n");
    ASSERT_EQ(::symlink(victims_.c_str(), link.c_str()), 0);
    // As a sandbox would have made it (root's own symlinks are trusted).
    ASSERT_EQ(::lchown(link.c_str(), owner(), owner()), 0);
    ASSERT_EQ(::rename(dir.c_str(), src.c_str()), 0);
    // And another directory, which may be bound if it was there at the time.
    std::string other = work_ + "/src.other";
    ASSERT_EQ(::mkdir(other.c_str(), 0755), 0);
    write_file(other + "/mine", "other\n");
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop) {
            for (const std::string* away : {&link, &other}) {
                ::rename(src.c_str(), dir.c_str());
                ::rename(away->c_str(), src.c_str());
                ::rename(src.c_str(), away->c_str());
                ::rename(dir.c_str(), src.c_str());
            }
        }
    });
    int bound = 0, refused = 0;
    for (int i = 0; i < 40; ++i) {
        auto r = butter({"run", "--ro-bind", src + ":/src", "--", "/bin/cat", "/src/mine"});
        if (r.code == 0) {
            ++bound;
            // Whichever directory was at the name when butter resolved it; never the link's.
            EXPECT_TRUE(r.out == "mine\n" || r.out == "other\n") << "followed: " << r.out;
        } else {
            ++refused;
            EXPECT_EQ(r.code, 125) << r.out << r.err;
            EXPECT_EQ(r.out, "");
        }
    }
    stop = true;
    flipper.join();
    EXPECT_EQ(bound + refused, 40);
}

// 5. Paths that the host later runs code from are not writable by default.
TEST_P(HostileFiles, HomeAndGitAreNotWritableByDefault) {
    // $HOME as the workspace (and so its dotfiles): refused with how to opt in.
    RunOptions o = opts();
    o.env.push_back("HOME=" + work_);
    auto home = butter({"run", "--", "/bin/true"}, o);
    EXPECT_EQ(home.code, 125);
    EXPECT_NE(home.err.find("home directory"), std::string::npos) << home.err;
    EXPECT_NE(home.err.find("filesystem.writable_home"), std::string::npos) << home.err;
    // An ancestor of $HOME, and a dot-directory of it.
    o.env.back() = "HOME=" + work_ + "/me";
    EXPECT_EQ(butter({"run", "--", "/bin/true"}, o).code, 125);
    std::string config = work_ + "/me/.config";
    ASSERT_EQ(::mkdir((work_ + "/me").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(config.c_str(), 0755), 0);
    ASSERT_EQ(::chown((work_ + "/me").c_str(), owner(), owner()), 0);
    ASSERT_EQ(::chown(config.c_str(), owner(), owner()), 0);
    o.cwd = config;
    EXPECT_EQ(butter({"run", "--", "/bin/true"}, o).code, 125);
    auto opted = butter({"run", "--set", "filesystem.writable_home=true", "--", "/bin/true"}, o);
    EXPECT_EQ(opted.code, 0) << opted.err;

    // A git checkout as the workspace: .git stays read-only, the rest is writable.
    if (owner() == 0 && !nobody()) return;  // the sandbox cannot write a root-owned dir
    std::string git = work_ + "/.git";
    ASSERT_EQ(::mkdir(git.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((git + "/hooks").c_str(), 0755), 0);
    write_file(git + "/config", "[core]\n");
    for (const std::string& p : {git, git + "/hooks", git + "/config"})
        ASSERT_EQ(::chown(p.c_str(), owner(), owner()), 0);
    auto r =
        sh("echo '[core] fsmonitor = /tmp/x' >> .git/config; echo evil > .git/hooks/post-checkout; "
           "chmod +x .git/hooks/post-checkout; echo ok > file");
    EXPECT_EQ(read_file(git + "/config"), "[core]\n");
    struct stat st {};
    EXPECT_NE(::lstat((git + "/hooks/post-checkout").c_str(), &st), 0);
    EXPECT_EQ(read_file(work_ + "/file"), "ok\n") << r.err;
    // Opted in, .git is as writable as the rest.
    auto w = sh("echo '# ok' >> .git/config", {"--set", "filesystem.writable_git=true"});
    EXPECT_EQ(w.code, 0) << w.err;
    EXPECT_EQ(read_file(git + "/config"), "[core]\n# ok\n");

    // Hooks elsewhere in the checkout (husky's core.hooksPath), and a repository kept beside
    // the work tree (a gitfile: --separate-git-dir) are read-only too.
    auto mine = [&](const std::string& p) { ASSERT_EQ(::chown(p.c_str(), owner(), owner()), 0); };
    ASSERT_EQ(::mkdir((work_ + "/.husky").c_str(), 0755), 0);
    mine(work_ + "/.husky");
    write_file(git + "/config", "[core]\n\thooksPath = \".husky\" # husky\n");
    auto hooks = sh("echo evil > .husky/pre-commit; echo ok > file2");
    EXPECT_NE(::lstat((work_ + "/.husky/pre-commit").c_str(), &st), 0) << hooks.err;
    EXPECT_EQ(read_file(work_ + "/file2"), "ok\n") << hooks.err;
    ASSERT_EQ(::rename(git.c_str(), (work_ + "/.gitdata").c_str()), 0);
    write_file(git, "gitdir: .gitdata\n");
    mine(git);
    auto separate = sh("echo evil >> .gitdata/config; echo evil > .git");
    EXPECT_EQ(read_file(work_ + "/.gitdata/config"), "[core]\n\thooksPath = \".husky\" # husky\n")
        << separate.err;
    EXPECT_EQ(read_file(git), "gitdir: .gitdata\n");
    // A .git that is a symlink cannot be bound over: refused, saying how to go on.
    ASSERT_EQ(::unlink(git.c_str()), 0);
    ASSERT_EQ(::symlink(".gitdata", git.c_str()), 0);
    auto link = sh("true");
    EXPECT_EQ(link.code, 125);
    EXPECT_NE(link.err.find("filesystem.writable_git"), std::string::npos) << link.err;
}

// 5b. A submodule's gitfile is a way into the checkout's git too: `git status` at the top
// enters each submodule through the gitdir its .git file names, and runs that gitdir's
// core.fsmonitor. Neither the gitfile nor the submodule's place can be changed.
TEST_P(HostileFiles, SubmodulesCannotRedirectGit) {
    if (owner() == 0 && !nobody()) GTEST_SKIP() << "the sandbox cannot write a root-owned dir";
    if (std::system("git --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no git";
    std::string origin = base_ / "origin";
    auto git = [&](const std::string& dir, const std::string& args) {
        // (In the environment: git's own subcommands, submodule's, see it too.)
        std::string cmd =
            "cd '" + dir +
            "' && export GIT_CONFIG_COUNT=4 GIT_CONFIG_KEY_0=safe.directory "
            "GIT_CONFIG_VALUE_0='*' GIT_CONFIG_KEY_1=protocol.file.allow "
            "GIT_CONFIG_VALUE_1=always GIT_CONFIG_KEY_2=user.name GIT_CONFIG_VALUE_2=t "
            "GIT_CONFIG_KEY_3=user.email GIT_CONFIG_VALUE_3=t@t && git " +
            args + " >/dev/null 2>&1";
        return std::system(cmd.c_str());
    };
    ASSERT_EQ(::mkdir(origin.c_str(), 0755), 0);
    ASSERT_EQ(git(origin, "init -q && touch a && git add a && git commit -qm a"), 0);
    ASSERT_EQ(git(work_, "init -q && git submodule add -q '" + origin +
                             "' libs/sub && git commit -qm top"),
              0);
    ASSERT_EQ(std::system(("chown -R " + std::to_string(owner()) + ":" + std::to_string(owner()) +
                           " '" + work_ + "'")
                              .c_str()),
              0);
    std::string gitfile = read_file(work_ + "/libs/sub/.git");
    auto r =
        sh("cp -r .git/modules/libs/sub evil; "
           "printf '[core]\\n\\tworktree = ../libs/sub\\n\\tfsmonitor = \"touch PWNED\"\\n' "
           ">> evil/config; echo 'gitdir: ../../evil' > libs/sub/.git; echo ok > file");
    EXPECT_EQ(read_file(work_ + "/file"), "ok\n") << r.err;  // the rest stays writable
    EXPECT_EQ(read_file(work_ + "/libs/sub/.git"), gitfile) << r.err;
    // The host's git, at the top: nothing of the sandbox's runs.
    git(work_, "status");
    struct stat st {};
    for (const std::string& p :
         {work_ + "/PWNED", work_ + "/libs/sub/PWNED", work_ + "/evil/PWNED"})
        EXPECT_NE(::lstat(p.c_str(), &st), 0) << p << " was made: the sandbox's fsmonitor ran";
    // Nor can another checkout take the submodule's place: its directory and those above it
    // stay where they are.
    auto moved = sh("mv libs/sub libs/sub2; mv libs libs2; rm -rf libs/sub; echo ok > file3");
    EXPECT_EQ(read_file(work_ + "/file3"), "ok\n") << moved.err;
    EXPECT_EQ(read_file(work_ + "/libs/sub/.git"), gitfile) << moved.err;
}

// 6. The sandbox's /dev (a directory of its root tmpfs) holds a bounded amount.
TEST_P(HostileFiles, DevCannotFillMemory) {
    for (const char* dir : {"/dev", "/dev/shm"}) {
        auto r = butter({"run", "--ro-bind", std::string(hostile_bin()) + ":/hostile", "--",
                         "/hostile", "fill", dir, "1024"});
        unsigned long long bytes = 0;
        char end[32] = {0};
        ASSERT_EQ(std::sscanf(r.out.c_str(), "fill: %llu bytes, then %31s", &bytes, end), 2)
            << dir << ": " << r.out << r.err;
        EXPECT_NE(std::string(end), "cap") << dir << ": 1 GiB written";
        EXPECT_LE(bytes, 64ULL << 20) << dir;
    }
}

// 6b. Extended attributes on a tmpfs (POSIX ACLs above all) are kernel memory that neither the
// tmpfs size nor a memory cgroup bounds: setting any fails, as on a filesystem without them.
TEST_P(HostileFiles, NoExtendedAttributesPinKernelMemory) {
    for (const char* dir : {"/dev/shm", "/tmp"}) {
        auto r = butter({"run", "--ro-bind", std::string(hostile_bin()) + ":/hostile", "--",
                         "/hostile", "xattr", dir});
        EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << dir << ": " << r.out << r.err;
        std::size_t blocked = 0;
        for (std::size_t at = 0;
             (at = r.out.find(": blocked EOPNOTSUPP\n", at)) != std::string::npos; ++at)
            ++blocked;
        EXPECT_EQ(blocked, 4u) << r.out;
    }
    // The control: where the profile allows them, they are set.
    auto ctl =
        butter({"run", "--set", "seccomp.restrict_xattrs=false", "--ro-bind",
                std::string(hostile_bin()) + ":/hostile", "--", "/hostile", "xattr", "/tmp"});
    EXPECT_NE(ctl.out.find("setxattr system.posix_acl_access: ESCAPED"), std::string::npos)
        << ctl.out << ctl.err;
}

INSTANTIATE_TEST_SUITE_P(Runs, HostileFiles,
                         ::testing::Values(Param{false, 0}, Param{false, kUser},
                                           Param{true, kNobody}),
                         [](const auto& p) {
                             return std::string(p.param.nobody ? "AsNobody" : "AsRoot") +
                                    "_WorkspaceOf" + std::to_string(p.param.owner);
                         });

}  // namespace
}  // namespace butter::test
