// seccomp.report without user notification. The kernel allows one listener per chain of
// filters, so inside a sandbox whose manager already holds one (a nested butter, LXD with
// syscall interception) the listener load fails with EBUSY; kernels before 5.0 have none.
// Then the denials are read from the kernel log instead: the filter is loaded as two, the
// profile's program with every notification turned into the profile's errno, and on top of
// it a program that repeats exactly those denials (everything else allowed) with
// SECCOMP_FILTER_FLAG_LOG. The kernel logs an action of the filter that decided it, so only
// what notification would have reported gets an audit record (type 1326); the clone3 ENOSYS
// and the explicit errno rules stay quiet, as they do with notification.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <butter/seccomp.hpp>

namespace butter::launcher::seccomp {

struct LoggedFilters {
    BpfProgram base;    // notify -> errno; every other action as it was
    BpfProgram logged;  // notify -> errno; everything else allowed (load with FLAG_LOG)
};
// Both programs from a program that uses SECCOMP_RET_USER_NOTIF; nullopt when a return is
// not a constant (BPF_RET|BPF_A: not something libseccomp emits).
std::optional<LoggedFilters> logged_filters(const BpfProgram& notify_program, int denied_errno);

// One seccomp audit record from /dev/kmsg ("6,1234,567,-;audit: type=1326 ... pid=42 ...
// arch=c000003e syscall=165 compat=0 ip=0x... code=0x50000").
struct AuditDenial {
    pid_t pid = 0;  // in the initial pid namespace
    std::uint32_t arch = 0;
    int syscall_nr = -1;
    std::uint32_t action = 0;              // SECCOMP_RET_ACTION_FULL of `code`
    std::optional<std::uint32_t> session;  // ses=, unless unset (4294967295)
};
// (Its syscall's name: butter::syscall_name(syscall_nr, arch).)
std::optional<AuditDenial> parse_audit_record(std::string_view record);

}  // namespace butter::launcher::seccomp
