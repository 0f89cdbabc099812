// Profile + command line + host facts (plan/host.hpp) -> SandboxPlan: every decision made, every
// path resolved, the seccomp program compiled. It reads the host only through HostFacts, so it
// is unit-testable against a host of the test's making; the last point where errors carry
// FILE:LINE:COL.
#pragma once

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <butter/capabilities.hpp>
#include <butter/namespace.hpp>
#include <butter/seccomp.hpp>

#include "profile/diagnostic.hpp"
#include "profile/network_spec.hpp"
#include "profile/schema.hpp"
#include "seccomp/builtin.hpp"

namespace butter::launcher {

// The bounds of the tmpfs butter makes for a sandbox outside the profile's own tmpfs mounts:
// the root (where /dev and /dev/shm live, unless the dev mount has a size) and a dev mount's.
inline constexpr std::uint64_t kSandboxTmpfsSize = 64ULL << 20;
inline constexpr std::uint64_t kSandboxTmpfsInodes = 16384;
// An overlay's tmpfs upper without a size: what the sandbox may change (its pages count
// against the sandbox's memory limit too).
inline constexpr std::uint64_t kOverlayUpperSize = 1ULL << 30;

struct MountStep {
    profile::MountType type = profile::MountType::Bind;
    std::string source;  // bind: absolute host path; symlink: the link text
    std::string target;  // normalized absolute path inside the sandbox
    bool read_only = false;
    bool source_is_dir = true;  // bind: a directory (else a file: the target is a file)
    bool idmap = false;         // root mode: a bind idmapped (the sandbox's ids as its owners)
    uid_t source_uid = 0;       // bind: the owner of the source (for idmap)
    gid_t source_gid = 0;
    // bind: what `source` (every symlink resolved) named at planning; opened again without
    // following a symlink and checked against this before it is cloned (host_path.hpp).
    dev_t source_dev = 0;
    ino_t source_ino = 0;
    // idmap: the sandbox's user and group write as the source's owner and group; where one
    // is host root (0) and the profile does not say filesystem.map_host_root, as themselves.
    bool map_owner = true, map_group = true;
    std::string options;   // tmpfs/dev: "size=...,mode=..."
    unsigned mode = 0755;  // dir; dev: the directory's mode
    // bind: a layer of the overlay step after it, not mounted at `target`: a lower one
    // (read-only), or the host directory that holds the upper one (writable).
    bool layer = false;
    // overlay: how many steps right before it are its layers (its lowers, top first, then its
    // upper directory unless the upper is a tmpfs, whose options are `options`).
    unsigned layers = 0;
    // kernel (an OCI config's mounts): the file system's type ("sysfs", "devpts", "cgroup2",
    // "tmpfs", ...), its MS_* flags (`options` is its data); bind: MOUNT_ATTR_* bits for the
    // clone beyond read_only (nosuid, nodev, noexec).
    std::string fstype;
    unsigned long flags = 0;
    std::uint64_t attrs = 0;
    // dev, proc: the mount point is a directory of the tmpfs root itself (no other mount above
    // it). dev without a size then binds that directory in place instead of mounting a tmpfs;
    // proc's masked directories get a read-only view of the empty one under the proc mount
    // instead of a tmpfs each. A superblock fewer to make and to tear down: ~0.1 ms a run each.
    bool on_root_fs = false;
};

// Where the command's stdout or stderr goes (profile.hpp's, as the profile says it).
using OutputSpec = profile::OutputMode;

struct Rlimit {
    int resource = 0;
    rlim_t value = 0;                 // the soft limit, and the hard one unless `hard` says
    std::optional<rlim_t> hard = {};  // (OCI process.rlimits)
};
// Every resource limit by its name, and "RLIMIT_NOFILE" for RLIMIT_NOFILE.
inline constexpr std::pair<int, const char*> kRlimitNames[] = {
    {RLIMIT_AS, "RLIMIT_AS"},
    {RLIMIT_CORE, "RLIMIT_CORE"},
    {RLIMIT_CPU, "RLIMIT_CPU"},
    {RLIMIT_DATA, "RLIMIT_DATA"},
    {RLIMIT_FSIZE, "RLIMIT_FSIZE"},
    {RLIMIT_LOCKS, "RLIMIT_LOCKS"},
    {RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"},
    {RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"},
    {RLIMIT_NICE, "RLIMIT_NICE"},
    {RLIMIT_NOFILE, "RLIMIT_NOFILE"},
    {RLIMIT_NPROC, "RLIMIT_NPROC"},
    {RLIMIT_RSS, "RLIMIT_RSS"},
    {RLIMIT_RTPRIO, "RLIMIT_RTPRIO"},
    {RLIMIT_RTTIME, "RLIMIT_RTTIME"},
    {RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"},
    {RLIMIT_STACK, "RLIMIT_STACK"}};
const char* rlimit_name(int resource);

// network.mode = "user": where butter answers the sandbox's DNS (its own loopback, as
// systemd-resolved's stub), and the netlink log group its nftables rules report to.
inline constexpr const char* kResolver = "127.0.0.53";
inline constexpr int kNflogGroup = 1;

struct SandboxPlan {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "KEY=VALUE"
    // Indexes into env of "NAME=" entries the child completes with the command's own pid
    // (LISTEN_PID, WATCHDOG_PID).
    std::vector<std::size_t> pid_env;
    int listen_fds = 0;  // socket activation: fds 3 .. 3+n-1 pass to the command
    // Where execve looks for argv[0] inside the sandbox (PATH search done in the child).
    std::vector<std::string> exec_candidates;
    std::string cwd;

    // The isolation tier (plan/tier.cpp): namespaces, or below it the host's own view confined
    // by Landlock (landlock) or by the filters alone (seccomp); below the strongest, why.
    profile::Tier tier = profile::Tier::Namespaces;
    std::string tier_reason;
    // The profile's isolation.tier was "auto" (a refused tier may fall back), and its minimum.
    bool tier_auto = true;
    profile::Tier tier_minimum = profile::Tier::Namespaces;
    // What the profile asks for that the tier does not give (the report's isolation.uncovered,
    // the notice on stderr): "pid namespace", "tmpfs /run", ...
    std::vector<std::string> uncovered;
    // Below namespaces: the private directory (PlanOptions::private_dir) whose tmp/ and home/
    // are the command's TMPDIR and HOME.
    std::string private_dir;

    Namespaces namespaces;
    bool privileged = false;  // butter runs as root (a uid range, idmapped binds)
    // User namespace maps; written by the child itself when `child_writes_maps`, else by the
    // parent before it lets the child go.
    std::vector<IdMapping> uid_map, gid_map;
    bool child_writes_maps = true;
    uid_t setup_uid = 0;  // ids the child takes as soon as the maps exist
    gid_t setup_gid = 0;
    // An OCI container that joined a user namespace by path (spawn.hpp's user_ns_fd): its
    // maps are that namespace's; the child takes setup_uid/gid in it before anything else.
    bool joined_user_ns = false;
    uid_t uid = 0;  // the command's ids inside
    gid_t gid = 0;
    bool clear_groups = false;    // setgroups(0) (possible when the parent wrote the maps)
    std::vector<gid_t> groups;    // else, when not empty: setgroups(groups) (OCI additionalGids)
    std::optional<mode_t> umask;  // the command's umask (OCI process.user.umask)
    // The sandbox's user namespace gets user.max_user_namespaces = 0 (namespaces.nested_user
    // = false): no user namespace below it, whatever the filter lets through.
    bool no_nested_user = false;

    std::string root_dir;  // "" for a fresh tmpfs root
    // The tmpfs root's options: sized, as /dev and /dev/shm may be directories of it that the
    // sandbox writes (an unbounded tmpfs is host memory that no process owns).
    std::string root_options;
    dev_t root_dev = 0;            // root_dir's identity at planning (as MountStep::source_dev)
    std::uint64_t root_attrs = 0;  // MOUNT_ATTR_* on root_dir's clone and every mount below it
    ino_t root_ino = 0;
    bool read_only_root = true;
    std::vector<MountStep> mounts;
    bool has_proc = false;
    std::string hostname;
    std::string domainname;  // "" keeps the uts namespace's
    bool loopback_up = false;
    // An OCI container (launcher/oci): the command is the sandbox's first process (no init in
    // front of it); after the mounts, each masked path gets an empty read-only view (/dev/null
    // over a file), each read-only path a read-only bind of itself, each sysctl its value
    // (/proc/sys, the namespace's own); the seccomp filter loads before the ids and
    // capabilities change when no_new_privs is off (loading it then needs CAP_SYS_ADMIN).
    bool no_init = false;
    std::vector<std::string> masked_paths, readonly_paths;
    std::vector<std::pair<std::string, std::string>> sysctls;
    // linux.devices: nodes made in the container (mknod; in a user namespace, where no node
    // can be made, the host's node at the same path, of the same kind and numbers, is bound).
    // Each is a read-only bind without nodev over itself: usable where every other mount is
    // nodev, and never chmod'ed or chown'ed through.
    struct Device {
        std::string path;       // absolute, in the container
        mode_t type = S_IFCHR;  // S_IFCHR, S_IFBLK or S_IFIFO
        unsigned major = 0, minor = 0;
        mode_t mode = 0666;
        uid_t uid = 0;
        gid_t gid = 0;
    };
    std::vector<Device> devices;
    // hooks.createContainer (run in the container's namespaces after its mounts, before
    // pivot_root: the path is the runtime's) and hooks.startContainer (after start, before
    // the command: the path is the container's), child.hpp's run_container_hooks.
    struct Hook {
        std::string path;
        std::vector<std::string> args, env;
        int timeout = 0;  // seconds; 0: none
    };
    std::vector<Hook> create_container_hooks, start_container_hooks;
    bool seccomp_early = false;
    // network.mode = "user" (plan/network.cpp, supervise/network.cpp): pasta connects the
    // sandbox's network namespace to the host's; butter answers its DNS at kResolver and,
    // with network.allow or audit, nftables rules in that namespace (loaded by nft before
    // the command runs) refuse or record what it reaches.
    struct UserNetwork {
        bool on = false;
        std::string pasta;  // root's own programs, exec'd through a descriptor of this identity
        dev_t pasta_dev = 0;
        ino_t pasta_ino = 0;
        std::vector<std::string> pasta_args;  // between the program's name and the sandbox's pid
        std::string nft;                      // with a ruleset
        dev_t nft_dev = 0;
        ino_t nft_ino = 0;
        std::string ruleset;  // nft -f's input; "" none
        std::vector<profile::AllowEntry> allow;
        bool filter = false;  // network.allow: what it does not list is refused
        bool audit = false;
        std::string dns_server;  // the host's, where queries go on
    } net;
    std::string resolv_conf;  // the sandbox's /etc/resolv.conf, when butter makes it
    // The notify relay's socket, when butter relays sd_notify: the child binds it at this path
    // in a tmpfs of its own and hands it to the supervisor (ControlMessage::NotifySocket), so
    // that no host path reaches it.
    std::string notify_socket;
    std::vector<Rlimit> rlimits;
    // Cgroup limits (created at spawn, below butter's own cgroup).
    std::optional<std::uint64_t> memory_limit, pids_limit;
    std::optional<double> cpus;
    bool limits_optional = false;

    // Landlock scopes the command is confined to (a raw LandlockScopes): with the host's
    // network, the host's abstract unix sockets (X11, D-Bus, container shims) stay out of reach.
    std::uint64_t landlock_scopes = 0;
    // The Landlock layer (plan/landlock.cpp): the kernel's ABI (0: none), the filesystem and
    // TCP rights it handles (raw LandlockFsAccess / LandlockNetAccess: denied unless a rule
    // allows them), and the rules: sandbox paths, and ports.
    int landlock_abi = 0;
    std::uint64_t landlock_fs = 0, landlock_net = 0;
    struct LandlockPath {
        std::string path;
        std::uint64_t access = 0;
        // The landlock tier's rules are host paths (every symlink resolved at planning): the
        // child opens them again without following one and checks they are still this object.
        dev_t dev = 0;
        ino_t ino = 0;
    };
    std::vector<LandlockPath> landlock_paths;
    struct LandlockPort {
        std::uint16_t port = 0;
        std::uint64_t access = 0;
    };
    std::vector<LandlockPort> landlock_ports;
    CapabilitySet keep_caps;
    // An OCI config's sets, each as given (launcher/oci), in place of keep_caps: the bounding set
    // lowered while root, the ids changed keeping the permitted set, then the rest set.
    struct CapabilitySets {
        CapabilitySet bounding, effective, permitted, inheritable, ambient;
    };
    std::optional<CapabilitySets> oci_caps;
    bool no_new_privs = true;
    BpfProgram seccomp;
    bool seccomp_listener = false;
    // The listener's receiver answers with one byte once it has handed it on (the OCI runtime,
    // to the seccomp agent): the process waits for it, and never runs with no one to answer.
    bool seccomp_listener_ack = false;
    // The command is a child subreaper (PR_SET_CHILD_SUBREAPER, kept across its exec): an OCI
    // container in a joined pid namespace without a cgroup, whose orphans would otherwise go
    // to that namespace's init and out of the runtime's sight.
    bool child_subreaper = false;
    // seccomp.report where no listener can be had (seccomp/kernel_log.hpp): the program with
    // its notifications as errno, and the one that logs those denials.
    BpfProgram seccomp_base, seccomp_logged;
    int seccomp_errno = EPERM;
    // `butter learn`'s run (profile Seccomp::learn): the supervisor lets each denied call run
    // and records it, and records the paths of the traced calls (policy.hpp). Argument rules'
    // denials never reach it: the kernel answers them.
    bool learn = false;
    bool learn_suid_sgid = true, learn_xattrs = true;  // the profile's restrict_* (policy.hpp)
    // seccomp.report in an allow list (default denies): the deny list's syscalls, which
    // seccomp.allow does not open (the report's hints say to remove them from seccomp.deny).
    std::set<std::string> seccomp_listed_denials;
    std::set<std::string> learn_traced;  // the path calls that go to the supervisor

    bool stdin_null = false;
    bool new_session = true;
    bool pty = false;  // the command's stdio is a pseudo-terminal butter proxies
    // pty: the sandbox's own ptmx (its dev mount's), where the child makes the terminal and
    // sends butter the master; empty: butter makes it in its own devpts.
    std::string pty_ptmx;
    std::optional<std::chrono::nanoseconds> time_limit;
    int stop_signal = 15;
    std::chrono::nanoseconds stop_timeout{};
    std::vector<int> forward_signals;
    profile::RestartPolicy restart = profile::RestartPolicy::No;
    std::chrono::nanoseconds restart_delay{};
    unsigned restart_burst = 5;
    std::chrono::nanoseconds restart_interval{};

    OutputSpec stdout_spec, stderr_spec;
    // [watch]: host paths, and what a change does (one of them).
    struct WatchPath {
        std::string path;  // resolved (host_path.hpp)
        dev_t dev = 0;     // what it named at planning
        ino_t ino = 0;
    };
    std::vector<WatchPath> watch_paths;
    profile::OnChange on_change;
    std::chrono::nanoseconds watch_debounce{};
    bool watch_fanotify = false;  // watch.backend = "fanotify"

    // --changes and filesystem.workspace = "overlay": the overlay of the working directory,
    // whose tmpfs upper the child sends the supervisor; what happens to its changes after the
    // run (supervise/changes.hpp).
    struct Changes {
        int mount = -1;    // index into mounts of the overlay step; -1: none
        std::string path;  // --changes FILE (absolute), "-" to list them, "" neither
        profile::CommitPolicy commit = profile::CommitPolicy::Never;
        std::string workspace;  // the host directory under the overlay (the lower)
        dev_t dev = 0;
        ino_t ino = 0;
    } changes;

    std::string report_path;  // "" none, "-" stdout
    bool file_activity = false;
    bool record_steps = false;  // the child reports its setup timings (report, --events)
    bool notify = false;

    // The profile's source positions, kept for messages after planning.
    std::string description;
};

// CLI additions on top of the profile.
// The nftables ruleset of network.mode = "user": the way in (published ports and replies),
// and the way out with network.allow (`filter`) or network.audit (plan/network.cpp).
std::string nft_ruleset(const std::vector<profile::AllowEntry>& allow, bool filter, bool audit,
                        const std::vector<profile::Publish>& publish = {});

struct PlanOptions {
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> binds;     // --bind SRC[:DST]
    std::vector<std::pair<std::string, std::string>> ro_binds;  // --ro-bind SRC[:DST]
    std::optional<std::chrono::nanoseconds> timeout;            // --timeout
    std::optional<std::string> report;                          // --report FILE|-
    std::optional<std::string> changes;                         // --changes FILE|-
    bool events = false;                                        // --events FD
    std::optional<bool> force_privileged;  // plan as root / not root (tests); default: euid
    // Socket activation: fds 3 .. 3+n-1 that butter was started with (socket_activation_fds).
    int listen_fds = 0;
    // Programs compiled at build time (seccomp/builtin.hpp): the butter program passes its own.
    std::span<const seccomp::BuiltinProgram> builtin_programs;
    // The tier to plan for, instead of the profile's isolation.tier (a fallback after the host
    // refused the namespaces: `tier_reason` says how).
    std::optional<profile::Tier> tier;
    std::string tier_reason;
    // Below namespaces: a directory of the caller's, made for this run (PrivateDir), for the
    // command's TMPDIR and HOME.
    std::string private_dir;
    // The host the plan is made for (plan/host.hpp); nullptr: this one.
    const class HostFacts* host = nullptr;
};

// Builds the plan; nullopt when a diagnostic is an error (all of them are in `out`).
std::optional<SandboxPlan> make_plan(const profile::Profile& p, const PlanOptions& o,
                                     profile::Diagnostics& out);

// After the host refused the namespaces of `plan` (made for isolation.tier = "auto"): the
// tier to plan next (landlock where the kernel has Landlock, else seccomp), or nullopt where
// the profile allows none (not auto, or isolation.minimum = "namespaces").
std::optional<profile::Tier> next_tier(const SandboxPlan& plan, int landlock_abi);

// "/a//b/./c/" -> "/a/b/c"; nullopt when it holds ".." or is not absolute.
std::optional<std::string> normalize_target(const std::string& path);

}  // namespace butter::launcher
