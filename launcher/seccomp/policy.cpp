#include "seccomp/policy.hpp"

#include <algorithm>

#include <butter/error.hpp>

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

std::optional<Compiled> compile(const profile::Profile& p, Diagnostics& out) {
    const auto& s = p.seccomp;
    auto errors = [&] {
        return std::count_if(out.begin(), out.end(), [](const auto& d) { return d.is_error(); });
    };
    auto errors_before = errors();
    Compiled c;
    c.denied_errno = parse_errno(s.errno_name).value_or(EPERM);
    auto item_loc = [&](const char* key) {
        return [&p, key](std::size_t i) {
            return p.loc_of(std::string(key) + "[" + std::to_string(i) + "]");
        };
    };
    std::set<std::string> deny = expand(s.deny, item_loc("seccomp.deny"), out);
    std::set<std::string> allow = expand(s.allow, item_loc("seccomp.allow"), out);
    auto def = SeccompAction::parse(s.default_action);
    if (!def) {
        out.push_back(
            error_at(p.loc_of("seccomp.default"), "seccomp.default: " + def.error().text()));
    }
    if (errors() != errors_before) return std::nullopt;
    if (def->kind == SeccompAction::Kind::Allow && deny.empty()) return c;  // no filter at all

    // A denied call fails with the profile's errno; with report = true it goes to the
    // supervisor first, which names it and answers with the same errno.
    SeccompAction denied =
        s.report ? SeccompAction::notify() : SeccompAction::error(c.denied_errno);
    SeccompAction default_action = *def;
    if (s.report && default_action.kind == SeccompAction::Kind::Errno)
        default_action = SeccompAction::notify();
    c.uses_notify = denied.kind == SeccompAction::Kind::Notify ||
                    default_action.kind == SeccompAction::Kind::Notify;

    auto filter = SeccompFilter::create(default_action);
    if (!filter) {
        out.push_back(error_at(p.loc_of("seccomp"), "seccomp: " + filter.error().what()));
        return std::nullopt;
    }
    auto add = [&](SeccompAction a, const std::string& name, const SourceLoc& loc) {
        if (a == default_action) return;
        if (auto r = filter->add_rule(a, name); !r)
            out.push_back(error_at(loc, "seccomp: " + r.error().what()));
    };
    if (default_action.kind == SeccompAction::Kind::Allow) {
        // Deny list: what is also allowed explicitly stays allowed.
        for (const auto& n : deny)
            if (!allow.count(n)) add(denied, n, p.loc_of("seccomp.deny"));
    } else {
        // Allow list. execve must stay reachable: it is the sandbox's last setup call.
        allow.insert("execve");
        for (const auto& n : allow)
            if (!deny.count(n)) add(SeccompAction::allow(), n, p.loc_of("seccomp.allow"));
        for (const auto& n : deny)
            add(denied, n, p.loc_of("seccomp.deny"));
        // The child hands its listener to the supervisor with sendmsg after loading.
        if (c.uses_notify && !allow.count("sendmsg"))
            add(SeccompAction::allow(), "sendmsg", p.loc_of("seccomp"));
    }
    if (errors() != errors_before) return std::nullopt;
    (void)filter->set_binary_tree(true);
    auto prog = filter->export_bpf();
    if (!prog) {
        out.push_back(error_at(p.loc_of("seccomp"), "seccomp: " + prog.error().what()));
        return std::nullopt;
    }
    c.program = std::move(*prog);
    return c;
}

}  // namespace butter::launcher::seccomp
