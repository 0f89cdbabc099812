#include "pool/protocol.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <butter/unix_socket.hpp>

namespace butter::launcher::pool {

namespace {

void put(std::string& out, std::string_view s) {
    auto n = static_cast<std::uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(s);
}

// NUL-separated: argv and environment strings are C strings.
std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out.push_back('\0');
        out += v[i];
    }
    return out;
}

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    if (s.empty()) return out;
    for (;;) {
        auto nul = s.find('\0');
        out.emplace_back(s.substr(0, nul));
        if (nul == std::string_view::npos) return out;
        s.remove_prefix(nul + 1);
    }
}

Result<std::vector<std::string_view>> fields(std::string_view data, std::size_t count) {
    std::vector<std::string_view> out;
    while (!data.empty()) {
        std::uint32_t n = 0;
        if (data.size() < sizeof n) break;
        std::memcpy(&n, data.data(), sizeof n);
        data.remove_prefix(sizeof n);
        if (n > data.size()) break;
        out.push_back(data.substr(0, n));
        data.remove_prefix(n);
    }
    if (out.size() < count || out.size() > count + 1 || !data.empty())
        return fail(Error::message("pool", "a malformed message"));
    return out;
}

Error bad(const std::string& what) {
    return Error::message("pool", what);
}

}  // namespace

std::string encode_command(const Command& c) {
    std::string out;
    put(out, join(c.argv));
    put(out, join(c.env));
    put(out, join(c.candidates));
    put(out, c.cwd);
    put(out, c.report ? "1" : "0");
    if (c.context.set) {
        const ProcessContext& x = c.context;
        char um[8];
        std::snprintf(um, sizeof um, "%o", x.umask);
        std::string t = std::string(um) + " " + std::to_string(x.mask) + " " +
                        std::to_string(x.ignored) + " " + std::to_string(x.nice);
        for (const auto& [cur, max] : x.rlimits)
            t += " " + std::to_string(cur) + ":" + std::to_string(max);
        put(out, t);
    }
    return out;
}

Result<Command> decode_command(std::string_view data) {
    BUTTER_ASSIGN_OR_RETURN(auto f, fields(data, 5));
    Command c;
    c.argv = split(f[0]);
    c.env = split(f[1]);
    c.candidates = split(f[2]);
    c.cwd = std::string(f[3]);
    c.report = f[4] == "1";
    if (f.size() == 6) {
        // "UMASK MASK IGNORED NICE CUR:MAX ..." (the client's ProcessContext)
        ProcessContext& x = c.context;
        std::string t(f[5]);
        unsigned long long mask = 0, ignored = 0;
        int um = 0, used = 0;
        if (std::sscanf(t.c_str(), "%o %llu %llu %d%n", &um, &mask, &ignored, &x.nice, &used) !=
                4 ||
            um < 0 || um > 0777 || x.nice < -20 || x.nice > 19)
            return fail(bad("a malformed process context"));
        x.umask = static_cast<unsigned>(um);
        x.mask = mask;
        x.ignored = ignored;
        const char* p = t.c_str() + used;
        unsigned long long cur = 0, max = 0;
        int n = 0;
        while (std::sscanf(p, " %llu:%llu%n", &cur, &max, &n) == 2 && x.rlimits.size() < 64) {
            x.rlimits.emplace_back(cur, max);
            p += n;
        }
        x.set = true;
    }
    if (c.argv.empty()) return fail(bad("no command"));
    if (c.cwd.empty() || c.cwd[0] != '/' || c.cwd.find('\0') != std::string::npos)
        return fail(bad("no absolute working directory"));
    return c;
}

std::string encode_reply(const Reply& r) {
    std::string out;
    put(out, std::to_string(r.status));
    put(out, r.messages);
    put(out, r.log);
    put(out, r.report);
    return out;
}

Result<Reply> decode_reply(std::string_view data) {
    BUTTER_ASSIGN_OR_RETURN(auto f, fields(data, 4));
    Reply r;
    std::string status(f[0]);
    char* end = nullptr;
    long v = std::strtol(status.c_str(), &end, 10);
    if (status.empty() || *end != '\0' || v < 0 || v > 255) return fail(bad("a malformed reply"));
    r.status = static_cast<int>(v);
    r.messages = std::string(f[1]);
    r.log = std::string(f[2]);
    r.report = std::string(f[3]);
    return r;
}

