// Paths the host later runs code from, which a writable bind must not expose (SECURITY.md):
// - home directories: a sandbox that can write a home's dotfiles (.bashrc, .profile,
//   .ssh/authorized_keys, .config/autostart, .local/bin) runs code as that user the next time
//   they log in or open a shell, outside any sandbox. Compared by identity (device and inode),
//   so a bind mount of a home elsewhere is the home;
// - a git checkout's repository and hooks: git runs hooks and config (core.fsmonitor,
//   core.hooksPath, filters) as the user the next time they use git there.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include <butter/error.hpp>

namespace butter::launcher {

struct Home {
    std::string path;  // resolved
    dev_t dev = 0;
    ino_t ino = 0;
};

// The caller's $HOME (when absolute) and its /etc/passwd home; as root, the home of every user
// with a login shell too. Those that do not exist are left out.
std::vector<Home> homes_to_protect();

// Why a writable bind of `source` (resolved, with `dev`/`ino`) would expose one of `homes`:
// "it is the home directory of ...", "it holds ...", "it is in a dot-directory of ...";
// "" when it does not.
std::string home_danger(const std::string& source, dev_t dev, ino_t ino,
                        const std::vector<Home>& homes);

// What of a git checkout at `dir` (a writable bind's source, resolved) stays read-only: its .git
// (a directory, or a gitdir file and the directory it names where that lies under `dir`),
// core.hooksPath where it lies under `dir` (husky's .husky, say), and its submodules' gitfiles,
// with the directories on the way to them pinned (protect_submodules in persistence.cpp). Each
// as a path relative to `dir`, with what it is, in the order to mount them. A .git that is a
// symlink cannot be bound over: an error.
struct GitPart {
    std::string rel;
    struct stat st;
    bool pin = false;  // bound onto itself, writable as around it: not renamed or removed
};
[[nodiscard]] Result<std::vector<GitPart>> git_parts_to_protect(const std::string& dir);

}  // namespace butter::launcher
