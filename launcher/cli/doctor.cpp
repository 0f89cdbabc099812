// butter doctor: what works on this system and what blocks a sandbox, layer by layer, each
// problem with its fix; then which profiles actually run here (each is tried with `true`).
#include "cli/doctor.hpp"
#include "cli/systemd_scope.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>

#include <butter/cgroup.hpp>
#include <butter/fanotify.hpp>
#include <butter/fd.hpp>
#include <butter/landlock.hpp>
#include <butter/mount.hpp>
#include <butter/namespace.hpp>
#include <butter/process.hpp>
#include <butter/seccomp.hpp>
#include <butter/signalfd.hpp>

#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "spawn/spawn.hpp"
#include "supervise/private_dir.hpp"
#include "supervise/supervisor.hpp"

#ifndef BUTTER_APPARMOR_PROFILE
#define BUTTER_APPARMOR_PROFILE "/usr/share/butter/apparmor/butter"
#endif

namespace butter::launcher {

namespace {

enum class Verdict { Ok, Blocked, Info };

struct Line {
    std::string layer;
    Verdict verdict;
    std::string detail;
    std::string fix;
};

std::string read_sysctl(const char* path) {
    std::string v = read_file(path).value_or("");
    v.erase(0, v.find_first_not_of(" \t\n"));
    v.erase(std::min(v.find_first_of(" \t\n"), v.size()));
    return v;
}

// Runs `probe` in a forked child (as nobody when `as_nobody`); the child's exit code is 0 or
// the errno of the failing step.
int in_child(bool as_nobody, const std::function<int()>& probe) {
    CloneArgs args;
    auto c = clone3(args);
    if (!c) return c.error().errno_value();
    if (c->is_child()) {
        if (as_nobody && (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
                          ::setresuid(65534, 65534, 65534) < 0))
            ::_exit(EPERM);
        (void)set_dumpable(true);  // a credential change cleared it; /proc/self must stay ours
        ::_exit(probe());
    }
    auto st = waitid_pidfd(c->pidfd);
    if (!st || !*st) return EIO;
    return (*st)->exited() ? (*st)->code : EINTR;
}

// A user namespace where we are root, as the sandbox's child would make it.
int enter_userns() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (auto r = unshare(Namespace::User); !r) return r.error().errno_value();
    IdMapping u{0, uid, 1}, g{0, gid, 1};
    if (auto r = write_setgroups(0, false); !r) return r.error().errno_value();
    if (auto r = write_uid_map(0, std::span(&u, 1)); !r) return r.error().errno_value();
    if (auto r = write_gid_map(0, std::span(&g, 1)); !r) return r.error().errno_value();
    return 0;
}

std::string err(int e) {
    return errno_name(e) + " (" + std::strerror(e) + ")";
}

void check_userns(std::vector<Line>& out) {
    std::string max = read_sysctl("/proc/sys/user/max_user_namespaces");
    std::string clone_knob = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
    std::string apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    std::string detail = "max_user_namespaces=" + (max.empty() ? "?" : max);
    int self = in_child(false, enter_userns);
    if (self != 0) {
        // ENOSPC: a limit (this user namespace's, or the host's sysctl); EPERM: a policy.
        std::string fix = "allow user namespaces: sysctl user.max_user_namespaces=10000";
        if (self == ENOSPC && max == "0")
            fix =
                "this user namespace allows none below it: inside a butter sandbox, set "
                "namespaces.nested_user = true; on the host, sysctl "
                "user.max_user_namespaces=10000";
        if (self == EPERM || (max != "0" && !max.empty()))
            fix =
                "a policy around this process blocks unshare(CLONE_NEWUSER) "
                "(a seccomp filter, a container runtime, an LSM): run butter outside it";
        // A filter of this process's own (Docker's default profile denies user namespaces).
        if (self == EPERM &&
            read_file("/proc/self/status").value_or("").find("\nSeccomp:\t2") != std::string::npos)
            fix =
                "a seccomp filter around this process refuses unshare(CLONE_NEWUSER) (a "
                "container runtime's default profile): allow it there (e.g. docker run "
                "--security-opt seccomp=unconfined), or run butter outside it";
        if (clone_knob == "0")
            fix = "sysctl kernel.unprivileged_userns_clone=1 (Debian's switch is off)";
        if (apparmor == "1")
            fix = std::string(
                      "AppArmor restricts them: install the profile that grants butter userns: "
                      "sudo install -m 644 ") +
                  BUTTER_APPARMOR_PROFILE +
                  " /etc/apparmor.d/butter && sudo apparmor_parser -r /etc/apparmor.d/butter "
                  "(or sysctl kernel.apparmor_restrict_unprivileged_userns=0); until then "
                  "profiles run in the landlock tier";
        out.push_back({"user namespaces", Verdict::Blocked, detail + "; " + err(self), fix});
        return;
    }
    if (::geteuid() == 0) {
        int nobody = in_child(true, enter_userns);
        detail += nobody == 0 ? "; unprivileged users: ok" : "; unprivileged users: " + err(nobody);
        if (nobody != 0) {
            out.push_back({"user namespaces", Verdict::Info, detail,
                           "only root can sandbox: see kernel.unprivileged_userns_clone, "
                           "kernel.apparmor_restrict_unprivileged_userns"});
            return;
        }
    }
    out.push_back({"user namespaces", Verdict::Ok, detail, ""});
}

void check_namespaces(std::vector<Line>& out) {
    for (const FlagName<Namespace>& ns : flag_names(Namespace{})) {
        if (ns.value == Namespace::User) continue;
        int r = in_child(false, [&] {
            if (::geteuid() != 0)
                if (int e = enter_userns(); e != 0) return e;
            auto u = unshare(ns.value);
            return u ? 0 : u.error().errno_value();
        });
        std::string name = std::string(proc_name(ns.value)) + " namespace";
        if (r == 0) {
            out.push_back({name, Verdict::Ok, "", ""});
        } else {
            std::string fix =
                ns.value == Namespace::Time
                    ? "only profiles with namespaces.time = true need it (Linux 5.6+)"
                    : "the kernel lacks it (CONFIG_*_NS) or a security policy blocks it";
            if (ns.value == Namespace::Net)
                fix = "use network.mode = \"host\" (namespaces.net = false)";
            out.push_back({name, ns.value == Namespace::Time ? Verdict::Info : Verdict::Blocked,
                           err(r), fix});
        }
    }
}

void check_seccomp(std::vector<Line>& out) {
    int r = in_child(false, [] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        if (!f || !f->add_rule(SeccompAction::error(EPERM), "acct")) return EINVAL;
        auto l = f->load();
        return l ? 0 : l.error().errno_value();
    });
    if (r != 0) {
        out.push_back({"seccomp", Verdict::Blocked, "loading a filter: " + err(r),
                       "a kernel with CONFIG_SECCOMP_FILTER"});
        return;
    }
    auto notify = seccomp_action_available(SeccompAction::notify());
    if (!notify || !*notify) {
        out.push_back(
            {"seccomp", Verdict::Info, "filters load; user notification missing",
             "seccomp.report reads the kernel log instead (Linux 5.0+ has notification)"});
        return;
    }
    // One listener per chain of filters: inside a sandbox whose manager holds one, EBUSY.
    int l = in_child(false, [] {
        auto f = SeccompFilter::create(SeccompAction::allow());
        if (!f || !f->add_rule(SeccompAction::notify(), "acct")) return EINVAL;
        auto prog = f->export_bpf();
        if (!prog) return prog.error().errno_value();
        (void)set_no_new_privs();
        BpfLoadOptions o;
        o.new_listener = true;
        auto fd = load_bpf(*prog, o);  // the kernel's own errno (libseccomp's would be ECANCELED)
        return fd ? 0 : fd.error().errno_value();
    });
    if (l == 0)
        out.push_back({"seccomp", Verdict::Ok, "filters load; user notification available", ""});
    else
        out.push_back({"seccomp", Verdict::Info,
                       "filters load; user notification refused: " + err(l) +
                           (l == EBUSY ? " (an outer filter holds the listener)" : ""),
                       "seccomp.report reads the kernel log instead (root, or "
                       "kernel.dmesg_restrict=0)"});
}

