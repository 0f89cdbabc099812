// butter: the command line. Parses flags, calls the pieces, prints what went wrong once, and
// maps the outcome to an exit status. Nothing else prints.
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

#include <butter/landlock.hpp>
#include <butter/process.hpp>
#include <butter/signalfd.hpp>

#include "changes/changes.hpp"
#include "changes/workspace.hpp"
#include "cli/cli.hpp"
#include "cli/doctor.hpp"
#include "cli/systemd_scope.hpp"
#include "cli/tuning.hpp"
#include "learn/learn.hpp"
#include "oci/runtime.hpp"
#include "plan/host_path.hpp"
#include "plan/plan.hpp"
#include "pool/pool.hpp"
#include "profile/loader.hpp"
#include "profile/toml_reader.hpp"
#include "seccomp/builtin.hpp"
#include "seccomp/policy.hpp"
#include "spawn/spawn.hpp"
#include "supervise/events.hpp"
#include "supervise/notify.hpp"
#include "supervise/private_dir.hpp"
#include "supervise/report.hpp"
#include "supervise/sink.hpp"
#include "supervise/supervisor.hpp"
#include "version.hpp"

namespace butter::launcher {
namespace {

constexpr int kFailed = 125;

void print_diagnostics(const profile::Diagnostics& d, bool notes = false) {
    for (const auto& x : d)
        if (notes || x.severity != profile::Diagnostic::Severity::Note)
            std::fprintf(stderr, "%s\n", x.render().c_str());
}

// One line on stderr without blocking for long (sink.hpp): after a run, stderr may be a
// terminal or pipe that stopped reading.
void say(const std::string& line) {
    auto err = Sink::open(2, 1 << 16);
    if (!err) {
        std::fprintf(stderr, "%s\n", line.c_str());
        return;
    }
    (void)err->write(line + "\n");
    (void)err->flush_for(200);
}

// The tier to plan for when it is not the profile's own: after the host refused a stronger one.
struct TierChoice {
    std::optional<profile::Tier> tier;
    std::string reason;
};

// `private_dir`: made here when the tier is below namespaces (plan/tier.cpp).
std::optional<SandboxPlan> load_and_plan(const Cli& cli, std::vector<std::string> argv,
                                         int listen_fds, PrivateDir* private_dir = nullptr,
                                         const TierChoice& choice = {}) {
    profile::LoadOptions lo;
    lo.overrides = cli.sets;
    profile::Loaded loaded = profile::load(cli.profile, lo);
    if (!choice.tier) print_diagnostics(loaded.diagnostics);  // (said once, on the first plan)
    if (!loaded.ok()) return std::nullopt;
    PlanOptions po;
    po.tier = choice.tier;
    po.tier_reason = choice.reason;
    profile::Tier tier = choice.tier.value_or(loaded.profile.isolation.tier);
    if (private_dir && (tier == profile::Tier::Landlock || tier == profile::Tier::Seccomp)) {
        auto made = PrivateDir::create();
        if (!made) {
            std::fprintf(stderr, "butter: %s\n", made.error().what().c_str());
            return std::nullopt;
        }
        *private_dir = std::move(*made);
        po.private_dir = private_dir->path();
    }
    po.argv = std::move(argv);
    po.binds = cli.binds;
    po.ro_binds = cli.ro_binds;
    po.timeout = cli.timeout;
    po.events = cli.events_fd >= 0;
    po.builtin_programs = seccomp::kBuiltinPrograms;
    po.listen_fds = listen_fds;
    // Relative to where butter was started, as every other CLI path.
    auto absolute = [](std::string r) {
        if (r != "-" && r[0] != '/') {
            char cwd[4096];
            if (::getcwd(cwd, sizeof cwd)) r = std::string(cwd) + "/" + r;
        }
        return r;
    };
    if (cli.report) po.report = absolute(*cli.report);
    if (cli.changes) po.changes = absolute(*cli.changes);
    profile::Diagnostics d;
    auto plan = make_plan(loaded.profile, po, d);
    // Planned again for a lower tier: its errors only (the warnings were said the first time).
    if (choice.tier) std::erase_if(d, [](const profile::Diagnostic& x) { return !x.is_error(); });
    print_diagnostics(d);
    if (plan && private_dir && private_dir->valid()) {
        if (auto r = private_dir->prepare(plan->uid, plan->gid); !r) {
            std::fprintf(stderr, "butter: %s\n", r.error().what().c_str());
            return std::nullopt;
        }
    }
    return plan;
}

// Below the strongest tier: one line on what the run has and has not.
std::string tier_notice(const SandboxPlan& plan) {
    std::string s =
        std::string("butter: isolation: the ") + profile::to_string(plan.tier) + " tier";
    if (!plan.tier_reason.empty()) s += " (" + plan.tier_reason + ")";
    if (plan.tier == profile::Tier::Landlock)
        s += ", Landlock ABI " + std::to_string(plan.landlock_abi);
    if (!plan.uncovered.empty()) {
        s += "; not covered: ";
        for (std::size_t i = 0; i < plan.uncovered.size(); ++i)
            s += (i ? ", " : "") + plan.uncovered[i];
    }
    return s;
}

// A run's signals, before the clone: the forwarded ones blocked (one that arrives in between
// stays pending for the supervisor's signalfd instead of killing butter), and SIGPIPE ignored
// (a reader of butter's output that goes away is EPIPE to handle, not a death: the report must
// still be written, the cgroups removed). Said on stderr when it fails.
struct RunSignals {
    SignalMaskGuard blocked;
    bool sigpipe_default = true;  // the caller's SIGPIPE disposition, for the command
};
std::optional<RunSignals> take_signals(const SandboxPlan& plan) {
    auto blocked = SignalMaskGuard::block(supervised_signals(plan));
    if (!blocked) {
        std::fprintf(stderr, "butter: %s\n", blocked.error().what().c_str());
        return std::nullopt;
    }
    struct sigaction ignore {
    }, caller{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &caller);
    set_sigpipe_ignored(true);  // (no need for NoSigpipe's guard around each write)
    return RunSignals{std::move(*blocked), caller.sa_handler == SIG_DFL};
}

int cmd_run(const Cli& cli, EarlyChild early, int listen_fds, SpawnMode mode) {
    const auto started = std::chrono::steady_clock::now();
    // The heap the set-up fills, mapped in one go (a failure, on a kernel before 5.14, only
    // costs the faults it would have saved). Not the program text: the sandbox child shares
    // this memory (spawn.hpp), so the text pages the run needs fault in once, a few at a
    // time with the kernel's fault-around, which measures cheaper than mapping all of it
    // here (the supervisor maps the rest once the command runs: run_sandbox).
    (void)prefault_heap();
    PrivateDir private_dir;  // the tiers below namespaces: TMPDIR and HOME, gone after the run
    auto plan = load_and_plan(cli, cli.args, listen_fds, &private_dir);
    if (!plan) return kFailed;
    // The report's directory, held from before the sandbox runs: nothing the sandbox leaves at
    // that path (a symlink, a hard link) redirects it (host_path.hpp).
    std::optional<HostFile> report;
    if (!plan->report_path.empty() && plan->report_path != "-") {
        auto f = HostFile::at(plan->report_path);
        if (!f) {
            std::fprintf(stderr, "butter: report: %s\n", f.error().what().c_str());
            return kFailed;
        }
        report = std::move(*f);
    }
    const HostFile* report_file = report ? &*report : nullptr;
    // The same for the changes file.
    std::optional<HostFile> changes_file;
    if (!plan->changes.path.empty() && plan->changes.path != "-") {
        auto f = HostFile::at(plan->changes.path);
        if (f) {
            if (auto ok = f->check_replaceable(); !ok) f = fail(std::move(ok).error());
        }
        if (!f) {
            std::fprintf(stderr, "butter: --changes: %s\n", f.error().what().c_str());
            return kFailed;
        }
        changes_file = std::move(*f);
    }
    auto signals = take_signals(*plan);
    if (!signals) return kFailed;
    auto& blocked = signals->blocked;
    Fd upper;  // the workspace overlay's, from the last attempt
    auto options = [&](EarlyChild* early_child) {
        SupervisorOptions so;
        so.sigpipe_default = signals->sigpipe_default;
        so.verbosity = cli.verbosity;
        so.events_fd = cli.events_fd;
        so.early = early_child;
        so.mode = mode;
        // The command runs on another CPU now (when there is one): map the rest of our text
        // meanwhile, so that the reaction to its exit, on the path to butter's own, takes no
        // page faults (~0.05 ms less for a short command). Once it has run for a while, butter
        // only waits: it gives back what set-up alone used (its code and rodata pages, free
        // heap); a command that ends sooner pays nothing, and later the loop's code faults
        // back in.
        cpu_set_t cpus;
        if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1)
            so.on_started = [] { (void)prefault_program_text(); };
        so.on_idle = [] {
            (void)release_program_text();
            ::malloc_trim(0);
        };
        // Limits on cgroup v2: butter is a process of its own, it may move itself (into a leaf
        // of its cgroup, or into a systemd scope when that cgroup is not delegated to it).
        so.cgroup_move_self = true;
        so.cgroup_new_scope = [verbosity = cli.verbosity]() -> Result<void> {
            BUTTER_ASSIGN_OR_RETURN(std::string unit, move_into_systemd_scope());
            if (verbosity > 1)
                std::fprintf(stderr, "butter: limits in systemd scope %s\n", unit.c_str());
            return {};
        };
        // Its changes are walked only for someone: --changes, a commit, the report, --events.
        bool changes_wanted = !plan->changes.path.empty() ||
                              plan->changes.commit != profile::CommitPolicy::Never ||
                              !plan->report_path.empty() || cli.events_fd >= 0;
        if (!changes_wanted) plan->changes.mount = -1;  // (the child then sends nothing)
        if (plan->changes.mount >= 0) so.on_changes = [&upper](Fd fd) { upper = std::move(fd); };
        return so;
    };
    if (plan->tier != profile::Tier::Namespaces && cli.verbosity > 0) say(tier_notice(*plan));
    auto outcome = run_cli_sandbox(*plan, blocked.previous(), options(&early));
    // The host refused the namespaces: the next tier down, if the profile allows one.
    bool refused = outcome ? outcome->isolation_refused : host_refused_namespaces(outcome.error());
    if (refused && plan->tier == profile::Tier::Namespaces && plan->tier_auto) {
        std::string why = outcome ? outcome->message : outcome.error().what();
        auto lower_tier = next_tier(*plan, landlock_abi_version().value_or(0));
        if (!lower_tier) {
            why += std::string(" (isolation.minimum = \"") +
                   profile::to_string(plan->tier_minimum) + "\": no lower tier" +
                   (plan->tier_minimum == profile::Tier::Namespaces
                        ? "; --set isolation.minimum=landlock allows the landlock tier)"
                        : ")");
            if (outcome)
                outcome->message = why;
            else
                outcome = fail(Error::message("isolation", why));
        } else {
            TierChoice next{*lower_tier, "the namespaces were refused: " + why};
            auto lower = load_and_plan(cli, cli.args, listen_fds, &private_dir, next);
            if (!lower) {
                outcome =
                    fail(Error::message("isolation", why + "; and no lower tier could be planned"));
            } else {
                plan = std::move(lower);
                Events events(cli.events_fd);
                events.count_from(started);
                events.emit("isolation", {{"tier", Events::str(profile::to_string(plan->tier))},
                                          {"reason", Events::str(plan->tier_reason)}});
                if (cli.verbosity > 0) say(tier_notice(*plan));
                outcome = run_cli_sandbox(*plan, blocked.previous(), options(nullptr));
            }
        }
    }
    if (private_dir.valid())
        if (auto gone = private_dir.remove(); !gone && cli.verbosity > 0)
            say("butter: warning: the private TMPDIR and HOME: " + gone.error().what());
    if (outcome && upper.valid()) {
        bool succeeded = outcome->kind == RunOutcome::Kind::Exited && outcome->code == 0;
        auto done = changes::finish_workspace(
            *plan, upper, changes_file ? &*changes_file : nullptr, succeeded,
            [](const std::string& line) { std::printf("%s\n", line.c_str()); },
            [&cli](const std::string& w) {
                if (cli.verbosity > 0) say("butter: changes: " + w);
            });
        std::fflush(stdout);
        if (done && !done->commit_error.empty()) {
            // The changes are known, their commit failed: both in the report.
            outcome->changes = RunOutcome::Changes{done->counts.added, done->counts.modified,
                                                   done->counts.deleted, done->counts.bytes, false};
            done = fail(Error::message("workspace.commit", done->commit_error));
        }
        if (done) {
            outcome->changes =
                RunOutcome::Changes{done->counts.added, done->counts.modified, done->counts.deleted,
                                    done->counts.bytes, done->committed};
            Events events(cli.events_fd);
            events.count_from(started);
            events.emit("changes", {{"added", std::to_string(done->counts.added)},
                                    {"modified", std::to_string(done->counts.modified)},
                                    {"deleted", std::to_string(done->counts.deleted)},
                                    {"bytes", std::to_string(done->counts.bytes)},
                                    {"committed", done->committed ? "true" : "false"}});
        } else {
            // The run's report says so too: butter failed, whatever the command did.
            std::string why = "changes: " + done.error().what() +
                              " (the command's own status was " +
                              std::to_string(outcome->exit_status()) + ")";
            outcome->message += (outcome->message.empty() ? "" : "; ") + why;
            outcome->failed_after = true;
        }
    }
    // The report first, then the last lines on stderr, which may be a terminal that no
    // longer reads (say() gives it a moment, not forever).
    if (!outcome) {
        // butter itself failed: still a report, so a CI system sees why.
        RunOutcome failed;
        failed.kind = RunOutcome::Kind::SetupFailed;
        failed.message = outcome.error().what();
        if (!plan->report_path.empty()) (void)write_report(report_file, report_json(*plan, failed));
        say("butter: " + outcome.error().what());
        return kFailed;
    }
    Result<void> written;
    if (!plan->report_path.empty())
        written = write_report(report_file, report_json(*plan, *outcome));
    if (!outcome->message.empty()) say("butter: " + outcome->message);
    if (cli.verbosity > 0)
        for (const std::string& h : learn::hints(*plan, *outcome))
            say("butter: hint: " + h);
    if (outcome->kind == RunOutcome::Kind::TimedOut && cli.verbosity > 0)
        say("butter: time limit reached, command stopped");
    if (!written) {
        // A report that is not butter's may be whatever the sandbox left at its path: a reader
        // of it must not take it for the run's (125, not the command's own status).
        say("butter: report: " + written.error().what() + " (the command's own status was " +
            std::to_string(outcome->exit_status()) + ")");
        return kFailed;
    }
    return outcome->exit_status();
}

// `butter learn`: BASE, the profile to merge and the one to compare with are read before the
// command runs (nothing the learning run could write is read back); the learning run; the
// profile written (stdout, which the command's own output then does not share: it goes to
// stderr).
int cmd_learn(const Cli& cli, int listen_fds) {
    profile::LoadOptions lo;
    lo.overrides = cli.sets;
    profile::Loaded base = profile::load(cli.profile, lo);
    print_diagnostics(base.diagnostics);
    if (!base.ok()) return kFailed;
    std::string extends = cli.profile.value_or("default");
    if (extends.find('/') != std::string::npos || extends.ends_with(".toml")) {
        char real[PATH_MAX];
        if (::realpath(extends.c_str(), real)) extends = real;
    }
    PlanOptions po;
    po.argv = cli.args;
    po.timeout = cli.timeout;
    po.builtin_programs = seccomp::kBuiltinPrograms;
    po.listen_fds = listen_fds;
    profile::Diagnostics d;
    auto base_plan = make_plan(base.profile, po, d);
    print_diagnostics(d);
    if (!base_plan) return kFailed;
    std::optional<profile::Value> merge;
    if (cli.merge) {
        // Its entries become the new profile's: trusted as a profile is.
        if (std::string why = profile::distrust(*cli.merge); !why.empty()) {
            std::fprintf(stderr, "butter: --merge: %s\n", why.c_str());
            return kFailed;
        }
        profile::Diagnostics md;
        merge = profile::read_toml_file(*cli.merge, md);
        print_diagnostics(md);
        if (!merge) return kFailed;
    }
    std::optional<std::string> previous;  // --diff: the text compared with
    if (cli.diff) {
        // A profile's file, as `--merge` reads it (a regular file, bounded), or none yet.
        const std::string& path = cli.output ? *cli.output : *cli.merge;
        previous = "";
        if (::access(path.c_str(), F_OK) == 0) {
            profile::Diagnostics pd;
            if (!profile::read_toml_file(path, pd)) {
                print_diagnostics(pd);
                return kFailed;
            }
            auto text = read_file(path.c_str());
            if (!text) {
                std::fprintf(stderr, "butter: --diff: %s\n", text.error().what().c_str());
                return kFailed;
            }
            previous = *text;
        }
    }
    std::optional<HostFile> out;
    if (cli.output && !cli.diff) {
        std::string path = *cli.output;
        if (path[0] != '/') {
            char cwd[PATH_MAX];
            if (::getcwd(cwd, sizeof cwd)) path = std::string(cwd) + "/" + path;
        }
        auto f = HostFile::at(path);
        if (f) {
            if (auto ok = f->check_replaceable(); !ok) f = fail(std::move(ok).error());
        }
        if (!f) {
            std::fprintf(stderr, "butter: -o: %s\n", f.error().what().c_str());
            return kFailed;
        }
        out = std::move(*f);
    }
    // The learning run; without the network when the host cannot give it (no pasta or nft, or
    // pasta refused), said in the profile.
    std::string network_note = cli.offline ? "--offline" : "";
    std::optional<SandboxPlan> plan;
    for (bool network : {!cli.offline, false}) {
        profile::Profile learning = learn::learning_profile(base.profile, *base_plan, network);
        profile::Diagnostics ld;
        plan = make_plan(learning, po, ld);
        if (plan || !network) {
            std::erase_if(ld, [](const profile::Diagnostic& x) { return !x.is_error(); });
            print_diagnostics(ld);
            break;
        }
        for (const auto& x : ld)
            if (x.is_error()) network_note = x.message;
    }
    if (!plan) return kFailed;
    auto signals = take_signals(*plan);
    if (!signals) return kFailed;
    auto& blocked = signals->blocked;
    Fd profile_out;  // stdout, for the profile or the diff; the command's is stderr meanwhile
    if (!out) {
        int fd = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || ::dup2(2, 1) < 0) {
            std::fprintf(stderr, "butter: dup2: %s\n", std::strerror(errno));
            return kFailed;
        }
        profile_out = Fd(fd);
    }
    auto run = [&](const SandboxPlan& p) {
        SupervisorOptions so;
        so.sigpipe_default = signals->sigpipe_default;
        so.verbosity = cli.verbosity;
        so.cgroup_move_self = true;
        return run_cli_sandbox(p, blocked.previous(), std::move(so));
    };
    auto outcome = run(*plan);
    std::string failed = !outcome                                         ? outcome.error().what()
                         : outcome->kind == RunOutcome::Kind::SetupFailed ? outcome->message
                                                                          : "";
    if (plan->net.on && failed.find("pasta") != std::string::npos) {
        network_note = failed;
        profile::Diagnostics ld;
        plan = make_plan(learn::learning_profile(base.profile, *base_plan, false), po, ld);
        if (!plan) return kFailed;
        outcome = run(*plan);
    }
    if (profile_out.valid()) (void)::dup2(profile_out.get(), 1);
    if (!outcome || outcome->kind == RunOutcome::Kind::SetupFailed) {
        say("butter: " + (outcome ? outcome->message : outcome.error().what()));
        return kFailed;
    }
    learn::Input in;
    in.extends = extends;
    in.tree = &base.tree;
    in.base = &base.profile;
    in.base_plan = &*base_plan;
    in.outcome = &*outcome;
    in.command = cli.args;
    in.sets = cli.sets;
    in.network_note = network_note;
    if (merge) {
        in.merge = &*merge;
        in.merge_name = *cli.merge;
    }
    std::string text = learn::propose(in);
    int status = outcome->exit_status();
    if (status != 0 && cli.verbosity > 0)
        say("butter: learn: the command exited with status " + std::to_string(status) +
            ": the profile has what it used until then");
    if (cli.diff) {
        auto diff = changes::unified_diff(*previous, text, cli.output ? *cli.output : *cli.merge,
                                          "learned");
        if (!diff) {
            say("butter: --diff: too large to compare");
            return kFailed;
        }
        std::fputs(diff->c_str(), stdout);
        return diff->empty() ? 0 : 1;
    }
    if (out) {
        if (auto w = out->replace(text); !w) {
            say("butter: -o: " + w.error().what());
            return kFailed;
        }
        // Said now rather than by the run that would refuse it.
        if (std::string why = profile::distrust(out->path()); !why.empty() && cli.verbosity > 0)
            say("butter: warning: " + why + ": `butter run -p` will not read it there");
    } else {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    }
    return status;
}

