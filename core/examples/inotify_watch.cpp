// inotify_watch DIR...: prints every inotify event under the given directories until SIGINT or
// SIGTERM, using Async<Inotify> and Async<SignalFd> on one EventLoop.
#include <butter/inotify.hpp>
#include <butter/loop.hpp>
#include <butter/signalfd.hpp>

#include <cstdio>

namespace {

butter::Task<void> print_events(butter::Async<butter::Inotify>& watch) {
    for (;;) {
        butter::Result<butter::InotifyEvent> ev = co_await watch.next();
        if (!ev) {
            std::fprintf(stderr, "inotify_watch: %s\n", ev.error().what().c_str());
            co_return;
        }
        std::printf("%s\n", ev->to_string().c_str());
        std::fflush(stdout);
    }
}

butter::Task<int> wait_for_stop(butter::Async<butter::SignalFd>& signals) {
    butter::Result<butter::SignalInfo> sig = co_await signals.next();
    if (!sig) co_return 1;
    std::fprintf(stderr, "inotify_watch: %s, stopping\n", sig->to_string().c_str());
    co_return 0;
}

butter::Result<int> run(int argc, char** argv) {
    BUTTER_ASSIGN_OR_RETURN(auto loop, butter::EventLoop::create());
    BUTTER_ASSIGN_OR_RETURN(auto inotify, butter::Inotify::create());
    for (int i = 1; i < argc; ++i)
        BUTTER_TRY(inotify.add_watch(argv[i], butter::kInotifyAllEvents));
    butter::SignalSet stop_signals{SIGINT, SIGTERM};
    BUTTER_ASSIGN_OR_RETURN(auto blocked, butter::SignalMaskGuard::block(stop_signals));
    BUTTER_ASSIGN_OR_RETURN(auto sigfd, butter::SignalFd::create(stop_signals));
    BUTTER_ASSIGN_OR_RETURN(auto watch,
                            butter::Async<butter::Inotify>::create(loop, std::move(inotify)));
    BUTTER_ASSIGN_OR_RETURN(auto signals,
                            butter::Async<butter::SignalFd>::create(loop, std::move(sigfd)));
    loop.spawn(print_events(watch));
    return loop.run_until_complete(wait_for_stop(signals));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: inotify_watch DIR...\n");
        return 2;
    }
    butter::Result<int> r = run(argc, argv);
    if (!r) {
        std::fprintf(stderr, "inotify_watch: %s\n", r.error().what().c_str());
        return 1;
    }
    return *r;
}
