#include "cli/cli.hpp"

#include <fcntl.h>

#include <cstdlib>
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
             [--timeout DURATION] [--report FILE|-] [--events FD] [--quiet|--verbose]
             [--] COMMAND [ARG...]
  butter check PROFILE...      validate profiles; print every error as FILE:LINE:COL: message
  butter show [-p PROFILE] [--set KEY=VALUE]...   print the resolved profile as TOML
  butter show --keys[=text|roff|markdown]         every profile key: type, default, meaning
  butter profiles              list the profiles on the search path
  butter syscalls [GROUP...]   list syscall groups, or the syscalls of groups
  butter doctor                what works here, what blocks a sandbox (and the fix), which profiles run
  butter --version | --help

PROFILE is a path or a name looked up in $BUTTER_PROFILE_PATH, ~/.config/butter/profiles,
/etc/butter/profiles and the installed profiles; without -p the built-in default is used.
Exit status of run: the command's own; 128+N if it died of signal N; 124 at the time limit;
125 if butter failed; 126 if the command cannot be executed; 127 if it is not found.
)";
}

bool may_run_a_sandbox(int argc, const char* const* argv) {
    if (argc < 3 || std::string_view(argv[1]) != "run") return false;
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--" || !a.starts_with("-") || a == "-") return i + 1 < argc || a != "--";
        if (a == "-p" || a == "--profile" || a == "--set" || a == "--bind" || a == "--ro-bind" ||
            a == "--timeout" || a == "--report" || a == "--events")
            ++i;  // its value
    }
    return false;  // no command: an error to come
}

Result<Cli> parse_cli(const std::vector<std::string>& argv) {
    Cli cli;
    if (argv.size() < 2) return fail(bad("no command given (try 'butter --help')"));
    const std::string& cmd = argv[1];
    if (cmd == "--version" || cmd == "-V") {
        cli.command = Cli::Command::Version;
        return cli;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        cli.command = Cli::Command::Help;
        return cli;
    }
    if (cmd == "run")
        cli.command = Cli::Command::Run;
    else if (cmd == "check")
        cli.command = Cli::Command::Check;
    else if (cmd == "show")
        cli.command = Cli::Command::Show;
    else if (cmd == "profiles")
        cli.command = Cli::Command::Profiles;
    else if (cmd == "syscalls")
        cli.command = Cli::Command::Syscalls;
    else if (cmd == "doctor")
        cli.command = Cli::Command::Doctor;
    else if (cmd.starts_with("-"))
        return fail(bad("unknown option '" + cmd + "' (try 'butter --help')"));
    else
        return fail(
            bad("unknown command '" + cmd + "' (run, check, show, profiles, syscalls, doctor)"));

    const std::string where = "'butter " + cmd + "'";
    bool takes_profile = cli.command == Cli::Command::Run || cli.command == Cli::Command::Show;
    bool run = cli.command == Cli::Command::Run;
    for (std::size_t i = 2; i < argv.size(); ++i) {
        std::string a = argv[i];
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
        // --flag=value and --flag value
        std::string flag = a, value;
        bool inline_value = false;
        if (auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
            flag = a.substr(0, eq);
            value = a.substr(eq + 1);
            inline_value = true;
        }
        auto need_value = [&]() -> Result<std::string> {
            if (inline_value) return value;
            if (i + 1 >= argv.size()) return fail(bad("option '" + flag + "' needs a value"));
            return argv[++i];
        };
        auto only = [&](bool allowed) -> Result<void> {
            if (!allowed) return fail(bad("option '" + flag + "' does not apply to " + where));
            return {};
        };
        if (flag == "--keys") {
            BUTTER_TRY(only(cli.command == Cli::Command::Show));
            cli.keys_format = inline_value ? value : "text";
            if (cli.keys_format != "text" && cli.keys_format != "roff" &&
                cli.keys_format != "markdown")
                return fail(bad("option '--keys' takes text, roff or markdown, got '" +
                                cli.keys_format + "'"));
        } else if (flag == "-p" || flag == "--profile") {
            BUTTER_TRY(only(takes_profile));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            if (v.empty()) return fail(bad("option '" + flag + "' needs a profile name or path"));
            cli.profile = v;
        } else if (flag == "--set") {
            BUTTER_TRY(only(takes_profile));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            if (v.find('=') == std::string::npos || v[0] == '=')
                return fail(bad("option '--set' expects KEY=VALUE, got '" + v + "'"));
            cli.sets.push_back(v);
        } else if (flag == "--bind" || flag == "--ro-bind") {
            BUTTER_TRY(only(run));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            auto b = split_bind(v);
            if (b.first.empty() || b.first[0] != '/' || (!b.second.empty() && b.second[0] != '/'))
                return fail(
                    bad("option '" + flag + "' expects absolute SRC[:DST], got '" + v + "'"));
            (flag == "--bind" ? cli.binds : cli.ro_binds).push_back(b);
        } else if (flag == "--report") {
            BUTTER_TRY(only(run));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            if (v.empty() ||
                (v != "-" && v[0] != '/' && v.find('/') == std::string::npos && v.starts_with("-")))
                return fail(bad("option '--report' expects a file or '-', got '" + v + "'"));
            cli.report = v;
        } else if (flag == "--events") {
            BUTTER_TRY(only(run));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            char* end = nullptr;
            long fd = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || fd < 3 || fd > 65535 ||
                ::fcntl(static_cast<int>(fd), F_GETFD) < 0)
                return fail(bad("option '--events' expects an open file descriptor above 2, got '" +
                                v + "'"));
            cli.events_fd = static_cast<int>(fd);
        } else if (flag == "--quiet" || flag == "-q") {
            BUTTER_TRY(only(run));
            if (inline_value) return fail(bad("option '" + flag + "' takes no value"));
            cli.verbosity = 0;
        } else if (flag == "--verbose" || flag == "-v") {
            BUTTER_TRY(only(run));
            if (inline_value) return fail(bad("option '" + flag + "' takes no value"));
            cli.verbosity = 2;
        } else if (flag == "--timeout") {
            BUTTER_TRY(only(run));
            BUTTER_ASSIGN_OR_RETURN(std::string v, need_value());
            auto d = profile::parse_duration(v);
            if (!d || d->count() <= 0)
                return fail(
                    bad("option '--timeout' expects a duration like 30s or 5m, got '" + v + "'"));
            cli.timeout = *d;
        } else {
            return fail(bad("unknown option '" + a + "' for " + where));
        }
    }
    if (run && cli.args.empty())
        return fail(bad("'butter run' needs a command (butter run -- COMMAND)"));
    if (cli.command == Cli::Command::Check && cli.args.empty())
        return fail(bad("'butter check' needs at least one profile"));
    if ((cli.command == Cli::Command::Profiles || cli.command == Cli::Command::Doctor) &&
        !cli.args.empty())
        return fail(bad("'butter " + cmd + "' takes no arguments"));
    return cli;
}

}  // namespace butter::launcher
