#include "plan/plan.hpp"

#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>

#include <butter/fd.hpp>
#include <butter/landlock.hpp>
#include <butter/signalfd.hpp>

#include "plan/command.hpp"
#include "plan/planner.hpp"
#include "seccomp/policy.hpp"

namespace butter::launcher {

using profile::Diagnostics;
using profile::error_at;
using profile::MountType;
using profile::SourceLoc;
using profile::warning_at;

namespace {

// systemd's service protocol variables: they describe butter's own process and fds, so they
// pass to the command only through the features that translate them (notify, socket
// activation), never as they are.
bool is_service_var(std::string_view k) {
    return k == "NOTIFY_SOCKET" || k == "LISTEN_PID" || k == "LISTEN_FDS" ||
           k == "LISTEN_FDNAMES" || k == "WATCHDOG_PID" || k == "WATCHDOG_USEC";
}

}  // namespace

// The command's environment: each variable where it first appeared, with its last value.
// Keys are views into `environ` and the profile (both outlive this); a few dozen variables, so
// a linear search beats a map's allocations.
std::vector<std::string> command_environment(const profile::Profile& p,
                                             const std::vector<std::string>& environ) {
    std::vector<std::string> out;
    std::vector<std::string_view> keys;
    auto put = [&](std::string_view k, std::string_view v) {
        std::string kv;
        kv.reserve(k.size() + 1 + v.size());
        kv.append(k).append(1, '=').append(v);
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == k) {
                out[i] = std::move(kv);
                return;
            }
        keys.push_back(k);
        out.push_back(std::move(kv));
    };
    for (const std::string& e : environ) {
        std::string_view kv(e);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = kv.substr(0, eq);
        if (is_service_var(k)) continue;
        bool keep = !p.process.env_clear ||
                    std::find(p.process.env_keep.begin(), p.process.env_keep.end(), k) !=
                        p.process.env_keep.end();
        if (keep) put(k, kv.substr(eq + 1));
    }
    for (const auto& [k, v] : p.process.env_set)
        put(k, v);
    if (std::find(keys.begin(), keys.end(), std::string_view("PATH")) == keys.end())
        put("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
    return out;
}

std::vector<std::string> exec_candidates(const std::string& arg0,
                                         const std::vector<std::string>& env) {
    if (arg0.find('/') != std::string::npos) return {arg0};
    std::string path;
    for (const auto& kv : env)
        if (kv.starts_with("PATH=")) path = kv.substr(5);
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t colon = path.find(':', start);
        if (colon == std::string::npos) colon = path.size();
        std::string dir = path.substr(start, colon - start);
        if (dir.empty()) dir = ".";
        out.push_back(dir + "/" + arg0);
        start = colon + 1;
    }
    return out;
}

bool lists_capability(const std::vector<std::string>& names, int cap) {
    return std::any_of(names.begin(), names.end(), [cap](const std::string& n) {
        auto c = capability_from_name(n);
        return c && *c == cap;
    });
}

const char* rlimit_name(int resource) {
    for (const auto& [r, name] : kRlimitNames)
        if (r == resource) return name;
    return "RLIMIT_?";
}

std::optional<std::string> normalize_target(const std::string& path) {
    if (path.empty() || path[0] != '/') return std::nullopt;
    std::string out;
    std::size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/')
            ++i;
        std::size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string part = path.substr(i, j - i);
        i = j;
        if (part.empty() || part == ".") continue;
        if (part == "..") return std::nullopt;
        out += "/" + part;
    }
    return out.empty() ? "/" : out;
}

