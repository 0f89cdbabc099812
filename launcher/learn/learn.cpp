#include "learn/learn.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "changes/changes.hpp"
#include "profile/toml_reader.hpp"
#include "profile/units.hpp"
#include "seccomp/policy.hpp"
#include "text.hpp"

namespace butter::launcher::learn {

namespace {

using Learned = RunOutcome::Learned;

bool under(const std::string& path, const std::string& dir) {
    return dir == "/" || path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
}

std::string parent_of(const std::string& p) {
    std::size_t slash = p.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
}

// The mount of BASE's plan that holds `path` (the deepest), or nullptr: the root's tmpfs.
const MountStep* mount_of(const SandboxPlan& plan, const std::string& path) {
    const MountStep* best = nullptr;
    for (const MountStep& m : plan.mounts) {
        if (m.layer || !under(path, m.target)) continue;
        if (!best || m.target.size() >= best->target.size()) best = &m;
    }
    return best;
}

// A directory on the way to one of BASE's mounts (the root's mount points exist anyway).
bool leads_to_a_mount(const SandboxPlan& plan, const std::string& path) {
    return std::any_of(plan.mounts.begin(), plan.mounts.end(),
                       [&](const MountStep& m) { return under(m.target, path); });
}

// Host paths that may hold secrets: never proposed but as a comment that says so, and hidden
// below a directory that is. By their names (a component, two in a row, a file name's
// beginning or end), or the host's own files; "" for others.
std::string secret_kind(const std::string& p) {
    static const std::pair<const char*, const char*> kNames[] = {
        {".ssh", "ssh keys"},
        {".gnupg", "gpg keys"},
        {".aws", "cloud credentials"},
        {".azure", "cloud credentials"},
        {".boto", "cloud credentials"},
        {".s3cfg", "cloud credentials"},
        {".kube", "cluster credentials"},
        {".terraform.d", "cloud credentials"},
        {".vault-token", "a vault token"},
        {".netrc", "passwords"},
        {".git-credentials", "passwords"},
        {".password-store", "passwords"},
        {".pgpass", "passwords"},
        {".my.cnf", "passwords"},
        {".npmrc", "registry tokens"},
        {".pypirc", "registry tokens"},
        {".env", "passwords and tokens"},
        {".Xauthority", "display cookies"},
        {".bash_history", "a shell history"},
        {".zsh_history", "a shell history"},
        {".mozilla", "browser profiles"},
    };
    static const std::pair<const char*, const char*> kPairs[] = {
        {".config/gcloud", "cloud credentials"},
        {".config/gh", "tokens"},
        {".config/rclone", "cloud credentials"},
        {".config/google-chrome", "browser profiles"},
        {".config/chromium", "browser profiles"},
        {".local/share/keyrings", "passwords"},
        {".docker/config.json", "registry credentials"},
        {".cargo/credentials", "registry tokens"},
        {".cargo/credentials.toml", "registry tokens"},
    };
    if (p == "/etc/shadow" || p == "/etc/gshadow" || p.starts_with("/etc/shadow") ||
        p.starts_with("/etc/gshadow"))
        return "password hashes";
    if (p.starts_with("/etc/ssh/ssh_host_")) return "the host's ssh keys";
    std::vector<std::string_view> parts;
    std::string_view rest = p;
    while (!rest.empty()) {
        std::size_t slash = rest.find('/');
        std::string_view c = rest.substr(0, slash);
        if (!c.empty()) parts.push_back(c);
        rest = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string_view c = parts[i];
        for (const auto& [name, kind] : kNames)
            if (c == name) return kind;
        if (i + 1 < parts.size())
            for (const auto& [pair, kind] : kPairs) {
                std::string two = std::string(c) + "/" + std::string(parts[i + 1]);
                if (two == pair) return kind;
            }
        for (const char* key : {"id_rsa", "id_ed25519", "id_ecdsa", "id_dsa"})
            if (c.starts_with(key)) return "ssh keys";
        for (const char* ext : {".pem", ".key", ".p12", ".pfx"})
            if (c.ends_with(ext)) return "keys or certificates";
    }
    return "";
}

// Where a cache or temporary files live, if `p` is in one: a tmpfs there serves.
std::string cache_dir(const std::string& p) {
    if (under(p, "/var/tmp")) return "/var/tmp";
    std::size_t at = p.find("/.cache/");
    if (at != std::string::npos) return p.substr(0, at + 7);
    if (under(p, "/var/cache")) {
        std::size_t next = p.find('/', 11);
        return next == std::string::npos ? p : p.substr(0, next);
    }
    return "";
}

std::string uses_text(unsigned u) {
    auto join = [](const std::vector<std::string>& w) {
        std::string s;
        for (std::size_t i = 0; i < w.size(); ++i)
            s += (i == 0 ? "" : i + 1 == w.size() ? " and " : ", ") + w[i];
        return s;
    };
    std::vector<std::string> did, tried;
    if (u & Learned::Read) did.push_back("read");
    if (u & Learned::List) did.push_back("listed");
    if (u & Learned::Exec) did.push_back("executed");
    // Writes outside BASE were all refused in the learning run (its view of the host is
    // read-only): they are what the run tried.
    if (u & Learned::Write) tried.push_back("write");
    if (u & Learned::Create) tried.push_back("create in");
    if (u & Learned::Remove) tried.push_back("remove from");
    std::string s = join(did);
    if (!tried.empty()) s += (s.empty() ? "" : "; ") + std::string("tried to ") + join(tried);
    return s;
}

// The names in the host directory `path` (sorted; none if it cannot be listed).
std::vector<std::string> names_of(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return {};
    Fd dir(fd);
    auto names = changes::names_in(dir.get(), path);
    return names ? std::move(*names) : std::vector<std::string>{};
}

// One line of an array, with its comment.
struct Entry {
    std::string toml;  // inline TOML (a table or a string)
    std::string comment;
    bool disabled = false;   // written commented out (a secret)
    std::string order = {};  // sorted by this, then by `toml`: a mount's target (parents first)
};

// What may hold secrets below a host directory (not through symlinks): each such entry, and
// where the search stopped (4 levels, 4096 entries).
struct Secrets {
    struct Found {
        std::string path, kind;
        enum { Dir, File, Other } type = File;
    };
    std::vector<Found> found;
    std::vector<std::string> unsearched;  // directories past the depth bound
    bool too_many = false;                // past the entry bound
};
Secrets secrets_below(const std::string& dir) {
    Secrets out;
    std::vector<std::pair<std::string, int>> todo{{dir, 0}};
    std::size_t seen = 0;
    while (!todo.empty() && !out.too_many) {
        auto [d, depth] = todo.back();
        todo.pop_back();
        int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        DIR* list = ::fdopendir(fd);
        if (!list) {
            ::close(fd);
            continue;
        }
        while (struct dirent* e = ::readdir(list)) {
            std::string_view n = e->d_name;
            if (n == "." || n == "..") continue;
            if (++seen > 4096) {
                out.too_many = true;
                break;
            }
            std::string p = d + "/" + std::string(n);
            struct stat st {};
            if (::lstat(p.c_str(), &st) < 0) continue;
            if (std::string k = secret_kind(p); !k.empty()) {
                out.found.push_back({p, k,
                                     S_ISDIR(st.st_mode)   ? Secrets::Found::Dir
                                     : S_ISREG(st.st_mode) ? Secrets::Found::File
                                                           : Secrets::Found::Other});
            } else if (S_ISDIR(st.st_mode)) {
                if (depth + 1 < 4)
                    todo.push_back({p, depth + 1});
                else
                    out.unsearched.push_back(p);
            }
        }
        ::closedir(list);
    }
    std::sort(out.found.begin(), out.found.end(),
              [](const auto& x, const auto& y) { return x.path < y.path; });
    std::sort(out.unsearched.begin(), out.unsearched.end());
    return out;
}

// TOML strings are UTF-8: a path that is not cannot be named in a profile.
bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80         ? 1
                        : (c >> 5) == 6  ? 2
                        : (c >> 4) == 14 ? 3
                        : (c >> 3) == 30 ? 4
                                         : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
        i += n;
    }
    return true;
}

