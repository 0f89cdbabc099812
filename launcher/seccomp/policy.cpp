#include "seccomp/policy.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>

#include <butter/error.hpp>

#include "profile/seccomp_rules.hpp"
#include "profile/toml_reader.hpp"

namespace butter::launcher::seccomp {

extern const std::string_view kSyscallGroupsToml;

namespace {

using profile::Diagnostics;
using profile::error_at;
using profile::SourceLoc;

void expand_one(const std::string& item, const SourceLoc& loc, Diagnostics& out,
                std::set<std::string>& result, std::set<std::string>& visiting, bool from_group) {
    if (item.starts_with("@")) {
        std::string name = item.substr(1);
        auto it = groups().find(name);
        if (it == groups().end()) {
            std::string known;
            for (const auto& [g, _] : groups())
                known += (known.empty() ? "@" : ", @") + g;
            out.push_back(error_at(
                loc, "seccomp: unknown syscall group '" + item + "' (known: " + known + ")"));
            return;
        }
        if (!visiting.insert(name).second) return;
        for (const std::string& m : it->second)
            expand_one(m, loc, out, result, visiting, true);
        visiting.erase(name);
        return;
    }
    if (resolve_syscall(item)) {
        result.insert(item);
    } else if (syscall_known_on_any_arch(item)) {
        // A real syscall elsewhere (socketcall, *_time64 ...): nothing to filter here.
        if (!from_group)
            out.push_back(profile::note_at(loc, "seccomp: '" + item +
                                                    "' does not exist on this "
                                                    "architecture; skipped"));
    } else {
        out.push_back(error_at(loc, "seccomp: unknown syscall '" + item + "'"));
    }
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& groups() {
    static const auto kGroups = [] {
        std::map<std::string, std::vector<std::string>> g;
        Diagnostics d;
        auto tree = profile::parse_toml(kSyscallGroupsToml, "syscall_groups.toml", d);
        if (!tree) return g;  // the build's own data: a unit test guards it
        const profile::Value* table = tree->find("groups");
        if (!table) return g;
        for (const auto& [name, list] : table->table) {
            auto& members = g[name];
            for (const auto& v : list.array)
                members.push_back(v.string);
        }
        return g;
    }();
    return kGroups;
}

std::set<std::string> expand(const std::vector<std::string>& items,
                             const std::function<SourceLoc(std::size_t)>& loc_of,
                             Diagnostics& out) {
    std::set<std::string> result, visiting;
    for (std::size_t i = 0; i < items.size(); ++i)
        expand_one(items[i], loc_of(i), out, result, visiting, false);
    return result;
}

namespace {

// libseccomp compares each argument once per rule, so a rule's checks expand into alternatives:
// one list of comparisons per libseccomp rule, any of which gives the action.
using Alternatives = std::vector<std::vector<ArgCondition>>;

// A value that fits in 32 bits is compared on the low 32 bits only: int arguments arrive with
// undefined upper halves, and the kernel ignores them (TIOCSTI with junk above bit 31 is still
// TIOCSTI).
ArgCondition equal(unsigned i, std::uint64_t v) {
    if (v <= 0xffffffffULL) return {i, ArgOp::MaskedEq, v, 0xffffffffULL};
    return {i, ArgOp::Eq, v, 0};
}

ArgOp op_of(const std::string& op) {
    if (op == "eq") return ArgOp::Eq;
    if (op == "ne") return ArgOp::Ne;
    if (op == "lt") return ArgOp::Lt;
    if (op == "le") return ArgOp::Le;
    if (op == "gt") return ArgOp::Gt;
    return ArgOp::Ge;
}

ArgOp negate(ArgOp op) {
    switch (op) {
        case ArgOp::Eq:
            return ArgOp::Ne;
        case ArgOp::Ne:
            return ArgOp::Eq;
        case ArgOp::Lt:
            return ArgOp::Ge;
        case ArgOp::Le:
            return ArgOp::Gt;
        case ArgOp::Gt:
            return ArgOp::Le;
        case ArgOp::Ge:
            return ArgOp::Lt;
        case ArgOp::MaskedEq:
            return ArgOp::MaskedEq;
    }
    return op;
}

constexpr std::size_t kMaxAlternatives = 512;

std::uint64_t all_bits(const profile::ArgCheck& a) {
    std::uint64_t bits = 0;
    for (auto v : a.values)
        bits |= v;
    return bits;
}

// The ways one check holds (each a single comparison).
void holds(const profile::ArgCheck& a, std::vector<ArgCondition>& out) {
    switch (a.kind) {
        case profile::ArgCheck::Kind::OneOf:
            for (auto v : a.values)
                out.push_back(equal(a.index, v));
            break;
        case profile::ArgCheck::Kind::Compare:
            out.push_back({a.index, op_of(a.op), a.values[0], 0});
            break;
        case profile::ArgCheck::Kind::AnyBit:
            for (int b = 0; b < 64; ++b)
                if (all_bits(a) & (1ULL << b))
                    out.push_back({a.index, ArgOp::MaskedEq, 1ULL << b, 1ULL << b});
            break;
        case profile::ArgCheck::Kind::AllBits:
            out.push_back({a.index, ArgOp::MaskedEq, all_bits(a), all_bits(a)});
            break;
    }
}

// The ways one check fails: the complement of `holds`, as single comparisons. A set of values
// becomes "below the smallest", "above the largest" and every value in the gaps between them.
std::optional<std::string> fails(const profile::ArgCheck& a, std::vector<ArgCondition>& out) {
    switch (a.kind) {
        case profile::ArgCheck::Kind::OneOf: {
            std::vector<std::uint64_t> v = a.values;
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
            if (v.front() > 0) out.push_back({a.index, ArgOp::Lt, v.front(), 0});
            if (v.back() < ~0ULL) out.push_back({a.index, ArgOp::Gt, v.back(), 0});
            for (std::size_t i = 0; i + 1 < v.size(); ++i) {
                if (v[i + 1] - v[i] - 1 > kMaxAlternatives)
                    return "the values " + std::to_string(v[i]) + " and " +
                           std::to_string(v[i + 1]) +
                           " are too far apart for 'unless' (libseccomp compares one value per "
                           "rule); list what to deny with 'match' instead";
                for (std::uint64_t x = v[i] + 1; x < v[i + 1]; ++x)
                    out.push_back(equal(a.index, x));
            }
            break;
        }
        case profile::ArgCheck::Kind::Compare:
            out.push_back({a.index, negate(op_of(a.op)), a.values[0], 0});
            break;
        case profile::ArgCheck::Kind::AnyBit:
            out.push_back({a.index, ArgOp::MaskedEq, 0, all_bits(a)});  // none of the bits set
            break;
        case profile::ArgCheck::Kind::AllBits:
            return std::string("'unless' cannot take all_bits (use any_bit, or match)");
    }
    if (out.size() > kMaxAlternatives)
        return std::string("'unless' expands to too many comparisons");
    return std::nullopt;
}

// match: every check holds (one alternative per combination); unless: any check fails.
std::optional<std::string> expand_rule(const profile::SeccompRule& r, Alternatives& out) {
    out.clear();
    if (r.args.empty()) {
        out.push_back({});
        return std::nullopt;
    }
    for (std::size_t i = 0; i < r.args.size(); ++i)
        for (std::size_t j = i + 1; j < r.args.size(); ++j)
            if (r.args[i].index == r.args[j].index)
                return "arg" + std::to_string(r.args[i].index) + " appears twice";
    if (r.unless) {
        for (const auto& a : r.args) {
            std::vector<ArgCondition> ways;
            if (auto e = fails(a, ways)) return e;
            for (const auto& w : ways)
                out.push_back({w});
        }
        return std::nullopt;
    }
    out.push_back({});
    for (const auto& a : r.args) {
        std::vector<ArgCondition> ways;
        holds(a, ways);
        Alternatives next;
        for (const auto& prefix : out) {
            for (const auto& w : ways) {
                auto combo = prefix;
                combo.push_back(w);
                next.push_back(std::move(combo));
            }
        }
        out = std::move(next);
        if (out.size() > kMaxAlternatives)
            return std::string("the rule expands to too many comparisons");
    }
    return std::nullopt;
}

}  // namespace

std::vector<ImplicitRule> implicit_rules(const profile::Profile& p) {
    std::vector<ImplicitRule> out;
    auto in = [](const std::vector<std::string>& v, const char* n) {
        return std::find(v.begin(), v.end(), n) != v.end();
    };
    // Denied whatever its arguments: in the deny list, and not allowed back (a deny list's
    // seccomp.allow re-allows; an allow list's deny wins).
    bool deny_list = p.seccomp.default_action.kind == SeccompAction::Kind::Allow;
    auto denied_outright = [&](const char* n) {
        return in(p.seccomp.deny, n) && !(deny_list && in(p.seccomp.allow, n));
    };
    auto has_own_rule = [&](const char* n) {
        return std::any_of(p.seccomp.rules.begin(), p.seccomp.rules.end(),
                           [&](const profile::SeccompRule& r) { return in(r.syscalls, n); });
    };
    // syscalls = [...] of those in `names` that exist here, are not denied outright and have no
    // rule of the profile's own (which then decides for them).
    auto rule = [&](const char* key, std::initializer_list<const char*> names,
                    const std::string& rest) {
        std::string list;
        for (const char* n : names)
            if (resolve_syscall(n) && !denied_outright(n) && !has_own_rule(n))
                list += (list.empty() ? "\"" : ", \"") + std::string(n) + "\"";
        if (!list.empty()) out.push_back({"{ syscalls = [" + list + "]" + rest + " }", key});
    };
    // Below the namespaces tier the command runs in the host's namespaces (plan/tier.cpp).
    bool host_view =
        p.isolation.tier == profile::Tier::Landlock || p.isolation.tier == profile::Tier::Seccomp;
    // There Landlock has no right for a file's mode: by path, chmod reaches every host file
    // of the command's user. Compilers and installers need it in the workspace, so it stays,
    // but never giving group or others write (S_IWGRP, S_IWOTH: a dotfile or directory of
    // yours that another user could then change).
    std::string chmod_bits;
    if (p.seccomp.restrict_suid_sgid) chmod_bits = "\"S_ISUID\", \"S_ISGID\"";
    if (host_view) chmod_bits += std::string(chmod_bits.empty() ? "" : ", ") + "16, 2";
    if (!chmod_bits.empty()) {
        const char* key = host_view ? "isolation.tier" : "seccomp.restrict_suid_sgid";
        rule(key, {"chmod"}, ", match = { arg1 = { any_bit = [" + chmod_bits + "] } }");
        rule(key, {"fchmodat", "fchmodat2"},
             ", match = { arg2 = { any_bit = [" + chmod_bits + "] } }");
    }
    if (p.seccomp.restrict_suid_sgid) {
        // systemd's RestrictSUIDSGID: the mode argument of every call that sets one, and of
        // the opens that create. openat2's flags and mode lie in memory, out of the filter's
        // reach: ENOSYS, and libc falls back to openat.
        const char* key = "seccomp.restrict_suid_sgid";
        const std::string setid = "{ any_bit = [\"S_ISUID\", \"S_ISGID\"] }";
        const std::string creates = "{ any_bit = [\"O_CREAT\", \"__O_TMPFILE\"] }";
        rule(key, {"fchmod", "creat", "mkdir", "mknod"}, ", match = { arg1 = " + setid + " }");
        rule(key, {"mkdirat", "mknodat"}, ", match = { arg2 = " + setid + " }");
        rule(key, {"open"}, ", match = { arg1 = " + creates + ", arg2 = " + setid + " }");
        rule(key, {"openat"}, ", match = { arg2 = " + creates + ", arg3 = " + setid + " }");
        rule(key, {"openat2"}, ", action = \"errno:ENOSYS\"");
    }
    // Landlock's TCP port rules do not cover MPTCP sockets (TCP on the wire): where they are
    // in force, IPPROTO_MPTCP fails and programs fall back to plain TCP.
    bool user_net = p.network.mode == profile::NetworkMode::User;
    if (!p.landlock.tcp_connect.empty() || !p.landlock.tcp_bind.empty() ||
        (p.network.landlock && user_net))
        rule(p.network.landlock && user_net ? "network.landlock" : "landlock.tcp_connect",
             {"socket"}, ", match = { arg2 = [262] }, action = \"errno:EPROTONOSUPPORT\"");
    if (p.seccomp.restrict_xattrs)
        rule("seccomp.restrict_xattrs", {"setxattr", "lsetxattr", "fsetxattr", "setxattrat"},
             ", action = \"errno:EOPNOTSUPP\"");
    if (!p.namespaces.nested_user)
        rule("namespaces.nested_user", {"clone", "unshare"},
             ", match = { arg0 = { any_bit = [\"CLONE_NEWUSER\"] } }");
    // clone3's flags live in memory, out of the filter's reach: where the profile restricts
    // namespaces (its own rules for clone or unshare, unshare or setns denied, no nested user
    // namespaces), ENOSYS, and libc falls back to clone, whose flags the filter checks.
    const char* ns_key = !p.namespaces.nested_user ? "namespaces.nested_user" : "seccomp.rules";
    if (!p.namespaces.nested_user || has_own_rule("clone") || has_own_rule("unshare") ||
        in(p.seccomp.deny, "unshare") || in(p.seccomp.deny, "setns") || in(p.seccomp.deny, "clone"))
        rule(ns_key, {"clone3"}, ", action = \"errno:ENOSYS\"");
    // The host's pid namespace: no setting another process's limits (butter's RLIMIT_CPU or
    // RLIMIT_NOFILE, under the same uid without privileges), priority, CPUs or I/O class;
    // Landlock scopes its signals.
    if (!p.namespaces.pid || host_view) {
        rule("namespaces.pid", {"prlimit64"}, ", match = { arg0 = { ne = 0 }, arg2 = { ne = 0 } }");
        rule("namespaces.pid",
             {"sched_setaffinity", "sched_setparam", "sched_setscheduler", "sched_setattr"},
             ", match = { arg0 = { ne = 0 } }");
        // setpriority(which, who) and ioprio_set(which, who): another process, group or user
        // (who 0 with PRIO_PGRP or PRIO_USER is the caller's group or uid: butter's too).
        rule("namespaces.pid", {"setpriority"}, ", unless = { arg0 = [0], arg1 = [0] }");
        rule("namespaces.pid", {"ioprio_set"}, ", unless = { arg0 = [1], arg1 = [0] }");
    }
    if (host_view) {
        // Without a pid namespace every process stays in the command's process group, which
        // butter kills in one call (a chain of forks outruns a walk of /proc); and no unix
        // socket but socketpair's: the host's sockets (a session bus, an agent, docker.sock)
        // are not hidden as in a mount namespace, and Landlock does not cover connect().
        rule("isolation.tier", {"setsid", "setpgid"}, ", action = \"errno:EPERM\"");
        // Netlink only for routing (getaddrinfo): NETLINK_USERSOCK and the like reach host
        // processes. Inet with the host's network.
        bool inet = p.network.mode == profile::NetworkMode::Host;
        rule("isolation.tier", {"socket"},
             std::string(", unless = { arg0 = [\"AF_NETLINK\"") +
                 (inet ? ", \"AF_INET\", \"AF_INET6\"] }" : "], arg2 = [0] }") +
                 ", action = \"errno:EAFNOSUPPORT\"");
        // A datagram end of a socketpair may still send to (or connect to) any host socket
        // with a path: streams only, which stay each other's.
        rule("isolation.tier", {"socketpair"},
             ", match = { arg1 = { any_bit = [2] } }, action = \"errno:EPROTONOSUPPORT\"");
        // io_uring's requests bypass this filter (its own socket and connect): never here,
        // whatever the profile's deny list says.
        rule("isolation.tier", {"io_uring_setup", "io_uring_enter", "io_uring_register"},
             ", action = \"errno:ENOSYS\"");
        // The host's System V IPC outlives the run and is every process's of the uid: with
        // namespaces.ipc asked for, none.
        if (p.namespaces.ipc)
            rule("namespaces.ipc", {"shmget", "msgget", "semget"}, ", action = \"errno:EPERM\"");
    }
    // No typing into a terminal, no console paste, whatever the session: a new session has no
    // controlling terminal, but a terminal fd it holds that is no session's controlling one it
    // could make its own (TIOCSCTTY) and then type into (the caller's, when only some of
    // butter's stdio is a terminal). A pty of the sandbox's own loses nothing by it.
    rule("process.session", {"ioctl"}, ", match = { arg1 = [\"TIOCSTI\", \"TIOCLINUX\"] }");
    return out;
}

namespace {

// The profile's rules, then butter's own (written as a profile author would), except for what
// a denied group covers: denied outright is more.
std::vector<profile::SeccompRule> all_rules(const profile::Profile& p,
                                            const std::set<std::string>& deny,
                                            const std::set<std::string>& allow, Diagnostics& out) {
    // Denied whatever its arguments (a deny list's seccomp.allow re-allows).
    bool deny_list = p.seccomp.default_action.kind == SeccompAction::Kind::Allow;
    std::vector<profile::SeccompRule> rules = p.seccomp.rules;
    for (const ImplicitRule& i : implicit_rules(p)) {
        std::optional<profile::Value> tree =
            profile::parse_toml("r = " + i.text, "<implicit>", out);
        const profile::Value* v = tree ? tree->find("r") : nullptr;
        std::optional<profile::SeccompRule> r =
            v ? profile::parse_seccomp_rule(*v, out) : std::nullopt;
        if (!r) continue;  // butter's own text: a unit test guards it
        std::erase_if(r->syscalls, [&](const std::string& n) {
            return deny.count(n) > 0 && !(deny_list && allow.count(n));
        });
        if (r->syscalls.empty()) continue;
        r->loc = p.loc_of(i.key);
        rules.push_back(std::move(*r));
    }
    return rules;
}

}  // namespace

std::span<const TracedCall> traced_calls() {
    static constexpr TracedCall kCalls[] = {
        {"open", 0, -1},          {"openat", 1, 0},         {"openat2", 1, 0},
        {"creat", 0, -1},         {"execve", 0, -1},        {"execveat", 1, 0},
        {"mkdir", 0, -1},         {"mkdirat", 1, 0},        {"rmdir", 0, -1},
        {"unlink", 0, -1},        {"unlinkat", 1, 0},       {"truncate", 0, -1},
        {"rename", 0, -1, 1, -1}, {"renameat", 1, 0, 3, 2}, {"renameat2", 1, 0, 3, 2},
        {"link", 0, -1, 1, -1},   {"linkat", 1, 0, 3, 2},   {"symlink", 1, -1},
        {"symlinkat", 2, 1},      {"mknod", 0, -1},         {"mknodat", 1, 0},
    };
    return kCalls;
}

bool refused_while_learning(std::string_view name) {
    return name == "io_uring_setup" || name == "io_uring_enter" || name == "io_uring_register" ||
           name == "userfaultfd";
}

int implicit_rule_errno(std::string_view n, const std::array<std::uint64_t, 6>& a,
                        const ImplicitChecks& c) {
    constexpr std::uint64_t kSetid = S_ISUID | S_ISGID;
    constexpr std::uint64_t kCreates = O_CREAT | __O_TMPFILE;
    if (c.suid_sgid) {
        if (n == "openat2") return ENOSYS;
        bool setid =
            ((n == "chmod" || n == "fchmod" || n == "creat" || n == "mkdir" || n == "mknod") &&
             (a[1] & kSetid)) ||
            ((n == "fchmodat" || n == "fchmodat2" || n == "mkdirat" || n == "mknodat") &&
             (a[2] & kSetid)) ||
            (n == "open" && (a[1] & kCreates) && (a[2] & kSetid)) ||
            (n == "openat" && (a[2] & kCreates) && (a[3] & kSetid));
        if (setid) return c.profile_errno;
    }
    if (c.xattrs && (n == "setxattr" || n == "lsetxattr" || n == "fsetxattr" || n == "setxattrat"))
        return EOPNOTSUPP;
    if (c.no_nested_user) {
        if (n == "clone3") return ENOSYS;
        if ((n == "clone" || n == "unshare") && (a[0] & CLONE_NEWUSER)) return c.profile_errno;
    }
    return 0;
}

const TracedCall* traced_call(std::string_view name) {
    for (const TracedCall& t : traced_calls())
        if (name == t.name) return &t;
    return nullptr;
}

namespace {

// The filter as it is built: its default action, the profile's errno (a notification first
// with seccomp.report), and every rule added with its source position for errors.
struct Builder {
    const profile::Profile& p;
    Diagnostics& out;
    Compiled& c;
    SeccompFilter filter;
    SeccompAction default_action, profile_errno;
    bool deny_list = true;

    SeccompAction reported(SeccompAction a) const {
        return p.seccomp.report && a == profile_errno ? SeccompAction::notify() : a;
    }
    void add(SeccompAction a, const std::string& name, std::span<const ArgCondition> conds,
             const SourceLoc& loc) {
        if (a == default_action && conds.empty()) return;
        if (a.kind == SeccompAction::Kind::Notify) c.uses_notify = true;
        if (auto r = filter.add_rule(a, name, conds); !r)
            out.push_back(error_at(loc, "seccomp: " + r.error().what()));
    }
    // Argument rules first: their syscalls must not also be plain allow/deny entries (`ruled`).
    void add_rule(const profile::SeccompRule& r, const std::set<std::string>& deny,
                  const std::set<std::string>& allow, std::set<std::string>& ruled);
    void add_lists(std::set<std::string>& allow, const std::set<std::string>& deny,
                   const std::set<std::string>& ruled);
};

void Builder::add_rule(const profile::SeccompRule& r, const std::set<std::string>& deny,
                       const std::set<std::string>& allow, std::set<std::string>& ruled) {
    // A learning run never lets a rule's denial run: those stay the kernel's answers.
    SeccompAction action = r.action.value_or(profile_errno);
    if (!p.seccomp.learn) action = reported(action);
    Alternatives alts;
    if (auto e = expand_rule(r, alts)) {
        out.push_back(error_at(r.loc, "seccomp.rules: " + *e));
        return;
    }
    std::set<std::string> names = expand(
        r.syscalls, [&](std::size_t) { return r.loc; }, out);
    for (const auto& n : names) {
        if (deny.count(n) && !(deny_list && allow.count(n))) {
            out.push_back(error_at(r.loc, "seccomp.rules: '" + n + "' is also in seccomp.deny"));
            continue;
        }
        ruled.insert(n);
        for (const auto& conds : alts)
            add(action, n, conds, r.loc);
        // In an allow list, an allowed syscall that a rule restricts stays allowed where the
        // rule does not apply: allow on the rule's complement (match <-> unless). A learning
        // run's traced call goes to the supervisor there (in a deny list too).
        bool traced = p.seccomp.learn && traced_call(n) && (deny_list || allow.count(n));
        if ((traced || (!deny_list && allow.count(n))) && !r.args.empty() &&
            action.kind != SeccompAction::Kind::Allow) {
            profile::SeccompRule flipped = r;
            flipped.unless = !r.unless;
            Alternatives rest;
            if (auto e = expand_rule(flipped, rest)) {
                out.push_back(error_at(r.loc, "seccomp.rules: " + *e));
                continue;
            }
            // (Where the default already is that action, the complement falls to it.)
            SeccompAction there = traced ? SeccompAction::notify() : SeccompAction::allow();
            if (!(there == default_action))
                for (const auto& conds : rest)
                    add(there, n, conds, r.loc);
            if (traced) c.traced.insert(n);
        }
    }
}

void Builder::add_lists(std::set<std::string>& allow, const std::set<std::string>& deny,
                        const std::set<std::string>& ruled) {
    SeccompAction denied = reported(profile_errno);
    if (deny_list) {
        for (const auto& n : deny)
            if (!allow.count(n)) add(denied, n, {}, p.loc_of("seccomp.deny"));
        return;
    }
    // Allow list. execve must stay reachable: it is the sandbox's last setup call.
    allow.insert("execve");
    for (const auto& n : allow)
        if (!deny.count(n) && !ruled.count(n))
            add(SeccompAction::allow(), n, {}, p.loc_of("seccomp.allow"));
    for (const auto& n : deny)
        add(denied, n, {}, p.loc_of("seccomp.deny"));
    // The child hands its listener to the supervisor with sendmsg after loading.
    if (c.uses_notify && !allow.count("sendmsg") && !ruled.count("sendmsg"))
        add(SeccompAction::allow(), "sendmsg", {}, p.loc_of("seccomp"));
}

}  // namespace

std::optional<Compiled> compile(const profile::Profile& p, Diagnostics& out) {
    const auto& s = p.seccomp;
    auto errors = [&] {
        return std::count_if(out.begin(), out.end(), [](const auto& d) { return d.is_error(); });
    };
    auto errors_before = errors();
    Compiled c;
    c.denied_errno = s.denied_errno;
    auto item_loc = [&](const char* key) {
        return [&p, key](std::size_t i) {
            return p.loc_of(std::string(key) + "[" + std::to_string(i) + "]");
        };
    };
    std::set<std::string> deny = expand(s.deny, item_loc("seccomp.deny"), out);
    std::set<std::string> allow = expand(s.allow, item_loc("seccomp.allow"), out);
    const SeccompAction def = s.default_action;
    std::vector<profile::SeccompRule> rules = all_rules(p, deny, allow, out);
    if (errors() != errors_before) return std::nullopt;
    if (def.kind == SeccompAction::Kind::Allow && deny.empty() && rules.empty() && !s.learn)
        return c;

    // A denied call fails with the profile's errno; with report = true it goes to the
    // supervisor first, which names it and answers with the same errno. A learning run's
    // default denial goes there too, whatever it is.
    SeccompAction profile_errno = SeccompAction::error(c.denied_errno);
    bool default_denies =
        def.kind != SeccompAction::Kind::Allow && def.kind != SeccompAction::Kind::Log;
    SeccompAction default_action = (s.report && def == profile_errno) || (s.learn && default_denies)
                                       ? SeccompAction::notify()
                                       : def;
    auto filter = SeccompFilter::create(default_action);
    if (!filter) {
        out.push_back(error_at(p.loc_of("seccomp"), "seccomp: " + filter.error().what()));
        return std::nullopt;
    }
    Builder b{p,
              out,
              c,
              std::move(*filter),
              default_action,
              profile_errno,
              default_action.kind == SeccompAction::Kind::Allow};
    c.uses_notify = default_action.kind == SeccompAction::Kind::Notify;
    std::set<std::string> ruled;
    for (const auto& r : rules)
        b.add_rule(r, deny, allow, ruled);
    if (errors() != errors_before) return std::nullopt;
    if (s.learn) {
        // The path-taking calls the profile allows, unruled, go to the supervisor too (it
        // records the path and lets the call run); `ruled` keeps add_lists off them.
        for (const TracedCall& t : traced_calls()) {
            std::string n = t.name;
            bool allowed = b.deny_list ? !deny.count(n) || allow.count(n)
                                       : allow.count(n) > 0 && !deny.count(n);
            if (!allowed || ruled.count(n) || !resolve_syscall(n)) continue;
            if (b.filter.add_rule(SeccompAction::notify(), n, {})) {
                ruled.insert(n);
                c.traced.insert(n);
                c.uses_notify = true;
            }
        }
    }
    b.add_lists(allow, deny, ruled);
    if (errors() != errors_before) return std::nullopt;
    (void)b.filter.set_binary_tree(true);
    auto prog = b.filter.export_bpf();
    if (!prog) {
        out.push_back(error_at(p.loc_of("seccomp"), "seccomp: " + prog.error().what()));
        return std::nullopt;
    }
    // Syscalls newer than libseccomp's table (added by a later kernel) are unknown to a deny
    // list: ENOSYS, so an upgrade cannot open a way around it. One range check for all of
    // them: a rule per number made the program ~4x longer, and its load (copy, check, JIT,
    // the kernel's per-syscall cache) as many times dearer.
    c.program =
        b.deny_list ? with_syscall_ceiling(*prog, max_known_syscall(), ENOSYS) : std::move(*prog);
    return c;
}

}  // namespace butter::launcher::seccomp
