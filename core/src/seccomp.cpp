#include "butter/seccomp.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "sys.hpp"

namespace butter {

namespace {

Result<int> parse_int(std::string_view s) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        return fail(Error::message("parse_int", "not a number", std::string(s)));
    return v;
}

scmp_compare to_scmp(ArgOp op) {
    switch (op) {
        case ArgOp::Eq:
            return SCMP_CMP_EQ;
        case ArgOp::Ne:
            return SCMP_CMP_NE;
        case ArgOp::Lt:
            return SCMP_CMP_LT;
        case ArgOp::Le:
            return SCMP_CMP_LE;
        case ArgOp::Gt:
            return SCMP_CMP_GT;
        case ArgOp::Ge:
            return SCMP_CMP_GE;
        case ArgOp::MaskedEq:
            return SCMP_CMP_MASKED_EQ;
    }
    return SCMP_CMP_EQ;
}

// libseccomp returns -errno.
Error scmp_error(const char* call, int rc, std::string context) {
    return Error(call, -rc, std::move(context));
}

}  // namespace

std::uint32_t SeccompAction::native() const {
    switch (kind) {
        case Kind::Allow:
            return SCMP_ACT_ALLOW;
        case Kind::Errno:
            return SCMP_ACT_ERRNO(static_cast<std::uint32_t>(value));
        case Kind::KillProcess:
            return SCMP_ACT_KILL_PROCESS;
        case Kind::KillThread:
            return SCMP_ACT_KILL_THREAD;
        case Kind::Trap:
            return SCMP_ACT_TRAP;
        case Kind::Log:
            return SCMP_ACT_LOG;
        case Kind::Notify:
            return SCMP_ACT_NOTIFY;
        case Kind::Trace:
            return SCMP_ACT_TRACE(static_cast<std::uint32_t>(value));
    }
    return SCMP_ACT_KILL_PROCESS;
}

std::string SeccompAction::to_string() const {
    switch (kind) {
        case Kind::Allow:
            return "allow";
        case Kind::Errno:
            return "errno:" + errno_name(value);
        case Kind::KillProcess:
            return "kill";
        case Kind::KillThread:
            return "kill-thread";
        case Kind::Trap:
            return "trap";
        case Kind::Log:
            return "log";
        case Kind::Notify:
            return "notify";
        case Kind::Trace:
            return "trace:" + std::to_string(value);
    }
    return "?";
}

Result<SeccompAction> SeccompAction::parse(std::string_view text) {
    if (text == "allow") return allow();
    if (text == "kill" || text == "kill-process") return kill_process();
    if (text == "kill-thread") return kill_thread();
    if (text == "trap") return trap();
    if (text == "log") return log();
    if (text == "notify") return notify();
    if (text.starts_with("errno:")) {
        BUTTER_ASSIGN_OR_RETURN(int e, parse_errno(text.substr(6)));
        return error(e);
    }
    if (text.starts_with("trace:")) {
        auto v = parse_int(text.substr(6));
        if (v && *v >= 0 && *v <= 0xffff) return trace(*v);
    }
    return fail(Error::message("seccomp action",
                               "unknown action (allow, errno:NAME, kill, kill-thread, trap, log, "
                               "notify, trace:N)",
                               std::string(text)));
}

Result<int> parse_errno(std::string_view text) {
    if (auto n = parse_int(text); n && *n > 0 && *n < 4096) return *n;
    for (int e = 1; e < 4096; ++e) {
        const char* name = strerrorname_np(e);
        if (name && text == name) return e;
    }
    return fail(Error::message("errno", "unknown errno name", std::string(text)));
}

std::string errno_name(int e) {
    const char* name = strerrorname_np(e);
    return name ? name : std::to_string(e);
}

Result<int> resolve_syscall(std::string_view name) {
    int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
    if (nr == __NR_SCMP_ERROR || nr < 0)
        return fail(Error::message("seccomp_syscall_resolve_name",
                                   "no such syscall on this architecture", std::string(name)));
    return nr;
}

std::string syscall_name(int nr, std::uint32_t arch) {
    static_assert(SCMP_ARCH_NATIVE == 0);
    char* name = seccomp_syscall_resolve_num_arch(arch, nr);
    if (!name) return "syscall_" + std::to_string(nr);
    std::string s(name);
    std::free(name);
    return s;
}

