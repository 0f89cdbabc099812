// The tiers below namespaces (plan/tier.cpp) give the command a private TMPDIR and HOME: a
// directory made for one run (mkdtemp in $TMPDIR or /tmp: mode 0700, a name no one else can
// have taken), holding tmp/ and home/. The sandbox writes anything there; it goes after the
// run through the descriptors held since its creation: nothing in it is followed (a symlink,
// another file system), nothing outside it is removed, whatever was renamed meanwhile.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <string>

#include <butter/error.hpp>
#include <butter/fd.hpp>

namespace butter::launcher {

class PrivateDir {
  public:
    PrivateDir() = default;
    PrivateDir(PrivateDir&&) noexcept = default;
    PrivateDir& operator=(PrivateDir&&) noexcept;
    ~PrivateDir();

    [[nodiscard]] static Result<PrivateDir> create();
    const std::string& path() const { return path_; }
    bool valid() const { return dir_.valid(); }
    // tmp/ and home/ for the command's ids (0700), who own the directory too.
    [[nodiscard]] Result<void> prepare(uid_t uid, gid_t gid);
    // Everything in it, as the ids given to prepare() (as root, in a child with those ids
    // alone), then itself (the destructor does it too, quietly).
    [[nodiscard]] Result<void> remove();

  private:
    uid_t owner_uid_ = ::geteuid();
    gid_t owner_gid_ = ::getegid();
    Fd parent_, dir_;
    std::string name_, path_;
};

}  // namespace butter::launcher
