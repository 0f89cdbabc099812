// The runc command line: global options, then create, start, state, kill, delete, run, ps,
// spec, features. Errors are one line "butter oci: ..." on stderr (and in --log, as runc's
// JSON log lines when --log-format json), exit status 1.
#include "oci/runtime.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include <butter/cgroup.hpp>
#include <butter/fd.hpp>
#include <butter/mount.hpp>
#include <butter/process.hpp>
#include <butter/signalfd.hpp>
#include <butter/splice.hpp>
#include <butter/unix_socket.hpp>

#include "oci/config.hpp"
#include "spawn/spawn.hpp"
#include "supervise/attempt.hpp"
#include "supervise/descendants.hpp"

namespace butter::launcher::oci {

namespace {

using nlohmann::json;

struct Globals {
    std::string root;
    std::string log;
    bool log_json = false;
    bool systemd_cgroup = false;
};

Globals g;

void log_line(const char* level, const std::string& msg) {
    if (g.log.empty()) return;
    int fd = ::open(g.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    Fd f(fd);
    std::string line;
    if (g.log_json) {
        char when[64];
        std::time_t now = std::time(nullptr);
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        line = json{{"level", level}, {"msg", msg}, {"time", when}}.dump() + "\n";
    } else {
        line = std::string(level) + ": " + msg + "\n";
    }
    [[maybe_unused]] ssize_t n = ::write(fd, line.data(), line.size());
}

int error(const std::string& msg) {
    std::fprintf(stderr, "butter oci: %s\n", msg.c_str());
    log_line("error", msg);
    return 1;
}

void warn(const std::string& msg) {
    std::fprintf(stderr, "butter oci: warning: %s\n", msg.c_str());
    log_line("warning", msg);
}

bool valid_id(const std::string& id) {
    if (id.empty() || id.size() > 1024 || id == "." || id == "..") return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
              c == '+'))
            return false;
    return true;
}

// ROOT, made (0700) if missing; never a symlink.
Result<Fd> open_root(bool create) {
    if (create) {
        // Each missing directory of the path, 0700 for the last.
        std::string path;
        std::size_t at = 1;
        while (at <= g.root.size()) {
            std::size_t slash = g.root.find('/', at);
            if (slash == std::string::npos) slash = g.root.size();
            path = g.root.substr(0, slash);
            if (::mkdir(path.c_str(), slash == g.root.size() ? 0700 : 0755) < 0 && errno != EEXIST)
                return fail_errno("mkdir", path);
            at = slash + 1;
        }
    }
    auto fd = open_no_symlinks(AT_FDCWD, g.root.c_str(), O_PATH | O_DIRECTORY);
    if (!fd) return fail(std::move(fd).error());
    struct stat st {};
    if (::fstat(fd->get(), &st) < 0) return fail_errno("fstat", g.root);
    if (st.st_uid != ::geteuid() || (st.st_mode & 022))
        return fail(
            Error::message("open", "not owned by this user, or writable by others", g.root));
    return fd;
}

// The fields state.json keeps: what the runtime wrote at create.
struct State {
    std::string id, bundle, created;
    pid_t pid = 0;
    std::uint64_t start_time = 0;  // the process's, from /proc/PID/stat (pid reuse)
    bool started = false;
    // Its pid namespace is its own (not one it joined, which other containers' processes share:
    // then its processes are those of its cgroups alone).
    bool own_pid_ns = true;
    // Its mount namespace (nsfs device and inode; the kernel's 64-bit id where it has one, else
    // 0), by which a container in a joined pid namespace without a cgroup knows its processes.
    std::uint64_t mnt_dev = 0, mnt_ino = 0, mnt_id = 0;
    std::vector<std::string> cgroups;  // directories create made
    // Those made above them (a nested cgroupsPath), top-down: removed after them where empty.
    std::vector<std::string> cgroup_parents;
    std::map<std::string, std::string> annotations;
    json hooks;  // the config's poststart and poststop hooks
};

// The process's start time (0 if it is gone), and its state letter in `*state_out`.
std::uint64_t process_start_time(pid_t pid, char* state_out = nullptr) {
    auto st = process_stat(pid);
    if (state_out) *state_out = st ? st->state : 0;
    return st ? st->start_time : 0;
}

json state_json(const State& s) {
    return json{{"id", s.id},
                {"bundle", s.bundle},
                {"created", s.created},
                {"pid", s.pid},
                {"startTime", s.start_time},
                {"started", s.started},
                {"ownPidNamespace", s.own_pid_ns},
                {"mountNamespace", {s.mnt_dev, s.mnt_ino, s.mnt_id}},
                {"cgroups", s.cgroups},
                {"cgroupParents", s.cgroup_parents},
                {"annotations", s.annotations},
                {"hooks", s.hooks}};
}

Result<void> write_file_at(int dir, const std::string& name, const std::string& text) {
    std::string tmp = "." + name + ".tmp";
    int fd =
        ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_errno("openat", tmp);
    Fd f(fd);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail_errno("write", tmp);
    if (::renameat(dir, tmp.c_str(), dir, name.c_str()) < 0) return fail_errno("renameat", name);
    return {};
}

Result<std::string> read_file_at(int dir, const char* name) {
    int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return fail_errno("openat", name);
    Fd f(fd);
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) return fail_errno("read", name);
        if (n == 0) return text;
        text.append(buf, static_cast<std::size_t>(n));
    }
}

struct Container {
    Fd dir;
    State state;
};

