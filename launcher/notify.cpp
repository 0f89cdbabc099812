#include "notify.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace butter::launcher {

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

    const char* base = std::getenv("XDG_RUNTIME_DIR");
    std::string templ = std::string(base && *base == '/' ? base : "/tmp") + "/butter-notify.XXXXXX";
    if (!::mkdtemp(templ.data())) return fail_errno("mkdtemp", templ);
    r.dir_ = templ;
    ::chmod(r.dir_.c_str(), 0755);  // the sandbox's user (any uid) must reach the socket
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail_errno("socket(AF_UNIX)");
    r.sock_ = Fd(fd);
    struct sockaddr_un me {};
    me.sun_family = AF_UNIX;
    std::string path = r.dir_ + "/notify";
    if (path.size() >= sizeof me.sun_path)
        return fail(Error::message("bind", "path too long", path));
    std::memcpy(me.sun_path, path.c_str(), path.size());
    if (::bind(fd, reinterpret_cast<struct sockaddr*>(&me), sizeof me) < 0)
        return fail_errno("bind", path);
    if (::chmod(path.c_str(), 0666) < 0) return fail_errno("chmod", path);
    return std::optional<NotifyRelay>(std::move(r));
}

NotifyRelay::NotifyRelay(NotifyRelay&& o) noexcept
    : sock_(std::move(o.sock_)),
      dir_(std::move(o.dir_)),
      target_(o.target_),
      target_len_(o.target_len_),
      reg_(std::move(o.reg_)),
      log_(std::move(o.log_)) {
    o.dir_.clear();
}

NotifyRelay::~NotifyRelay() {
    if (dir_.empty()) return;
    ::unlink((dir_ + "/notify").c_str());
    ::rmdir(dir_.c_str());
}

Result<void> NotifyRelay::start(EventLoop& loop, std::function<void(const std::string&)> log) {
    log_ = std::move(log);
    BUTTER_ASSIGN_OR_RETURN(reg_, loop.add(sock_, IoEvent::In, [this](IoEvents) { relay(); }));
    return {};
}

void NotifyRelay::relay() {
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(sock_.get(), buf, sizeof buf, 0);
        if (n <= 0) return;
        std::string in(buf, static_cast<std::size_t>(n)), out;
        std::size_t start = 0;
        while (start < in.size()) {
            std::size_t end = in.find('\n', start);
            if (end == std::string::npos) end = in.size();
            std::string line = in.substr(start, end - start);
            start = end + 1;
            if (line.empty() || line.starts_with("MAINPID=")) continue;
            out += line + "\n";
        }
        if (out.empty()) continue;
        ::sendto(sock_.get(), out.data(), out.size(), MSG_NOSIGNAL,
                 reinterpret_cast<struct sockaddr*>(&target_), target_len_);
        if (log_) log_(out);
    }
}

}  // namespace butter::launcher
