// The plan's filesystem: the root (a sized tmpfs, or filesystem.root) and every mount of the
// profile and the command line, in order. A bind's source is resolved once, here (host.hpp:
// symlinks followed only where the profile says); a writable bind never exposes a home or a
// git checkout's repository, and as root it is idmapped so that the sandbox writes as the
// source's owner, never as host root.
#include <linux/capability.h>

#include <algorithm>

#include "plan/planner.hpp"

namespace butter::launcher {

using profile::error_at;
using profile::MountType;
using profile::note_at;
using profile::SourceLoc;
using profile::warning_at;

namespace {

std::string tmpfs_options(const profile::MountSpec& m, unsigned default_mode,
                          std::optional<std::uint64_t> default_size = std::nullopt) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%o", m.mode.value_or(default_mode));
    std::string s = std::string("mode=") + mode;
    std::optional<std::uint64_t> size = m.size ? m.size : default_size;
    if (size) s += ",size=" + std::to_string(*size);
    // Inodes are kernel memory the size does not count: one per 4 KiB of the size (at least
    // 1024), as tmpfs itself does for its default size.
    std::uint64_t inodes = size ? std::max<std::uint64_t>(*size / 4096, 1024) : 0;
    if (!m.size && default_size) inodes = kSandboxTmpfsInodes;
    if (inodes) s += ",nr_inodes=" + std::to_string(inodes);
    return s;
}

}  // namespace

// --bind and --ro-bind, after the profile's mounts (a target of theirs replaces the profile's).
void Planner::cli_binds(std::vector<profile::MountSpec>& specs) const {
    auto add = [&](const std::pair<std::string, std::string>& b, bool ro) {
        profile::MountSpec m;
        m.type = MountType::Bind;
        m.source = b.first;
        m.target = b.second.empty() ? b.first : b.second;
        m.read_only = ro;
        m.loc = {ro ? "--ro-bind " + b.first : "--bind " + b.first, 0, 0};
        m.expanded_target = true;  // the command line overrides the profile's mount there
        specs.push_back(m);
    };
    for (const auto& b : o.binds)
        add(b, false);
    for (const auto& b : o.ro_binds)
        add(b, true);
}

// Whether `target` is a directory of the tmpfs root: no mount made before it is above it.
bool Planner::on_root_fs(const std::string& target) const {
    return plan.root_dir.empty() &&
           std::none_of(plan.mounts.begin(), plan.mounts.end(), [&](const MountStep& earlier) {
               return earlier.target == "/" || target.starts_with(earlier.target + "/");
           });
}

// A target from $PWD (or the command line) replaces an earlier mount there; two literal
// targets are a mistake. False when `m` is to be left out.
bool Planner::take_target(const profile::MountSpec& m, const std::string& target,
                          std::map<std::string, SourceLoc>& targets) {
    if (auto it = targets.find(target); it != targets.end()) {
        if (!m.expanded_target) {
            out.push_back(error_at(m.loc, "duplicate mount target '" + target + "' (first at " +
                                              profile::render_loc(it->second) + ")"));
            return false;
        }
        out.push_back(note_at(
            m.loc, "replaces the mount of '" + target + "' at " + profile::render_loc(it->second)));
        std::erase_if(plan.mounts, [&](const MountStep& s) {
            return s.target == target || s.target.starts_with(target + "/");
        });
    }
    targets[target] = m.loc;
    return true;
}

// filesystem.home = "tmpfs": an empty home the command's user owns, at the caller's $HOME (a
// named process.user's passwd home; /root or /home/sandbox when that is unset, relative or "/"),
// mounted before whatever the mounts put inside it ($PWD below $HOME) and left out where a mount
// already targets it. HOME names it unless the profile sets HOME itself. As large as the /tmp
// mount, if there is one.
void Planner::home(std::vector<profile::MountSpec>& specs) {
    std::optional<std::string> home;
    if (p.process.user != "keep") {
        // Another user's: the home its passwd entry names, as docker run --user has it.
        if (auto h = host.home_of(plan.uid, etc)) home = normalize_target(*h);
    } else if (auto e = host.env("HOME")) {
        home = normalize_target(*e);
    }
    if (!home || *home == "/") home = plan.uid == 0 ? "/root" : "/home/sandbox";
    bool env_set = std::any_of(p.process.env_set.begin(), p.process.env_set.end(),
                               [](const auto& kv) { return kv.first == "HOME"; });
    if (!env_set) {
        std::erase_if(plan.env, [](const std::string& kv) { return kv.starts_with("HOME="); });
        plan.env.push_back("HOME=" + *home);
    }
    std::optional<std::uint64_t> tmp_size;
    auto first_inside = specs.end();
    for (auto it = specs.begin(); it != specs.end(); ++it) {
        auto t = normalize_target(it->target);
        if (!t) continue;
        if (*t == *home) return;  // the profile's own mount there
        if (*t == "/tmp" && it->type == MountType::Tmpfs) tmp_size = it->size;
        if (first_inside == specs.end() && t->starts_with(*home + "/")) first_inside = it;
    }
    profile::MountSpec m;
    m.type = MountType::Tmpfs;
    m.target = *home;
    m.mode = 0700;
    m.size = tmp_size.value_or(kSandboxTmpfsSize);
    m.loc = p.loc_of("filesystem.home");
    home_index = static_cast<std::size_t>(first_inside - specs.begin());
    specs.insert(first_inside, std::move(m));
}

