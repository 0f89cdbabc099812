#include "supervise/report.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include <butter/fd.hpp>
#include <butter/landlock.hpp>
#include <butter/namespace.hpp>
#include <butter/signalfd.hpp>

#include "learn/learn.hpp"
#include "supervise/events.hpp"
#include "supervise/sink.hpp"

namespace butter::launcher {

namespace {

// The same JSON string literals as the --events stream.
std::string str(const std::string& s) {
    return Events::str(s);
}

std::string seconds(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(d.count()) / 1e9);
    return buf;
}

const char* reason(const RunOutcome& o) {
    switch (o.stop) {
        case RunOutcome::Stop::None:
            break;
        case RunOutcome::Stop::TimeLimit:
            return "time_limit";
        case RunOutcome::Stop::StopRequest:
            return "stop_request";
        case RunOutcome::Stop::Oom:
            return "oom";
        case RunOutcome::Stop::RestartLimit:
            return "restart_limit";
    }
    switch (o.kind) {
        case RunOutcome::Kind::Exited:
            return "exited";
        case RunOutcome::Kind::Signaled:
            return "signaled";
        case RunOutcome::Kind::TimedOut:
            return "time_limit";
        case RunOutcome::Kind::SetupFailed:
            return "setup_failed";
        case RunOutcome::Kind::ExecFailed:
            return "exec_failed";
    }
    return "unknown";
}

}  // namespace

// The report, written top to bottom in the order README.md documents its fields: one
// document, longer than a function should be, read against that table.
std::string isolation_json(const SandboxPlan& plan) {
    std::string scopes = "[";
    auto sc = LandlockScopes::from_raw(plan.landlock_scopes);
    if (sc.has(LandlockScope::AbstractUnixSocket)) scopes += "\"abstract_unix_socket\"";
    if (sc.has(LandlockScope::Signal))
        scopes += std::string(scopes.size() > 1 ? ", " : "") + "\"signal\"";
    std::string uncovered = "[";
    for (std::size_t i = 0; i < plan.uncovered.size(); ++i)
        uncovered += (i ? ", " : "") + str(plan.uncovered[i]);
    return std::string("{\"tier\": ") + str(profile::to_string(plan.tier)) +
           ", \"reason\": " + str(plan.tier_reason) +
           ", \"landlock_abi\": " + std::to_string(plan.landlock_abi) +
           ", \"landlock_paths\": " + std::to_string(plan.landlock_paths.size()) +
           ", \"landlock_ports\": " + std::to_string(plan.landlock_ports.size()) +
           ", \"landlock_scopes\": " + scopes + "], \"uncovered\": " + uncovered + "]}";
}

