#include "userns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "child.hpp"

namespace butter::test {

namespace {
bool write_proc(const char* path, const std::string& s) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
    ::close(fd);
    return ok;
}

int enter_userns_as_root() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER) < 0) return 1;
    if (!write_proc("/proc/self/setgroups", "deny")) return 2;
    if (!write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1")) return 3;
    if (!write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1")) return 4;
    return 0;
}
}  // namespace

std::string become_root_in_userns() {
    if (::geteuid() == 0) return "";
    int r = enter_userns_as_root();
    return r == 0 ? "" : "entering a user namespace failed at step " + std::to_string(r);
}

std::string private_mount_namespace() {
    std::string e = become_root_in_userns();
    if (!e.empty()) return e;
    if (::unshare(CLONE_NEWNS) < 0)
        return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    if (::mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) < 0)
        return std::string("make / private: ") + std::strerror(errno);
    return "";
}

bool is_root() {
    return ::geteuid() == 0;
}

bool have_userns() {
    static const bool ok = run_as_nobody([] { return enter_userns_as_root(); }).code() == 0;
    return ok;
}

bool have_mountns() {
    static const bool ok = run_in_child([] {
                               if (!private_mount_namespace().empty()) return 1;
                               if (::mount("tmpfs", "/tmp", "tmpfs", 0, nullptr) < 0) return 4;
                               return 0;
                           }).code() == 0;
    return ok;
}

bool required(const char* feature) {
    auto on = [](const char* name) {
        const char* v = ::getenv(name);
        return v && std::strcmp(v, "1") == 0;
    };
    return on("BUTTER_REQUIRE_ALL") || on((std::string("BUTTER_REQUIRE_") + feature).c_str());
}

}  // namespace butter::test
