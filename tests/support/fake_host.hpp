// A host of the test's own making for make_plan (plan/host.hpp): ids, environment, users and
// groups, a few paths with their owners, rlimits, Landlock, homes, git parts. Nothing here
// touches the machine the test runs on; the seccomp program is the build's own for a shipped
// profile and otherwise an empty one (the compiler has tests of its own), unless `compile`.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "plan/host.hpp"

namespace butter::test {

class FakeHost : public launcher::HostFacts {
  public:
    uid_t uid_ = 1000;
    gid_t gid_ = 1000;
    bool root_ = false;
    pid_t pid_ = 4242;
    mode_t stdio_types[3] = {S_IFCHR, S_IFCHR, S_IFCHR};  // /dev/null
    bool terminals[3] = {false, false, false};
    std::vector<std::string> env_ = {"PATH=/usr/bin:/bin", "HOME=/home/me", "USER=me"};
    std::map<std::string, uid_t> users = {{"root", 0}, {"me", 1000}, {"nobody", 65534}};
    std::map<std::string, gid_t> groups = {{"root", 0}, {"me", 1000}, {"nogroup", 65534}};
    std::map<uid_t, gid_t> primary = {{0, 0}, {1000, 1000}, {65534, 65534}};
    IdMapping subuid{0, 100000, 65536}, subgid{0, 100000, 65536};
    struct Node {
        mode_t mode = S_IFDIR | 0755;
        uid_t uid = 0;
        gid_t gid = 0;
        std::string link;  // a symlink's text
    };
    std::map<std::string, Node> paths = {
        {"/", {}},
        {"/usr", {}},
        {"/etc", {}},
        {"/lib", {}},
        {"/lib64", {}},
        {"/sbin", {}},
        {"/tmp", {S_IFDIR | 01777, 0, 0, ""}},
        {"/bin", {S_IFLNK | 0777, 0, 0, "usr/bin"}},
        {"/home/me", {S_IFDIR | 0755, 1000, 1000, ""}},
        {"/work", {S_IFDIR | 0755, 1000, 1000, ""}},
    };
    std::map<int, rlim_t> hard = {};
    LandlockScopes scopes = LandlockScope::AbstractUnixSocket | LandlockScope::Signal;
    int abi = 6;  // Landlock ABI
    std::vector<launcher::Home> homes_ = {{"/home/me", 1, 9}};
    std::map<std::string, std::vector<launcher::GitPart>> git = {};
    bool compile = false;

    uid_t uid() const override { return uid_; }
    gid_t gid() const override { return gid_; }
    bool root() const override { return root_; }
    pid_t pid() const override { return pid_; }
    mode_t stdio_type(int fd) const override { return stdio_types[fd]; }
    bool terminal(int fd) const override { return terminals[fd]; }
    std::vector<std::string> environment() const override { return env_; }
    std::optional<uid_t> user_id(const std::string& n, const std::string& etc) const override {
        last_etc = etc;
        return find(users, n);
    }
    std::optional<gid_t> group_id(const std::string& n, const std::string&) const override {
        return find(groups, n);
    }
    std::optional<gid_t> primary_group(uid_t u, const std::string&) const override {
        return find(primary, u);
    }
    std::optional<std::string> home_of(uid_t u, const std::string&) const override {
        return find(homes_of, u);
    }
    std::map<uid_t, std::string> homes_of = {{0, "/root"}, {1000, "/home/me"}};
    mutable std::string last_etc;  // the sandbox's /etc the planner last named
    IdMapping root_range(bool group) const override { return group ? subgid : subuid; }
    Result<launcher::HostPath> resolve(const std::string& path, launcher::Symlinks) const override {
        auto it = paths.find(path);
        if (it == paths.end()) return fail(Error("openat2", ENOENT, path));
        if (S_ISLNK(it->second.mode)) {
            std::string target =
                it->second.link[0] == '/' ? it->second.link : "/" + it->second.link;
            if (target == path || !paths.count(target)) return fail(Error("openat2", ELOOP, path));
            return resolve(target, launcher::Symlinks::Follow);
        }
        launcher::HostPath h;
        h.path = path;
        h.st = stat_of(path, it->second);
        return h;
    }
    Result<struct stat> lstat(const std::string& path) const override {
        auto it = paths.find(path);
        if (it == paths.end()) return fail(Error("lstat", ENOENT, path));
        return stat_of(path, it->second);
    }
    Result<std::string> readlink(const std::string& path) const override {
        auto it = paths.find(path);
        if (it == paths.end() || !S_ISLNK(it->second.mode))
            return fail(Error("readlink", EINVAL, path));
        return it->second.link;
    }
    std::optional<rlim_t> hard_limit(int resource) const override {
        auto it = hard.find(resource);
        return it == hard.end() ? RLIM_INFINITY : it->second;
    }
    LandlockScopes landlock_scopes() const override { return scopes; }
    int landlock_abi() const override { return abi; }
    std::vector<launcher::Home> homes() const override { return homes_; }
    // By path: the home, an ancestor of it, or a dot-directory in it.
    std::string home_danger(const std::string& source, const struct stat&,
                            const std::vector<launcher::Home>& homes) const override {
        for (const launcher::Home& h : homes) {
            if (source == h.path) return "it is the home directory " + h.path;
            if (source == "/" || h.path.starts_with(source + "/"))
                return "it holds the home directory " + h.path;
            if (source.starts_with(h.path + "/."))
                return "it is in " + h.path + "/" + source.substr(h.path.size() + 1);
        }
        return "";
    }
    Result<std::vector<launcher::GitPart>> git_parts(const std::string& dir) const override {
        auto it = git.find(dir);
        return it == git.end() ? std::vector<launcher::GitPart>{} : it->second;
    }
    std::optional<launcher::seccomp::Compiled> seccomp(
        const launcher::profile::Profile& p,
        std::span<const launcher::seccomp::BuiltinProgram> builtin,
        launcher::profile::Diagnostics& out) const override {
        if (compile || !builtin.empty())
            return launcher::seccomp::compile_or_builtin(p, builtin, out);
        return launcher::seccomp::Compiled{};
    }
    std::optional<launcher::seccomp::LoggedFilters> logged_filters(const BpfProgram&,
                                                                   int) const override {
        return std::nullopt;
    }

    // A stat of `path` as the fake holds it: its own inode (a hash of the path), device 1.
    static struct stat stat_of(const std::string& path, const Node& n) {
        struct stat st {};
        st.st_dev = 1;
        st.st_ino = std::hash<std::string>{}(path) | 1;
        st.st_mode = n.mode;
        st.st_uid = n.uid;
        st.st_gid = n.gid;
        return st;
    }

  private:
    template <typename M, typename K>
    static std::optional<typename M::mapped_type> find(const M& m, const K& k) {
        auto it = m.find(k);
        if (it == m.end()) return std::nullopt;
        return it->second;
    }
};

}  // namespace butter::test
