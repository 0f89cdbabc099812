#include "seccomp/kernel_log.hpp"

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <charconv>

namespace butter::launcher::seccomp {

std::optional<LoggedFilters> logged_filters(const BpfProgram& notify_program, int denied_errno) {
    const std::uint32_t errno_ret =
        SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(denied_errno) & SECCOMP_RET_DATA);
    LoggedFilters out{notify_program, notify_program};
    for (std::size_t i = 0; i < notify_program.size(); ++i) {
        const sock_filter& in = notify_program[i];
        if (BPF_CLASS(in.code) != BPF_RET) continue;
        if (BPF_RVAL(in.code) != BPF_K) return std::nullopt;
        bool notify = (in.k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF;
        out.base[i].k = notify ? errno_ret : in.k;
        out.logged[i].k = notify ? errno_ret : SECCOMP_RET_ALLOW;
    }
    return out;
}

namespace {

// The value of ` key=` in the record, up to the next space: the first one for the fields
// before comm= and exe=, the last one for those after them (the kernel hex-encodes a name with
// a space, but a record's own fields should not depend on that).
std::optional<std::string_view> field(std::string_view rec, std::string_view key, bool last) {
    std::optional<std::string_view> found;
    for (std::size_t at = 0; (at = rec.find(key, at)) != std::string_view::npos; at += key.size()) {
        if (at > 0 && rec[at - 1] != ' ') continue;
        if (at + key.size() >= rec.size() || rec[at + key.size()] != '=') continue;
        std::size_t begin = at + key.size() + 1;
        std::size_t end = rec.find_first_of(" \n", begin);
        found = rec.substr(begin, end == std::string_view::npos ? rec.size() - begin : end - begin);
        if (!last) break;
    }
    return found;
}

template <typename T>
std::optional<T> number(std::optional<std::string_view> s, int base) {
    if (!s) return std::nullopt;
    std::string_view v = *s;
    if (base == 16 && v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
        v.remove_prefix(2);
    T out{};
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, base);
    if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
    return out;
}

}  // namespace

std::optional<AuditDenial> parse_audit_record(std::string_view record) {
    // /dev/kmsg: "PRIORITY,SEQUENCE,TIMESTAMP,FLAGS;MESSAGE" (continuation lines follow).
    std::size_t semi = record.find(';');
    if (semi == std::string_view::npos) return std::nullopt;
    std::string_view msg = record.substr(semi + 1);
    if (std::size_t nl = msg.find('\n'); nl != std::string_view::npos) msg = msg.substr(0, nl);
    if (msg.rfind("audit: type=1326 ", 0) != 0) return std::nullopt;
    AuditDenial d;
    auto pid = number<pid_t>(field(msg, "pid", false), 10);
    auto arch = number<std::uint32_t>(field(msg, "arch", true), 16);
    auto nr = number<int>(field(msg, "syscall", true), 10);
    auto code = number<std::uint32_t>(field(msg, "code", true), 16);
    if (!pid || *pid <= 0 || !arch || !nr || !code) return std::nullopt;
    d.pid = *pid;
    d.arch = *arch;
    d.syscall_nr = *nr;
    d.action = *code & SECCOMP_RET_ACTION_FULL;
    if (auto ses = number<std::uint32_t>(field(msg, "ses", false), 10); ses && *ses != 0xffffffffU)
        d.session = *ses;
    return d;
}

}  // namespace butter::launcher::seccomp
