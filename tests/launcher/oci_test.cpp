// config.json -> the plan (oci/config.hpp), without running anything: each field where the
// plan has it, and each bad input as one error naming the file and the field's JSON pointer.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>

#include <nlohmann/json.hpp>

#include "../support/tmpdir.hpp"
#include "oci/config.hpp"

namespace butter::launcher::oci {
namespace {

using nlohmann::json;

class OciConfig : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::mkdir((bundle_ / "rootfs").c_str(), 0755), 0);
        spec_ = json::parse(default_spec(false));
    }
    Result<Config> parse() { return parse_config(spec_.dump(), bundle_.path(), "b/config.json"); }
    std::string error() {
        auto c = parse();
        return c ? std::string("(parsed)") : c.error().what();
    }
    test::TempDir bundle_;
    json spec_;
};

TEST_F(OciConfig, TheDefaultSpecPlansAContainer) {
    auto c = parse();
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_TRUE(c->warnings.empty());
    const SandboxPlan& p = c->plan;
    EXPECT_EQ(p.argv, std::vector<std::string>{"sh"});
    EXPECT_EQ(p.exec_candidates.front(), "/usr/local/sbin/sh");
    EXPECT_EQ(p.cwd, "/");
    EXPECT_EQ(p.hostname, "butter");
    EXPECT_TRUE(p.no_init);
    EXPECT_TRUE(p.read_only_root);
    EXPECT_TRUE(p.no_new_privs);
    EXPECT_TRUE(p.namespaces.has(Namespace::Pid));
    EXPECT_TRUE(p.namespaces.has(Namespace::Cgroup));
    EXPECT_FALSE(p.namespaces.has(Namespace::User));
    EXPECT_EQ(p.root_dir, bundle_ / "rootfs");
    ASSERT_EQ(p.rlimits.size(), 1u);
    EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(*p.rlimits[0].hard, 1024u);
    ASSERT_TRUE(p.oci_caps);
    EXPECT_EQ(p.oci_caps->bounding.to_string(), "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE");
    EXPECT_EQ(p.oci_caps->effective, p.oci_caps->bounding);
    EXPECT_TRUE(p.oci_caps->ambient.empty());
    EXPECT_TRUE(p.oci_caps->inheritable.empty());
    // proc, the /dev tmpfs, devpts, shm, mqueue, sysfs, then the default devices.
    ASSERT_EQ(p.mounts.size(), 7u);
    EXPECT_EQ(p.mounts[2].fstype, "devpts");
    EXPECT_EQ(p.mounts[2].options, "newinstance,ptmxmode=0666,mode=0620");
    EXPECT_EQ(p.mounts[2].flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC));
    // Every other mount, and the root, nodev: no device node of the image's or the container's.
    EXPECT_EQ(p.mounts[1].flags & MS_NODEV, static_cast<unsigned long>(MS_NODEV));  // /dev
    EXPECT_EQ(p.mounts[0].fstype, "proc");
    EXPECT_EQ(p.mounts[0].flags & MS_NODEV, static_cast<unsigned long>(MS_NODEV));
    EXPECT_EQ(p.root_attrs & MOUNT_ATTR_NODEV, static_cast<std::uint64_t>(MOUNT_ATTR_NODEV));
    EXPECT_EQ(p.mounts[5].flags & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
    EXPECT_EQ(p.mounts.back().type, profile::MountType::DevNodes);
    EXPECT_EQ(p.masked_paths.front(), "/proc/acpi");
    EXPECT_EQ(p.readonly_paths.size(), 5u);
}