void check_landlock(std::vector<Line>& out) {
    auto v = landlock_abi_version();
    if (!v) {
        out.push_back({"landlock", Verdict::Info, v.error().what(),
                       "lsm=landlock,... on the kernel command line"});
        return;
    }
    bool scopes = landlock_scopes(*v).has(LandlockScope::AbstractUnixSocket);
    out.push_back({"landlock", Verdict::Info,
                   "ABI " + std::to_string(*v) +
                       (scopes ? "; host-network sandboxes cannot reach the host's abstract "
                                 "unix sockets"
                               : "; host-network sandboxes CAN reach the host's abstract unix "
                                 "sockets (X11, D-Bus): scoping needs ABI 6"),
                   scopes ? "" : "Linux 6.12+ for network.mode = \"host\""});
}

void check_fanotify(std::vector<Line>& out) {
    auto fid = Fanotify::create(kFanotifyReportDfidName);
    auto perm = Fanotify::create(FanotifyInit::ClassContent);
    std::string d = std::string("notification groups: ") +
                    (fid ? "ok" : err(fid.error().errno_value())) +
                    "; permission events: " + (perm ? "ok" : err(perm.error().errno_value()));
    out.push_back(
        {"fanotify", fid ? Verdict::Ok : Verdict::Info, d,
         fid ? "" : "Linux 5.13+ for unprivileged FID groups; butter falls back to inotify"});
}

