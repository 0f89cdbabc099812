#include "cli/tuning.hpp"

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace butter::launcher {

namespace {

struct TextRanges {
    std::uintptr_t ranges[8][2];
    int count = 0;
    std::uintptr_t relro_begin = 0, relro_end = 0;
};

// The main program is the first object dl_iterate_phdr reports (static or not).
int collect_text(struct dl_phdr_info* info, std::size_t, void* data) {
    auto* t = static_cast<TextRanges*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr, end = begin + ph.p_memsz;
        if (ph.p_type == PT_GNU_RELRO) {
            t->relro_begin = begin;
            t->relro_end = end;
        } else if (ph.p_type == PT_LOAD && (ph.p_flags & PF_W) == 0 && t->count < 8) {
            t->ranges[t->count][0] = begin;
            t->ranges[t->count][1] = end;
            ++t->count;
        }
    }
    return 1;  // the main program only
}

// madvise(2) `advice` over the whole pages of the main program's read-only segments, none
// shared with RELRO. Returns the bytes covered.
Result<std::size_t> advise_program_text(int advice, const char* call) {
    TextRanges t;
    ::dl_iterate_phdr(collect_text, &t);
    const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    std::size_t covered = 0;
    for (int i = 0; i < t.count; ++i) {
        std::uintptr_t begin = (t.ranges[i][0] + page - 1) & ~(page - 1);
        std::uintptr_t end = t.ranges[i][1] & ~(page - 1);
        if (t.relro_end > t.relro_begin && begin < t.relro_end && t.relro_begin < end) {
            std::uintptr_t rb = t.relro_begin & ~(page - 1);
            std::uintptr_t re = (t.relro_end + page - 1) & ~(page - 1);
            if (rb <= begin)
                begin = std::max(begin, re);
            else
                end = std::min(end, rb);
        }
        if (end <= begin) continue;
        if (::madvise(reinterpret_cast<void*>(begin), end - begin, advice) < 0)
            return fail_errno(call, "program text");
        covered += end - begin;
    }
    return covered;
}

}  // namespace

Result<std::size_t> release_program_text() {
    return advise_program_text(MADV_DONTNEED, "madvise(MADV_DONTNEED)");
}

Result<void> prefault_program_text() {
#ifdef MADV_POPULATE_READ
    BUTTER_TRY(advise_program_text(MADV_POPULATE_READ, "madvise(MADV_POPULATE_READ)"));
    return {};
#else
    return fail(Error("madvise(MADV_POPULATE_READ)", EINVAL, "program text"));
#endif
}

Result<void> prefault_heap() {
#ifdef MADV_POPULATE_WRITE
    // One allocation below the mmap threshold makes malloc extend the break if it has not;
    // from its page to the break is the heap's untouched rest.
    void* probe = std::malloc(1);
    if (!probe) return fail(Error("malloc", ENOMEM));
    auto lo = reinterpret_cast<std::uintptr_t>(probe) & ~std::uintptr_t{4095};
    auto hi = reinterpret_cast<std::uintptr_t>(::sbrk(0));
    std::free(probe);
    if (hi <= lo) return {};  // not a brk heap (an mmap'd arena)
    if (::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) < 0)
        return fail_errno("madvise(MADV_POPULATE_WRITE)", "heap");
    return {};
#else
    return fail(Error("madvise(MADV_POPULATE_WRITE)", EINVAL, "heap"));
#endif
}

}  // namespace butter::launcher
