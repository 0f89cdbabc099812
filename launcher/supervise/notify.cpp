#include "supervise/notify.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace butter::launcher {

bool relayed_notify_line(std::string_view line) {
    // sd_notify(3)'s assignments about the service's own state; not MAINPID= (butter stays
    // the main process), NOTIFYACCESS= (who else may send), or anything unknown.
    static constexpr std::string_view kRelayed[] = {
        "READY=",       "RELOADING=",     "STOPPING=",      "MONOTONIC_USEC=",
        "STATUS=",      "ERRNO=",         "BUSERROR=",      "VARLINKERROR=",
        "EXIT_STATUS=", "WATCHDOG=",      "WATCHDOG_USEC=", "EXTEND_TIMEOUT_USEC=",
        "FDSTORE=",     "FDSTOREREMOVE=", "FDNAME=",        "FDPOLL=",
        "BARRIER="};
    if (line.find('\0') != std::string_view::npos) return false;
    for (std::string_view k : kRelayed)
        if (line.starts_with(k)) return true;
    return false;
}

int socket_activation_fds(std::string& why) {
    why.clear();
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (!fds) return 0;
    char* end = nullptr;
    long n = std::strtol(fds, &end, 10);
    if (!pid || std::strtol(pid, nullptr, 10) != ::getpid()) {
        why = "LISTEN_PID is not butter's pid";
        return 0;
    }
    if (end == fds || *end != '\0' || n < 0 || n > 1000) {
        why = std::string("LISTEN_FDS=") + fds + " is not a count";
        return 0;
    }
    for (int fd = 3; fd < 3 + n; ++fd) {
        struct stat st {};
        if (::fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            why = "LISTEN_FDS=" + std::to_string(n) + ", but fd " + std::to_string(fd) +
                  " is not an open socket";
            return 0;
        }
    }
    return static_cast<int>(n);
}

namespace {

// The kernel's most fds in one message (SCM_MAX_FD).
constexpr std::size_t kScmMaxFd = 253;

// The sandbox's fds, closed so that no close of the supervisor's is the last one: the last
// close of a TCP socket with SO_LINGER set (or of a socket holding one in flight) waits up to
// its linger time for data its peer never reads, and would hold the loop (the time limit and
// SIGTERM with it). A forked child holds copies until ours are closed, then exits: an exiting
// process's close never lingers.
void close_elsewhere(std::vector<Fd>& fds) {
    if (fds.empty()) return;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(p[1]);
            char c;
            while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
            }
            ::_exit(0);
        }
        ::close(p[0]);
        fds.clear();    // (not the last references while the child lives)
        ::close(p[1]);  // the child exits with the last ones
        if (pid > 0) (void)::waitpid(pid, nullptr, 0);
    }
    fds.clear();
}

// A message's fds, closed elsewhere whatever becomes of the message.
struct HeldFds {
    std::vector<Fd> fds;
    HeldFds() = default;
    HeldFds(const HeldFds&) = delete;
    HeldFds& operator=(const HeldFds&) = delete;
    ~HeldFds() { close_elsewhere(fds); }
};

}  // namespace

Result<std::optional<NotifyRelay>> NotifyRelay::create() {
    const char* target = std::getenv("NOTIFY_SOCKET");
    if (!target || !*target) return std::optional<NotifyRelay>();
    NotifyRelay r;
    // systemd's socket: a path, or an abstract name written with a leading '@'.
    std::size_t len = std::strlen(target);
    if (len >= sizeof r.target_.sun_path)
        return fail(Error::message("NOTIFY_SOCKET", "path too long", target));
    r.target_.sun_family = AF_UNIX;
    std::memcpy(r.target_.sun_path, target, len);
    if (target[0] == '@') r.target_.sun_path[0] = '\0';
    r.target_len_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);

    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail_errno("socket(AF_UNIX)");
    r.sock_ = Fd(fd);
    return std::optional<NotifyRelay>(std::move(r));
}

NotifyRelay::NotifyRelay(NotifyRelay&& o) noexcept
    : sock_(std::move(o.sock_)),
      in_(std::move(o.in_)),
      loop_(o.loop_),
      in_sandbox_(std::move(o.in_sandbox_)),
      target_(o.target_),
      target_len_(o.target_len_),
      reg_(std::move(o.reg_)),
      log_(std::move(o.log_)) {}

