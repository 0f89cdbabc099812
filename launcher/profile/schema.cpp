#include "profile/schema.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include <butter/capabilities.hpp>
#include <butter/seccomp.hpp>
#include <butter/signalfd.hpp>

#include "profile/seccomp_rules.hpp"
#include "profile/toml_reader.hpp"
#include "profile/units.hpp"

namespace butter::launcher::profile {

namespace {

using Err = std::optional<std::string>;
using Kind = Value::Kind;

constexpr unsigned bit(Kind k) {
    return 1u << static_cast<unsigned>(k);
}

struct Row {
    std::string_view key;
    std::string_view type;  // for docs and type errors: "boolean", "duration", ...
    unsigned kinds;         // accepted Value kinds
    std::function<Err(const Value&, Profile&, const Expansion&, Diagnostics&)> apply;
    std::function<std::optional<std::string>(const Profile&)> emit;  // TOML text; nullopt: unset
    std::string_view doc;
};

std::string q(std::string_view s) {
    return toml_quote(s);
}

std::string list_text(const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        s += (i ? ", " : "") + q(v[i]);
    return s + "]";
}

// --- row builders: `get` maps a Profile to the field -----------------------------------------

template <typename G>
Row boolean(std::string_view key, G get, std::string_view doc) {
    return {key,
            "boolean",
            bit(Kind::Boolean),
            [get](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                get(p) = v.boolean;
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                return get(const_cast<Profile&>(p)) ? "true" : "false";
            },
            doc};
}

// A string; `expand_vars` substitutes $PWD/$HOME/$UID; `check` validates the final text.
template <typename G>
Row string(std::string_view key, G get, std::string_view doc, bool expand_vars = false,
           std::function<Err(const std::string&)> check = {}) {
    return {key,
            "string",
            bit(Kind::String),
            [=](const Value& v, Profile& p, const Expansion& x, Diagnostics&) -> Err {
                std::string s = expand_vars ? expand(v.string, x) : v.string;
                if (check)
                    if (Err e = check(s)) return e;
                get(p) = std::move(s);
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                return q(get(const_cast<Profile&>(p)));
            },
            doc};
}

template <typename G>
Row string_list(std::string_view key, G get, std::string_view doc, bool expand_vars = false,
                std::function<Err(const std::string&)> check = {}) {
    return {
        key,
        "array of strings",
        bit(Kind::Array),
        [=](const Value& v, Profile& p, const Expansion& x, Diagnostics& out) -> Err {
            std::vector<std::string> items;
            for (std::size_t i = 0; i < v.array.size(); ++i) {
                const Value& e = v.array[i];
                p.locs[std::string(key) + "[" + std::to_string(items.size()) + "]"] = e.loc;
                if (e.kind != Kind::String) {
                    out.push_back(error_at(
                        e.loc, std::string(key) + ": expected a string, got " + kind_name(e.kind)));
                    continue;
                }
                std::string s = expand_vars ? expand(e.string, x) : e.string;
                if (check) {
                    if (Err err = check(s)) {
                        out.push_back(error_at(e.loc, std::string(key) + ": " + *err));
                        continue;
                    }
                }
                items.push_back(std::move(s));
            }
            get(p) = std::move(items);
            return {};
        },
        [get](const Profile& p) -> std::optional<std::string> {
            return list_text(get(const_cast<Profile&>(p)));
        },
        doc};
}

// One of a fixed set of names, stored as its enum value (nothing compares the text later).
template <typename E>
struct Choice {
    std::string_view name;
    E value;
};

template <typename E, std::size_t N>
std::string names_of(const std::array<Choice<E>, N>& choices) {
    std::string s;
    for (const auto& c : choices)
        s += (s.empty() ? "" : ", ") + std::string(c.name);
    return s;
}

template <typename G, typename E, std::size_t N>
Row choice(std::string_view key, G get, const std::array<Choice<E>, N>& choices,
           std::string_view doc) {
    return {key,
            "string",
            bit(Kind::String),
            [get, &choices](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                for (const auto& c : choices)
                    if (c.name == v.string) {
                        get(p) = c.value;
                        return {};
                    }
                return "'" + v.string + "' is not one of: " + names_of(choices);
            },
            [get, &choices](const Profile& p) -> std::optional<std::string> {
                for (const auto& c : choices)
                    if (c.value == get(const_cast<Profile&>(p))) return q(c.name);
                return std::nullopt;
            },
            doc};
}

constexpr std::array<Choice<StdinMode>, 2> kStdin{
    {{"inherit", StdinMode::Inherit}, {"null", StdinMode::Null}}};
constexpr std::array<Choice<SessionMode>, 3> kSession{
    {{"new", SessionMode::New}, {"inherit", SessionMode::Inherit}, {"pty", SessionMode::Pty}}};
constexpr std::array<Choice<RestartPolicy>, 3> kRestart{{{"no", RestartPolicy::No},
                                                         {"on-failure", RestartPolicy::OnFailure},
                                                         {"always", RestartPolicy::Always}}};
constexpr std::array<Choice<NetworkMode>, 3> kNetwork{{{"none", NetworkMode::None},
                                                       {"loopback", NetworkMode::Loopback},
                                                       {"host", NetworkMode::Host}}};
constexpr std::array<Choice<WatchBackend>, 2> kBackend{
    {{"inotify", WatchBackend::Inotify}, {"fanotify", WatchBackend::Fanotify}}};

// output.stdout/stderr: inherit | null | file:PATH | tee:PATH ($PWD, $HOME, $UID expand).
template <typename G>
Row output_row(std::string_view key, G get, std::string_view doc) {
    return {key,
            "string",
            bit(Kind::String),
            [get](const Value& v, Profile& p, const Expansion& x, Diagnostics&) -> Err {
                std::string s = expand(v.string, x);
                OutputMode m;
                if (s == "inherit" || s == "null") {
                    m.kind = s == "null" ? OutputMode::Kind::Null : OutputMode::Kind::Inherit;
                } else if (s.starts_with("file:") || s.starts_with("tee:")) {
                    bool file = s.starts_with("file:");
                    std::string prefix = file ? "file:" : "tee:";
                    m.kind = file ? OutputMode::Kind::File : OutputMode::Kind::Tee;
                    m.path = s.substr(prefix.size());
                    if (m.path.empty() || m.path[0] != '/')
                        return "'" + s + "': the path after '" + prefix + "' must be absolute";
                } else {
                    return "'" + s + "' is not one of: inherit, null, file:PATH, tee:PATH";
                }
                get(p) = std::move(m);
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                const OutputMode& m = get(const_cast<Profile&>(p));
                switch (m.kind) {
                    case OutputMode::Kind::Inherit:
                        return q("inherit");
                    case OutputMode::Kind::Null:
                        return q("null");
                    case OutputMode::Kind::File:
                        return q("file:" + m.path);
                    case OutputMode::Kind::Tee:
                        return q("tee:" + m.path);
                }
                return std::nullopt;
            },
            doc};
}

// A signal name, stored as its number.
template <typename G>
Row signal_row(std::string_view key, G get, std::string_view doc) {
    return {key,
            "string",
            bit(Kind::String),
            [get](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                auto sig = parse_signal(v.string);
                if (!sig) return "unknown signal '" + v.string + "'";
                get(p) = *sig;
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                return q(signal_name(get(const_cast<Profile&>(p))));
            },
            doc};
}

Row on_change_row() {
    return {
        "watch.on_change",
        "string",
        bit(Kind::String),
        [](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
            const std::string& s = v.string;
            if (s == "log" || s == "restart") {
                p.watch.on_change = {s == "log" ? OnChange::Kind::Log : OnChange::Kind::Restart, 0};
                return {};
            }
            if (s.starts_with("signal:")) {
                auto sig = parse_signal(s.substr(7));
                if (!sig) return "unknown signal '" + s.substr(7) + "'";
                p.watch.on_change = {OnChange::Kind::Signal, *sig};
                return {};
            }
            return "'" + s + "' is not one of: signal:NAME, restart, log";
        },
        [](const Profile& p) -> std::optional<std::string> {
            const OnChange& c = p.watch.on_change;
            if (c.kind == OnChange::Kind::Signal) return q("signal:" + signal_name(c.signal));
            return q(c.kind == OnChange::Kind::Log ? "log" : "restart");
        },
        "signal:NAME | restart | log"};
}

// A duration string; `get` returns std::optional<nanoseconds>& or nanoseconds&.
template <typename G>
Row duration(std::string_view key, G get, std::string_view doc) {
    return {key,
            "duration",
            bit(Kind::String),
            [get](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                auto d = parse_duration(v.string);
                if (!d) return d.error().text() + ": '" + v.string + "'";
                if (d->count() <= 0) return std::string("must be longer than 0");
                get(p) = *d;
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                const auto& f = get(const_cast<Profile&>(p));
                if constexpr (requires { f.has_value(); }) {
                    if (!f) return std::nullopt;
                    return q(format_duration(*f));
                } else {
                    return q(format_duration(f));
                }
            },
            doc};
}

// A size: "256M" or a plain integer of bytes. `zero_ok` for limits where 0 means "none at
// all" (core dumps).
template <typename G>
Row size(std::string_view key, G get, std::string_view doc, bool zero_ok = false) {
    return {key,
            "size",
            bit(Kind::String) | bit(Kind::Integer),
            [get, zero_ok](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                const char* bad = zero_ok ? "must not be negative" : "must be a positive size";
                if (v.kind == Kind::Integer) {
                    if (v.integer < 0 || (v.integer == 0 && !zero_ok)) return std::string(bad);
                    get(p) = static_cast<std::uint64_t>(v.integer);
                    return {};
                }
                auto s = parse_size(v.string);
                if (!s) return s.error().text() + ": '" + v.string + "'";
                if (*s == 0 && !zero_ok) return std::string(bad);
                get(p) = *s;
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                const auto& f = get(const_cast<Profile&>(p));
                if (!f) return std::nullopt;
                return q(format_size(*f));
            },
            doc};
}

template <typename G>
Row count(std::string_view key, G get, std::string_view doc) {
    return {key,
            "integer",
            bit(Kind::Integer),
            [get](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                if (v.integer <= 0) return std::string("must be a positive integer");
                get(p) = static_cast<std::uint64_t>(v.integer);
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                const auto& f = get(const_cast<Profile&>(p));
                if constexpr (requires { f.has_value(); }) {
                    if (!f) return std::nullopt;
                    return std::to_string(*f);
                } else {
                    return std::to_string(f);
                }
            },
            doc};
}

// "keep", a name, or a number (written as a TOML integer).
template <typename G>
Row id(std::string_view key, G get, std::string_view doc) {
    return {key,
            "string or integer",
            bit(Kind::String) | bit(Kind::Integer),
            [get](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                if (v.kind == Kind::Integer) {
                    if (v.integer < 0 || v.integer > 4294967294)
                        return std::string("not a valid id");
                    get(p) = std::to_string(v.integer);
                } else {
                    if (v.string.empty()) return std::string("must not be empty");
                    get(p) = v.string;
                }
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                const std::string& s = get(const_cast<Profile&>(p));
                bool numeric = !s.empty() && std::all_of(s.begin(), s.end(), ::isdigit);
                return numeric ? s : q(s);
            },
            doc};
}

Err check_seccomp_default(const std::string& s) {
    if (s == "allow" || s == "kill" || s == "log" || s == "notify") return {};
    if (s.starts_with("errno:")) {
        if (!parse_errno(s.substr(6))) return "unknown errno '" + s.substr(6) + "'";
        return {};
    }
    return "'" + s + "' is not one of: allow, errno:NAME, kill, log, notify";
}

Err check_capability(const std::string& s) {
    if (!capability_from_name(s)) return "unknown capability '" + s + "'";
    return {};
}

Err check_absolute_or_empty(const std::string& s) {
    if (!s.empty() && s != "-" && s[0] != '/') return "'" + s + "' must be an absolute path or '-'";
    return {};
}

Err check_absolute(const std::string& s) {
    if (s.empty() || s[0] != '/') return "'" + s + "' must be an absolute path";
    return {};
}

Err check_root(const std::string& s) {
    if (s == "tmpfs" || (!s.empty() && s[0] == '/')) return {};
    return "'" + s + "' is not 'tmpfs' or an absolute directory";
}

Err check_hostname(const std::string& s) {
    if (s.empty() || s.size() > 64) return std::string("must be 1 to 64 characters");
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
            return "'" + s + "' may hold only letters, digits, '-' and '.'";
    return {};
}

// --- mounts ----------------------------------------------------------------------------------

std::optional<MountType> mount_type(std::string_view s) {
    if (s == "bind") return MountType::Bind;
    if (s == "tmpfs") return MountType::Tmpfs;
    if (s == "proc") return MountType::Proc;
    if (s == "dev") return MountType::Dev;
    if (s == "symlink") return MountType::Symlink;
    if (s == "dir") return MountType::Dir;
    if (s == "mqueue") return MountType::Mqueue;
    return std::nullopt;
}

std::optional<MountSpec> parse_mount(const Value& e, const Expansion& x, Diagnostics& out) {
    if (!e.is_table()) {
        out.push_back(error_at(
            e.loc,
            std::string("filesystem.mounts: each mount is a table, got ") + kind_name(e.kind)));
        return std::nullopt;
    }
    MountSpec m;
    m.loc = e.loc;
    bool ok = true, has_type = false;
    auto bad = [&](const Value& v, const std::string& msg) {
        out.push_back(error_at(v.loc, "filesystem.mounts: " + msg));
        ok = false;
    };
    for (const auto& entry : e.table) {
        const std::string& k = entry.first;  // not a structured binding: the lambda uses it
        const Value& v = entry.second;
        auto want = [&](Kind kind) {
            if (v.kind == kind) return true;
            bad(v, "'" + k + "' must be " + kind_name(kind) + ", got " + kind_name(v.kind));
            return false;
        };
        if (k == "type") {
            if (!want(Kind::String)) continue;
            auto t = mount_type(v.string);
            if (!t) {
                bad(v, "unknown mount type '" + v.string +
                           "' (bind, tmpfs, proc, dev, symlink, dir, mqueue)");
                continue;
            }
            m.type = *t;
            has_type = true;
        } else if (k == "source") {
            if (want(Kind::String)) m.source = expand(v.string, x);
        } else if (k == "target") {
            if (want(Kind::String)) {
                m.target = expand(v.string, x);
                m.expanded_target = m.target != v.string;
            }
        } else if (k == "read_only") {
            if (want(Kind::Boolean)) m.read_only = v.boolean;
        } else if (k == "optional") {
            if (want(Kind::Boolean)) m.optional = v.boolean;
        } else if (k == "follow_symlinks") {
            if (want(Kind::Boolean)) m.follow_symlinks = v.boolean;
        } else if (k == "size") {
            if (v.kind == Kind::Integer) {
                if (v.integer > 0)
                    m.size = static_cast<std::uint64_t>(v.integer);
                else
                    bad(v, "'size' must be a positive size");
            } else if (want(Kind::String)) {
                auto s = parse_size(v.string);
                if (!s)
                    bad(v, s.error().text() + ": '" + v.string + "'");
                else
                    m.size = *s;
            }
        } else if (k == "mode") {
            if (!want(Kind::String)) continue;
            char* end = nullptr;
            unsigned long mode = std::strtoul(v.string.c_str(), &end, 8);
            if (v.string.empty() || *end != '\0' || mode > 07777)
                bad(v, "mode '" + v.string + "' is not an octal mode like \"0755\"");
            else
                m.mode = static_cast<unsigned>(mode);
        } else {
            out.push_back(error_at(
                v.key_loc, "filesystem.mounts: unknown key '" + k +
                               "' (type, source, target, read_only, optional, follow_symlinks, "
                               "size, mode)"));
            ok = false;
        }
    }
    if (!has_type) {
        if (!e.find("type"))
            out.push_back(error_at(e.loc, "filesystem.mounts: a mount needs a 'type'"));
        return std::nullopt;
    }
    if (m.target.empty()) {
        out.push_back(error_at(e.loc, "filesystem.mounts: a mount needs a 'target'"));
        ok = false;
    } else if (m.target[0] != '/') {
        const Value* t = e.find("target");
        out.push_back(error_at(t ? t->loc : e.loc, "filesystem.mounts: target '" + m.target +
                                                       "' must be an absolute path"));
        ok = false;
    }
    bool needs_source = m.type == MountType::Bind || m.type == MountType::Symlink;
    if (needs_source && m.source.empty()) {
        out.push_back(error_at(e.loc, std::string("filesystem.mounts: a ") + to_string(m.type) +
                                          " mount needs a 'source'"));
        ok = false;
    }
    if (m.type == MountType::Bind && !m.source.empty() && m.source[0] != '/') {
        const Value* s = e.find("source");
        out.push_back(error_at(s ? s->loc : e.loc, "filesystem.mounts: source '" + m.source +
                                                       "' must be an absolute path"));
        ok = false;
    }
    if (!needs_source && !m.source.empty()) {
        const Value* s = e.find("source");
        out.push_back(error_at(
            s ? s->loc : e.loc,
            std::string("filesystem.mounts: a ") + to_string(m.type) + " mount takes no 'source'"));
        ok = false;
    }
    if (m.follow_symlinks && m.type != MountType::Bind) {
        out.push_back(error_at(e.loc,
                               "filesystem.mounts: 'follow_symlinks' applies to bind "
                               "mounts only"));
        ok = false;
    }
    if (m.size && m.type != MountType::Tmpfs && m.type != MountType::Dev) {
        out.push_back(
            error_at(e.loc, "filesystem.mounts: 'size' applies to tmpfs and dev mounts only"));
        ok = false;
    }
    return ok ? std::optional(m) : std::nullopt;
}

std::string mount_text(const MountSpec& m) {
    std::string s = "{ type = " + q(to_string(m.type));
    if (!m.source.empty()) s += ", source = " + q(m.source);
    s += ", target = " + q(m.target);
    if (m.read_only) s += ", read_only = true";
    if (m.optional) s += ", optional = true";
    if (m.follow_symlinks) s += ", follow_symlinks = true";
    if (m.size) s += ", size = " + q(format_size(*m.size));
    if (m.mode) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04o", *m.mode);
        s += ", mode = " + q(buf);
    }
    return s + " }";
}

Row mounts_row() {
    return {"filesystem.mounts",
            "array of mount tables",
            bit(Kind::Array),
            [](const Value& v, Profile& p, const Expansion& x, Diagnostics& out) -> Err {
                p.filesystem.mounts.clear();
                for (const Value& e : v.array)
                    if (auto m = parse_mount(e, x, out))
                        p.filesystem.mounts.push_back(std::move(*m));
                return {};
            },
            [](const Profile& p) -> std::optional<std::string> {
                if (p.filesystem.mounts.empty()) return "[]";
                std::string s = "[\n";
                for (const auto& m : p.filesystem.mounts)
                    s += "  " + mount_text(m) + ",\n";
                return s + "]";
            },
            "mounts applied in order: bind (source, read_only, follow_symlinks: else only root's "
            "symlinks are followed on the source's path), tmpfs (size, mode), proc, dev, symlink "
            "(source = link text), dir, mqueue; optional = true skips a missing source"};
}

Row env_set_row() {
    return {
        "process.env.set",
        "table of strings",
        bit(Kind::Table),
        [](const Value& v, Profile& p, const Expansion& x, Diagnostics& out) -> Err {
            p.process.env_set.clear();
            for (const auto& [k, e] : v.table) {
                if (e.kind != Kind::String) {
                    out.push_back(error_at(e.loc, "process.env.set: '" + k + "' must be a string"));
                    continue;
                }
                if (k.empty() || k.find('=') != std::string::npos) {
                    out.push_back(
                        error_at(e.loc, "process.env.set: '" + k + "' is not a variable name"));
                    continue;
                }
                p.process.env_set.emplace_back(k, expand(e.string, x));
            }
            return {};
        },
        [](const Profile& p) -> std::optional<std::string> {
            std::string s = "{";
            for (std::size_t i = 0; i < p.process.env_set.size(); ++i)
                s += (i ? ", " : " ") + q(p.process.env_set[i].first) + " = " +
                     q(p.process.env_set[i].second);
            return s + (p.process.env_set.empty() ? "}" : " }");
        },
        "variables set in the sandbox (after clear/keep)"};
}

Row seccomp_rules_row() {
    return {
        "seccomp.rules",
        "array of rule tables",
        bit(Kind::Array),
        [](const Value& v, Profile& p, const Expansion&, Diagnostics& out) -> Err {
            p.seccomp.rules.clear();
            for (const Value& e : v.array)
                if (auto r = parse_seccomp_rule(e, out)) p.seccomp.rules.push_back(std::move(*r));
            return {};
        },
        [](const Profile& p) -> std::optional<std::string> {
            if (p.seccomp.rules.empty()) return "[]";
            std::string s = "[\n";
            for (const auto& r : p.seccomp.rules)
                s += "  " + r.text + ",\n";
            return s + "]";
        },
        "argument rules: { syscall(s), match | unless = { argN = [values] | { eq|ne|lt|le|gt|ge "
        "= v } | { any_bit|all_bits = [flags] } }, action }"};
}

#define FIELD(path)            \
    [](Profile & p) -> auto& { \
        return p.path;         \
    }

const std::vector<Row>& rows() {
    static const std::vector<Row> kRows = {
        string("description", FIELD(description), "what the profile is for"),
        string("process.cwd", FIELD(process.cwd), "working directory inside the sandbox", true,
               check_absolute),
        id("process.user", FIELD(process.user), "keep (the caller's uid), a user name, or a uid"),
        id("process.group", FIELD(process.group), "keep, a group name, or a gid"),
        boolean("process.no_new_privs", FIELD(process.no_new_privs),
                "set PR_SET_NO_NEW_PRIVS (setuid binaries gain nothing)"),
        choice("process.stdin", FIELD(process.stdin_mode), kStdin, "inherit | null"),
        choice("process.session", FIELD(process.session), kSession,
               "new (setsid: no controlling tty, blocks TIOCSTI) | inherit | pty"),
        boolean("process.env.clear", FIELD(process.env_clear), "start from an empty environment"),
        string_list("process.env.keep", FIELD(process.env_keep),
                    "variables kept from the caller when clear = true"),
        env_set_row(),
        boolean("namespaces.user", FIELD(namespaces.user), "new user namespace"),
        boolean("namespaces.mount", FIELD(namespaces.mount), "new mount namespace"),
        boolean("namespaces.pid", FIELD(namespaces.pid), "new pid namespace (with a minimal init)"),
        boolean("namespaces.uts", FIELD(namespaces.uts), "new UTS namespace (own hostname)"),
        boolean("namespaces.ipc", FIELD(namespaces.ipc), "new IPC namespace"),
        boolean("namespaces.net", FIELD(namespaces.net), "new network namespace"),
        boolean("namespaces.cgroup", FIELD(namespaces.cgroup), "new cgroup namespace"),
        boolean("namespaces.time", FIELD(namespaces.time), "new time namespace"),
        boolean("namespaces.nested_user", FIELD(namespaces.nested_user),
                "let the sandbox make user namespaces (a nested butter, rootless podman); "
                "else clone/unshare with CLONE_NEWUSER fail, clone3 is ENOSYS and the sandbox's "
                "user.max_user_namespaces is 0"),
        string("filesystem.root", FIELD(filesystem.root),
               "tmpfs (an empty root) or an absolute directory to use as the rootfs", true,
               check_root),
        string("filesystem.hostname", FIELD(filesystem.hostname), "hostname inside", false,
               check_hostname),
        boolean("filesystem.read_only_root", FIELD(filesystem.read_only_root),
                "remount the root read-only after the mounts"),
        mounts_row(),
        boolean("filesystem.writable_home", FIELD(filesystem.writable_home),
                "let a writable bind be $HOME, hold it, or lie in one of its dot-directories "
                "(where a sandbox could plant .bashrc, .ssh/authorized_keys, .config/autostart)"),
        boolean("filesystem.writable_git", FIELD(filesystem.writable_git),
                "leave the .git of a writable bind writable (else bound read-only: hooks and "
                "config run code outside the sandbox the next time git is used there)"),
        boolean("filesystem.map_host_root", FIELD(filesystem.map_host_root),
                "as root: writable binds of root-owned files and directories map the sandbox's "
                "user to host root, so it writes there as root (else as its own unprivileged "
                "host id)"),
        duration("limits.time", FIELD(limits.time), "wall-clock limit; exit 124 when reached"),
        duration("limits.cpu", FIELD(limits.cpu), "CPU time (RLIMIT_CPU, whole seconds)"),
        size("limits.memory", FIELD(limits.memory), "memory (cgroup memory.max / limit_in_bytes)"),
        count("limits.pids", FIELD(limits.pids), "processes and threads (cgroup pids.max)"),
        {"limits.cpus", "number", bit(Kind::Integer) | bit(Kind::Float),
         [](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
             double c = v.kind == Kind::Integer ? static_cast<double>(v.integer) : v.floating;
             if (!(c >= 0.01 && c <= 4096))
                 return std::string("must be between 0.01 and 4096 CPUs");
             p.limits.cpus = c;
             return {};
         },
         [](const Profile& p) -> std::optional<std::string> {
             if (!p.limits.cpus) return std::nullopt;
             char buf[32];
             std::snprintf(buf, sizeof buf, "%g", *p.limits.cpus);
             std::string s = buf;
             return s.find_first_of(".e") == std::string::npos ? s + ".0" : s;
         },
         "CPU bandwidth in CPUs, e.g. 1.5 (cgroup cpu.max / cpu.cfs_quota_us)"},
        count("limits.open_files", FIELD(limits.open_files), "RLIMIT_NOFILE"),
        size("limits.file_size", FIELD(limits.file_size), "RLIMIT_FSIZE"),
        size("limits.core", FIELD(limits.core), "RLIMIT_CORE (0: no core dumps)", true),
        size("limits.stack", FIELD(limits.stack), "RLIMIT_STACK"),
        boolean("limits.optional", FIELD(limits.optional),
                "a cgroup limit that nothing can hold only warns (without a writable cgroup, "
                "pids and memory fall back to RLIMIT_NPROC and RLIMIT_AS anyway; cpus has no "
                "stand-in)"),
        string("seccomp.default", FIELD(seccomp.default_action),
               "allow | errno:NAME | kill | log | notify", false, check_seccomp_default),
        string_list("seccomp.deny", FIELD(seccomp.deny), "syscalls and @groups that fail"),
        string_list("seccomp.allow", FIELD(seccomp.allow), "syscalls and @groups that are allowed"),
        string("seccomp.errno", FIELD(seccomp.errno_name), "errno of denied syscalls", false,
               [](const std::string& s) -> Err {
                   if (!parse_errno(s)) return "unknown errno '" + s + "'";
                   return {};
               }),
        boolean("seccomp.report", FIELD(seccomp.report), "name each denied syscall in the log"),
        seccomp_rules_row(),
        boolean("seccomp.restrict_suid_sgid", FIELD(seccomp.restrict_suid_sgid),
                "refuse to make set-uid and set-gid files (chmod, open, mkdir, mknod with those "
                "bits; openat2 gets ENOSYS), as systemd's RestrictSUIDSGID"),
        boolean("seccomp.restrict_xattrs", FIELD(seccomp.restrict_xattrs),
                "setting extended attributes fails with EOPNOTSUPP (as on a filesystem without "
                "them): no POSIX ACLs, whose kernel memory on tmpfs no size or memory limit "
                "bounds, and no file capabilities; reading and removing them work"),
        string_list("capabilities.keep", FIELD(capabilities.keep), "capabilities kept (CAP_...)",
                    false, check_capability),
        choice("network.mode", FIELD(network.mode), kNetwork,
               "none (empty netns) | loopback (lo up) | host (the host's network)"),
        signal_row("supervise.stop_signal", FIELD(supervise.stop_signal),
                   "signal that asks the command to stop"),
        duration("supervise.stop_timeout", FIELD(supervise.stop_timeout),
                 "grace period before SIGKILL"),
        choice("supervise.restart", FIELD(supervise.restart), kRestart, "no | on-failure | always"),
        duration("supervise.restart_delay", FIELD(supervise.restart_delay),
                 "pause before a restart"),
        count("supervise.restart_burst", FIELD(supervise.restart_burst),
              "at most this many restarts within restart_interval"),
        duration("supervise.restart_interval", FIELD(supervise.restart_interval),
                 "the window of restart_burst"),
        boolean("supervise.notify", FIELD(supervise.notify),
                "pass sd_notify through (Type=notify)"),
        string_list("watch.paths", FIELD(watch.paths), "host paths watched for changes", true,
                    check_absolute),
        on_change_row(),
        duration("watch.debounce", FIELD(watch.debounce),
                 "changes within this time after the first count as one"),
        choice("watch.backend", FIELD(watch.backend), kBackend,
               "inotify | fanotify (root: a directory's whole tree, not the sandbox's own writes)"),
        string("report.path", FIELD(report.path), "JSON report file, or - for stdout", true,
               check_absolute_or_empty),
        boolean("report.file_activity", FIELD(report.file_activity),
                "list files created/modified/deleted in writable mounts"),
        output_row("output.stdout", FIELD(output.stdout_mode),
                   "inherit | null | file:PATH | tee:PATH"),
        output_row("output.stderr", FIELD(output.stderr_mode),
                   "inherit | null | file:PATH | tee:PATH"),
    };
    return kRows;
}

#undef FIELD

const Row* find_row(std::string_view key) {
    for (const Row& r : rows())
        if (r.key == key) return &r;
    return nullptr;
}

// Tables that hold rows: "process", "process.env", ...
bool is_section(std::string_view key) {
    for (const Row& r : rows()) {
        std::string_view k = r.key;
        if (k.size() > key.size() && k.starts_with(key) && k[key.size()] == '.') return true;
    }
    return false;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> d(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t prev = d[0];
        d[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cur = d[j];
            d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
            prev = cur;
        }
    }
    return d[b.size()];
}

std::string suggestion(std::string_view key) {
    std::string_view best;
    std::size_t best_d = 3;
    for (const Row& r : rows()) {
        std::size_t d = edit_distance(key, r.key);
        if (d < best_d) {
            best_d = d;
            best = r.key;
        }
    }
    return best.empty() ? "" : " (did you mean '" + std::string(best) + "'?)";
}

void walk(const Value& table, const std::string& prefix, Profile& p, const Expansion& x,
          Diagnostics& out) {
    for (const auto& [k, v] : table.table) {
        std::string key = prefix.empty() ? k : prefix + "." + k;
        if (const Row* row = find_row(key)) {
            if (!(row->kinds & bit(v.kind))) {
                out.push_back(error_at(v.loc, key + ": expected " + std::string(row->type) +
                                                  ", got " + kind_name(v.kind)));
                continue;
            }
            if (Err e = row->apply(v, p, x, out)) {
                out.push_back(error_at(v.loc, key + ": " + *e));
                continue;
            }
            p.locs[key] = v.loc;
        } else if (is_section(key)) {
            if (!v.is_table()) {
                out.push_back(
                    error_at(v.loc, "'" + key + "' must be a table, got " + kind_name(v.kind)));
                continue;
            }
            p.locs[key] = v.loc;
            walk(v, key, p, x, out);
        } else {
            out.push_back(error_at(v.key_loc, "unknown key '" + key + "'" + suggestion(key)));
        }
    }
}

std::string section_of(std::string_view key) {
    auto dot = key.rfind('.');
    return dot == std::string_view::npos ? "" : std::string(key.substr(0, dot));
}

}  // namespace

