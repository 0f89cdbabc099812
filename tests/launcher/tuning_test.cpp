#include "cli/tuning.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <butter/fd.hpp>
#include <butter/process.hpp>

#include "../support/child.hpp"

namespace butter::launcher {
namespace {

// kB of this process's resident file-backed pages (/proc/self/status RssFile).
long rss_file_kb() {
    std::string s = read_file("/proc/self/status").value_or("");
    auto at = s.find("RssFile:");
    return at == std::string::npos ? -1 : std::strtol(s.c_str() + at + 8, nullptr, 10);
}

// In this process, not a forked child: a child starts with none of the text mapped (fork does
// not copy file-backed page tables), and the test would measure its own faults.
TEST(Tuning, ProgramTextLeavesTheResidentSetAndComesBack) {
    long before = rss_file_kb();
    auto released = release_program_text();
    ASSERT_TRUE(released) << released.error().what();
    EXPECT_GT(*released, 0u);
    long after = rss_file_kb();
    EXPECT_GE(after, 0);
    EXPECT_LT(after, before);
    // The code and constants fault back in: calls and string literals work as before.
    EXPECT_EQ(butter::getpid(), ::getpid());
    EXPECT_EQ(std::string("still") + " here", "still here");
    // And all of them at once again.
    long released_rss = rss_file_kb();
    auto back = prefault_program_text();
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_GE(rss_file_kb() - released_rss, static_cast<long>(*released / 1024 / 2));
}

// The heap's untouched stretch up to the break is resident after prefault_heap, unwritten.
TEST(Tuning, PrefaultHeapMapsTheUntouchedHeap) {
    auto r = test::run_in_child([] {
        auto anon_kb = [] {
            std::string s = read_file("/proc/self/status").value_or("");
            auto at = s.find("RssAnon:");
            return at == std::string::npos ? -1L : std::strtol(s.c_str() + at + 8, nullptr, 10);
        };
        // 256 KiB more break, never written: the heap's untouched rest, whatever malloc has.
        CHILD_ASSERT(::sbrk(256 * 1024) != reinterpret_cast<void*>(-1), "sbrk");
        long before = anon_kb();
        CHILD_OK(prefault_heap());
#if !defined(__SANITIZE_ADDRESS__)  // ASan's malloc has no brk heap: nothing to do
        CHILD_ASSERT(anon_kb() - before >= 200, "heap not prefaulted: " << anon_kb() - before);
#else
        (void)before;
#endif
        return 0;
    });
    EXPECT_EQ(r.code(), 0) << r.output;
}

}  // namespace
}  // namespace butter::launcher
