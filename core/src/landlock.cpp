#include "butter/landlock.hpp"

#include <array>

#include "sys.hpp"

namespace butter {

namespace {

constexpr std::array<FlagName<LandlockFs>, 16> kFsNames{{
    {LandlockFs::Execute, "Execute"},
    {LandlockFs::WriteFile, "WriteFile"},
    {LandlockFs::ReadFile, "ReadFile"},
    {LandlockFs::ReadDir, "ReadDir"},
    {LandlockFs::RemoveDir, "RemoveDir"},
    {LandlockFs::RemoveFile, "RemoveFile"},
    {LandlockFs::MakeChar, "MakeChar"},
    {LandlockFs::MakeDir, "MakeDir"},
    {LandlockFs::MakeReg, "MakeReg"},
    {LandlockFs::MakeSock, "MakeSock"},
    {LandlockFs::MakeFifo, "MakeFifo"},
    {LandlockFs::MakeBlock, "MakeBlock"},
    {LandlockFs::MakeSym, "MakeSym"},
    {LandlockFs::Refer, "Refer"},
    {LandlockFs::Truncate, "Truncate"},
    {LandlockFs::IoctlDev, "IoctlDev"},
}};
constexpr std::array<FlagName<LandlockNet>, 2> kNetNames{{
    {LandlockNet::BindTcp, "BindTcp"},
    {LandlockNet::ConnectTcp, "ConnectTcp"},
}};
constexpr std::array<FlagName<LandlockScope>, 2> kScopeNames{{
    {LandlockScope::AbstractUnixSocket, "AbstractUnixSocket"},
    {LandlockScope::Signal, "Signal"},
}};

}  // namespace

std::span<const FlagName<LandlockFs>> flag_names(LandlockFs) {
    return kFsNames;
}
std::span<const FlagName<LandlockNet>> flag_names(LandlockNet) {
    return kNetNames;
}
std::span<const FlagName<LandlockScope>> flag_names(LandlockScope) {
    return kScopeNames;
}

Result<int> landlock_abi_version() {
    long v = sys::landlock_create_ruleset(nullptr, 0, sys::kLandlockCreateRulesetVersion);
    if (v < 0)
        return fail(Error("landlock_create_ruleset", static_cast<int>(-v),
                          "LANDLOCK_CREATE_RULESET_VERSION"));
    return static_cast<int>(v);
}

LandlockFsAccess landlock_fs_rights(int abi) {
    if (abi < 1) return {};
    auto all = LandlockFsAccess::from_raw((1ULL << 13) - 1);  // Execute .. MakeSym
    if (abi >= 2) all |= LandlockFs::Refer;
    if (abi >= 3) all |= LandlockFs::Truncate;
    if (abi >= 5) all |= LandlockFs::IoctlDev;
    return all;
}

LandlockNetAccess landlock_net_rights(int abi) {
    return abi >= 4 ? LandlockNet::BindTcp | LandlockNet::ConnectTcp : LandlockNetAccess{};
}

LandlockScopes landlock_scopes(int abi) {
    return abi >= 6 ? LandlockScope::AbstractUnixSocket | LandlockScope::Signal : LandlockScopes{};
}

Result<LandlockRuleset> LandlockRuleset::create(LandlockFsAccess fs, LandlockNetAccess net,
                                                LandlockScopes scopes) {
    sys::landlock_ruleset_attr_v6 attr{fs.raw(), net.raw(), scopes.raw()};
    // The shortest attribute that holds what is asked: an older kernel refuses a longer one
    // (E2BIG) only when its extra fields are not zero, but this way it never has to look.
    std::size_t size = scopes ? sizeof attr
                       : net  ? offsetof(sys::landlock_ruleset_attr_v6, scoped)
                              : offsetof(sys::landlock_ruleset_attr_v6, handled_access_net);
    long fd = sys::landlock_create_ruleset(&attr, size, 0);
    if (fd < 0)
        return fail(Error(
            "landlock_create_ruleset", static_cast<int>(-fd),
            "fs " + to_string(fs) + ", net " + to_string(net) + ", scoped " + to_string(scopes)));
    return LandlockRuleset(Fd(static_cast<int>(fd)));
}

Result<void> LandlockRuleset::allow_beneath(BorrowedFd parent, LandlockFsAccess access) {
    sys::landlock_path_beneath_attr attr{access.raw(), parent.get()};
    long r = sys::landlock_add_rule(fd_.get(), sys::kLandlockRulePathBeneath, &attr, 0);
    if (r < 0)
        return fail(
            Error("landlock_add_rule", static_cast<int>(-r),
                  "path beneath fd " + std::to_string(parent.get()) + ": " + to_string(access)));
    return {};
}

Result<void> LandlockRuleset::allow_port(std::uint16_t port, LandlockNetAccess access) {
    sys::landlock_net_port_attr attr{access.raw(), port};
    long r = sys::landlock_add_rule(fd_.get(), sys::kLandlockRuleNetPort, &attr, 0);
    if (r < 0)
        return fail(Error("landlock_add_rule", static_cast<int>(-r),
                          "port " + std::to_string(port) + ": " + to_string(access)));
    return {};
}

Result<void> LandlockRuleset::restrict_self() const {
    long r = sys::landlock_restrict_self(fd_.get(), 0);
    if (r < 0) return fail(Error("landlock_restrict_self", static_cast<int>(-r)));
    return {};
}

}  // namespace butter
