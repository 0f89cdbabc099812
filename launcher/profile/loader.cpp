#include "profile/loader.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string_view>
#include <tuple>

#include "profile/toml_reader.hpp"
#include "profile/tree_codec.hpp"

#ifndef BUTTER_PROFILES_DIR
#define BUTTER_PROFILES_DIR "/usr/share/butter/profiles"
#endif

namespace butter::launcher::profile {

namespace {

bool is_file(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string canonical(const std::string& p) {
    if (p == kEmbeddedDefaultName) return p;
    char* r = ::realpath(p.c_str(), nullptr);
    if (!r) return p;
    std::string s(r);
    std::free(r);
    return s;
}

std::string dir_of(const std::string& file) {
    auto slash = file.rfind('/');
    return slash == std::string::npos ? "." : file.substr(0, slash);
}

std::optional<Value> parse_source(const std::string& where, bool check_trust, Diagnostics& out) {
    if (where == kEmbeddedDefaultName) return embedded_default(out);
    if (std::string why = check_trust ? distrust(where) : ""; !why.empty()) {
        out.push_back(error_at({where, 0, 0}, "profile not trusted: " + why));
        return std::nullopt;
    }
    return read_toml_file(where, out);
}

// Reads `where` and its extends chain into one merged tree.
std::optional<Value> load_chain(std::optional<Value> tree, const std::string& where,
                                const std::vector<std::string>& path, bool check_trust,
                                std::vector<std::string>& chain, Diagnostics& out) {
    if (!tree) return std::nullopt;
    chain.push_back(where);
    const Value* ext = tree->find("extends");
    if (!ext) return tree;
    if (ext->kind != Value::Kind::String) {
        out.push_back(error_at(
            ext->loc, std::string("extends: expected a string, got ") + kind_name(ext->kind)));
        return std::nullopt;
    }
    std::string base_dir =
        where == kEmbeddedDefaultName || where.starts_with("--") ? "" : dir_of(where);
    std::optional<std::string> parent = locate(ext->string, path, base_dir);
    if (!parent) {
        out.push_back(
            error_at(ext->loc, "extends: no profile '" + ext->string + "' on the search path"));
        return std::nullopt;
    }
    std::string id = canonical(*parent);
    for (const std::string& seen : chain) {
        if (canonical(seen) == id) {
            std::string cycle;
            for (const auto& c : chain)
                cycle += c + " -> ";
            out.push_back(error_at(ext->loc, "extends: cycle: " + cycle + *parent));
            return std::nullopt;
        }
    }
    SourceLoc ext_loc = ext->loc;
    std::optional<Value> base =
        load_chain(parse_source(*parent, check_trust, out), *parent, path, check_trust, chain, out);
    if (!base) {
        if (!has_errors(out))
            out.push_back(error_at(ext_loc, "extends: cannot load '" + *parent + "'"));
        return std::nullopt;
    }
    tree->erase("extends");
    base->erase("extends");
    merge_into(*base, *tree);
    return base;
}

// "a.b.c=VALUE" -> a tree {a: {b: {c: VALUE}}}; a VALUE that is not TOML is taken as a string.
std::optional<Value> parse_override(const std::string& arg, Diagnostics& out) {
    std::string file = "--set " + arg;
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
        out.push_back(error_at({file, 0, 0}, "expected KEY=VALUE"));
        return std::nullopt;
    }
    std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    // A bare word cannot be TOML: quoted at once, without the parse failure (a thrown
    // exception: the first one of a process costs about a millisecond).
    // (Numbers and dates use only these characters: "10s" or "256M" is a bare word.)
    auto may_be_toml = [](const std::string& v) {
        if (v.empty()) return true;  // an error either way: TOML's is the one to show
        if (std::string_view("\"'[{").find(v[0]) != std::string_view::npos) return true;
        if (v == "true" || v == "false" || v.ends_with("inf") || v.ends_with("nan")) return true;
        return std::string_view("+-.0123456789").find(v[0]) != std::string_view::npos &&
               v.find_first_not_of("0123456789_+-.:eExXoObBabcdefABCDEFTZtz ") == std::string::npos;
    };
    std::optional<Value> t;
    if (may_be_toml(value)) {
        Diagnostics ignored;
        t = parse_toml(key + " = " + value, file, ignored);
    }
    if (!t) t = parse_toml(key + " = " + toml_quote(value), file, out);
    // Positions inside the synthesized "KEY = VALUE" line mean nothing to the user: the flag
    // itself is the position.
    std::function<void(Value&)> unposition = [&](Value& v) {
        v.loc = v.key_loc = {file, 0, 0};
        for (auto& [k, c] : v.table)
            unposition(c);
        for (auto& c : v.array)
            unposition(c);
    };
    if (t) unposition(*t);
    return t;
}

Loaded finish(std::optional<Value> tree, const LoadOptions& o, Loaded l) {
    if (!tree) return l;
    for (const std::string& arg : o.overrides) {
        std::optional<Value> over = parse_override(arg, l.diagnostics);
        if (over) merge_into(*tree, *over);
    }
    l.profile = build_profile(*tree, o.expansion, l.diagnostics);
    l.tree = std::move(*tree);
    // Tables come back sorted by key: report in reading order instead.
    std::stable_sort(l.diagnostics.begin(), l.diagnostics.end(), [](const auto& a, const auto& b) {
        return a.loc.file == b.loc.file &&
               std::tie(a.loc.line, a.loc.column) < std::tie(b.loc.line, b.loc.column);
    });
    return l;
}

}  // namespace

std::optional<Value> embedded_default(Diagnostics& out) {
    if (auto tree = decode_tree(kEmbeddedDefaultTree)) return tree;
    return parse_toml(kEmbeddedDefault, kEmbeddedDefaultName, out);
}

std::vector<std::string> search_path() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("BUTTER_PROFILE_PATH")) {
        std::string s(env);
        std::size_t start = 0;
        while (start <= s.size()) {
            std::size_t colon = s.find(':', start);
            if (colon == std::string::npos) colon = s.size();
            if (colon > start) dirs.push_back(s.substr(start, colon - start));
            start = colon + 1;
        }
    }
    if (const char* home = std::getenv("HOME"); home && *home)
        dirs.push_back(std::string(home) + "/.config/butter/profiles");
    dirs.push_back("/etc/butter/profiles");
