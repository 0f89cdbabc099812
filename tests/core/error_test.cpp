#include "butter/error.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace butter {
namespace {

TEST(Error, WhatNamesCallContextAndErrno) {
    Error e("inotify_add_watch", ENOENT, "/nope");
    EXPECT_EQ(e.what(), "inotify_add_watch(\"/nope\"): No such file or directory");
    EXPECT_EQ(e.errno_value(), ENOENT);
    EXPECT_STREQ(e.call(), "inotify_add_watch");
}

TEST(Error, WhatWithoutContextAndWithHint) {
    Error e = Error("pivot_root", EINVAL).with_hint("the new root's parent mount may be shared");
    EXPECT_EQ(
        e.what(),
        "pivot_root: Invalid argument \u2014 hint: the new root's parent mount may be shared");
}

TEST(Error, MessageErrorsHaveNoErrno) {
    Error e = Error::message("seccomp_rule_add", "unknown syscall", "frobnicate");
    EXPECT_EQ(e.errno_value(), 0);
    EXPECT_EQ(e.what(), "seccomp_rule_add(\"frobnicate\"): unknown syscall");
}

TEST(Error, WithContextPrefixes) {
    Error e = Error("mount", EPERM, "/newroot/usr").with_context("bind /usr");
    EXPECT_EQ(e.context(), "bind /usr: /newroot/usr");
}

TEST(Error, Classification) {
    EXPECT_TRUE(is_not_supported(ENOSYS));
    EXPECT_TRUE(is_not_supported(EOPNOTSUPP));
    EXPECT_FALSE(is_not_supported(EPERM));
    EXPECT_TRUE(is_privilege(EPERM));
    EXPECT_TRUE(is_privilege(Error("x", EACCES)));
    EXPECT_FALSE(is_privilege(ENOENT));
}

Result<int> half(int x) {
    if (x % 2 != 0) return fail(Error::message("half", "odd", std::to_string(x)));
    return x / 2;
}

Result<int> quarter(int x) {
    BUTTER_ASSIGN_OR_RETURN(int h, half(x));
    BUTTER_ASSIGN_OR_RETURN(int q, half(h));
    return q;
}

Result<void> check_even(int x) {
    BUTTER_TRY(half(x));
    return {};
}

TEST(Result, ValueAndError) {
    Result<int> ok = half(8);
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(*ok, 4);
    EXPECT_EQ(ok.value_or(0), 4);
    Result<int> bad = half(3);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().context(), "3");
    EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Result, MacrosPropagate) {
    EXPECT_EQ(*quarter(8), 2);
    Result<int> r = quarter(6);  // 6 -> 3 -> odd
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().context(), "3");
    EXPECT_TRUE(check_even(4));
    EXPECT_FALSE(check_even(5));
}

TEST(Result, AndThenTransform) {
    auto r = half(8).and_then(half).transform([](int v) { return v * 10; });
    EXPECT_EQ(*r, 20);
    auto bad = half(7).transform([](int v) { return v + 1; });
    EXPECT_FALSE(bad);
    auto ctx = with_context(half(7), "outer");
    EXPECT_EQ(ctx.error().context(), "outer: 7");
}

TEST(Result, MoveOnlyValues) {
    Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 5);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
    EXPECT_DEATH({ (void)half(1).value(); }, "value\\(\\) of a failed Result");
}

}  // namespace
}  // namespace butter
