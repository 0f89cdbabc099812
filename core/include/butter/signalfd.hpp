// Signals as events: SignalSet (a sigset_t value), SignalMaskGuard (a scoped block), and
// SignalFd (signalfd(2)), an event-like object delivering SignalInfo values.
//
// A signal is only delivered through a signalfd while it is blocked in every thread; block it
// first (SignalMaskGuard), then read it from the SignalFd.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

class SignalSet {
  public:
    SignalSet() { sigemptyset(&set_); }
    SignalSet(std::initializer_list<int> signals);
    static SignalSet full();

    SignalSet& add(int sig) { return sigaddset(&set_, sig), *this; }
    SignalSet& remove(int sig) { return sigdelset(&set_, sig), *this; }
    bool contains(int sig) const { return sigismember(&set_, sig) == 1; }
    bool empty() const { return sigisemptyset(&set_) == 1; }
    const sigset_t& native() const { return set_; }

  private:
    sigset_t set_;
};

// "SIGTERM" for 15, "SIGRTMIN+2" for real-time signals, "signal 99" for junk.
std::string signal_name(int sig);
// "SIGTERM", "TERM", "15" and "SIGRTMIN+2" -> the number; an Error naming the text otherwise.
[[nodiscard]] Result<int> parse_signal(std::string_view text);

// Blocks a set of signals in the calling thread (pthread_sigmask) for its lifetime and restores
// the previous mask on destruction. Move-only.
class SignalMaskGuard {
  public:
    [[nodiscard]] static Result<SignalMaskGuard> block(const SignalSet& set);
    SignalMaskGuard(SignalMaskGuard&& o) noexcept : old_(o.old_), active_(o.active_) {
        o.active_ = false;
    }
    SignalMaskGuard& operator=(SignalMaskGuard&&) = delete;
    SignalMaskGuard(const SignalMaskGuard&) = delete;
    ~SignalMaskGuard();
    // The mask that was in place before the block (what a child should get back before exec).
    const sigset_t& previous() const { return old_; }

  private:
    SignalMaskGuard() = default;
    sigset_t old_{};
    bool active_ = false;
};

enum class SignalFdFlag : int { NonBlock = SFD_NONBLOCK };
std::span<const FlagName<SignalFdFlag>> flag_names(SignalFdFlag);

// One signal as signalfd delivers it (struct signalfd_siginfo, with named fields).
struct SignalInfo {
    int signo = 0;
    int code = 0;                   // si_code: SI_USER, SI_QUEUE, CLD_EXITED, ...
    pid_t pid = 0;                  // sender (or the child, for SIGCHLD)
    uid_t uid = 0;                  // sender's real uid
    int status = 0;                 // SIGCHLD: exit code or signal
    int error = 0;                  // si_errno
    std::int64_t value = 0;         // sigqueue's value (si_int / si_ptr)
    std::uint64_t addr = 0;         // faulting address for SIGSEGV/SIGBUS/...
    int fd = -1;                    // SIGIO
    std::string to_string() const;  // "SIGTERM from pid 12 (uid 0)"
};

class SignalFd {
  public:
    using Event = SignalInfo;
    // signalfd(-1, set, SFD_CLOEXEC | flags). The signals must also be blocked to arrive here.
    [[nodiscard]] static Result<SignalFd> create(const SignalSet& set,
                                                 Flags<SignalFdFlag> flags = {});
    // Replaces the set of signals this fd accepts.
    [[nodiscard]] Result<void> set_mask(const SignalSet& set);

    [[nodiscard]] Result<std::optional<SignalInfo>> read_event();
    [[nodiscard]] Result<std::vector<SignalInfo>> read_events();
    std::size_t buffered() const { return pending_.size() - next_; }
    int fd() const { return fd_.get(); }

  private:
    explicit SignalFd(Fd fd) : fd_(std::move(fd)) {}
    Result<bool> fill();
    Fd fd_;
    std::vector<SignalInfo> pending_;
    std::size_t next_ = 0;
};

}  // namespace butter