#if defined(BUTTER_BUILD_TREE_EXE) && defined(BUTTER_SOURCE_PROFILES_DIR)
    // The butter of a build tree (run from a clone, not installed) finds the shipped profiles
    // of its source tree: a fixed path, taken only when this binary is that build's own.
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0 && std::string_view(exe, static_cast<std::size_t>(n)) == BUTTER_BUILD_TREE_EXE)
        dirs.push_back(BUTTER_SOURCE_PROFILES_DIR);
#endif
    dirs.push_back(BUTTER_PROFILES_DIR);
    return dirs;
}

std::string distrust(const std::string& path) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) return std::string("cannot resolve it: ") + std::strerror(errno);
    std::string p = real;
    std::free(real);
    uid_t me = ::getuid();
    for (std::string at = p;;) {
        struct stat st {};
        if (::lstat(at.c_str(), &st) < 0) return at + ": " + std::strerror(errno);
        bool dir = S_ISDIR(st.st_mode);
        if (st.st_uid != 0 && st.st_uid != me)
            return "'" + at + "' belongs to uid " + std::to_string(st.st_uid) +
                   " (profiles are read only where root or you own every directory)";
        bool shared_sticky = dir && (st.st_mode & S_ISVTX) && st.st_uid == 0;
        if ((st.st_mode & 022) && !shared_sticky) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
            return "'" + at + "' is writable by " + ((st.st_mode & 002) ? "others" : "its group") +
                   " (mode " + mode + "; chmod go-w it)";
        }
        if (at == "/") return "";
        auto slash = at.rfind('/');
        at = slash == 0 ? "/" : at.substr(0, slash);
    }
}