std::string bind_toml(const std::string& path, bool read_only) {
    return "{ type = \"bind\", source = " + profile::toml_quote(path) +
           ", target = " + profile::toml_quote(path) + (read_only ? ", read_only = true" : "") +
           " }";
}

// An entry as inline TOML, a mount's keys in the order people write them.
std::string entry_toml(const profile::Value& v) {
    if (!v.is_table()) return profile::to_toml(v);
    static const char* kFirst[] = {"type", "source", "sources", "target"};
    auto rank = [](const std::string& k) {
        for (std::size_t i = 0; i < std::size(kFirst); ++i)
            if (k == kFirst[i]) return i;
        return std::size(kFirst);
    };
    auto keys = v.table;
    std::stable_sort(keys.begin(), keys.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
    profile::Value ordered = v;
    ordered.table = std::move(keys);
    return profile::to_toml(ordered);
}

// BASE's array at `key` ("filesystem.mounts"), as its entries' inline TOML.
// The value at the dotted `key` of `tree`, or nullptr.
const profile::Value* value_at(const profile::Value* tree, const std::string& key) {
    const profile::Value* v = tree;
    std::size_t at = 0;
    while (v && at <= key.size()) {
        std::size_t dot = key.find('.', at);
        if (dot == std::string::npos) dot = key.size();
        v = v->is_table() ? v->find(key.substr(at, dot - at)) : nullptr;
        at = dot + 1;
    }
    return v;
}

// BASE's array at `key` ("filesystem.mounts"), as its entries' inline TOML.
std::vector<std::string> base_array(const profile::Value* tree, const std::string& key) {
    std::vector<std::string> out;
    const profile::Value* v = value_at(tree, key);
    if (v && v->kind == profile::Value::Kind::Array)
        for (const profile::Value& e : v->array)
            out.push_back(entry_toml(e));
    return out;
}

// An earlier learned profile's entries beyond BASE's, kept by --merge.
void keep_merged(const Input& in, const std::string& key, const std::vector<std::string>& base,
                 std::vector<Entry>& entries) {
    const profile::Value* v = in.merge ? value_at(in.merge, key) : nullptr;
    if (!v || v->kind != profile::Value::Kind::Array) return;
    for (const profile::Value& e : v->array) {
        std::string t = entry_toml(e);
        bool known = std::find(base.begin(), base.end(), t) != base.end() ||
                     std::any_of(entries.begin(), entries.end(),
                                 [&](const Entry& x) { return x.toml == t; });
        const profile::Value* target = e.is_table() ? e.find("target") : nullptr;
        std::string order =
            target && target->kind == profile::Value::Kind::String ? target->string : "";
        if (!known) entries.push_back({t, "kept from " + in.merge_name, false, order});
    }
}

// An array key's text: BASE's entries, then the learned ones (sorted).
std::string array_text(const std::string& key, const std::vector<std::string>& base,
                       std::vector<Entry> learned, const std::string& base_comment) {
    // By target (a mount's; "" for the rest), then by text: a mount goes after those of the
    // directories above it.
    std::sort(learned.begin(), learned.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.order, a.toml) < std::tie(b.order, b.toml);
    });
    std::string s = key + " = [\n";
    if (!base.empty()) s += "  # " + terminal_safe(base_comment) + "\n";
    for (const std::string& b : base)
        s += "  " + b + ",\n";
    for (const Entry& e : learned)
        s += std::string(e.disabled ? "  # " : "  ") + e.toml + ",  # " + terminal_safe(e.comment) +
             "\n";
    return s + "]\n";
}

