// Landlock (landlock(7)): an unprivileged process restricts itself, and every process it starts,
// to the filesystem access, TCP ports and scopes a ruleset allows. Rules stack with namespaces
// and seccomp. The kernel's ABI grows by version (1: filesystem, 2: Refer, 3: Truncate, 4: TCP
// bind/connect, 5: IoctlDev, 6: scoping of abstract unix sockets and signals): ask for what
// landlock_abi_version() offers, or the kernel refuses the ruleset (EINVAL).
//
//     auto rs = LandlockRuleset::create({}, {}, LandlockScope::AbstractUnixSocket);
//     rs->restrict_self();   // needs no_new_privs (or CAP_SYS_ADMIN)
#pragma once

#include <cstdint>
#include <span>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI version (1..),
// or an Error: EOPNOTSUPP when Landlock is built but disabled at boot, ENOSYS when absent.
[[nodiscard]] Result<int> landlock_abi_version();

// Filesystem access rights (LANDLOCK_ACCESS_FS_*).
enum class LandlockFs : std::uint64_t {
    Execute = 1ULL << 0,
    WriteFile = 1ULL << 1,
    ReadFile = 1ULL << 2,
    ReadDir = 1ULL << 3,
    RemoveDir = 1ULL << 4,
    RemoveFile = 1ULL << 5,
    MakeChar = 1ULL << 6,
    MakeDir = 1ULL << 7,
    MakeReg = 1ULL << 8,
    MakeSock = 1ULL << 9,
    MakeFifo = 1ULL << 10,
    MakeBlock = 1ULL << 11,
    MakeSym = 1ULL << 12,
    Refer = 1ULL << 13,     // ABI 2
    Truncate = 1ULL << 14,  // ABI 3
    IoctlDev = 1ULL << 15,  // ABI 5
};
std::span<const FlagName<LandlockFs>> flag_names(LandlockFs);
using LandlockFsAccess = Flags<LandlockFs>;

// TCP port rights (LANDLOCK_ACCESS_NET_*, ABI 4).
enum class LandlockNet : std::uint64_t { BindTcp = 1ULL << 0, ConnectTcp = 1ULL << 1 };
std::span<const FlagName<LandlockNet>> flag_names(LandlockNet);
using LandlockNetAccess = Flags<LandlockNet>;

// Scopes (LANDLOCK_SCOPE_*, ABI 6): no connecting to abstract unix sockets, no signals, to
// processes outside the domain.
enum class LandlockScope : std::uint64_t { AbstractUnixSocket = 1ULL << 0, Signal = 1ULL << 1 };
std::span<const FlagName<LandlockScope>> flag_names(LandlockScope);
using LandlockScopes = Flags<LandlockScope>;

// The filesystem rights, TCP rights and scopes that ABI `abi` knows (empty below its version).
LandlockFsAccess landlock_fs_rights(int abi);
LandlockNetAccess landlock_net_rights(int abi);
LandlockScopes landlock_scopes(int abi);

// A ruleset (its fd, close-on-exec): what it handles is denied unless a rule allows it.
class LandlockRuleset {
  public:
    // landlock_create_ruleset(2). EINVAL: a right or scope this kernel's ABI lacks; ENOMSG:
    // nothing handled at all; ENOSYS/EOPNOTSUPP: no Landlock.
    [[nodiscard]] static Result<LandlockRuleset> create(LandlockFsAccess fs, LandlockNetAccess net,
                                                        LandlockScopes scopes);
    // landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH): `access` beneath the directory (or file)
    // open at `parent` (O_PATH is enough).
    [[nodiscard]] Result<void> allow_beneath(BorrowedFd parent, LandlockFsAccess access);
    // landlock_add_rule(LANDLOCK_RULE_NET_PORT): `access` on TCP port `port`.
    [[nodiscard]] Result<void> allow_port(std::uint16_t port, LandlockNetAccess access);
    // landlock_restrict_self(2): the calling thread (and what it starts) is confined from now
    // on. EPERM without no_new_privs (or CAP_SYS_ADMIN in the user namespace).
    [[nodiscard]] Result<void> restrict_self() const;
    int fd() const { return fd_.get(); }

  private:
    explicit LandlockRuleset(Fd fd) : fd_(std::move(fd)) {}
    Fd fd_;
};

}  // namespace butter