Result<Container> open_container(const std::string& id) {
    if (!valid_id(id)) return fail(Error::message("container", "not a valid container id", id));
    BUTTER_ASSIGN_OR_RETURN(Fd root, open_root(false));
    int fd = ::openat(root.get(), id.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return fail(Error::message("container", "does not exist", id));
        return fail_errno("openat", g.root + "/" + id);
    }
    Container c{Fd(fd), {}};
    // O_PATH fds cannot be read through: the directory again, for openat's reads.
    int dfd = ::openat(root.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return fail_errno("openat", g.root + "/" + id);
    c.dir = Fd(dfd);
    auto read = read_file_at(c.dir.get(), "state.json");
    if (!read && read.error().errno_value() == ENOENT)
        return fail(Error::message("container",
                                   "is incomplete (its create did not finish: delete --force "
                                   "removes it)",
                                   id));
    if (!read) return fail(std::move(read).error());
    std::string text = std::move(*read);
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return fail(Error::message("container", "state.json is damaged", id));
    State& s = c.state;
    try {  // (a field of the wrong kind: damaged too)
        s.id = j.value("id", id);
        s.bundle = j.value("bundle", "");
        s.created = j.value("created", "");
        s.pid = j.value("pid", 0);
        s.start_time = j.value("startTime", std::uint64_t{0});
        s.started = j.value("started", false);
        s.own_pid_ns = j.value("ownPidNamespace", true);
        if (j.contains("mountNamespace")) {
            auto m = j["mountNamespace"].get<std::vector<std::uint64_t>>();
            if (m.size() == 3)
                std::tie(s.mnt_dev, s.mnt_ino, s.mnt_id) = std::tie(m[0], m[1], m[2]);
        }
        if (j.contains("cgroups")) s.cgroups = j["cgroups"].get<std::vector<std::string>>();
        if (j.contains("cgroupParents"))
            s.cgroup_parents = j["cgroupParents"].get<std::vector<std::string>>();
        if (j.contains("annotations"))
            s.annotations = j["annotations"].get<std::map<std::string, std::string>>();
        s.hooks = j.value("hooks", json::object());
    } catch (const json::exception&) {
        return fail(Error::message("container", "state.json is damaged", id));
    }
    return c;
}

// The config.json the container was created from (its copy in the state directory).
Result<Config> created_config(const Container& c) {
    BUTTER_ASSIGN_OR_RETURN(std::string text, read_file_at(c.dir.get(), "config.json"));
    BUTTER_ASSIGN_OR_RETURN(
        Config config,
        parse_config(text, c.state.bundle, g.root + "/" + c.state.id + "/config.json", true));
    config.text = std::move(text);
    return config;
}

// "created", "running" or "stopped" (the process gone, a zombie, or another one at its pid).
std::string status_of(const State& s) {
    if (s.pid <= 0) return "stopped";
    char st = 0;
    if (process_start_time(s.pid, &st) != s.start_time || st == 'Z' || st == 'X') return "stopped";
    return s.started ? "running" : "created";
}

// The state as the runtime spec prints it.
json spec_state(const State& s) {
    std::string status = status_of(s);
    return json{{"ociVersion", "1.1.0"}, {"id", s.id},
                {"status", status},      {"pid", status == "stopped" ? 0 : s.pid},
                {"bundle", s.bundle},    {"rootfs", ""},
                {"created", s.created},  {"annotations", s.annotations}};
}

// A hook of state.json's (its JSON as hooks_json wrote it).
Hook hook_of(const json& j) {
    Hook h;
    h.path = j.value("path", "");
    h.args = j.value("args", std::vector<std::string>{});
    h.env = j.value("env", std::vector<std::string>{});
    h.timeout = j.value("timeout", 0);
    return h;
}

Result<void> run_hooks(const json& hooks, const char* kind, const State& s) {
    if (!hooks.contains(kind)) return {};
    std::string state = spec_state(s).dump();
    for (const json& h : hooks[kind])
        BUTTER_TRY(run_hook(hook_of(h), state));
    return {};
}

json hooks_json(const std::vector<Hook>& hooks) {
    json arr = json::array();
    for (const Hook& h : hooks) {
        json j{{"path", h.path}, {"args", h.args}, {"env", h.env}};
        if (h.timeout > 0) j["timeout"] = h.timeout;
        arr.push_back(j);
    }
    return arr;
}

// --- cgroups ------------------------------------------------------------------------------

// The directory for `controller`'s hierarchy: an absolute cgroupsPath from its root, a
// relative one below this process's own cgroup (as runc places them).
Result<std::string> cgroup_dir(const std::string& controller, const std::string& path,
                               CgroupVersion& version, std::string& mount, std::string& own) {
    BUTTER_ASSIGN_OR_RETURN(CgroupHierarchy h, find_cgroup_hierarchy(controller));
    version = h.version;
    mount = h.mount;
    own = h.own_path();
    std::string rel = path;
    if (g.systemd_cgroup && std::count(path.begin(), path.end(), ':') == 2) {
        // slice:prefix:name, as runc's systemd driver names it: made as cgroupfs paths.
        auto a = path.find(':'), b = path.find(':', a + 1);
        rel = "/" + path.substr(0, a) + "/" + path.substr(a + 1, b - a - 1) + "-" +
              path.substr(b + 1) + ".scope";
    }
    if (rel.find("..") != std::string::npos)
        return fail(Error::message("cgroupsPath", "must not hold '..'", path));
    if (rel.find_first_not_of('/') == std::string::npos)
        return fail(Error::message("cgroupsPath", "must name a cgroup below the root", path));
    if (rel.starts_with("/")) return h.mount + rel;
    // Relative: below this process's cgroup; on v2 below its parent (as runc places it): a
    // cgroup with processes, as the runtime's own is, cannot enable controllers for children.
    std::string base = h.own_path();
    if (h.version == CgroupVersion::V2 && h.own != "/") base = base.substr(0, base.rfind('/'));
    return base + "/" + rel;
}

// `path` and its parents, those made appended to `made` (top-down).
Result<void> make_dirs(const std::string& path, std::vector<std::string>& made) {
    for (std::size_t at = 1; at <= path.size();) {
        std::size_t slash = path.find('/', at);
        if (slash == std::string::npos) slash = path.size();
        std::string part = path.substr(0, slash);
        if (::mkdir(part.c_str(), 0755) == 0)
            made.push_back(part);
        else if (errno != EEXIST)
            return fail_errno("mkdir", part);
        at = slash + 1;
    }
    return {};
}

Result<void> write_control(const std::string& dir, const char* file, const std::string& value) {
    std::string path = dir + "/" + file;
    auto fd = open_no_symlinks(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (!fd) return fail(std::move(fd).error());
    if (::write(fd->get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        return fail_errno("write", path + " (" + value + ")");
    return {};
}

// `dir` and every cgroup below it (those the container made, through a writable cgroup
// mount), parents before their children. Each directory is opened O_NOFOLLOW below `dir`.
std::vector<std::string> cgroup_tree(const std::string& dir) {
    std::vector<std::string> out{dir};
    for (std::size_t i = 0; i < out.size() && out.size() < 4096; ++i) {
        int fd = ::open(out[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        DIR* d = ::fdopendir(fd);
        if (!d) {
            ::close(fd);
            continue;
        }
        while (struct dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
                std::strcmp(e->d_name, "..") != 0)
                out.push_back(out[i] + "/" + e->d_name);
        ::closedir(d);
    }
    return out;
}

// cgroup v2: `controller` enabled in cgroup.subtree_control of each cgroup from the hierarchy's
// root `mount` down to `dir`'s parent, where it is not yet (as runc's fs2 manager does), so that
// `dir` has the controller's files. A cgroup there that holds processes refuses it (EBUSY: the
// kernel's "no internal processes" rule).
Result<void> enable_v2_controller(const std::string& mount, const std::string& dir,
                                  const std::string& controller) {
    std::vector<std::string> levels{mount};
    for (std::size_t at = mount.size() + 1; at < dir.size();) {
        std::size_t slash = dir.find('/', at);
        if (slash == std::string::npos) break;
        levels.push_back(dir.substr(0, slash));
        at = slash + 1;
    }
    for (const auto& level : levels)
        BUTTER_TRY(enable_controller_in(level, controller));
    return {};
}

// The cgroups of the config's limits, made and written.
struct Cgroups {
    std::vector<std::string> dirs;     // the container's
    std::vector<std::string> parents;  // made above them, top-down (State::cgroup_parents)
};

void remove_cgroups(const std::vector<std::string>& dirs, const std::vector<std::string>& parents) {
    for (const auto& top : dirs) {
        auto tree = cgroup_tree(top);
        for (auto d = tree.rbegin(); d != tree.rend(); ++d)
            for (int i = 0; i < 100 && ::rmdir(d->c_str()) < 0 && errno == EBUSY; ++i)
                ::usleep(10000);  // dying processes still in it
    }
    // (a parent another container's cgroup is below stays: ENOTEMPTY/EBUSY)
    for (auto p = parents.rbegin(); p != parents.rend(); ++p)
        (void)::rmdir(p->c_str());
}

Result<Cgroups> make_cgroups(const Config& c, const std::string& id) {
    std::vector<std::string> made, parents;
    // (without a path: one cgroup of its own below butter's, no parent left behind)
    // (named after the state root too: the same id under another --root, another engine's, is
    // another container)
    std::uint32_t root_hash = 2166136261u;  // FNV-1a
    for (unsigned char ch : g.root)
        root_hash = (root_hash ^ ch) * 16777619u;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", root_hash);
    std::string path =
        c.cgroups_path.empty() ? "butter-oci-" + std::string(tag) + "-" + id : c.cgroups_path;
    auto one = [&](const char* controller) -> Result<std::pair<std::string, CgroupVersion>> {
        CgroupVersion v{};
        std::string mount, own;
        BUTTER_ASSIGN_OR_RETURN(std::string dir, cgroup_dir(controller, path, v, mount, own));
        if (std::find(made.begin(), made.end(), dir) == made.end()) {
            // Nor one below a cgroup that holds processes (another container's: its kill --all
            // and delete would reach this one's), but the runtime's own cgroup and those above.
            for (std::size_t slash = dir.find('/', mount.size() + 1); slash != std::string::npos;
                 slash = dir.find('/', slash + 1)) {
                std::string above = dir.substr(0, slash);
                if (own == above || own.starts_with(above + "/")) continue;
                if (auto procs = cgroup_processes(above); procs && !procs->empty())
                    return fail(Error::message("cgroupsPath",
                                               "is below a cgroup that holds processes", above));
            }
            // A cgroup of someone else's (processes in it or below) is not taken over: kill
            // --all and delete would reach them (runc refuses a populated one too).
            if (::access(dir.c_str(), F_OK) == 0)
                for (const auto& d : cgroup_tree(dir))
                    if (auto procs = cgroup_processes(d); procs && !procs->empty())
                        return fail(Error::message("cgroupsPath", "holds processes already", d));
            std::vector<std::string> mkdirs;
            auto r = make_dirs(dir, mkdirs);
            if (!mkdirs.empty() && mkdirs.back() == dir) mkdirs.pop_back();
            parents.insert(parents.end(), mkdirs.begin(), mkdirs.end());
            if (!r) return fail(std::move(r).error());
            made.push_back(dir);
        }
        if (v == CgroupVersion::V2) BUTTER_TRY(enable_v2_controller(mount, dir, controller));
        return std::pair{dir, v};
    };
    auto result = [&]() -> Result<void> {
        if (c.memory_limit && *c.memory_limit > 0) {
            BUTTER_ASSIGN_OR_RETURN(auto at, one("memory"));
            bool v2 = at.second == CgroupVersion::V2;
            BUTTER_TRY(write_control(at.first, v2 ? "memory.max" : "memory.limit_in_bytes",
                                     std::to_string(*c.memory_limit)));
            if (c.memory_swap && *c.memory_swap > 0) {
                // OCI's swap is memory plus swap (v1's memsw); v2's swap.max is swap alone.
                std::string file = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
                std::string value =
                    std::to_string(v2 ? *c.memory_swap - *c.memory_limit : *c.memory_swap);
                if (auto r = write_control(at.first, file.c_str(), value); !r)
                    warn("memory swap limit not set: " + r.error().what());
            }
        }
        if (c.pids_limit && *c.pids_limit > 0) {
            BUTTER_ASSIGN_OR_RETURN(auto at, one("pids"));
            BUTTER_TRY(write_control(at.first, "pids.max", std::to_string(*c.pids_limit)));
        }
        if (c.cpu_quota || c.cpu_shares) {
            BUTTER_ASSIGN_OR_RETURN(auto at, one("cpu"));
            bool v2 = at.second == CgroupVersion::V2;
            std::uint64_t period = c.cpu_period.value_or(100000);
            if (c.cpu_quota && *c.cpu_quota > 0) {
                if (v2) {
                    BUTTER_TRY(
                        write_control(at.first, "cpu.max",
                                      std::to_string(*c.cpu_quota) + " " + std::to_string(period)));
                } else {
                    BUTTER_TRY(
                        write_control(at.first, "cpu.cfs_period_us", std::to_string(period)));
                    BUTTER_TRY(
                        write_control(at.first, "cpu.cfs_quota_us", std::to_string(*c.cpu_quota)));
                }
            }
            if (c.cpu_shares && *c.cpu_shares >= 2) {
                std::uint64_t s = *c.cpu_shares;
                BUTTER_TRY(v2 ? write_control(at.first, "cpu.weight",
                                              std::to_string(1 + ((s - 2) * 9999) / 262142))
                              : write_control(at.first, "cpu.shares", std::to_string(s)));
            }
        }
        // A cgroupsPath the config names is made without a limit too (as runc makes it: the
        // engine finds the container there), and in a pid namespace it joined, the
        // container's processes are known by its cgroup. Where none can be made (rootless), by
        // its mount namespace and descent from its first process (container_processes).
        if (made.empty() && (c.pid_ns_joined() || !c.cgroups_path.empty()))
            if (auto r = one("pids"); !r) {
                int e = r.error().errno_value();
                if (e != EACCES && e != EPERM && e != EROFS) return fail(std::move(r).error());
                if (c.pid_ns_joined())
                    warn("a joined pid namespace without a cgroup (" + r.error().what() +
                         "): kill --all and ps know its processes by its mount namespace");
                else
                    warn("linux.cgroupsPath: no cgroup made (" + r.error().what() + ")");
            }
        return {};
    }();
    if (!result) {
        remove_cgroups(made, parents);
        return fail(std::move(result).error());
    }
    return Cgroups{std::move(made), std::move(parents)};
}

// Whether process `pid`'s pid namespace is `want` or one nested in it: its parents up to
// the caller's own (NS_GET_PARENT fails with EPERM above it).
bool in_pid_namespace(const char* pid, const struct stat& want) {
    std::string path = std::string("/proc/") + pid + "/ns/pid";
    Fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    for (int depth = 0; ns.valid() && depth <= 32; ++depth) {  // (the kernel nests 32 at most)
        struct stat st {};
        if (::fstat(ns.get(), &st) < 0) return false;
        if (st.st_ino == want.st_ino && st.st_dev == want.st_dev) return true;
        ns = Fd(::ioctl(ns.get(), NS_GET_PARENT));
    }
    return false;
}

// NS_GET_MNTNS_ID (Linux 6.8): a mount namespace's id, never given to another one.
#ifndef NS_GET_MNTNS_ID
#define NS_GET_MNTNS_ID _IOR(NSIO, 0x5, std::uint64_t)
#endif

// Process `pid`'s mount namespace: nsfs device, inode and id (0 before Linux 6.8); zeros if it
// cannot be read (gone, or not this user's).
std::array<std::uint64_t, 3> mount_namespace(const char* pid) {
    std::string path = std::string("/proc/") + pid + "/ns/mnt";
    Fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!ns.valid() || ::fstat(ns.get(), &st) < 0) return {0, 0, 0};
    std::uint64_t id = 0;
    if (::ioctl(ns.get(), NS_GET_MNTNS_ID, &id) < 0) id = 0;
    return {st.st_dev, st.st_ino, id};
}

// The container's processes: those in its pid namespace (if it is its own) and in those nested
// in it, and those in its cgroups (a process that made a pid namespace of its own is in them
// still). In a joined pid namespace without a cgroup: those in its mount namespace (by its id;
// before Linux 6.8 by its inode, and only while the first process is in it, so that the inode
// cannot be another namespace's) and the first process's descendants.
// Every process /proc lists for which `match(name)` holds, into `out`.
template <typename Match>
void processes_where(Match match, std::set<pid_t>& out) {
    DIR* d = ::opendir("/proc");
    while (d) {
        struct dirent* e = ::readdir(d);
        if (!e) break;
        if (std::isdigit(static_cast<unsigned char>(e->d_name[0])) && match(e->d_name))
            out.insert(std::atoi(e->d_name));
    }
    if (d) ::closedir(d);
}

std::vector<pid_t> container_processes(const State& s) {
    std::set<pid_t> pids;
    struct stat want {};
    std::string ns = "/proc/" + std::to_string(s.pid) + "/ns/pid";
    bool alive = status_of(s) != "stopped";
    if (s.own_pid_ns && alive && ::stat(ns.c_str(), &want) == 0)
        processes_where([&](const char* pid) { return in_pid_namespace(pid, want); }, pids);
    if (!s.own_pid_ns && s.cgroups.empty()) {
        if (alive) {
            pids.insert(s.pid);
            for (pid_t p : descendants_of(s.pid))
                pids.insert(p);
        }
        std::string first = std::to_string(s.pid);
        auto held = alive ? mount_namespace(first.c_str()) : std::array<std::uint64_t, 3>{};
        bool by_id = s.mnt_id != 0;
        bool by_inode = !by_id && s.mnt_ino != 0 && held[0] == s.mnt_dev && held[1] == s.mnt_ino;
        if (by_id || by_inode)
            processes_where(
                [&](const char* pid) {
                    auto m = mount_namespace(pid);
                    return by_id ? m[2] == s.mnt_id : (m[0] == s.mnt_dev && m[1] == s.mnt_ino);
                },
                pids);
    }
    for (const auto& top : s.cgroups)
        for (const auto& dir : cgroup_tree(top))
            if (auto procs = cgroup_processes(dir)) pids.insert(procs->begin(), procs->end());
    return {pids.begin(), pids.end()};
}

// --- the commands ---------------------------------------------------------------------------

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::string> values;                 // the last of each
    std::map<std::string, std::vector<std::string>> repeated;  // all of each (--env)
    std::set<std::string> flags;
};

// "--name value", "--name=value", "-b value"; `with_value` names the options that take one.
Result<Args> parse_args(const std::vector<std::string>& args, std::size_t from,
                        const std::set<std::string>& with_value,
                        const std::set<std::string>& without) {
    Args out;
    for (std::size_t i = from; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1,
                                  args.end());
            break;
        }
        if (a.size() > 1 && a[0] == '-' && out.positional.empty()) {
            std::string name = a, value;
            bool has_value = false;
            if (auto eq = a.find('='); eq != std::string::npos) {
                name = a.substr(0, eq);
                value = a.substr(eq + 1);
                has_value = true;
            }
            if (with_value.count(name)) {
                if (!has_value) {
                    if (i + 1 >= args.size())
                        return fail(Error::message("option", "needs a value", name));
                    value = args[++i];
                }
                out.values[name] = value;
                out.repeated[name].push_back(value);
            } else if (without.count(name)) {
                out.flags.insert(name);
            } else {
                return fail(Error::message("option", "unknown option", name));
            }
            continue;
        }
        out.positional.push_back(a);
    }
    return out;
}

std::string now_rfc3339() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    std::tm tm{};
    ::gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[96];
    std::snprintf(out, sizeof out, "%s.%09ldZ", buf, ts.tv_nsec);
    return out;
}

std::string absolute(const std::string& path) {
    if (path.starts_with("/")) return path;
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return path;
    return path == "." ? std::string(cwd) : std::string(cwd) + "/" + path;
}

// Closes every descriptor above 2 but `keep` (-1 entries ignored), for real (not at exec).
void close_all_but(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
        if (fd < static_cast<int>(from)) continue;
        if (fd > static_cast<int>(from)) (void)close_range(from, static_cast<unsigned>(fd) - 1);
        from = static_cast<unsigned>(fd) + 1;
    }
    (void)close_range(from, ~0U);
}

