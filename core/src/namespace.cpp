#include "butter/namespace.hpp"

#include <fcntl.h>
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

// One write(2) of the whole text: the kernel parses a map only from a single write.
Result<void> write_proc(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
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
    return write_proc(proc_path(pid, "uid_map"), format_id_map(map));
}

Result<void> write_gid_map(pid_t pid, std::span<const IdMapping> map) {
    return write_proc(proc_path(pid, "gid_map"), format_id_map(map));
}

Result<void> write_setgroups(pid_t pid, bool allow) {
    return write_proc(proc_path(pid, "setgroups"), allow ? "allow" : "deny");
}

Result<Fd> make_user_namespace(std::span<const IdMapping> uid_map,
                               std::span<const IdMapping> gid_map) {
    CloneArgs args;
    args.flags = CLONE_NEWUSER;
    BUTTER_ASSIGN_OR_RETURN(CloneResult child, clone3(args));
    if (child.is_child()) {
        // Only to own the namespace: wait to be killed (and die with the caller).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            ::pause();
    }
    auto result = [&]() -> Result<Fd> {
        BUTTER_TRY(write_uid_map(child.pid, uid_map));
        BUTTER_TRY(write_gid_map(child.pid, gid_map));
        return open_namespace(child.pid, Namespace::User);
    }();
    (void)pidfd_send_signal(child.pidfd, SIGKILL);
    (void)waitid_pidfd(child.pidfd);
    return result;
}

Result<std::vector<IdMapping>> read_uid_map(pid_t pid) {
    return read_map(proc_path(pid, "uid_map"));
}
Result<std::vector<IdMapping>> read_gid_map(pid_t pid) {
    return read_map(proc_path(pid, "gid_map"));
}

}  // namespace butter
