#include "butter/namespace.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <signal.h>
#include <sys/prctl.h>

#include "butter/process.hpp"
#include "sys.hpp"

namespace butter {

namespace {

constexpr std::array<FlagName<Namespace>, 8> kNames{{
    {Namespace::Mount, "Mount"},
    {Namespace::Uts, "Uts"},
    {Namespace::Ipc, "Ipc"},
    {Namespace::User, "User"},
    {Namespace::Pid, "Pid"},
    {Namespace::Net, "Net"},
    {Namespace::Cgroup, "Cgroup"},
    {Namespace::Time, "Time"},
}};

std::string proc_path(pid_t pid, std::string_view leaf) {
    return (pid == 0 ? std::string("/proc/self/") : "/proc/" + std::to_string(pid) + "/") +
           std::string(leaf);
}

// One write(2) of the whole text: the kernel parses a map only from a single write. The path
// is built on the stack: a forked caller writing a child's maps allocates nothing.
Result<void> write_proc(pid_t pid, const char* leaf, std::string_view text) {
    char path[64];
    if (pid == 0)
        std::snprintf(path, sizeof path, "/proc/self/%s", leaf);
    else
        std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), leaf);
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", path);
    ssize_t n = sys::retry_eintr([&] { return ::write(fd, text.data(), text.size()); });
    int saved = errno;
    ::close(fd);
    if (n < 0) return fail(Error("write", saved, path));
    if (static_cast<std::size_t>(n) != text.size()) return fail(Error("write", EIO, path));
    return {};
}

Result<std::vector<IdMapping>> read_map(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "re");
    if (!f) return fail_errno("fopen", path);
    std::vector<IdMapping> out;
    IdMapping m;
    while (std::fscanf(f, "%u %u %u", &m.inside, &m.outside, &m.count) == 3)
        out.push_back(m);
    std::fclose(f);
    return out;
}

}  // namespace

std::span<const FlagName<Namespace>> flag_names(Namespace) {
    return kNames;
}

std::string_view proc_name(Namespace ns) {
    switch (ns) {
        case Namespace::Mount:
            return "mnt";
        case Namespace::Uts:
            return "uts";
        case Namespace::Ipc:
            return "ipc";
        case Namespace::User:
            return "user";
        case Namespace::Pid:
            return "pid";
        case Namespace::Net:
            return "net";
        case Namespace::Cgroup:
            return "cgroup";
        case Namespace::Time:
            return "time";
    }
    return "";
}

Result<void> unshare(Namespaces namespaces) {
    if (::unshare(static_cast<int>(namespaces.raw())) < 0)
        return fail_errno("unshare", to_string(namespaces));
    return {};
}

Result<void> setns(BorrowedFd fd, Namespaces kinds) {
    if (::setns(fd.get(), static_cast<int>(kinds.raw())) < 0)
        return fail_errno("setns", to_string(kinds));
    return {};
}

Result<Fd> open_namespace(pid_t pid, Namespace kind) {
    std::string path = proc_path(pid, "ns/" + std::string(proc_name(kind)));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", path);
    return Fd(fd);
}

Result<std::uint64_t> namespace_id(pid_t pid, Namespace kind) {
    std::string path = proc_path(pid, "ns/" + std::string(proc_name(kind)));
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return fail_errno("stat", path);
    return static_cast<std::uint64_t>(st.st_ino);
}

std::string format_id_map(std::span<const IdMapping> map) {
    std::string s;
    for (const IdMapping& m : map)
        s += std::to_string(m.inside) + " " + std::to_string(m.outside) + " " +
             std::to_string(m.count) + "\n";
    return s;
}

Result<void> write_uid_map(pid_t pid, std::span<const IdMapping> map) {
    return write_proc(pid, "uid_map", format_id_map(map));
}

Result<void> write_uid_map(pid_t pid, std::string_view map_text) {
    return write_proc(pid, "uid_map", map_text);
}