// The processes that hold `dir`'s exec.fifo open: the first process of a container whose create
// was killed before it wrote state.json (it waits on the FIFO for ever otherwise). Each fd is
// known by its fdinfo's mount id and inode (Linux 5.14): a stat through /proc/PID/fd would call
// into the file's filesystem, a FUSE file a container serves could hold it for ever.
void kill_fifo_holders(int dir) {
    struct statx fifo {};
    if (::statx(dir, "exec.fifo", AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO | STATX_MNT_ID,
                &fifo) < 0 ||
        !S_ISFIFO(fifo.stx_mode) || !(fifo.stx_mask & STATX_MNT_ID))
        return;
    const std::string want = "mnt_id:\t" + std::to_string(fifo.stx_mnt_id) + "\nino:\t" +
                             std::to_string(fifo.stx_ino) + "\n";
    auto holds = [&](const char* pid) {
        std::string fds = std::string("/proc/") + pid + "/fdinfo";
        DIR* d = ::opendir(fds.c_str());
        bool found = false;
        while (d && !found) {
            struct dirent* f = ::readdir(d);
            if (!f) break;
            if (f->d_name[0] == '.') continue;
            Fd info(::open((fds + "/" + f->d_name).c_str(), O_RDONLY | O_CLOEXEC));
            char text[512];
            ssize_t n = info.valid() ? ::read(info.get(), text, sizeof text - 1) : -1;
            found = n > 0 && std::string_view(text, static_cast<std::size_t>(n)).find(want) !=
                                 std::string_view::npos;
        }
        if (d) ::closedir(d);
        return found;
    };
    std::set<pid_t> holders;
    processes_where(holds, holders);
    for (pid_t pid : holders)
        ::kill(pid, SIGKILL);
}

