// butter/sandbox.hpp: the library API over the pipeline (profile -> plan -> spawn ->
// supervise), with the library's clone mode and none of the butter program's process-wide
// settings (signal mask, SIGPIPE, dumpable, memory tuning, subreaper).
#include <butter/sandbox.hpp>

#include <fcntl.h>

#include <signal.h>

#include "plan/host_path.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "seccomp/builtin.hpp"
#include "supervise/report.hpp"
#include "supervise/supervisor.hpp"

namespace butter {

namespace {

using launcher::SandboxPlan;
namespace profile = launcher::profile;

// The first error of a profile, as `butter check` prints it (and how many more there are).
Error profile_error(const profile::Diagnostics& d) {
    std::string first;
    std::size_t errors = 0;
    for (const auto& x : d) {
        if (!x.is_error()) continue;
        if (errors++ == 0) first = x.render();
    }
    if (errors > 1) first += " (and " + std::to_string(errors - 1) + " more)";
    return Error::message("profile", first);
}

}  // namespace

struct SandboxProfile::Source {
    enum class Kind { Builtin, File, Text } kind = Kind::Builtin;
    std::string spec;  // File: the path or name; Text: the TOML
    std::string origin;
    std::vector<std::string> overrides;  // "KEY=VALUE", in order

    profile::Loaded load() const {
        profile::LoadOptions lo;
        lo.overrides = overrides;
        switch (kind) {
            case Kind::Builtin:
                return profile::load(std::nullopt, lo);
            case Kind::File:
                return profile::load(spec, lo);
            case Kind::Text:
                return profile::load_text(spec, origin, lo);
        }
        return {};
    }
};

namespace {

Result<profile::Loaded> checked(const SandboxProfile::Source& s) {
    profile::Loaded l = s.load();
    if (!l.ok()) return fail(profile_error(l.diagnostics));
    return l;
}

}  // namespace

SandboxProfile SandboxProfile::builtin() {
    return SandboxProfile(std::make_shared<Source>());
}

Result<SandboxProfile> SandboxProfile::load(const std::string& name_or_path) {
    auto s = std::make_shared<Source>();
    s->kind = Source::Kind::File;
    s->spec = name_or_path;
    BUTTER_TRY(checked(*s));
    return SandboxProfile(std::move(s));
}

Result<SandboxProfile> SandboxProfile::parse(std::string_view toml, const std::string& origin) {
    auto s = std::make_shared<Source>();
    s->kind = Source::Kind::Text;
    s->spec = std::string(toml);
    s->origin = origin;
    BUTTER_TRY(checked(*s));
    return SandboxProfile(std::move(s));
}

Result<void> SandboxProfile::set(std::string_view key, std::string_view toml_value) {
    auto s = std::make_shared<Source>(*source_);
    s->overrides.push_back(std::string(key) + "=" + std::string(toml_value));
    BUTTER_TRY(checked(*s));
    source_ = std::move(s);
    return {};
}

std::string SandboxProfile::to_toml() const {
    profile::Loaded l = source_->load();
    return profile::show_profile(l.profile);
}

struct Sandbox::Impl {
    SandboxPlan plan;
    SandboxOptions options;
    std::optional<launcher::HostFile> report_file;
    std::unique_ptr<launcher::Supervisor> supervisor;
    Task<void> driver;
    std::optional<AsyncEvent> done;
    std::optional<Result<SandboxOutcome>> outcome;

    ~Impl() {
        // Still running: nothing of it outlives its owner.
        if (supervisor && !outcome) supervisor->abandon();
        driver = Task<void>();  // its frames go before the supervisor they refer to
    }