void Planner::filesystem() {
    if (p.filesystem.root != "tmpfs") {
        auto root = host.resolve(p.filesystem.root, Symlinks::RootOnly);
        if (!root || !S_ISDIR(root->st.st_mode)) {
            out.push_back(error_at(p.loc_of("filesystem.root"),
                                   "filesystem.root: '" + p.filesystem.root + "' " +
                                       (root ? "is not a directory" : root.error().what())));
        } else {
            plan.root_dir = root->path;
            plan.root_dev = root->st.st_dev;
            plan.root_ino = root->st.st_ino;
        }
    }
    plan.read_only_root = p.filesystem.read_only_root;
    plan.root_options = "mode=0755,size=" + std::to_string(kSandboxTmpfsSize) +
                        ",nr_inodes=" + std::to_string(kSandboxTmpfsInodes);
    std::vector<profile::MountSpec> specs = p.filesystem.mounts;
    cli_binds(specs);
    if (p.filesystem.home == profile::HomeMode::Tmpfs) home(specs);
    workspace(specs);
    std::map<std::string, SourceLoc> targets;
    const std::vector<Home> homes = host.homes();
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const profile::MountSpec& m = specs[i];
        std::vector<MountStep> git_steps;  // a bind's .git and hooks, read-only over it
        std::optional<std::string> target = normalize_target(m.target);
        if (!target) {
            out.push_back(error_at(
                m.loc, "mount target '" + m.target + "' must be an absolute path without '..'"));
            continue;
        }
        if (*target == "/" && m.expanded_target && m.type == MountType::Bind && m.loc.line > 0) {
            // $PWD is / (cron, a unit without WorkingDirectory=): the profile's workspace bind
            // would be the whole host; the sandbox starts in its own / instead.
            out.push_back(note_at(m.loc, "the current directory is '/': not bound"));
            continue;
        }
        if (*target == "/" && m.type != MountType::Tmpfs) {
            out.push_back(error_at(m.loc,
                                   "a mount onto '/' would replace the sandbox's root; set "
                                   "filesystem.root instead"));
            continue;
        }
        if (!take_target(m, *target, targets)) continue;
        MountStep s;
        s.type = m.type;
        s.target = *target;
        s.read_only = m.read_only;
        if (m.type == MountType::Bind) {
            if (!bind(m, s, homes, git_steps)) {
                if (s.type != MountType::Symlink) targets.erase(*target);
                if (s.type == MountType::Symlink) plan.mounts.push_back(std::move(s));
                continue;
            }
        } else if (m.type == MountType::Overlay) {
            if (!overlay(m, s, homes, git_steps, workspace_index == i)) {
                targets.erase(*target);
                continue;
            }
            if (m.upper == "tmpfs") s.options = tmpfs_options(m, 0755, kOverlayUpperSize);
            if (i == workspace_index) plan.changes.mount = static_cast<int>(plan.mounts.size());
        } else if (m.type == MountType::Symlink) {
            s.source = m.source;
        } else if (m.type == MountType::Tmpfs) {
            s.options = tmpfs_options(m, 01777);
            if (home_index == i)
                s.options +=
                    ",uid=" + std::to_string(plan.uid) + ",gid=" + std::to_string(plan.gid);
        } else if (m.type == MountType::Dev) {
            s.options = tmpfs_options(m, 0755, kSandboxTmpfsSize);
            s.mode = m.mode.value_or(0755);
            s.on_root_fs = on_root_fs(s.target) && !m.size;
        } else if (m.type == MountType::Dir) {
            s.mode = m.mode.value_or(0755);
        } else if (m.type == MountType::Proc) {
            plan.has_proc = true;
            s.on_root_fs = on_root_fs(s.target);
            if (!p.namespaces.pid)
                out.push_back(warning_at(m.loc,
                                         "a proc mount without namespaces.pid shows the "
                                         "host's processes"));
        }
        plan.mounts.push_back(std::move(s));
        for (MountStep& g : git_steps)
            plan.mounts.push_back(std::move(g));
    }
}

