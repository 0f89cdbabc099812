// The sandbox's side of spawn: the ordered setup steps that run inside the new namespaces
// (as nsjail's containProc), the minimal init that stays PID 1, and the failure record that
// carries a setup error back to the parent.
#pragma once

#include <signal.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>

#include "plan/plan.hpp"

namespace butter::launcher {

// The setup steps, in order. The parent prints a failure as "STEP[ TARGET]: CALL: errno".
enum class Step : std::uint32_t {
    Namespaces,  // an early child's (spawn.hpp) unshare of the namespaces past user and pid
    IdMaps,
    WaitParent,
    Propagation,
    PrepareBinds,
    Root,
    Mount,
    PivotRoot,
    Proc,
    Sysctl,  // an OCI config's (after pivot_root, before its read-only paths)
    ReadOnlyRoot,
    Hostname,
    Network,
    Rlimits,
    Chdir,
    Stdio,
    Session,
    Identity,
    Capabilities,
    NoNewPrivs,
    CloseFds,
    Landlock,
    Seccomp,
    Exec,
    Init,
    Hooks,  // an OCI config's createContainer and startContainer hooks
};
const char* step_name(Step s);

// One setup error, written by the child with a single write(2) and read by the parent.
struct ChildFailure {
    std::uint32_t step = 0;
    std::int32_t error = 0;   // errno
    std::int32_t mount = -1;  // index into plan.mounts, or -1
    char call[40] = {};       // the failing call, e.g. "open_tree"
    char context[128] = {};   // its argument (a path inside the sandbox), truncated
    // For an error that did not come from the kernel (error 0 in the Error): its text, and
    // its hint, truncated; "error" is then EINVAL only to say "failed".
    char text[128] = {};
    char hint[128] = {};
};

// Messages on the control socket from the sandbox to the supervisor.
struct ControlMessage {
    // KernelLog: no listener could be had (value: the errno of the attempt); the denials go
    // to the kernel log. AuditSession: the audit session id the sandbox took (value, as bits)
    // so that the supervisor tells its records from the rest of the log.
    enum Type : std::uint32_t {
        Listener = 1,
        CommandStatus = 2,
        Timings = 3,
        KernelLog = 4,
        AuditSession = 5,
        Terminal = 6,  // with an fd: the master of the terminal made in the sandbox's devpts
        Changes = 7,   // with an fd: the upper directory of the workspace overlay (plan.changes)
        Ready = 8,     // set up, waiting on ChildChannels::start_fd (an OCI container's create)
        NotifySocket = 9,  // with an fd: the notify relay's socket, bound in the sandbox
        CommandPid = 10    // from the command's process before its exec: its pid, as the
                           // supervisor's SCM_CREDENTIALS says it (the notify relay's)
    };
    std::uint32_t type = 0;
    std::int32_t value = 0;  // CommandStatus: the command's wait status; Timings: the count
};

// CLOCK_MONOTONIC in nanoseconds: the child's step marks and the supervisor's times.
std::int64_t monotonic_ns();

// When each setup step ended (CLOCK_MONOTONIC), collected by the child when the plan asks
// (report or --events) and sent as one Timings message just before seccomp.
struct StepClock {
    struct Mark {
        std::uint32_t step;
        std::uint32_t pad;
        std::int64_t ns;
    };
    static constexpr std::size_t kMax = 24;
    bool on = false;
    std::size_t count = 0;
    Mark marks[kMax]{};
    void mark(Step s);
    // One message on the control socket (nothing when off).
    void send(int control_fd) const;
};

// An fd to the supervisor with the record saying what it is (no allocation: the rlimits may
// hold already).
[[nodiscard]] Result<void> send_fd(int control_fd, ControlMessage::Type type, int fd);
// A terminal's master to an OCI engine's console socket (--console-socket).
[[nodiscard]] Result<void> send_console(int socket_fd, int master);

// The descriptors the child side uses; all close-on-exec.
// The host's device nodes that a dev mount binds, in this order.
inline constexpr std::array<const char*, 6> kDevNodes = {"null",   "zero",    "full",
                                                         "random", "urandom", "tty"};

// A detached recursive clone of a bind's source, read-only if the bind is; `as_slave` for a
// clone made in the host's mount namespace (a clone of a shared mount is its peer).
[[nodiscard]] Result<Fd> clone_bind_source(const MountStep& m, bool as_slave);

// Detached clones of the host's kDevNodes, in that order (invalid where the host lacks one: no
// /dev/tty without a terminal, and the sandbox lacks it too).
std::array<Fd, kDevNodes.size()> clone_dev_nodes();

struct ChildChannels {
    int error_fd = -1;      // write end of the failure pipe: EOF at exec means success
    int control_fd = -1;    // the sandbox end of the control socketpair
    int parent_pidfd = -1;  // the supervisor's pidfd, to notice it died before PDEATHSIG
    int null_fd = -1;       // /dev/null of the host, for stdin = "null"
    int stdout_fd = -1;     // the command's stdout and stderr, or -1 to keep butter's
    int stderr_fd = -1;
    int tty_fd = -1;  // session = "pty": the terminal's slave, the command's controlling tty
    bool wait_for_parent = false;  // block until the supervisor sends "go" (maps, cgroups)
    bool late_cgroup_ns = false;   // unshare the cgroup namespace after "go" (in its cgroup)
    sigset_t original_mask{};      // the caller's signal mask, restored before exec
    bool sigpipe_default = true;   // SIGPIPE back to its default before exec (else ignored)
    bool default_signals = false;  // every signal back to its default before exec (the library:
                                   // what its caller ignores is not the command's business)
    std::vector<int> prepared;     // per plan.mounts entry: a detached tree the parent made, or -1
    // Detached clones the parent made of the host's kDevNodes (-1: the host lacks that one) and
    // of /dev/null for /proc's masks; the child makes them itself when `have_host_trees` is not
    // set.
    std::array<int, kDevNodes.size()> dev_nodes{-1, -1, -1, -1, -1, -1};
    int null_tree = -1;
    bool have_host_trees = false;
    char* const* argv = nullptr;  // the command's, built by the supervisor (CommandArgs)
    // The same behind "/bin/sh" and a slot for the script's path: a file without #! runs
    // under sh, as execvp(3) and shells run it.
    char** sh_argv = nullptr;
    char* const* envp = nullptr;
    std::vector<char*> pid_slots;  // in envp: room for the command's pid (kPidSlot bytes)
    // An OCI container's create (launcher/oci): the child outlives the process that made it
    // (no parent-death signal; a failure is also a line on its stderr), and once set up it
    // sends Ready and waits for a byte on `start_fd` (a FIFO: `butter oci start` writes it)
    // before its last steps. `join_ns`: namespaces it enters (setns) before the mounts.
    bool detached = false;
    int start_fd = -1;
    std::vector<std::pair<int, int>> join_ns;  // (fd, CLONE_NEW* of the kind it must be)
    // process.terminal with a console socket: the terminal is made in the container's devpts
    // (plan.pty_ptmx) and its master sent there instead of to the supervisor.
    int console_fd = -1;
    // The container's state (JSON) for its createContainer and startContainer hooks: a memfd
    // the runtime fills before "go" (read from offset 0 after it).
    int hook_state_fd = -1;
    // A pool's sandbox (pool/pool.hpp): set up, it sends Ready and waits on this socket for its
    // command (pool::Command with stdio as SCM_RIGHTS) before its last steps; a fork-like
    // child only (it allocates the command's strings).
    int command_fd = -1;
};

// An OCI config's hook: forked with `state` (JSON) on its stdin, in its own process group
// (killed with it after its timeout); an error unless it exits 0.
[[nodiscard]] Result<void> run_hook(const SandboxPlan::Hook& hook, const std::string& state);
// The createContainer or startContainer hooks (plan.*_container_hooks), each with the state
// from ch.hook_state_fd. Returns the first failure.
[[nodiscard]] Result<void> run_container_hooks(const std::vector<SandboxPlan::Hook>& hooks,
                                               const ChildChannels& ch);

// Room for a pid in decimal with its NUL.
constexpr std::size_t kPidSlot = 12;

// The command's argv and envp for execve, built in the supervisor before the clone: the
// plan's strings, and for each of plan.pid_env a variable with kPidSlot bytes of room.
struct CommandArgs {
    std::vector<std::string> env;
    std::vector<char*> argv, envp;
    std::vector<char*> sh_argv;  // "/bin/sh", (the path), argv[1..], nullptr
    std::vector<char*> pid_slots;
    explicit CommandArgs(const SandboxPlan& plan);
    CommandArgs(const CommandArgs&) = delete;  // the pointers point into env
    CommandArgs& operator=(const CommandArgs&) = delete;
};

// Runs every setup step and execs the command (with a PID 1 init in front when the plan has a
// pid namespace). Never returns: on failure writes a ChildFailure and _exits 125.
[[noreturn]] void run_child(const SandboxPlan& plan, const ChildChannels& ch);

// --- steps, in child/*.cpp ---------------------------------------------------------------------

// Failure bookkeeping for the step functions.
struct StepError {
    Step step;
    int mount = -1;
    Error error;
};

// rootfs.cpp: propagation, the new root with every mount in order, pivot_root, /proc hardening,
// the read-only root.
Result<void> build_rootfs(const SandboxPlan& plan, const ChildChannels& ch, StepError& where);

// identity.cpp: ids, capabilities, no_new_privs.
Result<void> set_identity(const SandboxPlan& plan);
Result<void> drop_privileges(const SandboxPlan& plan, StepError& where);
// plan.oci_caps: the ids and the config's capability sets, then no_new_privs.
Result<void> set_oci_identity(const SandboxPlan& plan, StepError& where);

// exec.cpp: the command's last steps (session, stdin, fds, seccomp) and execve.
[[noreturn]] void exec_command(const SandboxPlan& plan, const ChildChannels& ch, StepClock& clock);
// init.cpp: PID 1 of the sandbox: reap everything, forward signals to `command`, report its
// status to the supervisor, exit when it exits (the kernel then kills what is left).
// prepare_init_signals runs before the command is forked and returns the set init waits on.
sigset_t prepare_init_signals(const SandboxPlan& plan);
[[noreturn]] void run_init(const ChildChannels& ch, pid_t command, const sigset_t& set, uid_t uid,
                           gid_t gid);

// chdir to `cwd` resolved inside the root (openat2 RESOLVE_IN_ROOT, no magic link): a symlink
// that the sandbox or its image planted there, or /proc/self/fd/N, never leads out of it.
Result<void> enter_cwd(const std::string& cwd);

// PR_SET_PDEATHSIG(SIGKILL), then false if the supervisor is already gone. Needed again after
// every credential change (setresuid, capset), which clears it.
bool rearm_parent_death(const ChildChannels& ch);

// From here on (an OCI container started: its creator is gone), die() also writes the failure
// as a line on stderr.
void report_failures_on_stderr();
// Writes the failure record and _exits 125.
[[noreturn]] void die(const ChildChannels& ch, Step step, const Error& e, int mount = -1);

}  // namespace butter::launcher