int cmd_check(const Cli& cli) {
    int status = 0;
    for (const std::string& spec : cli.args) {
        Cli one = cli;
        one.profile = spec;
        profile::LoadOptions lo;
        profile::Loaded loaded = profile::load(spec, lo);
        profile::Diagnostics d = loaded.diagnostics;
        if (loaded.ok()) {
            PlanOptions po;
            po.argv = {"true"};
            auto plan = make_plan(loaded.profile, po, d);
            // What the plan cannot see: whether this kernel makes the overlays it asks for.
            auto tmpfs_upper = [](const MountStep& m) {
                return m.type == profile::MountType::Overlay && !m.options.empty();
            };
            if (plan && std::any_of(plan->mounts.begin(), plan->mounts.end(), tmpfs_upper)) {
                if (std::string why = overlay_problem(); !why.empty()) {
                    profile::SourceLoc at = loaded.profile.loc_of("filesystem.mounts");
                    if (loaded.profile.filesystem.workspace == profile::WorkspaceMode::Overlay)
                        at = loaded.profile.loc_of("filesystem.workspace");
                    d.push_back(
                        profile::error_at(at, "overlay mounts cannot be made here: " + why));
                }
            }
        }
        print_diagnostics(d, true);
        if (profile::has_errors(d))
            status = 1;
        else
            std::printf("%s: ok\n", spec.c_str());
    }
    return status;
}

