#include "butter/loop.hpp"
#include "butter/task.hpp"

#include <cstdio>
#include <cstdlib>

#include <sys/epoll.h>

#include <array>
#include <list>
#include <unordered_map>

#include "sys.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<IoEvent>, 8> kNames{{
    {IoEvent::In, "In"},
    {IoEvent::Out, "Out"},
    {IoEvent::Pri, "Pri"},
    {IoEvent::Err, "Err"},
    {IoEvent::Hup, "Hup"},
    {IoEvent::RdHup, "RdHup"},
    {IoEvent::Edge, "Edge"},
    {IoEvent::OneShot, "OneShot"},
}};
constexpr int kMaxEvents = 64;
}  // namespace

std::span<const FlagName<IoEvent>> flag_names(IoEvent) {
    return kNames;
}

struct EventLoop::State {
    struct Entry {
        int fd;
        Callback callback;
    };
    Fd epoll;
    std::uint64_t next_id = 1;
    // shared_ptr: a callback may remove its own entry while it runs.
    std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> entries;
    std::deque<std::function<void()>> ready;
    std::list<Task<void>> tasks;
    bool stopped = false;

    void remove(std::uint64_t id, int fd) {
        // The fd may already be closed (and so gone from the epoll set): nothing to report.
        ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
        entries.erase(id);
    }
    void reap_tasks() {
        for (auto it = tasks.begin(); it != tasks.end();)
            it = it->done() ? tasks.erase(it) : ++it;
    }
};

EventLoop::Registration::Registration(Registration&& o) noexcept
    : state_(std::move(o.state_)), id_(o.id_), fd_(o.fd_) {
    o.state_.reset();
}

EventLoop::Registration& EventLoop::Registration::operator=(Registration&& o) noexcept {
    if (this != &o) {
        reset();
        state_ = std::move(o.state_);
        o.state_.reset();
        id_ = o.id_;
        fd_ = o.fd_;
    }
    return *this;
}

void EventLoop::Registration::reset() {
    if (auto s = state_.lock()) s->remove(id_, fd_);
    state_.reset();
}

Result<void> EventLoop::Registration::modify(IoEvents events) {
    auto state = state_.lock();
    if (!state) return fail(Error("epoll_ctl(EPOLL_CTL_MOD)", EBADF, "the loop is gone"));
    struct epoll_event ev {};
    ev.events = events.raw();
    ev.data.u64 = id_;
    if (::epoll_ctl(state->epoll.get(), EPOLL_CTL_MOD, fd_, &ev) < 0)
        return fail_errno("epoll_ctl(EPOLL_CTL_MOD)", "fd " + std::to_string(fd_));
    return {};
}

EventLoop::EventLoop(std::shared_ptr<State> s) : s_(std::move(s)) {}
EventLoop::EventLoop(EventLoop&&) noexcept = default;
EventLoop& EventLoop::operator=(EventLoop&&) noexcept = default;
EventLoop::~EventLoop() = default;

Result<EventLoop> EventLoop::create() {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return fail_errno("epoll_create1");
    auto s = std::make_shared<State>();
    s->epoll = Fd(fd);
    return EventLoop(std::move(s));
}

int EventLoop::fd() const {
    return s_->epoll.get();
}

Result<EventLoop::Registration> EventLoop::add(BorrowedFd fd, IoEvents events, Callback callback) {
    std::uint64_t id = s_->next_id++;
    struct epoll_event ev {};
    ev.events = events.raw();
    ev.data.u64 = id;
    if (::epoll_ctl(s_->epoll.get(), EPOLL_CTL_ADD, fd.get(), &ev) < 0)
        return fail_errno("epoll_ctl(EPOLL_CTL_ADD)", "fd " + std::to_string(fd.get()));
    s_->entries.emplace(
        id, std::make_shared<State::Entry>(State::Entry{fd.get(), std::move(callback)}));
    return Registration(s_, id, fd.get());
}

void EventLoop::call_soon(std::function<void()> fn) {
    s_->ready.push_back(std::move(fn));
}
void EventLoop::call_soon(std::coroutine_handle<> h) {
    s_->ready.push_back([h] { h.resume(); });
}

void EventLoop::adopt(Task<void> task) {
    s_->tasks.push_back(std::move(task));
}

void EventLoop::spawn(Task<void> task) {
    std::coroutine_handle<> h = task.handle();
    adopt(std::move(task));
    call_soon(h);
}

std::size_t EventLoop::live_tasks() const {
    std::size_t n = 0;
    for (const auto& t : s_->tasks)
        n += t.done() ? 0 : 1;
    return n;
}

void EventLoop::stop() {
    s_->stopped = true;
}
bool EventLoop::stopped() const {
    return s_->stopped;
}

Result<void> EventLoop::run_once(int timeout_ms) {
    return iterate(timeout_ms, nullptr);
}

Result<void> EventLoop::iterate(int timeout_ms, const std::function<bool()>* done) {
    // Only what is ready now: callbacks queued while these run wait for the next iteration, so
    // a coroutine that keeps rescheduling itself cannot starve the fds.
    for (std::size_t n = s_->ready.size(); n > 0 && !s_->ready.empty(); --n) {
        auto fn = std::move(s_->ready.front());
        s_->ready.pop_front();
        fn();
    }
    s_->reap_tasks();
    if (done && (s_->stopped || (*done)())) return {};
    if (!s_->ready.empty()) timeout_ms = 0;
    std::array<struct epoll_event, kMaxEvents> events;
    int n = ::epoll_wait(s_->epoll.get(), events.data(), kMaxEvents, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return {};
        return fail_errno("epoll_wait");
    }
    for (const struct epoll_event& ev : std::span(events.data(), static_cast<std::size_t>(n))) {
        auto it = s_->entries.find(ev.data.u64);
        if (it == s_->entries.end()) continue;  // removed by an earlier callback
        std::shared_ptr<State::Entry> entry = it->second;
        entry->callback(IoEvents::from_raw(ev.events));
    }
    return {};
}

Result<void> EventLoop::run() {
    return run_until([] { return false; });
}

Result<void> EventLoop::run_until(const std::function<bool()>& done) {
    s_->stopped = false;
    while (!s_->stopped && !done())
        BUTTER_TRY(iterate(-1, &done));
    return {};
}

namespace detail {
void empty_task_awaited() noexcept {
    std::fprintf(stderr, "butter: awaited a Task that holds no coroutine\n");
    std::abort();
}
}  // namespace detail

}  // namespace butter
