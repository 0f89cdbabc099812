// Files the tests hand to butter run as nobody (the butter binary, the probe, the shipped
// profiles) must be reachable by nobody. A clone in /root (mode 700), as a root user on a fresh
// machine makes it, is not: such a path is staged, once per test process, in a directory of
// /tmp that nobody can traverse, and the stage is removed when the process exits.
#pragma once

#include <string>

namespace butter::test {

// `path` itself when every directory above it can be searched by others, else a copy of it
// (a hard link when the file system allows, directories copied recursively) in the stage.
const std::string& reachable(const std::string& path);

// The shipped profiles (BUTTER_PROFILES_SRC), reachable by nobody.
const std::string& profiles_src();
// "BUTTER_PROFILE_PATH=<profiles_src()>", the environment entry most tests give butter.
std::string profile_path_env();

}  // namespace butter::test
