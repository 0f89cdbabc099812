// sandbox_jobs: run each argument as a shell command in a sandbox of its own, all at once, and
// print how each ended -- a CI runner's core in 60 lines, on butter/sandbox.hpp.
//
//     sandbox_jobs [-p PROFILE] [-t SECONDS] 'make test' 'cargo test' ...
//
// Each job gets the profile (the built-in default without -p), the current directory as its
// workspace where the profile binds $PWD, and a time limit (-t); its output goes to ours.
#include <butter/loop.hpp>
#include <butter/sandbox.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

butter::Task<int> run_all(butter::EventLoop& loop, const butter::SandboxProfile& profile,
                          const std::vector<std::string>& jobs, int seconds) {
    std::vector<butter::Sandbox> boxes;
    for (const std::string& job : jobs) {
        butter::SandboxOptions o;
        o.command = {"/bin/sh", "-c", job};
        if (seconds > 0) o.timeout = std::chrono::seconds(seconds);
        o.on_log = [job](std::string_view line) {
            std::fprintf(stderr, "[%s] %.*s\n", job.c_str(), static_cast<int>(line.size()),
                         line.data());
        };
        auto box = butter::Sandbox::create(profile, std::move(o));
        if (!box) {
            std::fprintf(stderr, "%s: %s\n", job.c_str(), box.error().what().c_str());
            co_return 125;
        }
        if (auto r = box->start(loop); !r) {
            std::fprintf(stderr, "%s: %s\n", job.c_str(), r.error().what().c_str());
            co_return 125;
        }
        boxes.push_back(std::move(*box));
    }
    int worst = 0;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        auto outcome = co_await boxes[i].wait();
        int status = outcome ? outcome->exit_status() : 125;
        double secs = outcome ? std::chrono::duration<double>(outcome->wall).count() : 0;
        std::printf("%-30s status %3d  %.2f s%s%s\n", jobs[i].c_str(), status, secs,
                    outcome ? "" : "  ", outcome ? "" : outcome.error().what().c_str());
        worst = std::max(worst, status);
    }
    co_return worst;
}

}  // namespace

int main(int argc, char** argv) {
    std::string profile_name;
    int seconds = 0;
    std::vector<std::string> jobs;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-p" && i + 1 < argc)
            profile_name = argv[++i];
        else if (a == "-t" && i + 1 < argc)
            seconds = std::atoi(argv[++i]);
        else
            jobs.push_back(a);
    }
    if (jobs.empty()) {
        std::fprintf(stderr, "usage: sandbox_jobs [-p PROFILE] [-t SECONDS] COMMAND...\n");
        return 2;
    }
    auto profile = profile_name.empty()
                       ? butter::Result<butter::SandboxProfile>(butter::SandboxProfile::builtin())
                       : butter::SandboxProfile::load(profile_name);
    if (!profile) {
        std::fprintf(stderr, "%s\n", profile.error().what().c_str());
        return 2;
    }
    auto loop = butter::EventLoop::create();
    if (!loop) return 125;
    auto worst = loop->run_until_complete(run_all(*loop, *profile, jobs, seconds));
    return worst ? *worst : 125;
}
