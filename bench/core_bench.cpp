// Google Benchmark for core/: each butter wrapper beside the same work done with raw syscalls,
// so the ratio (goal: within 5%) is measured in one run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <butter/eventfd.hpp>
#include <butter/inotify.hpp>
#include <butter/timerfd.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

void BM_EventFdRoundTrip_Butter(benchmark::State& state) {
    auto e = butter::EventFd::create(0, butter::EventFdFlag::NonBlock);
    for (auto _ : state) {
        (void)e->write(1);
        auto v = e->read_event();
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_EventFdRoundTrip_Butter);

void BM_EventFdRoundTrip_Raw(benchmark::State& state) {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (auto _ : state) {
        std::uint64_t v = 1;
        benchmark::DoNotOptimize(::write(fd, &v, sizeof v));
        benchmark::DoNotOptimize(::read(fd, &v, sizeof v));
    }
    ::close(fd);
}
BENCHMARK(BM_EventFdRoundTrip_Raw);

void BM_TimerFdArmRead_Butter(benchmark::State& state) {
    auto t = butter::TimerFd::create(butter::Clock::Monotonic, butter::TimerFdFlag::NonBlock);
    for (auto _ : state) {
        (void)t->set_absolute(std::chrono::nanoseconds(1));  // already expired: readable at once
        auto n = t->read_event();
        benchmark::DoNotOptimize(n);
    }
}
BENCHMARK(BM_TimerFdArmRead_Butter);

void BM_TimerFdArmRead_Raw(benchmark::State& state) {
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec its {};
    its.it_value.tv_nsec = 1;
    for (auto _ : state) {
        ::timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, nullptr);
        std::uint64_t n;
        benchmark::DoNotOptimize(::read(fd, &n, sizeof n));
    }
    ::close(fd);
}
BENCHMARK(BM_TimerFdArmRead_Raw);

// inotify throughput: each iteration creates and removes `kFiles` files (2 events each) and
// reads every event back; items/s counts events.
constexpr int kFiles = 256;

std::string make_dir() {
    std::string templ = std::filesystem::temp_directory_path().string() + "/butter-bench.XXXXXX";
    if (!::mkdtemp(templ.data())) std::abort();
    return templ;
}

void churn(const std::string& dir) {
    for (int i = 0; i < kFiles; ++i) {
        std::string p = dir + "/" + std::to_string(i);
        ::close(::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        ::unlink(p.c_str());
    }
}

void BM_InotifyReadEvents_Butter(benchmark::State& state) {
    std::string dir = make_dir();
    auto in = butter::Inotify::create(butter::InotifyFlag::NonBlock);
    (void)in->add_watch(dir, butter::InotifyMask::Create | butter::InotifyMask::Delete);
    std::size_t events = 0;
    for (auto _ : state) {
        churn(dir);
        for (;;) {
            auto evs = in->read_events();
            if (!evs || evs->empty()) break;
            events += evs->size();
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    std::filesystem::remove_all(dir);
}
BENCHMARK(BM_InotifyReadEvents_Butter);

void BM_InotifyReadEvents_Raw(benchmark::State& state) {
    std::string dir = make_dir();
    int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_DELETE);
    alignas(struct inotify_event) char buf[64 * 1024];
    std::size_t events = 0;
    for (auto _ : state) {
        churn(dir);
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(p);
                std::string name(ev->len ? ev->name : "");  // the same copy butter makes
                benchmark::DoNotOptimize(name);
                ++events;
                p += sizeof *ev + ev->len;
            }
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    ::close(fd);
    std::filesystem::remove_all(dir);
}
BENCHMARK(BM_InotifyReadEvents_Raw);

}  // namespace

BENCHMARK_MAIN();
