// Warm start: `butter pool start NAME` keeps sandboxes of one profile prepared (namespaces,
// mounts, cgroups made; the child waiting at the gate before its last steps: exec.cpp), and
// `butter run --pool NAME -- CMD` hands a command to one of them (protocol.hpp).
//
// The daemon (one process per pool) listens on $XDG_RUNTIME_DIR/butter/pool/NAME.sock (root:
// /run/butter/pool; the directory 0700, the socket 0600, and each connection's SO_PEERCRED
// uid must be the daemon's own) and keeps `size` idle sandboxes. Each sandbox has a
// supervisor process of its own, forked from the daemon with the plan already made: it
// spawns the sandbox (fork-like), tells the daemon once the child waits, and when the daemon
// hands it a client's connection, reads the client's command, resolves it for the profile
// (environment by process.env's rules, PATH candidates, the working directory through the
// profile's binds), hands it to the child with the client's stdio, and supervises it as
// `butter run` does (time limit counted from then, signals the client relays, the report);
// the reply carries the exit status. A sandbox runs one command and is never reused: the
// daemon prepares another as soon as one is taken. Killing the daemon kills its supervisors
// (parent-death signal) and so their sandboxes; `butter pool stop` stops the running
// commands as SIGTERM stops `butter run`. A profile file (or one it extends) that changed
// since the pool started makes the daemon refuse to hand out what it prepared from it.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <butter/error.hpp>

#include "pool/protocol.hpp"
#include "seccomp/builtin.hpp"

namespace butter::launcher::pool {

struct StartOptions {
    std::string name;
    std::optional<std::string> profile;  // -p (the built-in default without)
    std::vector<std::string> sets;       // --set KEY=VALUE
    unsigned size = 2;                   // --size: idle sandboxes kept prepared
    bool foreground = false;             // --foreground: no daemon (systemd's Type=simple)
    int verbosity = 1;
    std::span<const seccomp::BuiltinProgram> builtin_programs;
};

// "pool NAME: what went wrong" (a pool's own errors as they are written), for a line on stderr.
std::string describe(std::string_view name, const Error& e);

// `butter pool start`: returns the exit status (0 once the pool serves; in the foreground,
// when it has stopped).
int start(const StartOptions& o);
// `butter pool stop NAME`: the pool's running commands stopped, its sandboxes gone.
[[nodiscard]] Result<void> stop(std::string_view name);

// A command through a running pool, as the client (`butter run --pool`, butter::Pool):
// `stdio` are the caller's fds for the command's 0, 1 and 2 (-1: /dev/null); signals read
// from `signal_fd` (a signalfd, or -1) are forwarded while it runs.
[[nodiscard]] Result<Reply> run(std::string_view name, Command command, std::span<const int> stdio,
                                int signal_fd = -1);

}  // namespace butter::launcher::pool
