#include "butter/net.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "butter/fd.hpp"

namespace butter {

namespace {
Result<Fd> ioctl_socket() {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail_errno("socket(AF_INET)");
    return Fd(s);
}

Result<short> get_flags(int sock, const char* name, struct ifreq& ifr) {
    std::memset(&ifr, 0, sizeof ifr);
    std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (::ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return fail_errno("ioctl(SIOCGIFFLAGS)", name);
    return ifr.ifr_flags;
}
}  // namespace

Result<void> set_link_up(const char* name) {
    BUTTER_ASSIGN_OR_RETURN(Fd s, ioctl_socket());
    struct ifreq ifr;
    BUTTER_ASSIGN_OR_RETURN(short flags, get_flags(s.get(), name, ifr));
    if (flags & IFF_UP) return {};
    ifr.ifr_flags = static_cast<short>(flags | IFF_UP);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) return fail_errno("ioctl(SIOCSIFFLAGS)", name);
    return {};
}

Result<bool> link_is_up(const char* name) {
    BUTTER_ASSIGN_OR_RETURN(Fd s, ioctl_socket());
    struct ifreq ifr;
    BUTTER_ASSIGN_OR_RETURN(short flags, get_flags(s.get(), name, ifr));
    return (flags & IFF_UP) != 0;
}

}  // namespace butter