Result<void> write_gid_map(pid_t pid, std::string_view map_text) {
    return write_proc(pid, "gid_map", map_text);
}

Result<void> write_gid_map(pid_t pid, std::span<const IdMapping> map) {
    return write_proc(pid, "gid_map", format_id_map(map));
}

Result<void> write_setgroups(pid_t pid, bool allow) {
    return write_proc(pid, "setgroups", allow ? "allow" : "deny");
}

namespace {

// The owner of a throwaway user namespace. It shares the caller's memory (CLONE_VM), so it
// runs on its own small stack and makes only raw system calls that succeed (nothing writes
// errno, the heap or anything else of the caller's) until the caller kills it.
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize("address")))
#endif
int hold_namespace(void*) {
    unsigned long all = ~0UL;  // the kernel's sigset: no libc (or sanitizer) call in between
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, sizeof all);
    ::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (;;)
        ::syscall(SYS_pause);
}

}  // namespace

Error namespace_refused(Error e) {
    if (e.errno_value() != EPERM) return e;
    // The kernel refuses new user namespaces in a chroot (a root that is not its mount
    // namespace's). Seen for sure when / is not a mount point at all (no mountinfo line for it).
    bool root_is_a_mount = false;
    if (auto info = read_file("/proc/self/mountinfo")) {
        std::size_t at = 0;
        while (at < info->size() && !root_is_a_mount) {
            std::size_t end = info->find('\n', at);
            if (end == std::string::npos) end = info->size();
            std::string_view line(info->data() + at, end - at);
            // id parent major:minor root mountpoint ...: the fifth field.
            std::size_t f = 0;
            for (int i = 0; i < 4 && f != std::string_view::npos; ++i) {
                f = line.find(' ', f);
                if (f != std::string_view::npos) ++f;
            }
            if (f != std::string_view::npos && line.substr(f).starts_with("/ "))
                root_is_a_mount = true;
            at = end + 1;
        }
    }
    if (!root_is_a_mount)
        return std::move(e).with_hint(
            "this process is in a chroot, where the kernel refuses new user namespaces: run "
            "butter in a container or a mount namespace whose root is / (pivot_root)");
    return std::move(e).with_hint(
        "user namespaces are refused here: a chroot, a seccomp filter or LSM that denies them "
        "(AppArmor's apparmor_restrict_unprivileged_userns), or user.max_user_namespaces = 0; "
        "`butter doctor` says which");
}

Result<Fd> make_user_namespace(std::span<const IdMapping> uid_map,
                               std::span<const IdMapping> gid_map) {
    // CLONE_VM: no copy of the caller's page tables and no copy-on-write faults afterwards,
    // which a fork-like child costs (dearly on a paravirtualized VM) for a process that only
    // has to exist while the maps are written.
    // The child's stack: this frame outlives the child, which is reaped before the return.
    alignas(16) char stack[16 * 1024];
    int pidfd = -1;
    int pid = ::clone(hold_namespace, stack + sizeof stack,
                      CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD | SIGCHLD, nullptr, &pidfd);
    if (pid < 0) return fail(namespace_refused(Error("clone", errno, "CLONE_VM|CLONE_NEWUSER")));
    Fd owner(pidfd);
    auto result = [&]() -> Result<Fd> {
        BUTTER_TRY(write_uid_map(pid, uid_map));
        BUTTER_TRY(write_gid_map(pid, gid_map));
        return open_namespace(pid, Namespace::User);
    }();
    (void)pidfd_send_signal(owner, SIGKILL);
    (void)waitid_pidfd(owner);
    return result;
}

Result<std::vector<IdMapping>> read_uid_map(pid_t pid) {
    return read_map(proc_path(pid, "uid_map"));
}
Result<std::vector<IdMapping>> read_gid_map(pid_t pid) {
    return read_map(proc_path(pid, "gid_map"));
}

}  // namespace butter
