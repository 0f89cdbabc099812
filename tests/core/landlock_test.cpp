#include "butter/landlock.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter {
namespace {

TEST(Landlock, AbiVersionOrAClearReason) {
    auto v = landlock_abi_version();
    if (!v) {
        // Not built in, or disabled at boot: both are reasons, not failures.
        EXPECT_TRUE(v.error().errno_value() == ENOSYS || v.error().errno_value() == EOPNOTSUPP)
            << v.error().what();
        return;
    }
    EXPECT_GE(*v, 1);
}

// The ABI this kernel offers, or skip (fail under BUTTER_REQUIRE_ALL) below `need`.
int abi_at_least(int need) {
    auto v = landlock_abi_version();
    return v && *v >= need ? *v : 0;
}

TEST(Landlock, RightsByAbi) {
    EXPECT_TRUE(landlock_fs_rights(0).empty());
    EXPECT_EQ(landlock_fs_rights(1).raw(), (1ULL << 13) - 1);
    EXPECT_TRUE(landlock_fs_rights(2).has(LandlockFs::Refer));
    EXPECT_FALSE(landlock_fs_rights(2).has(LandlockFs::Truncate));
    EXPECT_TRUE(landlock_fs_rights(5).has(LandlockFs::IoctlDev));
    EXPECT_TRUE(landlock_net_rights(3).empty());
    EXPECT_EQ(landlock_net_rights(4), LandlockNet::BindTcp | LandlockNet::ConnectTcp);
    EXPECT_TRUE(landlock_scopes(5).empty());
    EXPECT_EQ(to_string(landlock_scopes(6)), "AbstractUnixSocket|Signal");
}

TEST(Landlock, NothingHandledIsRefused) {
    if (!abi_at_least(1)) GTEST_SKIP() << "no Landlock";
    auto r = LandlockRuleset::create({}, {}, {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ENOMSG) << r.error().what();
}

TEST(Landlock, FilesystemRulesConfineReads) {
    BUTTER_REQUIRE(abi_at_least(1), "LANDLOCK", "no Landlock");
    test::TempDir allowed, other;
    test::write_file(allowed / "f", "yes");
    test::write_file(other / "f", "no");
    auto r = test::run_in_child([&] {
        auto rs = LandlockRuleset::create(LandlockFs::ReadFile | LandlockFs::ReadDir, {}, {});
        CHILD_OK(rs);
        auto dir = open(allowed.path().c_str(), O_PATH | O_DIRECTORY);
        CHILD_OK(dir);
        CHILD_OK(rs->allow_beneath(*dir, LandlockFs::ReadFile | LandlockFs::ReadDir));
        CHILD_ASSERT(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
        CHILD_OK(rs->restrict_self());
        CHILD_OK(read_file((allowed / "f").c_str()));
        auto denied = read_file((other / "f").c_str());
        CHILD_ASSERT(!denied && denied.error().errno_value() == EACCES,
                     (denied ? "read" : denied.error().what()));
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Landlock, RestrictSelfNeedsNoNewPrivs) {
    BUTTER_REQUIRE(abi_at_least(1), "LANDLOCK", "no Landlock");
    auto r = test::run_as_nobody([] {
        auto rs = LandlockRuleset::create(LandlockFs::ReadFile, {}, {});
        CHILD_OK(rs);
        auto e = rs->restrict_self();
        CHILD_ASSERT(!e && e.error().errno_value() == EPERM, (e ? "restricted" : e.error().what()));
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Landlock, TcpConnectOnlyToAllowedPorts) {
    BUTTER_REQUIRE(abi_at_least(4), "LANDLOCK", "no Landlock ABI 4 (TCP rules)");
    auto r = test::run_in_child([] {
        // Two listeners on loopback: one port allowed, one not.
        auto listen_on = [](std::uint16_t& port) {
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof a;
            ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
            ::listen(s, 4);
            ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
            port = ntohs(a.sin_port);
            return s;
        };
        std::uint16_t ok_port = 0, other_port = 0;
        listen_on(ok_port);
        listen_on(other_port);
        auto rs = LandlockRuleset::create({}, LandlockNet::ConnectTcp, {});
        CHILD_OK(rs);
        CHILD_OK(rs->allow_port(ok_port, LandlockNet::ConnectTcp));
        CHILD_ASSERT(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
        CHILD_OK(rs->restrict_self());
        auto connect_to = [](std::uint16_t port) {
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(port);
            int rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
            int e = errno;
            ::close(s);
            return rc == 0 ? 0 : e;
        };
        CHILD_ASSERT(connect_to(ok_port) == 0,
                     "allowed port: " << std::strerror(connect_to(ok_port)));
        CHILD_ASSERT(connect_to(other_port) == EACCES, "other port");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Landlock, AbstractUnixSocketsOutsideTheDomainAreOutOfReach) {
    BUTTER_REQUIRE(abi_at_least(6), "LANDLOCK", "no Landlock ABI 6 (scopes)");
    auto bind_abstract = [](const std::string& name) {
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path + 1, name.data(), name.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        if (::bind(s, reinterpret_cast<sockaddr*>(&a), len) < 0 || ::listen(s, 4) < 0) return -1;
        return s;
    };
    auto connect_abstract = [](const std::string& name) {
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path + 1, name.data(), name.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        int rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), len);
        int e = errno;
        ::close(s);
        return rc == 0 ? 0 : e;
    };
    std::string outside = "butter-landlock-test-" + std::to_string(::getpid());
    int host = bind_abstract(outside);
    ASSERT_GE(host, 0);
    auto r = test::run_in_child([&] {
        CHILD_ASSERT(connect_abstract(outside) == 0, "before: cannot connect at all");
        auto rs = LandlockRuleset::create({}, {}, LandlockScope::AbstractUnixSocket);
        CHILD_OK(rs);
        CHILD_ASSERT(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
        CHILD_OK(rs->restrict_self());
        CHILD_ASSERT(connect_abstract(outside) == EPERM, "outside the domain: reachable");
        std::string inside = outside + "-inside";
        CHILD_ASSERT(bind_abstract(inside) >= 0, "bind inside");
        CHILD_ASSERT(connect_abstract(inside) == 0, "inside the domain: unreachable");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
    ::close(host);
}

}  // namespace
}  // namespace butter
