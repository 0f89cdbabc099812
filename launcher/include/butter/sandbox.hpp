// butter::Sandbox: run commands in sandboxes from a program of your own (a CI runner, a test
// harness, an agent, a build system), as the butter program does: the same profiles, the same
// isolation, the same outcome as its JSON report.
//
//     auto profile = butter::SandboxProfile::load("ci");          // or builtin(), parse(TOML)
//     if (profile) (void)profile->set("limits.memory", "\"1G\"");  // --set, in code
//     butter::SandboxOptions o;
//     o.command = {"make", "test"};
//     auto outcome = butter::run_sandbox(*profile, o);            // or on your EventLoop:
//
//     auto box = butter::Sandbox::create(*profile, o);
//     (void)box->start(loop);
//     butter::Result<butter::SandboxOutcome> r = co_await box->wait();
//
// Several sandboxes may run at once on one loop. Link with butter::sandbox (CMake) or
// `pkg-config butter-sandbox`.
//
// Profiles by name are looked up where the butter program looks: $BUTTER_PROFILE_PATH, then
// the profiles directory of the prefix libbutter-sandbox was configured for (an install moved
// to another prefix with `cmake --install --prefix` needs BUTTER_PROFILE_PATH), then the
// built-in default.
//
// What the API needs from its caller (the first two are checked with a clear Error):
// - SIGCHLD neither ignored nor SA_NOCLDWAIT: the kernel would reap the sandbox before its
//   status could be read. A SIGCHLD handler of your own must reap only your own children
//   (waitpid(pid), not waitpid(-1)): one that reaps every child takes the sandbox's status,
//   and wait() then fails with ECHILD.
// - A profile with a pid namespace (namespaces.pid = true, every shipped profile's): without
//   one, what the command leaves behind could only be found by making this whole process a
//   child subreaper. And not process.session = "pty" (it puts your terminal in raw mode).
// - (Not checked:) the loop a sandbox started on is run by its thread until wait()
//   completes; a sandbox is used from that thread only. Other threads of the process may do
//   anything meanwhile.
// - The sandbox is killed if the thread that started it exits once it runs (its parent-death
//   signal is tied to that thread, as for any child).
// What it leaves alone: the process's signal mask and dispositions, its dumpable flag, its
// memory (no code pages dropped, no malloc_trim), its descriptors (every one it opens is
// close-on-exec, and those of a run are closed when the run ends, with its cgroups), its
// cgroup (the sandbox's are made below it; on cgroup v2 the kernel allows that only below a
// cgroup without processes: a delegated one, e.g. from `systemd-run --scope -p Delegate=yes`,
// that your process leaves for a leaf by calling butter::enable_subtree_controller(h, "memory",
// true) (butter/cgroup.hpp) at start-up for each controller; the butter program does that
// itself, the library never moves your process), its terminal. A write to a stream whose reader is
// gone is EPIPE for the library, never a SIGPIPE for the process. Starting a sandbox forks the
// calling thread once (glibc's fork, then a clone from that copy: posix_spawn's guarantees for a
// multithreaded caller).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <butter/error.hpp>
#include <butter/loop.hpp>
#include <butter/task.hpp>

namespace butter {

// A profile (butter-profile(5)), resolved (extends, defaults) and checked. Errors name the file,
// line and column, as `butter check` prints them.
class SandboxProfile {
  public:
    // The built-in default: what `butter run` uses without -p.
    static SandboxProfile builtin();
    // A file (a path with '/' or ending in .toml) or a name on the profile search path
    // ($BUTTER_PROFILE_PATH, ~/.config/butter/profiles, /etc/butter/profiles, the installed
    // ones). Files that others could have written are refused, as by the butter program.
    [[nodiscard]] static Result<SandboxProfile> load(const std::string& name_or_path);
    // TOML text; `origin` names it in errors ("<string>:3:5: ...").
    [[nodiscard]] static Result<SandboxProfile> parse(std::string_view toml,
                                                      const std::string& origin = "<string>");
    // One key, as `butter run --set KEY=VALUE` (VALUE in TOML: "\"512M\"", "false", "[...]"),
    // applied after the profile's own; checked now as `butter check` checks a profile (what
    // depends on the host, such as user and group names, syscall names or an rlimit above the
    // hard limit, is checked by Sandbox::create).
    [[nodiscard]] Result<void> set(std::string_view key, std::string_view toml_value);
    // The resolved profile as TOML (`butter show`).
    std::string to_toml() const;

