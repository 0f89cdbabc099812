#include "seccomp/describe.hpp"

#include "text.hpp"

#include <array>
#include <cstdio>
#include <string_view>

#include <butter/process.hpp>

namespace butter::launcher::seccomp {

namespace {

struct Shape {
    std::string_view name;
    unsigned nargs;
    unsigned strings;  // bit i: argument i is a C string
};

// The path-taking syscalls a sandbox typically denies, and how many arguments to show.
constexpr std::array<Shape, 28> kShapes{{
    {"mount", 5, 0b00111},     {"umount2", 2, 0b1},       {"pivot_root", 2, 0b11},
    {"chroot", 1, 0b1},        {"open", 3, 0b1},          {"openat", 4, 0b10},
    {"openat2", 4, 0b10},      {"unlink", 1, 0b1},        {"unlinkat", 3, 0b10},
    {"mkdir", 2, 0b1},         {"mkdirat", 3, 0b10},      {"rmdir", 1, 0b1},
    {"rename", 2, 0b11},       {"symlink", 2, 0b11},      {"link", 2, 0b11},
    {"chmod", 2, 0b1},         {"chown", 3, 0b1},         {"execve", 3, 0b1},
    {"execveat", 5, 0b10},     {"swapon", 2, 0b1},        {"swapoff", 1, 0b1},
    {"sethostname", 2, 0b1},   {"setdomainname", 2, 0b1}, {"acct", 1, 0b1},
    {"fsopen", 2, 0b1},        {"open_tree", 3, 0b10},    {"move_mount", 5, 0b01010},
    {"init_module", 3, 0b100},
}};

// A string argument for the log: quoted, with nothing in it that drives a terminal.
std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : terminal_safe(s)) {
        if (c == '"') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::string describe_call(const SeccompNotification& n, SeccompNotifyFd& notify) {
    std::string name = n.syscall_name();
    const Shape* shape = nullptr;
    for (const Shape& s : kShapes)
        if (s.name == name) shape = &s;
    unsigned shown = shape ? shape->nargs : 2;
    std::vector<std::string> args;
    for (unsigned i = 0; i < shown; ++i) {
        std::string a = hex(n.args[i]);
        if (shape && (shape->strings & (1u << i))) {
            if (n.args[i] == 0)
                a = "NULL";
            else if (auto s = read_process_string(n.pid, n.args[i], 128))
                a = quote(*s);
        }
        args.push_back(std::move(a));
    }
    // The strings count only if the caller still waits: else the pid may belong to another.
    if (auto valid = notify.id_valid(n.id); !valid || !*valid) {
        for (unsigned i = 0; i < shown; ++i)
            args[i] = hex(n.args[i]);
    }
    std::string s = name + "(";
    for (std::size_t i = 0; i < args.size(); ++i)
        s += (i ? ", " : "") + args[i];
    if (!shape) s += ", ...";
    return s + ")";
}

}  // namespace butter::launcher::seccomp