NotifyRelay::~NotifyRelay() {
    reg_.reset();
    HeldFds last;  // the sandbox's socket, with what it still holds in flight
    if (in_.valid()) last.fds.push_back(std::move(in_));
}

void NotifyRelay::start(EventLoop& loop, std::function<bool(pid_t)> in_sandbox,
                        std::function<void(const std::string&)> log) {
    loop_ = &loop;
    in_sandbox_ = std::move(in_sandbox);
    log_ = std::move(log);
}

Result<void> NotifyRelay::adopt(Fd sandbox_socket) {
    if (!loop_) return fail(Error::message("notify", "the relay has not started"));
    relay();  // what the last sandbox left queued
    reg_.reset();
    HeldFds old;  // (with what it still holds in flight)
    if (in_.valid()) old.fds.push_back(std::move(in_));
    in_ = std::move(sandbox_socket);
    BUTTER_TRY(set_nonblocking(in_.get(), true));
    BUTTER_ASSIGN_OR_RETURN(reg_, loop_->add(in_, IoEvent::In, [this](IoEvents) { relay(); }));
    return {};
}

namespace {

// The descriptors and the sender's credentials of a received message.
void take_control(struct msghdr& m, std::vector<Fd>& fds, std::optional<struct ucred>& cred) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred u;
            std::memcpy(&u, CMSG_DATA(c), sizeof u);
            cred = u;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                fds.emplace_back(fd);
            }
        }
    }
}

// Lines as systemd splits them (on '\n' and '\r'), and only those that speak of the service
// itself: the relay sends as butter, whom systemd believes (as root, even a MAINPID= naming
// any host process, which a stop would then signal).
std::string relayed_lines(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        std::string_view line = in.substr(0, in.find_first_of("\n\r"));
        in.remove_prefix(std::min(line.size() + 1, in.size()));
        if (relayed_notify_line(line)) out.append(line).append(1, '\n');
    }
    return out;
}

}  // namespace

void NotifyRelay::forward(const std::string& text, const std::vector<Fd>& fds) {
    std::string out = text;
    struct iovec iov {
        out.data(), out.size()
    };
    struct msghdr o {};
    o.msg_name = &target_;
    o.msg_namelen = target_len_;
    o.msg_iov = &iov;
    o.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    if (!fds.empty()) {
        o.msg_control = control;
        o.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        struct cmsghdr* c = CMSG_FIRSTHDR(&o);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        for (std::size_t i = 0; i < fds.size(); ++i) {
            int fd = fds[i].get();
            std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
        }
    }
    // Datagrams to systemd: a full queue loses this one, never stalls the supervisor.
    (void)::sendmsg(sock_.get(), &o, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (log_) log_(out);
}

void NotifyRelay::relay() {
    std::vector<char> buf;
    auto drop = [&](const std::string& why) {
        if (log_) log_("dropped: " + why);
    };
    if (!in_.valid()) return;
    for (;;) {
        // The datagram's whole size first: read cut at a buffer's end, its tail could pass
        // for a message of its own ("...\nREADY=1").
        ssize_t size = ::recv(in_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
        if (size < 0) return;  // EAGAIN: none left
        buf.resize(std::min<std::size_t>(static_cast<std::size_t>(size), kMaxDatagram) + 1);
        struct iovec iov {
            buf.data(), buf.size()
        };
        // Room for every fd a datagram can carry: one the kernel dropped for want of room would
        // be closed here, not elsewhere.
        alignas(struct cmsghdr) char
            control[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * kScmMaxFd)];
        struct msghdr m {};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(in_.get(), &m, MSG_CMSG_CLOEXEC);
        if (n < 0) return;
        HeldFds held;
        std::vector<Fd>& fds = held.fds;
        std::optional<struct ucred> cred;
        take_control(m, fds, cred);
        if (static_cast<std::size_t>(size) > kMaxDatagram || fds.size() > kMaxFds ||
            (m.msg_flags & MSG_CTRUNC)) {
            drop(std::to_string(size) + " bytes" +
                 (fds.size() > kMaxFds || (m.msg_flags & MSG_CTRUNC) ? " with too many fds" : ""));
            continue;
        }
        if (!cred || !in_sandbox_ || !in_sandbox_(cred->pid)) {
            drop("a sender outside the sandbox (pid " + std::to_string(cred ? cred->pid : 0) + ")");
            continue;
        }
        std::string out = relayed_lines(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        if (!out.empty()) forward(out, fds);
    }
}

}  // namespace butter::launcher
