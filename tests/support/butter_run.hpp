// Running the real butter binary from tests: as root or as nobody, in a given directory,
// optionally with a leaked fd, capturing stdout, stderr and the exit status.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "stage.hpp"

namespace butter::test {

struct RunResult {
    int code = -1;  // exit status, or 128 + signal
    std::string out;
    std::string err;
};

struct RunOptions {
    bool as_nobody = false;
    std::string cwd;   // "" = the test's cwd
    int leak_fd = -1;  // if >= 0, an open fd at this number (not close-on-exec) in butter
    std::vector<std::string> env;  // extra KEY=VALUE
    std::string stdout_file;       // non-empty: butter's stdout goes to this file, not captured
    int stdout_fd = -1;            // >= 0: butter's stdout is this fd (a pipe or pty no one reads)
    int listen_fd = -1;  // socket activation: this fd becomes butter's fd 3 with LISTEN_* set
    int forged_listen_fds = 0;  // LISTEN_PID=<butter's pid> LISTEN_FDS=N, without any such fds
    std::string fd5_file;       // non-empty: butter gets this file open for writing as fd 5
    int fd5 = -1;               // >= 0: butter gets this fd as fd 5 (a pipe no one reads)
    std::string leak_path = "/etc/hostname";  // what leak_fd has open (a directory works)
    // butter's stdin: /dev/null, or a pipe holding this (set), or `ctty`.
    std::optional<std::string> stdin_data;
    std::string ctty;     // non-empty: a new session with this terminal as controlling tty
                          // and stdin (the TIOCSTI tests)
    std::string program;  // non-empty: run this instead of butter (the tests' controls)
    // butter runs under a seccomp filter holding a user-notification listener (fd 90), as in a
    // sandbox whose manager intercepts syscalls: the kernel refuses butter's own (EBUSY).
    bool outer_listener = false;
    // butter runs in a user namespace of its own (with as_nobody: nobody's) whose limit of
    // network namespaces (user.max_net_namespaces, per namespace) is 0: none can be had.
    bool no_net_namespaces = false;
    // The same with user.max_user_namespaces = 0: no user namespace can be had (a hardened
    // host's sysctl, without touching this host's).
    bool no_user_namespaces = false;
    // butter runs under a seccomp filter that refuses user namespaces as Docker's default
    // profile does: clone and unshare with CLONE_NEWUSER fail with EPERM, clone3 with ENOSYS.
    bool deny_user_namespaces = false;
};

// The butter binary, the probe and the hostile program, from the build (BUTTER_BIN,
// BUTTER_PROBE, BUTTER_HOSTILE), where the user nobody can reach them (stage.hpp).
const char* butter_bin();
const char* probe_bin();
const char* hostile_bin();

// Runs `butter ARGS...` and waits.
RunResult run_butter(const std::vector<std::string>& args, const RunOptions& o = {});

// Starts `butter ARGS...` without waiting: the pid and its stdout read end.
struct Started {
    pid_t pid = -1;
    int out_fd = -1;
};
Started start_butter(const std::vector<std::string>& args, const RunOptions& o = {});
// Reads a line from a started butter's stdout (waits up to `ms`).
std::string read_line(int fd, int ms = 5000);
// Waits for a started butter; returns its exit status as RunResult::code.
int wait_butter(pid_t pid);

// The host's mount table (/proc/self/mountinfo) without the mounts container engines make for
// their own storage (podman's overlays and shm under /var/lib/containers and /run/containers):
// the OCI tests run podman beside the tests that check that nothing else changed it.
std::string host_mount_table();

// Host pids whose command line contains `needle`.
std::vector<pid_t> pids_matching(const std::string& needle);

}  // namespace butter::test