    struct Source;  // sandbox.cpp

  private:
    explicit SandboxProfile(std::shared_ptr<const Source> s) : source_(std::move(s)) {}
    std::shared_ptr<const Source> source_;
    friend class Sandbox;
};

struct SandboxOptions {
    std::vector<std::string> command;  // argv; argv[0] is looked up in the sandbox's PATH
    struct Bind {
        std::string source;  // a host path
        std::string target;  // "" for the same path inside
    };
    std::vector<Bind> binds, ro_binds;                // as --bind and --ro-bind
    std::optional<std::chrono::nanoseconds> timeout;  // as --timeout (limits.time)
    // Where the command's stdout and stderr go when the profile says "inherit" (and where
    // "tee" copies them): descriptors of the caller's, borrowed for the run.
    int stdout_fd = 1, stderr_fd = 2;
    // Events as `butter run --events` writes them, one JSON object each, as they happen.
    std::function<void(std::string_view json)> on_event;
    // Log lines ("butter: ..."): warnings (verbosity 1), or every step (2). None by default.
    std::function<void(std::string_view line)> on_log;
    int verbosity = 1;
};

// How a run ended: the same data as the JSON report (README.md's "The report").
struct SandboxOutcome {
    enum class Kind { Exited, Signaled, TimedOut, SetupFailed, ExecFailed };
    // Why butter ended the command, if it did.
    enum class Stop { None, TimeLimit, StopRequest, Oom, RestartLimit };
    Kind kind = Kind::Exited;
    Stop stop = Stop::None;
    int code = 0;         // Exited: the exit code
    int signal = 0;       // Signaled: the signal
    int exec_errno = 0;   // ExecFailed
    std::string message;  // SetupFailed / ExecFailed: one line naming the step, path and errno
    // SetupFailed: the host refused the namespaces (creating them, their id maps, the root's
    // mounts, lo): a lower isolation tier may still run (profile isolation.*).
    bool isolation_refused = false;

