// User and group names without glibc's NSS, which a static butter cannot load reliably (the
// modules must come from the very glibc it was linked with): the sandbox's own /etc/passwd and
// /etc/group first, then the host's files, then the host's NSS through getent(1), a program
// linked the host's way (sssd, LDAP, systemd-homed users).
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace butter::launcher {

enum class UserDb { Passwd, Group };

// One entry of `db` by name, or by id when `key` is all digits: its fields (name, id, and for
// passwd the primary gid). `etc` is the host directory that is the sandbox's /etc ("" for
// none); its files count only if root or the caller owns them and no one else may write them
// (a sandbox could have written a root directory's /etc).
struct UserEntry {
    std::string name;
    std::uint32_t id = 0;
    std::uint32_t gid = 0;  // passwd: the primary group
    std::string home;       // passwd: the home directory
    std::string shell;      // passwd: the login shell
};
std::optional<UserEntry> lookup_user_db(UserDb db, std::string_view key, const std::string& etc);

// `getent passwd|group KEY` (the host's NSS), its line, or nullopt (not found, no getent, or
// no answer within 10 s).
std::optional<std::string> getent(UserDb db, std::string_view key);

// Every entry of text in passwd(5) or group(5) format, in order, until `f` returns false;
// comments, compat (+/-) lines and lines without numeric ids are skipped.
void for_each_user_entry(UserDb db, std::string_view text,
                         const std::function<bool(const UserEntry&)>& f);

// The same lookup in text in passwd(5) or group(5) format (tests, and the files above).
std::optional<UserEntry> find_in_user_db(UserDb db, std::string_view text, std::string_view key);

}  // namespace butter::launcher