// A systemd manager butter could ask for a scope (cli/systemd_scope.hpp).
bool systemd_manager_reachable() {
    return ::access(systemd_manager_socket().c_str(), W_OK) == 0;
}

void check_cgroups(std::vector<Line>& out) {
    for (const char* c : {"memory", "pids", "cpu"}) {
        std::string layer = std::string("cgroup ") + c;
        auto h = find_cgroup_hierarchy(c);
        if (!h) {
            out.push_back(
                {layer, Verdict::Blocked, "no hierarchy has the controller",
                 "mount the controller (cgroup v2 with it enabled in cgroup.subtree_control)"});
            continue;
        }
        std::string where = (h->version == CgroupVersion::V2 ? "v2 " : "v1 ") + h->own_path();
        auto cg = Cgroup::create(*h, "butter-doctor-" + std::to_string(::getpid()));
        // cgroup v2: writable is not enough; the controller must be delegated here and no
        // other process may share the cgroup (butter moves itself into a leaf of it).
        std::string v2_problem;
        if (cg && h->version == CgroupVersion::V2 && h->own != "/") {
            auto controllers = read_file((h->own_path() + "/cgroup.controllers").c_str());
            auto procs = read_file((h->own_path() + "/cgroup.procs").c_str());
            std::string self = std::to_string(::getpid());
            if (!controllers ||
                (" " + *controllers + " ").find(std::string(" ") + c) == std::string::npos)
                v2_problem = "not delegated (the controller is not in cgroup.controllers)";
            else if (procs && procs->find_first_not_of(" \n") != std::string::npos &&
                     *procs != self + "\n")
                v2_problem = "other processes share it";
        }
        if (cg && v2_problem.empty()) {
            (void)cg->destroy();
            out.push_back({layer, Verdict::Ok, where + ": writable", ""});
        } else if (h->version == CgroupVersion::V2 && systemd_manager_reachable()) {
            if (cg) (void)cg->destroy();
            out.push_back({layer, Verdict::Ok,
                           where + ": " + (cg ? v2_problem : err(cg.error().errno_value())) +
                               "; butter asks systemd for a delegated scope",
                           ""});
        } else if (cg) {
            (void)cg->destroy();
            out.push_back({layer, Verdict::Blocked, where + ": " + v2_problem,
                           "run butter alone in a delegated cgroup (systemd-run --scope -p "
                           "Delegate=yes ..., or a unit with Delegate=yes); or set "
                           "limits.optional = true"});
        } else {
            out.push_back({layer, Verdict::Blocked, where + ": " + err(cg.error().errno_value()),
                           "limits.* need root, or a delegated cgroup v2 (systemd-run --user -p "
                           "Delegate=yes --scope ...); or set limits.optional = true"});
        }
    }
}

