// The command line: subcommands and flags, parsed into a Cli value. Errors name the flag.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <butter/error.hpp>

namespace butter::launcher {

struct Cli {
    enum class Command {
        Run,
        Learn,
        Check,
        Show,
        Profiles,
        Syscalls,
        Doctor,
        Apply,
        Diff,
        Pool,  // pool start|stop NAME
        Version,
        Help
    };
    Command command = Command::Help;
    std::optional<std::string> profile;  // -p/--profile
    std::vector<std::string> sets;       // --set KEY=VALUE
    std::vector<std::pair<std::string, std::string>> binds, ro_binds;
    std::optional<std::chrono::nanoseconds> timeout;
    std::optional<std::string> report;   // --report FILE|-
    std::optional<std::string> changes;  // run --changes FILE|-
    bool dry_run = false;                // apply --dry-run
    std::optional<std::string> output;   // learn -o/--output FILE
    std::optional<std::string> merge;    // learn --merge FILE
    bool diff = false;                   // learn --diff
    bool offline = false;                // learn --offline
    int verbosity = 1;                   // --quiet 0, --verbose 2
    int events_fd = -1;                  // --events FD
    std::string keys_format;             // show --keys[=text|roff|markdown]
    std::optional<std::string> pool;     // run --pool NAME
    unsigned pool_size = 2;              // pool start --size N
    bool foreground = false;             // pool start --foreground
    // run, learn: the command; check: profiles; syscalls: groups; apply, diff: FILE [DIR];
    // pool: start|stop and the pool's name
    std::vector<std::string> args;
};

// argv[0] is the program; errors read "unknown option '--frob' for 'butter run'".
[[nodiscard]] Result<Cli> parse_cli(const std::vector<std::string>& argv);

// Whether argv looks like `butter run ... CMD`, before it is parsed: the sandbox is then
// started at once (spawn.hpp's EarlyChild; the plan decides whether it is used, so a wrong
// guess costs only time).
bool may_run_a_sandbox(int argc, const char* const* argv);

// The --help text.
std::string usage();

}  // namespace butter::launcher
