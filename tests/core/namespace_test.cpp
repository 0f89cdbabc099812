#include "butter/namespace.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/child.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"
#include "butter/hostname.hpp"
#include "butter/process.hpp"

namespace butter {
namespace {

TEST(Namespace, FlagsAndNames) {
    Namespaces ns = Namespace::User | Namespace::Pid | Namespace::Net;
    EXPECT_EQ(ns.raw(), static_cast<std::uint64_t>(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET));
    EXPECT_EQ(to_string(ns), "User|Pid|Net");
    EXPECT_EQ(proc_name(Namespace::Mount), "mnt");
    EXPECT_EQ(proc_name(Namespace::Cgroup), "cgroup");
    EXPECT_TRUE(kAllNamespaces.has(Namespace::Time));
}

TEST(Namespace, FormatIdMap) {
    IdMapping maps[] = {{0, 1000, 1}, {1, 100000, 65536}};
    EXPECT_EQ(format_id_map(maps), "0 1000 1\n1 100000 65536\n");
}

TEST(Namespace, UnshareGivesNewIds) {
    std::uint64_t host_uts = *namespace_id(0, Namespace::Uts);
    std::uint64_t host_ipc = *namespace_id(0, Namespace::Ipc);
    auto body = [host_uts, host_ipc] {
        std::string e = test::become_root_in_userns();
        CHILD_ASSERT(e.empty(), e);
        CHILD_OK(unshare(Namespace::Uts | Namespace::Ipc | Namespace::Net));
        CHILD_ASSERT(*namespace_id(0, Namespace::Uts) != host_uts, "same uts ns");
        CHILD_ASSERT(*namespace_id(0, Namespace::Ipc) != host_ipc, "same ipc ns");
        return 0;
    };
    if (test::is_root()) {
        auto r = test::run_in_child(body);
        EXPECT_EQ(r.code(), 0) << r.output;
    }
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    auto r = test::run_as_nobody(body);
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Namespace, UnshareUserAsNobodyWithoutMapIsRefusedForMount) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    auto r = test::run_as_nobody([] {
        auto e = unshare(Namespace::Uts);  // no privilege without a user namespace
        CHILD_ASSERT(!e && e.error().errno_value() == EPERM, "unshare(Uts) as nobody allowed");
        CHILD_ASSERT(e.error().what() == "unshare(\"Uts\"): Operation not permitted",
                     e.error().what());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Namespace, SetnsJoinsAnotherProcessNamespace) {
    BUTTER_REQUIRE_ROOT();
    auto r = test::run_in_child([] {
        int ready[2], done[2];
        CHILD_ASSERT(::pipe(ready) == 0 && ::pipe(done) == 0, "pipe");
        pid_t holder = ::fork();
        if (holder == 0) {
            if (!unshare(Namespace::Uts) || !sethostname("joined")) ::_exit(1);
            (void)::write(ready[1], "x", 1);
            char c;
            (void)::read(done[0], &c, 1);
            ::_exit(0);
        }
        char c;
        CHILD_ASSERT(::read(ready[0], &c, 1) == 1, "holder failed");
        auto fd = open_namespace(holder, Namespace::Uts);
        CHILD_OK(fd);
        CHILD_OK(setns(*fd, Namespace::Uts));
        CHILD_ASSERT(*gethostname() == "joined", *gethostname());
        // A pidfd works as well (the kinds name which of its namespaces to join).
        auto pfd = pidfd_open(holder);
        CHILD_OK(pfd);
        CHILD_OK(setns(*pfd, Namespace::Uts));
        (void)::write(done[1], "x", 1);
        ::waitpid(holder, nullptr, 0);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

// clone3 into new user+pid+uts namespaces; the parent writes the maps, then lets the child go.
void clone_with_maps(bool as_root) {
    auto body = [as_root] {
        int go[2];
        CHILD_ASSERT(::pipe2(go, O_CLOEXEC) == 0, "pipe");
        uid_t uid = ::getuid();
        gid_t gid = ::getgid();
        CloneArgs args;
        args.flags = (Namespace::User | Namespace::Pid | Namespace::Uts).raw();
        auto c = clone3(args);
        CHILD_OK(c);
        if (c->is_child()) {
            char ch;
            if (::read(go[0], &ch, 1) != 1) ::_exit(20);
            // The child keeps its host ids until it sets ids that the new map covers (host root
            // is unmapped under a 100000 range and shows as the overflow uid until then).
            if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0) ::_exit(26);
            if (::getuid() != 0 || ::getgid() != 0) ::_exit(21);
            if (butter::getpid() != 1) ::_exit(22);
            if (!sethostname("mapped")) ::_exit(23);  // CAP_SYS_ADMIN in the new user ns
            auto m = read_uid_map(0);
            if (!m || m->empty()) ::_exit(24);
            ::_exit((*m)[0].inside == 0 ? 0 : 25);
        }
        if (as_root) {
            IdMapping range{0, 100000, 65536};
            CHILD_OK(write_uid_map(c->pid, std::span(&range, 1)));
            CHILD_OK(write_gid_map(c->pid, std::span(&range, 1)));
        } else {
            // Unprivileged: only the caller's own ids, and setgroups denied first.
            IdMapping u{0, uid, 1}, g{0, gid, 1};
            CHILD_OK(write_setgroups(c->pid, false));
            CHILD_OK(write_uid_map(c->pid, std::span(&u, 1)));
            CHILD_OK(write_gid_map(c->pid, std::span(&g, 1)));
        }
        auto back = read_uid_map(c->pid);
        CHILD_OK(back);
        CHILD_ASSERT(back->size() == 1 && (*back)[0].outside == (as_root ? 100000u : uid),
                     "map read back wrong");
        CHILD_ASSERT(::write(go[1], "x", 1) == 1, "go");
        auto st = waitid_pidfd(c->pidfd);
        CHILD_OK(st);
        CHILD_ASSERT((*st)->exited() && (*st)->code == 0, "child: " << (*st)->to_string());
        return 0;
    };
    auto r = as_root ? test::run_in_child(body) : test::run_as_nobody(body);
    EXPECT_EQ(r.code(), 0) << r.output;
}

TEST(Namespace, CloneWithUidRangeMapAsRoot) {
    BUTTER_REQUIRE_ROOT();
    clone_with_maps(true);
}

TEST(Namespace, CloneWithSelfMapAsNobody) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    clone_with_maps(false);
}

TEST(Namespace, UnprivilegedRangeMapIsRefused) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    auto r = test::run_as_nobody([] {
        CloneArgs args;
        args.flags = Namespaces(Namespace::User).raw();
        int go[2];
        CHILD_ASSERT(::pipe2(go, O_CLOEXEC) == 0, "pipe");
        auto c = clone3(args);
        CHILD_OK(c);
        if (c->is_child()) {
            char ch;
            (void)::read(go[0], &ch, 1);
            ::_exit(0);
        }
        IdMapping wide{0, 100000, 65536};
        auto e = write_uid_map(c->pid, std::span(&wide, 1));
        CHILD_ASSERT(!e && e.error().errno_value() == EPERM, "nobody mapped a range");
        (void)::write(go[1], "x", 1);
        (void)waitid_pidfd(c->pidfd);
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

// EPERM for a new user namespace in a chroot says why (the kernel refuses them there): the
// real refusal and its hint, in a child chrooted into an empty directory.
TEST(Namespace, RefusalInAChrootSaysSo) {
    BUTTER_REQUIRE_ROOT();
    auto plain = namespace_refused(Error("clone", EPERM, "x"));
    EXPECT_EQ(plain.hint().find("this process is in a chroot"), std::string::npos) << plain.hint();
    test::TempDir d;
    auto r = test::run_in_child([&] {
        // A chroot as build systems make them: /proc inside it (in a mount namespace of the
        // child's own, gone with it).
        std::string proc = d.path() + "/proc";
        CHILD_ASSERT(::unshare(CLONE_NEWNS) == 0 &&
                         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
                         ::mkdir(proc.c_str(), 0755) == 0 &&
                         ::mount("proc", proc.c_str(), "proc", 0, nullptr) == 0,
                     "proc");
        CHILD_ASSERT(::chroot(d.path().c_str()) == 0 && ::chdir("/") == 0, "chroot");
        CHILD_ASSERT(::unshare(CLONE_NEWUSER) < 0 && errno == EPERM, "userns in a chroot");
        Error e = namespace_refused(Error("unshare", errno, "CLONE_NEWUSER"));
        CHILD_ASSERT(e.hint().find("this process is in a chroot") != std::string::npos, e.what());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