void check_idmap(std::vector<Line>& out) {
    if (::geteuid() != 0) {
        out.push_back({"idmapped mounts", Verdict::Info, "not needed without root", ""});
        return;
    }
    int r = in_child(false, [] {
        IdMapping m{0, 100000, 1};
        auto userns = make_user_namespace(std::span(&m, 1), std::span(&m, 1));
        if (!userns) return userns.error().errno_value();
        char cwd[4096];
        if (!::getcwd(cwd, sizeof cwd)) return errno;
        auto tree = open_tree(AT_FDCWD, cwd, OpenTreeFlag::Clone);
        if (!tree) return tree.error().errno_value();
        MountSetattr a;
        a.set = MountAttr::IdMap;
        a.userns_fd = userns->get();
        auto s = mount_setattr(*tree, "", false, a);
        return s ? 0 : s.error().errno_value();
    });
    if (r == 0)
        out.push_back({"idmapped mounts", Verdict::Ok, "on this directory's filesystem", ""});
    else
        out.push_back(
            {"idmapped mounts", Verdict::Blocked, "this directory's filesystem: " + err(r),
             "writable binds there fail as root: bind them read_only, or use a filesystem "
             "with idmap support (ext4, xfs, btrfs, tmpfs on 6.3+)"});
}

// 250: the tmpfs upper takes no user.* attributes (before Linux 6.6).
constexpr int kNoUserXattr = 250;

int probe_overlay() {
    return in_child(false, [] {
        if (int e = enter_userns()) return e;
        if (auto r = unshare(Namespace::Mount); !r) return r.error().errno_value();
        if (auto r = set_propagation("/", Propagation::Slave, true); !r)
            return r.error().errno_value();
        auto fs = FsContext::open("tmpfs");
        if (!fs) return fs.error().errno_value();
        if (auto r = fs->create(); !r) return r.error().errno_value();
        auto tmp = fs->mount();
        if (!tmp) return tmp.error().errno_value();
        struct stat st {};
        const char* at = ::stat("/tmp", &st) == 0 && S_ISDIR(st.st_mode) ? "/tmp" : "/mnt";
        if (auto r = move_mount(*tmp, "", AT_FDCWD, at); !r) return r.error().errno_value();
        int fds[3];
        const char* names[3] = {"l", "u", "w"};
        for (int i = 0; i < 3; ++i) {
            if (::mkdirat(tmp->get(), names[i], 0755) < 0) return errno;
            fds[i] = ::openat(tmp->get(), names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fds[i] < 0) return errno;
        }
        if (::fsetxattr(fds[1], "user.butter", "", 0, 0) < 0)
            return errno == EOPNOTSUPP ? kNoUserXattr : errno;
        auto ov = FsContext::open("overlay");
        if (!ov) return ov.error().errno_value();
        auto fd_path = [](int fd) { return "/proc/self/fd/" + std::to_string(fd); };
        for (auto [key, fd] :
             {std::pair{"lowerdir", fds[0]}, {"upperdir", fds[1]}, {"workdir", fds[2]}})
            if (auto r = ov->set(key, fd_path(fd).c_str()); !r) return r.error().errno_value();
        if (auto r = ov->set("userxattr"); !r) return r.error().errno_value();
        if (auto r = ov->create(); !r) return r.error().errno_value();
        auto m = ov->mount();
        return m ? 0 : m.error().errno_value();
    });
}

void check_overlay(std::vector<Line>& out) {
    std::string problem = overlay_problem();
    if (problem.empty())
        out.push_back(
            {"overlay mounts", Verdict::Ok, "in a user namespace, with a tmpfs upper", ""});
    else
        out.push_back({"overlay mounts", Verdict::Blocked, problem,
                       "overlay mounts with upper = a host directory (on ext4, xfs, btrfs) may "
                       "still work; --changes and filesystem.workspace = \"overlay\" need a "
                       "tmpfs upper"});
}

const char* mark(Verdict v) {
    switch (v) {
        case Verdict::Ok:
            return "ok";
        case Verdict::Blocked:
            return "BLOCKED";
        case Verdict::Info:
            return "info";
    }
    return "?";
}

}  // namespace

std::string overlay_problem() {
    int r = probe_overlay();
    if (r == 0) return "";
    if (r == kNoUserXattr)
        return "this kernel's tmpfs has no user extended attributes (Linux 6.6+), which an "
               "overlay in a user namespace keeps its own in";
    return "an overlay in a user namespace: " + err(r);
}

