#include "profile/arg_constants.hpp"

#include <fcntl.h>
#include <linux/personality.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <charconv>
#include <utility>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace butter::launcher::profile {

namespace {

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 55> kConstants{{
    // address families (socket's first argument)
    {"AF_UNSPEC", AF_UNSPEC},
    {"AF_UNIX", AF_UNIX},
    {"AF_LOCAL", AF_LOCAL},
    {"AF_INET", AF_INET},
    {"AF_INET6", AF_INET6},
    {"AF_NETLINK", AF_NETLINK},
    {"AF_PACKET", AF_PACKET},
    {"AF_BLUETOOTH", AF_BLUETOOTH},
    {"AF_VSOCK", AF_VSOCK},
    {"AF_KEY", AF_KEY},
    {"AF_ALG", AF_ALG},
    {"AF_CAN", AF_CAN},
    {"AF_TIPC", AF_TIPC},
    {"AF_XDP", AF_XDP},
    {"AF_APPLETALK", AF_APPLETALK},
    {"AF_X25", AF_X25},
    {"AF_AX25", AF_AX25},
    {"AF_IPX", AF_IPX},
    {"AF_NETROM", AF_NETROM},
    {"AF_ROSE", AF_ROSE},
    {"AF_DECnet", AF_DECnet},
    {"AF_LLC", AF_LLC},
    {"AF_IB", AF_IB},
    {"AF_MPLS", AF_MPLS},
    {"AF_RDS", AF_RDS},
    {"AF_SMC", AF_SMC},
    // socket types
    {"SOCK_STREAM", SOCK_STREAM},
    {"SOCK_DGRAM", SOCK_DGRAM},
    {"SOCK_RAW", SOCK_RAW},
    {"SOCK_SEQPACKET", SOCK_SEQPACKET},
    // terminal ioctls that reach other processes' input or the console
    {"TIOCSTI", TIOCSTI},
    {"TIOCLINUX", TIOCLINUX},
    {"TIOCCONS", TIOCCONS},
    {"TIOCSETD", TIOCSETD},
    {"TIOCSCTTY", TIOCSCTTY},
    // clone/unshare namespace flags
    {"CLONE_NEWNS", CLONE_NEWNS},
    {"CLONE_NEWUTS", CLONE_NEWUTS},
    {"CLONE_NEWIPC", CLONE_NEWIPC},
    {"CLONE_NEWUSER", CLONE_NEWUSER},
    {"CLONE_NEWPID", CLONE_NEWPID},
    {"CLONE_NEWNET", CLONE_NEWNET},
    {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
    {"CLONE_NEWTIME", CLONE_NEWTIME},
    {"CLONE_THREAD", CLONE_THREAD},
    {"CLONE_VM", CLONE_VM},
    // personalities
    {"PER_LINUX", PER_LINUX},
    {"PER_LINUX32", PER_LINUX32},
    {"UNAME26", UNAME26},
    {"ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE},
    {"PER_QUERY", 0xffffffffULL},
    // file modes and open flags (set-id files)
    {"S_ISUID", S_ISUID},
    {"S_ISGID", S_ISGID},
    {"O_CREAT", O_CREAT},
    {"O_TMPFILE", O_TMPFILE},
    {"__O_TMPFILE", 020000000},  // the kernel's bit alone (glibc's macro adds O_DIRECTORY)
}};

}  // namespace

std::optional<std::uint64_t> constant_value(std::string_view text) {
    for (const auto& [name, value] : kConstants)
        if (name == text) return value;
    std::uint64_t v = 0;
    int base = 10;
    std::string_view digits = text;
    if (digits.starts_with("0x") || digits.starts_with("0X")) {
        base = 16;
        digits.remove_prefix(2);
    }
    if (digits.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return v;
}

}  // namespace butter::launcher::profile
