#include "butter/hostname.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include "../support/child.hpp"
#include "../support/userns.hpp"

namespace butter {
namespace {

TEST(Hostname, MatchesLibc) {
    char buf[256] = {};
    ASSERT_EQ(::gethostname(buf, sizeof buf), 0);
    auto h = butter::gethostname();
    ASSERT_TRUE(h) << h.error().what();
    EXPECT_EQ(*h, buf);
}

void check_uts_namespace(bool as_nobody) {
    std::string before = *butter::gethostname();
    std::string domain_before = *butter::getdomainname();
    auto body = [as_nobody] {
        if (as_nobody) CHILD_ASSERT(::unshare(CLONE_NEWUSER) == 0, "unshare(CLONE_NEWUSER)");
        CHILD_ASSERT(::unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)");
        CHILD_OK(butter::sethostname("sandbox"));
        CHILD_OK(butter::setdomainname("example.test"));
        CHILD_ASSERT(*butter::gethostname() == "sandbox", *butter::gethostname());
        CHILD_ASSERT(*butter::getdomainname() == "example.test", *butter::getdomainname());
        auto too_long = butter::sethostname(std::string(65, 'x'));
        CHILD_ASSERT(!too_long && too_long.error().errno_value() == EINVAL, "65 bytes accepted");
        return 0;
    };
    auto r = as_nobody ? test::run_as_nobody(body) : test::run_in_child(body);
    EXPECT_EQ(r.code(), 0) << r.output;
    EXPECT_EQ(*butter::gethostname(), before);
    EXPECT_EQ(*butter::getdomainname(), domain_before);
}

TEST(Hostname, SetInNewUtsNamespaceAsRoot) {
    BUTTER_REQUIRE_ROOT();
    check_uts_namespace(false);
}

TEST(Hostname, SetInNewUtsNamespaceAsNobody) {
    BUTTER_REQUIRE(test::have_userns(), "USERNS", "user namespaces unavailable");
    check_uts_namespace(true);
}

TEST(Hostname, SetWithoutPrivilegeFails) {
    auto r = test::run_as_nobody([] {
        auto e = butter::sethostname("nope");
        CHILD_ASSERT(!e && e.error().errno_value() == EPERM, "sethostname allowed");
        CHILD_ASSERT(e.error().what() == "sethostname(\"nope\"): Operation not permitted",
                     e.error().what());
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter
