#include "cli/cli.hpp"

#include <fcntl.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "profile/units.hpp"

namespace butter::launcher {

namespace {

Error bad(const std::string& msg) {
    return Error::message("butter", msg);
}

std::pair<std::string, std::string> split_bind(const std::string& v) {
    auto colon = v.find(':');
    if (colon == std::string::npos) return {v, ""};
    return {v.substr(0, colon), v.substr(colon + 1)};
}

}  // namespace

std::string usage() {
    return R"(usage:
  butter run [-p PROFILE] [--set KEY=VALUE]... [--bind SRC[:DST]]... [--ro-bind SRC[:DST]]...
             [--timeout DURATION|SECONDS] [--report FILE|-] [--events FD] [--quiet|--verbose]
             [--changes FILE|-] [--] COMMAND [ARG...]
  butter learn [-p BASE] [--set KEY=VALUE]... [-o FILE] [--merge FILE] [--diff] [--offline]
             [--timeout DURATION] [--quiet|--verbose] [--] COMMAND [ARG...]
                               run COMMAND once and write the profile that extends BASE by
                               exactly what it used (stdout without -o)
  butter run --pool NAME [--report FILE|-] [--quiet|--verbose] [--] COMMAND [ARG...]
                               run COMMAND in a sandbox the pool NAME prepared
  butter pool start NAME [-p PROFILE] [--set KEY=VALUE]... [--size N] [--foreground]
                               keep N sandboxes of PROFILE prepared (default 2)
  butter pool stop NAME        stop the pool: its running commands as SIGTERM stops a run
  butter apply [--dry-run] FILE [DIR]   apply a --changes tar to DIR (default: .)
  butter diff FILE [DIR]       a unified diff of a --changes tar's text files against DIR
  butter check PROFILE...      validate profiles; print every error as FILE:LINE:COL: message
  butter show [-p PROFILE] [--set KEY=VALUE]...   print the resolved profile as TOML
  butter show --keys[=text|roff|markdown]         every profile key: type, default, meaning
  butter profiles              list the profiles on the search path
  butter syscalls [GROUP...]   list syscall groups, or the syscalls of groups
  butter doctor                what works here, what blocks a sandbox (and the fix), which profiles run
  butter oci COMMAND ...       an OCI runtime for container engines, runc's command line (butter-oci(1))
  butter --version | --help

PROFILE is a path or a name looked up in $BUTTER_PROFILE_PATH, ~/.config/butter/profiles,
/etc/butter/profiles and the installed profiles; without -p the built-in default is used.
A relative bind SRC is taken from the current directory (DST defaults to its absolute path).
Every command takes --help.
Exit status of run (and learn): the command's own; 128+N if it died of signal N; 124 at the
time limit; 125 if butter failed (a bad option or profile too); 126 if the command cannot be
executed; 127 if it is not found. The other commands exit 2 on a usage error.
)";
}

bool may_run_a_sandbox(int argc, const char* const* argv) {
    if (argc < 3 || std::string_view(argv[1]) != "run") return false;
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--" || !a.starts_with("-") || a == "-") return i + 1 < argc || a != "--";
        if (a == "--pool" || a.starts_with("--pool=")) return false;  // a pool's sandbox runs it
        if (a == "-p" || a == "--profile" || a == "--set" || a == "--bind" || a == "--ro-bind" ||
            a == "--timeout" || a == "--report" || a == "--events" || a == "--changes")
            ++i;  // its value
    }
    return false;  // no command: an error to come
}

namespace {

// The command word (argv[1]); for --version and --help the whole parse.
Result<Cli::Command> command_of(const std::string& cmd) {
    static constexpr std::pair<std::string_view, Cli::Command> kCommands[] = {
        {"run", Cli::Command::Run},           {"learn", Cli::Command::Learn},
        {"check", Cli::Command::Check},       {"show", Cli::Command::Show},
        {"profiles", Cli::Command::Profiles}, {"syscalls", Cli::Command::Syscalls},
        {"doctor", Cli::Command::Doctor},     {"apply", Cli::Command::Apply},
        {"diff", Cli::Command::Diff},         {"pool", Cli::Command::Pool},
        {"--version", Cli::Command::Version}, {"-V", Cli::Command::Version},
        {"--help", Cli::Command::Help},       {"-h", Cli::Command::Help},
        {"help", Cli::Command::Help}};
    for (const auto& [name, c] : kCommands)
        if (cmd == name) return c;
    if (cmd.starts_with("-"))
        return fail(bad("unknown option '" + cmd + "' (try 'butter --help')"));
    return fail(
        bad("unknown command '" + cmd +
            "' (run, learn, check, show, profiles, syscalls, doctor, apply, diff, pool, oci)"));
}

// One flag as written: --flag=value or --flag value.
struct Flag {
    std::string name, value;
    bool inline_value = false;
    const std::vector<std::string>* argv = nullptr;
    std::size_t* i = nullptr;

