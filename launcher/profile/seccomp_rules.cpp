#include "profile/seccomp_rules.hpp"

#include <butter/seccomp.hpp>

#include "profile/arg_constants.hpp"

namespace butter::launcher::profile {

namespace {

using Kind = Value::Kind;

constexpr const char* kWhere = "seccomp.rules: ";

std::optional<std::uint64_t> value_of(const Value& v, Diagnostics& out) {
    if (v.kind == Kind::Integer) {
        if (v.integer < 0) {
            out.push_back(error_at(
                v.loc, std::string(kWhere) + "negative value " + std::to_string(v.integer)));
            return std::nullopt;
        }
        return static_cast<std::uint64_t>(v.integer);
    }
    if (v.kind == Kind::String) {
        if (auto c = constant_value(v.string)) return c;
        out.push_back(error_at(v.loc, std::string(kWhere) + "unknown constant '" + v.string + "'"));
        return std::nullopt;
    }
    out.push_back(error_at(
        v.loc,
        std::string(kWhere) + "a value is a number or a constant name, got " + kind_name(v.kind)));
    return std::nullopt;
}

bool values_of(const Value& list, std::vector<std::uint64_t>& into, Diagnostics& out) {
    if (list.kind != Kind::Array || list.array.empty()) {
        out.push_back(
            error_at(list.loc, std::string(kWhere) + "expected a non-empty list of values"));
        return false;
    }
    bool ok = true;
    for (const Value& e : list.array) {
        auto v = value_of(e, out);
        if (v)
            into.push_back(*v);
        else
            ok = false;
    }
    return ok;
}

std::optional<ArgCheck> parse_arg(const std::string& key, const Value& v, Diagnostics& out) {
    ArgCheck a;
    if (key.size() != 4 || !key.starts_with("arg") || key[3] < '0' || key[3] > '5') {
        out.push_back(error_at(
            v.key_loc, std::string(kWhere) + "unknown argument '" + key + "' (arg0 .. arg5)"));
        return std::nullopt;
    }
    a.index = static_cast<unsigned>(key[3] - '0');
    if (v.kind == Kind::Array) {
        a.kind = ArgCheck::Kind::OneOf;
        if (!values_of(v, a.values, out)) return std::nullopt;
        return a;
    }
    if (v.kind != Kind::Table || v.table.size() != 1) {
        out.push_back(error_at(v.loc, std::string(kWhere) + key +
                                          ": a list of values, or a table with one of eq, ne, lt, "
                                          "le, gt, ge, any_bit, all_bits"));
        return std::nullopt;
    }
    const auto& [op, val] = v.table[0];
    if (op == "any_bit" || op == "all_bits") {
        a.kind = op == "any_bit" ? ArgCheck::Kind::AnyBit : ArgCheck::Kind::AllBits;
        if (!values_of(val, a.values, out)) return std::nullopt;
        return a;
    }
    for (const char* known : {"eq", "ne", "lt", "le", "gt", "ge"}) {
        if (op != known) continue;
        a.kind = ArgCheck::Kind::Compare;
        a.op = op;
        auto x = value_of(val, out);
        if (!x) return std::nullopt;
        a.values = {*x};
        return a;
    }
    out.push_back(error_at(val.key_loc, std::string(kWhere) + key + ": unknown comparison '" + op +
                                            "' (eq, ne, lt, le, gt, ge, any_bit, all_bits)"));
    return std::nullopt;
}

}  // namespace

std::optional<SeccompRule> parse_seccomp_rule(const Value& v, Diagnostics& out) {
    if (!v.is_table()) {
        out.push_back(error_at(v.loc, std::string(kWhere) + "each rule is a table"));
        return std::nullopt;
    }
    SeccompRule r;
    r.loc = v.loc;
    r.text = to_toml(v);
    bool ok = true;
    const Value* match = nullptr;
    for (const auto& [k, e] : v.table) {
        if (k == "syscall") {
            if (e.kind != Kind::String) {
                out.push_back(error_at(e.loc, std::string(kWhere) + "'syscall' must be a string"));
                ok = false;
            } else {
                r.syscalls.push_back(e.string);
            }
        } else if (k == "syscalls") {
            bool good = e.kind == Kind::Array && !e.array.empty();
            for (const Value& s : e.array)
                good = good && s.kind == Kind::String;
            if (!good) {
                out.push_back(
                    error_at(e.loc, std::string(kWhere) + "'syscalls' must be a list of names"));
                ok = false;
            } else {
                for (const Value& s : e.array)
                    r.syscalls.push_back(s.string);
            }
        } else if (k == "action") {
            auto a = e.kind == Kind::String ? SeccompAction::parse(e.string)
                                            : Result<SeccompAction>(fail(Error("action", EINVAL)));
            if (!a || a->kind == SeccompAction::Kind::Trace) {
                out.push_back(error_at(e.loc, std::string(kWhere) +
                                                  "'action' is one of allow, errno:NAME, kill, "
                                                  "kill-thread, trap, log, notify"));
                ok = false;
            } else {
                r.action = *a;
            }
        } else if (k == "match" || k == "unless") {
            if (match) {
                out.push_back(error_at(
                    e.key_loc, std::string(kWhere) + "a rule has 'match' or 'unless', not both"));
                ok = false;
            }
            match = &e;
            r.unless = k == "unless";
        } else {
            out.push_back(error_at(e.key_loc, std::string(kWhere) + "unknown key '" + k +
                                                  "' (syscall, syscalls, match, unless, action)"));
            ok = false;
        }
    }
    if (r.syscalls.empty()) {
        out.push_back(
            error_at(v.loc, std::string(kWhere) + "a rule needs 'syscall' or 'syscalls'"));
        ok = false;
    }
    if (match) {
        if (!match->is_table() || match->table.empty()) {
            out.push_back(error_at(
                match->loc, std::string(kWhere) + "'match'/'unless' is a table of arguments"));
            ok = false;
        } else {
            for (const auto& [arg, spec] : match->table) {
                auto a = parse_arg(arg, spec, out);
                if (a)
                    r.args.push_back(*a);
                else
                    ok = false;
            }
        }
    } else if (!r.action) {
        // Without arguments a rule only makes sense for its own action (kill, log, trap, ...).
        out.push_back(error_at(v.loc, std::string(kWhere) +
                                          "a rule without 'match' or 'unless' needs an 'action' "
                                          "(else it belongs in seccomp.deny)"));
        ok = false;
    }
    return ok ? std::optional(r) : std::nullopt;
}

}  // namespace butter::launcher::profile
