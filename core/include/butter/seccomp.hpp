// Seccomp: a filter builder on libseccomp (default action, per-syscall rules with argument
// conditions, architecture policy), BPF export and raw BPF loading (compile in one process, load
// in another), and the user-notification fd (SECCOMP_RET_USER_NOTIF) as an event-like object.
//
// Architectures: a filter covers the native ABI only; calls through any other ABI (x32 on
// x86_64, i386 through int 0x80) get the bad-arch action, KillProcess unless changed. libseccomp
// types stay out of this header.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"

namespace butter {

struct SeccompAction {
    enum class Kind { Allow, Errno, KillProcess, KillThread, Trap, Log, Notify, Trace };
    Kind kind = Kind::Allow;
    int value = 0;  // the errno for Errno, the tracer's data for Trace

    static constexpr SeccompAction allow() { return {Kind::Allow, 0}; }
    static constexpr SeccompAction error(int e) { return {Kind::Errno, e}; }
    static constexpr SeccompAction kill_process() { return {Kind::KillProcess, 0}; }
    static constexpr SeccompAction kill_thread() { return {Kind::KillThread, 0}; }
    static constexpr SeccompAction trap() { return {Kind::Trap, 0}; }
    static constexpr SeccompAction log() { return {Kind::Log, 0}; }
    static constexpr SeccompAction notify() { return {Kind::Notify, 0}; }
    static constexpr SeccompAction trace(int data) { return {Kind::Trace, data}; }

    // The SECCOMP_RET_* value the filter returns.
    std::uint32_t native() const;
    // "allow", "errno:EPERM", "kill", "kill-thread", "trap", "log", "notify", "trace:N".
    std::string to_string() const;
    // The inverse of to_string; "errno:13" and "kill-process" are accepted too.
    [[nodiscard]] static Result<SeccompAction> parse(std::string_view text);
    friend bool operator==(const SeccompAction&, const SeccompAction&) = default;
};

// "EPERM" -> 1, "13" -> 13; an Error naming the text otherwise.
[[nodiscard]] Result<int> parse_errno(std::string_view text);
// 1 -> "EPERM"; unknown numbers as the number.
std::string errno_name(int e);

// A comparison of one syscall argument (0..5) with a value, as SCMP_CMP.
enum class ArgOp { Eq, Ne, Lt, Le, Gt, Ge, MaskedEq };
struct ArgCondition {
    unsigned index = 0;
    ArgOp op = ArgOp::Eq;
    std::uint64_t value = 0;
    std::uint64_t mask = 0;  // MaskedEq: (arg & mask) == value
};

// The native syscall number of `name` (seccomp_syscall_resolve_name); an Error naming it when
// the native architecture has no such syscall.
[[nodiscard]] Result<int> resolve_syscall(std::string_view name);
// The name of `nr` on `arch` (an AUDIT_ARCH_* value as seccomp_data and audit records carry
// it; 0: the native one), or "syscall_N".
std::string syscall_name(int nr, std::uint32_t arch = 0);
// Whether `name` is a syscall on some architecture libseccomp knows (for "exists elsewhere").
bool syscall_known_on_any_arch(std::string_view name);
// The highest syscall number the native table of libseccomp knows.
int max_known_syscall();

using BpfProgram = std::vector<struct sock_filter>;

class SeccompFilter {
  public:
    [[nodiscard]] static Result<SeccompFilter> create(SeccompAction default_action);
    SeccompFilter(SeccompFilter&&) noexcept;
    SeccompFilter& operator=(SeccompFilter&&) noexcept;
    ~SeccompFilter();

    // A rule for syscall `name` with optional argument conditions (all must match). Errors:
    // unknown names (context: the name), an action equal to the default (EACCES from
    // libseccomp, reported with a hint), conflicting rules.
    [[nodiscard]] Result<void> add_rule(SeccompAction action, std::string_view name,
                                        std::span<const ArgCondition> conditions = {});
    [[nodiscard]] Result<void> add_rule(SeccompAction action, int syscall_nr,
                                        std::span<const ArgCondition> conditions = {});
    // The same for each ABI the filter covers, as libseccomp translates it (seccomp_rule_add,
    // not _exact): an ABI that lacks the call gets no rule, one that multiplexes it (i386's
    // socketcall) the rule libseccomp can make. For filters written for several ABIs (an OCI
    // config's).
    [[nodiscard]] Result<void> add_rule_translated(SeccompAction action, int syscall_nr,
                                                   std::span<const ArgCondition> conditions = {});
    // The action for a call through a non-native ABI (SCMP_FLTATR_ACT_BADARCH).
    [[nodiscard]] Result<void> set_bad_arch_action(SeccompAction action);
    // Covers another ABI too ("x86", "x32"): only for profiles that ask for it.
    [[nodiscard]] Result<void> add_arch(std::string_view arch);
    // Whether load() sets no_new_privs first (libseccomp's default: yes). Without it, loading
    // needs CAP_SYS_ADMIN.
    [[nodiscard]] Result<void> set_no_new_privs(bool on);
    // Sorts syscalls into a binary tree (SCMP_FLTATR_CTL_OPTIMIZE=2): fewer comparisons for
    // long lists.
    [[nodiscard]] Result<void> set_binary_tree(bool on);