// The key table as documentation: for --help-like reading, the man page, README.
int show_keys(const std::string& format) {
    for (const auto& k : profile::key_docs()) {
        if (format == "roff") {
            std::printf(".TP\n.B %s\n(%s, default: %s)\n%s\n", k.key.c_str(), k.type.c_str(),
                        k.default_text.c_str(), k.doc.c_str());
        } else if (format == "markdown") {
            std::string def = k.default_text;
            for (auto& c : def)
                if (c == '\n') c = ' ';
            // A '|' in a cell would end it: escaped, as GitHub's tables take it.
            std::string doc;
            for (char c : k.doc)
                doc += c == '|' ? std::string("\\|") : std::string(1, c);
            std::printf("| `%s` | %s | `%s` | %s |\n", k.key.c_str(), k.type.c_str(), def.c_str(),
                        doc.c_str());
        } else {
            std::printf("%-28s %-22s %s\n%28s default: %s\n", k.key.c_str(), k.type.c_str(),
                        k.doc.c_str(), "", k.default_text.c_str());
        }
    }
    return 0;
}

int cmd_show(const Cli& cli) {
    if (!cli.keys_format.empty()) return show_keys(cli.keys_format);
    profile::LoadOptions lo;
    lo.overrides = cli.sets;
    profile::Loaded loaded = profile::load(cli.profile, lo);
    print_diagnostics(loaded.diagnostics);
    if (!loaded.ok()) return 1;
    std::fputs(profile::show_profile(loaded.profile).c_str(), stdout);
    // What butter adds to the profile's own seccomp rules, and which key asks for each (as
    // comments: the output stays a profile that `check` accepts).
    auto implicit = seccomp::implicit_rules(loaded.profile);
    if (!implicit.empty())
        std::printf(
            "\n# butter adds these seccomp rules (clone3's flags are in memory, where a "
            "filter cannot\n# check them: ENOSYS makes libc fall back to clone):\n");
    for (const auto& r : implicit)
        std::printf("#   %s: %s\n", r.key, r.text.c_str());
    return 0;
}

