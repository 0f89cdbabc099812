// Copy-on-write workspaces, end to end with the real binary, as root and as nobody: an overlay
// workspace leaves the host tree as it was, its tar holds exactly what changed, applying that
// tar gives the tree a direct run gives, and the commit policy applies only as it says.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "changes/tar.hpp"
#include "cli/doctor.hpp"

namespace butter::test {
namespace {

constexpr uid_t kNobody = 65534;
// The owner of the workspace when root runs butter: an ordinary user's checkout.
constexpr uid_t kUser = 12345;

// The entries of a tar file, by name.
std::set<std::string> tar_names(const std::string& path) {
    std::set<std::string> out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    launcher::changes::TarReader r(fd);
    for (;;) {
        auto e = r.next();
        if (!e || !*e) break;
        out.insert((*e)->name);
    }
    ::close(fd);
    return out;
}

std::set<std::string> lines(const std::string& s) {
    std::set<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.insert(l);
    return out;
}

// A profile of the default's, run from /, whose mounts are /usr with the merged-/usr
// symlinks and then `more` (TOML lines).
std::string profile_with(const std::string& more) {
    return "extends = \"default\"\n[process]\ncwd = \"/\"\n[filesystem]\nmounts = [\n"
           "{ type = \"bind\", source = \"/usr\", target = \"/usr\", read_only = true },\n"
           "{ type = \"symlink\", source = \"usr/bin\", target = \"/bin\" },\n"
           "{ type = \"symlink\", source = \"usr/lib\", target = \"/lib\" },\n"
           "{ type = \"symlink\", source = \"usr/lib64\", target = \"/lib64\" },\n" +
           more + "]\n";
}

void sh(const std::string& cmd) {
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// What the job does: create, modify, delete, rename files and a directory, replace a
// directory by a file, change a mode, make a symlink.
constexpr const char* kJob =
    "set -e; echo more >> edit.txt; rm del.txt; mv mv_src.txt mv_dst.txt; "
    "mv dir_mv dir_moved; rm -r dir_del; rm -r dir_to_file; echo now-a-file > dir_to_file; "
    "mkdir newdir; echo n > newdir/n; echo fresh > fresh.txt; chmod 600 mode.txt; "
    "ln -s fresh.txt newlink; rm sub/deep.txt";

class Changes : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();  // the set-up chowns; nobody runs butter from here
        if (nobody()) BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable");
        static const std::string why = launcher::overlay_problem();
        BUTTER_REQUIRE(why.empty(), "OVERLAY", why.c_str());
        ASSERT_EQ(::chmod(base_.path().c_str(), 0755), 0);
        orig_ = base_ / "orig";
        sh("mkdir -p " + orig_ + "/dir_mv " + orig_ + "/dir_del " + orig_ + "/dir_to_file " +
           orig_ + "/sub");
        for (const char* f : {"keep.txt", "edit.txt", "del.txt", "mv_src.txt", "mode.txt",
                              "dir_mv/f", "dir_del/g", "dir_to_file/h", "sub/deep.txt"})
            write_file(orig_ + "/" + f, std::string(f) + "\n");
        ASSERT_EQ(::symlink("keep.txt", (orig_ + "/link").c_str()), 0);
        sh("chown -hR " + std::to_string(owner()) + ":" + std::to_string(owner()) + " " + orig_);
        out_ = base_ / "out";
        ASSERT_EQ(::mkdir(out_.c_str(), 0755), 0);
        ASSERT_EQ(::chown(out_.c_str(), runner(), runner()), 0);
    }
    bool nobody() const { return GetParam(); }
    uid_t runner() const { return nobody() ? kNobody : 0; }
    uid_t owner() const { return nobody() ? kNobody : kUser; }
    std::string copy(const std::string& name) {
        std::string to = base_ / name;
        sh("cp -a " + orig_ + " " + to);
        return to;
    }
    RunResult butter(std::vector<std::string> args, const std::string& cwd) {
        RunOptions o;
        o.as_nobody = nobody();
        o.cwd = cwd;
        o.env = {profile_path_env()};
        return run_butter(args, o);
    }
    RunResult job(const std::string& cwd, std::vector<std::string> extra,
                  const std::string& script = kJob) {
        std::vector<std::string> args{"run"};
        args.insert(args.end(), extra.begin(), extra.end());
        for (std::string a : {"--", "/bin/sh", "-c"})
            args.push_back(a);
        args.push_back(script);
        return butter(args, cwd);
    }
    TempDir base_;
    std::string orig_, out_;
};

TEST_P(Changes, OverlayLeavesTheHostTreeAndItsTarGivesWhatADirectRunGives) {
    auto original = tree_of(orig_);
    std::string cow = copy("cow"), direct = copy("direct"), applied = copy("applied");
    std::string tar = out_ + "/changes.tar", report = out_ + "/report.json";
    auto r = job(cow, {"--changes", tar, "--report", report});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(tree_of(cow), original) << "the overlay run changed the host tree";

    EXPECT_EQ(tar_names(tar),
              (std::set<std::string>{"edit.txt", ".wh.del.txt", ".wh.mv_src.txt", "mv_dst.txt",
                                     ".wh.dir_mv", "dir_moved/", "dir_moved/f", ".wh.dir_del",
                                     "dir_to_file", "newdir/", "newdir/n", "fresh.txt", "mode.txt",
                                     "newlink", "sub/", "sub/.wh.deep.txt"}))
        << "the tar holds other than exactly the changes";
    EXPECT_NE(read_file(report).find("\"changes\": {\"added\": 7, \"modified\": 3, \"deleted\": "
                                     "5, \"bytes\": "),
              std::string::npos)
        << read_file(report);

    auto d = job(direct, {});
    ASSERT_EQ(d.code, 0) << d.err;
    auto a = butter({"apply", tar, applied}, out_);
    ASSERT_EQ(a.code, 0) << a.err;
    EXPECT_EQ(tree_of(applied), tree_of(direct)) << "apply gave another tree than a direct run";
}

TEST_P(Changes, DashListsTheChanges) {
    std::string cow = copy("cow");
    auto r = job(cow, {"--changes", "-"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(lines(r.out),
              (std::set<std::string>{"modified edit.txt", "deleted del.txt", "deleted mv_src.txt",
                                     "added mv_dst.txt", "deleted dir_mv", "added dir_moved/",
                                     "added dir_moved/f", "deleted dir_del", "modified dir_to_file",
                                     "added newdir/", "added newdir/n", "added fresh.txt",
                                     "modified mode.txt", "added newlink", "deleted sub/deep.txt"}))
        << r.out;
    EXPECT_EQ(tree_of(cow), tree_of(orig_));
}

TEST_P(Changes, WorkspaceSizeBoundsWhatTheChangesMayTake) {
    std::string cow = copy("cow");
    auto r = job(cow, {"--changes", "-", "--set", "workspace.size=\"1M\""},
                 "head -c 512K /dev/zero > half && ! head -c 2M /dev/zero > big 2>/dev/null");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("added half"), std::string::npos) << r.out;
    EXPECT_EQ(tree_of(cow), tree_of(orig_));
}

TEST_P(Changes, CommitOnSuccessAppliesOnlyWhenTheCommandExitsZero) {
    std::string ws = copy("ws");
    std::vector<std::string> overlay{"--set", "filesystem.workspace=\"overlay\"", "--set",
                                     "workspace.commit=\"on-success\""};
    auto failed = job(ws, overlay, "echo made > made.txt; exit 3");
    EXPECT_EQ(failed.code, 3) << failed.err;
    EXPECT_EQ(tree_of(ws), tree_of(orig_)) << "a failed command's changes were applied";
    auto ok = job(ws, overlay, "echo made > made.txt; rm keep.txt");
    ASSERT_EQ(ok.code, 0) << ok.err;
    auto t = tree_of(ws);
    EXPECT_EQ(t["made.txt"], "file 0644 made\n");
    EXPECT_EQ(t.count("keep.txt"), 0u);
    struct stat st {};
    ASSERT_EQ(::lstat((ws + "/made.txt").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, owner()) << "an applied file is not the workspace owner's";
}

// The filter refuses set-id modes; were one made all the same, apply refuses it (and with it
// the whole commit: changes_test.cpp of the launcher tests). Either way none reaches the host.
TEST_P(Changes, ASetIdFileIsNeverCommitted) {
    std::string ws = copy("ws");
    auto r = job(
        ws, {"--set", "filesystem.workspace=\"overlay\"", "--set", "workspace.commit=\"always\""},
        "cp /bin/true suid; chmod 4755 suid; chmod 2755 suid; mkdir sg; chmod 2775 sg; "
        "echo x > other");
    EXPECT_TRUE(r.code == 0 || r.code == 125) << r.err;
    for (const auto& [path, what] : tree_of(ws)) {
        struct stat st {};
        ASSERT_EQ(::lstat((ws + "/" + path).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << path << " is set-id on the host";
    }
    if (r.code == 125) {
        EXPECT_EQ(tree_of(ws), tree_of(orig_)) << "part of a refused commit was applied";
    }
}

TEST_P(Changes, OverlayMountsOfAProfileKeepTheirUpperDirectory) {
    std::string low1 = copy("low1"), low2 = base_ / "low2", upper = base_ / "upper";
    sh("mkdir -p " + low2 + " " + upper + " && echo bottom > " + low2 +
       "/keep.txt && echo only2 > " + low2 + "/only2 && chown -R " + std::to_string(owner()) + ":" +
       std::to_string(owner()) + " " + low2 + " && chown " + std::to_string(runner()) + " " +
       upper);
    std::string profile = out_ + "/overlay.toml";
    // The default's mounts, and two overlays after them.
    write_file(profile, profile_with("{ type = \"dev\", target = \"/dev\" },\n"
                                     "{ type = \"overlay\", target = \"/data\", sources = [\"" +
                                     low1 + "\", \"" + low2 + "\"], upper = \"" + upper +
                                     "\" },\n{ type = \"overlay\", target = \"/small\", "
                                     "sources = [\"" +
                                     low2 + "\"], size = \"1M\" },\n"));
    auto r = butter({"run", "-p", profile, "--", "/bin/sh", "-c",
                     "cat /data/keep.txt /data/only2 && echo new > /data/new && rm "
                     "/data/only2 && ! head -c 2M /dev/zero > /small/big 2>/dev/null && echo "
                     "full"},
                    out_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "keep.txt\nonly2\nfull\n");
    EXPECT_EQ(read_file(upper + "/overlay/upper/new"), "new\n")
        << "the upper directory lost the change";
    EXPECT_EQ(tree_of(low1), tree_of(orig_));
    EXPECT_EQ(read_file(low2 + "/only2"), "only2\n");
    // The next run sees the kept changes.
    auto again =
        butter({"run", "-p", profile, "--", "/bin/sh", "-c", "cat /data/new; ls /data"}, out_);
    EXPECT_EQ(again.out.substr(0, 4), "new\n") << again.err;
    EXPECT_EQ(again.out.find("only2"), std::string::npos) << again.out;
}

TEST_P(Changes, ApplyRefusesAHostileTarAndChangesNothing) {
    std::string ws = copy("ws");
    std::string tar = out_ + "/evil.tar";
    // A tar whose second entry leaves the directory: the first must not be applied either.
    int fd = ::open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    {
        launcher::changes::TarWriter w(fd);
        launcher::changes::TarEntry e;
        e.name = "innocent";
        ASSERT_TRUE(w.add(e));
        e.name = "../escaped";
        ASSERT_TRUE(w.add(e));
        ASSERT_TRUE(w.finish());
    }
    ::close(fd);
    ASSERT_EQ(::chown(tar.c_str(), runner(), runner()), 0);
    auto a = butter({"apply", tar, ws}, out_);
    EXPECT_EQ(a.code, 1);
    EXPECT_NE(a.err.find("'..'"), std::string::npos) << a.err;
    EXPECT_NE(a.err.find("nothing was changed"), std::string::npos) << a.err;
    EXPECT_EQ(tree_of(ws), tree_of(orig_));
    struct stat st {};
    EXPECT_NE(::lstat((base_.path() + "/escaped").c_str(), &st), 0);
}

// What an OCI layer cannot say is never said wrongly: a name of the sandbox's own beginning
// with ".wh." (a deletion wherever the layer is applied: ".wh..git") fails the export and the
// commit, and the report says so; a FIFO is left out with a warning; a name with a newline is
// one quoted line of the list.
TEST_P(Changes, WhatALayerCannotCarryIsRefusedOrLeftOutAndSaid) {
    std::string ws = copy("ws");
    std::string report = out_ + "/r.json";
    auto r = job(ws,
                 {"--report", report, "--set", "filesystem.workspace=\"overlay\"", "--set",
                  "workspace.commit=\"always\""},
                 "touch .wh.keep.txt; echo x > new");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_NE(r.err.find("reserves for deletions"), std::string::npos) << r.err;
    EXPECT_EQ(tree_of(ws), tree_of(orig_)) << "a refused layer was committed";
    std::string json = read_file(report);
    EXPECT_NE(json.find("\"status\": 125"), std::string::npos) << json;
    EXPECT_NE(json.find("reserves for deletions"), std::string::npos) << json;

    auto l = job(ws, {"--changes", "-"}, "mkfifo pipe; touch \"$(printf 'x\\ndeleted keep.txt')\"");
    ASSERT_EQ(l.code, 0) << l.err;
    EXPECT_EQ(lines(l.out), (std::set<std::string>{"added \"x\\ndeleted keep.txt\""})) << l.out;
    EXPECT_NE(l.err.find("left out pipe: a FIFO"), std::string::npos) << l.err;
}

TEST_P(Changes, AChangesPathThatIsADirectoryIsRefusedBeforeTheRun) {
    std::string ws = copy("ws");
    std::string dir = out_ + "/adir";
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    ASSERT_EQ(::chown(dir.c_str(), runner(), runner()), 0);
    write_file(dir + "/precious", "p\n");
    auto r = job(ws, {"--changes", dir}, "echo ran");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_EQ(r.out, "") << "the command ran";
    EXPECT_NE(r.err.find("--changes"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir + "/precious"), "p\n");
}

TEST_P(Changes, OverlappingOverlaySourcesAreAProfileError) {
    std::string profile = out_ + "/bad.toml";
    write_file(profile,
               "extends = \"default\"\n[[filesystem.mounts]]\ntype = \"overlay\"\n"
               "target = \"/x\"\nsources = [\"" +
                   orig_ + "\", \"" + orig_ + "/sub\"]\n");
    auto r = butter({"check", profile}, out_);
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find("overlap"), std::string::npos) << r.out << r.err;
}

// A directory the caller may not write: apply finds it before it changes anything.
TEST_P(Changes, ApplyChecksEveryDirectoryItWritesFirst) {
    if (!nobody()) GTEST_SKIP() << "root writes every directory";
    std::string ws = copy("ws");
    std::string tar = out_ + "/c.tar";
    auto r = job(copy("cow"), {"--changes", tar}, "echo a > dir_mv/new; echo b > sub/new");
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_EQ(::chown((ws + "/sub").c_str(), 0, 0), 0);
    auto before = tree_of(ws);
    auto a = butter({"apply", tar, ws}, out_);
    EXPECT_EQ(a.code, 1) << a.err;
    EXPECT_NE(a.err.find("Permission denied"), std::string::npos) << a.err;
    EXPECT_NE(a.err.find("nothing was changed"), std::string::npos) << a.err;
    EXPECT_EQ(tree_of(ws), before);
}

// Attacks of a sandbox on the export and commit (an attacker's review): each fails closed,
// with one line, and butter survives it.
TEST_P(Changes, ASparseFileCannotBecomeAHugeExport) {
    std::string cow = copy("cow");
    std::string tar = out_ + "/c.tar";
    auto r = job(cow, {"--changes", tar, "--set", "workspace.size=\"64M\""}, "truncate -s 8G big");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_NE(r.err.find("more than the workspace holds"), std::string::npos) << r.err;
    struct stat st {};
    EXPECT_TRUE(::stat(tar.c_str(), &st) != 0 || st.st_size < (64 << 20)) << st.st_size;
    EXPECT_EQ(tree_of(out_).count("c.tar"), 0u) << "a partial tar was left";
}

TEST_P(Changes, ADeepTreeIsRefusedNotACrash) {
    std::string cow = copy("cow");
    std::string tar = out_ + "/c.tar";
    auto r = job(cow, {"--changes", tar},
                 "i=0; while [ $i -lt 400 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_NE(r.err.find("levels"), std::string::npos) << r.err;
    for (const auto& [path, what] : tree_of(out_))
        EXPECT_EQ(path.find(".butter-"), std::string::npos) << path << " left behind";
}

TEST_P(Changes, WhatTheSandboxMadeUnreadableIsExportedAllTheSame) {
    std::string cow = copy("cow");
    std::string tar = out_ + "/c.tar";
    auto r = job(cow, {"--changes", tar},
                 "echo x > f && chmod 000 f && mkdir d && echo y > d/g && chmod 000 d");
    ASSERT_EQ(r.code, 0) << r.err;
    auto names = tar_names(tar);
    EXPECT_TRUE(names.count("f") && names.count("d/") && names.count("d/g")) << r.err;
}

TEST_P(Changes, ASetGidDirectoryOfTheWorkspaceStillCommits) {
    std::string ws = copy("ws");
    ASSERT_EQ(::chmod((ws + "/sub").c_str(), 02775), 0);
    auto r = job(
        ws, {"--set", "filesystem.workspace=\"overlay\"", "--set", "workspace.commit=\"always\""},
        "echo x > sub/new");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_file(ws + "/sub/new"), "x\n");
}

// A set-id file of a lower layer copied up into a kept upper directory lies where no other
// user can reach it (the sandbox could rewrite its content through a shared mapping).
TEST_P(Changes, AKeptUpperIsOutOfOtherUsersReach) {
    std::string low = base_ / "low", upper = base_ / "kept";
    sh("mkdir -p " + low + " " + upper + " && cp /bin/true " + low + "/tool && chmod 4755 " + low +
       "/tool && chown -R " + std::to_string(owner()) + ":" + std::to_string(owner()) + " " + low +
       " && chmod 4755 " + low + "/tool && chown " + std::to_string(runner()) + " " + upper);
    std::string profile = out_ + "/kept.toml";
    write_file(profile, profile_with("{ type = \"overlay\", target = \"/o\", sources = [\"" + low +
                                     "\"], upper = \"" + upper + "\" },\n"));
    auto r = butter({"run", "-p", profile, "--", "/bin/sh", "-c", "touch /o/tool"}, out_);
    ASSERT_EQ(r.code, 0) << r.err;
    struct stat st {};
    ASSERT_EQ(::stat((upper + "/overlay").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << "others can reach the upper layer";
    ASSERT_EQ(::stat((upper + "/overlay/upper/tool").c_str(), &st), 0) << "not copied up";
}

// A file system mounted in the workspace is not in the overlay's view: a commit never
// removes, changes or writes into it (root's files there stay as they are).
TEST_P(Changes, ACommitNeverReachesIntoAMountInTheWorkspace) {
    std::string ws = copy("ws");
    std::string mnt = ws + "/mnt";
    ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
    ASSERT_EQ(::chown(mnt.c_str(), owner(), owner()), 0);
    ASSERT_EQ(::mount("x", mnt.c_str(), "tmpfs", 0, "mode=0755"), 0);
    write_file(mnt + "/secret", "root's\n");
    auto r = job(
        ws, {"--set", "filesystem.workspace=\"overlay\"", "--set", "workspace.commit=\"always\""},
        "rm -rf mnt; echo x > other");
    EXPECT_EQ(r.code, 125) << r.err;
    // As root the commit refuses; unprivileged the overlay itself cannot be made (the host's
    // mount is locked in the sandbox's user namespace), and says why.
    EXPECT_NE(r.err.find(nobody() ? "holds mounts" : "mount point"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(mnt + "/secret"), "root's\n");
    struct stat st {};
    EXPECT_NE(::stat((ws + "/other").c_str(), &st), 0) << "part of a refused commit was applied";
    ASSERT_EQ(::umount(mnt.c_str()), 0);
}

// The changes file and the report are never where the sandbox's commit or a writable bind
// could put a file of its own.
TEST_P(Changes, TheChangesFileIsNeverWhereTheSandboxCanWrite) {
    std::string ws = copy("ws");
    auto in_ws = job(ws, {"--changes", ws + "/c.tar", "--set", "workspace.commit=\"on-success\""},
                     "echo ran");
    EXPECT_EQ(in_ws.code, 125) << in_ws.err;
    EXPECT_NE(in_ws.err.find("workspace.commit applies"), std::string::npos) << in_ws.err;
    EXPECT_EQ(in_ws.out, "");
    std::string bound = base_ / "bound", sub = bound + "/sub";
    sh("mkdir -p " + sub + " && chown -R " + std::to_string(owner()) + ":" +
       std::to_string(owner()) + " " + bound);
    auto in_bind = job(ws, {"--bind", bound, "--changes", sub + "/c.tar"}, "echo ran");
    EXPECT_EQ(in_bind.code, 125) << in_bind.err;
    EXPECT_NE(in_bind.err.find("subdirectory of the writable bind"), std::string::npos)
        << in_bind.err;
}

// A host file named .wh.* that the sandbox deletes has no form in a layer (".wh..wh..opq"
// would empty its directory): the export refuses it.
TEST_P(Changes, DeletingAHostFileNamedLikeAWhiteoutIsRefused) {
    std::string ws = copy("ws");
    write_file(ws + "/sub/.wh..opq", "x\n");
    ASSERT_EQ(::chown((ws + "/sub/.wh..opq").c_str(), owner(), owner()), 0);
    auto r = job(
        ws, {"--set", "filesystem.workspace=\"overlay\"", "--set", "workspace.commit=\"always\""},
        "rm sub/.wh..opq");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_EQ(read_file(ws + "/sub/deep.txt"), "sub/deep.txt\n") << "the directory was emptied";
}

// Removing a tree the workspace's owner cannot remove all of (a directory of theirs that is not
// writable on the host, which the sandbox made writable in its copy) is refused before
// anything changes. As root too: the commit runs as the owner.
TEST_P(Changes, ACommitThatCannotRemoveAWholeTreeChangesNothing) {
    std::string ws = copy("ws");
    ASSERT_EQ(::mkdir((ws + "/dir_del/ro").c_str(), 0755), 0);
    write_file(ws + "/dir_del/ro/x", "x\n");
    sh("chown -R " + std::to_string(owner()) + ":" + std::to_string(owner()) + " " + ws +
       "/dir_del/ro && chmod 0555 " + ws + "/dir_del/ro");
    auto before = tree_of(ws);
    auto r = job(
        ws, {"--set", "filesystem.workspace=\"overlay\"", "--set", "workspace.commit=\"always\""},
        "echo new > anew; chmod -R u+w dir_del && rm -rf dir_del");
    EXPECT_EQ(r.code, 125) << r.err;
    EXPECT_EQ(tree_of(ws), before) << "part of a refused commit was applied";
    ASSERT_EQ(::chmod((ws + "/dir_del/ro").c_str(), 0755), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, Changes, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                             return p.param ? "Nobody" : "Root";
                         });

}  // namespace
}  // namespace butter::test
