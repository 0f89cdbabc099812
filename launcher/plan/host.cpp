#include "plan/host.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include <butter/fd.hpp>

#include "plan/user_db.hpp"

extern char** environ;

namespace butter::launcher {

std::optional<std::string> HostFacts::env(std::string_view name) const {
    for (const std::string& kv : environment())
        if (kv.size() > name.size() && kv[name.size()] == '=' && kv.starts_with(name))
            return kv.substr(name.size() + 1);
    return std::nullopt;
}

namespace {

// The subordinate range root's sandboxes map into, from /etc/subuid (or /etc/subgid) when it
// names root, else 100000:65536 (the range useradd hands out first).
IdMapping range_of_root(const char* file) {
    std::string text = read_file(file).value_or("");
    std::string_view rest = text;
    while (!rest.empty()) {
        std::string_view line = rest.substr(0, rest.find('\n'));
        rest.remove_prefix(std::min(line.size() + 1, rest.size()));
        auto a = line.find(':'), b = line.rfind(':');
        if (a == std::string_view::npos || a == b) continue;
        std::string_view who = line.substr(0, a);
        if (who != "root" && who != "0") continue;
        unsigned long start =
            std::strtoul(std::string(line.substr(a + 1, b - a - 1)).c_str(), nullptr, 10);
        unsigned long count = std::strtoul(std::string(line.substr(b + 1)).c_str(), nullptr, 10);
        if (start > 0 && count >= 1)
            return {0, static_cast<std::uint32_t>(start),
                    static_cast<std::uint32_t>(std::min(count, 65536UL))};
    }
    return {0, 100000, 65536};
}

class RealHost final : public HostFacts {
  public:
    uid_t uid() const override { return ::getuid(); }
    gid_t gid() const override { return ::getgid(); }
    bool root() const override { return ::geteuid() == 0; }
    pid_t pid() const override { return ::getpid(); }
    mode_t stdio_type(int fd) const override {
        struct stat st {};
        return ::fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0;
    }
    bool terminal(int fd) const override { return ::isatty(fd) == 1; }
    std::vector<std::string> environment() const override {
        std::vector<std::string> out;
        for (char** e = environ; e && *e; ++e)
            out.emplace_back(*e);
        return out;
    }
    std::optional<uid_t> user_id(const std::string& name, const std::string& etc) const override {
        if (auto e = lookup_user_db(UserDb::Passwd, name, etc)) return e->id;
        return std::nullopt;
    }
    std::optional<gid_t> group_id(const std::string& name, const std::string& etc) const override {
        if (auto e = lookup_user_db(UserDb::Group, name, etc)) return e->id;
        return std::nullopt;
    }
    std::optional<gid_t> primary_group(uid_t uid, const std::string& etc) const override {
        if (auto e = lookup_user_db(UserDb::Passwd, std::to_string(uid), etc)) return e->gid;
        return std::nullopt;
    }
    IdMapping root_range(bool group) const override {
        return range_of_root(group ? "/etc/subgid" : "/etc/subuid");
    }
    Result<HostPath> resolve(const std::string& path, Symlinks symlinks) const override {
        return resolve_host_path(path, symlinks);
    }
    Result<struct stat> lstat(const std::string& path) const override {
        struct stat st {};
        if (::lstat(path.c_str(), &st) < 0) return fail_errno("lstat", path);
        return st;
    }
    Result<std::string> readlink(const std::string& path) const override {
        char buf[PATH_MAX];
        ssize_t len = ::readlink(path.c_str(), buf, sizeof buf - 1);
        if (len < 0) return fail_errno("readlink", path);
        return std::string(buf, static_cast<std::size_t>(len));
    }
    std::optional<rlim_t> hard_limit(int resource) const override {
        struct rlimit cur {};
        if (::getrlimit(static_cast<__rlimit_resource>(resource), &cur) < 0) return std::nullopt;
        return cur.rlim_max;
    }
    LandlockScopes landlock_scopes() const override {
        auto abi = landlock_abi_version();
        return abi ? butter::landlock_scopes(*abi) : LandlockScopes{};
    }
    std::vector<Home> homes() const override { return homes_to_protect(); }
    std::string home_danger(const std::string& source, const struct stat& st,
                            const std::vector<Home>& homes) const override {
        return launcher::home_danger(source, st.st_dev, st.st_ino, homes);
    }
    Result<std::vector<GitPart>> git_parts(const std::string& dir) const override {
        return git_parts_to_protect(dir);
    }
    std::optional<seccomp::Compiled> seccomp(const profile::Profile& p,
                                             std::span<const seccomp::BuiltinProgram> builtin,
                                             profile::Diagnostics& out) const override {
        return seccomp::compile_or_builtin(p, builtin, out);
    }
    std::optional<seccomp::LoggedFilters> logged_filters(const BpfProgram& program,
                                                         int denied_errno) const override {
        return seccomp::logged_filters(program, denied_errno);
    }
};

}  // namespace

const HostFacts& real_host() {
    static const RealHost host;
    return host;
}

}  // namespace butter::launcher
