#include "plan/plan.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>

#include <butter/fd.hpp>
#include <butter/landlock.hpp>
#include <butter/signalfd.hpp>

#include "plan/host_path.hpp"
#include "plan/persistence.hpp"
#include "seccomp/builtin.hpp"
#include "seccomp/kernel_log.hpp"

extern char** environ;

namespace butter::launcher {

using profile::Diagnostics;
using profile::error_at;
using profile::MountType;
using profile::SourceLoc;
using profile::warning_at;

namespace {

// The subordinate range root's sandboxes map into, from /etc/subuid (or /etc/subgid) when it
// names root, else 100000:65536 (the range useradd hands out first).
IdMapping root_range(const char* file) {
    std::string text = read_file(file).value_or("");
    std::string_view rest = text;
    while (!rest.empty()) {
        std::string_view line = rest.substr(0, rest.find('\n'));
        rest.remove_prefix(std::min(line.size() + 1, rest.size()));
        auto a = line.find(':'), b = line.rfind(':');
        if (a == std::string_view::npos || a == b) continue;
        std::string_view who = line.substr(0, a);
        if (who != "root" && who != "0") continue;
        unsigned long start =
            std::strtoul(std::string(line.substr(a + 1, b - a - 1)).c_str(), nullptr, 10);
        unsigned long count = std::strtoul(std::string(line.substr(b + 1)).c_str(), nullptr, 10);
        if (start > 0 && count >= 1)
            return {0, static_cast<std::uint32_t>(start),
                    static_cast<std::uint32_t>(std::min(count, 65536UL))};
    }
    return {0, 100000, 65536};
}

std::optional<uid_t> parse_id(const std::string& s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
    unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
    if (v > 4294967294UL) return std::nullopt;
    return static_cast<uid_t>(v);
}

// systemd's service protocol variables: they describe butter's own process and fds, so they
// pass to the command only through the features that translate them (notify, socket
// activation), never as they are.
bool is_service_var(std::string_view k) {
    return k == "NOTIFY_SOCKET" || k == "LISTEN_PID" || k == "LISTEN_FDS" ||
           k == "LISTEN_FDNAMES" || k == "WATCHDOG_PID" || k == "WATCHDOG_USEC";
}

// The command's environment: each variable where it first appeared, with its last value.
// Keys are views into environ and the profile (both outlive this); a few dozen variables, so a
// linear search beats a map's allocations.
std::vector<std::string> make_env(const profile::Profile& p) {
    std::vector<std::string> out;
    std::vector<std::string_view> keys;
    auto put = [&](std::string_view k, std::string_view v) {
        std::string kv;
        kv.reserve(k.size() + 1 + v.size());
        kv.append(k).append(1, '=').append(v);
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == k) {
                out[i] = std::move(kv);
                return;
            }
        keys.push_back(k);
        out.push_back(std::move(kv));
    };
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = kv.substr(0, eq);
        if (is_service_var(k)) continue;
        bool keep = !p.process.env_clear ||
                    std::find(p.process.env_keep.begin(), p.process.env_keep.end(), k) !=
                        p.process.env_keep.end();
        if (keep) put(k, kv.substr(eq + 1));
    }
    for (const auto& [k, v] : p.process.env_set)
        put(k, v);
    if (std::find(keys.begin(), keys.end(), std::string_view("PATH")) == keys.end())
        put("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
    return out;
}

std::vector<std::string> exec_candidates(const std::string& arg0,
                                         const std::vector<std::string>& env) {
    if (arg0.find('/') != std::string::npos) return {arg0};
    std::string path;
    for (const auto& kv : env)
        if (kv.starts_with("PATH=")) path = kv.substr(5);
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t colon = path.find(':', start);
        if (colon == std::string::npos) colon = path.size();
        std::string dir = path.substr(start, colon - start);
        if (dir.empty()) dir = ".";
        out.push_back(dir + "/" + arg0);
        start = colon + 1;
    }
    return out;
}

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

