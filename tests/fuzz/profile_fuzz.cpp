// Fuzz target: the profile reader, validator and planner. Input: the text of a profile.
// Properties checked beyond "no crash, no sanitizer report":
//   - a profile that loads shows as TOML that loads back to the same shown text;
//   - its seccomp policy compiles or fails with a diagnostic, never silently;
//   - planning it either succeeds or explains why.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../support/fake_host.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "seccomp/policy.hpp"

namespace {

using namespace butter::launcher;

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "profile_fuzz: %s\n%s\n", what, detail.c_str());
    std::abort();
}

profile::LoadOptions options() {
    profile::LoadOptions o;
    // Only the embedded default: `extends` must not wander over the host's files.
    o.search_path = {};
    o.expansion = {"/work", "/home/fuzz", "1000"};
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    const profile::LoadOptions o = options();
    profile::Loaded l = profile::load_text(text, "fuzz.toml", o);
    for (const auto& d : l.diagnostics)
        if (d.render().empty()) fail("empty diagnostic", std::string(text));
    if (!l.ok()) return 0;

    std::string shown = profile::show_profile(l.profile);
    profile::Loaded again = profile::load_text(shown, "shown.toml", o);
    if (!again.ok()) {
        std::string why;
        for (const auto& d : again.diagnostics)
            why += d.render() + "\n";
        fail("the shown profile does not load back", shown + "\n---\n" + why);
    }
    if (profile::show_profile(again.profile) != shown)
        fail("show -> load -> show is not stable", shown);

    profile::Diagnostics d;
    auto compiled = seccomp::compile(l.profile, d);
    if (!compiled && !profile::has_errors(d)) fail("seccomp compile failed silently", shown);

    // The whole plan against hosts of the fuzzer's making (fake_host.hpp): root and not, with
    // Landlock and without; nothing of this machine is read.
    for (bool privileged : {true, false}) {
        butter::test::FakeHost host;
        host.root_ = privileged;
        if (privileged) host.uid_ = host.gid_ = 0;
        if (text.size() % 2) host.scopes = {};
        profile::Diagnostics pd;
        PlanOptions po;
        po.argv = {"/bin/true"};
        po.host = &host;
        auto plan = make_plan(l.profile, po, pd);
        if (!plan && !profile::has_errors(pd)) fail("make_plan failed silently", shown);
    }
    return 0;
}