void Planner::command() {
    plan.argv = o.argv;
    environment = host.environment();
    plan.env = command_environment(p, environment);
    if (!plan.argv.empty()) plan.exec_candidates = exec_candidates(plan.argv[0], plan.env);
    plan.cwd = p.process.cwd;
    plan.stdin_null = p.process.stdin_mode == profile::StdinMode::Null;
    plan.new_session = p.process.session != profile::SessionMode::Inherit;
    // auto: what a person at a terminal expects (job control, ^C, the window size), and no
    // terminal (nor CRLF) for a command whose input or output goes elsewhere.
    plan.pty = p.process.session == profile::SessionMode::Pty ||
               (p.process.session == profile::SessionMode::Auto && !plan.stdin_null &&
                p.output.stdout_mode.kind == profile::OutputMode::Kind::Inherit &&
                p.output.stderr_mode.kind == profile::OutputMode::Kind::Inherit &&
                host.terminal(0) && host.terminal(1) && host.terminal(2));
    // Input piped into butter that the profile does not pass on: said, not dropped silently.
    mode_t in = host.stdio_type(0);
    bool tty = in == S_IFCHR && host.terminal(0);
    if (plan.stdin_null && (in == S_IFIFO || in == S_IFREG || in == S_IFSOCK || tty))
        out.push_back(warning_at(
            p.loc_of("process.stdin"),
            std::string("process.stdin = \"null\": the command does not read butter's stdin (a ") +
                (tty             ? "terminal"
                 : in == S_IFIFO ? "pipe"
                 : in == S_IFREG ? "file"
                                 : "socket") +
                "); --set process.stdin=inherit passes it"));
}

void Planner::limits() {
    const auto& l = p.limits;
    plan.time_limit = o.timeout ? o.timeout : l.time;
    if (l.cpu) {
        auto secs = std::chrono::ceil<std::chrono::seconds>(*l.cpu).count();
        plan.rlimits.push_back({RLIMIT_CPU, static_cast<rlim_t>(secs)});
    }
    if (l.open_files) plan.rlimits.push_back({RLIMIT_NOFILE, *l.open_files});
    if (l.file_size) plan.rlimits.push_back({RLIMIT_FSIZE, *l.file_size});
    if (l.core) plan.rlimits.push_back({RLIMIT_CORE, *l.core});
    if (l.stack) plan.rlimits.push_back({RLIMIT_STACK, *l.stack});
    // rlimits are not namespaced: above butter's own hard limit only CAP_SYS_RESOURCE in the
    // host's namespace could raise them. Say so here, with the key's position.
    for (const Rlimit& r : plan.rlimits) {
        auto hard = host.hard_limit(r.resource);
        if (!hard || *hard == RLIM_INFINITY || r.value <= *hard) continue;
        std::string key = r.resource == RLIMIT_CPU      ? "limits.cpu"
                          : r.resource == RLIMIT_NOFILE ? "limits.open_files"
                          : r.resource == RLIMIT_FSIZE  ? "limits.file_size"
                          : r.resource == RLIMIT_CORE   ? "limits.core"
                                                        : "limits.stack";
        out.push_back(error_at(p.loc_of(key), key + ": " + std::to_string(r.value) +
                                                  " is above butter's own hard limit " +
                                                  std::to_string(*hard) +
                                                  " (a limit can only be lowered)"));
    }
    plan.memory_limit = l.memory;
    plan.pids_limit = l.pids;
    plan.cpus = l.cpus;
    plan.limits_optional = l.optional;
}

void Planner::privileges() {
    for (const std::string& c : p.capabilities.keep)
        if (auto cap = capability_from_name(c)) plan.keep_caps.add(*cap);
    if (plan.uid == 0)
        for (const std::string& c : p.capabilities.keep_as_root)
            if (auto cap = capability_from_name(c)) plan.keep_caps.add(*cap);
    for (const char* key : {"capabilities.keep", "capabilities.keep_as_root"}) {
        const auto& list = std::string_view(key) == "capabilities.keep"
                               ? p.capabilities.keep
                               : p.capabilities.keep_as_root;
        if (p.seccomp.restrict_suid_sgid && lists_capability(list, CAP_SETFCAP))
            out.push_back(error_at(p.loc_of(key), std::string(key) +
                                                      ": CAP_SETFCAP lets the sandbox give files "
                                                      "capabilities; it needs "
                                                      "seccomp.restrict_suid_sgid = false"));
    }
    if (p.filesystem.map_host_root)
        out.push_back(warning_at(p.loc_of("filesystem.map_host_root"),
                                 "filesystem.map_host_root: as root, what the sandbox creates in "
                                 "root-owned writable binds belongs to host root"));
}