int cmd_profiles() {
    for (const auto& p : profile::list_profiles(profile::search_path()))
        std::printf("%-16s %-40s %s\n", p.name.c_str(), p.path.c_str(), p.description.c_str());
    return 0;
}

int cmd_syscalls(const Cli& cli) {
    const auto& groups = seccomp::groups();
    if (cli.args.empty()) {
        for (const auto& [name, members] : groups) {
            profile::Diagnostics d;
            auto native = seccomp::expand(
                {"@" + name}, [](std::size_t) { return profile::SourceLoc{}; }, d);
            std::printf("@%-16s %zu syscalls\n", name.c_str(), native.size());
        }
        return 0;
    }
    int status = 0;
    for (const std::string& g : cli.args) {
        profile::Diagnostics d;
        auto native = seccomp::expand(
            {g.starts_with("@") ? g : "@" + g},
            [](std::size_t) {
                return profile::SourceLoc{"butter syscalls", 0, 0};
            },
            d);
        if (profile::has_errors(d)) {
            print_diagnostics(d);
            status = 2;
            continue;
        }
        for (const auto& n : native)
            std::printf("%s\n", n.c_str());
    }
    return status;
}

std::atomic<bool> g_interrupted{false};

// `butter apply FILE [DIR]` and `butter diff FILE [DIR]` ("-" reads the archive from stdin).
// SIGINT, SIGTERM and SIGHUP stop an apply before it changes anything (its staged files
// removed); once the renames begin it finishes them.
int cmd_changes(const Cli& cli) {
    Fd tar;
    if (cli.args[0] != "-") {
        int fd = ::open(cli.args[0].c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            std::fprintf(stderr, "butter: %s: %s\n", cli.args[0].c_str(), std::strerror(errno));
            return 1;
        }
        tar = Fd(fd);
    }
    std::string dir_path = cli.args.size() > 1 ? cli.args[1] : ".";
    int d = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) {
        std::fprintf(stderr, "butter: %s: %s\n", dir_path.c_str(), std::strerror(errno));
        return 1;
    }
    Fd dir(d);
    int in = tar.valid() ? tar.get() : 0;
    if (cli.command == Cli::Command::Diff) {
        auto r = changes::diff_changes(
            in, dir, [](const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); });
        std::fflush(stdout);
        if (!r) {
            std::fprintf(stderr, "butter: %s\n", r.error().what().c_str());
            return 2;
        }
        // As diff(1): 1 when there are differences.
        return r->added + r->modified + r->deleted > 0 ? 1 : 0;
    }
    struct sigaction stop {};
    stop.sa_handler = [](int) { g_interrupted = true; };
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        ::sigaction(sig, &stop, nullptr);
    changes::ApplyOptions o;
    o.dry_run = cli.dry_run;
    o.cancel = &g_interrupted;
    o.on_change = [&](changes::Kind k, const std::string& path) {
        if (cli.dry_run || cli.verbosity > 1)
            std::printf("%s %s\n", changes::kind_name(k), changes::quote_path(path).c_str());
    };
    auto r = changes::apply_changes(in, dir, o);
    if (!r) {
        std::fflush(stdout);
        std::fprintf(stderr, "butter: %s\n", r.error().what().c_str());
        return 1;
    }
    if (cli.verbosity > 0 && !cli.dry_run)
        std::fprintf(stderr, "butter: applied %llu added, %llu modified, %llu deleted\n",
                     static_cast<unsigned long long>(r->added),
                     static_cast<unsigned long long>(r->modified),
                     static_cast<unsigned long long>(r->deleted));
    return 0;
}

