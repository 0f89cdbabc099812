#include "butter/hostname.hpp"

#include <sys/utsname.h>
#include <unistd.h>

namespace butter {

Result<std::string> gethostname() {
    // uname(2) gives the exact UTS field with no truncation ambiguity.
    struct utsname u {};
    if (::uname(&u) < 0) return fail_errno("uname");
    return std::string(u.nodename);
}

Result<void> sethostname(std::string_view name) {
    if (::sethostname(name.data(), name.size()) < 0)
        return fail_errno("sethostname", std::string(name));
    return {};
}

Result<std::string> getdomainname() {
    struct utsname u {};
    if (::uname(&u) < 0) return fail_errno("uname");
    return std::string(u.domainname);
}

Result<void> setdomainname(std::string_view name) {
    if (::setdomainname(name.data(), name.size()) < 0)
        return fail_errno("setdomainname", std::string(name));
    return {};
}

}  // namespace butter