void Planner::supervision() {
    plan.stop_signal = p.supervise.stop_signal;
    plan.stop_timeout = p.supervise.stop_timeout;
    plan.forward_signals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    plan.restart = p.supervise.restart;
    plan.restart_delay = p.supervise.restart_delay;
    plan.restart_burst =
        static_cast<unsigned>(std::min<std::uint64_t>(p.supervise.restart_burst, 1000));
    plan.restart_interval = p.supervise.restart_interval;
    plan.notify = p.supervise.notify;
    // Socket activation: the sockets butter was started with (checked then: PlanOptions) go on
    // to the command as fds 3.., with LISTEN_PID rewritten to its pid inside. The watchdog
    // likewise.
    if (o.listen_fds > 0) {
        plan.listen_fds = o.listen_fds;
        plan.env.push_back("LISTEN_FDS=" + std::to_string(o.listen_fds));
        if (auto names = host.env("LISTEN_FDNAMES")) plan.env.push_back("LISTEN_FDNAMES=" + *names);
        plan.env.push_back("LISTEN_PID=");  // the command's pid, filled in by the child
        plan.pid_env.push_back(plan.env.size() - 1);
    }
    auto wd_usec = host.env("WATCHDOG_USEC");
    auto wd_pid = host.env("WATCHDOG_PID");
    if (plan.notify && wd_usec &&
        (!wd_pid || std::strtol(wd_pid->c_str(), nullptr, 10) == host.pid())) {
        plan.env.push_back("WATCHDOG_USEC=" + *wd_usec);
        plan.env.push_back("WATCHDOG_PID=");
        plan.pid_env.push_back(plan.env.size() - 1);
    }
}

void Planner::output_and_watch() {
    plan.stdout_spec = p.output.stdout_mode;
    plan.stderr_spec = p.output.stderr_mode;
    if (plan.pty && (plan.stdout_spec.kind != OutputSpec::Kind::Inherit ||
                     plan.stderr_spec.kind != OutputSpec::Kind::Inherit))
        out.push_back(
            error_at(p.loc_of("process.session"),
                     "process.session = \"pty\" carries stdout and stderr on the terminal: "
                     "output.stdout/stderr must be \"inherit\""));
    // The terminal is made in the sandbox's own devpts, where it has one (`tty` and ttyname
    // name it there); else butter's devpts (the command's terminal has no name inside).
    if (plan.pty)
        for (const MountStep& m : plan.mounts)
            if (m.type == MountType::Dev) plan.pty_ptmx = m.target + "/pts/ptmx";
    plan.report_path = o.report ? *o.report : p.report.path;
    // The report and the changes file are the run's word: never in a directory the sandbox
    // could move and replace (a subdirectory of a writable bind; a bind's own top directory is
    // its mount point and stays), nor in a workspace whose changes are committed (the commit
    // would put the sandbox's file there, or its directory).
    auto host_file = [&](const std::string& path, const SourceLoc& at, const char* what) {
        if (path.size() < 2 || path[0] != '/') return;
        std::string dir = path.substr(0, path.rfind('/'));
        auto d = host.resolve(dir.empty() ? "/" : dir, Symlinks::RootOnly);
        if (!d) return;
        auto under = [&](const std::string& top, bool itself) {
            return (itself && d->path == top) || d->path.starts_with(top == "/" ? "/" : top + "/");
        };
        for (const MountStep& m : plan.mounts)
            if (m.type == MountType::Bind && !m.layer && !m.read_only && m.source_is_dir &&
                under(m.source, false))
                out.push_back(error_at(at, std::string(what) + " '" + path +
                                               "' lies in a subdirectory of the writable "
                                               "bind '" +
                                               m.source +
                                               "', which the sandbox could move and replace "
                                               "with its own: put it in " +
                                               m.source + " itself, or outside it"));
        if (plan.changes.mount >= 0 && plan.changes.commit != profile::CommitPolicy::Never &&
            under(plan.changes.workspace, true))
            out.push_back(error_at(at, std::string(what) + " '" + path +
                                           "' lies in the workspace whose changes "
                                           "workspace.commit applies (the sandbox's own file "
                                           "could take its place): put it outside " +
                                           plan.changes.workspace));
    };
    host_file(plan.report_path, o.report ? SourceLoc{"--report", 0, 0} : p.loc_of("report.path"),
              "report");
    host_file(plan.changes.path, SourceLoc{"--changes", 0, 0}, "changes file");
    plan.file_activity = p.report.file_activity;
    plan.record_steps = !plan.report_path.empty() || o.events;
    for (std::size_t i = 0; i < p.watch.paths.size(); ++i) {
        const std::string& w = p.watch.paths[i];
        auto resolved = host.resolve(w, Symlinks::RootOnly);
        if (!resolved) {
            bool missing = resolved.error().errno_value() == ENOENT;
            out.push_back(error_at(p.loc_of("watch.paths[" + std::to_string(i) + "]"),
                                   "watch.paths: '" + w + "' " +
                                       (missing ? "does not exist" : resolved.error().what())));
            continue;
        }
        plan.watch_paths.push_back(
            {std::move(resolved->path), resolved->st.st_dev, resolved->st.st_ino});
    }
    plan.on_change = p.watch.on_change;
    plan.watch_debounce = p.watch.debounce;
    plan.watch_fanotify = p.watch.backend == profile::WatchBackend::Fanotify;
    if (plan.watch_fanotify && !plan.privileged)
        out.push_back(error_at(p.loc_of("watch.backend"),
                               "watch.backend: fanotify needs root (CAP_SYS_ADMIN); use inotify"));
}