std::string report_json(const SandboxPlan& plan, const RunOutcome& o) {
    std::string j = "{\n";
    auto field = [&](const std::string& k, const std::string& v, bool last = false) {
        j += "  " + str(k) + ": " + v + (last ? "\n" : ",\n");
    };
    std::string cmd = "[";
    for (std::size_t i = 0; i < plan.argv.size(); ++i)
        cmd += (i ? ", " : "") + str(plan.argv[i]);
    field("command", cmd + "]");
    field("status", std::to_string(o.exit_status()));
    field("reason", str(reason(o)));
    field("exit_code", o.kind == RunOutcome::Kind::Exited ? std::to_string(o.code) : "null");
    field("signal", o.kind == RunOutcome::Kind::Signaled ? str(signal_name(o.signal)) : "null");
    field("error", o.message.empty() ? "null" : str(o.message));
    field("wall_seconds", seconds(o.wall));
    field("user_cpu_seconds", seconds(o.user_cpu));
    field("system_cpu_seconds", seconds(o.system_cpu));
    field("max_rss_bytes", std::to_string(o.max_rss_bytes));
    field("peak_memory_bytes", o.peak_memory ? std::to_string(*o.peak_memory) : "null");
    field("peak_pids", o.peak_pids ? std::to_string(*o.peak_pids) : "null");
    std::string hits = "[";
    for (std::size_t i = 0; i < o.limits_hit.size(); ++i)
        hits += (i ? ", " : "") + str(o.limits_hit[i]);
    field("limits_hit", hits + "]");
    // Every limit of the run, and what held it.
    std::string limits = "{";
    auto limit = [&](const char* name, const std::string& value, const std::string& how) {
        limits += (limits.size() > 1 ? ", " : "") + str(name) + ": {\"value\": " + value +
                  ", \"enforced_by\": " + str(how) + "}";
    };
    if (plan.time_limit) limit("time", seconds(*plan.time_limit), "timerfd (wall clock)");
    static constexpr struct {
        int resource;
        const char* key;
        const char* rlimit;
    } kRlimits[] = {{RLIMIT_CPU, "cpu", "RLIMIT_CPU"},
                    {RLIMIT_NOFILE, "open_files", "RLIMIT_NOFILE"},
                    {RLIMIT_FSIZE, "file_size", "RLIMIT_FSIZE"},
                    {RLIMIT_CORE, "core", "RLIMIT_CORE"},
                    {RLIMIT_STACK, "stack", "RLIMIT_STACK"}};
    for (const Rlimit& r : plan.rlimits)
        for (const auto& k : kRlimits)
            if (k.resource == r.resource) limit(k.key, std::to_string(r.value), k.rlimit);
    for (const RunOutcome::LimitHeld& h : o.limits_held) {
        std::string value =
            h.limit == "memory" && plan.memory_limit ? std::to_string(*plan.memory_limit)
            : h.limit == "pids" && plan.pids_limit   ? std::to_string(*plan.pids_limit)
            : h.limit == "cpus" && plan.cpus         ? std::to_string(*plan.cpus)
                                                     : "null";
        limit(h.limit.c_str(), value, h.how);
    }
    field("limits", limits + "}");
    field("restarts", std::to_string(o.restarts));
    std::string denied = "{";
    bool first = true;
    for (const auto& [name, count] : o.denied) {
        denied += (first ? "" : ", ") + str(name) + ": " + std::to_string(count);
        first = false;
    }
    field("denied_syscalls", denied + "}");
    field("denials_throttled_seconds", seconds(o.denials_throttled));
    std::string steps = "[";
    for (std::size_t i = 0; i < o.setup_steps.size(); ++i)
        steps += (i ? ", " : "") + std::string("{\"step\": ") + str(o.setup_steps[i].first) +
                 ", \"seconds\": " + seconds(o.setup_steps[i].second) + "}";
    field("setup", steps + "]");
    field("isolation", isolation_json(plan));
    if (plan.net.on) {
        std::string uses = "[";
        for (const RunOutcome::NetworkUse& u : o.network) {
            uses += (uses.size() > 1 ? ", " : "") + std::string("{\"kind\": ") + str(u.kind) +
                    ", \"name\": " + (u.name.empty() ? std::string("null") : str(u.name));
            if (u.kind == "connection")
                uses += ", \"address\": " + str(u.address) +
                        ", \"port\": " + std::to_string(u.port) +
                        ", \"protocol\": " + str(u.protocol);
            uses += ", \"verdict\": " + str(u.verdict) + ", \"count\": " + std::to_string(u.count) +
                    "}";
        }
        std::string allow = "[";
        for (const auto& e : plan.net.allow)
            allow += (allow.size() > 1 ? ", " : "") + str(e.text());
        field("network", "{\"mode\": \"user\", \"allow\": " +
                             (plan.net.filter ? allow + "]" : std::string("null")) +
                             ", \"audit\": " + (plan.net.audit ? "true" : "false") +
                             ", \"resolver\": " + str(kResolver) + ", \"uses\": " + uses +
                             "], \"uses_dropped\": " + std::to_string(o.network_dropped) + "}");
    } else {
        field("network", "null");
    }
    // What to add to the profile for what was refused.
    std::string hint_list = "[";
    for (const std::string& h : learn::hints(plan, o))
        hint_list += (hint_list.size() > 1 ? ", " : "") + str(h);
    field("hints", hint_list + "]");
    auto files = [&](const std::vector<std::string>& v) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i)
            s += (i ? ", " : "") + str(v[i]);
        return s + "]";
    };
    if (plan.file_activity) {
        j += "  \"files\": {\"created\": " + files(o.files_created) +
             ", \"modified\": " + files(o.files_modified) +
             ", \"deleted\": " + files(o.files_deleted) + ", \"backend\": " +
             (o.files_backend.empty() ? std::string("null") : str(o.files_backend)) +
             ", \"partial\": " + (o.files_partial ? "true" : "false") + "},\n";
    } else {
        field("files", "null");
    }
    if (o.changes)
        field("changes", "{\"added\": " + std::to_string(o.changes->added) +
                             ", \"modified\": " + std::to_string(o.changes->modified) +
                             ", \"deleted\": " + std::to_string(o.changes->deleted) +
                             ", \"bytes\": " + std::to_string(o.changes->bytes) +
                             ", \"committed\": " + (o.changes->committed ? "true" : "false") + "}");
    else
        field("changes", "null");
    std::string outputs = "{";
    outputs += "\"stdout_bytes\": " + (o.stdout_bytes ? std::to_string(*o.stdout_bytes) : "null");
    outputs += ", \"stderr_bytes\": " + (o.stderr_bytes ? std::to_string(*o.stderr_bytes) : "null");
    outputs +=
        ", \"error\": " + (o.output_error.empty() ? std::string("null") : str(o.output_error)) +
        "}";
    field("output", outputs, true);
    return j + "}\n";
}

Result<void> write_report(const HostFile* file, const std::string& json) {
    if (file) return file->replace(json);
    // To stdout, whose reader may have stopped reading: a few seconds, not forever.
    BUTTER_ASSIGN_OR_RETURN(Sink out, Sink::open(1, json.size() + 1));
    (void)out.write(json);
    if (!out.flush_for(5000) || out.broken())
        return fail(Error("write", out.broken() ? EPIPE : EAGAIN, "the report to stdout"));
    return {};
}

}  // namespace butter::launcher
