// config.json -> Config: the walk over the JSON (each field read once, by its pointer), then
// the plan's fields as runc fills its own: mounts in order, the default devices, the id maps,
// the filter compiled with libseccomp.
#include "oci/config.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include <butter/capabilities.hpp>
#include <butter/fd.hpp>
#include <butter/mount.hpp>
#include <butter/seccomp.hpp>

#include "plan/host_path.hpp"

namespace butter::launcher::oci {

using nlohmann::json;
using profile::MountType;

std::string json_string(std::string_view s) {
    return json(std::string(s)).dump();
}

namespace {

// A config's error: "FILE: /json/pointer: what".
struct Walk {
    std::string origin;
    std::vector<std::string>* warnings;

    Error error(const std::string& ptr, const std::string& what) const {
        return Error::message("config.json", origin + ": " + ptr + ": " + what);
    }
    void warn(const std::string& ptr, const std::string& what) const {
        warnings->push_back(origin + ": " + ptr + ": " + what);
    }
    // Keys of `obj` that are not in `known`: warnings (runc and crun ignore them too).
    void unknown(const json& obj, const std::string& ptr,
                 std::initializer_list<std::string_view> known) const {
        for (const auto& [key, value] : obj.items())
            if (std::find(known.begin(), known.end(), key) == known.end())
                warn(ptr + "/" + key, "unknown field, ignored");
    }
};

Result<const json*> member(const Walk& w, const json& obj, const std::string& ptr, const char* key,
                           json::value_t type, bool required = false) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        if (required) return fail(w.error(ptr + "/" + key, "missing"));
        return nullptr;
    }
    bool ok = it->type() == type ||
              (type == json::value_t::number_integer && it->is_number_unsigned()) ||
              (type == json::value_t::number_unsigned && it->is_number_integer() &&
               it->get<std::int64_t>() >= 0);
    if (!ok) {
        const char* want = type == json::value_t::object    ? "an object"
                           : type == json::value_t::array   ? "an array"
                           : type == json::value_t::string  ? "a string"
                           : type == json::value_t::boolean ? "true or false"
                                                            : "a number";
        return fail(w.error(ptr + "/" + key, std::string("must be ") + want));
    }
    return &*it;
}

// An integer in [lo, hi] (a JSON integer, never a fraction or a wrapped value: runc's Go
// decoding refuses what does not fit its field).
Result<std::int64_t> integer(const Walk& w, const json& v, const std::string& ptr, std::int64_t lo,
                             std::int64_t hi) {
    bool ok = v.is_number_integer() &&
              !(v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi));
    if (ok) {
        std::int64_t n = v.get<std::int64_t>();
        if (n >= lo && n <= hi) return n;
    }
    return fail(w.error(
        ptr, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi)));
}
constexpr std::int64_t kMaxId = 4294967294;  // (uid_t)-1 is "no id"
constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();

Result<std::vector<std::string>> strings(const Walk& w, const json& arr, const std::string& ptr) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        if (!arr[i].is_string())
            return fail(w.error(ptr + "/" + std::to_string(i), "must be a string"));
        out.push_back(arr[i].get<std::string>());
    }
    return out;
}

// runc's mount options: flags, propagation, and the rest as the file system's data.
struct MountOptions {
    unsigned long flags = 0;
    bool bind = false, recursive = false;
    std::vector<std::string> data;
};

Result<MountOptions> mount_options(const Walk& w, const std::vector<std::string>& opts,
                                   const std::string& ptr) {
    static const std::map<std::string_view, std::pair<bool, unsigned long>> kFlags = {
        {"ro", {false, MS_RDONLY}},
        {"rw", {true, MS_RDONLY}},
        {"nosuid", {false, MS_NOSUID}},
        {"suid", {true, MS_NOSUID}},
        {"nodev", {false, MS_NODEV}},
        {"dev", {true, MS_NODEV}},
        {"noexec", {false, MS_NOEXEC}},
        {"exec", {true, MS_NOEXEC}},
        {"sync", {false, MS_SYNCHRONOUS}},
        {"async", {true, MS_SYNCHRONOUS}},
        {"dirsync", {false, MS_DIRSYNC}},
        {"mand", {false, MS_MANDLOCK}},
        {"nomand", {true, MS_MANDLOCK}},
        {"noatime", {false, MS_NOATIME}},
        {"atime", {true, MS_NOATIME}},
        {"nodiratime", {false, MS_NODIRATIME}},
        {"diratime", {true, MS_NODIRATIME}},
        {"relatime", {false, MS_RELATIME}},
        {"norelatime", {true, MS_RELATIME}},
        {"strictatime", {false, MS_STRICTATIME}},
        {"nostrictatime", {true, MS_STRICTATIME}},
        {"nosymfollow", {false, MS_NOSYMFOLLOW}},
        {"symfollow", {true, MS_NOSYMFOLLOW}},
        // The recursive forms (mount_setattr's AT_RECURSIVE): butter's binds are recursive
        // clones whose attributes are set on every mount below, so each is its plain form.
        {"rro", {false, MS_RDONLY}},
        {"rrw", {true, MS_RDONLY}},
        {"rnosuid", {false, MS_NOSUID}},
        {"rsuid", {true, MS_NOSUID}},
        {"rnodev", {false, MS_NODEV}},
        {"rdev", {true, MS_NODEV}},
        {"rnoexec", {false, MS_NOEXEC}},
        {"rexec", {true, MS_NOEXEC}},
        {"rnoatime", {false, MS_NOATIME}},
        {"ratime", {true, MS_NOATIME}},
        {"rnodiratime", {false, MS_NODIRATIME}},
        {"rdiratime", {true, MS_NODIRATIME}},
        {"rrelatime", {false, MS_RELATIME}},
        {"rnorelatime", {true, MS_RELATIME}},
        {"rstrictatime", {false, MS_STRICTATIME}},
        {"rnostrictatime", {true, MS_STRICTATIME}},
        {"rnosymfollow", {false, MS_NOSYMFOLLOW}},
        {"rsymfollow", {true, MS_NOSYMFOLLOW}}};
    static const std::set<std::string_view> kPropagation = {
        "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"};
    MountOptions m;
    for (std::size_t i = 0; i < opts.size(); ++i) {
        const std::string& o = opts[i];
        if (auto f = kFlags.find(o); f != kFlags.end()) {
            if (f->second.first)
                m.flags &= ~f->second.second;
            else
                m.flags |= f->second.second;
        } else if (o == "bind") {
            m.bind = true;
        } else if (o == "rbind") {
            m.bind = m.recursive = true;
        } else if (kPropagation.count(o)) {
            // Every mount of the container is a slave of the host's or private: a shared
            // propagation would reach back into the host's namespace.
            if (o == "shared" || o == "rshared")
                return fail(
                    w.error(ptr + "/" + std::to_string(i), "shared propagation is not supported"));
        } else if (o == "tmpcopyup" || o == "remount" || o == "idmap" || o == "ridmap" ||
                   o == "copy-symlink" || o == "src-nofollow" || o == "dest-nofollow") {
            return fail(w.error(ptr + "/" + std::to_string(i), "'" + o + "' is not supported"));
        } else {
            m.data.push_back(o);
        }
    }
    return m;
}