// ("Compile": not under valgrind, whose libseccomp attribute calls fail.)
TEST_F(OciConfig, ProcessUserLimitsAndCompiledFilter) {
    spec_["process"]["capabilities"]["ambient"] = {"CAP_KILL", "CAP_NOT_A_THING"};
    spec_["process"]["user"] = {
        {"uid", 1000}, {"gid", 100}, {"umask", 63}, {"additionalGids", {5, 6}}};
    spec_["process"]["env"] = {"PATH=/opt/bin", "A=b"};
    spec_["process"]["noNewPrivileges"] = false;
    spec_["process"]["rlimits"] = {{{"type", "RLIMIT_NPROC"}, {"soft", 10}, {"hard", 20}}};
    spec_["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
    spec_["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}},
        {"syscalls",
         {{{"names", {"mkdir", "no_such_call"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}},
          {{"names", {"personality"}},
           {"action", "SCMP_ACT_ERRNO"},
           {"args", {{{"index", 0}, {"value", 8}, {"op", "SCMP_CMP_EQ"}}}}}}}};
    auto c = parse();
    ASSERT_TRUE(c) << c.error().what();
    const SandboxPlan& p = c->plan;
    EXPECT_EQ(p.uid, 1000u);
    EXPECT_EQ(p.gid, 100u);
    EXPECT_EQ(*p.umask, 077u);
    EXPECT_EQ(p.groups, (std::vector<gid_t>{5, 6}));
    EXPECT_EQ(p.exec_candidates, std::vector<std::string>{"/opt/bin/sh"});
    EXPECT_EQ(p.rlimits[0].value, 10u);
    EXPECT_EQ(*p.rlimits[0].hard, 20u);
    EXPECT_FALSE(p.no_new_privs);
    EXPECT_TRUE(p.seccomp_early);  // without no_new_privs: loaded while root may still
    EXPECT_FALSE(p.seccomp.empty());
    EXPECT_EQ(p.sysctls.at(0).first, "net.ipv4.ip_forward");
    EXPECT_EQ(p.oci_caps->ambient.to_string(), "CAP_KILL");
    ASSERT_EQ(c->warnings.size(), 1u);  // the capability this kernel does not know
    EXPECT_NE(c->warnings[0].find("/process/capabilities/ambient/1: unknown capability"),
              std::string::npos);
    spec_["process"].erase("capabilities");
    c = parse();
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_TRUE(c->plan.oci_caps->bounding.empty());  // none given: none kept
}

TEST_F(OciConfig, BadInputIsOneErrorNamingTheField) {
    EXPECT_NE(parse_config("{\"ociVersion\": ", bundle_.path(), "b/config.json")
                  .error()
                  .what()
                  .find("b/config.json: [json.exception.parse_error.101] parse error at line 1"),
              std::string::npos);
    auto expect = [&](const std::string& want) {
        std::string got = error();
        EXPECT_NE(got.find(want), std::string::npos) << got;
        spec_ = json::parse(default_spec(false));
    };
    spec_["process"]["args"] = "sh";
    expect("b/config.json: /process/args: must be an array");
    spec_["process"]["args"] = json::array();
    expect("/process/args: must name a program");
    spec_.erase("ociVersion");
    expect("/ociVersion: missing");
    spec_["ociVersion"] = "2.0.0";
    expect("/ociVersion: '2.0.0' is not 1.x");
    spec_["linux"]["namespaces"].push_back({{"type", "bogus"}});
    expect("/linux/namespaces/6/type: unknown namespace 'bogus'");
    spec_["linux"]["namespaces"].push_back({{"type", "pid"}});
    expect("/linux/namespaces/6/type: 'pid' given twice");
    spec_["linux"]["namespaces"][0] = {{"type", "pid"}, {"path", "/proc/1/ns/pid"}};
    spec_["linux"]["namespaces"][1] = {{"type", "pid"}, {"path", "/proc/1/ns/pid"}};
    expect("/linux/namespaces/1/type: 'pid' given twice");
    spec_["root"]["path"] = "missing";
    expect("/root/path: ");
    spec_["mounts"].push_back({{"destination", "/x"}, {"type", "nfs"}});
    expect("/mounts/6/type: mount type 'nfs' is not supported");
    spec_["mounts"].push_back({{"destination", "/x/../../etc"}, {"type", "tmpfs"}});
    expect("/mounts/6/destination: must not hold '..'");
    spec_["mounts"].push_back({{"destination", "/x"}, {"type", "tmpfs"}, {"options", {"rshared"}}});
    expect("/mounts/6/options/0: shared propagation is not supported");
    spec_["process"]["rlimits"] = {{{"type", "RLIMIT_BOGUS"}, {"soft", 1}, {"hard", 1}}};
    expect("/process/rlimits/0/type: unknown rlimit 'RLIMIT_BOGUS'");
    spec_["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 2}, {"hard", 1}}};
    expect("/process/rlimits/0/soft: is above the hard limit");
    spec_["linux"]["sysctl"] = {{"../../etc/passwd", "x"}};
    expect("/linux/sysctl/../../etc/passwd: not a sysctl name");
    spec_["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
    expect("/linux/uidMappings: mappings need a user namespace");
    spec_["hooks"] = {{"createContainer", {{{"path", "bin/true"}}}}};
    expect("/hooks/createContainer/0/path: must be absolute");
    spec_["linux"]["resources"] = {{"memory", {{"limit", "lots"}}}};
    expect("b/config.json: /linux/resources/memory/limit: must be an integer");
    spec_["linux"]["resources"] = {{"pids", {{"limit", "many"}}}, {"devices", "all"}};
    expect("b/config.json: /linux/resources/pids/limit: must be an integer");
    // From an attacker's review: host-wide sysctls, values that wrap, no pid namespace.
    spec_["linux"]["sysctl"] = {{"kernel.printk_ratelimit", "1"}};
    expect("/linux/sysctl/kernel.printk_ratelimit: not a sysctl of the container's namespaces");
    spec_["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
    spec_["linux"]["namespaces"].erase(1);  // network
    expect("/linux/sysctl/net.ipv4.ip_forward: needs a network namespace of the container's own");
    spec_["process"]["user"] = {{"uid", 4294967296}, {"gid", 0}};
    expect("/process/user/uid: must be an integer from 0 to 4294967294");
    spec_["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"additionalGids", {4294967295}}};
    expect("/process/user/additionalGids/0: must be an integer from 0 to 4294967294");
    spec_["linux"]["resources"] = {{"cpu", {{"shares", -5}}}};
    expect("/linux/resources/cpu/shares: must be an integer from 0 to 262144");
    spec_["linux"]["resources"] = {{"memory", {{"limit", 1.5}}}};
    expect("/linux/resources/memory/limit: must be an integer from -1 to");
    spec_["linux"]["namespaces"].erase(0);  // pid
    expect(
        "/linux/namespaces: butter needs a pid namespace (the container's own, or one joined "
        "by path)");
    spec_["mounts"].push_back({{"destination", "/"}, {"type", "tmpfs"}});
    expect("/mounts/6/destination: must not be the root");
    spec_["mounts"].push_back({{"destination", "/x"},
                               {"type", "bind"},
                               {"source", "/"},
                               {"options", {"rbind", "hidepid=2"}}});
    expect("/mounts/6/options: unknown option 'hidepid=2' for a bind");
    spec_["hostname"] = "h";
    spec_["linux"]["namespaces"] = json::array({{{"type", "mount"}}, {{"type", "pid"}}});
    expect("/hostname: setting it needs a uts namespace");
}

TEST_F(OciConfig, FilterErrorsNameTheFieldCompiled) {
    auto expect = [&](const std::string& want) {
        std::string got = error();
        EXPECT_NE(got.find(want), std::string::npos) << got;
        spec_ = json::parse(default_spec(false));
    };
    spec_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_NOTIFY"}};
    expect(
        "/linux/seccomp/listenerPath: missing (SCMP_ACT_NOTIFY needs a seccomp agent to "
        "answer)");
    spec_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"listenerPath", "rel"}};
    expect("/linux/seccomp/listenerPath: must be an absolute path");
    spec_["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls",
         {{{"names", {"read"}},
           {"action", "SCMP_ACT_ERRNO"},
           {"args", {{{"index", 9}, {"value", 0}, {"op", "SCMP_CMP_EQ"}}}}}}}};
    expect("/linux/seccomp/syscalls/0/args/0/index: must be 0 to 5");
}

TEST_F(OciConfig, UnknownAndIgnoredFieldsAreWarnings) {
    spec_["process"]["apparmorProfile"] = "docker-default";
    spec_["linux"]["somethingNew"] = true;
    auto c = parse();
    ASSERT_TRUE(c) << c.error().what();
    ASSERT_EQ(c->warnings.size(), 2u);
    EXPECT_EQ(c->warnings[0], "b/config.json: /linux/somethingNew: unknown field, ignored");
    EXPECT_NE(c->warnings[1].find("/process/apparmorProfile: ignored"), std::string::npos);
}

TEST(OciFeatures, ListWhatTheConfigTakes) {
    auto f = json::parse(features_json());
    EXPECT_EQ(f["ociVersionMax"], "1.1.0");
    EXPECT_NE(std::find(f["linux"]["namespaces"].begin(), f["linux"]["namespaces"].end(), "user"),
              f["linux"]["namespaces"].end());
    EXPECT_FALSE(f["linux"]["capabilities"].empty());
    EXPECT_EQ(f["linux"]["apparmor"]["enabled"], false);
}

}  // namespace
}  // namespace butter::launcher::oci