std::optional<std::string> normalize_target(const std::string& path) {
    if (path.empty() || path[0] != '/') return std::nullopt;
    std::string out;
    std::size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/')
            ++i;
        std::size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string part = path.substr(i, j - i);
        i = j;
        if (part.empty() || part == ".") continue;
        if (part == "..") return std::nullopt;
        out += "/" + part;
    }
    return out.empty() ? "/" : out;
}

std::optional<SandboxPlan> make_plan(const profile::Profile& p, const PlanOptions& o,
                                     Diagnostics& out) {
    std::size_t errors_before = 0;
    for (const auto& d : out)
        errors_before += d.is_error() ? 1 : 0;
    SandboxPlan plan;
    plan.description = p.description;
    plan.privileged = o.force_privileged.value_or(::geteuid() == 0);

    // --- command and environment
    plan.argv = o.argv;
    plan.env = make_env(p);
    if (!plan.argv.empty()) plan.exec_candidates = exec_candidates(plan.argv[0], plan.env);
    plan.cwd = p.process.cwd;
    plan.stdin_null = p.process.stdin_mode == profile::StdinMode::Null;
    plan.new_session = p.process.session != profile::SessionMode::Inherit;
    plan.pty = p.process.session == profile::SessionMode::Pty;

    // --- namespaces and ids
    const auto& ns = p.namespaces;
    Namespaces n;
    if (ns.user) n |= Namespace::User;
    if (ns.mount) n |= Namespace::Mount;
    if (ns.pid) n |= Namespace::Pid;
    if (ns.uts) n |= Namespace::Uts;
    if (ns.ipc) n |= Namespace::Ipc;
    bool host_net = p.network.mode == profile::NetworkMode::Host;
    if (ns.net && !host_net) n |= Namespace::Net;
    if (ns.cgroup) n |= Namespace::Cgroup;
    if (ns.time) n |= Namespace::Time;
    if (!ns.net && !host_net)
        out.push_back(
            error_at(p.loc_of("network.mode"),
                     std::string("network.mode \"") +
                         (p.network.mode == profile::NetworkMode::None ? "none" : "loopback") +
                         "\" needs namespaces.net = true"));
    plan.namespaces = n;
    plan.no_nested_user = ns.user && !ns.nested_user;
    plan.loopback_up = p.network.mode == profile::NetworkMode::Loopback;
    auto abi = landlock_abi_version();
    LandlockScopes can = abi ? landlock_scopes(*abi) : LandlockScopes{};
    LandlockScopes scopes;
    if (!n.has(Namespace::Pid)) {
        // The host's pid namespace: butter and the caller's other processes are in sight, and
        // without privileges they run as the sandbox's own host uid, which may signal them
        // (stop butter, and its time limit with it). Landlock (ABI 6) scopes signals to the
        // sandbox's own processes; where the kernel cannot, a sandbox under butter's own uid
        // is refused (as root the sandbox's ids are not butter's).
        if (can.has(LandlockScope::Signal))
            scopes |= LandlockScope::Signal;
        else if (!plan.privileged)
            out.push_back(error_at(
                p.loc_of("namespaces.pid"),
                "namespaces.pid = false: this kernel cannot keep the sandbox from signalling "
                "butter and your other processes (Landlock ABI 6, Linux 6.12); keep "
                "namespaces.pid = true"));
    }
    if (!n.has(Namespace::Net)) {
        // The host's network namespace holds the host's abstract unix sockets: Landlock (ABI 6,
        // Linux 6.12) scopes them out. Older kernels cannot: said, not hidden.
        if (can.has(LandlockScope::AbstractUnixSocket))
            scopes |= LandlockScope::AbstractUnixSocket;
        else
            out.push_back(warning_at(
                p.loc_of("network.mode"),
                "the host's network: this kernel cannot keep the host's abstract unix sockets "
                "(X11, D-Bus) out of reach (Landlock ABI 6, Linux 6.12)"));
    }
    plan.landlock_scopes = scopes.raw();
    if (!ns.mount && !p.filesystem.mounts.empty())
        out.push_back(error_at(p.loc_of("namespaces.mount"),
                               "filesystem.mounts need namespaces.mount = true"));
    if (!ns.uts && p.locs.count("filesystem.hostname"))
        out.push_back(
            error_at(p.loc_of("filesystem.hostname"), "a hostname needs namespaces.uts = true"));
    plan.hostname = ns.uts ? p.filesystem.hostname : "";

    uid_t caller_uid = ::getuid();
    gid_t caller_gid = ::getgid();
    auto resolve_user = [&](const std::string& spec,
                            bool is_group) -> std::optional<std::uint32_t> {
        std::string key = is_group ? "process.group" : "process.user";
        if (spec == "keep")
            return plan.privileged && ns.user ? 0 : (is_group ? caller_gid : caller_uid);
        if (auto id = parse_id(spec)) return *id;
        if (is_group) {
            if (struct group* g = ::getgrnam(spec.c_str())) return g->gr_gid;
        } else if (struct passwd* pw = ::getpwnam(spec.c_str())) {
            return pw->pw_uid;
        }
        out.push_back(error_at(p.loc_of(key), key + ": no " + (is_group ? "group" : "user") +
                                                  " named '" + spec + "'"));
        return std::nullopt;
    };
    std::optional<std::uint32_t> uid = resolve_user(p.process.user, false);
    std::optional<std::uint32_t> gid = resolve_user(p.process.group, true);
    if (p.process.group == "keep" && p.process.user != "keep" && uid) {
        // A named user without a group gets that user's primary group.
        if (struct passwd* pw = ::getpwuid(*uid))
            gid = pw->pw_gid;
        else
            gid = *uid;
    }
    if (uid && gid) {
        plan.uid = *uid;
        plan.gid = *gid;
        if (ns.user && !plan.privileged) {
            // Unprivileged: one mapping of the caller's own ids, written by the child itself.
            if (*uid != caller_uid && *uid != 0)
                out.push_back(
                    error_at(p.loc_of("process.user"),
                             "process.user: without root, the sandbox can only run as your "
                             "own uid (\"keep\") or as 0"));
            if (*gid != caller_gid && *gid != 0)
                out.push_back(error_at(p.loc_of("process.group"),
                                       "process.group: without root, only your own gid or 0"));
            plan.uid_map = {{*uid, caller_uid, 1}};
            plan.gid_map = {{*gid, caller_gid, 1}};
            plan.child_writes_maps = true;
            plan.setup_uid = *uid;
            plan.setup_gid = *gid;
        } else if (ns.user) {
            // Root: uid 0 inside is never uid 0 outside. "keep" maps a subordinate range (uid 0
            // inside = its first id); an explicit id maps to itself.
            plan.child_writes_maps = false;
            plan.clear_groups = true;
            if (p.process.user == "keep") {
                plan.uid_map = {root_range("/etc/subuid")};
                plan.gid_map = {root_range("/etc/subgid")};
            } else {
                if (*uid == 0)
                    out.push_back(error_at(p.loc_of("process.user"),
                                           "process.user: 0 inside a user namespace maps to an "
                                           "unprivileged range; use \"keep\""));
                // An explicit id maps to itself: host group 0 would be the sandbox's group.
                if (*gid == 0)
                    out.push_back(error_at(p.loc_of("process.group"),
                                           "process.group: 0 would be the host's root group; "
                                           "name another group, or use \"keep\""));
                plan.uid_map = {{*uid, *uid, 1}};
                plan.gid_map = {{*gid, *gid, 1}};
            }
            plan.setup_uid = *uid;
            plan.setup_gid = *gid;
        } else if (!plan.privileged) {
            out.push_back(error_at(p.loc_of("namespaces.user"),
                                   "namespaces.user = false needs root (the other namespaces need "
                                   "CAP_SYS_ADMIN)"));
        } else {
            plan.clear_groups = true;
            plan.setup_uid = 0;
            plan.setup_gid = 0;
            if (*uid == 0)
                out.push_back(
                    warning_at(p.loc_of("namespaces.user"),
                               "the command runs as the host's real root (namespaces.user "
                               "= false with user 0)"));
        }
    }

    // --- filesystem
    if (p.filesystem.root != "tmpfs") {
        auto root = resolve_host_path(p.filesystem.root);
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
    auto cli_bind = [&](const std::pair<std::string, std::string>& b, bool ro) {
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
        cli_bind(b, false);
    for (const auto& b : o.ro_binds)
        cli_bind(b, true);

    // Whether `target` is a directory of the tmpfs root: no mount made before it is above it.
    auto on_root_fs = [&](const std::string& target) {
        return plan.root_dir.empty() &&
               std::none_of(plan.mounts.begin(), plan.mounts.end(), [&](const MountStep& earlier) {
                   return earlier.target == "/" || target.starts_with(earlier.target + "/");
               });
    };
    std::map<std::string, SourceLoc> targets;
    const std::vector<Home> homes = homes_to_protect();
    for (const auto& m : specs) {
        std::vector<MountStep> git_steps;  // a bind's .git and hooks, read-only over it
        std::optional<std::string> target = normalize_target(m.target);
        if (!target) {
            out.push_back(error_at(
                m.loc, "mount target '" + m.target + "' must be an absolute path without '..'"));
            continue;
        }
        if (*target == "/" && m.type != MountType::Tmpfs) {
            out.push_back(error_at(m.loc,
                                   "a mount onto '/' would replace the sandbox's root; set "
                                   "filesystem.root instead"));
            continue;
        }
        if (auto it = targets.find(*target); it != targets.end()) {
            // A target from $PWD (or the command line) replaces an earlier mount there; two
            // literal targets are a mistake.
            if (m.expanded_target) {
                out.push_back(note_at(m.loc, "replaces the mount of '" + *target + "' at " +
                                                 profile::render_loc(it->second)));
                auto& mounts = plan.mounts;
                mounts.erase(std::remove_if(mounts.begin(), mounts.end(),
                                            [&](const MountStep& s) {
                                                return s.target == *target ||
                                                       s.target.starts_with(*target + "/");
                                            }),
                             mounts.end());
            } else {
                out.push_back(error_at(m.loc, "duplicate mount target '" + *target +
                                                  "' (first at " + profile::render_loc(it->second) +
                                                  ")"));
                continue;
            }
        }
        targets[*target] = m.loc;
        MountStep s;
        s.type = m.type;
        s.target = *target;
        s.read_only = m.read_only;
        if (m.type == MountType::Bind) {
            struct stat lst {};
            if (::lstat(m.source.c_str(), &lst) < 0) {
                if (m.optional) {
                    out.push_back(note_at(
                        m.loc, "skipping the optional mount of missing '" + m.source + "'"));
                } else {
                    out.push_back(
                        error_at(m.loc, "mount source '" + m.source + "' does not exist"));
                }
                targets.erase(*target);
                continue;
            }
            if (S_ISLNK(lst.st_mode) && m.source == *target) {
                // /bin -> usr/bin on a merged-/usr host: the same symlink inside.
                char buf[PATH_MAX];
                ssize_t len = ::readlink(m.source.c_str(), buf, sizeof buf - 1);
                if (len > 0) {
                    s.type = MountType::Symlink;
                    s.source.assign(buf, static_cast<std::size_t>(len));
                    plan.mounts.push_back(s);
                    continue;
                }
            }
            auto src = resolve_host_path(m.source,
                                         m.follow_symlinks ? Symlinks::Follow : Symlinks::RootOnly);
            if (!src) {
                out.push_back(error_at(m.loc, "mount source '" + m.source +
                                                  "' cannot be resolved: " + src.error().what()));
                targets.erase(*target);
                continue;
            }
            const struct stat& st = src->st;
            s.source = std::move(src->path);
            s.source_dev = st.st_dev;
            s.source_ino = st.st_ino;
            s.source_is_dir = S_ISDIR(st.st_mode);
            s.source_uid = st.st_uid;
            s.source_gid = st.st_gid;
            if (!s.read_only && !p.filesystem.writable_home) {
                if (std::string why = home_danger(s.source, st.st_dev, st.st_ino, homes);
                    !why.empty()) {
                    out.push_back(error_at(
                        m.loc, "writable bind of '" + s.source + "': " + why +
                                   " (a sandbox could plant dotfiles that run outside it); run "
                                   "from a project directory, bind it read-only, or set "
                                   "filesystem.writable_home = true"));
                    continue;
                }
            }
            s.idmap = plan.privileged && ns.user && !m.read_only;
            if (s.idmap && !p.filesystem.map_host_root) {
                // Never host root's files from a sandbox, unless the profile says so: what it
                // creates as root could be made set-id, or be run by root later. A root-owned
                // source that others may write (/tmp) is written as the sandbox's own host
                // ids; any other is bound read-only, seen as its owner sees it.
                // A set-gid directory of group 0 gives what is created in it group 0.
                bool gives_group_root =
                    S_ISDIR(st.st_mode) && (st.st_mode & S_ISGID) && st.st_gid == 0;
                if (gives_group_root) {
                    s.read_only = true;
                    out.push_back(warning_at(
                        m.loc, "'" + s.source +
                                   "' is a set-gid directory of group root: bound read-only (a "
                                   "sandbox never creates host root's files); set "
                                   "filesystem.map_host_root = true to make it writable"));
                } else if (st.st_uid == 0 && (st.st_mode & S_IWOTH)) {
                    s.map_owner = false;
                    s.map_group = st.st_gid != 0;
                } else if (st.st_uid == 0) {
                    s.read_only = true;
                    out.push_back(warning_at(
                        m.loc, "'" + s.source +
                                   "' is owned by root: bound read-only (a sandbox never writes "
                                   "as host root); set filesystem.map_host_root = true to make "
                                   "it writable"));
                } else {
                    s.map_group = st.st_gid != 0;
                }
                s.idmap = s.map_owner || s.map_group;  // else a plain bind does the same
            }
            // A git checkout's .git (hooks, config) runs code as the caller the next time they
            // use git there: read-only, over the writable bind, unless the profile says.
            if (!s.read_only && s.source_is_dir && !p.filesystem.writable_git) {
                auto parts = git_parts_to_protect(s.source);
                if (!parts) {
                    out.push_back(error_at(m.loc, "writable bind of '" + s.source +
                                                      "': its .git: " + parts.error().what()));
                    continue;
                }
                for (const GitPart& part : *parts) {
                    MountStep g = s;
                    g.source = (s.source == "/" ? "" : s.source) + "/" + part.rel;
                    g.target = (s.target == "/" ? "" : s.target) + "/" + part.rel;
                    g.read_only = !part.pin;
                    g.source_is_dir = S_ISDIR(part.st.st_mode);
                    g.source_dev = part.st.st_dev;
                    g.source_ino = part.st.st_ino;
                    // Read-only: seen with its owner as the rest of the checkout (git checks).
                    // A pin is writable as the bind around it is, with its mapping (never
                    // that of the pinned directory's own owner, which may be root).
                    if (!part.pin) {
                        g.source_uid = part.st.st_uid;
                        g.source_gid = part.st.st_gid;
                    }
                    git_steps.push_back(std::move(g));
                }
            }
        } else if (m.type == MountType::Symlink) {
            s.source = m.source;
        } else if (m.type == MountType::Tmpfs) {
            s.options = tmpfs_options(m, 01777);
        } else if (m.type == MountType::Dev) {
            s.options = tmpfs_options(m, 0755, kSandboxTmpfsSize);
            s.mode = m.mode.value_or(0755);
            s.on_root_fs = on_root_fs(s.target) && !m.size;
        } else if (m.type == MountType::Dir) {
            s.mode = m.mode.value_or(0755);
        } else if (m.type == MountType::Proc) {
            plan.has_proc = true;
            s.on_root_fs = on_root_fs(s.target);
            if (!ns.pid)
                out.push_back(warning_at(m.loc,
                                         "a proc mount without namespaces.pid shows the "
                                         "host's processes"));
        }
        plan.mounts.push_back(std::move(s));
        for (MountStep& g : git_steps)
            plan.mounts.push_back(std::move(g));
    }

    // --- limits
    const auto& l = p.limits;
    if (o.timeout)
        plan.time_limit = o.timeout;
    else
        plan.time_limit = l.time;
    if (l.cpu) {
        auto secs = std::chrono::ceil<std::chrono::seconds>(*l.cpu).count();
        plan.rlimits.push_back({RLIMIT_CPU, static_cast<rlim_t>(secs)});
    }
    if (l.open_files) plan.rlimits.push_back({RLIMIT_NOFILE, *l.open_files});
    if (l.file_size) plan.rlimits.push_back({RLIMIT_FSIZE, *l.file_size});
    if (l.core) plan.rlimits.push_back({RLIMIT_CORE, *l.core});
    if (l.stack) plan.rlimits.push_back({RLIMIT_STACK, *l.stack});
    // rlimits are not namespaced: above butter's own hard limit only CAP_SYS_RESOURCE in the
    // host's namespace could raise them. Say so here, with the key's position.
    for (const Rlimit& r : plan.rlimits) {
        struct rlimit cur {};
        if (::getrlimit(static_cast<__rlimit_resource>(r.resource), &cur) == 0 &&
            cur.rlim_max != RLIM_INFINITY && r.value > cur.rlim_max) {
            std::string key = r.resource == RLIMIT_CPU      ? "limits.cpu"
                              : r.resource == RLIMIT_NOFILE ? "limits.open_files"
                              : r.resource == RLIMIT_FSIZE  ? "limits.file_size"
                              : r.resource == RLIMIT_CORE   ? "limits.core"
                                                            : "limits.stack";
            out.push_back(error_at(p.loc_of(key), key + ": " + std::to_string(r.value) +
                                                      " is above butter's own hard limit " +
                                                      std::to_string(cur.rlim_max) +
                                                      " (a limit can only be lowered)"));
        }
    }
    plan.memory_limit = l.memory;
    plan.pids_limit = l.pids;
    plan.cpus = l.cpus;
    plan.limits_optional = l.optional;

    // --- privileges
    for (const std::string& c : p.capabilities.keep)
        if (auto cap = capability_from_name(c)) plan.keep_caps.add(*cap);
    if (p.seccomp.restrict_suid_sgid && plan.keep_caps.has(CAP_SETFCAP))
        out.push_back(error_at(p.loc_of("capabilities.keep"),
                               "capabilities.keep: CAP_SETFCAP lets the sandbox give files "
                               "capabilities; it needs seccomp.restrict_suid_sgid = false"));
    if (p.filesystem.map_host_root)
        out.push_back(warning_at(p.loc_of("filesystem.map_host_root"),
                                 "filesystem.map_host_root: as root, what the sandbox creates in "
                                 "root-owned writable binds belongs to host root"));

    // --- supervision
    plan.stop_signal = p.supervise.stop_signal;
    plan.stop_timeout = p.supervise.stop_timeout;
    plan.forward_signals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    plan.restart = p.supervise.restart;
    plan.restart_delay = p.supervise.restart_delay;
    plan.restart_burst =
        static_cast<unsigned>(std::min<std::uint64_t>(p.supervise.restart_burst, 1000));
    plan.restart_interval = p.supervise.restart_interval;
    plan.notify = p.supervise.notify;
    // Socket activation: the sockets butter was started with (checked then: PlanOptions) go on
    // to the command as fds 3.., with LISTEN_PID rewritten to its pid inside. The watchdog
    // likewise.
    if (o.listen_fds > 0) {
        plan.listen_fds = o.listen_fds;
        plan.env.push_back("LISTEN_FDS=" + std::to_string(o.listen_fds));
        if (const char* names = std::getenv("LISTEN_FDNAMES"))
            plan.env.push_back(std::string("LISTEN_FDNAMES=") + names);
        plan.env.push_back("LISTEN_PID=");  // the command's pid, filled in by the child
        plan.pid_env.push_back(plan.env.size() - 1);
    }
    const char* wd_usec = std::getenv("WATCHDOG_USEC");
    const char* wd_pid = std::getenv("WATCHDOG_PID");
    if (plan.notify && wd_usec && (!wd_pid || std::strtol(wd_pid, nullptr, 10) == ::getpid())) {
        plan.env.push_back(std::string("WATCHDOG_USEC=") + wd_usec);
        plan.env.push_back("WATCHDOG_PID=");
        plan.pid_env.push_back(plan.env.size() - 1);
    }

    // --- output and report
    plan.stdout_spec = p.output.stdout_mode;
    plan.stderr_spec = p.output.stderr_mode;
    if (plan.pty && (plan.stdout_spec.kind != OutputSpec::Kind::Inherit ||
                     plan.stderr_spec.kind != OutputSpec::Kind::Inherit))
        out.push_back(
            error_at(p.loc_of("process.session"),
                     "process.session = \"pty\" carries stdout and stderr on the terminal: "
                     "output.stdout/stderr must be \"inherit\""));
    plan.report_path = o.report ? *o.report : p.report.path;
    plan.file_activity = p.report.file_activity;
    plan.record_steps = !plan.report_path.empty() || o.events;

    // --- watch
    for (std::size_t i = 0; i < p.watch.paths.size(); ++i) {
        const std::string& w = p.watch.paths[i];
        auto resolved = resolve_host_path(w);
        if (!resolved) {
            bool missing = resolved.error().errno_value() == ENOENT;
            out.push_back(error_at(p.loc_of("watch.paths[" + std::to_string(i) + "]"),
                                   "watch.paths: '" + w + "' " +
                                       (missing ? "does not exist" : resolved.error().what())));
            continue;
        }
        plan.watch_paths.push_back(
            {std::move(resolved->path), resolved->st.st_dev, resolved->st.st_ino});
    }
    plan.on_change = p.watch.on_change;
    plan.watch_debounce = p.watch.debounce;
    plan.watch_fanotify = p.watch.backend == profile::WatchBackend::Fanotify;
    if (plan.watch_fanotify && !plan.privileged)
        out.push_back(error_at(p.loc_of("watch.backend"),
                               "watch.backend: fanotify needs root (CAP_SYS_ADMIN); use inotify"));

    // --- seccomp, last: its diagnostics follow the rest's (a compile is the dearest step)
    plan.no_new_privs = p.process.no_new_privs;
    if (auto prog = seccomp::compile_or_builtin(p, o.builtin_programs, out)) {
        plan.seccomp = std::move(prog->program);
        plan.seccomp_listener = prog->uses_notify;
        plan.seccomp_errno = prog->denied_errno;
        if (plan.seccomp_listener) {
            if (auto lf = seccomp::logged_filters(plan.seccomp, plan.seccomp_errno)) {
                plan.seccomp_base = std::move(lf->base);
                plan.seccomp_logged = std::move(lf->logged);
            }
        }
    }
    if (!plan.seccomp.empty() && !plan.no_new_privs && !plan.privileged && !ns.user)
        out.push_back(error_at(p.loc_of("process.no_new_privs"),
                               "a seccomp filter needs no_new_privs (or root)"));

    std::size_t errors = 0;
    for (const auto& d : out)
        errors += d.is_error() ? 1 : 0;
    if (errors != errors_before) return std::nullopt;
    return plan;
}

}  // namespace butter::launcher