// `butter run --pool NAME`: the command to a sandbox the pool prepared (pool/pool.hpp), its
// signals relayed, its status and report as a plain run's.
int cmd_run_pooled(const Cli& cli) {
    pool::Command command;
    command.argv = cli.args;
    command.context = pool::ProcessContext::of_this_process();  // (before the signals below)
    for (char** e = environ; e && *e; ++e)
        command.env.emplace_back(*e);
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) {
        std::fprintf(stderr, "butter: getcwd: %s\n", std::strerror(errno));
        return kFailed;
    }
    command.cwd = cwd;
    std::optional<HostFile> report;
    if (cli.report) {
        command.report = true;
        if (*cli.report != "-") {
            std::string path = *cli.report;
            if (path[0] != '/') path = std::string(cwd) + "/" + path;
            auto f = HostFile::at(path);
            if (!f) {
                std::fprintf(stderr, "butter: report: %s\n", f.error().what().c_str());
                return kFailed;
            }
            report = std::move(*f);
        }
    }
    SignalSet relayed{SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    auto blocked = SignalMaskGuard::block(relayed);
    auto sfd = blocked ? SignalFd::create(relayed, SignalFdFlag::NonBlock)
                       : Result<SignalFd>(fail(blocked.error()));
    if (!sfd) {
        std::fprintf(stderr, "butter: %s\n", sfd.error().what().c_str());
        return kFailed;
    }
    const int stdio[3] = {0, 1, 2};
    auto reply = pool::run(*cli.pool, std::move(command), stdio, sfd->fd());
    if (!reply) {
        say("butter: " + pool::describe(*cli.pool, reply.error()));
        return kFailed;
    }
    Result<void> written;
    if (cli.report) written = write_report(report ? &*report : nullptr, reply->report);
    if (cli.verbosity > 0 && !reply->log.empty()) {
        std::string log = reply->log;
        log.pop_back();
        say(log);
    }
    if (!reply->messages.empty()) {
        std::string m = reply->messages;
        m.pop_back();
        say(m);
    }
    if (!written) {
        say("butter: report: " + written.error().what() + " (the command's own status was " +
            std::to_string(reply->status) + ")");
        return kFailed;
    }
    return reply->status;
}

