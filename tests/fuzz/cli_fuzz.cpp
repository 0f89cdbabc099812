// Fuzz target: the command-line parser, and the --set overrides it collects. Input: the
// arguments, separated by NUL bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "profile/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace butter::launcher;
    std::vector<std::string> argv{"butter"};
    std::string cur;
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            argv.push_back(std::move(cur));
            cur.clear();
        } else {
            cur.push_back(static_cast<char>(data[i]));
        }
    }
    if (size) argv.push_back(std::move(cur));

    auto cli = parse_cli(argv);
    if (!cli) {
        // Every refusal names what it refuses, on one line.
        std::string msg = cli.error().what();
        bool multiline_input = false;
        for (const auto& a : argv)
            multiline_input = multiline_input || a.find('\n') != std::string::npos;
        if (msg.empty() || (!multiline_input && msg.find('\n') != std::string::npos)) {
            std::fprintf(stderr, "cli_fuzz: bad error message '%s'\n", msg.c_str());
            std::abort();
        }
        return 0;
    }
    if (cli->sets.empty()) return 0;
    profile::LoadOptions o;
    o.search_path = {};
    o.overrides = cli->sets;
    o.expansion = {"/work", "/home/fuzz", "1000"};
    profile::Loaded l = profile::load(std::nullopt, o);
    if (!l.ok()) return 0;
    (void)profile::show_profile(l.profile);
    return 0;
}