    Result<std::string> take_value() {
        if (inline_value) return value;
        if (*i + 1 >= argv->size()) return fail(bad("option '" + name + "' needs a value"));
        return (*argv)[++*i];
    }
};

Result<void> run_flag(Cli& cli, Flag& f) {
    if (f.name == "--quiet" || f.name == "-q" || f.name == "--verbose" || f.name == "-v") {
        if (f.inline_value) return fail(bad("option '" + f.name + "' takes no value"));
        cli.verbosity = f.name == "--quiet" || f.name == "-q" ? 0 : 2;
        return {};
    }
    auto taken = f.take_value();
    if (!taken) return fail(std::move(taken).error());
    const std::string v = std::move(*taken);
    if (f.name == "--bind" || f.name == "--ro-bind") {
        auto b = split_bind(v);
        if (b.first.empty() || (!b.second.empty() && b.second[0] != '/'))
            return fail(bad("option '" + f.name +
                            "' expects SRC[:DST] with an absolute DST, got '" + v + "'"));
        if (b.first[0] != '/') {
            // A host path relative to the current directory, as with bwrap and docker -v
            // $PWD/...: made absolute here (symlinks are resolved, safely, by the planner).
            std::error_code ec;
            auto cwd = std::filesystem::current_path(ec);
            if (ec) return fail(Error("getcwd", ec.value(), "option '" + f.name + "'"));
            std::string abs = (cwd / b.first).lexically_normal().string();
            if (abs.size() > 1 && abs.back() == '/') abs.pop_back();
            b.first = abs;
        }
        (f.name == "--bind" ? cli.binds : cli.ro_binds).push_back(b);
    } else if (f.name == "--report") {
        if (v.empty() || (v != "-" && !v.starts_with("/") && v.find('/') == std::string::npos &&
                          v.starts_with("-")))
            return fail(bad("option '--report' expects a file or '-', got '" + v + "'"));
        cli.report = v;
    } else if (f.name == "--changes") {
        if (v.empty() || (v != "-" && v.starts_with("-")))
            return fail(bad("option '--changes' expects a file or '-', got '" + v + "'"));
        cli.changes = v;
    } else if (f.name == "--events") {
        char* end = nullptr;
        long fd = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || fd < 3 || fd > 65535 ||
            ::fcntl(static_cast<int>(fd), F_GETFD) < 0)
            return fail(
                bad("option '--events' expects an open file descriptor above 2, got '" + v + "'"));
        cli.events_fd = static_cast<int>(fd);
    } else {  // --timeout
        // A bare number is seconds, as for timeout(1).
        bool bare = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
        auto d = profile::parse_duration(bare ? v + "s" : v);
        if (!d || d->count() <= 0)
            return fail(
                bad("option '--timeout' expects a duration like 30s, 5m or 90 (seconds), "
                    "got '" +
                    v + "'"));
        cli.timeout = *d;
    }
    return {};
}

// One flag of `cli.command`; a flag of another command is an error naming both.
Result<void> apply_flag(Cli& cli, Flag& f, const std::string& where) {
    bool learn = cli.command == Cli::Command::Learn;
    bool takes_profile = cli.command == Cli::Command::Run || cli.command == Cli::Command::Show ||
                         cli.command == Cli::Command::Pool || learn;
    bool run = cli.command == Cli::Command::Run;
    auto only = [&](bool allowed) -> Result<void> {
        if (!allowed) return fail(bad("option '" + f.name + "' does not apply to " + where));
        return {};
    };
    if (f.name == "--keys") {
        BUTTER_TRY(only(cli.command == Cli::Command::Show));
        cli.keys_format = f.inline_value ? f.value : "text";
        if (cli.keys_format != "text" && cli.keys_format != "roff" && cli.keys_format != "markdown")
            return fail(
                bad("option '--keys' takes text, roff or markdown, got '" + cli.keys_format + "'"));
    } else if (f.name == "-p" || f.name == "--profile") {
        BUTTER_TRY(only(takes_profile));
        BUTTER_ASSIGN_OR_RETURN(std::string v, f.take_value());
        if (v.empty()) return fail(bad("option '" + f.name + "' needs a profile name or path"));
        cli.profile = v;
    } else if (f.name == "--set") {
        BUTTER_TRY(only(takes_profile));
        BUTTER_ASSIGN_OR_RETURN(std::string v, f.take_value());
        if (v.find('=') == std::string::npos || v[0] == '=')
            return fail(bad("option '--set' expects KEY=VALUE, got '" + v + "'"));
        cli.sets.push_back(v);
    } else if (f.name == "--quiet" || f.name == "-q" || f.name == "--verbose" || f.name == "-v" ||
               f.name == "--timeout") {
        BUTTER_TRY(only(run || learn));
        return run_flag(cli, f);
    } else if (f.name == "--bind" || f.name == "--ro-bind" || f.name == "--report" ||
               f.name == "--events" || f.name == "--changes") {
        BUTTER_TRY(only(run));
        return run_flag(cli, f);
    } else if (f.name == "-o" || f.name == "--output" || f.name == "--merge") {
        BUTTER_TRY(only(learn));
        BUTTER_ASSIGN_OR_RETURN(std::string v, f.take_value());
        if (v.empty() || v.starts_with("-"))
            return fail(bad("option '" + f.name + "' expects a file, got '" + v + "'"));
        (f.name == "--merge" ? cli.merge : cli.output) = v;
    } else if (f.name == "--diff" || f.name == "--offline") {
        BUTTER_TRY(only(learn));
        if (f.inline_value) return fail(bad("option '" + f.name + "' takes no value"));
        (f.name == "--diff" ? cli.diff : cli.offline) = true;
    } else if (f.name == "--pool") {
        BUTTER_TRY(only(run));
        BUTTER_ASSIGN_OR_RETURN(std::string v, f.take_value());
        if (v.empty() || v.starts_with("-"))
            return fail(bad("option '--pool' expects a pool's name, got '" + v + "'"));
        cli.pool = v;
    } else if (f.name == "--size") {
        BUTTER_TRY(only(cli.command == Cli::Command::Pool));
        BUTTER_ASSIGN_OR_RETURN(std::string v, f.take_value());
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 1 || n > 64)
            return fail(bad("option '--size' expects a number from 1 to 64, got '" + v + "'"));
        cli.pool_size = static_cast<unsigned>(n);
    } else if (f.name == "--foreground") {
        BUTTER_TRY(only(cli.command == Cli::Command::Pool));
        if (f.inline_value) return fail(bad("option '" + f.name + "' takes no value"));
        cli.foreground = true;
    } else if (f.name == "--dry-run" || f.name == "-n") {
        BUTTER_TRY(only(cli.command == Cli::Command::Apply));
        if (f.inline_value) return fail(bad("option '" + f.name + "' takes no value"));
        cli.dry_run = true;
    } else {
        return fail(bad("unknown option '" + f.name + (f.inline_value ? "=" + f.value : "") +
                        "' for " + where));
    }
    return {};
}

}  // namespace