int cmd_pool(const Cli& cli) {
    const std::string& name = cli.args[1];
    if (cli.args[0] == "stop") {
        if (auto r = pool::stop(name); !r) {
            std::fprintf(stderr, "butter: %s\n", pool::describe(name, r.error()).c_str());
            return 1;
        }
        return 0;
    }
    pool::StartOptions o;
    o.name = name;
    o.profile = cli.profile;
    o.sets = cli.sets;
    o.size = cli.pool_size;
    o.foreground = cli.foreground;
    o.verbosity = cli.verbosity;
    o.builtin_programs = seccomp::kBuiltinPrograms;
    return pool::start(o);
}

// The sandbox's init shares butter's memory (spawn.hpp), so its /proc/1/cmdline is butter's
// command line, which names host paths (bind sources, profiles) and --set values. Once parsed,
// it is overwritten in place (as setproctitle does) with "butter run": the kernel shows that
// to the sandbox, and to the host's ps.
// A pool's sandboxes likewise: their init is forked from the pool's daemon, shown as "butter
// pool NAME" (the name is the caller's own word, no host path).
void hide_command_line(int argc, char** argv, const std::string& pool = "") {
    if (argc < 1) return;
    char* begin = argv[0];
    char* end = argv[argc - 1] + std::strlen(argv[argc - 1]);
    std::memset(begin, 0, static_cast<std::size_t>(end - begin));
    std::string shown =
        pool.empty() ? std::string("butter\0run", 10) : std::string("butter\0pool\0", 12) + pool;
    if (static_cast<std::size_t>(end - begin) >= shown.size() + 1)
        std::memcpy(begin, shown.data(), shown.size());
}

}  // namespace
}  // namespace butter::launcher