    std::chrono::nanoseconds wall{}, user_cpu{}, system_cpu{};
    std::uint64_t max_rss_bytes = 0;
    std::optional<std::uint64_t> peak_memory, peak_pids;  // from the cgroup, when there is one
    std::vector<std::string> limits_hit;                  // "time", "memory", "pids"
    // The cgroup limits and how each held: "cgroup v1 memory.limit_in_bytes", an rlimit that
    // stood in for a cgroup that could not be made, or "none" (limits.optional).
    struct LimitHeld {
        std::string limit;  // "memory", "pids", "cpus"
        std::string how;
    };
    std::vector<LimitHeld> limits_held;
    unsigned restarts = 0;
    std::map<std::string, unsigned> denied;  // syscall name -> count (seccomp.report)
    // How long the sandbox's denied calls waited because butter answers a bounded number a
    // second (its CPU is outside the sandbox's cgroup).
    std::chrono::nanoseconds denials_throttled{};
    std::vector<std::pair<std::string, std::chrono::nanoseconds>> setup_steps;
    std::vector<std::string> files_created, files_modified, files_deleted;
    std::string files_backend;   // "fanotify" or "inotify" ("" if the run never got that far)
    bool files_partial = false;  // the lists were cut at a bound, or missed what was not followed
    // An overlay workspace's changes (--changes, filesystem.workspace = "overlay"): counted
    // after the run, and whether workspace.commit applied them.
    struct Changes {
        std::uint64_t added = 0, modified = 0, deleted = 0, bytes = 0;
        bool committed = false;
    };
    std::optional<Changes> changes;
    // network.mode = "user": each name the sandbox asked butter's DNS and, with network.allow
    // or network.audit, each destination it tried, with butter's verdict: "allowed",
    // "refused", or "audit" (not allowed, let through by network.audit).
    struct NetworkUse {
        std::string kind;  // "dns" or "connection"
        std::string name;  // the DNS name ("" for a connection to an address no answer gave)
        std::string address;
        std::uint16_t port = 0;
        std::string protocol;  // "tcp", "udp", "icmp", ... ("" for dns)
        std::string verdict;
        unsigned count = 0;
    };
    std::vector<NetworkUse> network;
    std::size_t network_dropped = 0;  // past the record's bound: counted, not listed
    // `butter learn`'s run: what the command did that its profile would not have given (each
    // denied call, let run, with the first arguments seen) and every path its traced calls
    // named (as the sandbox saw it).
    struct Learned {
        struct Call {
            unsigned count = 0;
            bool refused = false;                // answered as the profile says, not run
            std::set<std::uint64_t> arg0, arg1;  // the values seen, up to kMaxValues each
        };
        std::map<std::string, Call> syscalls;
        enum Use : unsigned { Read = 1, Write = 2, Exec = 4, Create = 8, Remove = 16, List = 32 };
        std::map<std::string, unsigned> paths;  // path -> Use bits
        std::set<int> pids;                     // the processes seen (up to kMaxPids)
        int max_fd = -1;       // the highest descriptor a process had when it opened a file
        bool partial = false;  // something came past a bound
        static constexpr std::size_t kMaxPaths = 65536, kMaxValues = 64, kMaxPids = 65536;
    };
    Learned learned;
    std::optional<std::uint64_t> stdout_bytes, stderr_bytes;  // tee mode: what the command wrote
    std::string output_error;
    std::string report;  // the JSON report (the library's runs; written to report.path too)
    // butter failed after the run (exporting or committing the changes): `message` says how,
    // and the exit status is 125 whatever the command's own.
    bool failed_after = false;

    // The butter program's exit status for it: the command's own, 128+N, 124 (time limit),
    // 125 (set-up failed), 126 (not executable), 127 (not found).
    int exit_status() const;
};

class Sandbox {
  public:
    // Plans the run against this host (every path resolved, the seccomp program compiled):
    // nothing runs yet. Errors: the profile's (FILE:LINE:COL: ...), an option's, or a
    // requirement above that the profile does not meet.
    [[nodiscard]] static Result<Sandbox> create(const SandboxProfile& profile,
                                                SandboxOptions options);
    Sandbox(Sandbox&&) noexcept;
    Sandbox& operator=(Sandbox&&) noexcept;
    // A sandbox still running is killed (SIGKILL to all of it) and reaped.
    ~Sandbox();

    // Starts it (once) on `loop`, which must outlive it; checks SIGCHLD first.
    [[nodiscard]] Result<void> start(EventLoop& loop);
    // Its outcome, once it has ended: `co_await sandbox.wait()` on the loop.
    Task<Result<SandboxOutcome>> wait();
    // The profile's stop signal to the command, SIGKILL to the rest after its grace period (as
    // SIGTERM to the butter program); no restart after it.
    void stop();
    // `sig` to the command's first process (its init with a pid namespace forwards it).
    void signal(int sig);
    // The sandbox's first process while one runs, else 0.
    pid_t pid() const;
    bool done() const;

  private:
    struct Impl;
    explicit Sandbox(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// create, start and wait, on a loop of its own.
[[nodiscard]] Result<SandboxOutcome> run_sandbox(const SandboxProfile& profile,
                                                 SandboxOptions options);

}  // namespace butter