    // The compiled classic BPF program.
    [[nodiscard]] Result<BpfProgram> export_bpf() const;
    // Loads the filter into the calling thread (seccomp_load).
    [[nodiscard]] Result<void> load() const;
    // Loads it and returns the user-notification listener fd (the filter must use Notify).
    [[nodiscard]] Result<Fd> load_with_listener() const;

  private:
    struct Ctx;
    explicit SeccompFilter(std::unique_ptr<Ctx> ctx);
    Result<void> add(SeccompAction action, int syscall_nr, std::span<const ArgCondition> conditions,
                     bool exact);
    std::unique_ptr<Ctx> ctx_;
};

// `program` behind one range check: a native system call numbered above `max_nr` fails with
// `errno_value` before `program` sees it (ENOSYS, as from a kernel without it), in place of a
// rule per number; other ABIs (and x86_64's x32 range) go to `program` as they are.
[[nodiscard]] BpfProgram with_syscall_ceiling(std::span<const struct sock_filter> program,
                                              int max_nr, int errno_value);

// seccomp(SECCOMP_GET_ACTION_AVAIL): whether the kernel implements `action` (user
// notification needs 5.0, kill-process 4.14, log 4.14).
[[nodiscard]] Result<bool> seccomp_action_available(SeccompAction action);

struct BpfLoadOptions {
    bool new_listener = false;  // SECCOMP_FILTER_FLAG_NEW_LISTENER: return a notify fd
    bool tsync = false;         // SECCOMP_FILTER_FLAG_TSYNC: all threads
    bool log = false;           // SECCOMP_FILTER_FLAG_LOG: log every non-allow action
    bool spec_allow = false;    // SECCOMP_FILTER_FLAG_SPEC_ALLOW: no forced SSB mitigation
};
// seccomp(SECCOMP_SET_MODE_FILTER) with a program compiled elsewhere (export_bpf). Needs
// no_new_privs or CAP_SYS_ADMIN. Returns the listener fd with new_listener, else an invalid Fd.
// Async-signal-safe (one system call), so a forked child may call it before exec.
[[nodiscard]] Result<Fd> load_bpf(std::span<const struct sock_filter> program,
                                  const BpfLoadOptions& options = {});

// One syscall held by SECCOMP_RET_USER_NOTIF.
struct SeccompNotification {
    std::uint64_t id = 0;
    pid_t pid = 0;  // in the supervisor's pid namespace
    int syscall_nr = 0;
    std::uint32_t arch = 0;
    std::uint64_t instruction_pointer = 0;
    std::array<std::uint64_t, 6> args{};
    std::string syscall_name() const { return butter::syscall_name(syscall_nr); }
    std::string to_string() const;  // "mount(0x..., 0x..., ...) from pid 12"
};

// The listener fd of a filter with Notify rules; event-like. Every notification must be
// answered (respond_*), or the calling thread stays blocked in the syscall.
class SeccompNotifyFd {
  public:
    using Event = SeccompNotification;
    explicit SeccompNotifyFd(Fd fd) : fd_(std::move(fd)) {}

    // SECCOMP_IOCTL_NOTIF_RECV. Blocks on a blocking fd; on a non-blocking one returns nullopt
    // when nothing is pending (also when the caller died before it was received).
    [[nodiscard]] Result<std::optional<SeccompNotification>> read_event();
    // Every notification pending now (zero or more; never blocks on a non-blocking fd).
    [[nodiscard]] Result<std::vector<SeccompNotification>> read_events();
    // SECCOMP_IOCTL_NOTIF_SEND: the syscall fails with `err`. ENOENT: the caller is gone.
    [[nodiscard]] Result<void> respond_errno(std::uint64_t id, int err);
    // The syscall "returns" `value` without running.
    [[nodiscard]] Result<void> respond_value(std::uint64_t id, std::int64_t value);
    // The syscall runs as if unfiltered (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Never a security
    // decision on pointer arguments: the caller can change the memory after the check.
    [[nodiscard]] Result<void> respond_continue(std::uint64_t id);
    // SECCOMP_IOCTL_NOTIF_ID_VALID: whether the caller still waits on `id` (check after reading
    // its memory, to know the pid was not reused).
    [[nodiscard]] Result<bool> id_valid(std::uint64_t id);
    int fd() const { return fd_.get(); }

  private:
    Result<void> send(std::uint64_t id, int err, std::int64_t val, std::uint32_t flags);
    Fd fd_;
};

}  // namespace butter