Result<Cli> parse_cli(const std::vector<std::string>& argv) {
    Cli cli;
    if (argv.size() < 2) return fail(bad("no command given (try 'butter --help')"));
    const std::string& cmd = argv[1];
    BUTTER_ASSIGN_OR_RETURN(cli.command, command_of(cmd));
    if (cli.command == Cli::Command::Version || cli.command == Cli::Command::Help) return cli;
    const std::string where = "'butter " + cmd + "'";
    bool run = cli.command == Cli::Command::Run || cli.command == Cli::Command::Learn;
    for (std::size_t i = 2; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--") {
            cli.args.insert(cli.args.end(), argv.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                            argv.end());
            break;
        }
        if (!a.starts_with("-") || a == "-") {
            if (run) {  // the command starts here; its own flags are its business
                cli.args.insert(cli.args.end(), argv.begin() + static_cast<std::ptrdiff_t>(i),
                                argv.end());
                break;
            }
            cli.args.push_back(a);
            continue;
        }
        if (a == "--help" || a == "-h") {  // `butter run --help`: the usage, as for `butter --help`
            cli.command = Cli::Command::Help;
            return cli;
        }
        Flag f{a, "", false, &argv, &i};
        if (auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos)
            f = {a.substr(0, eq), a.substr(eq + 1), true, &argv, &i};
        BUTTER_TRY(apply_flag(cli, f, where));
    }
    if (run && cli.args.empty())
        return fail(bad("'butter " + cmd + "' needs a command (butter " + cmd + " -- COMMAND)"));
    if (cli.diff && !cli.output && !cli.merge)
        return fail(bad("option '--diff' compares with a profile: give -o FILE or --merge FILE"));
    if (cli.command == Cli::Command::Check && cli.args.empty())
        return fail(bad("'butter check' needs at least one profile"));
    if ((cli.command == Cli::Command::Apply || cli.command == Cli::Command::Diff) &&
        (cli.args.empty() || cli.args.size() > 2))
        return fail(bad("'butter " + cmd + "' takes a changes file and an optional directory (" +
                        "butter " + cmd + " FILE [DIR])"));
    if (cli.command == Cli::Command::Pool &&
        (cli.args.size() != 2 || (cli.args[0] != "start" && cli.args[0] != "stop")))
        return fail(
            bad("'butter pool' takes start or stop and a pool's name (butter pool start "
                "NAME, butter pool stop NAME)"));
    if (cli.command == Cli::Command::Pool && cli.args[0] == "stop" &&
        (cli.profile || !cli.sets.empty() || cli.foreground || cli.pool_size != 2))
        return fail(bad("'butter pool stop' takes only the pool's name"));
    if (cli.pool && (cli.profile || !cli.sets.empty() || !cli.binds.empty() ||
                     !cli.ro_binds.empty() || cli.timeout || cli.events_fd >= 0 || cli.changes))
        return fail(
            bad("option '--pool' runs the command in a sandbox the pool prepared from "
                "its profile: -p, --set, --bind, --ro-bind, --timeout, --events and "
                "--changes belong to 'butter pool start'"));
    if ((cli.command == Cli::Command::Profiles || cli.command == Cli::Command::Doctor) &&
        !cli.args.empty())
        return fail(bad("'butter " + cmd + "' takes no arguments"));
    return cli;
}

}  // namespace butter::launcher
