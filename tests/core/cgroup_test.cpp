#include "butter/cgroup.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "../support/child.hpp"
#include "../support/userns.hpp"

namespace butter {
namespace {

std::string cgroup_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(Cgroup, FindsTheHierarchyOfEachController) {
    for (const char* c : {"memory", "pids"}) {
        auto h = find_cgroup_hierarchy(c);
        if (!h) GTEST_SKIP() << "no " << c << " controller: " << h.error().what();
        EXPECT_FALSE(h->mount.empty());
        EXPECT_TRUE(h->own.starts_with("/")) << h->own;
        EXPECT_EQ(::access((h->own_path() + "/cgroup.procs").c_str(), F_OK), 0) << h->own_path();
    }
    auto none = find_cgroup_hierarchy("no-such-controller");
    ASSERT_FALSE(none);
}

TEST(Cgroup, LimitJoinCountAndRemove) {
    BUTTER_REQUIRE_ROOT();
    auto h = find_cgroup_hierarchy("pids");
    BUTTER_REQUIRE(h.has_value(), "CGROUP_PIDS", "no pids controller");
    std::string name = "butter-test-" + std::to_string(::getpid());
    auto cg = Cgroup::create(*h, name);
    ASSERT_TRUE(cg) << cg.error().what();
    EXPECT_TRUE(cg->path().starts_with(h->own_path() + "/"));
    ASSERT_TRUE(cg->write("pids.max", "3"));
    EXPECT_EQ(*cg->read_number("pids.max"), 3u);
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        char c;
        (void)::read(go[0], &c, 1);
        // In the cgroup now: at most 3 tasks, so the fourth fork fails.
        int made = 0;
        for (int i = 0; i < 5; ++i) {
            pid_t p = ::fork();
            if (p == 0) {
                ::pause();
                ::_exit(0);
            }
            if (p < 0) break;
            ++made;
        }
        ::_exit(made);
    }
    ASSERT_TRUE(cg->add(pid));
    EXPECT_NE(cgroup_of(pid).find(name), std::string::npos) << cgroup_of(pid);
    ASSERT_EQ(::write(go[1], "x", 1), 1);
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_EQ(WEXITSTATUS(st), 2) << "the limit of 3 allows the child and two forks";
    EXPECT_GE(*cg->read_key("pids.events", "max"), 1u);
    std::string path = cg->path();
    ASSERT_TRUE(cg->destroy());  // kills the paused grandchildren, then removes
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(Cgroup, UnprivilegedCreateIsRefused) {
    auto h = find_cgroup_hierarchy("memory");
    if (!h) GTEST_SKIP() << "no memory controller";
    auto r = test::run_as_nobody([&] {
        auto cg = Cgroup::create(*h, "butter-nobody");
        CHILD_ASSERT(!cg && is_privilege(cg.error()), "nobody created a cgroup");
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