// --changes and filesystem.workspace = "overlay": the writable bind of the working directory
// becomes an overlay with a tmpfs upper (that bind's source its one lower layer).
void Planner::workspace(std::vector<profile::MountSpec>& specs) {
    plan.changes.path = o.changes.value_or("");
    plan.changes.commit = p.workspace.commit;
    bool wanted = o.changes || p.filesystem.workspace == profile::WorkspaceMode::Overlay;
    if (!wanted) {
        if (p.workspace.commit != profile::CommitPolicy::Never)
            out.push_back(warning_at(p.loc_of("workspace.commit"),
                                     "workspace.commit applies only with filesystem.workspace "
                                     "= \"overlay\" (or --changes)"));
        return;
    }
    SourceLoc at = o.changes ? SourceLoc{"--changes", 0, 0} : p.loc_of("filesystem.workspace");
    auto cwd = normalize_target(plan.cwd);
    for (std::size_t i = specs.size(); cwd && i-- > 0;) {
        profile::MountSpec& m = specs[i];
        if (m.type != MountType::Bind || m.read_only || normalize_target(m.target) != cwd) continue;
        m.type = MountType::Overlay;
        m.sources = {m.source};
        m.source.clear();
        m.upper = "tmpfs";
        m.size = p.workspace.size;
        workspace_index = i;
        return;
    }
    out.push_back(error_at(at,
                           "an overlay workspace needs a writable bind of the working "
                           "directory ('" +
                               plan.cwd + "') to put the overlay on; the profile has none"));
}

// An overlay's host directory (a lower layer, or where its upper one lives), resolved as a
// bind's source is; as root, a lower layer of a user's tree is idmapped as a read-only bind is,
// so that the sandbox can change its files (a copy keeps its owner, which must be one of the
// sandbox's). The upper directory is never idmapped: what the sandbox makes there belongs to
// its own host ids.
std::optional<MountStep> Planner::overlay_layer(const profile::MountSpec& m,
                                                const std::string& path, const std::string& target,
                                                bool upper) {
    const char* what = upper ? "overlay upper" : "overlay source";
    auto src = host.resolve(path, m.follow_symlinks ? Symlinks::Follow : Symlinks::RootOnly);
    if (!src) {
        bool missing = src.error().errno_value() == ENOENT;
        if (missing && m.optional && !upper)
            out.push_back(
                note_at(m.loc, "skipping the optional overlay of missing '" + path + "'"));
        else
            out.push_back(error_at(
                m.loc,
                std::string(what) + " '" + path + "' " +
                    (missing ? "does not exist" : "cannot be resolved: " + src.error().what())));
        return std::nullopt;
    }
    if (!S_ISDIR(src->st.st_mode)) {
        out.push_back(error_at(m.loc, std::string(what) + " '" + path + "' is not a directory"));
        return std::nullopt;
    }
    MountStep l;
    l.type = MountType::Bind;
    l.layer = true;
    l.target = target;
    l.read_only = !upper;
    l.source = std::move(src->path);
    l.source_dev = src->st.st_dev;
    l.source_ino = src->st.st_ino;
    l.source_uid = src->st.st_uid;
    l.source_gid = src->st.st_gid;
    if (upper) return l;
    idmap_read_only(l.source_uid, l.source_gid, l);
    if (plan.privileged && p.namespaces.user && l.source_uid == 0) {
        if (p.filesystem.map_host_root && !keeps_admin()) {
            l.idmap = l.map_owner = true;
            l.map_group = true;
        } else {
            out.push_back(warning_at(m.loc, "'" + l.source +
                                                "' is owned by root: the sandbox cannot change "
                                                "root's files in the overlay (a sandbox never "
                                                "gets host root's ids); set "
                                                "filesystem.map_host_root = true to let it"));
        }
    }
    return l;
}

