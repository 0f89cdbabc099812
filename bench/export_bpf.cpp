// export_bpf [PROFILE]: writes the seccomp program butter would load for a profile (raw
// struct sock_filter array, as bwrap --seccomp FD reads it), so peers run the same filter.
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "profile/loader.hpp"
#include "seccomp/policy.hpp"

int main(int argc, char** argv) {
    using namespace butter::launcher;
    std::optional<std::string> spec;
    if (argc > 1) spec = argv[1];
    profile::Loaded l = profile::load(spec, {});
    profile::Diagnostics d = l.diagnostics;
    auto c = l.ok() ? seccomp::compile(l.profile, d) : std::nullopt;
    if (!c || c->program.empty()) {
        for (const auto& x : d)
            std::fprintf(stderr, "%s\n", x.render().c_str());
        return 1;
    }
    const auto* p = reinterpret_cast<const char*>(c->program.data());
    std::size_t n = c->program.size() * sizeof(c->program[0]);
    return ::write(1, p, n) == static_cast<ssize_t>(n) ? 0 : 1;
}