int main(int argc, char** argv) {
    using namespace butter::launcher;
    // What systemd passed, before butter has a descriptor of its own at any of those numbers.
    // The OCI runtime (oci/runtime.hpp): `butter oci ...`, or this binary as `butter-oci`.
    if (std::string_view self = argc > 0 ? argv[0] : "";
        self == "butter-oci" || self.ends_with("/butter-oci"))
        return oci::main(std::vector<std::string>(argv + 1, argv + argc));
    if (argc > 1 && std::string_view(argv[1]) == "oci")
        return oci::main(std::vector<std::string>(argv + 2, argv + argc));
    std::string listen_why;
    int listen_fds = socket_activation_fds(listen_why);
    // The sandbox, first of all, while butter parses and plans (spawn.hpp). If it cannot be
    // had, or the plan does not fit it, spawn clones one later as always.
    // BUTTER_SPAWN=fork: the fork-like clone alone (spawn.hpp), for CI to test that path.
    auto mode = spawn_mode_from_env();
    EarlyChild early;
    if (mode && *mode == SpawnMode::Auto && may_run_a_sandbox(argc, argv))
        if (auto e = EarlyChild::start()) early = std::move(*e);
    std::vector<std::string> args(argv, argv + argc);
    auto cli = parse_cli(args);
    if (!cli) {
        std::fprintf(stderr, "butter: %s\n", cli.error().text().c_str());
        // `run` promises 125 for its own failures; the other commands use 2 for usage errors.
        return args.size() > 1 && (args[1] == "run" || args[1] == "learn") ? kFailed : 2;
    }
    switch (cli->command) {
        case Cli::Command::Version:
            std::printf("butter %s\n", BUTTER_VERSION);
            return 0;
        case Cli::Command::Help:
            std::fputs(usage().c_str(), stdout);
            return 0;
        case Cli::Command::Run:
            if (cli->pool) return cmd_run_pooled(*cli);
            hide_command_line(argc, argv);  // `args` and `cli` hold copies
            if (!listen_why.empty() && cli->verbosity > 0)
                std::fprintf(stderr, "butter: socket activation ignored: %s\n", listen_why.c_str());
            if (!mode) {
                std::fprintf(stderr, "butter: %s\n", mode.error().what().c_str());
                return kFailed;
            }
            return cmd_run(*cli, std::move(early), listen_fds, *mode);
        case Cli::Command::Learn:
            return cmd_learn(*cli, listen_fds);
        case Cli::Command::Check:
            return cmd_check(*cli);
        case Cli::Command::Show:
            return cmd_show(*cli);
        case Cli::Command::Profiles:
            return cmd_profiles();
        case Cli::Command::Syscalls:
            return cmd_syscalls(*cli);
        case Cli::Command::Doctor:
            return run_doctor();
        case Cli::Command::Apply:
        case Cli::Command::Diff:
            return cmd_changes(*cli);
        case Cli::Command::Pool:
            hide_command_line(argc, argv, cli->args[1]);
            return cmd_pool(*cli);
    }
    return 2;
}