// An overlay's layers, as steps before it; false when it is left out (said in `out`). The
// workspace overlay whose changes may be applied to the host is checked as a writable bind of
// it would be (no home, a checkout's .git read-only).
bool Planner::overlay(const profile::MountSpec& m, MountStep& s, const std::vector<Home>& homes,
                      std::vector<MountStep>& git_steps, bool workspace) {
    std::vector<MountStep> layers;
    auto overlap = [](const std::string& a, const std::string& b) {
        return a == b || a == "/" || b == "/" || a.starts_with(b + "/") || b.starts_with(a + "/");
    };
    for (const std::string& source : m.sources) {
        auto l = overlay_layer(m, source, s.target, false);
        if (!l) return false;
        for (const MountStep& other : layers)
            if (overlap(l->source, other.source)) {
                out.push_back(error_at(m.loc, "overlay sources '" + other.source + "' and '" +
                                                  l->source +
                                                  "' overlap (overlayfs takes no layer inside "
                                                  "another)"));
                return false;
            }
        layers.push_back(std::move(*l));
    }
    if (m.upper != "tmpfs") {
        auto u = overlay_layer(m, m.upper, s.target, true);
        if (!u) return false;
        for (const MountStep& l : layers)
            if (overlap(u->source, l.source)) {
                out.push_back(error_at(m.loc, "overlay upper '" + u->source +
                                                  "' overlaps its source '" + l.source + "'"));
                return false;
            }
        layers.push_back(std::move(*u));
    }
    if (workspace) {
        const MountStep& lower = layers.front();
        plan.changes.workspace = lower.source;
        plan.changes.dev = lower.source_dev;
        plan.changes.ino = lower.source_ino;
        struct stat st {};
        st.st_mode = S_IFDIR;
        st.st_dev = lower.source_dev;
        st.st_ino = lower.source_ino;
        st.st_uid = lower.source_uid;
        if (p.workspace.commit != profile::CommitPolicy::Never && !p.filesystem.writable_home) {
            if (std::string why = host.home_danger(lower.source, st, homes); !why.empty()) {
                out.push_back(error_at(m.loc, "workspace.commit of '" + lower.source + "': " + why +
                                                  " (its changes could plant dotfiles "
                                                  "that run outside the sandbox); set "
                                                  "filesystem.writable_home = true"));
                return false;
            }
        }
        if (!p.filesystem.writable_git) {
            MountStep as_bind = lower;
            as_bind.target = s.target;
            as_bind.layer = false;
            if (!protect_git(m, as_bind, git_steps)) return false;
            // Read-only, pins too: a writable bind of the host's directory would bypass the
            // overlay (a submodule's checkout is read-only in an overlay workspace).
            for (MountStep& g : git_steps)
                if (!g.read_only) {
                    g.read_only = true;
                    idmap_read_only(g.source_uid, g.source_gid, g);
                }
        }
    }
    for (MountStep& l : layers)
        plan.mounts.push_back(std::move(l));
    s.layers = static_cast<unsigned>(m.sources.size()) + (m.upper != "tmpfs" ? 1 : 0);
    return true;
}

// A bind's source, resolved and checked. False when it is not to be mounted as a bind: left
// out (missing, refused: said in `out`), or a symlink to make instead (s.type = Symlink).
bool Planner::bind(const profile::MountSpec& m, MountStep& s, const std::vector<Home>& homes,
                   std::vector<MountStep>& git_steps) {
    auto lst = host.lstat(m.source);
    if (!lst) {
        if (m.optional)
            out.push_back(
                note_at(m.loc, "skipping the optional mount of missing '" + m.source + "'"));
        else
            out.push_back(error_at(m.loc, "mount source '" + m.source + "' does not exist"));
        return false;
    }
    if (S_ISLNK(lst->st_mode) && m.source == s.target) {
        // /bin -> usr/bin on a merged-/usr host: the same symlink inside.
        if (auto text = host.readlink(m.source); text && !text->empty()) {
            s.type = MountType::Symlink;
            s.source = std::move(*text);
            return false;
        }
    }
    auto src = host.resolve(m.source, m.follow_symlinks ? Symlinks::Follow : Symlinks::RootOnly);
    if (!src) {
        out.push_back(error_at(
            m.loc, "mount source '" + m.source + "' cannot be resolved: " + src.error().what()));
        return false;
    }
    const struct stat st = src->st;
    s.source = std::move(src->path);
    s.source_dev = st.st_dev;
    s.source_ino = st.st_ino;
    s.source_is_dir = S_ISDIR(st.st_mode);
    s.source_uid = st.st_uid;
    s.source_gid = st.st_gid;
    if (!s.read_only && !p.filesystem.writable_home) {
        if (std::string why = host.home_danger(s.source, st, homes); !why.empty()) {
            out.push_back(error_at(m.loc, "writable bind of '" + s.source + "': " + why +
                                              " (a sandbox could plant dotfiles that run "
                                              "outside it); run from a project directory, bind "
                                              "it read-only, or set filesystem.writable_home = "
                                              "true"));
            return false;
        }
    }
    idmap_bind(m, st, s);
    // A git checkout's .git (hooks, config) runs code as the caller the next time they use git
    // there: read-only, over the writable bind, unless the profile says.
    if (!s.read_only && s.source_is_dir && !p.filesystem.writable_git)
        return protect_git(m, s, git_steps);
    return true;
}

