// The host facts a plan depends on, through one small interface: the caller's ids and
// environment, passwd and group lookups, subordinate id ranges, paths (resolved, as host_path
// does), rlimits, what Landlock can scope, the homes and git checkouts to protect, and the
// compiled seccomp program. make_plan reads the host only through it, so the plan's unit tests
// and the fuzzer run it against a host of their own making (tests/launcher/fake_host.hpp).
#pragma once

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include <butter/error.hpp>
#include <butter/landlock.hpp>
#include <butter/namespace.hpp>

#include "plan/host_path.hpp"
#include "plan/persistence.hpp"
#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "seccomp/builtin.hpp"
#include "seccomp/kernel_log.hpp"
#include "seccomp/policy.hpp"

namespace butter::launcher {

class HostFacts {
  public:
    virtual ~HostFacts() = default;

    virtual uid_t uid() const = 0;  // real ids of the caller
    virtual gid_t gid() const = 0;
    virtual bool root() const = 0;  // effective uid 0
    virtual pid_t pid() const = 0;
    // The caller's environment ("KEY=VALUE", as environ), and one variable of it.
    virtual std::vector<std::string> environment() const = 0;
    std::optional<std::string> env(std::string_view name) const;

    // Names as the sandbox sees them: `etc` is the host directory that is its /etc ("" for
    // none of its own), then the host's (user_db.hpp: files, then getent for NSS).
    virtual std::optional<uid_t> user_id(const std::string& name, const std::string& etc) const = 0;
    virtual std::optional<gid_t> group_id(const std::string& name,
                                          const std::string& etc) const = 0;
    virtual std::optional<gid_t> primary_group(uid_t uid, const std::string& etc) const = 0;
    virtual std::optional<std::string> home_of(uid_t uid, const std::string& etc) const = 0;
    // The range root's sandboxes map into: root's /etc/subuid (subgid) line, else one no user
    // has or will get (root_range_from).
    virtual IdMapping root_range(bool group) const = 0;
    // Whether butter's own user namespace maps `id` (a uid, or with `group` a gid): a process
    // may take only those. Everything is mapped in the host's.
    virtual bool id_mapped(std::uint32_t id, bool group) const {
        (void)id;
        (void)group;
        return true;
    }

    virtual Result<HostPath> resolve(const std::string& path, Symlinks symlinks) const = 0;
    // The host's DNS server, as the first "nameserver" of /etc/resolv.conf has it (glibc's
    // 127.0.0.1 when none): network.mode = "user" forwards the sandbox's queries there.
    virtual std::string dns_server() const;
    virtual Result<struct stat> lstat(const std::string& path) const = 0;
    virtual Result<std::string> readlink(const std::string& path) const = 0;
    virtual std::optional<rlim_t> hard_limit(int resource) const = 0;  // RLIM_INFINITY: none
    // What butter's fd 0, 1 or 2 is: its S_IFMT type (0 when closed), and whether a terminal.
    virtual mode_t stdio_type(int fd) const = 0;
    virtual bool terminal(int fd) const = 0;
    virtual LandlockScopes landlock_scopes() const = 0;  // what the kernel scopes
    virtual int landlock_abi() const = 0;                // 0: no Landlock
    virtual std::vector<Home> homes() const = 0;         // homes_to_protect()
    // home_danger() of persistence.hpp: why a writable bind of `source` exposes a home, or "".
    virtual std::string home_danger(const std::string& source, const struct stat& st,
                                    const std::vector<Home>& homes) const = 0;
    virtual Result<std::vector<GitPart>> git_parts(const std::string& dir) const = 0;
    // The profile's seccomp program (compiled, or the build's own for a shipped profile), and
    // the kernel-log fallback's pair for a program with notifications.
    virtual std::optional<seccomp::Compiled> seccomp(
        const profile::Profile& p, std::span<const seccomp::BuiltinProgram> builtin,
        profile::Diagnostics& out) const = 0;
    virtual std::optional<seccomp::LoggedFilters> logged_filters(const BpfProgram& program,
                                                                 int denied_errno) const = 0;
};

// root_range() from the text of /etc/subuid, /etc/subgid and /etc/login.defs (host.cpp).
IdMapping root_range_from(const std::string& subuid, const std::string& subgid,
                          const std::string& defs, bool group);

// This machine, this process.
const HostFacts& real_host();

}  // namespace butter::launcher
