// The profile: typed fields with defaults, and the key table that reads them from a Value tree,
// writes them back as TOML (`butter show`) and documents them (`butter show --keys`, the man
// page). One row per key; nothing about a key lives outside its row.
#pragma once

#include <cerrno>

#include <butter/seccomp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "profile/diagnostic.hpp"
#include "profile/value.hpp"

namespace butter::launcher::profile {

using std::chrono::nanoseconds;

// Kernel and DevNodes are not profile keys: an OCI config's mounts of a file system by its type,
// and the device nodes and links an OCI runtime puts in the container's /dev.
enum class MountType { Bind, Tmpfs, Proc, Dev, Symlink, Dir, Mqueue, Overlay, Kernel, DevNodes };
const char* to_string(MountType t);

struct MountSpec {
    MountType type = MountType::Bind;
    std::string source;  // bind: host path; symlink: the link's text
    std::string target;  // absolute path inside the sandbox
    bool read_only = false;
    bool optional = false;  // a missing source skips the mount (with a warning) instead of failing
    // bind: follow every symlink on the source's path (else only root's: host_path.hpp)
    bool follow_symlinks = false;
    // overlay: the lower layers (host directories, read-only; the first is the top one), and
    // where the changes go: "tmpfs" (a tmpfs of the sandbox's, gone after the run unless
    // exported) or a host directory (kept: its upper/ and work/ subdirectories).
    std::vector<std::string> sources;
    std::string upper = "tmpfs";
    std::optional<std::uint64_t> size;  // tmpfs; overlay: its tmpfs upper
    std::optional<unsigned> mode;       // tmpfs, dir
    // The target came from $PWD/$HOME/$UID: a later such mount replaces an earlier mount of the
    // same target instead of being a duplicate (cwd = /tmp over the tmpfs /tmp).
    bool expanded_target = false;
    SourceLoc loc;
};

// One check on one syscall argument of a [[seccomp.rules]] entry.
struct ArgCheck {
    enum class Kind { OneOf, Compare, AnyBit, AllBits };
    unsigned index = 0;  // arg0 .. arg5
    Kind kind = Kind::OneOf;
    std::string op;                     // Compare: eq, ne, lt, le, gt, ge
    std::vector<std::uint64_t> values;  // OneOf: the values; AnyBit/AllBits: the bits; Compare: 1
};

// [[seccomp.rules]]: the syscalls get `action` when the arguments match (`match`), or when
// they do not (`unless`).
struct SeccompRule {
    std::vector<std::string> syscalls;
    std::optional<SeccompAction> action;  // none: errno:<seccomp.errno>
    bool unless = false;
    std::vector<ArgCheck> args;
    std::string text;  // the rule as written, for `butter show`
    SourceLoc loc;
};

// Settings with a fixed set of values, parsed once (schema.cpp's choice rows); nothing after
// the profile compares their text.
enum class StdinMode { Inherit, Null };
enum class HomeMode { None, Tmpfs };
enum class WorkspaceMode { Direct, Overlay };
enum class CommitPolicy { Never, OnSuccess, Always };
enum class SessionMode { New, Inherit, Pty, Auto };
enum class RestartPolicy { No, OnFailure, Always };
enum class NetworkMode { None, Loopback, Host, User };
// What confines a run, strongest last (profile isolation.*; plan/tier.cpp): only filters; the
// host's view confined by Landlock; namespaces (with Landlock and the filters). Auto: the
// strongest the host allows.
enum class Tier { Seccomp, Landlock, Namespaces, Auto };
const char* to_string(Tier t);
enum class WatchBackend { Inotify, Fanotify };
// output.stdout/stderr: inherit | null | file:PATH | tee:PATH.
struct OutputMode {
    enum class Kind { Inherit, Null, File, Tee };
    Kind kind = Kind::Inherit;
    std::string path;  // File, Tee: an absolute host path
    friend bool operator==(const OutputMode&, const OutputMode&) = default;
};
// watch.on_change: log | restart | signal:NAME.
struct OnChange {
    enum class Kind { Log, Signal, Restart };
    Kind kind = Kind::Log;
    int signal = 0;  // Signal
    friend bool operator==(const OnChange&, const OnChange&) = default;
};

struct Profile {
    std::string description;

    struct Process {
        std::string cwd = "$PWD";
        std::string user = "keep";  // keep | a name | a uid
        std::string group = "keep";
        bool no_new_privs = true;
        bool env_clear = false;
        std::vector<std::string> env_keep;
        std::vector<std::pair<std::string, std::string>> env_set;
        StdinMode stdin_mode = StdinMode::Inherit;
        SessionMode session = SessionMode::New;
    } process;

    struct Namespaces {
        bool user = true, mount = true, pid = true, uts = true, ipc = true, net = true,
             cgroup = true, time = false;
        // The sandbox may make user namespaces of its own (seccomp and the user namespace's
        // max_user_namespaces otherwise refuse them).
        bool nested_user = false;
    } namespaces;