bool syscall_known_on_any_arch(std::string_view name) {
    static constexpr std::uint32_t kArches[] = {
        SCMP_ARCH_X86_64,  SCMP_ARCH_X86,   SCMP_ARCH_X32,    SCMP_ARCH_ARM,
        SCMP_ARCH_AARCH64, SCMP_ARCH_MIPS,  SCMP_ARCH_MIPS64, SCMP_ARCH_PPC64,
        SCMP_ARCH_PPC64LE, SCMP_ARCH_S390X, SCMP_ARCH_RISCV64};
    std::string n(name);
    for (std::uint32_t arch : kArches) {
        int nr = seccomp_syscall_resolve_name_arch(arch, n.c_str());
        if (nr != __NR_SCMP_ERROR && nr >= 0) return true;
    }
    return false;
}

int max_known_syscall() {
    static const int kMax = [] {
        int best = -1;
        // The tables have gaps (x86_64 jumps from 334 to 424): probe the whole 10-bit range.
        for (int nr = 0; nr < 1024; ++nr) {
            char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
            if (name) {
                best = nr;
                std::free(name);
            }
        }
        return best;
    }();
    return kMax;
}

struct SeccompFilter::Ctx {
    scmp_filter_ctx ctx = nullptr;
    bool notify = false;  // a rule answers by user notification
    ~Ctx() {
        if (ctx) seccomp_release(ctx);
    }
};

SeccompFilter::SeccompFilter(std::unique_ptr<Ctx> ctx) : ctx_(std::move(ctx)) {}
SeccompFilter::SeccompFilter(SeccompFilter&&) noexcept = default;
SeccompFilter& SeccompFilter::operator=(SeccompFilter&&) noexcept = default;
SeccompFilter::~SeccompFilter() = default;

Result<SeccompFilter> SeccompFilter::create(SeccompAction default_action) {
    auto c = std::make_unique<Ctx>();
    c->ctx = seccomp_init(default_action.native());
    if (!c->ctx) return fail(Error("seccomp_init", EINVAL, default_action.to_string()));
    SeccompFilter f(std::move(c));
    // Fail closed on foreign ABIs: libseccomp's default bad-arch action kills only the thread.
    BUTTER_TRY(f.set_bad_arch_action(SeccompAction::kill_process()));
    return f;
}

Result<void> SeccompFilter::add_rule(SeccompAction action, std::string_view name,
                                     std::span<const ArgCondition> conditions) {
    BUTTER_ASSIGN_OR_RETURN(int nr, resolve_syscall(name));
    return with_context(add_rule(action, nr, conditions), std::string(name));
}

Result<void> SeccompFilter::add_rule(SeccompAction action, int syscall_nr,
                                     std::span<const ArgCondition> conditions) {
    return add(action, syscall_nr, conditions, true);
}

Result<void> SeccompFilter::add_rule_translated(SeccompAction action, int syscall_nr,
                                                std::span<const ArgCondition> conditions) {
    return add(action, syscall_nr, conditions, false);
}

Result<void> SeccompFilter::add(SeccompAction action, int syscall_nr,
                                std::span<const ArgCondition> conditions, bool exact) {
    std::vector<struct scmp_arg_cmp> cmps;
    for (const ArgCondition& c : conditions) {
        if (c.index > 5) return fail(Error("seccomp_rule_add", EINVAL, "argument index > 5"));
        cmps.push_back(c.op == ArgOp::MaskedEq
                           ? scmp_arg_cmp{c.index, SCMP_CMP_MASKED_EQ, c.mask, c.value}
                           : scmp_arg_cmp{c.index, to_scmp(c.op), c.value, 0});
    }
    int rc = exact ? seccomp_rule_add_exact_array(ctx_->ctx, action.native(), syscall_nr,
                                                  static_cast<unsigned>(cmps.size()), cmps.data())
                   : seccomp_rule_add_array(ctx_->ctx, action.native(), syscall_nr,
                                            static_cast<unsigned>(cmps.size()), cmps.data());
    if (rc >= 0 && action.kind == SeccompAction::Kind::Notify) ctx_->notify = true;
    if (rc < 0) {
        Error e = scmp_error("seccomp_rule_add", rc, syscall_name(syscall_nr));
        if (rc == -EACCES)
            return fail(std::move(e).with_hint("the rule's action equals the default action"));
        return fail(std::move(e));
    }
    return {};
}

Result<void> SeccompFilter::set_bad_arch_action(SeccompAction action) {
    int rc = seccomp_attr_set(ctx_->ctx, SCMP_FLTATR_ACT_BADARCH, action.native());
    if (rc < 0) return fail(scmp_error("seccomp_attr_set", rc, "SCMP_FLTATR_ACT_BADARCH"));
    return {};
}

Result<void> SeccompFilter::add_arch(std::string_view arch) {
    std::uint32_t token = seccomp_arch_resolve_name(std::string(arch).c_str());
    if (token == 0)
        return fail(
            Error::message("seccomp_arch_resolve_name", "unknown architecture", std::string(arch)));
    int rc = seccomp_arch_add(ctx_->ctx, token);
    if (rc < 0 && rc != -EEXIST) return fail(scmp_error("seccomp_arch_add", rc, std::string(arch)));
    return {};
}