Result<void> send_frame(int socket, std::string_view data, std::span<const int> fds) {
    std::string buf;
    put(buf, data);
    std::size_t done = 0;
    if (!fds.empty()) {
        // The fds with the length's first byte alone: the reader takes them with the length.
        BUTTER_TRY(send_fds(BorrowedFd(socket), fds, std::span<const char>(buf.data(), 1)));
        done = 1;
    }
    while (done < buf.size()) {
        ssize_t n = ::send(socket, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("send", "pool");
        done += static_cast<std::size_t>(n);
    }
    return {};
}

namespace {

// Until `deadline_ns` (CLOCK_MONOTONIC; 0: none) the socket is readable, else ETIMEDOUT.
Result<void> wait_readable(int socket, std::int64_t deadline_ns) {
    if (deadline_ns == 0) return {};
    for (;;) {
        struct timespec now {};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        std::int64_t left = deadline_ns - (now.tv_sec * 1000000000LL + now.tv_nsec);
        if (left <= 0) return fail(Error("recv", ETIMEDOUT, "pool: the peer is too slow"));
        struct pollfd p {
            socket, POLLIN, 0
        };
        int n = ::poll(&p, 1, static_cast<int>(left / 1000000 + 1));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("poll", "pool");
        if (n > 0) return {};
    }
}

Result<void> read_exactly(int socket, char* p, std::size_t len, std::int64_t deadline_ns) {
    while (len > 0) {
        BUTTER_TRY(wait_readable(socket, deadline_ns));
        ssize_t n = ::recv(socket, p, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("recv", "pool");
        if (n == 0) return fail(Error("recv", EPIPE, "pool: the peer closed mid-message"));
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return {};
}

}  // namespace

Result<Frame> recv_frame(int socket, std::size_t max_size, std::size_t max_fds, int timeout_ms) {
    std::int64_t deadline = 0;
    if (timeout_ms >= 0) {
        struct timespec now {};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        deadline = now.tv_sec * 1000000000LL + now.tv_nsec + timeout_ms * 1000000LL;
    }
    Frame f;
    std::uint32_t len = 0;
    char* p = reinterpret_cast<char*>(&len);
    // The first byte with its fds (SCM_RIGHTS come with the first read of their bytes).
    BUTTER_TRY(wait_readable(socket, deadline));
    BUTTER_ASSIGN_OR_RETURN(Received first, recv_fds(BorrowedFd(socket), max_fds, 1));
    if (first.data.empty() && first.fds.empty())
        return fail(Error("recv", EPIPE, "pool: the peer closed"));
    f.fds = std::move(first.fds);
    if (first.data.size() != 1) return fail(bad("a malformed message"));
    p[0] = first.data[0];
    BUTTER_TRY(read_exactly(socket, p + 1, sizeof len - 1, deadline));
    if (len > max_size) return fail(Error("recv", EMSGSIZE, "pool"));
    f.data.resize(len);
    BUTTER_TRY(read_exactly(socket, f.data.data(), len, deadline));
    return f;
}

ProcessContext ProcessContext::of_this_process() {
    ProcessContext x;
    x.set = true;
    mode_t um = ::umask(0);
    ::umask(um);
    x.umask = um;
    sigset_t mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    for (int sig = 1; sig < NSIG && sig <= 64; ++sig) {
        if (sigismember(&mask, sig) == 1) x.mask |= 1ULL << (sig - 1);
        struct sigaction sa {};
        if (::sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN)
            x.ignored |= 1ULL << (sig - 1);
    }
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, 0);
    if (errno == 0) x.nice = nice;
    for (int r = 0; r < RLIM_NLIMITS; ++r) {
        struct rlimit l {};
        if (::getrlimit(static_cast<__rlimit_resource>(r), &l) < 0)
            l = {RLIM_INFINITY, RLIM_INFINITY};
        x.rlimits.emplace_back(l.rlim_cur, l.rlim_max);
    }
    return x;
}

Result<void> ProcessContext::apply() const {
    if (!set) return {};
    ::umask(static_cast<mode_t>(umask & 0777));
    for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)::signal(sig, (ignored >> (sig - 1)) & 1 ? SIG_IGN : SIG_DFL);
    errno = 0;
    int now = ::getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && nice > now && ::setpriority(PRIO_PROCESS, 0, nice) < 0)
        return fail_errno("setpriority", "the client's nice value");
    for (std::size_t r = 0; r < rlimits.size() && r < RLIM_NLIMITS; ++r) {
        auto res = static_cast<__rlimit_resource>(r);
        struct rlimit l {};
        if (::getrlimit(res, &l) < 0) continue;
        struct rlimit want {
            std::min<rlim_t>(l.rlim_cur, rlimits[r].first), std::min<rlim_t>(l.rlim_max,
                                                                             rlimits[r].second)
        };
        if (want.rlim_cur > want.rlim_max) want.rlim_cur = want.rlim_max;
        if ((want.rlim_cur != l.rlim_cur || want.rlim_max != l.rlim_max) &&
            ::setrlimit(res, &want) < 0)
            return fail_errno("setrlimit", "the client's limits");
    }
    return {};
}

