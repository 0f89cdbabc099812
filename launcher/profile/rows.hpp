// The schema's rows (schema.cpp's table): one per key, with its type, how a TOML value goes
// into the Profile (checked) and back out as TOML text (butter show), and its documentation.
// The builders here make the rows of each kind of value; only schema.cpp includes this.
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "profile/toml_reader.hpp"
#include "profile/units.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile::schema_rows {

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

inline std::string q(std::string_view s) {
    return toml_quote(s);
}

inline std::string list_text(const std::vector<std::string>& v) {
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
constexpr std::array<Choice<HomeMode>, 2> kHome{
    {{"none", HomeMode::None}, {"tmpfs", HomeMode::Tmpfs}}};
constexpr std::array<Choice<WorkspaceMode>, 2> kWorkspace{
    {{"direct", WorkspaceMode::Direct}, {"overlay", WorkspaceMode::Overlay}}};
constexpr std::array<Choice<CommitPolicy>, 3> kCommit{{{"never", CommitPolicy::Never},
                                                       {"on-success", CommitPolicy::OnSuccess},
                                                       {"always", CommitPolicy::Always}}};
constexpr std::array<Choice<SessionMode>, 4> kSession{{{"new", SessionMode::New},
                                                       {"inherit", SessionMode::Inherit},
                                                       {"pty", SessionMode::Pty},
                                                       {"auto", SessionMode::Auto}}};
constexpr std::array<Choice<RestartPolicy>, 3> kRestart{{{"no", RestartPolicy::No},
                                                         {"on-failure", RestartPolicy::OnFailure},
                                                         {"always", RestartPolicy::Always}}};
constexpr std::array<Choice<NetworkMode>, 4> kNetwork{{{"none", NetworkMode::None},
                                                       {"loopback", NetworkMode::Loopback},
                                                       {"host", NetworkMode::Host},
                                                       {"user", NetworkMode::User}}};
constexpr std::array<Choice<Tier>, 4> kTier{{{"auto", Tier::Auto},
                                             {"namespaces", Tier::Namespaces},
                                             {"landlock", Tier::Landlock},
                                             {"seccomp", Tier::Seccomp}}};
constexpr std::array<Choice<Tier>, 3> kMinimumTier{
    {{"namespaces", Tier::Namespaces}, {"landlock", Tier::Landlock}, {"seccomp", Tier::Seccomp}}};
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

inline Row on_change_row() {
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

}  // namespace butter::launcher::profile::schema_rows