Result<void> SeccompFilter::set_no_new_privs(bool on) {
    int rc = seccomp_attr_set(ctx_->ctx, SCMP_FLTATR_CTL_NNP, on ? 1 : 0);
    if (rc < 0) return fail(scmp_error("seccomp_attr_set", rc, "SCMP_FLTATR_CTL_NNP"));
    return {};
}

Result<void> SeccompFilter::set_binary_tree(bool on) {
    int rc = seccomp_attr_set(ctx_->ctx, SCMP_FLTATR_CTL_OPTIMIZE, on ? 2 : 1);
    if (rc < 0) return fail(scmp_error("seccomp_attr_set", rc, "SCMP_FLTATR_CTL_OPTIMIZE"));
    return {};
}

Result<BpfProgram> SeccompFilter::export_bpf() const {
    // libseccomp 2.5 exports only to an fd: a memfd keeps it in memory.
    int fd = ::memfd_create("butter-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0) return fail_errno("memfd_create");
    Fd owned(fd);
    int rc = seccomp_export_bpf(ctx_->ctx, fd);
    if (rc < 0) return fail(scmp_error("seccomp_export_bpf", rc, ""));
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) return fail_errno("lseek");
    if (size % static_cast<off_t>(sizeof(struct sock_filter)) != 0)
        return fail(Error("seccomp_export_bpf", EIO, "truncated program"));
    BpfProgram prog(static_cast<std::size_t>(size) / sizeof(struct sock_filter));
    if (::pread(fd, prog.data(), static_cast<std::size_t>(size), 0) != size)
        return fail_errno("pread");
    return prog;
}

BpfProgram with_syscall_ceiling(std::span<const struct sock_filter> program, int max_nr,
                                int errno_value) {
#if defined(__x86_64__)
    constexpr std::uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr std::uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "seccomp: add this architecture's AUDIT_ARCH"
#endif
    auto ld = [](std::uint32_t off) -> sock_filter {
        return BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off);
    };
    auto jump = [](std::uint16_t op, std::uint32_t k, std::uint8_t jt,
                   std::uint8_t jf) -> sock_filter {
        return BPF_JUMP(BPF_JMP | op | BPF_K, k, jt, jf);
    };
#if defined(__x86_64__)
    // __X32_SYSCALL_BIT: the x32 ABI's numbers are the program's to judge.
    sock_filter other_abi = jump(BPF_JGE, 0x40000000U, 2, 0);
#else
    sock_filter other_abi = jump(BPF_JEQ, 0xffffffffU, 2, 0);  // no such range: never taken
#endif
    std::uint32_t ret =
        SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(errno_value) & SECCOMP_RET_DATA);
    // Each jump's offsets count from the next instruction; "to program" is past the return.
    BpfProgram out{
        ld(offsetof(struct seccomp_data, arch)),
        jump(BPF_JEQ, kNativeArch, 0, 4),
        ld(offsetof(struct seccomp_data, nr)),
        other_abi,
        jump(BPF_JGT, static_cast<std::uint32_t>(max_nr), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, ret),
    };
    out.insert(out.end(), program.begin(), program.end());
    return out;
}

Result<void> SeccompFilter::load() const {
    // Loaded with notify rules, the listener would be libseccomp's alone, which nobody reads:
    // every call a rule holds would wait for ever.
    if (ctx_->notify)
        return fail(Error::message("seccomp_load",
                                   "the filter has notify rules: load it with "
                                   "load_with_listener() and answer them"));
    int rc = seccomp_load(ctx_->ctx);
    if (rc < 0) return fail(scmp_error("seccomp_load", rc, ""));
    return {};
}

Result<Fd> SeccompFilter::load_with_listener() const {
    if (!ctx_->notify)
        return fail(Error::message("seccomp_load", "the filter has no notify rule: no listener"));
    int rc = seccomp_load(ctx_->ctx);
    if (rc < 0) return fail(scmp_error("seccomp_load", rc, ""));
    int fd = seccomp_notify_fd(ctx_->ctx);
    if (fd < 0) return fail(scmp_error("seccomp_notify_fd", fd, ""));
    // libseccomp keeps the listener in its global state (and hands the same one out again):
    // the caller gets an independent, close-on-exec duplicate, and libseccomp's is closed
    // (seccomp_reset(NULL) resets that state), so closing the caller's ends the notification
    // (the held calls then fail with ENOSYS) instead of leaving them waiting.
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)");
    (void)seccomp_reset(nullptr, 0);
    return Fd(dup);
}