Result<void> check_name(std::string_view name) {
    bool ok = !name.empty() && name.size() <= 64 && name[0] != '.';
    for (char c : name)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-');
    if (!ok)
        return fail(
            bad("a pool's name is 1 to 64 letters, digits, '.', '_' or '-' (not starting "
                "with '.'), got '" +
                std::string(name) + "'"));
    return {};
}

namespace {

std::string base_dir() {
    if (::geteuid() == 0) return "/run";
    const char* x = std::getenv("XDG_RUNTIME_DIR");
    return x && x[0] == '/' ? x : "";
}

}  // namespace

Result<Fd> open_dir(bool create) {
    std::string base = base_dir();
    if (base.empty())
        return fail(
            bad("XDG_RUNTIME_DIR is not set: a pool's socket lives in your runtime "
                "directory (systemd's /run/user/UID)"));
    int fd = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", base);
    Fd dir(fd);
    std::string path = base;
    for (const char* part : {"butter", "pool"}) {
        path += std::string("/") + part;
        if (create && ::mkdirat(dir.get(), part, 0700) < 0 && errno != EEXIST)
            return fail_errno("mkdir", path);
        int sub = ::openat(dir.get(), part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) return fail_errno("open", path);
        dir = Fd(sub);
        struct stat st {};
        if (::fstat(dir.get(), &st) < 0) return fail_errno("fstat", path);
        if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0)
            return fail(bad(path + " is not yours alone (owner " + std::to_string(st.st_uid) +
                            ", others may write it): refusing to use it for pool sockets"));
    }
    return dir;
}

std::string socket_address(const Fd& dir, std::string_view name) {
    return "/proc/self/fd/" + std::to_string(dir.get()) + "/" + std::string(name) + ".sock";
}

std::string socket_path(std::string_view name) {
    std::string base = base_dir();
    return (base.empty() ? "$XDG_RUNTIME_DIR" : base) + "/butter/pool/" + std::string(name) +
           ".sock";
}

Result<Fd> connect(std::string_view name) {
    BUTTER_TRY(check_name(name));
    auto dir = open_dir(false);
    if (!dir && dir.error().errno_value() == ENOENT)
        return fail(Error::message(
            "pool", std::string(name) + " is not running (no " + socket_path(name) + ")"));
    if (!dir) return fail(std::move(dir).error());
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail_errno("socket", "pool");
    Fd sock(s);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::string a = socket_address(*dir, name);
    std::memcpy(addr.sun_path, a.c_str(), a.size() + 1);
    if (::connect(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            return fail(Error::message("pool", std::string(name) + " is not running (" +
                                                   (errno == ENOENT ? "no " : "nothing at ") +
                                                   socket_path(name) + ")"));
        return fail_errno("connect", socket_path(name));
    }
    return sock;
}

}  // namespace butter::launcher::pool