    struct Filesystem {
        std::string root = "tmpfs";  // tmpfs | an absolute directory used as the rootfs
        std::string hostname = "sandbox";
        bool read_only_root = true;  // the root tmpfs is remounted read-only after setup
        std::vector<MountSpec> mounts;
        // Root mode: a writable bind of a directory owned by root maps the sandbox's user to
        // host root (else the sandbox writes there only as its own unprivileged host id).
        bool map_host_root = false;
        // A writable bind may be $HOME, hold it, or lie in one of its dot-directories.
        bool writable_home = false;
        // A writable bind's .git stays writable (else a read-only bind over it).
        bool writable_git = false;
        // tmpfs: a private, writable, empty $HOME (mounts.cpp says where and how large).
        HomeMode home = HomeMode::None;
        // overlay: the writable bind of the working directory becomes an overlay with its
        // changes on a tmpfs (exported with --changes, applied as workspace.commit says).
        WorkspaceMode workspace = WorkspaceMode::Direct;
    } filesystem;

    struct Workspace {
        CommitPolicy commit = CommitPolicy::Never;  // an overlay workspace's changes, after the run
        std::optional<std::uint64_t> size;          // its tmpfs upper (kOverlayUpperSize)
    } workspace;

    struct Limits {
        std::optional<nanoseconds> time;  // wall clock (timerfd)
        std::optional<nanoseconds> cpu;   // RLIMIT_CPU
        std::optional<std::uint64_t> memory, pids, open_files, file_size, core, stack;
        std::optional<double> cpus;  // CPU bandwidth in CPUs (cgroup cpu.max / cfs_quota_us)
        bool optional = false;       // cgroup limits that cannot be set only warn
    } limits;

    struct Seccomp {
        SeccompAction default_action = SeccompAction::allow();  // allow|errno:NAME|kill|log|notify
        std::vector<std::string> deny;                          // syscalls and @groups
        std::vector<std::string> allow;
        int denied_errno = EPERM;  // the errno for denied calls
        bool report = false;       // name each denied syscall (user notification)
        std::vector<SeccompRule> rules;
        bool restrict_suid_sgid = true;  // no set-uid/set-gid files (policy.hpp: implicit rules)
        bool restrict_xattrs = true;     // no extended attributes set (ACLs, file capabilities)
        // Not a key: `butter learn`'s run. Every denial goes to the supervisor (which lets the
        // call run and records it), and so do the path-taking calls the profile allows.
        bool learn = false;
    } seccomp;

    struct Capabilities {
        std::vector<std::string> keep;
        // Kept too when the command runs as uid 0 inside (a container's root).
        std::vector<std::string> keep_as_root;
    } capabilities;

    struct Network {
        NetworkMode mode = NetworkMode::None;
        // mode = "user" (plan/network.cpp): pasta connects the sandbox's own network namespace.
        std::vector<std::string> publish;  // "[tcp:|udp:][ADDRESS:]HOSTPORT:PORT"
        bool host_loopback = false;        // the host's loopback at the gateway's address
        std::vector<std::string> allow;    // "[tcp:|udp:]HOST:PORT": nothing else is reached
        bool audit = false;                // everything reached, every destination recorded
        bool landlock = false;  // Landlock TCP connect rules for the allow-list's ports too
    } network;

    // A Landlock layer over the sandbox's own view (plan/landlock.cpp): what the mounts allow,
    // and nothing else; more paths and TCP ports as the profile says.
    struct Landlock {
        bool enabled = true;
        std::vector<std::string> read, write;  // sandbox paths, beyond the mounts
        std::vector<std::uint16_t> tcp_connect, tcp_bind;
    } landlock;

    // The isolation tier a run gets: `tier` (auto: the strongest the host allows, falling
    // back when it refuses namespaces), never below `minimum`.
    struct Isolation {
        Tier tier = Tier::Auto;
        Tier minimum = Tier::Namespaces;
    } isolation;

    struct Supervise {
        int stop_signal = 15;  // SIGTERM
        nanoseconds stop_timeout = std::chrono::seconds(10);
        RestartPolicy restart = RestartPolicy::No;
        nanoseconds restart_delay = std::chrono::seconds(1);
        // More than restart_burst restarts within restart_interval: give up (a crash loop).
        std::uint64_t restart_burst = 5;
        nanoseconds restart_interval = std::chrono::seconds(10);
        bool notify = false;
    } supervise;

    struct Watch {
        std::vector<std::string> paths;
        OnChange on_change;
        nanoseconds debounce = std::chrono::milliseconds(200);  // a burst of changes counts once
        WatchBackend backend = WatchBackend::Inotify;
    } watch;

    struct Report {
        std::string path;  // "" = no report, "-" = stdout
        bool file_activity = false;
    } report;

    struct Output {
        OutputMode stdout_mode, stderr_mode;
    } output;

    // Where each key was set (dotted key -> position), for later, positioned errors; list
    // elements as "key[i]".
    std::map<std::string, SourceLoc> locs;
    SourceLoc loc_of(const std::string& key) const;
};

// Values substituted for $PWD, $HOME and $UID in path-like strings.
struct Expansion {
    std::string pwd;
    std::string home;
    std::string uid;
    // The caller's environment (getcwd, $HOME, getuid).
    static Expansion from_environment();
};
std::string expand(std::string_view text, const Expansion& x);

// Applies a merged Value tree to a default Profile: unknown keys, wrong types and bad values
// become diagnostics (all of them, not the first).
Profile build_profile(const Value& tree, const Expansion& x, Diagnostics& out);

// The profile as TOML that build_profile accepts back (defaults included).
std::string show_profile(const Profile& p);

struct KeyDoc {
    std::string key;
    std::string type;
    std::string default_text;
    std::string doc;
};
// One entry per key, in table order: for --help output and the man page.
std::vector<KeyDoc> key_docs();

}  // namespace butter::launcher::profile
