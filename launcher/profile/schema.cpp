#include "profile/schema.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include <butter/capabilities.hpp>
#include <butter/seccomp.hpp>
#include <butter/signalfd.hpp>

#include "profile/mount_spec.hpp"
#include "profile/network_spec.hpp"
#include "profile/rows.hpp"
#include "profile/seccomp_rules.hpp"
#include "profile/toml_reader.hpp"
#include "profile/units.hpp"

namespace butter::launcher::profile {

namespace {

using namespace schema_rows;

// seccomp.default: parsed once into the action (the filter's own type); shown by its name.
Row seccomp_default_row() {
    return {"seccomp.default",
            "string",
            bit(Kind::String),
            [](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                const std::string& s = v.string;
                auto a = SeccompAction::parse(s);
                using K = SeccompAction::Kind;
                if (!a || (a->kind != K::Allow && a->kind != K::Errno &&
                           a->kind != K::KillProcess && a->kind != K::Log && a->kind != K::Notify))
                    return s.starts_with("errno:") && !parse_errno(s.substr(6))
                               ? "unknown errno '" + s.substr(6) + "'"
                               : "'" + s + "' is not one of: allow, errno:NAME, kill, log, notify";
                p.seccomp.default_action = *a;
                return {};
            },
            [](const Profile& p) -> std::optional<std::string> {
                return q(p.seccomp.default_action.to_string());
            },
            "allow | errno:NAME | kill | log | notify"};
}

// seccomp.errno: a name (EPERM) or number, kept as the number; shown by its name.
Row errno_row() {
    return {"seccomp.errno",
            "string",
            bit(Kind::String),
            [](const Value& v, Profile& p, const Expansion&, Diagnostics&) -> Err {
                auto e = parse_errno(v.string);
                if (!e) return "unknown errno '" + v.string + "'";
                p.seccomp.denied_errno = *e;
                return {};
            },
            [](const Profile& p) -> std::optional<std::string> {
                return q(errno_name(p.seccomp.denied_errno));
            },
            "errno of denied syscalls"};
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

Err check_allow(const std::string& s) {
    auto e = parse_allow(s);
    if (auto* err = std::get_if<std::string>(&e)) return *err;
    return {};
}

Err check_publish(const std::string& s) {
    auto e = parse_publish(s);
    if (auto* err = std::get_if<std::string>(&e)) return *err;
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

template <typename G>
Row port_list(std::string_view key, G get, std::string_view doc) {
    return {key,
            "array of integers",
            bit(Kind::Array),
            [key, get](const Value& v, Profile& p, const Expansion&, Diagnostics& out) -> Err {
                std::vector<std::uint16_t> ports;
                for (const Value& e : v.array) {
                    if (e.kind != Kind::Integer || e.integer < 1 || e.integer > 65535) {
                        out.push_back(error_at(e.loc, std::string(key) +
                                                          ": a port is an integer from 1 to "
                                                          "65535"));
                        continue;
                    }
                    ports.push_back(static_cast<std::uint16_t>(e.integer));
                }
                get(p) = std::move(ports);
                return {};
            },
            [get](const Profile& p) -> std::optional<std::string> {
                std::string s = "[";
                for (std::uint16_t port : get(const_cast<Profile&>(p)))
                    s += (s.size() > 1 ? ", " : "") + std::to_string(port);
                return s + "]";
            },
            doc};
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
            "(source = link text), dir, mqueue, overlay (sources = lower host directories, upper = "
            "\"tmpfs\" or a host directory for the changes, size of a tmpfs upper); optional = "
            "true skips a missing source"};
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

// Every key of the profile, one row each, in the order `butter show` and the docs list them: a
// table, long because the schema is (splitting it would only scatter the keys).
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
               "new (setsid: no controlling tty, blocks TIOCSTI) | inherit | pty (a terminal of "
               "the sandbox's own) | auto (pty when butter's stdin, stdout and stderr are "
               "terminals, else new)"),
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
        choice("filesystem.home", FIELD(filesystem.home), kHome,
               "none | tmpfs (an empty writable home owned by the command's user, at $HOME "
               "or a named process.user's passwd home, as large as the /tmp mount; HOME is set "
               "to it)"),
        choice("filesystem.workspace", FIELD(filesystem.workspace), kWorkspace,
               "direct (the working directory's writable bind is the host's directory) | overlay "
               "(the sandbox changes a copy-on-write view of it; the changes stay on a tmpfs "
               "until --changes exports them or workspace.commit applies them)"),
        boolean("filesystem.writable_git", FIELD(filesystem.writable_git),
                "leave the .git of a writable bind writable (else bound read-only: hooks and "
                "config run code outside the sandbox the next time git is used there)"),
        boolean("filesystem.map_host_root", FIELD(filesystem.map_host_root),
                "as root: writable binds of root-owned files and directories map the sandbox's "
                "user to host root, so it writes there as root (else as its own unprivileged "
                "host id); and an overlay's root-owned lower layers show root's files as the "
                "sandbox's user's, so that it can change them in the overlay"),
        choice("workspace.commit", FIELD(workspace.commit), kCommit,
               "an overlay workspace's changes after the run: never | on-success (applied to "
               "the working directory when the command exits 0) | always"),
        size("workspace.size", FIELD(workspace.size),
             "the most an overlay workspace's changes may take (its tmpfs; default 1G; the "
             "pages count against limits.memory too)"),
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
        seccomp_default_row(),
        string_list("seccomp.deny", FIELD(seccomp.deny), "syscalls and @groups that fail"),
        string_list("seccomp.allow", FIELD(seccomp.allow), "syscalls and @groups that are allowed"),
        errno_row(),
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
        string_list("capabilities.keep_as_root", FIELD(capabilities.keep_as_root),
                    "capabilities kept too when the command is uid 0 inside, as a container "
                    "runtime gives its root (over the sandbox's own ids and namespaces only)",
                    false, check_capability),
        choice("network.mode", FIELD(network.mode), kNetwork,
               "none (the sandbox's own network namespace: only lo, up, as Docker's --network none "
               "and bwrap's --unshare-net) | loopback (the same, its older name) | host (the "
               "host's network) | user (its own network namespace connected to the host's "
               "through pasta, unprivileged: outbound TCP and UDP, DNS through butter)"),
        string_list("network.publish", FIELD(network.publish),
                    "mode = \"user\": host ports forwarded into the sandbox, "
                    "\"[tcp:|udp:][ADDRESS:]HOSTPORT:PORT\" (e.g. \"8080:80\")",
                    false, check_publish),
        boolean("network.host_loopback", FIELD(network.host_loopback),
                "mode = \"user\": the host's loopback is reached at the gateway's address "
                "(else the host's own services stay out of reach)"),
        string_list("network.allow", FIELD(network.allow),
                    "mode = \"user\": the only destinations reached, \"[tcp:|udp:]HOST:PORT\" "
                    "with HOST a name, *.name, an address or network (\"10.1.2.0/24\", "
                    "\"[2001:db8::1]\"); names through butter's DNS, which answers NXDOMAIN "
                    "for others; the rest is refused (TCP: ECONNREFUSED, UDP: EPERM)",
                    false, check_allow),
        boolean("network.audit", FIELD(network.audit),
                "mode = \"user\": every destination reached and recorded (name, address, "
                "port, protocol, count) in the report and --events, network.allow or not"),
        boolean("network.landlock", FIELD(network.landlock),
                "mode = \"user\" with network.allow: Landlock TCP connect rules too (ABI 4, "
                "Linux 6.7), for the list's TCP ports and landlock.tcp_connect's, a second layer "
                "below the rules; every other TCP port is refused (EACCES, unrecorded), the "
                "sandbox's own loopback services' too: off unless asked"),
        boolean("landlock.enabled", FIELD(landlock.enabled),
                "confine the command with Landlock (Linux 5.13+) to what its mounts allow: "
                "read-only mounts readable and executable, writable ones writable, /proc and "
                "/dev as mounted, nothing else; stacks with the namespaces"),
        string_list("landlock.read", FIELD(landlock.read),
                    "more sandbox paths the Landlock layer lets the command read and execute", true,
                    check_absolute),
        string_list("landlock.write", FIELD(landlock.write),
                    "more sandbox paths the Landlock layer lets the command write", true,
                    check_absolute),
        port_list("landlock.tcp_connect", FIELD(landlock.tcp_connect),
                  "TCP ports the command may connect to (Landlock ABI 4, Linux 6.7); when "
                  "set, every other port is refused (EACCES)"),
        port_list("landlock.tcp_bind", FIELD(landlock.tcp_bind),
                  "TCP ports the command may bind (Landlock ABI 4); when set, every other port "
                  "is refused (EACCES)"),
        choice("isolation.tier", FIELD(isolation.tier), kTier,
               "auto (the strongest the host allows: namespaces, else landlock when it refuses "
               "user namespaces, their id maps, a mount or lo; else seccomp) | namespaces | "
               "landlock (no namespaces: the host's view confined by Landlock to the profile's "
               "paths, private TMPDIR and HOME) | seccomp (filters, rlimits, session and "
               "no_new_privs only)"),
        choice("isolation.minimum", FIELD(isolation.minimum), kMinimumTier,
               "the weakest tier a run may get: below it butter fails with the reason instead "
               "of running (namespaces | landlock | seccomp)"),
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

const char* to_string(Tier t) {
    for (const auto& c : kTier)
        if (c.value == t) return c.name.data();
    return "auto";
}

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
        case MountType::Overlay:
            return "overlay";
        case MountType::Kernel:
            return "kernel";
        case MountType::DevNodes:
            return "device nodes";
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
