#include "plan/persistence.hpp"

#include "plan/host_path.hpp"
#include "plan/plan.hpp"
#include "plan/user_db.hpp"
#include "text.hpp"

#include <fcntl.h>
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
    for_each_user_entry(UserDb::Passwd, text, [&](const UserEntry& e) {
        bool caller = e.id == uid;
        bool login =
            !e.shell.ends_with("nologin") && !e.shell.ends_with("/false") && !e.shell.empty();
        if (!e.home.empty() && (caller || (uid == 0 && login))) add(out, e.home);
        return true;
    });
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

// The value of `section`.`key` in a git config file's text (the last one wins, as in git), or
// "". A small reading of git-config(1): sections, case-insensitive names, quotes, comments;
// not includes.
std::string config_value(std::string_view text, std::string_view want_section,
                         std::string_view want_key) {
    std::string section, found;
    while (!text.empty()) {
        std::string l = trim(next_line(text));
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
        if (section != want_section || eq == std::string::npos) continue;
        if (lower(trim(std::string_view(l).substr(0, eq))) != want_key) continue;
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

// The paths of the gitlinks (submodules, mode 160000) in a git index: versions 2 to 4, SHA-1 or
// SHA-256 entries (gitformat-index(5)). At most kMaxGitlinks; an index it cannot read is an
// error (what it would have protected is unknown).
constexpr std::size_t kMaxGitlinks = 1024;
constexpr std::size_t kMaxIndexBytes = 64u << 20;

Result<std::vector<std::string>> gitlinks(const std::string& index, std::size_t hash_size) {
    auto bad = [&](const char* why) { return fail(Error::message("read", why, index)); };
    BUTTER_ASSIGN_OR_RETURN(Fd fd, open(index.c_str(), O_RDONLY | O_NOFOLLOW));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("fstat", index);
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > kMaxIndexBytes)
        return bad("not a regular file of at most 64 MiB");
    BUTTER_ASSIGN_OR_RETURN(std::string data, read_all(fd));
    auto u32 = [&](std::size_t at) {
        const auto* b = reinterpret_cast<const unsigned char*>(data.data() + at);
        return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 |
               b[3];
    };
    if (data.size() < 12 || data.compare(0, 4, "DIRC") != 0) return bad("not a git index");
    std::uint32_t version = u32(4), entries = u32(8);
    if (version < 2 || version > 4) return bad("an index version butter does not know");
    std::vector<std::string> out;
    std::string path;  // v4: each path is the previous one's prefix and a suffix
    std::size_t at = 12;
    for (std::uint32_t i = 0; i < entries; ++i) {
        std::size_t fixed = 40 + hash_size + 2;
        if (at + fixed > data.size()) return bad("a truncated entry");
        std::uint32_t mode = u32(at + 24);
        std::size_t flags = static_cast<unsigned char>(data[at + fixed - 2]) << 8 |
                            static_cast<unsigned char>(data[at + fixed - 1]);
        if (version >= 3 && (flags & 0x4000)) fixed += 2;  // extended flags
        std::size_t name = at + fixed;
        if (version == 4) {
            std::size_t strip = 0;  // git's offset varint
            unsigned char c = 0;
            std::size_t k = name;
            do {
                if (k >= data.size()) return bad("a truncated entry");
                c = static_cast<unsigned char>(data[k++]);
                strip = k == name + 1 ? (c & 127) : ((strip + 1) << 7) + (c & 127);
            } while ((c & 128) && k - name < 8);
            if (strip > path.size()) return bad("a bad path prefix");
            auto end = data.find('\0', k);
            if (end == std::string::npos) return bad("a truncated entry");
            path = path.substr(0, path.size() - strip) + data.substr(k, end - k);
            at = end + 1;
        } else {
            auto end = data.find('\0', name);
            if (end == std::string::npos) return bad("a truncated entry");
            path = data.substr(name, end - name);
            at += (fixed + path.size() + 8) & ~std::size_t{7};
        }
        if ((mode & 0170000) == 0160000) {
            if (out.size() >= kMaxGitlinks) return bad("more than 1,024 submodules");
            out.push_back(path);
        }
    }
    return out;
}

// Submodules (and repositories committed inside as gitlinks): each is a checkout of its own
// that git enters from the top (`git status` runs its fsmonitor, its hooks at a commit), through
// the gitfile at PATH/.git, which points wherever it says. So that a sandbox can neither
// rewrite that gitfile nor put another checkout at PATH: PATH/.git read-only (a repository's
// .git directory too), an uninitialized PATH (no .git) read-only as a whole, and PATH and every
// directory above it pinned (bound onto itself: a mount point cannot be renamed or removed).
// Only where the checkout has submodules: .gitmodules, or .git/modules.
Result<void> protect_submodules(const std::string& dir, const std::string& git_dir,
                                const std::string& config, std::vector<GitPart>& out) {
    std::string root = dir == "/" ? "" : dir;
    struct stat st {};
    if (::lstat((root + "/.gitmodules").c_str(), &st) < 0 &&
        ::lstat((git_dir + "/modules").c_str(), &st) < 0)
        return {};
    std::size_t hash =
        lower(config_value(config, "extensions", "objectformat")) == "sha256" ? 32 : 20;
    auto links = gitlinks(git_dir + "/index", hash);
    if (!links) {
        if (links.error().errno_value() == ENOENT) return {};  // a checkout without an index
        return fail(std::move(links).error());
    }
    std::vector<GitPart> pins, read_only;
    for (const std::string& link : *links) {
        auto normal = normalize_target("/" + link);
        if (!normal || *normal == "/") continue;
        std::string rel = normal->substr(1);
        // Pinned from the top down, each directory once; stopping at one that is not a plain
        // directory of the checkout (gone, a symlink: nothing there to enter or to pin).
        bool whole = true;
        for (std::size_t slash = 0; slash != std::string::npos;) {
            slash = rel.find('/', slash + 1);
            std::string part = rel.substr(0, slash);
            struct stat pst {};
            if (::lstat((root + "/" + part).c_str(), &pst) < 0 || !S_ISDIR(pst.st_mode)) {
                whole = false;
                break;
            }
            if (std::none_of(pins.begin(), pins.end(),
                             [&](const GitPart& g) { return g.rel == part; }))
                pins.push_back({part, pst, true});
        }
        if (!whole) continue;
        struct stat gst {};
        std::string dot_git = root + "/" + rel + "/.git";
        if (::lstat(dot_git.c_str(), &gst) == 0) {
            if (S_ISLNK(gst.st_mode))
                return fail(
                    Error::message("lstat", "a symlink: butter cannot bind it read-only", dot_git)
                        .with_hint("set filesystem.writable_git = true to run with it writable"));
            read_only.push_back({rel + "/.git", gst, false});
        } else {
            read_only.push_back({rel, pins.back().st, false});  // uninitialized: empty
        }
    }
    // Shallower first: a bind covers what was mounted below it before.
    std::stable_sort(pins.begin(), pins.end(), [](const GitPart& a, const GitPart& b) {
        return std::count(a.rel.begin(), a.rel.end(), '/') <
               std::count(b.rel.begin(), b.rel.end(), '/');
    });
    out.insert(out.end(), pins.begin(), pins.end());
    out.insert(out.end(), read_only.begin(), read_only.end());
    return {};
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
    out.push_back({".git", st, false});
    std::string git_dir = dot_git;
    if (S_ISREG(st.st_mode)) {
        // A gitfile ("gitdir: PATH"): a worktree's, or --separate-git-dir's.
        std::string text = read_file(dot_git.c_str()).value_or("");
        if (text.starts_with("gitdir:")) {
            std::string target = trim(std::string_view(text).substr(7));
            struct stat gst {};
            if (auto rel = below(dir, root, target, gst)) out.push_back({*rel, gst, false});
            git_dir = target[0] == '/' ? target : root + "/" + target;
        }
    }
    std::string config = read_file((git_dir + "/config").c_str()).value_or("");
    std::string hooks = config_value(config, "core", "hookspath");
    struct stat hst {};
    if (!hooks.starts_with("~"))
        if (auto rel = below(dir, root, hooks, hst); rel && S_ISDIR(hst.st_mode))
            out.push_back({*rel, hst, false});
    BUTTER_TRY(protect_submodules(dir, git_dir, config, out));
    return out;
}

}  // namespace butter::launcher