const char* kTimeSteps[] = {"10s", "30s", "1m", "2m", "5m",  "10m",
                            "30m", "1h",  "2h", "6h", "12h", "24h"};

std::string time_limit(std::chrono::nanoseconds wall) {
    for (const char* t : kTimeSteps)
        if (auto d = profile::parse_duration(t); d && *d >= 2 * wall) return t;
    return kTimeSteps[std::size(kTimeSteps) - 1];
}

std::uint64_t power_of_two_above(std::uint64_t v, std::uint64_t floor) {
    std::uint64_t p = floor;
    while (p < v)
        p *= 2;
    return p;
}

}  // namespace

std::vector<profile::MountSpec> host_view(const SandboxPlan& base_plan) {
    static const std::set<std::string> kSkip = {"proc", "sys",  "dev",       "run",
                                                "tmp",  "boot", "lost+found"};
    std::vector<profile::MountSpec> out;
    for (const std::string& n : names_of("/")) {
        if (kSkip.count(n)) continue;
        std::string path = "/" + n;
        struct stat st {};
        if (::lstat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        if (::access(path.c_str(), R_OK | X_OK) < 0) continue;
        bool mounted = std::any_of(base_plan.mounts.begin(), base_plan.mounts.end(),
                                   [&](const MountStep& m) { return under(path, m.target); });
        if (mounted) continue;  // BASE's own (its deeper mounts go on top of this view)
        profile::MountSpec m;
        m.type = profile::MountType::Bind;
        m.source = m.target = path;
        m.read_only = true;
        m.optional = true;
        out.push_back(std::move(m));
    }
    return out;
}

profile::Profile learning_profile(const profile::Profile& base, const SandboxPlan& base_plan,
                                  bool network) {
    profile::Profile p = base;
    auto view = host_view(base_plan);
    // /var/tmp as the run will have it if it writes there (an empty tmpfs: cache_dir()).
    if (std::any_of(view.begin(), view.end(), [](const auto& m) { return m.target == "/var"; })) {
        profile::MountSpec tmp;
        tmp.type = profile::MountType::Tmpfs;
        tmp.target = "/var/tmp";
        view.push_back(tmp);
    }
    p.filesystem.mounts.insert(p.filesystem.mounts.begin(), view.begin(), view.end());
    p.seccomp.report = true;
    p.seccomp.learn = true;
    // As root, limits that hold nothing back, so that a cgroup counts the run's peak memory
    // and processes (unprivileged there may be none: the rusage's peak is what is seen).
    if (::geteuid() == 0) {
        if (!p.limits.memory) p.limits.memory = 1ull << 50;
        if (!p.limits.pids) p.limits.pids = 4194304;
        p.limits.optional = true;
    }
    if (network && (p.network.mode == profile::NetworkMode::None ||
                    p.network.mode == profile::NetworkMode::Loopback)) {
        p.network.mode = profile::NetworkMode::User;
        p.network.audit = true;
    }
    return p;
}

std::string propose(const Input& in) {
    const RunOutcome& o = *in.outcome;
    const SandboxPlan& plan = *in.base_plan;
    // Comments carry no line break nor control character of the sandbox's (or the command
    // line's): nothing seen can write a key of its own into the profile.
    std::string cmd;
    for (const std::string& a : in.command)
        cmd += (cmd.empty() ? "" : " ") + terminal_safe(a);
    std::string s = "# Learned by `butter learn` from a run of: " + cmd + "\n";
    if (in.merge) s += "# Merged with " + terminal_safe(in.merge_name) + ".\n";
    s += "# Everything the run used beyond " + terminal_safe(in.extends) +
         ", each with a comment saying what was seen.\n";
    for (const std::string& set : in.sets)
        s += "# The run had --set " + terminal_safe(set) +
             " (not written here: add it if it should hold).\n";
    s += "extends = " + profile::toml_quote(in.extends) + "\n";

    // Files: the paths the run named outside BASE's mounts.
    std::map<std::string, unsigned> ro, rw;  // proposed binds: path -> uses
    std::map<std::string, std::string> secret, cache;
    std::vector<std::string> notes;
    std::set<std::string> refused;
    std::string git;  // a repository's .git, written though BASE keeps it read-only
    for (const auto& [path, use] : o.learned.paths) {
        if (path == "/" || under(path, "/proc") || under(path, "/dev") || under(path, "/sys") ||
            leads_to_a_mount(plan, path))
            continue;
        if (!valid_utf8(path)) {
            notes.push_back(path + ": not valid UTF-8, which a profile cannot name (not proposed)");
            continue;
        }
        if (const MountStep* m = mount_of(plan, path)) {
            // Creating what exists there (mkdir -p of /usr/lib) wrote nothing.
            unsigned mu = use;
            if (m->type == profile::MountType::Bind && (mu & Learned::Create)) {
                struct stat hst {};
                if (::lstat((m->source + path.substr(m->target.size())).c_str(), &hst) == 0)
                    mu &= ~Learned::Create;
            }
            bool writes = mu & (Learned::Write | Learned::Create | Learned::Remove);
            if (writes && m->read_only && m->type == profile::MountType::Bind &&
                refused.insert(m->target).second) {
                if (m->target.ends_with("/.git") && !in.base->filesystem.writable_git)
                    git = m->target;
                else
                    notes.push_back(m->target + ": written under, but " + in.extends +
                                    " mounts it read-only (not proposed)");
            }
            continue;
        }
        struct stat st {};
        bool exists = ::lstat(path.c_str(), &st) == 0;
        // The learning run's view of the host is read-only, so every write here was refused:
        // what it tried is what the profile proposes. Creating what exists (mkdir -p of a
        // directory that is there) tried nothing.
        unsigned u = use;
        if (exists) u &= ~Learned::Create;
        if (u == 0) continue;
        bool writes = u & (Learned::Write | Learned::Create | Learned::Remove);
        if (std::string c = cache_dir(path); !c.empty() && (writes || !exists)) {
            cache[c] = "a cache or temporary files: an empty tmpfs each run";
            continue;
        }
        std::string target = path;
        bool read_only = !writes;
        if (u & (Learned::Create | Learned::Remove)) {
            target = parent_of(path);  // a file made or removed: its directory, writable
            struct stat pst {};
            if (::lstat(target.c_str(), &pst) < 0 || !S_ISDIR(pst.st_mode)) continue;
            if (target == "/" || leads_to_a_mount(plan, target)) {
                notes.push_back(path + ": tried to " + (u & Learned::Create ? "create" : "remove") +
                                " it, in " + target +
                                ", which is no bind of its own (not proposed)");
                continue;
            }
        } else if (!exists) {
            continue;  // looked for, not there: nothing to give
        }
        if (std::string k = secret_kind(target); !k.empty()) {
            secret[target] = k;
            continue;
        }
        (read_only ? ro : rw)[target] |= u;
    }
    // A directory most of whose entries were read: the directory.
    std::map<std::string, std::vector<std::string>> by_dir;
    for (const auto& [path, use] : ro)
        if (!(use & Learned::List)) by_dir[parent_of(path)].push_back(path);
    for (const auto& [dir, files] : by_dir) {
        if (files.size() < 2 || files.size() * 2 < names_of(dir).size() ||
            leads_to_a_mount(plan, dir) || dir == "/" || !secret_kind(dir).empty())
            continue;
        unsigned use = Learned::List;
        for (const std::string& f : files) {
            use |= ro[f];
            ro.erase(f);
        }
        ro[dir] |= use & ~Learned::List;
        ro[dir] |= 0x100;  // folded
    }
    std::vector<Entry> mounts;
    auto covered = [&](const std::string& p, bool writable) {
        for (const auto& [d, u] : rw)
            if (d != p && under(p, d)) return true;
        if (!writable)
            for (const auto& [d, u] : ro)
                if (d != p && under(p, d)) return true;
        return false;
    };
    // A directory proposed whole hides what may hold secrets below it: an empty read-only
    // tmpfs over such a directory, /dev/null over such a file (each once, though two proposed
    // directories hold it); a symlink or other file so named is a note.
    std::set<std::string> masked;
    auto masks = [&](const std::string& dir) {
        struct stat st {};
        if (::lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) return;
        Secrets found = secrets_below(dir);
        for (const auto& f : found.found) {
            if (!masked.insert(f.path).second) continue;
            if (!valid_utf8(f.path)) {
                notes.push_back(f.path + ": named like what holds " + f.kind +
                                ", not valid UTF-8: not hidden (a profile cannot name it)");
                continue;
            }
            if (f.type == Secrets::Found::Other) {
                notes.push_back(f.path + ": named like what holds " + f.kind +
                                ", but not a file or directory (a symlink?): not hidden, check "
                                "what it reaches");
                continue;
            }
            std::string toml = f.type == Secrets::Found::Dir
                                   ? "{ type = \"tmpfs\", target = " + profile::toml_quote(f.path) +
                                         ", read_only = true }"
                                   : "{ type = \"bind\", source = \"/dev/null\", target = " +
                                         profile::toml_quote(f.path) + ", read_only = true }";
            mounts.push_back({toml, "hides what may hold " + f.kind + " in " + dir, false, f.path});
        }
        if (found.too_many && masked.insert(dir + "\n").second)
            notes.push_back(dir +
                            ": more than 4096 entries, searched in part for secrets below "
                            "it: check what it holds");
        for (std::size_t i = 0; i < found.unsearched.size() && i < 3; ++i)
            if (masked.insert(found.unsearched[i] + "\n").second)
                notes.push_back(found.unsearched[i] +
                                ": deeper than 4 levels below a directory given whole, not "
                                "searched for secrets: check what it holds");
        if (found.unsearched.size() > 3 && masked.insert(dir + "\n>3").second)
            notes.push_back(dir + ": " + std::to_string(found.unsearched.size() - 3) +
                            " more directories deeper than 4 levels not searched for secrets");
    };
    for (auto& [path, use] : rw)
        if (auto it = ro.find(path); it != ro.end()) use |= it->second & 0xff;
    for (const auto& [path, use] : ro) {
        if (covered(path, false) || rw.count(path)) continue;  // writable already
        std::string what =
            use & 0x100 ? "most of its entries " + uses_text(use & 0xff) : uses_text(use);
        mounts.push_back({bind_toml(path, true), what, false, path});
        masks(path);
    }
    for (const auto& [path, use] : rw) {
        if (covered(path, true)) continue;
        mounts.push_back({bind_toml(path, false), uses_text(use), false, path});
        masks(path);
    }
    for (const auto& [dir, why] : cache)
        mounts.push_back(
            {"{ type = \"tmpfs\", target = " + profile::toml_quote(dir) + " }", why, false, dir});
    for (const auto& [path, kind] : secret)
        mounts.push_back(
            {bind_toml(path, true),
             "NOT proposed: may hold " + kind + "; uncomment if the program must have it", true,
             path});
    std::vector<std::string> base_mounts = base_array(in.tree, "filesystem.mounts");
    keep_merged(in, "filesystem.mounts", base_mounts, mounts);
    // --merge: an earlier run's writable .git stays.
    bool git_kept = false;
    if (git.empty()) {
        const profile::Value* g = value_at(in.merge, "filesystem.writable_git");
        git_kept = g && g->kind == profile::Value::Kind::Boolean && g->boolean;
    }
    if (!mounts.empty() || !notes.empty() || !git.empty() || git_kept) {
        s += "\n[filesystem]\n";
        for (const std::string& n : notes)
            s += "# " + terminal_safe(n) + "\n";
        if (!git.empty())
            s += "writable_git = true  # the run wrote to " + terminal_safe(git) + ", which " +
                 terminal_safe(in.extends) +
                 " keeps read-only (hooks and config there run code: for a repository you "
                 "trust)\n";
        if (git_kept)
            s += "writable_git = true  # kept from " + terminal_safe(in.merge_name) + "\n";
        if (!mounts.empty())
            s += array_text("mounts", base_mounts, mounts,
                            in.extends + "'s mounts (an array replaces the one it extends)");
    }

    // Syscalls: each denial the run met, as an allow entry; a group when all of it was used.
    std::vector<Entry> allow;
    std::set<std::string> used;
    for (const auto& [name, call] : o.learned.syscalls)
        used.insert(name);
    std::set<std::string> grouped;
    for (const auto& [group, members] : seccomp::groups()) {
        profile::Diagnostics ignored;
        auto names = seccomp::expand(
            {"@" + group}, [](std::size_t) { return profile::SourceLoc{}; }, ignored);
        if (names.size() < 2 || !std::all_of(names.begin(), names.end(),
                                             [&](const std::string& n) { return used.count(n); }))
            continue;
        allow.push_back({profile::toml_quote("@" + group),
                         "every member called, and denied by " + in.extends, false});
        grouped.insert(names.begin(), names.end());
    }
    for (const auto& [name, call] : o.learned.syscalls) {
        if (grouped.count(name)) continue;
        std::string comment = "called, and denied by " + in.extends;
        // The first arguments seen, for the calls whose meaning is in them.
        std::string_view n = name;
        const std::set<std::uint64_t>* values =
            n == "socket" || n == "clone" || n == "unshare" || n == "personality" || n == "prctl"
                ? &call.arg0
            : n == "ioctl" || n == "fcntl" ? &call.arg1
                                           : nullptr;
        if (values && !values->empty()) {
            comment += n == "socket" ? " (families" : n == "ioctl" ? " (requests" : " (arg";
            for (std::uint64_t v : *values) {
                char buf[24];
                std::snprintf(buf, sizeof buf, n == "socket" ? " %llu" : " 0x%llx",
                              static_cast<unsigned long long>(v));
                comment += buf;
            }
            comment += ")";
        }
        if (call.refused)
            comment = "called, and denied by " + in.extends +
                      ": NOT proposed (refused while learning too: " +
                      (name == "userfaultfd" ? "it can stall butter's supervisor"
                                             : "io_uring's requests skip every seccomp rule") +
                      "); uncomment only for a program you trust";
        allow.push_back({profile::toml_quote(name), comment, call.refused});
    }
    // socket and ioctl, allowed now by an allow list's default, only with what was seen: a
    // rule for the rest (not for a syscall BASE's deny list names: a rule may not).
    std::vector<Entry> rules;
    if (in.base->seccomp.default_action.kind != SeccompAction::Kind::Allow) {
        profile::Diagnostics ignored;
        auto none = [](std::size_t) { return profile::SourceLoc{}; };
        std::set<std::string> listed = seccomp::expand(in.base->seccomp.deny, none, ignored);
        bool ruled_here = false;
        for (const auto& r : in.base->seccomp.rules)
            for (const std::string& n : r.syscalls)
                ruled_here |= n == "socket" || n == "ioctl";
        for (const char* n : {"socket", "ioctl"}) {
            auto it = o.learned.syscalls.find(n);
            if (it == o.learned.syscalls.end() || listed.count(n) || grouped.count(n) || ruled_here)
                continue;
            bool sock = std::string_view(n) == "socket";
            const auto& values = sock ? it->second.arg0 : it->second.arg1;
            if (values.empty() || values.size() >= Learned::kMaxValues) continue;
            std::string list;
            for (std::uint64_t v : values)
                list += (list.empty() ? "" : ", ") + std::to_string(v);
            rules.push_back(
                {std::string("{ syscall = \"") + n + "\", unless = { arg" + (sock ? "0" : "1") +
                     " = [" + list + "] }, action = \"errno:" + (sock ? "EAFNOSUPPORT" : "ENOTTY") +
                     "\" }",
                 sock ? "the socket families the run used" : "the ioctl requests the run made",
                 false});
        }
    }
    std::vector<std::string> base_allow = base_array(in.tree, "seccomp.allow");
    keep_merged(in, "seccomp.allow", base_allow, allow);
    std::vector<std::string> base_rules = base_array(in.tree, "seccomp.rules");
    keep_merged(in, "seccomp.rules", base_rules, rules);
    if (!allow.empty() || !rules.empty()) s += "\n[seccomp]\n";
    if (!allow.empty()) s += array_text("allow", base_allow, allow, in.extends + "'s allow list");
    if (!rules.empty()) s += array_text("rules", base_rules, rules, in.extends + "'s rules");

    // Network: each destination connected to, by the name that gave its address when butter
    // answered it.
    std::map<std::string, std::set<std::string>> dest;  // entry -> addresses
    std::set<std::string> asked;
    for (const auto& u : o.network) {
        if (u.kind == "dns") {
            asked.insert(u.name);
            continue;
        }
        if ((u.protocol != "tcp" && u.protocol != "udp") || u.port == 0) continue;
        std::string host = !u.name.empty()                            ? u.name
                           : u.address.find(':') != std::string::npos ? "[" + u.address + "]"
                                                                      : u.address;
        dest[(u.protocol == "udp" ? "udp:" : "") + host + ":" + std::to_string(u.port)].insert(
            u.address);
    }
    std::vector<Entry> net;
    for (const auto& [entry, addrs] : dest) {
        std::string comment = "connected to";
        for (const std::string& a : addrs)
            comment += " " + a;
        net.push_back({profile::toml_quote(entry), comment, false});
    }
    std::vector<std::string> base_net = base_array(in.tree, "network.allow");
    keep_merged(in, "network.allow", base_net, net);
    bool base_user = in.base->network.mode == profile::NetworkMode::User;
    if (!net.empty() && in.base->network.mode != profile::NetworkMode::Host) {
        s += "\n[network]\n";
        if (!base_user) s += "mode = \"user\"  # the run connected out (below)\n";
        s += array_text("allow", base_net, net, in.extends + "'s allow list");
    } else if (!in.network_note.empty()) {
        s += "\n# network: not learned (" + terminal_safe(in.network_note) + ")\n";
    }

    // Limits: twice what was seen, rounded up, where BASE has none as large (with --merge, an
    // earlier run's larger one stays).
    std::string limits;
    const auto& bl = in.base->limits;
    auto earlier = [&](const char* key, bool duration) -> std::optional<std::uint64_t> {
        const profile::Value* v = value_at(in.merge, std::string("limits.") + key);
        if (!v) return std::nullopt;
        if (v->kind == profile::Value::Kind::Integer && v->integer > 0)
            return static_cast<std::uint64_t>(v->integer);
        if (v->kind != profile::Value::Kind::String) return std::nullopt;
        if (duration) {
            auto d = profile::parse_duration(v->string);
            return d ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(d->count()))
                     : std::nullopt;
        }
        auto b = profile::parse_size(v->string);
        return b ? std::optional<std::uint64_t>(*b) : std::nullopt;
    };
    const std::string kept = "  # kept from " + terminal_safe(in.merge_name) + "\n";
    std::string t = time_limit(o.wall);
    auto t_ns = static_cast<std::uint64_t>(profile::parse_duration(t)->count());
    if (auto e = earlier("time", true); e && *e > t_ns) {
        limits +=
            "time = \"" + profile::format_duration(std::chrono::nanoseconds(*e)) + "\"" + kept;
    } else if (!bl.time || static_cast<std::uint64_t>(bl.time->count()) < t_ns) {
        limits += "time = \"" + t + "\"  # the run took less than half of it\n";
    }
    std::optional<std::uint64_t> mem = o.peak_memory;
    std::uint64_t m = power_of_two_above(2 * (mem ? *mem : o.max_rss_bytes), 64ull << 20);
    if (auto e = earlier("memory", false); e && *e > m) {
        limits += "memory = \"" + profile::format_size(*e) + "\"" + kept;
    } else if (!bl.memory || *bl.memory < m) {
        std::string line =
            "memory = \"" + profile::format_size(m) + "\"  # its peak memory was less than half";
        // Without a cgroup RLIMIT_AS stands in, which counts address space, not memory.
        limits += mem ? line + "\n" : "# " + line + " (no cgroup saw it: a suggestion)\n";
    }
    std::uint64_t pids = power_of_two_above(
        2 * std::max<std::uint64_t>(o.peak_pids.value_or(0), o.learned.pids.size()), 16);
    if (auto e = earlier("pids", false); e && *e > pids) {
        limits += "pids = " + std::to_string(*e) + kept;
    } else if (!bl.pids || *bl.pids < pids) {
        std::string line = "pids = " + std::to_string(pids) +
                           "  # it ran fewer than half as many processes and threads";
        limits +=
            o.peak_pids ? line + "\n" : "# " + line + " (no cgroup counted them: a suggestion)\n";
    }
    if (auto e = earlier("open_files", false)) {
        limits += "open_files = " + std::to_string(*e) + kept;
    } else if (o.learned.max_fd >= 0) {
        // A suggestion only: a program opens as many files as its input asks.
        std::uint64_t files =
            power_of_two_above(2 * static_cast<std::uint64_t>(o.learned.max_fd + 1), 64);
        if (!bl.open_files || *bl.open_files < files)
            limits += "# open_files = " + std::to_string(files) +
                      "  # its descriptors stayed below half of it (a suggestion: more input may "
                      "need more)\n";
    }
    if (!limits.empty()) s += "\n[limits]\n" + limits;
    if (o.learned.partial)
        s += "\n# The run did more than butter records (paths, values or processes past a "
             "bound): learn again with --merge after a shorter run.\n";
    return s;
}

std::vector<std::string> hints(const SandboxPlan& plan, const RunOutcome& outcome) {
    std::vector<std::string> out;
    for (const auto& [name, count] : outcome.denied)
        out.push_back(plan.seccomp_listed_denials.count(name)
                          ? "remove \"" + name + "\" from seccomp.deny"
                          : "add \"" + name + "\" to seccomp.allow");
    std::set<std::string> seen;
    for (const auto& u : outcome.network) {
        if (u.kind != "connection" || u.verdict != "refused" || u.port == 0 ||
            (u.protocol != "tcp" && u.protocol != "udp"))
            continue;
        std::string host = !u.name.empty()                            ? u.name
                           : u.address.find(':') != std::string::npos ? "[" + u.address + "]"
                                                                      : u.address;
        std::string e = (u.protocol == "udp" ? "udp:" : "") + host + ":" + std::to_string(u.port);
        if (seen.insert(e).second) out.push_back("add \"" + e + "\" to network.allow");
    }
    for (const auto& u : outcome.network)
        if (u.kind == "dns" && u.verdict == "refused" && seen.insert(u.name).second)
            out.push_back("add \"" + u.name + ":PORT\" to network.allow (its DNS was refused)");
    return out;
}

}  // namespace butter::launcher::learn