int run_doctor() {
    struct utsname u {};
    ::uname(&u);
    std::printf("butter doctor: Linux %s, running as %s (uid %u)\n\n", u.release,
                ::geteuid() == 0 ? "root" : "an unprivileged user", ::geteuid());
    std::vector<Line> lines;
    check_userns(lines);
    check_namespaces(lines);
    check_seccomp(lines);
    check_landlock(lines);
    check_fanotify(lines);
    check_cgroups(lines);
    check_idmap(lines);
    check_overlay(lines);
    // Without a user namespace the checks that make one in it fail too: said so, with the
    // tier butter falls back to, rather than each layer's own causes.
    if (!lines.empty() && lines.front().verdict == Verdict::Blocked)
        for (std::size_t i = 1; i < lines.size(); ++i)
            if (lines[i].verdict == Verdict::Blocked &&
                (lines[i].layer.ends_with(" namespace") || lines[i].layer == "idmapped mounts" ||
                 lines[i].layer == "overlay mounts"))
                lines[i].fix =
                    "needs a user namespace (see \"user namespaces\"); profiles whose "
                    "isolation.minimum allows run in the landlock tier instead";
    for (const Line& l : lines) {
        std::printf("%-20s %-8s %s\n", l.layer.c_str(), mark(l.verdict), l.detail.c_str());
        if (!l.fix.empty() && l.verdict != Verdict::Ok)
            std::printf("%-29s fix: %s\n", "", l.fix.c_str());
    }

    // The real test: each profile on the search path, run with `true`.
    std::printf("\nprofiles (each run with `true`):\n");
    int runnable_default = 1;
    SignalSet sigs{SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    auto blocked = SignalMaskGuard::block(sigs);
    for (const auto& info : profile::list_profiles(profile::search_path())) {
        profile::LoadOptions lo;
        std::optional<std::string> spec;
        if (info.path != profile::kEmbeddedDefaultName) spec = info.path;
        profile::Loaded l = profile::load(spec, lo);
        std::string verdict;
        if (!l.ok()) {
            verdict = "does not load: " + l.diagnostics.front().render();
        } else {
            PlanOptions po;
            po.argv = {"true"};
            po.report = std::string();
            profile::Diagnostics d;
            auto plan = make_plan(l.profile, po, d);
            if (!plan) {
                for (const auto& x : d)
                    if (x.is_error()) verdict = "cannot run: " + x.render();
            } else {
                auto trial = [&](SandboxPlan& p) {
                    p.stdin_null = true;
                    p.file_activity = false;  // a trial run has nothing to watch
                    SupervisorOptions so;
                    so.verbosity = 0;
                    return run_cli_sandbox(p, blocked ? blocked->previous() : sigset_t{}, so);
                };
                auto o = trial(*plan);
                // As `butter run` does: the next tier down where the host refuses namespaces.
                std::string tier = "namespaces";
                std::string why;
                PrivateDir private_dir;
                bool refused = o ? o->isolation_refused : host_refused_namespaces(o.error());
                if (refused) {
                    why = "user namespaces refused";
                    auto next = next_tier(*plan, landlock_abi_version().value_or(0));
                    auto made = next ? PrivateDir::create() : Result<PrivateDir>(PrivateDir());
                    if (!next) {
                        why += std::string(", and isolation.minimum = \"") +
                               profile::to_string(plan->tier_minimum) + "\"";
                    } else if (made) {
                        private_dir = std::move(*made);
                        po.tier = next;
                        po.tier_reason = why;
                        po.private_dir = private_dir.path();
                        profile::Diagnostics lower_d;
                        auto lower = make_plan(l.profile, po, lower_d);
                        if (!lower) {
                            for (const auto& x : lower_d)
                                if (x.is_error()) why += "; the lower tier: " + x.render();
                        } else if (auto ready = private_dir.prepare(lower->uid, lower->gid);
                                   !ready) {
                            o = fail(std::move(ready).error());
                        } else {
                            tier = profile::to_string(*next);
                            o = trial(*lower);
                        }
                    }
                }
                if (!o)
                    verdict = "cannot run: " + o.error().what();
                else if (o->exit_status() != 0)
                    verdict = "cannot run: " + (o->message.empty()
                                                    ? "exit " + std::to_string(o->exit_status())
                                                    : o->message);
                else
                    verdict = "runs, " + tier + " tier";
                if (!why.empty())
                    verdict += " (" + why +
                               "; fix: see \"user namespaces\" above, to get the namespaces "
                               "tier)";
            }
        }
        if (info.name == "default" && verdict.starts_with("runs")) runnable_default = 0;
        std::printf("  %-16s %s\n", info.name.c_str(), verdict.c_str());
    }
    return runnable_default;
}

}  // namespace butter::launcher