void Planner::seccomp() {
    plan.no_new_privs = p.process.no_new_privs;
    // Below namespaces the filter holds what they would have (policy.cpp's implicit rules).
    std::optional<profile::Profile> lower;
    if (plan.tier < profile::Tier::Namespaces && p.isolation.tier != plan.tier) {
        lower = p;
        lower->isolation.tier = plan.tier;
    }
    if (auto prog = host.seccomp(lower ? *lower : p, o.builtin_programs, out)) {
        plan.seccomp = std::move(prog->program);
        plan.seccomp_listener = prog->uses_notify;
        plan.seccomp_errno = prog->denied_errno;
        plan.learn = p.seccomp.learn;
        plan.learn_suid_sgid = p.seccomp.restrict_suid_sgid;
        plan.learn_xattrs = p.seccomp.restrict_xattrs;
        if (p.seccomp.report && p.seccomp.default_action.kind != SeccompAction::Kind::Allow) {
            profile::Diagnostics ignored;
            plan.seccomp_listed_denials = seccomp::expand(
                p.seccomp.deny, [](std::size_t) { return profile::SourceLoc{}; }, ignored);
        }
        plan.learn_traced = prog->traced;
        if (plan.seccomp_listener) {
            if (auto lf = host.logged_filters(plan.seccomp, plan.seccomp_errno)) {
                plan.seccomp_base = std::move(lf->base);
                plan.seccomp_logged = std::move(lf->logged);
            }
        }
    }
    if (!plan.seccomp.empty() && !plan.no_new_privs && !plan.privileged && !p.namespaces.user)
        out.push_back(error_at(p.loc_of("process.no_new_privs"),
                               "a seccomp filter needs no_new_privs (or root)"));
}

std::optional<SandboxPlan> make_plan(const profile::Profile& p, const PlanOptions& o,
                                     Diagnostics& out) {
    auto errors = [&] {
        return std::count_if(out.begin(), out.end(), [](const auto& d) { return d.is_error(); });
    };
    auto errors_before = errors();
    const HostFacts& host = o.host ? *o.host : real_host();
    Planner planner{p, o, host, out, {}, {}, {}, {}, {}};
    SandboxPlan& plan = planner.plan;
    plan.description = p.description;
    plan.privileged = o.force_privileged.value_or(host.root());
    planner.tier();
    planner.command();
    planner.namespaces();
    planner.identity();
    planner.filesystem();
    planner.landlock();
    planner.network();
    planner.limits();
    planner.privileges();
    planner.supervision();
    planner.output_and_watch();
    planner.host_view();
    planner.seccomp();
    if (errors() != errors_before) return std::nullopt;
    return std::move(plan);
}

}  // namespace butter::launcher
