#include "butter/signalfd.hpp"

#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <pthread.h>
#include <array>
#include <charconv>

#include "sys.hpp"

namespace butter {

namespace {
constexpr std::array<FlagName<SignalFdFlag>, 1> kNames{{{SignalFdFlag::NonBlock, "NonBlock"}}};
constexpr std::size_t kBatch = 16;  // signals per read(2)

SignalInfo decode(const struct signalfd_siginfo& s) {
    SignalInfo i;
    i.signo = static_cast<int>(s.ssi_signo);
    i.code = s.ssi_code;
    i.pid = static_cast<pid_t>(s.ssi_pid);
    i.uid = s.ssi_uid;
    i.status = s.ssi_status;
    i.error = s.ssi_errno;
    i.value = static_cast<std::int64_t>(s.ssi_ptr);
    i.addr = s.ssi_addr;
    i.fd = s.ssi_fd;
    return i;
}
}  // namespace

std::span<const FlagName<SignalFdFlag>> flag_names(SignalFdFlag) {
    return kNames;
}

SignalSet::SignalSet(std::initializer_list<int> signals) : SignalSet() {
    for (int s : signals)
        add(s);
}

SignalSet SignalSet::full() {
    SignalSet s;
    sigfillset(&s.set_);
    return s;
}

std::string signal_name(int sig) {
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        return sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
    }
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Result<int> parse_signal(std::string_view text) {
    auto bad = [&] {
        return fail(Error::message("parse_signal", "unknown signal", std::string(text)));
    };
    if (text.empty()) return bad();
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size()) {
        if (n < 1 || n > SIGRTMAX) return bad();
        return n;
    }
    std::string_view name = text;
    if (name.starts_with("SIG")) name.remove_prefix(3);
    if (name.starts_with("RTMIN")) {
        std::string_view rest = name.substr(5);
        int off = 0;
        if (!rest.empty()) {
            if (rest[0] != '+') return bad();
            auto [e, c] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), off);
            if (c != std::errc() || e != rest.data() + rest.size()) return bad();
        }
        if (SIGRTMIN + off > SIGRTMAX) return bad();
        return SIGRTMIN + off;
    }
    for (int s = 1; s < SIGRTMIN; ++s) {
        const char* abbrev = sigabbrev_np(s);
        if (abbrev && name == abbrev) return s;
    }
    return bad();
}

Result<SignalMaskGuard> SignalMaskGuard::block(const SignalSet& set) {
    SignalMaskGuard g;
    int r = ::pthread_sigmask(SIG_BLOCK, &set.native(), &g.old_);
    if (r != 0) return fail(Error("pthread_sigmask", r));
    g.active_ = true;
    return g;
}

SignalMaskGuard::~SignalMaskGuard() {
    if (active_) ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

std::string SignalInfo::to_string() const {
    std::string s = signal_name(signo);
    if (pid != 0) s += " from pid " + std::to_string(pid) + " (uid " + std::to_string(uid) + ")";
    return s;
}

Result<SignalFd> SignalFd::create(const SignalSet& set, Flags<SignalFdFlag> flags) {
    int fd = ::signalfd(-1, &set.native(), SFD_CLOEXEC | flags.raw());
    if (fd < 0) return fail_errno("signalfd");
    return SignalFd(Fd(fd));
}

Result<void> SignalFd::set_mask(const SignalSet& set) {
    if (::signalfd(fd_.get(), &set.native(), 0) < 0) return fail_errno("signalfd");
    return {};
}

Result<bool> SignalFd::fill() {
    std::array<struct signalfd_siginfo, kBatch> raw;
    ssize_t n = sys::retry_eintr([&] { return ::read(fd_.get(), raw.data(), sizeof raw); });
    if (n < 0) {
        if (errno == EAGAIN) return false;
        return fail_errno("read(signalfd)");
    }
    pending_.clear();
    next_ = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof raw[0]; ++i)
        pending_.push_back(decode(raw[i]));
    return true;
}

Result<std::optional<SignalInfo>> SignalFd::read_event() {
    if (next_ == pending_.size()) {
        BUTTER_ASSIGN_OR_RETURN(bool got, fill());
        if (!got) return std::optional<SignalInfo>();
    }
    return std::optional<SignalInfo>(pending_[next_++]);
}

Result<std::vector<SignalInfo>> SignalFd::read_events() {
    if (next_ == pending_.size()) {
        BUTTER_ASSIGN_OR_RETURN(bool got, fill());
        if (!got) return std::vector<SignalInfo>();
    }
    std::vector<SignalInfo> out(pending_.begin() + static_cast<std::ptrdiff_t>(next_),
                                pending_.end());
    pending_.clear();
    next_ = 0;
    return out;
}

}  // namespace butter
