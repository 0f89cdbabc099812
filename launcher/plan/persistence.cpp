#include "plan/persistence.hpp"

#include "plan/host_path.hpp"
#include "plan/plan.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

#include <butter/fd.hpp>

namespace butter::launcher {

namespace {

void add(std::vector<Home>& out, const std::string& path) {
    if (path.empty() || path[0] != '/') return;
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) {
        // Not there (yet): a sandbox that can write where it would be could make it, dotfiles
        // and all. Its ancestors are guarded; it has no identity of its own.
        auto normal = normalize_target(path);
        if (normal && *normal != "/") out.push_back({*normal, 0, 0});
        return;
    }
    std::string r = real;
    std::free(real);
    struct stat st {};
    if (r == "/" || ::stat(r.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) return;
    for (const Home& h : out)
        if (h.dev == st.st_dev && h.ino == st.st_ino) return;
    out.push_back({r, st.st_dev, st.st_ino});
}

bool same(const std::string& path, dev_t dev, ino_t ino) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

std::string parent_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
}

}  // namespace

std::vector<Home> homes_to_protect() {
    std::vector<Home> out;
    if (const char* home = std::getenv("HOME")) add(out, home);
    // /etc/passwd read as text: NSS in a static binary would load shared modules at run time.
    uid_t uid = ::getuid();
    std::string text = read_file("/etc/passwd").value_or("");
    std::string_view rest = text;
    while (!rest.empty()) {
        std::string_view line = rest.substr(0, rest.find('\n'));
        rest.remove_prefix(std::min(line.size() + 1, rest.size()));
        // name:x:uid:gid:gecos:home:shell
        std::string_view f[7];
        std::size_t n = 0;
        for (std::string_view l = line; n < 7;) {
            auto colon = l.find(':');
            f[n++] = l.substr(0, colon);
            if (colon == std::string_view::npos) break;
            l.remove_prefix(colon + 1);
        }
        if (n < 7) continue;
        bool caller = std::strtoul(std::string(f[2]).c_str(), nullptr, 10) == uid;
        bool login = !f[6].ends_with("nologin") && !f[6].ends_with("/false") && !f[6].empty();
        if (caller || (uid == 0 && login)) add(out, std::string(f[5]));
    }
    return out;
}

std::string home_danger(const std::string& source, dev_t dev, ino_t ino,
                        const std::vector<Home>& homes) {
    for (const Home& h : homes) {
        if (h.ino != 0 && h.dev == dev && h.ino == ino) return "it is the home directory " + h.path;
        // An ancestor of the home (by identity: a bind mount of one counts).
        for (std::string p = h.path; p != "/";) {
            p = parent_of(p);
            if (same(p, dev, ino)) return "it holds the home directory " + h.path;
        }
    }
    // Below a home, in one of its dot-directories: walk up the source.
    for (std::string p = source, below; p != "/"; below = p, p = parent_of(p)) {
        if (below.empty()) continue;
        std::string name = below.substr(below.rfind('/') + 1);
        for (const Home& h : homes)
            if (name.starts_with(".") && h.ino != 0 && same(p, h.dev, h.ino))
                return "it is in " + h.path + "/" + name;
    }
    return "";
}

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// core.hooksPath of a git config file's text (the last one wins, as in git), or "". A small
// reading of git-config(1): sections, case-insensitive names, quotes, comments; not includes.
std::string hooks_path(std::string_view text) {
    std::string section, found;
    while (!text.empty()) {
        std::string_view line = text.substr(0, text.find('\n'));
        text.remove_prefix(std::min(line.size() + 1, text.size()));
        std::string l = trim(line);
        if (l.empty() || l[0] == '#' || l[0] == ';') continue;
        if (l[0] == '[') {
            auto close = l.find(']');
            section = lower(trim(std::string_view(l).substr(
                1, close == std::string::npos ? std::string::npos : close - 1)));
            if (close != std::string::npos && close + 1 < l.size())
                l = trim(std::string_view(l).substr(close + 1));  // "[core] key = v"
            else
                continue;
        }
        auto eq = l.find('=');
        if (section != "core" || eq == std::string::npos) continue;
        if (lower(trim(std::string_view(l).substr(0, eq))) != "hookspath") continue;
        std::string v, raw = trim(std::string_view(l).substr(eq + 1));
        bool quoted = false;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            char c = raw[i];
            if (c == '"') {
                quoted = !quoted;
            } else if (c == '\\' && i + 1 < raw.size()) {
                v += raw[++i];
            } else if ((c == '#' || c == ';') && !quoted) {
                break;
            } else {
                v += c;
            }
        }
        found = trim(v);
    }
    return found;
}

// `path` (absolute, or relative to `base`) resolved, and relative to `dir` if it lies below it.
std::optional<std::string> below(const std::string& dir, const std::string& base,
                                 const std::string& path, struct stat& st) {
    if (path.empty()) return std::nullopt;
    std::string full = path[0] == '/' ? path : base + "/" + path;
    auto r = resolve_host_path(full);
    if (!r || !r->path.starts_with(dir + "/")) return std::nullopt;
    st = r->st;
    return r->path.substr(dir.size() + 1);
}

}  // namespace

Result<std::vector<GitPart>> git_parts_to_protect(const std::string& dir) {
    std::vector<GitPart> out;
    std::string root = dir == "/" ? "" : dir;
    std::string dot_git = root + "/.git";
    struct stat st {};
    if (::lstat(dot_git.c_str(), &st) < 0) return out;
    if (S_ISLNK(st.st_mode))
        return fail(Error::message("lstat", "a symlink: butter cannot bind it read-only", dot_git)
                        .with_hint("set filesystem.writable_git = true to run with it writable"));
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return out;
    out.push_back({".git", st});
    std::string git_dir = dot_git;
    if (S_ISREG(st.st_mode)) {
        // A gitfile ("gitdir: PATH"): a worktree's, or --separate-git-dir's.
        std::string text = read_file(dot_git.c_str()).value_or("");
        if (text.starts_with("gitdir:")) {
            std::string target = trim(std::string_view(text).substr(7));
            struct stat gst {};
            if (auto rel = below(dir, root, target, gst)) out.push_back({*rel, gst});
            git_dir = target[0] == '/' ? target : root + "/" + target;
        }
    }
    std::string hooks = hooks_path(read_file((git_dir + "/config").c_str()).value_or(""));
    struct stat hst {};
    if (!hooks.starts_with("~"))
        if (auto rel = below(dir, root, hooks, hst); rel && S_ISDIR(hst.st_mode))
            out.push_back({*rel, hst});
    return out;
}

}  // namespace butter::launcher
