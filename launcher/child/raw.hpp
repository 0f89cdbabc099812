// System calls that touch no memory but their arguments: no errno (a thread-local variable),
// no libc state. For code that runs while another process shares this address space: the
// supervisor waiting for a sandbox that borrows its memory, and the sandbox's init once the
// supervisor runs again (spawn.cpp). Each returns what the kernel returns: >= 0, or -errno.
#pragma once

#include <sys/syscall.h>

namespace butter::launcher::raw {

#if defined(__x86_64__)
inline long syscall6(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0,
                     long f = 0) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
inline long syscall6(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0,
                     long f = 0) {
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
#else
#error "raw system calls: add this architecture"
#endif

template <typename... A>
inline long call(long nr, A... args) {
    return syscall6(nr, (long)args...);
}

}  // namespace butter::launcher::raw
