// sd_notify pass-through for Type=notify units. The sandbox gets a datagram socket that its
// child binds at /run/host/notify/notify in a tmpfs of the sandbox's own and hands to the
// supervisor (NOTIFY_SOCKET pointing there): no host path names it, so nothing outside the
// sandbox can send to it, whatever it has bound in; butter relays what arrives
// (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1, BARRIER=1 and FDSTORE=1 with their
// fds, ...) to systemd's NOTIFY_SOCKET as its own message, so systemd accepts it from the main
// pid. Only datagrams whose sender (SCM_CREDENTIALS) is in the sandbox are relayed, whole:
// one longer than kMaxDatagram is dropped, never cut. MAINPID= lines are dropped: butter stays
// the main pid. Without NOTIFY_SOCKET: nothing.
#pragma once

#include <sys/un.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Whether the relay passes a line of a sandbox's notify message on to systemd.
bool relayed_notify_line(std::string_view line);

class NotifyRelay {
  public:
    static constexpr const char* kInsideSocket = "/run/host/notify/notify";
    static constexpr std::size_t kMaxDatagram = 64 * 1024;
    static constexpr std::size_t kMaxFds = 16;

    // nullopt when butter itself has no NOTIFY_SOCKET.
    [[nodiscard]] static Result<std::optional<NotifyRelay>> create();
    NotifyRelay(NotifyRelay&&) noexcept;
    NotifyRelay& operator=(NotifyRelay&&) = delete;
    ~NotifyRelay();

    // From now on relays on `loop` every datagram of the sandbox's socket (adopt) whose sender
    // `in_sandbox` accepts (called with the sender's pid as butter sees it); `log` sees each
    // relayed message (for --verbose) and each dropped one (a line saying why).
    void start(EventLoop& loop, std::function<bool(pid_t)> in_sandbox,
               std::function<void(const std::string&)> log);
    // The socket a sandbox's child made (plan.notify_socket), in place of the last one's.
    [[nodiscard]] Result<void> adopt(Fd sandbox_socket);
    // Relays what is queued now: called once the sandbox's first process is gone, so a last
    // message sent just before it exited (STOPPING=1) is not left behind with the loop.
    void drain() { relay(); }

  private:
    NotifyRelay() = default;
    void relay();
    // `text` and `fds` on to the manager's socket.
    void forward(const std::string& text, const std::vector<Fd>& fds);
    Fd sock_;  // butter's own, to the manager
    Fd in_;    // the sandbox's
    EventLoop* loop_ = nullptr;
    std::function<bool(pid_t)> in_sandbox_;
    struct sockaddr_un target_ {};
    socklen_t target_len_ = 0;
    EventLoop::Registration reg_;
    std::function<void(const std::string&)> log_;
};

}  // namespace butter::launcher
