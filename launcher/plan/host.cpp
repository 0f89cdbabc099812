#include "plan/host.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include <butter/fd.hpp>

#include "plan/user_db.hpp"
#include "text.hpp"

extern char** environ;

namespace butter::launcher {

std::optional<std::string> HostFacts::env(std::string_view name) const {
    for (const std::string& kv : environment())
        if (kv.size() > name.size() && kv[name.size()] == '=' && kv.starts_with(name))
            return kv.substr(name.size() + 1);
    return std::nullopt;
}

std::string HostFacts::dns_server() const {
    // Root's file (a symlink to systemd-resolved's is root's too): never one a sandbox wrote.
    auto path = resolve("/etc/resolv.conf", Symlinks::RootOnly);
    if (!path || path->st.st_uid != 0 || !S_ISREG(path->st.st_mode)) return "127.0.0.1";
    auto fd = reopen_host_path(path->path, path->st.st_dev, path->st.st_ino, O_RDONLY);
    if (!fd) return "127.0.0.1";
    std::string text;
    char buf[4096];
    ssize_t n;
    while (text.size() < 65536 && (n = ::read(fd->get(), buf, sizeof buf)) > 0)
        text.append(buf, static_cast<std::size_t>(n));
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(at, nl - at);
        at = nl + 1;
        char addr[64] = {};
        unsigned char bin[16];
        if (std::sscanf(line.c_str(), " nameserver %63s", addr) == 1 &&
            (::inet_pton(AF_INET, addr, bin) == 1 || ::inet_pton(AF_INET6, addr, bin) == 1))
            return addr;
    }
    return "127.0.0.1";
}

namespace {

// Every "NAME:START:COUNT" range of a subordinate id file.
std::vector<std::pair<std::uint64_t, std::uint64_t>> subid_ranges(const std::string& text,
                                                                  bool root_only) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    std::string_view rest = text;
    while (!rest.empty()) {
        std::string_view line = next_line(rest);
        auto a = line.find(':'), b = line.rfind(':');
        if (a == std::string_view::npos || a == b) continue;
        std::string_view who = line.substr(0, a);
        if (root_only && who != "root" && who != "0") continue;
        unsigned long start =
            std::strtoul(std::string(line.substr(a + 1, b - a - 1)).c_str(), nullptr, 10);
        unsigned long count = std::strtoul(std::string(line.substr(b + 1)).c_str(), nullptr, 10);
        if (start > 0 && count >= 1) out.push_back({start, count});
    }
    return out;
}

// A login.defs number (SUB_UID_MAX), or `fallback`.
std::uint64_t login_defs(const std::string& text, std::string_view key, std::uint64_t fallback) {
    std::string_view rest = text;
    while (!rest.empty()) {
        std::string_view line = next_line(rest);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (!line.starts_with(key) || line.size() == key.size() ||
            (line[key.size()] != ' ' && line[key.size()] != '\t'))
            continue;
        std::string value(line.substr(key.size()));
        char* end = nullptr;
        unsigned long v = std::strtoul(value.c_str(), &end, 10);
        if (end != value.c_str()) return v;
    }
    return fallback;
}

}  // namespace

// Root's line in /etc/subuid (/etc/subgid), else a range no user has or will get: useradd
// hands out ranges between SUB_UID_MIN and SUB_UID_MAX (login.defs; 100000 and 600100000 by
// default), and another user's range would let that user's own user namespaces signal root's
// sandboxes and own what they write. So: above SUB_UID_MAX and SUB_GID_MAX, past every range
// either file names, 65536-aligned, below 2^31.
IdMapping root_range_from(const std::string& subuid, const std::string& subgid,
                          const std::string& defs, bool group) {
    for (auto [start, count] : subid_ranges(group ? subgid : subuid, true))
        return {0, static_cast<std::uint32_t>(start),
                static_cast<std::uint32_t>(std::min<std::uint64_t>(count, 65536))};
    constexpr std::uint64_t kCount = 65536;
    auto align = [](std::uint64_t v) { return (v + kCount - 1) / kCount * kCount; };
    std::uint64_t start = align(std::max(login_defs(defs, "SUB_UID_MAX", 600100000),
                                         login_defs(defs, "SUB_GID_MAX", 600100000)) +
                                1);
    auto ranges = subid_ranges(subuid, false);
    for (auto r : subid_ranges(subgid, false))
        ranges.push_back(r);
    for (bool moved = true; moved;) {
        moved = false;
        for (auto [s, c] : ranges)
            if (s < start + kCount && start < s + c) {
                start = align(s + c);
                moved = true;
            }
    }
    if (start + kCount > (1ULL << 31)) start = (1ULL << 31) - kCount;  // nowhere left: the top
    return {0, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(kCount)};
}

namespace {

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
    std::optional<std::string> home_of(uid_t uid, const std::string& etc) const override {
        if (auto e = lookup_user_db(UserDb::Passwd, std::to_string(uid), etc)) return e->home;
        return std::nullopt;
    }
    std::optional<gid_t> primary_group(uid_t uid, const std::string& etc) const override {
        if (auto e = lookup_user_db(UserDb::Passwd, std::to_string(uid), etc)) return e->gid;
        return std::nullopt;
    }
    IdMapping root_range(bool group) const override {
        return root_range_from(read_file("/etc/subuid").value_or(""),
                               read_file("/etc/subgid").value_or(""),
                               read_file("/etc/login.defs").value_or(""), group);
    }
    bool id_mapped(std::uint32_t id, bool group) const override {
        auto map = read_file(group ? "/proc/self/gid_map" : "/proc/self/uid_map");
        if (!map) return false;
        std::string_view rest = *map;
        while (!rest.empty()) {
            std::string line(next_line(rest));
            unsigned long inside = 0, outside = 0, count = 0;
            if (std::sscanf(line.c_str(), "%lu %lu %lu", &inside, &outside, &count) == 3 &&
                id >= inside && id - inside < count)
                return true;
        }
        return false;
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
    int landlock_abi() const override {
        auto abi = landlock_abi_version();
        return abi ? *abi : 0;
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
