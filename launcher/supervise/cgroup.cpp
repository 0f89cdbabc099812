#include "supervise/cgroup.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include <cmath>

#include "supervise/supervisor.hpp"

#include <sys/resource.h>

namespace butter::launcher {

namespace {

struct Setting {
    std::string file;
    std::string value;
};

// The files and values of one limit in each cgroup version.
std::vector<Setting> settings(const std::string& controller, const SandboxPlan& p,
                              CgroupVersion v) {
    bool v2 = v == CgroupVersion::V2;
    if (controller == "memory") {
        std::string bytes = std::to_string(*p.memory_limit);
        if (v2) return {{"memory.max", bytes}, {"memory.swap.max", "0"}};
        return {{"memory.limit_in_bytes", bytes}, {"memory.memsw.limit_in_bytes", bytes}};
    }
    if (controller == "pids") return {{"pids.max", std::to_string(*p.pids_limit)}};
    // cpu: a quota per 100 ms period.
    auto quota = static_cast<long long>(std::llround(*p.cpus * 100000.0));
    if (v2) return {{"cpu.max", std::to_string(quota) + " 100000"}};
    return {{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", std::to_string(quota)}};
}

// Cgroups of butter runs that were killed before they could remove theirs (SIGKILL, the OOM
// killer): "butter-PID" below `h`'s own cgroup whose PID is gone. Removed as found (an rmdir
// of one that still holds processes fails, and it stays).
void remove_stale(const CgroupHierarchy& h) {
    std::string dir = h.own_path();
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        // "butter-PID" or "butter-PID-N" (the Nth sandbox of that process).
        if (!n.starts_with("butter-") || n.size() == 7) continue;
        std::string digits(n.substr(7));
        if (auto dash = digits.find('-'); dash != std::string::npos) {
            if (dash + 1 == digits.size() ||
                digits.find_first_not_of("0123456789", dash + 1) != std::string::npos)
                continue;
            digits.resize(dash);
        }
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        pid_t pid = static_cast<pid_t>(std::strtol(digits.c_str(), nullptr, 10));
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        ::rmdir((dir + "/" + std::string(n)).c_str());
    }
    ::closedir(d);
}

}  // namespace

Result<std::size_t> SandboxCgroups::make(const char* controller, const std::string& name,
                                         const SandboxPlan& plan, bool move_self) {
    BUTTER_ASSIGN_OR_RETURN(CgroupHierarchy h, find_cgroup_hierarchy(controller));
    // Under systemd, only a cgroup it delegated (a scope butter asked for is one).
    if (h.version == CgroupVersion::V2 && h.own != "/" && !in_own_scope_ &&
        ::access("/run/systemd/system", F_OK) == 0 && !cgroup_delegated(h.own_path())) {
        errno = ENOENT;
        return fail_errno("cgroup", h.own_path() +
                                        ": not delegated by systemd (no Delegate=yes), so not "
                                        "butter's to divide");
    }
    BUTTER_TRY(enable_subtree_controller(h, controller, move_self));
    std::string path = h.own_path() + "/" + name;
    std::size_t at = 0;
    while (at < cgroups_.size() && cgroups_[at].path() != path)
        ++at;
    if (at == cgroups_.size()) {
        BUTTER_ASSIGN_OR_RETURN(Cgroup cg, Cgroup::create(h, name));
        cgroups_.push_back(std::move(cg));
    }
    const Cgroup& cg = cgroups_[at];
    for (const Setting& s : settings(controller, plan, h.version)) {
        // The swap knobs exist only with swap accounting: skip them when absent.
        if (s.file.find("swap") != std::string::npos && !cg.has(s.file)) continue;
        BUTTER_TRY(cg.write(s.file, s.value));
    }
    return at;
}

SandboxCgroups SandboxCgroups::create(const SandboxPlan& plan, const Access& access) {
    SandboxCgroups out;
    std::vector<std::pair<const char*, const char*>> wanted;  // controller, profile key
    if (plan.memory_limit) wanted.emplace_back("memory", "limits.memory");
    if (plan.pids_limit) wanted.emplace_back("pids", "limits.pids");
    if (plan.cpus) wanted.emplace_back("cpu", "limits.cpus");
    if (wanted.empty()) return out;
    // What killed runs left, under every controller butter uses (not only this run's: a run
    // killed with a memory limit leaves one that a run with only pids would never look at).
    std::vector<std::string> swept;
    for (const char* controller : {"memory", "pids", "cpu"}) {
        auto h = find_cgroup_hierarchy(controller);
        if (!h || std::find(swept.begin(), swept.end(), h->own_path()) != swept.end()) continue;
        swept.push_back(h->own_path());
        remove_stale(*h);
    }
    // One name per sandbox: a process may run several (the library API).
    static std::atomic<unsigned> sandboxes{0};
    std::string name = "butter-" + std::to_string(::getpid());
    if (unsigned n = sandboxes++; n > 0) name += "-" + std::to_string(n);
    bool asked = false;
    for (const auto& [controller, key] : wanted) {
        auto made = out.make(controller, name, plan, access.move_self);
        if (!made && access.new_scope && !asked && out.cgroups_.empty()) {
            // Nowhere here (not delegated, not writable): a delegated cgroup of its own, then
            // the same again from there.
            asked = true;
            auto moved = access.new_scope();
            out.in_own_scope_ = static_cast<bool>(moved);
            if (moved)
                made = out.make(controller, name, plan, access.move_self);
            else
                made = fail(std::move(made).error().with_hint(moved.error().what()));
        }
        if (made)
            out.groups_.push_back({controller, *made});
        else
            out.missing_.push_back({controller, key, std::move(made).error()});
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> SandboxCgroups::enforcement() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Group& g : groups_) {
        bool v2 = cgroups_[g.cgroup].version() == CgroupVersion::V2;
        std::string file = g.controller == "memory" ? (v2 ? "memory.max" : "memory.limit_in_bytes")
                           : g.controller == "pids" ? "pids.max"
                           : v2                     ? "cpu.max"
                                                    : "cpu.cfs_quota_us";
        std::string key = g.controller == "cpu" ? "cpus" : g.controller;
        out.emplace_back(key, std::string(v2 ? "cgroup v2 " : "cgroup v1 ") + file);
    }
    return out;
}

Result<void> SandboxCgroups::join(pid_t pid) const {
    for (const Cgroup& cg : cgroups_)
        BUTTER_TRY(cg.add(pid));
    return {};
}

const Cgroup* SandboxCgroups::find(const char* controller) const {
    for (const Group& g : groups_)
        if (g.controller == controller) return &cgroups_[g.cgroup];
    return nullptr;
}

void SandboxCgroups::collect(RunOutcome& out) const {
    if (const Cgroup* m = find("memory")) {
        bool v2 = m->version() == CgroupVersion::V2;
        if (auto peak = m->read_number(v2 ? "memory.peak" : "memory.max_usage_in_bytes"))
            out.peak_memory = *peak;
        auto ooms = m->read_key(v2 ? "memory.events" : "memory.oom_control", "oom_kill");
        if (ooms && *ooms > 0) {
            out.limits_hit.push_back("memory");
            if (out.kind == RunOutcome::Kind::Signaled && out.stop == RunOutcome::Stop::None)
                out.stop = RunOutcome::Stop::Oom;
        }
    }
    if (const Cgroup* p = find("pids")) {
        if (auto peak = p->read_number("pids.peak")) out.peak_pids = *peak;
        auto hits = p->read_key("pids.events", "max");
        if (hits && *hits > 0) out.limits_hit.push_back("pids");
    }
}

void SandboxCgroups::destroy(Log* log) {
    for (Cgroup& cg : cgroups_)
        if (auto gone = cg.destroy(); !gone && log)
            log->warn("warning: %s (the sandbox's cgroup stays)", gone.error().what().c_str());
    cgroups_.clear();
    groups_.clear();
}

Result<LimitFallbacks> limit_fallbacks(const SandboxPlan& plan, const SandboxCgroups& cgroups,
                                       Log& log) {
    LimitFallbacks out;
    // Lowered to butter's own hard limit: an rlimit can only go down.
    auto rlimit = [&](int resource, rlim_t value) {
        struct rlimit cur {};
        if (::getrlimit(static_cast<__rlimit_resource>(resource), &cur) == 0 &&
            cur.rlim_max != RLIM_INFINITY)
            value = std::min(value, cur.rlim_max);
        out.rlimits.push_back({resource, value});
    };
    for (auto& [key, how] : cgroups.enforcement())
        out.held.push_back({key, how});
    for (const SandboxCgroups::Missing& m : cgroups.missing()) {
        std::string controller = m.controller;
        std::string key = controller == "cpu" ? "cpus" : controller;
        std::string how;
        if (controller == "pids" && plan.namespaces.has(Namespace::User)) {
            rlimit(RLIMIT_NPROC, *plan.pids_limit);
            how = "RLIMIT_NPROC in the sandbox's user namespace";
        } else if (controller == "memory") {
            rlimit(RLIMIT_AS, *plan.memory_limit);
            how = "RLIMIT_AS, per process (not in total)";
        }
        if (!how.empty()) {
            log.warn("warning: %s: no cgroup (%s): held by %s instead", m.key,
                     m.error.what().c_str(), how.c_str());
            out.held.push_back({key, how});
            continue;
        }
        // "limits.cpus: no cgroup (mkdir(...): ...)": the key first, the cause as it came.
        Error e = Error::message(m.key, "no cgroup (" + m.error.what() + ")");
        bool cannot = is_privilege(m.error) || m.error.errno_value() == EROFS ||
                      m.error.errno_value() == ENOENT || m.error.errno_value() == EBUSY;
        if (!plan.limits_optional) {
            if (cannot)
                (void)std::move(e).with_hint(
                    "no cgroup for the " + controller +
                    " controller: run as root, or in a delegated cgroup v2 of butter's own "
                    "(systemd-run --scope -p Delegate=yes, or a unit with Delegate=yes), or set "
                    "limits.optional = true");
            return fail(std::move(e));
        }
        log.warn("warning: %s: not applied (limits.optional)", e.what().c_str());
        out.held.push_back({key, "none"});
    }
    return out;
}

}  // namespace butter::launcher
