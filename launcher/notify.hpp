// sd_notify pass-through for Type=notify units. The sandbox gets a datagram socket of
// butter's own (bound in at /run/host/notify/notify, NOTIFY_SOCKET pointing there); butter
// relays what arrives (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1, ...) to
// systemd's NOTIFY_SOCKET as its own message, so systemd accepts it from the main pid.
// MAINPID= lines are dropped: butter stays the main pid. Without NOTIFY_SOCKET: nothing.
#pragma once

#include <sys/un.h>

#include <functional>
#include <optional>
#include <string>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/loop.hpp>

namespace butter::launcher {

// systemd's socket activation, as butter was started: the number of fds from 3 that
// LISTEN_FDS names, when LISTEN_PID is this process and every one of them is an open socket
// now; else 0, and `why` says what did not hold (empty when nothing was asked). Called first
// thing in main, before butter opens a descriptor of its own: a forged LISTEN_FDS must never
// hand butter's own fds to the command.
int socket_activation_fds(std::string& why);

class NotifyRelay {
  public:
    static constexpr const char* kInsideDir = "/run/host/notify";
    static constexpr const char* kInsideSocket = "/run/host/notify/notify";

    // nullopt when butter itself has no NOTIFY_SOCKET.
    [[nodiscard]] static Result<std::optional<NotifyRelay>> create();
    NotifyRelay(NotifyRelay&&) noexcept;
    NotifyRelay& operator=(NotifyRelay&&) = delete;
    ~NotifyRelay();

    // The host directory holding the relay socket (bound into the sandbox).
    const std::string& dir() const { return dir_; }
    // Relays every datagram on the loop; `log` sees each relayed message (for --verbose).
    [[nodiscard]] Result<void> start(EventLoop& loop, std::function<void(const std::string&)> log);

  private:
    NotifyRelay() = default;
    void relay();
    Fd sock_;
    std::string dir_;
    struct sockaddr_un target_ {};
    socklen_t target_len_ = 0;
    EventLoop::Registration reg_;
    std::function<void(const std::string&)> log_;
};

}  // namespace butter::launcher
