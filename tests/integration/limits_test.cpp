// [limits] end to end: cgroup memory/pids/cpu limits and rlimits.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include <butter/cgroup.hpp>
#include <butter/fd.hpp>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

std::string field(const std::string& json, const std::string& key) {
    auto at = json.find("\"" + key + "\": ");
    if (at == std::string::npos) return "<missing>";
    at += key.size() + 4;
    auto end = json.find_first_of(",\n", at);
    if (json[at] == '[' || json[at] == '{') end = json.find_first_of("]}", at) + 1;
    return json.substr(at, end - at);
}

class Limits : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0); }
    RunResult probe(std::vector<std::string> extra, std::vector<std::string> cmd,
                    bool nobody = false) {
        std::vector<std::string> args{"run", "--ro-bind", std::string(probe_bin()) + ":/probe",
                                      "--report", dir_ / "r.json"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--");
        args.push_back("/probe");
        args.insert(args.end(), cmd.begin(), cmd.end());
        RunOptions o;
        o.cwd = dir_.path();
        o.as_nobody = nobody;
        return run_butter(args, o);
    }
    std::string report() { return read_file(dir_ / "r.json"); }
    TempDir dir_;
};

TEST_F(Limits, MemoryHogIsKilledAndReportedAsOom) {
    BUTTER_REQUIRE_ROOT();
    auto r = probe({"--set", "limits.memory=\"64M\""}, {"alloc", "512"});
    EXPECT_EQ(r.code, 137) << r.err;
    EXPECT_NE(r.err.find("ran out of memory"), std::string::npos) << r.err;
    std::string j = report();
    EXPECT_EQ(field(j, "reason"), "\"oom\"");
    EXPECT_EQ(field(j, "limits_hit"), "[\"memory\"]");
    EXPECT_LE(std::stoull(field(j, "peak_memory_bytes")), 64ULL << 20);
    auto fits = probe({"--set", "limits.memory=\"256M\""}, {"alloc", "64"});
    EXPECT_EQ(fits.code, 0) << fits.err;
    EXPECT_EQ(field(report(), "limits_hit"), "[]");
}

TEST_F(Limits, ForkBombStopsAtThePidsLimit) {
    BUTTER_REQUIRE_ROOT();
    auto r = probe({"--set", "limits.pids=16"}, {"forkbomb"});
    // init and the probe count too: the probe gets at most 14 children.
    int made = std::atoi(r.out.c_str());
    EXPECT_GT(made, 0) << r.out << r.err;
    EXPECT_LE(made, 14) << r.out;
    EXPECT_NE(r.out.find("EAGAIN"), std::string::npos) << r.out;
    std::string j = report();
    EXPECT_EQ(field(j, "limits_hit"), "[\"pids\"]");
    EXPECT_TRUE(pids_matching("/probe forkbomb").empty());
}

TEST_F(Limits, CpuQuotaSlowsASpinner) {
    BUTTER_REQUIRE_ROOT();
    auto start = std::chrono::steady_clock::now();
    auto r = probe({"--set", "limits.cpus=0.25"}, {"spin", "250"});
    auto wall = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 0) << r.err;
    // 250 ms of CPU at a quarter of a CPU needs about a second of wall time.
    EXPECT_GE(wall, std::chrono::milliseconds(700));
}

TEST_F(Limits, CgroupsAreRemovedAfterTheRun) {
    BUTTER_REQUIRE_ROOT();
    RunOptions o;
    o.cwd = dir_.path();
    auto s = start_butter(
        {"run", "--ro-bind", std::string(probe_bin()) + ":/probe", "--set", "limits.pids=32",
         "--set", "limits.memory=\"128M\"", "--", "/probe", "wait-signal"},
        o);
    ASSERT_GT(s.pid, 0);
    // This butter's cgroups (named by its pid; other tests may run butters meanwhile): on v1
    // below the test's own cgroup in each hierarchy; on v2 one for both, beside the leaf that
    // butter moved itself into (in its own cgroup, or in a systemd scope it asked for).
    std::string name = "/butter-" + std::to_string(s.pid);
    std::set<std::string> dirs;
    auto ours = [&] {
        for (const char* c : {"pids", "memory"}) {
            auto h = find_cgroup_hierarchy(c);
            if (!h) continue;
            if (h->version == CgroupVersion::V1) {
                dirs.insert(h->own_path() + name);
                continue;
            }
            std::string cg = read_file("/proc/" + std::to_string(s.pid) + "/cgroup");
            auto at = cg.find("0::");
            if (at == std::string::npos) continue;
            cg = cg.substr(at + 3, cg.find('\n', at) - at - 3);
            std::string leaf = "/" + std::string(kCgroupLeaf);
            if (cg.ends_with(leaf)) cg.resize(cg.size() - leaf.size());
            dirs.insert(h->mount + cg + name);
        }
        int n = 0;
        for (const auto& d : dirs) {
            struct stat st {};
            n += ::stat(d.c_str(), &st) == 0;
        }
        return n;
    };
    bool v2 = find_cgroup_hierarchy("memory") &&
              find_cgroup_hierarchy("memory")->version == CgroupVersion::V2;
    ASSERT_EQ(read_line(s.out_fd), "ready");
    EXPECT_EQ(ours(), v2 ? 1 : 2);
    ::kill(s.pid, SIGHUP);
    EXPECT_EQ(read_line(s.out_fd), "got HUP");
    EXPECT_EQ(wait_butter(s.pid), 0);
    ::close(s.out_fd);
    EXPECT_EQ(ours(), 0);
}