const char* to_string(MountType t) {
    switch (t) {
        case MountType::Bind:
            return "bind";
        case MountType::Tmpfs:
            return "tmpfs";
        case MountType::Proc:
            return "proc";
        case MountType::Dev:
            return "dev";
        case MountType::Symlink:
            return "symlink";
        case MountType::Dir:
            return "dir";
        case MountType::Mqueue:
            return "mqueue";
    }
    return "?";
}

SourceLoc Profile::loc_of(const std::string& key) const {
    // The key itself, else the nearest enclosing table that was written.
    for (std::string k = key;;) {
        if (auto it = locs.find(k); it != locs.end()) return it->second;
        if (k.empty()) return {};
        k = k.back() == ']' ? k.substr(0, k.rfind('[')) : section_of(k);
    }
}

Expansion Expansion::from_environment() {
    Expansion x;
    char buf[4096];
    if (::getcwd(buf, sizeof buf)) x.pwd = buf;
    const char* home = std::getenv("HOME");
    x.home = home ? home : "/";
    x.uid = std::to_string(::getuid());
    return x;
}

std::string expand(std::string_view text, const Expansion& x) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '$') {
            bool done = false;
            for (auto [name, value] :
                 {std::pair<std::string_view, const std::string*>{"$PWD", &x.pwd},
                  {"$HOME", &x.home},
                  {"$UID", &x.uid}}) {
                if (text.substr(i).starts_with(name)) {
                    out += *value;
                    i += name.size();
                    done = true;
                    break;
                }
            }
            if (done) continue;
        }
        out += text[i++];
    }
    return out;
}

Profile build_profile(const Value& tree, const Expansion& x, Diagnostics& out) {
    Profile p;
    p.process.cwd = expand(p.process.cwd, x);
    walk(tree, "", p, x, out);
    return p;
}

std::string show_profile(const Profile& p) {
    std::string s, section = "\x01";
    for (const Row& r : rows()) {
        std::optional<std::string> text = r.emit(p);
        if (!text) continue;
        std::string sec = section_of(r.key);
        if (sec != section) {
            s += sec.empty() ? "" : "\n[" + sec + "]\n";
            section = sec;
        }
        std::string leaf(r.key.substr(sec.empty() ? 0 : sec.size() + 1));
        s += leaf + " = " + *text + "\n";
    }
    return s;
}

std::vector<KeyDoc> key_docs() {
    std::vector<KeyDoc> out;
    Profile defaults;
    for (const Row& r : rows())
        out.push_back({std::string(r.key), std::string(r.type),
                       r.emit(defaults).value_or("(unset)"), std::string(r.doc)});
    return out;
}

}  // namespace butter::launcher::profile