    Task<void> drive() {
        Result<SandboxOutcome> r = co_await supervisor->run();
        if (!r && r.error().errno_value() == ECHILD)
            r = fail(std::move(r).error().with_hint(
                "this process reaped the sandbox's first process before butter could: a "
                "SIGCHLD handler that calls waitpid(-1), or SIGCHLD ignored after start(); "
                "reap only your own children"));
        if (r) {
            r->report = launcher::report_json(plan, *r);
            if (report_file)
                if (auto w = launcher::write_report(&*report_file, r->report); !w)
                    r = fail(std::move(w).error().with_context("report"));
        }
        outcome = std::move(r);
        // What the run held (its cgroups, pipes, timers, watches) goes with it, not with the
        // Sandbox object, which a caller may keep for a while.
        supervisor.reset();
        report_file.reset();
        done->set();
    }
};

Result<Sandbox> Sandbox::create(const SandboxProfile& profile, SandboxOptions options) {
    BUTTER_ASSIGN_OR_RETURN(profile::Loaded loaded, checked(*profile.source_));
    if (options.command.empty())
        return fail(Error::message("Sandbox::create", "no command to run"));
    launcher::PlanOptions po;
    po.argv = options.command;
    for (const auto& b : options.binds)
        po.binds.emplace_back(b.source, b.target);
    for (const auto& b : options.ro_binds)
        po.ro_binds.emplace_back(b.source, b.target);
    po.timeout = options.timeout;
    po.events = static_cast<bool>(options.on_event);
    po.builtin_programs = launcher::seccomp::kBuiltinPrograms;
    profile::Diagnostics d;
    std::optional<SandboxPlan> plan = launcher::make_plan(loaded.profile, po, d);
    if (!plan) return fail(profile_error(d));
    for (int fd : {options.stdout_fd, options.stderr_fd})
        if (fd >= 0 && ::fcntl(fd, F_GETFD) < 0)
            return fail(Error("Sandbox::create", EBADF,
                              "stdout_fd/stderr_fd " + std::to_string(fd) + " is not open"));
    if (options.timeout && options.timeout->count() <= 0)
        return fail(Error::message("Sandbox::create", "timeout must be positive"));
    // The outcome always has the set-up's steps (the butter program records them only for
    // a report or events).
    plan->record_steps = true;
    if (!plan->namespaces.has(Namespace::Pid))
        return fail(Error::message(
            "Sandbox::create",
            "namespaces.pid = false: the library runs sandboxes with a pid namespace only (what "
            "the command leaves behind is found by making the whole process a child subreaper "
            "otherwise); run the butter program for this profile"));
    if (plan->pty)
        return fail(Error::message("Sandbox::create",
                                   "process.session = \"pty\": the butter program's (it puts "
                                   "the caller's terminal in raw mode)"));
    auto impl = std::make_unique<Impl>();
    // The report's directory, held from before the sandbox runs (host_path.hpp); "-" (stdout)
    // is the butter program's: here the outcome carries it.
    if (!plan->report_path.empty() && plan->report_path != "-") {
        auto f = launcher::HostFile::at(plan->report_path);
        if (!f) return fail(std::move(f).error().with_context("report"));
        impl->report_file = std::move(*f);
    }
    impl->plan = std::move(*plan);
    impl->options = std::move(options);
    return Sandbox(std::move(impl));
}

Sandbox::Sandbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sandbox::Sandbox(Sandbox&&) noexcept = default;
Sandbox& Sandbox::operator=(Sandbox&&) noexcept = default;
Sandbox::~Sandbox() = default;

Result<void> Sandbox::start(EventLoop& loop) {
    if (!impl_) return fail(Error("Sandbox::start", EINVAL, "a moved-from Sandbox"));
    Impl& i = *impl_;
    if (i.done) return fail(Error("Sandbox::start", EBUSY, "started already"));
    // The kernel reaps a child of a process that ignores SIGCHLD by itself: its status would
    // be gone before the supervisor could read it.
    struct sigaction chld {};
    if (::sigaction(SIGCHLD, nullptr, &chld) < 0) return fail_errno("sigaction", "SIGCHLD");
    if (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT))
        return fail(Error::message("Sandbox::start",
                                   "SIGCHLD is ignored (SIG_IGN or SA_NOCLDWAIT): the kernel "
                                   "would reap the sandbox before its status could be read")
                        .with_hint("restore SIGCHLD's default disposition before starting"));
    launcher::SupervisorOptions so;
    so.verbosity = i.options.verbosity;
    so.log_fd = -1;
    so.log = i.options.on_log;
    so.on_event = i.options.on_event;
    so.sigpipe_default = true;
    so.default_signals = true;
    sigemptyset(&so.command_mask);
    so.stdout_fd = i.options.stdout_fd;
    so.stderr_fd = i.options.stderr_fd;
    so.mode = launcher::SpawnMode::Library;
    BUTTER_ASSIGN_OR_RETURN(i.supervisor, launcher::Supervisor::create(loop, i.plan, so));
    i.done.emplace(loop);
    i.driver = i.drive();
    loop.call_soon(i.driver.handle());
    return {};
}

Task<Result<SandboxOutcome>> Sandbox::wait() {
    Impl* i = impl_.get();  // (the Sandbox itself may be moved while this waits)
    if (!i || !i->done) co_return fail(Error("Sandbox::wait", EINVAL, "not started"));
    if (!i->outcome) BUTTER_CO_TRY(co_await i->done->wait());
    co_return *i->outcome;
}

void Sandbox::stop() {
    if (impl_ && impl_->supervisor && !impl_->outcome) impl_->supervisor->stop();
}

void Sandbox::signal(int sig) {
    if (impl_ && impl_->supervisor && !impl_->outcome) impl_->supervisor->forward(sig);
}

pid_t Sandbox::pid() const {
    return impl_ && impl_->supervisor && !impl_->outcome ? impl_->supervisor->pid() : 0;
}

bool Sandbox::done() const {
    return impl_ && impl_->outcome.has_value();
}

Result<SandboxOutcome> run_sandbox(const SandboxProfile& profile, SandboxOptions options) {
    BUTTER_ASSIGN_OR_RETURN(Sandbox box, Sandbox::create(profile, std::move(options)));
    BUTTER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::create());
    BUTTER_TRY(box.start(loop));
    BUTTER_ASSIGN_OR_RETURN(Result<SandboxOutcome> outcome, loop.run_until_complete(box.wait()));
    return outcome;
}

}  // namespace butter