// As root, a writable bind is idmapped so that the sandbox's user writes as the source's owner;
// never as host root, unless the profile says so: what it creates as root could be made set-id,
// or be run by root later. A root-owned source that others may write (/tmp) is a plain bind,
// written as the sandbox's own host ids (its group's files are not the sandbox's either:
// root:mail 1777); any other root-owned one is bound read-only, seen as its owner sees it (the
// directory the caller chose to work in, /root/project: readable as root reads it). A set-gid
// directory of group 0 gives what is created in it group 0: read-only, the same way.
// A read-only bind (and a part of one) of a user's tree is idmapped too, so that its owner
// looks right inside (git's and ssh's ownership checks): the source's owner and group as the
// sandbox's. Never host root's ids: its files (/etc/shadow, ssh host keys, a root:ssl-cert key)
// stay as unreadable as without the bind. And not when the sandbox keeps CAP_SYS_ADMIN: it
// could clear the read-only flag of a mount made outside it (the kernel locks only the flags
// of mounts it copies into the sandbox) and write as those owners.
bool Planner::keeps_admin() const {
    return lists_capability(p.capabilities.keep, CAP_SYS_ADMIN) ||
           lists_capability(p.capabilities.keep_as_root, CAP_SYS_ADMIN);
}

void Planner::idmap_read_only(uid_t uid, gid_t gid, MountStep& s) const {
    s.map_owner = uid != 0;
    s.map_group = s.map_owner && gid != 0;
    s.idmap = plan.privileged && p.namespaces.user && s.map_owner && !keeps_admin();
}

void Planner::idmap_bind(const profile::MountSpec& m, const struct stat& st, MountStep& s) {
    s.idmap = plan.privileged && p.namespaces.user;
    if (!s.idmap) return;
    if (m.read_only) return idmap_read_only(st.st_uid, st.st_gid, s);
    if (p.filesystem.map_host_root) return;
    bool gives_group_root = S_ISDIR(st.st_mode) && (st.st_mode & S_ISGID) && st.st_gid == 0;
    if (gives_group_root) {
        s.read_only = true;
        out.push_back(warning_at(m.loc, "'" + s.source +
                                            "' is a set-gid directory of group root: bound "
                                            "read-only (a sandbox never creates host root's "
                                            "files); set filesystem.map_host_root = true to make "
                                            "it writable"));
    } else if (st.st_uid == 0 && (st.st_mode & S_IWOTH)) {
        s.idmap = s.map_owner = s.map_group = false;
        return;
    } else if (st.st_uid == 0) {
        s.read_only = true;
        out.push_back(warning_at(m.loc, "'" + s.source +
                                            "' is owned by root: bound read-only (a sandbox never "
                                            "writes as host root); set filesystem.map_host_root = "
                                            "true to make it writable"));
    }
    s.map_group = st.st_gid != 0;
    // Read-only now, with root's ids mapped: only while the sandbox cannot make it writable.
    if (s.read_only && keeps_admin()) s.idmap = false;
}

// The checkout's parts that stay read-only (persistence.hpp), as binds over the writable one.
bool Planner::protect_git(const profile::MountSpec& m, const MountStep& s,
                          std::vector<MountStep>& git_steps) {
    auto parts = host.git_parts(s.source);
    if (!parts) {
        out.push_back(error_at(
            m.loc, "writable bind of '" + s.source + "': its .git: " + parts.error().what()));
        return false;
    }
    for (const GitPart& part : *parts) {
        MountStep g = s;
        g.source = (s.source == "/" ? "" : s.source) + "/" + part.rel;
        g.target = (s.target == "/" ? "" : s.target) + "/" + part.rel;
        g.read_only = !part.pin;
        g.source_is_dir = S_ISDIR(part.st.st_mode);
        g.source_dev = part.st.st_dev;
        g.source_ino = part.st.st_ino;
        // Read-only: seen with its owner as the rest of the checkout (git checks). A pin is
        // writable as the bind around it is, with its mapping (never that of the pinned
        // directory's own owner, which may be root).
        if (!part.pin) {
            g.source_uid = part.st.st_uid;
            g.source_gid = part.st.st_gid;
            idmap_read_only(part.st.st_uid, part.st.st_gid, g);
        }
        git_steps.push_back(std::move(g));
    }
    return true;
}

}  // namespace butter::launcher
