// seccomp.report's kernel-log fallback: the audit record parser and the two filters.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

#include "seccomp/kernel_log.hpp"

namespace butter::launcher::seccomp {
namespace {

// As /dev/kmsg gives it (one read, one record).
constexpr std::string_view kRecord =
    "5,89,26288736355,-;audit: type=1326 audit(1796223332.652:89): auid=100000 uid=100000 "
    "gid=100000 ses=4 pid=17950 comm=\"mount\" exe=\"/usr/bin/mount\" sig=0 arch=c000003e "
    "syscall=165 compat=0 ip=0x7fe931a83e5a code=0x50000\n";

TEST(AuditRecord, ParsesASeccompRecord) {
    auto d = parse_audit_record(kRecord);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->pid, 17950);
    EXPECT_EQ(d->arch, static_cast<std::uint32_t>(AUDIT_ARCH_X86_64));
    EXPECT_EQ(d->syscall_nr, 165);
    EXPECT_EQ(d->action, static_cast<std::uint32_t>(SECCOMP_RET_ERRNO));
    EXPECT_EQ(d->session, 4U);
    EXPECT_EQ(syscall_name(d->syscall_nr, d->arch), "mount");
}

TEST(AuditRecord, KnowsTheOtherArchitecturesAndUnknownNumbers) {
    auto d = parse_audit_record(
        "5,1,2,-;audit: type=1326 audit(1.2:3): auid=4294967295 uid=0 gid=0 ses=4294967295 "
        "pid=7 comm=\"a\" exe=\"/a\" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 "
        "code=0x80000000");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->session, std::nullopt);  // unset
    EXPECT_EQ(d->action, static_cast<std::uint32_t>(SECCOMP_RET_KILL_PROCESS));
    EXPECT_EQ(syscall_name(d->syscall_nr, d->arch), "getpid");  // i386's 20
    d->syscall_nr = 99999;
    EXPECT_EQ(syscall_name(d->syscall_nr, d->arch), "syscall_99999");
}

TEST(AuditRecord, RejectsEverythingElse) {
    EXPECT_FALSE(parse_audit_record(""));
    EXPECT_FALSE(parse_audit_record("6,1,2,-;eth0: link up"));
    EXPECT_FALSE(
        parse_audit_record("5,1,2,-;audit: type=1300 audit(1.2:3): arch=c000003e "
                           "syscall=165 pid=7 code=0x50000"));
    EXPECT_FALSE(parse_audit_record("audit: type=1326 pid=7 arch=c000003e syscall=1 code=0x0"));
    std::string bad(kRecord);
    bad.replace(bad.find("pid=17950"), 9, "pid=x1795");
    EXPECT_FALSE(parse_audit_record(bad));
    std::string no_code(kRecord.substr(0, kRecord.find(" code=")));
    EXPECT_FALSE(parse_audit_record(no_code));
}

TEST(AuditRecord, TheFieldsAfterTheNamesAreTakenFromTheEnd) {
    // The kernel hex-encodes a comm or exe with a space; still, the record's own fields win.
    std::string r(kRecord);
    r.replace(r.find("exe=\"/usr/bin/mount\""), 20, "exe=\"/x syscall=1 code=0x7fff0000\"");
    auto d = parse_audit_record(r);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->syscall_nr, 165);
    EXPECT_EQ(d->action, static_cast<std::uint32_t>(SECCOMP_RET_ERRNO));
}

TEST(LoggedFilters, NotificationsBecomeTheErrnoAndTheRestStaysOrIsAllowed) {
    BpfProgram p = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kexec_load, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    auto f = logged_filters(p, EACCES);
    ASSERT_TRUE(f);
    ASSERT_EQ(f->base.size(), p.size());
    ASSERT_EQ(f->logged.size(), p.size());
    EXPECT_EQ(f->base[2].k, SECCOMP_RET_ERRNO | EACCES);
    EXPECT_EQ(f->logged[2].k, SECCOMP_RET_ERRNO | EACCES);
    EXPECT_EQ(f->base[4].k, SECCOMP_RET_ERRNO | ENOSYS);
    EXPECT_EQ(f->logged[4].k, static_cast<std::uint32_t>(SECCOMP_RET_ALLOW));
    EXPECT_EQ(f->base[6].k, SECCOMP_RET_KILL_PROCESS);
    EXPECT_EQ(f->logged[6].k, static_cast<std::uint32_t>(SECCOMP_RET_ALLOW));
    for (std::size_t i : {0U, 1U, 3U, 5U}) {  // loads and jumps untouched
        EXPECT_EQ(f->base[i].code, p[i].code);
        EXPECT_EQ(f->base[i].k, p[i].k);
        EXPECT_EQ(f->logged[i].k, p[i].k);
        EXPECT_EQ(f->logged[i].jt, p[i].jt);
    }
}

TEST(LoggedFilters, RefusesAReturnOfTheAccumulator) {
    BpfProgram p = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_A, 0)};
    EXPECT_FALSE(logged_filters(p, EPERM));
}

}  // namespace
}  // namespace butter::launcher::seccomp
