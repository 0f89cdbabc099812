// butter::Pool: hand commands to sandboxes a pool prepared ahead, from a program of your own (a
// test harness, a CI runner), as `butter run --pool NAME` does. The pool itself is the butter
// program's daemon (`butter pool start NAME -p PROFILE --size N`, or a systemd service running
// it with --foreground): it holds the prepared sandboxes and their supervisors, which must not
// live in the caller's process (each command's supervisor outlives nothing of the caller's).
//
//     auto pool = butter::Pool::open("ci");
//     butter::PoolCommand c;
//     c.argv = {"make", "test"};
//     auto r = pool->run(c);          // r->exit_status as `butter run` would exit
//
// Link with butter::sandbox (CMake) or `pkg-config butter-sandbox`.
#pragma once

#include <string>
#include <vector>

#include <butter/error.hpp>

namespace butter {

struct PoolCommand {
    std::vector<std::string> argv;  // argv[0] is looked up in the sandbox's PATH
    // KEY=VALUE, filtered by the profile's process.env rules; empty: this process's environment.
    std::vector<std::string> env;
    // A host directory inside one of the profile's binds ("": this process's working
    // directory); the command starts in the same directory inside.
    std::string cwd;
    // The command's stdin, stdout and stderr: descriptors of the caller's, passed for the run
    // (-1: /dev/null).
    int stdin_fd = 0, stdout_fd = 1, stderr_fd = 2;
    bool report = false;  // return the JSON report (README.md's "The report")
    // A signalfd (signalfd(2), butter::SignalFd) whose signals are forwarded to the command
    // while it runs, SIGTERM as a stop (the profile's stop signal, then SIGKILL after its
    // grace period); -1: none.
    int signal_fd = -1;
};

struct PoolResult {
    int exit_status = 125;  // as `butter run` exits: the command's own, 128+N, 124, 125, 126, 127
    std::string messages;   // butter's lines about the run ("butter: ..."), if any
    std::string log;        // the supervisor's warnings and hints, one per line
    std::string report;     // the JSON report, with PoolCommand::report
};

class Pool {
  public:
    // This user's running pool NAME ($XDG_RUNTIME_DIR/butter/pool/NAME.sock; root's in
    // /run/butter/pool). Errors: a bad name, a pool that is not running.
    [[nodiscard]] static Result<Pool> open(std::string name);
    // Runs one command in one of its prepared sandboxes and returns once it has ended. A pool
    // that refuses it (its profile changed, it is stopping, the working directory is not in its
    // binds) says why in PoolResult::messages with exit_status 125.
    [[nodiscard]] Result<PoolResult> run(const PoolCommand& command) const;
    // Stops the pool, as `butter pool stop NAME`.
    [[nodiscard]] Result<void> stop() const;
    const std::string& name() const { return name_; }

  private:
    explicit Pool(std::string name) : name_(std::move(name)) {}
    std::string name_;
};

}  // namespace butter
