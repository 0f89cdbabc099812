#include "seccomp/builtin.hpp"

namespace butter::launcher::seccomp {

std::string program_key(const profile::Profile& p) {
    const auto& s = p.seccomp;
    // Only the profile's part: the key is compared with programs compiled into the same binary,
    // by the same compiler from the same syscall groups.
    std::string k = "default " + s.default_action.to_string() + "\nerrno " +
                    errno_name(s.denied_errno) + "\nreport " + (s.report ? "1" : "0") + "\n" +
                    (s.learn ? "learn\n" : "");
    for (const auto& d : s.deny)
        k += "deny " + d + "\n";
    for (const auto& a : s.allow)
        k += "allow " + a + "\n";
    for (const auto& r : s.rules)
        k += "rule " + r.text + "\n";
    for (const auto& r : implicit_rules(p))
        k += "implicit " + r.text + "\n";
    return k;
}

std::optional<Compiled> compile_or_builtin(const profile::Profile& p,
                                           std::span<const BuiltinProgram> builtin,
                                           profile::Diagnostics& out) {
    if (!builtin.empty()) {
        std::string key = program_key(p);
        for (const BuiltinProgram& b : builtin) {
            if (b.key != key) continue;
            Compiled c;
            c.program.assign(b.insns, b.insns + b.count);
            c.uses_notify = b.uses_notify;
            c.denied_errno = b.denied_errno;
            return c;
        }
    }
    return compile(p, out);
}

}  // namespace butter::launcher::seccomp