Result<bool> seccomp_action_available(SeccompAction action) {
    std::uint32_t a = action.native() & SECCOMP_RET_ACTION_FULL;
    if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &a) == 0) return true;
    if (errno == EOPNOTSUPP) return false;
    return fail_errno("seccomp", "SECCOMP_GET_ACTION_AVAIL");
}

Result<Fd> load_bpf(std::span<const struct sock_filter> program, const BpfLoadOptions& options) {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(program.size());
    prog.filter = const_cast<struct sock_filter*>(program.data());
    unsigned flags = (options.new_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0) |
                     (options.tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0) |
                     (options.log ? SECCOMP_FILTER_FLAG_LOG : 0) |
                     (options.spec_allow ? SECCOMP_FILTER_FLAG_SPEC_ALLOW : 0);
    long r = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0) {
        Error e = Error::from_errno("seccomp", "SECCOMP_SET_MODE_FILTER");
        if (e.errno_value() == EACCES)
            return fail(std::move(e).with_hint("set no_new_privs first, or hold CAP_SYS_ADMIN"));
        return fail(std::move(e));
    }
    // The listener is created close-on-exec by the kernel.
    return Fd(options.new_listener ? static_cast<int>(r) : -1);
}

std::string SeccompNotification::to_string() const {
    std::string s = syscall_name() + "(";
    char buf[32];
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s0x%llx", i ? ", " : "",
                      static_cast<unsigned long long>(args[i]));
        s += buf;
    }
    return s + ") from pid " + std::to_string(pid);
}

Result<std::optional<SeccompNotification>> SeccompNotifyFd::read_event() {
    BUTTER_ASSIGN_OR_RETURN(bool nonblocking, is_nonblocking(fd_));
    if (nonblocking) {
        // NOTIF_RECV blocks whatever the file flags say: ask poll first.
        struct pollfd p {
            fd_.get(), POLLIN, 0
        };
        int n = sys::retry_eintr([&] { return ::poll(&p, 1, 0); });
        if (n < 0) return fail_errno("poll");
        if (n == 0) return std::optional<SeccompNotification>();
        if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN))
            return std::optional<SeccompNotification>();  // no filter users left
    }
    struct seccomp_notif req;
    std::memset(&req, 0, sizeof req);  // the kernel insists on a zeroed struct
    int r = sys::retry_eintr([&] { return ::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_RECV, &req); });
    if (r < 0) {
        if (errno == ENOENT) return std::optional<SeccompNotification>();  // caller died
        return fail_errno("ioctl(SECCOMP_IOCTL_NOTIF_RECV)");
    }
    SeccompNotification n;
    n.id = req.id;
    n.pid = static_cast<pid_t>(req.pid);
    n.syscall_nr = req.data.nr;
    n.arch = req.data.arch;
    n.instruction_pointer = req.data.instruction_pointer;
    for (std::size_t i = 0; i < 6; ++i)
        n.args[i] = req.data.args[i];
    return std::optional<SeccompNotification>(n);
}

Result<std::vector<SeccompNotification>> SeccompNotifyFd::read_events() {
    std::vector<SeccompNotification> out;
    BUTTER_ASSIGN_OR_RETURN(auto first, read_event());
    if (!first) return out;
    out.push_back(*first);
    // Whatever else is ready, without blocking.
    for (;;) {
        struct pollfd p {
            fd_.get(), POLLIN, 0
        };
        if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) break;
        BUTTER_ASSIGN_OR_RETURN(auto more, read_event());
        if (!more) break;
        out.push_back(*more);
    }
    return out;
}

Result<void> SeccompNotifyFd::send(std::uint64_t id, int err, std::int64_t val,
                                   std::uint32_t flags) {
    struct seccomp_notif_resp resp {};
    resp.id = id;
    resp.error = err == 0 ? 0 : -err;
    resp.val = val;
    resp.flags = flags;
    int r = sys::retry_eintr([&] { return ::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp); });
    if (r < 0) return fail_errno("ioctl(SECCOMP_IOCTL_NOTIF_SEND)");
    return {};
}

Result<void> SeccompNotifyFd::respond_errno(std::uint64_t id, int err) {
    return send(id, err, 0, 0);
}
Result<void> SeccompNotifyFd::respond_value(std::uint64_t id, std::int64_t value) {
    return send(id, 0, value, 0);
}
Result<void> SeccompNotifyFd::respond_continue(std::uint64_t id) {
    return send(id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

Result<bool> SeccompNotifyFd::id_valid(std::uint64_t id) {
    std::uint64_t v = id;
    if (::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &v) < 0) {
        if (errno == ENOENT) return false;
        return fail_errno("ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID)");
    }
    return true;
}

}  // namespace butter