TEST_F(Limits, UnprivilegedWithoutCgroupFallsBackOrIsAClearError) {
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable");
    // memory and pids have stand-ins that hold in the sandbox; the run says which.
    std::string rep = dir_ / "r.json";
    auto r = probe({"--set", "limits.memory=\"64M\"", "--set", "limits.pids=32", "--report", rep},
                   {"pid"}, true);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("held by RLIMIT_AS, per process (not in total) instead"),
              std::string::npos)
        << r.err;
    // The key, then the cause as the kernel gave it (no key inside the call's quotes).
    EXPECT_NE(r.err.find("butter: warning: limits.memory: no cgroup ("), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("(\"limits."), std::string::npos) << r.err;
    std::string j = read_file(rep);
    EXPECT_NE(j.find("\"memory\": {\"value\": 67108864, \"enforced_by\": \"RLIMIT_AS"),
              std::string::npos)
        << j;
    EXPECT_NE(j.find("\"pids\": {\"value\": 32, \"enforced_by\": \"RLIMIT_NPROC"),
              std::string::npos)
        << j;
    // CPU bandwidth has none: an error with the fix, or with limits.optional a warning.
    auto cpus = probe({"--set", "limits.cpus=0.5"}, {"pid"}, true);
    EXPECT_EQ(cpus.code, 125);
    EXPECT_NE(cpus.err.find("no cgroup for the cpu controller"), std::string::npos) << cpus.err;
    EXPECT_NE(cpus.err.find("butter: limits.cpus: no cgroup ("), std::string::npos) << cpus.err;
    auto opt = probe({"--set", "limits.cpus=0.5", "--set", "limits.optional=true"}, {"pid"}, true);
    EXPECT_EQ(opt.code, 0) << opt.err;
    EXPECT_EQ(opt.out, "2\n");
    EXPECT_NE(opt.err.find("warning: limits.cpus: no cgroup ("), std::string::npos) << opt.err;
    EXPECT_NE(opt.err.find("not applied (limits.optional)"), std::string::npos) << opt.err;
    EXPECT_EQ(opt.err.find("set limits.optional"), std::string::npos) << "already set";
}

TEST_F(Limits, CiJobEndToEnd) {
    // What a CI runner does: a time limit, memory and pids limits, output to a file, the report.
    BUTTER_REQUIRE_ROOT();
    std::string log = dir_ / "job.log";
    auto r = run_butter(
        {"run", "--report", dir_ / "r.json", "--timeout", "30s", "--set", "limits.memory=\"256M\"",
         "--set", "limits.pids=64", "--set", "output.stdout=\"file:" + log + "\"", "--", "sh", "-c",
         "echo building; for i in 1 2 3; do echo step $i; done; exit 0"},
        [&] {
            RunOptions o;
            o.cwd = dir_.path();
            return o;
        }());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(read_file(log), "building\nstep 1\nstep 2\nstep 3\n");
    std::string j = report();
    EXPECT_EQ(field(j, "status"), "0");
    EXPECT_EQ(field(j, "limits_hit"), "[]");
    EXPECT_NE(field(j, "peak_memory_bytes"), "null");
    EXPECT_NE(field(j, "peak_pids"), "<missing>");
    // The same job over its time limit: 124, reported.
    auto slow = run_butter({"run", "--report", dir_ / "r.json", "--timeout", "300ms", "--set",
                            "limits.memory=\"256M\"", "--", "sleep", "30"},
                           [&] {
                               RunOptions o;
                               o.cwd = dir_.path();
                               return o;
                           }());
    EXPECT_EQ(slow.code, 124);
    EXPECT_EQ(field(report(), "reason"), "\"time_limit\"");
}

TEST_F(Limits, Rlimits) {
    BUTTER_REQUIRE(is_root() || have_userns(), "USERNS", "no way to run a sandbox");
    auto r = probe({"--set", "limits.open_files=20"}, {"open-many"});
    EXPECT_EQ(r.out, "17 EMFILE\n") << r.err;  // 0-2 are open
    auto big = run_butter({"run", "--set", "limits.file_size=\"4K\"", "--", "sh", "-c",
                           "head -c 8192 /dev/zero > " + (dir_ / "big") + "; echo $?"},
                          [&] {
                              RunOptions o;
                              o.cwd = dir_.path();
                              return o;
                          }());
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "big").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 4096);
}

}  // namespace
}  // namespace butter::test
