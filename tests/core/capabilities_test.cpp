#include "butter/capabilities.hpp"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "../support/child.hpp"
#include "../support/userns.hpp"
#include "butter/process.hpp"

namespace butter {
namespace {

// The Cap* lines of /proc/self/status as numbers.
std::map<std::string, std::uint64_t> proc_caps() {
    std::ifstream in("/proc/self/status");
    std::map<std::string, std::uint64_t> out;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("Cap")) continue;
        auto colon = line.find(':');
        out[line.substr(0, colon)] = std::stoull(line.substr(colon + 1), nullptr, 16);
    }
    return out;
}

TEST(Capabilities, Names) {
    EXPECT_EQ(*capability_from_name("CAP_NET_ADMIN"), CAP_NET_ADMIN);
    EXPECT_EQ(*capability_from_name("cap_chown"), CAP_CHOWN);
    EXPECT_EQ(*capability_from_name("sys_admin"), CAP_SYS_ADMIN);
    auto bad = capability_from_name("CAP_FLY");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().context(), "CAP_FLY");
    EXPECT_EQ(capability_name(CAP_SYS_ADMIN), "CAP_SYS_ADMIN");
    EXPECT_GE(last_capability(), CAP_BPF);
    CapabilitySet s;
    s.add(CAP_CHOWN).add(CAP_KILL);
    EXPECT_EQ(s.to_string(), "CAP_CHOWN,CAP_KILL");
    EXPECT_TRUE(CapabilitySet::all().has(last_capability()));
    EXPECT_FALSE(CapabilitySet::all().has(last_capability() + 1));
}

TEST(Capabilities, CurrentMatchesProc) {
    auto caps = Capabilities::current();
    ASSERT_TRUE(caps) << caps.error().what();
    auto proc = proc_caps();
    EXPECT_EQ(caps->get(CapFlag::Effective).bits(), proc["CapEff"]);
    EXPECT_EQ(caps->get(CapFlag::Permitted).bits(), proc["CapPrm"]);
    EXPECT_EQ(bounding_set()->bits(), proc["CapBnd"]);
}

void check_drop_all_but(bool as_nobody) {
    auto body = [] {
        std::string e = test::become_root_in_userns();
        CHILD_ASSERT(e.empty(), e);
        CapabilitySet keep;
        keep.add(CAP_NET_BIND_SERVICE).add(CAP_KILL);
        CHILD_OK(drop_all_but(keep));
        auto p = proc_caps();
        for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"})
            CHILD_ASSERT(p[set] == keep.bits(), set << " = " << std::hex << p[set]);
        CHILD_ASSERT(*ambient_has(CAP_KILL), "ambient");
        CHILD_ASSERT(!*bounding_has(CAP_SYS_ADMIN), "bounding still has SYS_ADMIN");
        // Dropped for good: raising again fails.
        auto caps = Capabilities::current();
        CHILD_OK(caps);
        CapabilitySet admin;
        admin.add(CAP_SYS_ADMIN);
        CHILD_OK(caps->set(CapFlag::Effective, admin, true));
        auto raise = caps->apply();
        CHILD_ASSERT(!raise && raise.error().errno_value() == EPERM, "re-raised SYS_ADMIN");
        return 0;
    };
    auto r = as_nobody ? test::run_as_nobody(body) : test::run_in_child(body);
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Capabilities, DropAllButAsRoot) {
    BUTTER_REQUIRE_ROOT();
    check_drop_all_but(false);
}

TEST(Capabilities, DropAllButInUserNamespace) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    check_drop_all_but(true);
}

TEST(Capabilities, DropAllLockedLeavesNothingAcrossExec) {
    BUTTER_REQUIRE(test::is_root() || test::have_userns(), "USERNS", "no way to hold capabilities");
    auto body = [] {
        std::string e = test::become_root_in_userns();
        CHILD_ASSERT(e.empty(), e);
        CHILD_OK(drop_all_locked());
        CHILD_OK(set_no_new_privs());
        auto p = proc_caps();
        CHILD_ASSERT(p["CapEff"] == 0 && p["CapPrm"] == 0 && p["CapInh"] == 0 && p["CapAmb"] == 0,
                     "caps left: eff " << std::hex << p["CapEff"]);
        unsigned bits = *securebits();
        CHILD_ASSERT(bits & SECBIT_NOROOT, "NOROOT not set");
        CHILD_ASSERT(bits & SECBIT_NOROOT_LOCKED, "NOROOT not locked");
        auto unlock = set_securebits(0);
        CHILD_ASSERT(!unlock, "securebits could be cleared again");
        // uid 0 exec'ing a program gains nothing: exec a shell that prints its CapEff.
        int fds[2];
        CHILD_ASSERT(::pipe(fds) == 0, "pipe");
        pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(fds[1], 1);
            ::execl("/bin/sh", "sh", "-c", "grep -E '^Cap(Eff|Prm)' /proc/self/status", nullptr);
            ::_exit(127);
        }
        ::close(fds[1]);
        char buf[256] = {};
        ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
        ::waitpid(pid, nullptr, 0);
        std::string out(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        CHILD_ASSERT(out.find("CapEff:\t0000000000000000") != std::string::npos &&
                         out.find("CapPrm:\t0000000000000000") != std::string::npos,
                     "after exec: " << out);
        return 0;
    };
    auto r = test::is_root() ? test::run_in_child(body) : test::run_as_nobody(body);
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Capabilities, AmbientRaiseNeedsInheritable) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    auto r = test::run_as_nobody([] {
        std::string e = test::become_root_in_userns();
        CHILD_ASSERT(e.empty(), e);
        CHILD_OK(clear_ambient());
        auto raise = set_ambient(CAP_CHOWN, true);  // not in the inheritable set
        CHILD_ASSERT(!raise && raise.error().errno_value() == EPERM, "raised without inheritable");
        auto caps = Capabilities::current();
        CapabilitySet chown;
        chown.add(CAP_CHOWN);
        CHILD_OK(caps->set(CapFlag::Inheritable, chown, true));
        CHILD_OK(caps->apply());
        CHILD_OK(set_ambient(CAP_CHOWN, true));
        CHILD_ASSERT(*ambient_has(CAP_CHOWN), "not raised");
        CHILD_OK(set_ambient(CAP_CHOWN, false));
        CHILD_ASSERT(!*ambient_has(CAP_CHOWN), "not lowered");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