// The engine's --console-socket, where a terminal's master goes.
// A stream socket connected to the engine's unix socket at `path` (`what` names it in errors:
// --console-socket, linux.seccomp.listenerPath).
Result<Fd> connect_unix(const std::string& path, const char* what) {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail_errno("socket", what);
    Fd fd(s);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return fail(Error::message(what, "path too long", path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail_errno("connect", path);
    return fd;
}

// The seccomp agent (linux.seccomp.listenerPath) gets the filter's listener of process `pid`
// with runtime-spec's container process state, in one message (SCM_RIGHTS).
Result<void> send_to_agent(const Config& c, const State& s, pid_t pid, const Fd& listener,
                           const char* status) {
    BUTTER_ASSIGN_OR_RETURN(Fd sock, connect_unix(c.seccomp_agent, "linux.seccomp.listenerPath"));
    json state = spec_state(s);
    state["status"] = status;
    json msg{{"ociVersion", "1.1.0"},
             {"fds", {"seccompFd"}},
             {"pid", pid},
             {"metadata", c.seccomp_agent_metadata},
             {"state", state}};
    std::string text = msg.dump();
    int fds[1] = {listener.get()};
    return send_fds(sock, fds, std::span<const char>(text.data(), text.size()));
}

// A line saying that the kernel's OOM killer killed in the container's memory cgroup (v2's
// memory.events, v1's memory.oom_control), with the limit; empty if it did not.
std::string oom_message(const Config& c, const State& s) {
    for (const auto& dir : s.cgroups)
        for (const char* file : {"/memory.events", "/memory.oom_control"}) {
            auto text = read_file_at(AT_FDCWD, (dir + file).c_str());
            std::size_t at = text ? text->find("oom_kill ") : std::string::npos;
            if (at != std::string::npos && std::atoll(text->c_str() + at + 9) > 0)
                return "killed by the kernel's OOM killer at the memory limit (" +
                       std::to_string(c.memory_limit.value_or(0)) + " bytes)";
        }
    return {};
}

// One message from a container process's control socket: a filter's listener is handed to the
// agent. Whether it was `want` (false also at EOF: `*open` turns false).
Result<bool> control_message(int control, const Config& c, const State& s, pid_t pid,
                             const char* status, ControlMessage::Type want, bool* open) {
    auto received = recv_fds(control, 1, sizeof(ControlMessage));
    // (ECONNRESET: the process died with a message unread, an OOM kill in its set-up: its
    // death is told by its status and oom_message)
    if (!received && received.error().errno_value() != ECONNRESET)
        return fail(std::move(received).error());
    Received got = received ? std::move(*received) : Received{};
    if (got.data.empty() && got.fds.empty()) {
        if (open) *open = false;
        return false;
    }
    ControlMessage m{};
    if (got.data.size() < sizeof m) return false;
    std::memcpy(&m, got.data.data(), sizeof m);
    if (m.type == ControlMessage::Listener && !got.fds.empty()) {
        BUTTER_TRY(send_to_agent(c, s, pid, got.fds[0], status));
        // (the process waits for this before it goes on: plan.seccomp_listener_ack)
        char ack = 1;
        if (::send(control, &ack, 1, MSG_NOSIGNAL) != 1)
            return fail_errno("send", "control socket");
    }
    return m.type == want;
}

// CVE-2019-5736 (runc's): a container that makes one of its processes execute /proc/self/exe
// (a "#!/proc/self/exe" script run by exec, or as its first process, before which
// /proc/self/exe is the runtime's binary) has a process running the runtime's binary, opens
// that through /proc/PID/exe, and once nothing executes it any more, writes it: the next run of
// the runtime as root is the container's. So before create, run and exec start anything for a
// container, the runtime executes itself again from a read-only bind mount of its binary that is
// never attached anywhere (as runc 1.2 does from an overlay): /proc/PID/exe then names that
// mount, and opening it for writing is EROFS. From a sealed memfd copy instead (its own inode)
// where a container could reach the binary's inode another way: CAP_DAC_READ_SEARCH without a
// user namespace (open_by_handle_at through its own mount of the binary's file system), or no
// mount can be made (no CAP_SYS_ADMIN here) and this process's user (the container's root
// then) may write the binary or owns it. Returns only if the binary is safe already, or with an
// error. Called before anything of the container exists, the command then runs again from its
// start.
Result<void> protect_own_binary(const Config& c) {
    bool by_handle = c.plan.oci_caps && c.plan.oci_caps->bounding.has(CAP_DAC_READ_SEARCH) &&
                     !c.plan.namespaces.has(Namespace::User) && !c.joins(Namespace::User);
    Fd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!self.valid()) return fail_errno("open", "/proc/self/exe");
    int seals = ::fcntl(self.get(), F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) return {};  // (the memfd copy below)
    struct statvfs fs {};
    if (!by_handle && ::statvfs("/proc/self/exe", &fs) == 0 && (fs.f_flag & ST_RDONLY)) return {};
    // The command line as it was, for the same command again.
    BUTTER_ASSIGN_OR_RETURN(std::string cmdline, read_file_at(AT_FDCWD, "/proc/self/cmdline"));
    std::vector<char*> argv;
    for (std::size_t at = 0; at < cmdline.size();) {
        argv.push_back(cmdline.data() + at);
        std::size_t end = cmdline.find('\0', at);
        if (end == std::string::npos) break;
        at = end + 1;
    }
    argv.push_back(nullptr);
    auto tree = by_handle ? Result<Fd>(fail(Error("open_tree", EPERM)))
                          : open_tree(AT_FDCWD, "/proc/self/exe", OpenTreeFlag::Clone);
    if (tree) {
        MountSetattr ro;
        ro.set = MountAttr::ReadOnly;
        BUTTER_TRY(mount_setattr(*tree, "", false, ro));
        ::execveat(tree->get(), "", argv.data(), environ, AT_EMPTY_PATH);
        return fail_errno("execveat", "the runtime's binary, read-only");
    }
    if (tree.error().errno_value() != EPERM) return fail(std::move(tree).error());
    // (its owner may make it writable: chmod needs nothing more, the container's root then)
    struct stat st {};
    if (!by_handle && ::faccessat(AT_FDCWD, "/proc/self/exe", W_OK, AT_EACCESS) != 0 &&
        (::fstat(self.get(), &st) < 0 || st.st_uid != ::geteuid()))
        return {};
    if (by_handle)
        warn(
            "process.capabilities: CAP_DAC_READ_SEARCH without a user namespace lets the "
            "container open any file of a file system it has a mount of by handle "
            "(open_by_handle_at), the host's included");
    int mfd = ::memfd_create("butter-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return fail_errno("memfd_create", "a sealed copy of the runtime's binary");
    Fd copy(mfd);
    for (;;) {
        ssize_t n = ::sendfile(copy.get(), self.get(), nullptr, 1 << 20);
        if (n < 0) return fail_errno("sendfile", "a sealed copy of the runtime's binary");
        if (n == 0) break;
    }
    if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) <
        0)
        return fail_errno("fcntl(F_ADD_SEALS)", "the runtime's binary");
    ::execveat(copy.get(), "", argv.data(), environ, AT_EMPTY_PATH);
    return fail_errno("execveat", "a sealed copy of the runtime's binary");
}

// What create and run share: the container made and waiting (start_gate) or running.
struct Made {
    std::optional<Sandbox> sandbox;
    State state;
    Fd dir;
    Config config;  // (run renders the first process's failure with its plan)
};