std::optional<std::string> locate(const std::string& spec, const std::vector<std::string>& path,
                                  const std::string& relative_to) {
    if (spec.empty()) return std::nullopt;
    if (spec == kBuiltinDefault) return std::string(kEmbeddedDefaultName);
    bool is_path = spec.find('/') != std::string::npos || spec.ends_with(".toml");
    if (is_path) {
        std::string p = spec[0] == '/' || relative_to.empty() ? spec : relative_to + "/" + spec;
        if (is_file(p)) return p;
        return std::nullopt;
    }
    for (const std::string& dir : path) {
        std::string p = dir + "/" + spec + ".toml";
        if (is_file(p)) return p;
    }
    if (spec == "default") return std::string(kEmbeddedDefaultName);
    return std::nullopt;
}

namespace {

// The directories searched, for an error: "a, b and the built-in default".
std::string join_dirs(const std::vector<std::string>& dirs) {
    std::string out;
    for (const auto& d : dirs)
        out += d + ", ";
    return out + "and the built-in default";
}

}  // namespace

Loaded load(const std::optional<std::string>& spec, const LoadOptions& options) {
    Loaded l;
    std::string where = kEmbeddedDefaultName;
    if (spec) {
        std::optional<std::string> found = locate(*spec, options.search_path);
        if (!found) {
            bool is_path = spec->find('/') != std::string::npos || spec->ends_with(".toml");
            struct stat st {};
            bool exists = is_path && ::stat(spec->c_str(), &st) == 0;
            l.diagnostics.push_back(
                error_at({*spec, 0, 0}, exists    ? "not a regular file (a profile is one)"
                                        : is_path ? "no such profile file"
                                                  : "no profile named '" + *spec + "' (looked in " +
                                                        join_dirs(options.search_path) + ")"));
            return l;
        }
        where = *found;
    }
    std::optional<Value> tree =
        load_chain(parse_source(where, options.check_trust, l.diagnostics), where,
                   options.search_path, options.check_trust, l.chain, l.diagnostics);
    return finish(std::move(tree), options, std::move(l));
}

Loaded load_text(std::string_view text, const std::string& name, const LoadOptions& options) {
    Loaded l;
    std::optional<Value> tree =
        load_chain(parse_toml(text, name, l.diagnostics), name, options.search_path,
                   options.check_trust, l.chain, l.diagnostics);
    return finish(std::move(tree), options, std::move(l));
}

std::vector<ProfileInfo> list_profiles(const std::vector<std::string>& path) {
    std::vector<ProfileInfo> out;
    std::set<std::string> seen;
    auto describe = [](const std::string& where) {
        Diagnostics ignored;
        std::optional<Value> t = where == kEmbeddedDefaultName ? embedded_default(ignored)
                                                               : read_toml_file(where, ignored);
        if (!t) return std::string("(does not parse)");
        const Value* d = t->find("description");
        return d && d->kind == Value::Kind::String ? d->string : std::string();
    };
    for (const std::string& dir : path) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) continue;
        std::vector<std::string> names;
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.ends_with(".toml")) names.push_back(n.substr(0, n.size() - 5));
        }
        ::closedir(d);
        std::sort(names.begin(), names.end());
        for (const std::string& n : names) {
            if (!seen.insert(n).second) continue;
            std::string p = dir + "/" + n + ".toml";
            std::string why = distrust(p);
            out.push_back({n, p, why.empty() ? describe(p) : "(not trusted: " + why + ")"});
        }
    }
    if (!seen.count("default"))
        out.push_back({"default", kEmbeddedDefaultName, describe(kEmbeddedDefaultName)});
    return out;
}

}  // namespace butter::launcher::profile
