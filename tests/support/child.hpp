// Runs test code that changes process state (namespaces, mounts, seccomp, credentials) in a
// forked child, so the gtest process stays clean. The child reports failures as text through a
// pipe and its exit status; the parent asserts on both:
//
//     auto r = butter::test::run_in_child([] {
//         CHILD_ASSERT(butter::getpid() == 1, "pid " << butter::getpid());
//         return 0;
//     });
//     EXPECT_EQ(r.code(), 0) << r.output;
#pragma once

#include <sys/types.h>

#include <functional>
#include <sstream>
#include <string>

namespace butter::test {

struct ChildResult {
    bool exited = false;  // false: killed by `signal`
    int exit_code = -1;
    int signal = 0;
    std::string output;  // everything CHILD_ASSERT and child_note wrote
    // The exit code, or 128 + signal (so a test can compare with one number).
    int code() const { return exited ? exit_code : 128 + signal; }
};

// fork(2)s, runs `fn` in the child and _exits with its return value. Blocks until the child
// ends. `fn` must not return into gtest, and must not throw.
ChildResult run_in_child(const std::function<int()>& fn);

// The same after dropping to nobody:nogroup (65534) with no supplementary groups, for the
// unprivileged paths. The child fails with 99 if it cannot drop.
ChildResult run_as_nobody(const std::function<int()>& fn);

// In the child: appends a line to the output the parent sees.
void child_note(const std::string& line);
// In the child: writes the message and _exit(1)s.
[[noreturn]] void child_fail(const char* file, int line, const std::string& message);

}  // namespace butter::test

#define CHILD_ASSERT(cond, msg)                                                         \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::ostringstream child_assert_os_;                                        \
            child_assert_os_ << "CHILD_ASSERT(" #cond ") failed: " << msg; /* NOLINT */ \
            ::butter::test::child_fail(__FILE__, __LINE__, child_assert_os_.str());     \
        }                                                                               \
    } while (0)

// Asserts that a Result holds a value, printing its error otherwise.
#define CHILD_OK(expr)                                                                        \
    do {                                                                                      \
        auto&& child_ok_r_ = (expr);                                                          \
        if (!child_ok_r_)                                                                     \
            ::butter::test::child_fail(__FILE__, __LINE__,                                    \
                                       std::string(#expr ": ") + child_ok_r_.error().what()); \
    } while (0)
