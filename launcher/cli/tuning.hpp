// Start-up tuning of the butter program: memory advice over its own code and heap. Only a
// short-lived program that owns its whole process wants these (the library API never calls
// them: an embedder's memory is the embedder's), hence here and not in libbutter.
#pragma once

#include <cstddef>

#include <butter/error.hpp>

namespace butter::launcher {

// Drops this process's mappings of its own executable's read-only segments (text, rodata:
// madvise(2) MADV_DONTNEED), so that code run once, at start-up, stops counting in its resident
// set; the pages stay in the page cache and fault back in when run again. Writable segments
// and RELRO (written at start-up, then made read-only) are left alone, and with them anything
// that holds state. For a long-running process after its set-up. Returns the bytes released.
[[nodiscard]] Result<std::size_t> release_program_text();
// The opposite, for a short-lived start: maps the same pages in one call (MADV_POPULATE_READ,
// Linux 5.14; EINVAL before) instead of a page fault per 64 KiB window as the code runs. Costs
// about a fault's time per 40 pages, where a fault can cost microseconds (VMs).
[[nodiscard]] Result<void> prefault_program_text();
// The same for the heap glibc's malloc has claimed so far (its first brk extension, about
// 132 KiB): the pages written in one call (MADV_POPULATE_WRITE, Linux 5.14) instead of one
// zero-fill fault each as allocations reach them.
[[nodiscard]] Result<void> prefault_heap();

}  // namespace butter::launcher