Result<void> remove_container_dir(const std::string& id) {
    BUTTER_ASSIGN_OR_RETURN(Fd root, open_root(false));
    int dfd = ::openat(root.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return errno == ENOENT ? Result<void>{} : fail_errno("openat", id);
    Fd dir(dfd);
    for (const char* name :
         {"state.json", "exec.fifo", "config.json", ".state.json.tmp", ".config.json.tmp"})
        ::unlinkat(dfd, name, 0);
    if (::unlinkat(root.get(), id.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
        return fail_errno("rmdir", g.root + "/" + id);
    return {};
}

Result<Made> make_container(const std::string& id, const std::string& bundle_arg,
                            const std::string& console_socket, bool start_gate) {
    if (!valid_id(id)) return fail(Error::message("container", "not a valid container id", id));
    std::string bundle = absolute(bundle_arg);
    BUTTER_ASSIGN_OR_RETURN(Config c, load_config(bundle));
    BUTTER_TRY(protect_own_binary(c));  // (may execute this command again from its start)
    for (const auto& w : c.warnings)
        warn(w);
    if (c.terminal && console_socket.empty())
        return fail(Error::message("process.terminal", "needs --console-socket"));
    BUTTER_ASSIGN_OR_RETURN(Fd root, open_root(true));
    if (::mkdirat(root.get(), id.c_str(), 0700) < 0) {
        if (errno == EEXIST) return fail(Error::message("container", "exists already", id));
        return fail_errno("mkdirat", g.root + "/" + id);
    }
    Made m;
    bool ok = false;
    Cgroups cgroups;
    struct Cleanup {
        const std::string& id;
        bool& ok;
        Cgroups& cgroups;
        std::optional<Sandbox>& sb;
        ~Cleanup() {
            if (ok) return;
            if (sb && sb->pidfd.valid()) {
                (void)pidfd_send_signal(sb->pidfd, SIGKILL);
                (void)waitid_pidfd(sb->pidfd);
            }
            remove_cgroups(cgroups.dirs, cgroups.parents);
            (void)remove_container_dir(id);
        }
    } cleanup{id, ok, cgroups, m.sandbox};
    int dfd = ::openat(root.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return fail_errno("openat", g.root + "/" + id);
    m.dir = Fd(dfd);
    root.reset();  // (no directory of the host's stays open across the clone: below)
    BUTTER_TRY(write_file_at(m.dir.get(), "config.json", c.text));

    SpawnExtras extras;
    extras.mode = SpawnMode::Fork;
    extras.detached = start_gate;
    Fd fifo, console;
    std::vector<Fd> joined;
    if (start_gate) {
        if (::mkfifoat(dfd, "exec.fifo", 0600) < 0) return fail_errno("mkfifoat", "exec.fifo");
        // Read and write: the open does not wait for a writer, and the container's read waits
        // for start's byte (its own write end keeps EOF away).
        int ff = ::openat(dfd, "exec.fifo", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (ff < 0) return fail_errno("openat", "exec.fifo");
        fifo = Fd(ff);
        extras.start_fd = fifo.get();
    }
    if (!console_socket.empty()) {
        BUTTER_ASSIGN_OR_RETURN(console, connect_unix(console_socket, "--console-socket"));
        extras.console_fd = console.get();
    }
    for (const auto& [kind, path] : c.join) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return fail_errno("open", path);
        joined.emplace_back(fd);
        if (kind == Namespace::Pid)  // (entered for the clone: the child starts in it)
            extras.pid_ns_fd = fd;
        else if (kind == Namespace::User)  // (entered by an intermediate: spawn.hpp)
            extras.user_ns_fd = fd;
        else if (kind == Namespace::Time)
            extras.time_ns_fd = fd;
        else
            extras.join_ns.emplace_back(fd, static_cast<int>(Namespaces(kind).raw()));
    }
    Fd hook_state;  // (for the hooks run in the container: filled in before_go)
    if (!c.plan.create_container_hooks.empty() || !c.plan.start_container_hooks.empty()) {
        int mfd = ::memfd_create("butter-oci-state", MFD_CLOEXEC);
        if (mfd < 0) return fail_errno("memfd_create", "the state for the container's hooks");
        hook_state = Fd(mfd);
        extras.hook_state_fd = mfd;
    }
    BUTTER_ASSIGN_OR_RETURN(cgroups, make_cgroups(c, id));
    c.plan.child_subreaper = c.pid_ns_joined() && cgroups.dirs.empty();
    m.state.id = id;
    m.state.bundle = bundle;
    m.state.created = now_rfc3339();
    m.state.cgroups = cgroups.dirs;
    m.state.cgroup_parents = cgroups.parents;
    m.state.own_pid_ns = !c.pid_ns_joined();
    m.state.annotations = c.annotations;
    m.state.hooks = json{{"poststart", hooks_json(c.hooks["poststart"])},
                         {"poststop", hooks_json(c.hooks["poststop"])}};
    m.state.started = !start_gate;
    extras.late_cgroup_ns = !cgroups.dirs.empty();
    extras.before_go = [&](pid_t pid, int) -> Result<void> {
        for (const auto& dir : cgroups.dirs)
            BUTTER_TRY(write_control(dir, "cgroup.procs", std::to_string(pid)));
        if (c.oom_score_adj)
            BUTTER_TRY(write_control("/proc/" + std::to_string(pid), "oom_score_adj",
                                     std::to_string(*c.oom_score_adj)));
        State s = m.state;
        s.pid = pid;
        s.start_time = process_start_time(pid);
        s.started = false;
        std::string text = spec_state(s).dump();
        if (hook_state.valid() && ::pwrite(hook_state.get(), text.data(), text.size(), 0) !=
                                      static_cast<ssize_t>(text.size()))
            return fail_errno("pwrite", "the state for the container's hooks");
        for (const char* kind : {"prestart", "createRuntime"})
            for (const Hook& h : c.hooks[kind])
                BUTTER_TRY(run_hook(h, text));
        return {};
    };
    // The container's first process gets no descriptor of a host directory: through
    // /proc/self/fd/N (a cwd or a symlink of its image's) it would lead out of its root.
    std::string dir_path = g.root + "/" + id;
    m.dir.reset();
    sigset_t mask;
    ::sigemptyset(&mask);
    auto spawned = spawn(c.plan, mask, extras);
    if (!spawned) {
        // (killed in its new cgroup before "go": the send of it fails, EPIPE; the OOM says why)
        std::string oom = oom_message(c, m.state);
        if (!oom.empty()) return fail(Error::message("first process", oom + " during its set-up"));
        return fail(std::move(spawned).error());
    }
    m.sandbox.emplace(std::move(*spawned));
    m.state.pid = m.sandbox->pid;
    m.state.start_time = process_start_time(m.sandbox->pid);
    if (c.plan.namespaces.has(Namespace::Mount)) {  // (its own: not one it joined)
        std::string pid = std::to_string(m.sandbox->pid);
        auto mnt = mount_namespace(pid.c_str());
        std::tie(m.state.mnt_dev, m.state.mnt_ino, m.state.mnt_id) =
            std::tie(mnt[0], mnt[1], mnt[2]);
    }
    if (start_gate) {
        // Set up, or failed: Ready on the control socket, or a record (or EOF) on the pipe.
        for (;;) {
            struct pollfd p[2] = {{m.sandbox->control.get(), POLLIN, 0},
                                  {m.sandbox->failure.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return fail_errno("poll", "the container's set-up");
            }
            if (p[1].revents) {
                ChildFailure f;
                ssize_t n = ::read(m.sandbox->failure.get(), &f, sizeof f);
                if (n == static_cast<ssize_t>(sizeof f))
                    return fail(Error::message("first process", render_failure(c.plan, f)));
                std::string oom = oom_message(c, m.state);
                return fail(Error::message("first process", oom.empty()
                                                                ? "died during its set-up"
                                                                : oom + " during its set-up"));
            }
            if (p[0].revents) {
                bool open = true;
                BUTTER_ASSIGN_OR_RETURN(
                    bool ready, control_message(m.sandbox->control.get(), c, m.state, m.state.pid,
                                                "creating", ControlMessage::Ready, &open));
                if (ready) break;
                if (!open) {
                    // (the failure pipe tells why)
                    struct pollfd f {
                        m.sandbox->failure.get(), POLLIN, 0
                    };
                    (void)::poll(&f, 1, -1);
                }
            }
        }
    }
    BUTTER_ASSIGN_OR_RETURN(m.dir,
                            open_no_symlinks(AT_FDCWD, dir_path.c_str(), O_RDONLY | O_DIRECTORY));
    BUTTER_TRY(write_file_at(m.dir.get(), "state.json", state_json(m.state).dump()));
    m.config = std::move(c);
    ok = true;
    return m;
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
    std::string abs = absolute(path);
    auto slash = abs.rfind('/');
    std::string dir = slash == 0 ? "/" : abs.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail_errno("open", dir);
    Fd d(dfd);
    return write_file_at(dfd, abs.substr(slash + 1), std::to_string(pid));
}

int cmd_create(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from,
                        {"--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds"},
                        {"--no-pivot", "--no-new-keyring"});
    if (!a) return error(a.error().what());
    if (a->positional.size() != 1) return error("create: needs one container id");
    if (a->values.count("--preserve-fds") && a->values["--preserve-fds"] != "0")
        return error("create: --preserve-fds is not supported");
    std::string bundle = a->values.count("--bundle") ? a->values["--bundle"]
                         : a->values.count("-b")     ? a->values["-b"]
                                                     : ".";
    auto m = make_container(a->positional[0], bundle, a->values["--console-socket"], true);
    if (!m) return error("create: " + m.error().what());
    if (a->values.count("--pid-file"))
        if (auto r = write_pid_file(a->values["--pid-file"], m->state.pid); !r) {
            (void)pidfd_send_signal(m->sandbox->pidfd, SIGKILL);
            remove_cgroups(m->state.cgroups, m->state.cgroup_parents);
            (void)remove_container_dir(a->positional[0]);
            return error("create: " + r.error().what());
        }
    return 0;
}

int cmd_start(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {}, {});
    if (!a) return error(a.error().what());
    if (a->positional.size() != 1) return error("start: needs one container id");
    auto c = open_container(a->positional[0]);
    if (!c) return error("start: " + c.error().what());
    std::string status = status_of(c->state);
    if (status != "created") return error("start: the container is " + status + ", not created");
    int fd = ::openat(c->dir.get(), "exec.fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return error("start: " + Error::from_errno("openat", "exec.fifo").what());
    Fd fifo(fd);
    if (::write(fd, "1", 1) != 1)
        return error("start: " + Error::from_errno("write", "exec.fifo").what());
    ::unlinkat(c->dir.get(), "exec.fifo", 0);
    c->state.started = true;
    if (auto r = write_file_at(c->dir.get(), "state.json", state_json(c->state).dump()); !r)
        return error("start: " + r.error().what());
    if (auto r = run_hooks(c->state.hooks, "poststart", c->state); !r)
        warn("poststart hook: " + r.error().what());
    return 0;
}

int cmd_state(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {}, {});
    if (!a) return error(a.error().what());
    if (a->positional.size() != 1) return error("state: needs one container id");
    auto c = open_container(a->positional[0]);
    if (!c) return error("state: " + c.error().what());
    std::printf("%s\n", spec_state(c->state).dump(2).c_str());
    return 0;
}

Result<Fd> container_pidfd(const State& s) {
    BUTTER_ASSIGN_OR_RETURN(Fd fd, pidfd_open(s.pid));
    // Opened, then checked: the pidfd names the process whose start time is the recorded one.
    if (process_start_time(s.pid) != s.start_time)
        return fail(Error::message("container", "is not running", s.id));
    return fd;
}

// The container's processes that have not exited: zombies are dead already (their parent, the
// first process, may never reap them), and are no cgroup's.
std::vector<pid_t> living_processes(const State& s) {
    std::vector<pid_t> out;
    for (pid_t pid : container_processes(s))
        if (auto st = process_stat(pid); st && st->state != 'Z') out.push_back(pid);
    return out;
}

// SIGKILL to every process of the container, in passes until none is left (one that forks
// between a pass's read and its kill is met by the next). Whether none is.
bool kill_leftovers(const State& s) {
    for (int pass = 0; pass < 100; ++pass) {
        auto pids = living_processes(s);
        if (pids.empty()) return true;
        // In a joined pid namespace the first process goes last: it is the reaper (a child
        // subreaper) of what the others leave behind, which would otherwise go to another
        // container's init, out of sight.
        bool first_last =
            !s.own_pid_ns && pass < 50 &&
            std::any_of(pids.begin(), pids.end(), [&](pid_t p) { return p != s.pid; });
        for (pid_t pid : pids)
            if (auto p = pidfd_open(pid); p && !(first_last && pid == s.pid))
                (void)pidfd_send_signal(*p, SIGKILL);
        ::usleep(pass < 10 ? 1000 : 10000);
    }
    return living_processes(s).empty();
}

int cmd_kill(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {}, {"--all", "-a"});
    if (!a) return error(a.error().what());
    if (a->positional.empty() || a->positional.size() > 2)
        return error("kill: needs a container id and, optionally, a signal");
    std::string sig_text = a->positional.size() == 2 ? a->positional[1] : "SIGTERM";
    auto sig = butter::parse_signal(sig_text);
    if (!sig) return error("kill: unknown signal '" + sig_text + "'");
    auto c = open_container(a->positional[0]);
    if (!c) return error("kill: " + c.error().what());
    std::string status = status_of(c->state);
    if (status == "stopped") return error("kill: the container is not running");
    auto fd = container_pidfd(c->state);
    if (!fd) return error("kill: " + fd.error().what());
    bool all = a->flags.count("--all") || a->flags.count("-a");
    // SIGKILL to all: in passes, so that what a process forks between a read of the list and
    // its kill is met too (without a cgroup to freeze, one pass missed it).
    if (all && *sig == SIGKILL) {
        if (!kill_leftovers(c->state)) return error("kill: processes of the container are left");
        return 0;
    }
    if (all)
        for (pid_t pid : container_processes(c->state))
            if (auto p = pidfd_open(pid); p && pid != c->state.pid)
                (void)pidfd_send_signal(*p, *sig);
    if (auto r = pidfd_send_signal(*fd, *sig); !r) return error("kill: " + r.error().what());
    return 0;
}

int cmd_delete(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {}, {"--force", "-f"});
    if (!a) return error(a.error().what());
    if (a->positional.size() != 1) return error("delete: needs one container id");
    bool force = a->flags.count("--force") || a->flags.count("-f");
    auto c = open_container(a->positional[0]);
    if (!c) {
        // Gone already: with --force, nothing to do (as runc); a create that never finished
        // left its directory alone (its process died with that create, or is killed below by
        // the engine's own delete of what it started).
        if (force && (c.error().what().find("does not exist") != std::string::npos ||
                      c.error().errno_value() == ENOENT))
            return 0;
        if (force && c.error().what().find("is incomplete") != std::string::npos) {
            if (auto root = open_root(false)) {
                int dfd = ::openat(root->get(), a->positional[0].c_str(),
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd >= 0) {
                    kill_fifo_holders(dfd);
                    ::close(dfd);
                }
            }
            if (auto r = remove_container_dir(a->positional[0]); !r)
                return error("delete: " + r.error().what());
            return 0;
        }
        return error("delete: " + c.error().what());
    }
    std::string status = status_of(c->state);
    if (status == "running" && !force)
        return error("delete: the container is running (stop it, or --force)");
    if (status != "stopped") {
        // In a joined pid namespace the others first, the first process (their subreaper) last:
        // killed first, it would hand them to that namespace's init.
        if (!c->state.own_pid_ns) (void)kill_leftovers(c->state);
        if (auto fd = container_pidfd(c->state)) {
            (void)pidfd_send_signal(*fd, SIGKILL);
            // Until it is gone (its reaper, the engine or init, collects it).
            struct pollfd p {
                fd->get(), POLLIN, 0
            };
            (void)::poll(&p, 1, 10000);
        }
    }
    // What is left in its cgroups (with a pid namespace it joined, its processes outlive it).
    if (!kill_leftovers(c->state))
        return error("delete: the container's cgroups still hold processes (delete again)");
    remove_cgroups(c->state.cgroups, c->state.cgroup_parents);
    if (auto r = run_hooks(c->state.hooks, "poststop", c->state); !r)
        warn("poststop hook: " + r.error().what());
    if (auto r = remove_container_dir(a->positional[0]); !r)
        return error("delete: " + r.error().what());
    return 0;
}

int cmd_run(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from,
                        {"--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds"},
                        {"--detach", "-d", "--no-pivot", "--no-new-keyring", "--keep"});
    if (!a) return error(a.error().what());
    if (a->positional.size() != 1) return error("run: needs one container id");
    if (a->values.count("--preserve-fds") && a->values["--preserve-fds"] != "0")
        return error("run: --preserve-fds is not supported");
    const std::string& id = a->positional[0];
    bool detach = a->flags.count("--detach") || a->flags.count("-d");
    std::string bundle = a->values.count("--bundle") ? a->values["--bundle"]
                         : a->values.count("-b")     ? a->values["-b"]
                                                     : ".";
    if (detach) {
        std::vector<std::string> create = {"create", "--bundle", bundle};
        for (const char* k : {"--pid-file", "--console-socket"})
            if (a->values.count(k)) create.insert(create.end(), {k, a->values[k]});
        create.push_back(id);
        if (int rc = cmd_create(create, 1); rc != 0) return rc;
        return cmd_start({"start", id}, 1);
    }
    // In the foreground: the container is this process's child (it dies with it), its
    // signals forwarded, its status this one's.
    SignalSet forwarded{SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
    auto blocked = SignalMaskGuard::block(forwarded);
    if (!blocked) return error("run: " + blocked.error().what());
    auto m = make_container(id, bundle, a->values["--console-socket"], false);
    if (!m) return error("run: " + m.error().what());
    if (a->values.count("--pid-file"))
        if (auto r = write_pid_file(a->values["--pid-file"], m->state.pid); !r)
            warn(r.error().what());
    if (auto r = run_hooks(m->state.hooks, "poststart", m->state); !r)
        warn("poststart hook: " + r.error().what());
    auto sfd = SignalFd::create(forwarded);
    int status = 1;
    std::string failure;
    bool control_open = true;
    for (;;) {
        struct pollfd p[4] = {{m->sandbox->pidfd.get(), POLLIN, 0},
                              {sfd ? sfd->fd() : -1, POLLIN, 0},
                              {m->sandbox->failure.get(), POLLIN, 0},
                              {control_open ? m->sandbox->control.get() : -1, POLLIN, 0}};
        if (::poll(p, 4, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[3].revents) {
            auto r = control_message(m->sandbox->control.get(), m->config, m->state, m->state.pid,
                                     "running", ControlMessage::Ready, &control_open);
            if (!r) {
                // No agent to answer the filter's calls: the container cannot go on.
                (void)pidfd_send_signal(m->sandbox->pidfd, SIGKILL);
                failure = r.error().what();
                control_open = false;
            }
        }
        if (p[2].revents) {
            ChildFailure f;
            ssize_t n = ::read(m->sandbox->failure.get(), &f, sizeof f);
            if (n == static_cast<ssize_t>(sizeof f)) failure = render_failure(m->config.plan, f);
            m->sandbox->failure.reset();
        }
        if (p[1].revents && sfd) {
            if (auto info = sfd->read_event(); info && *info)
                (void)pidfd_send_signal(m->sandbox->pidfd, (*info)->signo);
        }
        if (p[0].revents) {
            auto st = waitid_pidfd(m->sandbox->pidfd);
            if (st && *st) status = (*st)->shell_status();
            break;
        }
    }
    std::string oom = status == 128 + SIGKILL ? oom_message(m->config, m->state) : "";
    // (in a pid namespace it joined, what it started outlives it: killed with it, as runc does)
    (void)kill_leftovers(m->state);
    remove_cgroups(m->state.cgroups, m->state.cgroup_parents);
    (void)run_hooks(m->state.hooks, "poststop", m->state);
    (void)remove_container_dir(id);
    if (!failure.empty()) return error("run: " + failure);
    if (!oom.empty()) warn("the container's process was " + oom);
    return status;
}

// The process an exec runs: --process FILE, else the config's process with the command line's
// changes.
Result<std::string> exec_process(Args& a, const Config& c) {
    if (a.values.count("--process")) {
        BUTTER_ASSIGN_OR_RETURN(std::string text,
                                read_file_at(AT_FDCWD, a.values["--process"].c_str()));
        return text;
    }
    json config = json::parse(c.text, nullptr, false);
    if (config.is_discarded() || !config.contains("process"))
        return fail(Error::message("exec", "the container's config.json has no process"));
    json p = config["process"];
    if (a.positional.size() < 2)
        return fail(Error::message("exec", "needs a command (or --process)"));
    p["args"] = std::vector<std::string>(a.positional.begin() + 1, a.positional.end());
    if (a.values.count("--cwd")) p["cwd"] = a.values["--cwd"];
    for (const char* k : {"--env", "-e"})
        for (const auto& e : a.repeated[k])
            p["env"].push_back(e);
    p["terminal"] = a.flags.count("--tty") || a.flags.count("-t");
    for (const char* k : {"--user", "-u"}) {
        if (!a.values.count(k)) continue;
        const std::string& u = a.values[k];
        auto colon = u.find(':');
        char* end = nullptr;
        unsigned long uid = std::strtoul(u.c_str(), &end, 10);
        if (end == u.c_str() || (*end && *end != ':'))
            return fail(Error::message(k, "must be UID[:GID]", u));
        p["user"]["uid"] = uid;
        if (colon != std::string::npos)
            p["user"]["gid"] = std::strtoul(u.c_str() + colon + 1, nullptr, 10);
    }
    return p.dump();
}

int cmd_exec(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from,
                        {"--process", "-p", "--pid-file", "--console-socket", "--cwd", "--env",
                         "-e", "--user", "-u", "--preserve-fds", "--process-label", "--apparmor"},
                        {"--detach", "-d", "--tty", "-t", "--no-new-privs"});
    if (!a) return error(a.error().what());
    if (a->values.count("-p")) a->values["--process"] = a->values["-p"];
    if (a->positional.empty()) return error("exec: needs a container id");
    if (a->values.count("--preserve-fds") && a->values["--preserve-fds"] != "0")
        return error("exec: --preserve-fds is not supported");
    bool detach = a->flags.count("--detach") || a->flags.count("-d");
    auto c = open_container(a->positional[0]);
    if (!c) return error("exec: " + c.error().what());
    if (status_of(c->state) != "running") return error("exec: the container is not running");
    auto cfg = created_config(*c);
    if (!cfg) return error("exec: " + cfg.error().what());
    auto text = exec_process(*a, *cfg);
    if (!text) return error("exec: " + text.error().what());
    if (auto r = apply_process(
            *text, a->values.count("--process") ? a->values["--process"] : "the process", *cfg);
        !r)
        return error("exec: " + r.error().what());
    if (auto r = protect_own_binary(*cfg); !r) return error("exec: " + r.error().what());
    for (const auto& w : cfg->warnings)
        if (w.find("/process") != std::string::npos || w.starts_with(a->values["--process"]))
            warn(w);
    if (a->flags.count("--no-new-privs")) cfg->plan.no_new_privs = true;
    // (the container's hooks ran at its create and start, not for each exec)
    cfg->plan.create_container_hooks.clear();
    cfg->plan.start_container_hooks.clear();
    SandboxPlan& plan = cfg->plan;
    plan.seccomp_early = !plan.no_new_privs && !plan.seccomp.empty();
    if (cfg->terminal && a->values["--console-socket"].empty())
        return error("exec: process.terminal needs --console-socket");
    auto pidfd = container_pidfd(c->state);
    if (!pidfd) return error("exec: " + pidfd.error().what());
    // What the process is in: the container's namespaces (those it made, and those it joined).
    int ns = static_cast<int>(plan.namespaces.raw());
    for (const auto& [kind, path] : cfg->join)
        ns |= static_cast<int>(Namespaces(kind).raw());

    auto failure = Pipe::create();
    auto back = Pipe::create();
    auto control = SocketPair::create(SOCK_SEQPACKET);
    auto null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (!failure || !back || !control || !null)
        return error("exec: pipes: " +
                     (failure ? back ? control ? null.error().what() : control.error().what()
                                     : back.error().what()
                              : failure.error().what()));
    Fd console;
    if (!a->values["--console-socket"].empty()) {
        auto s = connect_unix(a->values["--console-socket"], "--console-socket");
        if (!s) return error("exec: " + s.error().what());
        console = std::move(*s);
    }
    CommandArgs command(plan);
    ChildChannels ch;
    ch.error_fd = failure->write.get();
    ch.control_fd = control->second.get();
    ch.null_fd = null->get();
    ch.detached = true;
    ch.console_fd = console.valid() ? console.get() : -1;
    ch.argv = command.argv.data();
    ch.sh_argv = command.sh_argv.data();
    ch.envp = command.envp.data();
    ch.pid_slots = command.pid_slots;
    SignalSet forwarded{SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
    ::pthread_sigmask(SIG_BLOCK, nullptr, &ch.original_mask);
    std::optional<SignalMaskGuard> blocked;
    if (!detach) {
        // The process is reparented here when the intermediate exits: waited for as a child.
        if (auto r = set_child_subreaper(true); !r) return error("exec: " + r.error().what());
        auto g2 = SignalMaskGuard::block(forwarded);
        if (!g2) return error("exec: " + g2.error().what());
        blocked.emplace(std::move(*g2));
    }
    c->dir.reset();  // (no host directory crosses into the container: below)
    pid_t mid = ::fork();
    if (mid < 0) return error("exec: " + Error::from_errno("fork").what());
    if (mid == 0) {
        // The intermediate: not dumpable (the container's processes may not ptrace it or open
        // its /proc/PID/exe, fd/ or cwd: the host's binary and descriptors), only the
        // descriptors it needs, then the cgroups, the namespaces (setns through the pidfd, all
        // at once), and the process itself forked into them, which inherits all of that.
        back->read.reset();
        if (auto r = set_dumpable(false); !r) die(ch, Step::Namespaces, r.error());
        close_all_but({ch.error_fd, ch.control_fd, ch.null_fd, ch.console_fd, pidfd->get(),
                       back->write.get()});
        auto report = [&](const Error& e) { die(ch, Step::Namespaces, e); };
        for (const auto& dir : c->state.cgroups)
            if (auto r = write_control(dir, "cgroup.procs", std::to_string(::getpid())); !r)
                report(r.error());
        if (::setns(pidfd->get(), ns) < 0)
            report(Error::from_errno("setns", "the container's namespaces"));
        pid_t pid = ::fork();
        if (pid < 0) report(Error::from_errno("fork"));
        if (pid == 0) {
            back->write.reset();
            pidfd->reset();
            if (auto r = enter_cwd(plan.cwd); !r) die(ch, Step::Chdir, r.error());
            StepClock clock;
            exec_command(plan, ch, clock);
        }
        [[maybe_unused]] ssize_t n = ::write(back->write.get(), &pid, sizeof pid);
        ::_exit(0);
    }
    failure->write.reset();
    back->write.reset();
    control->second.reset();
    (void)waitid_pid(mid, 0);
    pid_t pid = 0;
    ssize_t n = ::read(back->read.get(), &pid, sizeof pid);
    // A failure record, or EOF at the exec; before it, the filter's listener for the seccomp
    // agent (the process waits until it is handed on, and is killed if it cannot be).
    ChildFailure f;
    ssize_t got = 0;
    for (bool open = plan.seccomp_listener && pid > 0;;) {
        struct pollfd p[2] = {{failure->read.get(), POLLIN, 0},
                              {open ? control->first.get() : -1, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) {
            auto r = control_message(control->first.get(), *cfg, c->state, pid, "running",
                                     ControlMessage::Ready, &open);
            if (!r) {
                if (auto pfd = pidfd_open(pid)) (void)pidfd_send_signal(*pfd, SIGKILL);
                if (!detach) (void)waitid_pid(pid, 0);
                return error("exec: " + r.error().what());
            }
            continue;
        }
        if (p[0].revents) {
            got = ::read(failure->read.get(), &f, sizeof f);
            break;
        }
    }
    if (got == static_cast<ssize_t>(sizeof f)) {
        if (pid > 0 && !detach) (void)waitid_pid(pid, 0);
        return error("exec: " + render_failure(plan, f));
    }
    if (n != static_cast<ssize_t>(sizeof pid) || pid <= 0)
        return error("exec: the process was not started");
    if (a->values.count("--pid-file"))
        if (auto r = write_pid_file(a->values["--pid-file"], pid); !r) warn(r.error().what());
    if (detach) return 0;
    auto pfd = pidfd_open(pid);
    if (!pfd) return error("exec: " + pfd.error().what());
    auto sfd = SignalFd::create(forwarded);
    for (;;) {
        struct pollfd p[2] = {{pfd->get(), POLLIN, 0}, {sfd ? sfd->fd() : -1, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents && sfd)
            if (auto info = sfd->read_event(); info && *info)
                (void)pidfd_send_signal(*pfd, (*info)->signo);
        if (p[0].revents) {
            auto st = waitid_pidfd(*pfd);
            return st && *st ? (*st)->shell_status() : 1;
        }
    }
    return 1;
}

int cmd_ps(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {"--format", "-f"}, {});
    if (!a) return error(a.error().what());
    if (a->positional.empty()) return error("ps: needs a container id");
    auto c = open_container(a->positional[0]);
    if (!c) return error("ps: " + c.error().what());
    std::string format = a->values.count("--format") ? a->values["--format"]
                         : a->values.count("-f")     ? a->values["-f"]
                                                     : "table";
    if (format != "json" && format != "table") return error("ps: --format is json or table");
    std::vector<pid_t> pids = container_processes(c->state);
    if (format == "json") {
        std::printf("%s\n", json(pids).dump().c_str());
    } else {
        std::printf("PID\n");
        for (pid_t p : pids)
            std::printf("%d\n", p);
    }
    return 0;
}

int cmd_spec(const std::vector<std::string>& args, std::size_t from) {
    auto a = parse_args(args, from, {"--bundle", "-b"}, {"--rootless"});
    if (!a) return error(a.error().what());
    std::string bundle = a->values.count("--bundle") ? a->values["--bundle"]
                         : a->values.count("-b")     ? a->values["-b"]
                                                     : ".";
    std::string path = bundle + "/config.json";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return error("spec: " + Error::from_errno("open", path).what());
    Fd f(fd);
    std::string text = default_spec(a->flags.count("--rootless") > 0);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return error("spec: " + Error::from_errno("write", path).what());
    return 0;
}

std::string usage() {
    return "usage: butter oci [--root DIR] [--log FILE] [--log-format text|json] "
           "[--systemd-cgroup] COMMAND\n"
           "  create [--bundle DIR] [--pid-file F] [--console-socket S] ID\n"
           "  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
           "  run [--bundle DIR] [--pid-file F] [--console-socket S] [--detach] ID\n"
           "  ps [--format json|table] ID\n"
           "  exec [--detach] [--tty] [--pid-file F] (--process FILE ID | ID CMD...)\n"
           "  spec [--rootless] [--bundle DIR] | features\n";
}

// Whether this process is in a user namespace other than the host's (its uid_map is not the
// whole identity range).
bool in_user_namespace() {
    auto text = read_file_at(AT_FDCWD, "/proc/self/uid_map");
    if (!text) return false;
    unsigned long inside = 1, outside = 1, count = 0;
    return std::sscanf(text->c_str(), "%lu %lu %lu", &inside, &outside, &count) != 3 ||
           inside != 0 || outside != 0 || count != 4294967295UL;
}

}  // namespace

int main(const std::vector<std::string>& args) {
    g = {};
    // A hook that exits without reading its stdin, a closed log or console: EPIPE, never a
    // SIGPIPE that kills the runtime half-way (a container made, no state written).
    ::signal(SIGPIPE, SIG_IGN);
    // Root of the host: /run. An ordinary user, or root of a user namespace whose
    // XDG_RUNTIME_DIR is its own (rootless podman runs its runtime so, as runc decides):
    // $XDG_RUNTIME_DIR.
    const char* xdg = ::getenv("XDG_RUNTIME_DIR");
    bool own_xdg = false;
    if (xdg && *xdg == '/' && ::geteuid() == 0 && in_user_namespace()) {
        struct stat st {};
        own_xdg = ::stat(xdg, &st) == 0 && st.st_uid == 0;
    }
    if (::geteuid() == 0 && !own_xdg)
        g.root = "/run/butter-oci";
    else
        g.root = std::string(xdg && *xdg == '/' ? xdg : "/tmp") + "/butter-oci";
    std::size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* name, std::string& out) -> bool {
            std::string n = name;
            if (a == n && i + 1 < args.size()) {
                out = args[++i];
                return true;
            }
            if (a.starts_with(n + "=")) {
                out = a.substr(n.size() + 1);
                return true;
            }
            return false;
        };
        std::string format;
        // (--cgroup-manager: crun's, which podman passes to runtimes it knows run without
        // cgroups; butter makes the cgroups of the config's limits alone, as cgroupfs.)
        if (value("--root", g.root) || value("--log", g.log) || value("--criu", format) ||
            value("--cgroup-manager", format))
            continue;
        if (value("--log-format", format)) {
            if (format != "json" && format != "text")
                return error("--log-format: '" + format + "' is not text or json");
            g.log_json = format == "json";
            continue;
        }
        if (a == "--systemd-cgroup") {
            g.systemd_cgroup = true;
            continue;
        }
        if (a == "--debug" || a == "--rootless" || a.starts_with("--rootless=")) continue;
        break;
    }
    if (i >= args.size()) {
        std::fputs(usage().c_str(), stderr);
        return 1;
    }
    if (!g.root.starts_with("/")) return error("--root: must be an absolute path");
    const std::string& cmd = args[i];
    if (cmd == "create") return cmd_create(args, i + 1);
    if (cmd == "start") return cmd_start(args, i + 1);
    if (cmd == "state") return cmd_state(args, i + 1);
    if (cmd == "kill") return cmd_kill(args, i + 1);
    if (cmd == "delete") return cmd_delete(args, i + 1);
    if (cmd == "run") return cmd_run(args, i + 1);
    if (cmd == "ps") return cmd_ps(args, i + 1);
    if (cmd == "spec") return cmd_spec(args, i + 1);
    if (cmd == "features") {
        std::fputs(features_json().c_str(), stdout);
        return 0;
    }
    if (cmd == "--version" || cmd == "-v" || cmd == "version") {
        std::printf("butter-oci\nspec: 1.1.0\n");
        return 0;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::fputs(usage().c_str(), stdout);
        return 0;
    }
    if (cmd == "exec") return cmd_exec(args, i + 1);
    if (cmd == "pause" || cmd == "resume" || cmd == "update" || cmd == "checkpoint" ||
        cmd == "restore" || cmd == "events")
        return error(cmd + ": not supported by butter yet");
    return error("unknown command '" + cmd + "' (butter oci --help)");
}

}  // namespace butter::launcher::oci
