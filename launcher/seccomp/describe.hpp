// A denied syscall as a readable line: `mount("none", "/mnt", "tmpfs", 0x0, 0x0)`. String
// arguments of the common path-taking syscalls are read from the caller's memory.
#pragma once

#include <string>

#include <butter/seccomp.hpp>

namespace butter::launcher::seccomp {

// Call while the caller still waits on the notification; `still_valid` is checked after the
// memory reads, so a recycled pid cannot put another process's strings into the line.
std::string describe_call(const SeccompNotification& n, SeccompNotifyFd& notify);

}  // namespace butter::launcher::seccomp