std::string join(const std::vector<std::string>& v, char sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

Result<void> read_mounts(const Walk& w, const json& arr, Config& c) {
    SandboxPlan& plan = c.plan;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string ptr = "/mounts/" + std::to_string(i);
        const json& m = arr[i];
        if (!m.is_object()) return fail(w.error(ptr, "must be an object"));
        w.unknown(m, ptr,
                  {"destination", "type", "source", "options", "uidMappings", "gidMappings"});
        if (m.contains("uidMappings") || m.contains("gidMappings"))
            return fail(w.error(ptr, "idmapped mounts are not supported"));
        BUTTER_ASSIGN_OR_RETURN(const json* dst,
                                member(w, m, ptr, "destination", json::value_t::string, true));
        BUTTER_ASSIGN_OR_RETURN(const json* type, member(w, m, ptr, "type", json::value_t::string));
        BUTTER_ASSIGN_OR_RETURN(const json* src,
                                member(w, m, ptr, "source", json::value_t::string));
        BUTTER_ASSIGN_OR_RETURN(const json* opts,
                                member(w, m, ptr, "options", json::value_t::array));
        std::vector<std::string> options;
        if (opts) {
            BUTTER_ASSIGN_OR_RETURN(options, strings(w, *opts, ptr + "/options"));
        }
        BUTTER_ASSIGN_OR_RETURN(MountOptions mo, mount_options(w, options, ptr + "/options"));
        std::string target = dst->get<std::string>();
        if (!target.starts_with("/")) target = "/" + target;  // as runc: relative to the root
        auto norm = normalize_target(target);
        if (!norm) return fail(w.error(ptr + "/destination", "must not hold '..'"));
        if (*norm == "/") return fail(w.error(ptr + "/destination", "must not be the root"));
        std::string fstype = type ? type->get<std::string>() : (mo.bind ? "bind" : "");
        std::string source = src ? src->get<std::string>() : "";
        MountStep step;
        step.target = *norm;
        // No device node of the container's making or its image's is ever usable: every mount
        // is nodev but devpts and the default device nodes (bound one by one), as a device
        // cgroup that allows only those would have it.
        if (fstype == "bind" || mo.bind) {
            if (source.empty()) return fail(w.error(ptr + "/source", "a bind needs a source"));
            if (!mo.data.empty())
                return fail(
                    w.error(ptr + "/options", "unknown option '" + mo.data[0] + "' for a bind"));
            if (!source.starts_with("/")) source = c.bundle + "/" + source;
            // The engine names the source (it is trusted as runc trusts it): symlinks followed.
            auto host = resolve_host_path(source, Symlinks::Follow);
            if (!host) return fail(w.error(ptr + "/source", host.error().what()));
            step.type = MountType::Bind;
            step.source = host->path;
            step.source_dev = host->st.st_dev;
            step.source_ino = host->st.st_ino;
            step.source_is_dir = S_ISDIR(host->st.st_mode);
            step.read_only = (mo.flags & MS_RDONLY) != 0;
            std::uint64_t attrs = MOUNT_ATTR_NODEV;
            if (mo.flags & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
            if (mo.flags & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
            if (mo.flags & MS_NOATIME) attrs |= MOUNT_ATTR_NOATIME;
            if (mo.flags & MS_NODIRATIME) attrs |= MOUNT_ATTR_NODIRATIME;
            if (mo.flags & MS_STRICTATIME) attrs |= MOUNT_ATTR_STRICTATIME;
            if (mo.flags & MS_NOSYMFOLLOW) attrs |= MOUNT_ATTR_NOSYMFOLLOW;
            step.attrs = attrs;
        } else if (fstype == "tmpfs" || fstype == "sysfs" || fstype == "devpts" ||
                   fstype == "cgroup" || fstype == "cgroup2" || fstype == "proc" ||
                   fstype == "mqueue") {
            step.type = MountType::Kernel;
            // cgroup (v1's per-controller hierarchies, which a container sees through the
            // cgroup namespace) is mounted as the unified hierarchy, as crun does on cgroup v2,
            // and always read-only (the container's cgroup is the runtime's to change).
            step.fstype = fstype == "cgroup" ? "cgroup2" : fstype;
            step.source = step.fstype;
            step.flags = mo.flags;
            if (step.fstype != "devpts") step.flags |= MS_NODEV;
            if (step.fstype == "proc" || step.fstype == "mqueue" || step.fstype == "sysfs")
                step.flags |= MS_NOSUID | MS_NOEXEC;
            if (step.fstype == "cgroup2") step.flags |= MS_RDONLY | MS_NOSUID | MS_NOEXEC;
            step.options = join(mo.data, ',');
            if (step.fstype == "sysfs" && !plan.namespaces.has(Namespace::Net))
                step.flags |= MS_RDONLY;  // the host's network devices: never writable
            if (step.fstype == "proc") plan.has_proc = true;
        } else {
            return fail(w.error(ptr + "/type", "mount type '" + fstype + "' is not supported"));
        }
        plan.mounts.push_back(std::move(step));
    }
    return {};
}

Result<CapabilitySet> caps(const Walk& w, const json& obj, const std::string& ptr,
                           const char* key) {
    CapabilitySet set;
    BUTTER_ASSIGN_OR_RETURN(const json* arr, member(w, obj, ptr, key, json::value_t::array));
    if (!arr) return set;
    BUTTER_ASSIGN_OR_RETURN(auto names, strings(w, *arr, ptr + "/" + key));
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto cap = capability_from_name(names[i]);
        if (!cap) {
            // runc warns and skips a name this kernel does not know.
            w.warn(ptr + "/" + key + "/" + std::to_string(i), "unknown capability, ignored");
            continue;
        }
        set.add(*cap);
    }
    return set;
}

// `ptr`: "/process" in a config.json, "" in exec's process.json.
Result<void> read_process(const Walk& w, const json& p, Config& c, const std::string& ptr) {
    SandboxPlan& plan = c.plan;
    // (exec's process replaces the config's)
    plan.exec_candidates.clear();
    plan.rlimits.clear();
    plan.groups.clear();
    plan.env.clear();
    plan.umask.reset();
    c.terminal = false;
    w.unknown(p, ptr,
              {"terminal", "consoleSize", "user", "args", "commandLine", "env", "cwd",
               "capabilities", "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj",
               "selinuxLabel", "ioPriority", "scheduler", "execCPUAffinity"});
    for (const char* ignored : {"apparmorProfile", "selinuxLabel"})
        if (p.contains(ignored) && p[ignored].is_string() && !p[ignored].get<std::string>().empty())
            w.warn(ptr + "/" + ignored, "ignored (butter confines with namespaces and seccomp)");
    for (const char* refused : {"ioPriority", "scheduler", "execCPUAffinity", "commandLine"})
        if (p.contains(refused)) return fail(w.error(ptr + "/" + refused, "not supported"));
    BUTTER_ASSIGN_OR_RETURN(const json* terminal,
                            member(w, p, ptr, "terminal", json::value_t::boolean));
    c.terminal = terminal && terminal->get<bool>();
    BUTTER_ASSIGN_OR_RETURN(const json* args,
                            member(w, p, ptr, "args", json::value_t::array, true));
    BUTTER_ASSIGN_OR_RETURN(plan.argv, strings(w, *args, ptr + "/args"));
    if (plan.argv.empty() || plan.argv[0].empty())
        return fail(w.error(ptr + "/args", "must name a program"));
    BUTTER_ASSIGN_OR_RETURN(const json* env, member(w, p, ptr, "env", json::value_t::array));
    if (env) {
        BUTTER_ASSIGN_OR_RETURN(plan.env, strings(w, *env, ptr + "/env"));
    }
    BUTTER_ASSIGN_OR_RETURN(const json* cwd, member(w, p, ptr, "cwd", json::value_t::string, true));
    plan.cwd = cwd->get<std::string>();
    if (!plan.cwd.starts_with("/")) return fail(w.error(ptr + "/cwd", "must be absolute"));
    // The program: a path as it is, else each directory of the config's PATH in turn.
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto& e : plan.env)
        if (e.starts_with("PATH=")) path = e.substr(5);
    if (plan.argv[0].find('/') != std::string::npos) {
        plan.exec_candidates = {plan.argv[0]};
    } else {
        for (std::size_t at = 0;;) {
            std::size_t colon = path.find(':', at);
            std::string dir = path.substr(at, colon == std::string::npos ? colon : colon - at);
            plan.exec_candidates.push_back((dir.empty() ? "." : dir) + "/" + plan.argv[0]);
            if (colon == std::string::npos) break;
            at = colon + 1;
        }
    }

    BUTTER_ASSIGN_OR_RETURN(const json* user, member(w, p, ptr, "user", json::value_t::object));
    if (user) {
        w.unknown(*user, ptr + "/user", {"uid", "gid", "umask", "additionalGids", "username"});
        BUTTER_ASSIGN_OR_RETURN(const json* uid, member(w, *user, ptr + "/user", "uid",
                                                        json::value_t::number_unsigned, true));
        BUTTER_ASSIGN_OR_RETURN(const json* gid, member(w, *user, ptr + "/user", "gid",
                                                        json::value_t::number_unsigned, true));
        BUTTER_ASSIGN_OR_RETURN(std::int64_t u, integer(w, *uid, ptr + "/user/uid", 0, kMaxId));
        BUTTER_ASSIGN_OR_RETURN(std::int64_t g, integer(w, *gid, ptr + "/user/gid", 0, kMaxId));
        plan.uid = static_cast<uid_t>(u);
        plan.gid = static_cast<gid_t>(g);
        BUTTER_ASSIGN_OR_RETURN(const json* um, member(w, *user, ptr + "/user", "umask",
                                                       json::value_t::number_unsigned));
        if (um) {
            BUTTER_ASSIGN_OR_RETURN(std::int64_t m, integer(w, *um, ptr + "/user/umask", 0, 0777));
            plan.umask = static_cast<mode_t>(m);
        }
        BUTTER_ASSIGN_OR_RETURN(const json* extra, member(w, *user, ptr + "/user", "additionalGids",
                                                          json::value_t::array));
        if (extra)
            for (std::size_t i = 0; i < extra->size(); ++i) {
                if (!(*extra)[i].is_number_unsigned())
                    return fail(w.error(ptr + "/user/additionalGids/" + std::to_string(i),
                                        "must be a group id"));
                {
                    BUTTER_ASSIGN_OR_RETURN(
                        std::int64_t extra_gid,
                        integer(w, (*extra)[i], ptr + "/user/additionalGids/" + std::to_string(i),
                                0, kMaxId));
                    plan.groups.push_back(static_cast<gid_t>(extra_gid));
                }
            }
    }
    BUTTER_ASSIGN_OR_RETURN(const json* nnp,
                            member(w, p, ptr, "noNewPrivileges", json::value_t::boolean));
    plan.no_new_privs = nnp && nnp->get<bool>();
    BUTTER_ASSIGN_OR_RETURN(const json* oom,
                            member(w, p, ptr, "oomScoreAdj", json::value_t::number_integer));
    if (oom) {
        BUTTER_ASSIGN_OR_RETURN(std::int64_t o,
                                integer(w, *oom, ptr + "/oomScoreAdj", -1000, 1000));
        c.oom_score_adj = static_cast<int>(o);
    }

    // Each set as given (none when the config has none), as runc sets them.
    BUTTER_ASSIGN_OR_RETURN(const json* capabilities,
                            member(w, p, ptr, "capabilities", json::value_t::object));
    SandboxPlan::CapabilitySets sets;
    if (capabilities) {
        std::string cp = ptr + "/capabilities";
        w.unknown(*capabilities, cp,
                  {"bounding", "effective", "inheritable", "permitted", "ambient"});
        BUTTER_ASSIGN_OR_RETURN(sets.bounding, caps(w, *capabilities, cp, "bounding"));
        BUTTER_ASSIGN_OR_RETURN(sets.effective, caps(w, *capabilities, cp, "effective"));
        BUTTER_ASSIGN_OR_RETURN(sets.permitted, caps(w, *capabilities, cp, "permitted"));
        BUTTER_ASSIGN_OR_RETURN(sets.inheritable, caps(w, *capabilities, cp, "inheritable"));
        BUTTER_ASSIGN_OR_RETURN(sets.ambient, caps(w, *capabilities, cp, "ambient"));
    }
    plan.oci_caps = sets;
    BUTTER_ASSIGN_OR_RETURN(const json* rlimits,
                            member(w, p, ptr, "rlimits", json::value_t::array));
    if (rlimits)
        for (std::size_t i = 0; i < rlimits->size(); ++i) {
            std::string rp = ptr + "/rlimits/" + std::to_string(i);
            const json& r = (*rlimits)[i];
            if (!r.is_object()) return fail(w.error(rp, "must be an object"));
            w.unknown(r, rp, {"type", "soft", "hard"});
            BUTTER_ASSIGN_OR_RETURN(const json* type,
                                    member(w, r, rp, "type", json::value_t::string, true));
            BUTTER_ASSIGN_OR_RETURN(const json* soft,
                                    member(w, r, rp, "soft", json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(const json* hard,
                                    member(w, r, rp, "hard", json::value_t::number_unsigned, true));
            std::string name = type->get<std::string>();
            auto it = std::find_if(std::begin(kRlimitNames), std::end(kRlimitNames),
                                   [&](const auto& e) { return name == e.second; });
            if (it == std::end(kRlimitNames))
                return fail(w.error(rp + "/type", "unknown rlimit '" + name + "'"));
            Rlimit lim;
            lim.resource = it->first;
            lim.value = soft->get<rlim_t>();
            lim.hard = hard->get<rlim_t>();
            if (lim.value > *lim.hard)
                return fail(w.error(rp + "/soft", "is above the hard limit"));
            plan.rlimits.push_back(lim);
        }
    return {};
}

Result<SeccompAction> seccomp_action(const Walk& w, const std::string& text, const json* errno_ret,
                                     const std::string& ptr) {
    if (errno_ret && !(errno_ret->is_number_unsigned() && errno_ret->get<std::uint64_t>() <= 4095))
        return fail(w.error(ptr, "its errnoRet must be 0 to 4095"));
    if (text == "SCMP_ACT_ALLOW") return SeccompAction::allow();
    if (text == "SCMP_ACT_ERRNO")
        return SeccompAction::error(errno_ret ? errno_ret->get<int>() : EPERM);
    if (text == "SCMP_ACT_KILL" || text == "SCMP_ACT_KILL_THREAD")
        return SeccompAction::kill_thread();
    if (text == "SCMP_ACT_KILL_PROCESS") return SeccompAction::kill_process();
    if (text == "SCMP_ACT_TRAP") return SeccompAction::trap();
    if (text == "SCMP_ACT_LOG") return SeccompAction::log();
    if (text == "SCMP_ACT_TRACE")
        return SeccompAction::trace(errno_ret ? errno_ret->get<int>() : EPERM);
    if (text == "SCMP_ACT_NOTIFY") return SeccompAction::notify();
    return fail(w.error(ptr, "unknown action '" + text + "'"));
}

Result<void> read_seccomp(const Walk& w, const json& s, Config& c) {
    const std::string ptr = "/linux/seccomp";
    w.unknown(s, ptr,
              {"defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
               "listenerMetadata", "syscalls"});
    BUTTER_ASSIGN_OR_RETURN(const json* listener,
                            member(w, s, ptr, "listenerPath", json::value_t::string));
    BUTTER_ASSIGN_OR_RETURN(const json* metadata,
                            member(w, s, ptr, "listenerMetadata", json::value_t::string));
    if (listener) c.seccomp_agent = listener->get<std::string>();
    if (metadata) c.seccomp_agent_metadata = metadata->get<std::string>();
    if (!c.seccomp_agent.empty() && c.seccomp_agent[0] != '/')
        return fail(w.error(ptr + "/listenerPath", "must be an absolute path"));
    if (c.seccomp_agent.size() >= sizeof(sockaddr_un::sun_path))
        return fail(w.error(ptr + "/listenerPath", "too long for a unix socket's path"));
    if (s.contains("flags") && s["flags"].is_array() && !s["flags"].empty())
        w.warn(ptr + "/flags", "ignored (butter loads the filter with its own flags)");
    BUTTER_ASSIGN_OR_RETURN(const json* def,
                            member(w, s, ptr, "defaultAction", json::value_t::string, true));
    BUTTER_ASSIGN_OR_RETURN(const json* def_errno,
                            member(w, s, ptr, "defaultErrnoRet", json::value_t::number_unsigned));
    BUTTER_ASSIGN_OR_RETURN(
        SeccompAction default_action,
        seccomp_action(w, def->get<std::string>(), def_errno, ptr + "/defaultAction"));
    bool notify = default_action.kind == SeccompAction::Kind::Notify;
    auto filter = SeccompFilter::create(default_action);
    if (!filter) return fail(std::move(filter).error());
    BUTTER_ASSIGN_OR_RETURN(const json* archs,
                            member(w, s, ptr, "architectures", json::value_t::array));
    if (archs) {
        BUTTER_ASSIGN_OR_RETURN(auto names, strings(w, *archs, ptr + "/architectures"));
        for (const auto& a : names) {
            if (a == "SCMP_ARCH_X86_64" || a == "SCMP_ARCH_NATIVE") continue;
            if (a == "SCMP_ARCH_X86" || a == "SCMP_ARCH_X32") {
                BUTTER_TRY(filter->add_arch(a == "SCMP_ARCH_X86" ? "x86" : "x32"));
                continue;
            }
            // Another machine's ABI (aarch64, ...): it cannot run here.
        }
    }
    BUTTER_ASSIGN_OR_RETURN(const json* calls, member(w, s, ptr, "syscalls", json::value_t::array));
    for (std::size_t i = 0; calls && i < calls->size(); ++i) {
        std::string sp = ptr + "/syscalls/" + std::to_string(i);
        const json& e = (*calls)[i];
        if (!e.is_object()) return fail(w.error(sp, "must be an object"));
        w.unknown(e, sp,
                  {"names", "action", "errnoRet", "args", "comment", "includes", "excludes"});
        BUTTER_ASSIGN_OR_RETURN(const json* names,
                                member(w, e, sp, "names", json::value_t::array, true));
        BUTTER_ASSIGN_OR_RETURN(const json* action,
                                member(w, e, sp, "action", json::value_t::string, true));
        BUTTER_ASSIGN_OR_RETURN(const json* err,
                                member(w, e, sp, "errnoRet", json::value_t::number_unsigned));
        BUTTER_ASSIGN_OR_RETURN(SeccompAction act,
                                seccomp_action(w, action->get<std::string>(), err, sp + "/action"));
        if (act == default_action) continue;  // as runc: a rule that changes nothing
        notify |= act.kind == SeccompAction::Kind::Notify;
        std::vector<ArgCondition> conds;
        BUTTER_ASSIGN_OR_RETURN(const json* args, member(w, e, sp, "args", json::value_t::array));
        for (std::size_t j = 0; args && j < args->size(); ++j) {
            std::string ap = sp + "/args/" + std::to_string(j);
            const json& a = (*args)[j];
            if (!a.is_object()) return fail(w.error(ap, "must be an object"));
            w.unknown(a, ap, {"index", "value", "valueTwo", "op"});
            BUTTER_ASSIGN_OR_RETURN(
                const json* index, member(w, a, ap, "index", json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(
                const json* value, member(w, a, ap, "value", json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(const json* two,
                                    member(w, a, ap, "valueTwo", json::value_t::number_unsigned));
            BUTTER_ASSIGN_OR_RETURN(const json* op,
                                    member(w, a, ap, "op", json::value_t::string, true));
            ArgCondition cond;
            if (!index->is_number_unsigned() || index->get<std::uint64_t>() > 5)
                return fail(w.error(ap + "/index", "must be 0 to 5"));
            cond.index = index->get<unsigned>();
            std::string o = op->get<std::string>();
            cond.value = value->get<std::uint64_t>();
            if (o == "SCMP_CMP_EQ")
                cond.op = ArgOp::Eq;
            else if (o == "SCMP_CMP_NE")
                cond.op = ArgOp::Ne;
            else if (o == "SCMP_CMP_LT")
                cond.op = ArgOp::Lt;
            else if (o == "SCMP_CMP_LE")
                cond.op = ArgOp::Le;
            else if (o == "SCMP_CMP_GT")
                cond.op = ArgOp::Gt;
            else if (o == "SCMP_CMP_GE")
                cond.op = ArgOp::Ge;
            else if (o == "SCMP_CMP_MASKED_EQ") {
                cond.op = ArgOp::MaskedEq;
                cond.mask = cond.value;
                cond.value = two ? two->get<std::uint64_t>() : 0;
            } else {
                return fail(w.error(ap + "/op", "unknown operator '" + o + "'"));
            }
            conds.push_back(cond);
        }
        // Two conditions on one argument: one rule each (as runc does; libseccomp takes one
        // condition per argument in a rule).
        std::set<unsigned> seen;
        bool split = false;
        for (const auto& cond : conds)
            split |= !seen.insert(cond.index).second;
        BUTTER_ASSIGN_OR_RETURN(auto syscall_names, strings(w, *names, sp + "/names"));
        for (const auto& name : syscall_names) {
            // A name this machine's libseccomp does not know is skipped, as runc skips it
            // (profiles list the calls of every architecture and kernel).
            auto nr = resolve_syscall(name);
            if (!nr) continue;
            if (split) {
                for (const auto& cond : conds)
                    BUTTER_TRY(filter->add_rule_translated(act, *nr, std::span(&cond, 1)));
            } else {
                BUTTER_TRY(filter->add_rule_translated(act, *nr, conds));
            }
        }
    }
    BUTTER_ASSIGN_OR_RETURN(c.plan.seccomp, filter->export_bpf());
    // SCMP_ACT_NOTIFY: the filter's listener goes to the seccomp agent at listenerPath, with
    // the container's state (runtime.cpp); without an agent nothing would answer.
    c.plan.seccomp_listener = notify;
    c.plan.seccomp_listener_ack = notify;
    if (c.plan.seccomp_listener && c.seccomp_agent.empty())
        return fail(w.error(ptr + "/listenerPath",
                            "missing (SCMP_ACT_NOTIFY needs a seccomp agent to answer)"));
    if (!c.plan.seccomp_listener && !c.seccomp_agent.empty())
        w.warn(ptr + "/listenerPath", "ignored (no rule is SCMP_ACT_NOTIFY)");
    return {};
}

Result<void> read_resources(const Walk& w, const json& r, Config& c) {
    const std::string ptr = "/linux/resources";
    w.unknown(r, ptr,
              {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma",
               "unified"});
    for (const char* ignored : {"blockIO", "hugepageLimits", "network", "rdma", "unified"})
        if (r.contains(ignored) && !r[ignored].empty())
            return fail(w.error(ptr + "/" + ignored, "not supported"));
    if (auto it = r.find("devices"); it != r.end() && it->is_array()) {
        // No device cgroup: the nodes a container can open are the default ones and
        // linux.devices' (every other mount is nodev), whatever this list allows.
        // (One warning for the list: engines allow a dozen default devices this way.)
        for (std::size_t i = 0; i < it->size(); ++i) {
            const json& e = (*it)[i];
            if (!e.is_object() || (e.contains("allow") && !e["allow"].is_boolean()))
                return fail(w.error(ptr + "/devices/" + std::to_string(i),
                                    "must be an object whose allow is true or false"));
        }
        for (std::size_t i = 0; i < it->size(); ++i)
            if ((*it)[i].value("allow", false)) {
                w.warn(ptr + "/devices/" + std::to_string(i),
                       "ignored, and the entries after it: no device cgroup (the container can "
                       "open the default devices and linux.devices' only)");
                break;
            }
    }
    BUTTER_ASSIGN_OR_RETURN(const json* mem, member(w, r, ptr, "memory", json::value_t::object));
    if (mem) {
        w.unknown(*mem, ptr + "/memory",
                  {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                   "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"});
        for (auto [key, out] : {std::pair{"limit", &c.memory_limit}, {"swap", &c.memory_swap}})
            if (mem->contains(key)) {
                BUTTER_ASSIGN_OR_RETURN(
                    *out, integer(w, (*mem)[key], ptr + "/memory/" + key, -1, kMaxInt64));
            }
        for (const char* refused : {"reservation", "kernel", "kernelTCP", "swappiness"})
            if (mem->contains(refused))
                w.warn(ptr + "/memory/" + refused, "ignored (butter sets memory.limit and swap)");
    }
    BUTTER_ASSIGN_OR_RETURN(const json* pids, member(w, r, ptr, "pids", json::value_t::object));
    if (pids && pids->contains("limit")) {
        BUTTER_ASSIGN_OR_RETURN(c.pids_limit,
                                integer(w, (*pids)["limit"], ptr + "/pids/limit", -1, kMaxInt64));
    }
    BUTTER_ASSIGN_OR_RETURN(const json* cpu, member(w, r, ptr, "cpu", json::value_t::object));
    if (cpu) {
        w.unknown(*cpu, ptr + "/cpu",
                  {"shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod",
                   "cpus", "mems", "idle"});
        if (cpu->contains("shares")) {
            BUTTER_ASSIGN_OR_RETURN(std::int64_t v,
                                    integer(w, (*cpu)["shares"], ptr + "/cpu/shares", 0, 262144));
            c.cpu_shares = static_cast<std::uint64_t>(v);
        }
        if (cpu->contains("quota")) {
            BUTTER_ASSIGN_OR_RETURN(c.cpu_quota,
                                    integer(w, (*cpu)["quota"], ptr + "/cpu/quota", -1, kMaxInt64));
        }
        if (cpu->contains("period")) {
            BUTTER_ASSIGN_OR_RETURN(
                std::int64_t v, integer(w, (*cpu)["period"], ptr + "/cpu/period", 1000, 1000000));
            c.cpu_period = static_cast<std::uint64_t>(v);
        }
        for (const char* refused :
             {"burst", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle"})
            if (cpu->contains(refused) &&
                !((*cpu)[refused].is_string() && (*cpu)[refused].get<std::string>().empty()))
                return fail(w.error(ptr + "/cpu/" + refused, "not supported"));
    }
    return {};
}

// linux.devices: each node's path, kind, numbers, mode and owner.
Result<void> read_devices(const Walk& w, const json& l, Config& c) {
    const std::string ptr = "/linux/devices";
    BUTTER_ASSIGN_OR_RETURN(const json* arr,
                            member(w, l, "/linux", "devices", json::value_t::array));
    for (std::size_t i = 0; arr && i < arr->size(); ++i) {
        std::string dp = ptr + "/" + std::to_string(i);
        const json& d = (*arr)[i];
        if (!d.is_object()) return fail(w.error(dp, "must be an object"));
        w.unknown(d, dp, {"path", "type", "major", "minor", "fileMode", "uid", "gid"});
        SandboxPlan::Device dev;
        BUTTER_ASSIGN_OR_RETURN(const json* path,
                                member(w, d, dp, "path", json::value_t::string, true));
        auto norm = normalize_target(path->get<std::string>());
        if (!norm || *norm == "/")
            return fail(w.error(dp + "/path", "must be absolute, without '..', not '/'"));
        dev.path = *norm;
        BUTTER_ASSIGN_OR_RETURN(const json* type,
                                member(w, d, dp, "type", json::value_t::string, true));
        std::string t = type->get<std::string>();
        if (t == "c" || t == "u")
            dev.type = S_IFCHR;
        else if (t == "b")
            dev.type = S_IFBLK;
        else if (t == "p")
            dev.type = S_IFIFO;
        else
            return fail(w.error(dp + "/type", "must be c, u, b or p, not '" + t + "'"));
        for (auto [key, out] : {std::pair{"major", &dev.major}, {"minor", &dev.minor}}) {
            if (!d.contains(key)) {
                if (dev.type == S_IFIFO) continue;
                return fail(w.error(dp + "/" + key, "missing"));
            }
            // (the kernel's device numbers: a 12-bit major, a 20-bit minor)
            std::int64_t hi = std::strcmp(key, "major") == 0 ? 4095 : 1048575;
            BUTTER_ASSIGN_OR_RETURN(std::int64_t n, integer(w, d[key], dp + "/" + key, 0,
                                                            dev.type == S_IFIFO ? 0 : hi));
            *out = static_cast<unsigned>(n);
        }
        if (d.contains("fileMode")) {
            // (podman's carries the kind's S_IF* bits too, as Go's os.FileMode converts)
            BUTTER_ASSIGN_OR_RETURN(std::int64_t n,
                                    integer(w, d["fileMode"], dp + "/fileMode", 0, 0177777));
            dev.mode = static_cast<mode_t>(n) & 07777;
        }
        for (auto [key, out] : {std::pair{"uid", &dev.uid}, {"gid", &dev.gid}})
            if (d.contains(key)) {
                BUTTER_ASSIGN_OR_RETURN(std::int64_t n,
                                        integer(w, d[key], dp + "/" + key, 0, kMaxId));
                *out = static_cast<unsigned>(n);
            }
        for (const auto& other : c.plan.devices)
            if (other.path == dev.path)
                return fail(w.error(dp + "/path", "'" + dev.path + "' given twice"));
        c.plan.devices.push_back(std::move(dev));
    }
    return {};
}

// Whether this process may call setgroups (its user namespace's /proc/self/setgroups).
bool setgroups_allowed() {
    auto fd = open("/proc/self/setgroups", O_RDONLY);
    if (!fd) return true;  // (a kernel without the file: setgroups as ever)
    char buf[8] = {};
    ssize_t n = ::read(fd->get(), buf, sizeof buf - 1);
    return !(n >= 4 && std::strncmp(buf, "deny", 4) == 0);
}

Result<void> read_linux(const Walk& w, const json& l, Config& c) {
    SandboxPlan& plan = c.plan;
    const std::string ptr = "/linux";
    w.unknown(l, ptr,
              {"namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "cgroupsPath",
               "rootfsPropagation", "resources", "seccomp", "sysctl", "maskedPaths",
               "readonlyPaths", "mountLabel", "intelRdt", "personality", "memoryPolicy"});
    for (const char* refused : {"timeOffsets", "intelRdt", "personality", "memoryPolicy"})
        if (l.contains(refused)) return fail(w.error(ptr + "/" + refused, "not supported"));
    if (l.contains("mountLabel") && l["mountLabel"].is_string() &&
        !l["mountLabel"].get<std::string>().empty())
        w.warn(ptr + "/mountLabel", "ignored (no SELinux)");
    BUTTER_TRY(read_devices(w, l, c));
    BUTTER_ASSIGN_OR_RETURN(const json* ns, member(w, l, ptr, "namespaces", json::value_t::array));
    static const std::map<std::string_view, Namespace> kKinds = {
        {"pid", Namespace::Pid},       {"network", Namespace::Net}, {"mount", Namespace::Mount},
        {"ipc", Namespace::Ipc},       {"uts", Namespace::Uts},     {"user", Namespace::User},
        {"cgroup", Namespace::Cgroup}, {"time", Namespace::Time}};
    std::set<std::string> seen;
    for (std::size_t i = 0; ns && i < ns->size(); ++i) {
        std::string np = ptr + "/namespaces/" + std::to_string(i);
        const json& n = (*ns)[i];
        if (!n.is_object()) return fail(w.error(np, "must be an object"));
        w.unknown(n, np, {"type", "path"});
        BUTTER_ASSIGN_OR_RETURN(const json* type,
                                member(w, n, np, "type", json::value_t::string, true));
        BUTTER_ASSIGN_OR_RETURN(const json* path, member(w, n, np, "path", json::value_t::string));
        std::string t = type->get<std::string>();
        auto kind = kKinds.find(t);
        if (kind == kKinds.end())
            return fail(w.error(np + "/type", "unknown namespace '" + t + "'"));
        if (!seen.insert(t).second) return fail(w.error(np + "/type", "'" + t + "' given twice"));
        if (path && !path->get<std::string>().empty()) {
            c.join.emplace_back(kind->second, path->get<std::string>());
            continue;
        }
        plan.namespaces = plan.namespaces | kind->second;
    }
    if (!plan.namespaces.has(Namespace::Mount) && !c.joins(Namespace::Mount))
        return fail(w.error(ptr + "/namespaces",
                            "butter needs a mount namespace (the "
                            "container's own, or one joined by path)"));
    // Without a pid namespace of its own, what the container leaves behind could not be found
    // and killed with it (delete, a cgroup-less run).
    // A pid namespace joined (a pod's shared one): its processes are found through the
    // container's cgroup instead, which create makes for it (runtime.cpp).
    if (!plan.namespaces.has(Namespace::Pid) && !c.pid_ns_joined())
        return fail(w.error(ptr + "/namespaces",
                            "butter needs a pid namespace (the container's "
                            "own, or one joined by path)"));
    auto maps = [&](const char* key, std::vector<IdMapping>& out) -> Result<void> {
        BUTTER_ASSIGN_OR_RETURN(const json* arr, member(w, l, ptr, key, json::value_t::array));
        for (std::size_t i = 0; arr && i < arr->size(); ++i) {
            std::string mp = ptr + "/" + key + "/" + std::to_string(i);
            const json& m = (*arr)[i];
            if (!m.is_object()) return fail(w.error(mp, "must be an object"));
            w.unknown(m, mp, {"containerID", "hostID", "size"});
            BUTTER_ASSIGN_OR_RETURN(const json* in, member(w, m, mp, "containerID",
                                                           json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(
                const json* host, member(w, m, mp, "hostID", json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(const json* size,
                                    member(w, m, mp, "size", json::value_t::number_unsigned, true));
            BUTTER_ASSIGN_OR_RETURN(std::int64_t i0,
                                    integer(w, *in, mp + "/containerID", 0, kMaxId));
            BUTTER_ASSIGN_OR_RETURN(std::int64_t h, integer(w, *host, mp + "/hostID", 0, kMaxId));
            BUTTER_ASSIGN_OR_RETURN(std::int64_t n, integer(w, *size, mp + "/size", 1, kMaxId + 1));
            out.push_back({static_cast<std::uint32_t>(i0), static_cast<std::uint32_t>(h),
                           static_cast<std::uint32_t>(n)});
        }
        return {};
    };
    BUTTER_TRY(maps("uidMappings", plan.uid_map));
    BUTTER_TRY(maps("gidMappings", plan.gid_map));
    bool userns = plan.namespaces.has(Namespace::User);
    bool user_joined = c.joins(Namespace::User);
    if (user_joined && (!plan.uid_map.empty() || !plan.gid_map.empty())) {
        w.warn(ptr + "/uidMappings", "ignored (the joined user namespace's own maps apply)");
        plan.uid_map.clear();
        plan.gid_map.clear();
    }
    if (userns && (plan.uid_map.empty() || plan.gid_map.empty()))
        return fail(w.error(ptr + "/uidMappings", "a user namespace needs uid and gid mappings"));
    if (!userns && (!plan.uid_map.empty() || !plan.gid_map.empty()))
        return fail(w.error(ptr + "/uidMappings", "mappings need a user namespace"));
    BUTTER_ASSIGN_OR_RETURN(const json* cg,
                            member(w, l, ptr, "cgroupsPath", json::value_t::string));
    if (cg) c.cgroups_path = cg->get<std::string>();
    BUTTER_ASSIGN_OR_RETURN(const json* prop,
                            member(w, l, ptr, "rootfsPropagation", json::value_t::string));
    if (prop && prop->get<std::string>().find("shared") != std::string::npos)
        return fail(w.error(ptr + "/rootfsPropagation", "shared propagation is not supported"));
    BUTTER_ASSIGN_OR_RETURN(const json* res, member(w, l, ptr, "resources", json::value_t::object));
    if (res) BUTTER_TRY(read_resources(w, *res, c));
    BUTTER_ASSIGN_OR_RETURN(const json* sec, member(w, l, ptr, "seccomp", json::value_t::object));
    if (sec) BUTTER_TRY(read_seccomp(w, *sec, c));
    BUTTER_ASSIGN_OR_RETURN(const json* sysctl, member(w, l, ptr, "sysctl", json::value_t::object));
    const json no_sysctl = json::object();
    for (const auto& [key, value] : (sysctl ? *sysctl : no_sysctl).items()) {
        if (!value.is_string()) return fail(w.error(ptr + "/sysctl/" + key, "must be a string"));
        if (key.empty() || key.find('/') != std::string::npos ||
            key.find("..") != std::string::npos)
            return fail(w.error(ptr + "/sysctl/" + key, "not a sysctl name"));
        // Only what the container's own namespaces hold (as runc checks): never a host-wide one.
        bool ipc = key == "kernel.msgmax" || key == "kernel.msgmnb" || key == "kernel.msgmni" ||
                   key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" ||
                   key == "kernel.shmmni" || key == "kernel.shm_rmid_forced" ||
                   key.starts_with("fs.mqueue.");
        bool net = key.starts_with("net.");
        bool uts = key == "kernel.hostname" || key == "kernel.domainname";
        Namespace needs = ipc ? Namespace::Ipc : net ? Namespace::Net : Namespace::Uts;
        if (!ipc && !net && !uts)
            return fail(w.error(ptr + "/sysctl/" + key,
                                "not a sysctl of the container's namespaces (host-wide)"));
        if (!plan.namespaces.has(needs))
            return fail(w.error(ptr + "/sysctl/" + key, std::string("needs a ") +
                                                            (ipc   ? "ipc"
                                                             : net ? "network"
                                                                   : "uts") +
                                                            " namespace of the container's own"));
        plan.sysctls.emplace_back(key, value.get<std::string>());
    }
    for (const char* key : {"maskedPaths", "readonlyPaths"}) {
        BUTTER_ASSIGN_OR_RETURN(const json* arr, member(w, l, ptr, key, json::value_t::array));
        if (!arr) continue;
        BUTTER_ASSIGN_OR_RETURN(auto paths, strings(w, *arr, ptr + "/" + key));
        for (std::size_t i = 0; i < paths.size(); ++i) {
            auto norm = normalize_target(paths[i]);
            if (!norm)
                return fail(w.error(ptr + "/" + key + "/" + std::to_string(i),
                                    "must be absolute, without '..'"));
            (std::strcmp(key, "maskedPaths") == 0 ? plan.masked_paths : plan.readonly_paths)
                .push_back(*norm);
        }
    }
    return {};
}

Result<void> read_hooks(const Walk& w, const json& h, Config& c) {
    const std::string ptr = "/hooks";
    w.unknown(h, ptr,
              {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
               "poststop"});
    for (const char* kind : {"prestart", "createRuntime", "createContainer", "startContainer",
                             "poststart", "poststop"}) {
        BUTTER_ASSIGN_OR_RETURN(const json* arr, member(w, h, ptr, kind, json::value_t::array));
        for (std::size_t i = 0; arr && i < arr->size(); ++i) {
            std::string hp = ptr + "/" + kind + "/" + std::to_string(i);
            const json& e = (*arr)[i];
            if (!e.is_object()) return fail(w.error(hp, "must be an object"));
            w.unknown(e, hp, {"path", "args", "env", "timeout"});
            Hook hook;
            BUTTER_ASSIGN_OR_RETURN(const json* path,
                                    member(w, e, hp, "path", json::value_t::string, true));
            hook.path = path->get<std::string>();
            if (!hook.path.starts_with("/")) return fail(w.error(hp + "/path", "must be absolute"));
            BUTTER_ASSIGN_OR_RETURN(const json* args,
                                    member(w, e, hp, "args", json::value_t::array));
            if (args) {
                BUTTER_ASSIGN_OR_RETURN(hook.args, strings(w, *args, hp + "/args"));
            }
            BUTTER_ASSIGN_OR_RETURN(const json* env, member(w, e, hp, "env", json::value_t::array));
            if (env) {
                BUTTER_ASSIGN_OR_RETURN(hook.env, strings(w, *env, hp + "/env"));
            }
            BUTTER_ASSIGN_OR_RETURN(const json* t,
                                    member(w, e, hp, "timeout", json::value_t::number_unsigned));
            if (t) {
                BUTTER_ASSIGN_OR_RETURN(std::int64_t secs,
                                        integer(w, *t, hp + "/timeout", 1, 86400));
                hook.timeout = static_cast<int>(secs);
            }
            c.hooks[kind].push_back(std::move(hook));
        }
    }
    // The two run in the container (child.hpp's run_container_hooks).
    for (auto [kind, out] : {std::pair{"createContainer", &c.plan.create_container_hooks},
                             {"startContainer", &c.plan.start_container_hooks}})
        for (auto& hook : c.hooks[kind])
            out->push_back(hook);
    return {};
}

}  // namespace

namespace {

Result<Config> parse(std::string_view text, const std::string& bundle, const std::string& origin,
                     bool for_exec) {
    Config c;
    c.bundle = bundle;
    Walk w{origin, &c.warnings};
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        // Parsed again for the position of the error.
        try {
            json again = json::parse(text);
        } catch (const json::parse_error& e) {
            return fail(Error::message("config.json", origin + ": " + e.what()));
        }
        return fail(Error::message("config.json", origin + ": not JSON"));
    }
    if (!doc.is_object()) return fail(w.error("", "must be a JSON object"));
    w.unknown(doc, "",
              {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
               "annotations", "linux"});
    BUTTER_ASSIGN_OR_RETURN(const json* version,
                            member(w, doc, "", "ociVersion", json::value_t::string, true));
    c.oci_version = version->get<std::string>();
    if (!c.oci_version.starts_with("1."))
        return fail(w.error("/ociVersion", "'" + c.oci_version + "' is not 1.x"));

    SandboxPlan& plan = c.plan;
    plan.tier = profile::Tier::Namespaces;
    plan.tier_auto = false;
    plan.privileged = ::geteuid() == 0;
    plan.no_init = true;
    plan.new_session = true;
    plan.read_only_root = false;
    plan.stop_timeout = std::chrono::seconds(10);
    plan.namespaces = Namespaces{};
    // Namespaces first: the mounts depend on them (sysfs without a network namespace).
    BUTTER_ASSIGN_OR_RETURN(const json* linux_,
                            member(w, doc, "", "linux", json::value_t::object, true));
    BUTTER_TRY(read_linux(w, *linux_, c));
    BUTTER_ASSIGN_OR_RETURN(const json* root,
                            member(w, doc, "", "root", json::value_t::object, true));
    w.unknown(*root, "/root", {"path", "readonly"});
    BUTTER_ASSIGN_OR_RETURN(const json* root_path,
                            member(w, *root, "/root", "path", json::value_t::string, true));
    std::string rp = root_path->get<std::string>();
    if (!rp.starts_with("/")) rp = bundle + "/" + rp;
    // (exec: the container's file system is made; its host paths are not looked up again,
    // where the container may have moved what a bind source named)
    if (for_exec) rp = "/";
    auto host_root = resolve_host_path(rp, Symlinks::Follow);
    if (!host_root) return fail(w.error("/root/path", host_root.error().what()));
    if (!S_ISDIR(host_root->st.st_mode)) return fail(w.error("/root/path", "not a directory"));
    plan.root_dir = host_root->path;
    plan.root_dev = host_root->st.st_dev;
    plan.root_ino = host_root->st.st_ino;
    BUTTER_ASSIGN_OR_RETURN(const json* ro,
                            member(w, *root, "/root", "readonly", json::value_t::boolean));
    plan.read_only_root = ro && ro->get<bool>();

    BUTTER_ASSIGN_OR_RETURN(const json* process,
                            member(w, doc, "", "process", json::value_t::object, true));
    BUTTER_TRY(read_process(w, *process, c, "/process"));
    BUTTER_ASSIGN_OR_RETURN(const json* hostname,
                            member(w, doc, "", "hostname", json::value_t::string));
    if (hostname) plan.hostname = hostname->get<std::string>();
    BUTTER_ASSIGN_OR_RETURN(const json* domain,
                            member(w, doc, "", "domainname", json::value_t::string));
    if (domain) plan.domainname = domain->get<std::string>();
    if ((!plan.hostname.empty() || !plan.domainname.empty()) &&
        !plan.namespaces.has(Namespace::Uts))
        return fail(w.error("/hostname", "setting it needs a uts namespace of the container's"));
    BUTTER_ASSIGN_OR_RETURN(const json* mounts, member(w, doc, "", "mounts", json::value_t::array));
    if (mounts && !for_exec) BUTTER_TRY(read_mounts(w, *mounts, c));
    // runtime-spec's default devices and links in /dev, after what the config mounted there.
    MountStep dev;
    dev.type = MountType::DevNodes;
    dev.target = "/dev";
    plan.mounts.push_back(dev);
    if (c.joins(Namespace::Mount)) {
        // A mount namespace joined is entered as it is: its root and mounts are the
        // container's, and nothing of the config's file system view is set up in it (runc
        // would pivot_root inside it, under the feet of the processes already there).
        for (const char* key : {"mounts"})
            if (doc.contains(key) && !doc[key].empty())
                w.warn(std::string("/") + key, "ignored (the container joins a mount namespace)");
        for (const char* key : {"devices", "maskedPaths", "readonlyPaths", "sysctl"})
            if (linux_->contains(key) && !(*linux_)[key].empty())
                w.warn(std::string("/linux/") + key,
                       "ignored (the container joins a mount namespace)");
        w.warn("/root", "ignored (the container joins a mount namespace: its root is that one's)");
        plan.mounts.clear();
        plan.devices.clear();
        plan.masked_paths.clear();
        plan.readonly_paths.clear();
        plan.sysctls.clear();
        plan.root_dir.clear();
    }
    BUTTER_ASSIGN_OR_RETURN(const json* hooks, member(w, doc, "", "hooks", json::value_t::object));
    if (hooks) BUTTER_TRY(read_hooks(w, *hooks, c));
    BUTTER_ASSIGN_OR_RETURN(const json* notes,
                            member(w, doc, "", "annotations", json::value_t::object));
    const json no_notes = json::object();
    for (const auto& [k, v] : (notes ? *notes : no_notes).items())
        if (v.is_string()) c.annotations[k] = v.get<std::string>();

    // Ids: the parent writes root's maps (any range), the child an unprivileged user's (its
    // own ids alone); the child takes container root (or the config's user) once they exist.
    bool userns = plan.namespaces.has(Namespace::User);
    plan.joined_user_ns = c.joins(Namespace::User);
    plan.child_writes_maps = !plan.privileged;
    // (Root of a user namespace whose setgroups is denied, as rootless podman runs its runtime
    // with a single id mapped: the groups cannot change, and there are none to drop.)
    plan.clear_groups = plan.privileged && setgroups_allowed();
    if (userns || plan.joined_user_ns) {
        // (a joined one's maps are its own: its root, and groups left as they are, since its
        // setgroups may be denied)
        plan.setup_uid = 0;
        plan.setup_gid = 0;
        if (plan.joined_user_ns) plan.clear_groups = false;
    } else if (!plan.privileged) {
        return fail(
            w.error("/linux/namespaces", "without root, the container needs a user namespace"));
    }
    plan.loopback_up = plan.namespaces.has(Namespace::Net);
    plan.root_attrs = MOUNT_ATTR_NODEV;  // (see read_mounts: no device node of the image's)
    if (c.terminal) plan.pty_ptmx = "/dev/pts/ptmx";
    plan.seccomp_early = !plan.no_new_privs && !plan.seccomp.empty();
    return c;
}

}  // namespace

Result<Config> parse_config(std::string_view text, const std::string& bundle,
                            const std::string& origin, bool for_exec) {
    try {
        return parse(text, bundle, origin, for_exec);
    } catch (const json::exception& e) {
        // A value of the wrong kind where a field is read without member()'s check.
        return fail(Error::message("config.json", origin + ": " + e.what()));
    }
}

Result<void> apply_process(std::string_view text, const std::string& origin, Config& c) {
    Walk w{origin, &c.warnings};
    try {
        json doc = json::parse(text, nullptr, false);
        if (doc.is_discarded() || !doc.is_object())
            return fail(Error::message("process.json", origin + ": not a JSON object"));
        BUTTER_TRY(read_process(w, doc, c, ""));
    } catch (const json::exception& e) {
        return fail(Error::message("process.json", origin + ": " + e.what()));
    }
    c.plan.pty_ptmx = c.terminal ? "/dev/pts/ptmx" : "";
    c.plan.seccomp_early = !c.plan.no_new_privs && !c.plan.seccomp.empty();
    return {};
}

Result<Config> load_config(const std::string& bundle) {
    std::string path = bundle + "/config.json";
    auto fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (!fd) return fail(std::move(fd).error());
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd->get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read", path);
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > (64u << 20))
            return fail(Error::message("read", "larger than 64 MiB", path));
    }
    BUTTER_ASSIGN_OR_RETURN(Config c, parse_config(text, bundle, path));
    c.text = std::move(text);
    return c;
}

std::string default_spec(bool rootless) {
    json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
    json spec = {
        {"ociVersion", "1.1.0"},
        {"process",
         {{"terminal", false},
          {"user", {{"uid", 0}, {"gid", 0}}},
          {"args", {"sh"}},
          {"env",
           {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
          {"cwd", "/"},
          {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
          {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
          {"noNewPrivileges", true}}},
        {"root", {{"path", "rootfs"}, {"readonly", true}}},
        {"hostname", "butter"},
        {"mounts",
         {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
          {{"destination", "/dev"},
           {"type", "tmpfs"},
           {"source", "tmpfs"},
           {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
          {{"destination", "/dev/pts"},
           {"type", "devpts"},
           {"source", "devpts"},
           {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
          {{"destination", "/dev/shm"},
           {"type", "tmpfs"},
           {"source", "shm"},
           {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
          {{"destination", "/dev/mqueue"},
           {"type", "mqueue"},
           {"source", "mqueue"},
           {"options", {"nosuid", "noexec", "nodev"}}},
          {{"destination", "/sys"},
           {"type", "sysfs"},
           {"source", "sysfs"},
           {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
        {"linux",
         {{"namespaces",
           {{{"type", "pid"}},
            {{"type", "network"}},
            {{"type", "ipc"}},
            {{"type", "uts"}},
            {{"type", "mount"}},
            {{"type", "cgroup"}}}},
          {"maskedPaths",
           {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"}},
          {"readonlyPaths",
           {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
    if (rootless) {
        spec["linux"]["namespaces"].push_back({{"type", "user"}});
        spec["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", ::getuid()}, {"size", 1}}};
        spec["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", ::getgid()}, {"size", 1}}};
    }
    return spec.dump(1, '\t') + "\n";
}

std::string features_json() {
    json f = {
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", "1.1.0"},
        {"hooks", {"prestart", "createRuntime", "poststart", "poststop"}},
        // (dev and the suid forms are taken and overridden: every mount is nodev, README)
        {"mountOptions",
         {"async",       "atime",        "bind",           "diratime",      "dirsync",
          "exec",        "mand",         "noatime",        "nodev",         "nodiratime",
          "noexec",      "nomand",       "norelatime",     "nostrictatime", "nosuid",
          "nosymfollow", "private",      "rbind",          "ratime",        "rdiratime",
          "relatime",    "rexec",        "rnoatime",       "rnodev",        "rnodiratime",
          "rnoexec",     "rnorelatime",  "rnostrictatime", "rnosuid",       "rnosymfollow",
          "ro",          "rprivate",     "rrelatime",      "rro",           "rrw",
          "rslave",      "rstrictatime", "rsuid",          "rsymfollow",    "runbindable",
          "rw",          "slave",        "strictatime",    "suid",          "symfollow",
          "sync",        "unbindable"}},
        {"linux",
         {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
          {"capabilities", json::array()},
          {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
          {"seccomp",
           {{"enabled", true},
            {"actions",
             {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
              "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
              "SCMP_ACT_TRAP"}},
            {"operators",
             {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
            {"archs", {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"}}}},
          {"apparmor", {{"enabled", false}}},
          {"selinux", {{"enabled", false}}}}},
        {"annotations", {{"org.opencontainers.runtime-spec.features", "butter"}}}};
    for (int cap = 0; cap <= 63; ++cap) {
        std::string name = capability_name(cap);
        if (name.starts_with("CAP_")) f["linux"]["capabilities"].push_back(name);
    }
    return f.dump(4) + "\n";
}

}  // namespace butter::launcher::oci
