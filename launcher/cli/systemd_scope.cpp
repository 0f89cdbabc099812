#include "cli/systemd_scope.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include <butter/fd.hpp>

namespace butter::launcher {

namespace {

// D-Bus marshalling, little-endian, of what this call needs: strings, object paths,
// signatures, booleans, uint32 arrays, arrays of structs, variants. Alignment is relative to
// the start of the message (the header comes first in the same buffer).
class Writer {
  public:
    std::vector<std::uint8_t> bytes;
    void align(std::size_t n) {
        while (bytes.size() % n)
            bytes.push_back(0);
    }
    void byte(std::uint8_t b) { bytes.push_back(b); }
    void u32(std::uint32_t v) {
        align(4);
        for (int i = 0; i < 4; ++i)
            bytes.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    void str(std::string_view s) {  // also an object path
        u32(static_cast<std::uint32_t>(s.size()));
        bytes.insert(bytes.end(), s.begin(), s.end());
        bytes.push_back(0);
    }
    void sig(std::string_view s) {
        byte(static_cast<std::uint8_t>(s.size()));
        bytes.insert(bytes.end(), s.begin(), s.end());
        bytes.push_back(0);
    }
    // An array: its length (the bytes of its elements, after the padding to their
    // alignment) is patched in once the elements are written.
    struct Array {
        std::size_t length_at, start;
    };
    Array open_array(std::size_t element_align) {
        u32(0);
        std::size_t at = bytes.size() - 4;
        align(element_align);
        return {at, bytes.size()};
    }
    void close_array(Array a) {
        auto n = static_cast<std::uint32_t>(bytes.size() - a.start);
        for (int i = 0; i < 4; ++i)
            bytes[a.length_at + i] = static_cast<std::uint8_t>(n >> (8 * i));
    }
};

// One property of a(sv): a struct of the name and a variant.
template <typename F>
void property(Writer& w, std::string_view name, std::string_view type, F&& value) {
    w.align(8);
    w.str(name);
    w.sig(type);
    value(w);
}

std::vector<std::uint8_t> start_transient_unit(const std::string& unit, std::uint32_t serial,
                                               const std::vector<pid_t>& pids,
                                               const std::string& slice) {
    // The header is written first into the same buffer: alignment counts from its start.
    Writer m;
    m.byte('l');
    m.byte(1);  // METHOD_CALL
    m.byte(0);
    m.byte(1);  // protocol version
    m.u32(0);   // body length, patched below
    m.u32(serial);
    auto field = [&](std::uint8_t code, std::string_view type, std::string_view value) {
        m.align(8);
        m.byte(code);
        m.sig(type);
        if (type == "g")
            m.sig(value);
        else
            m.str(value);
    };
    auto fields = m.open_array(8);
    field(1, "o", "/org/freedesktop/systemd1");
    field(2, "s", "org.freedesktop.systemd1.Manager");
    field(3, "s", "StartTransientUnit");
    field(6, "s", "org.freedesktop.systemd1");
    field(8, "g", "ssa(sv)a(sa(sv))");
    m.close_array(fields);
    m.align(8);
    std::size_t body_start = m.bytes.size();
    m.str(unit);
    m.str("fail");
    auto props = m.open_array(8);
    property(m, "Description", "s", [](Writer& w) { w.str("butter sandbox (limits)"); });
    // In the slice butter was in (its caller's), not the manager's default one.
    if (!slice.empty()) property(m, "Slice", "s", [&slice](Writer& w) { w.str(slice); });
    property(m, "Delegate", "b", [](Writer& w) { w.u32(1); });
    property(m, "CollectMode", "s", [](Writer& w) { w.str("inactive-or-failed"); });
    property(m, "PIDs", "au", [&pids](Writer& w) {
        auto a = w.open_array(4);
        for (pid_t p : pids)
            w.u32(static_cast<std::uint32_t>(p));
        w.close_array(a);
    });
    m.close_array(props);
    auto aux = m.open_array(8);
    m.close_array(aux);
    auto n = static_cast<std::uint32_t>(m.bytes.size() - body_start);
    for (int i = 0; i < 4; ++i)
        m.bytes[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
    return m.bytes;
}

// A reply's type, the serial it answers, its error name and first string of its body.
struct Reply {
    int type = 0;
    std::uint32_t reply_serial = 0;
    std::string error_name, text;
};

class Reader {
  public:
    explicit Reader(const std::vector<std::uint8_t>& b) : b_(b) {}
    bool align(std::size_t n) {
        while (pos_ % n)
            ++pos_;
        return pos_ <= b_.size();
    }
    bool u32(std::uint32_t& v) {
        if (!align(4) || pos_ + 4 > b_.size()) return false;
        v = 0;
        for (int i = 0; i < 4; ++i)
            v |= static_cast<std::uint32_t>(b_[pos_ + i]) << (8 * i);
        pos_ += 4;
        return true;
    }
    bool str(std::string& s) {
        std::uint32_t n = 0;
        if (!u32(n) || n > b_.size() - pos_ || pos_ + n >= b_.size()) return false;
        s.assign(reinterpret_cast<const char*>(&b_[pos_]), n);
        pos_ += n + 1;
        return true;
    }
    bool sig(std::string& s) {
        if (pos_ >= b_.size()) return false;
        std::size_t n = b_[pos_++];
        if (pos_ + n >= b_.size()) return false;
        s.assign(reinterpret_cast<const char*>(&b_[pos_]), n);
        pos_ += n + 1;
        return true;
    }
    bool byte(std::uint8_t& v) {
        if (pos_ >= b_.size()) return false;
        v = b_[pos_++];
        return true;
    }
    std::size_t pos() const { return pos_; }
    void seek(std::size_t p) { pos_ = p; }

  private:
    const std::vector<std::uint8_t>& b_;
    std::size_t pos_ = 0;
};

// Parses one whole message (header and body). false: malformed.
bool parse_reply(const std::vector<std::uint8_t>& msg, Reply& out) {
    Reader r(msg);
    std::uint8_t endian = 0, type = 0, flags = 0, version = 0;
    std::uint32_t body_len = 0, serial = 0, fields_len = 0;
    if (!r.byte(endian) || endian != 'l' || !r.byte(type) || !r.byte(flags) || !r.byte(version) ||
        !r.u32(body_len) || !r.u32(serial) || !r.u32(fields_len))
        return false;
    out.type = type;
    std::size_t end = r.pos() + fields_len;
    std::string signature;
    while (r.pos() < end) {
        std::uint8_t code = 0;
        std::string type_sig, s;
        if (!r.align(8) || !r.byte(code) || !r.sig(type_sig)) return false;
        if (type_sig == "u") {
            std::uint32_t v = 0;
            if (!r.u32(v)) return false;
            if (code == 5) out.reply_serial = v;
        } else if (type_sig == "g") {
            if (!r.sig(s)) return false;
            if (code == 8) signature = s;
        } else if (type_sig == "s" || type_sig == "o") {
            if (!r.str(s)) return false;
            if (code == 4) out.error_name = s;
        } else {
            return false;
        }
    }
    r.align(8);
    if (signature.starts_with("s") || signature.starts_with("o")) (void)r.str(out.text);
    return true;
}

Result<void> send_all(int fd, const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fail_errno("send", "systemd's private bus");
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return {};
}

Result<void> recv_exact(int fd, std::vector<std::uint8_t>& buf, std::size_t n) {
    std::size_t have = buf.size();
    buf.resize(have + n);
    while (n > 0) {
        ssize_t r = ::recv(fd, buf.data() + buf.size() - n, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_errno("recv", "systemd's private bus");
        if (r == 0)
            return fail(Error::message("recv", "the manager closed the connection",
                                       "systemd's private bus"));
        n -= static_cast<std::size_t>(r);
    }
    return {};
}

// The SASL exchange: EXTERNAL, as this uid (checked by the peer from the socket's creds).
Result<void> authenticate(int fd) {
    std::string uid = std::to_string(::geteuid()), hex;
    for (char c : uid) {
        static const char* digits = "0123456789abcdef";
        hex += digits[(c >> 4) & 0xf];
        hex += digits[c & 0xf];
    }
    std::string hello = std::string(1, '\0') + "AUTH EXTERNAL " + hex + "\r\n";
    BUTTER_TRY(send_all(fd, hello.data(), hello.size()));
    std::string line;
    char c = 0;
    while (line.size() < 512) {
        ssize_t r = ::recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return fail_errno("recv", "systemd's private bus (authentication)");
        if (c == '\n') break;
        line += c;
    }
    if (!line.starts_with("OK "))
        return fail(
            Error::message("dbus", "authentication refused: " + line, "systemd's private bus"));
    static constexpr std::string_view begin = "BEGIN\r\n";
    return send_all(fd, begin.data(), begin.size());
}

Result<Fd> connect_manager() {
    std::string path = systemd_manager_socket();
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail_errno("socket", "AF_UNIX");
    Fd owned(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail_errno("connect", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // A manager that never answers is an error after 10 s, not a hang before the sandbox.
    timeval limit{10, 0};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0)
        return fail_errno("setsockopt", "SO_RCVTIMEO " + path);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        int e = errno;
        errno = (e == ECONNREFUSED || e == ENOENT) ? ENOENT : e;
        return fail(
            Error::from_errno("connect", path).with_hint("no systemd manager to ask for a cgroup"));
    }
    // The manager is root's (PID 1) or this user's: never a socket someone else put there.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return fail_errno("getsockopt", "SO_PEERCRED " + path);
    if (cred.uid != 0 && cred.uid != ::geteuid()) {
        errno = EPERM;
        return fail_errno("connect", path + ": its peer is uid " + std::to_string(cred.uid));
    }
    return owned;
}

// This process and its children (the child started early, which becomes the sandbox's first
// process): they move together.
std::vector<pid_t> self_and_children() {
    std::vector<pid_t> out{::getpid()};
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return out;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        auto text = read_file(("/proc/self/task/" + std::string(e->d_name) + "/children").c_str());
        if (!text) continue;
        const char* p = text->c_str();
        char* end = nullptr;
        for (long v = std::strtol(p, &end, 10); end != p; v = std::strtol(p, &end, 10)) {
            out.push_back(static_cast<pid_t>(v));
            p = end;
        }
    }
    ::closedir(d);
    return out;
}

// The cgroup v2 path of `pid` ("" if it is gone).
std::string cgroup_of(pid_t pid) {
    auto text = read_file(("/proc/" + std::to_string(pid) + "/cgroup").c_str());
    if (!text) return {};
    auto at = text->find("0::");
    if (at == std::string::npos) return {};
    std::string line = text->substr(at + 3);
    return line.substr(0, line.find('\n'));
}

}  // namespace

std::string systemd_manager_socket() {
    if (::geteuid() == 0) return "/run/systemd/private";
    const char* rt = std::getenv("XDG_RUNTIME_DIR");
    return std::string(rt && *rt == '/' ? rt : "/run/user/" + std::to_string(::geteuid())) +
           "/systemd/private";
}

Result<std::string> move_into_systemd_scope() {
    BUTTER_ASSIGN_OR_RETURN(Fd fd, connect_manager());
    BUTTER_TRY(authenticate(fd.get()));
    std::string unit = "butter-" + std::to_string(::getpid()) + ".scope";
    std::vector<pid_t> pids = self_and_children();
    // The innermost slice of butter's cgroup ("/system.slice/x.service" -> system.slice).
    std::string slice, here = cgroup_of(::getpid());
    for (std::size_t at = 0; at < here.size();) {
        std::size_t end = std::min(here.find('/', at + 1), here.size());
        std::string part = here.substr(at + 1, end - at - 1);
        if (part.ends_with(".slice")) slice = part;
        at = end;
    }
    auto msg = start_transient_unit(unit, 1, pids, slice);
    BUTTER_TRY(send_all(fd.get(), msg.data(), msg.size()));
    // Messages until the reply to ours (the manager sends nothing else unsubscribed).
    for (int i = 0; i < 16; ++i) {
        std::vector<std::uint8_t> in;
        BUTTER_TRY(recv_exact(fd.get(), in, 16));
        std::uint32_t body = 0, fields = 0;
        for (int k = 0; k < 4; ++k) {
            body |= static_cast<std::uint32_t>(in[4 + k]) << (8 * k);
            fields |= static_cast<std::uint32_t>(in[12 + k]) << (8 * k);
        }
        std::size_t total = 16 + ((std::size_t{fields} + 7) & ~std::size_t{7}) + body;
        if (in[0] != 'l' || total > (1u << 20))
            return fail(Error::message("dbus", "a malformed message", "systemd's private bus"));
        BUTTER_TRY(recv_exact(fd.get(), in, total - 16));
        Reply reply;
        if (!parse_reply(in, reply))
            return fail(Error::message("dbus", "a malformed message", "systemd's private bus"));
        if (reply.reply_serial != 1) continue;
        if (reply.type == 3)
            return fail(
                Error::message("StartTransientUnit", reply.error_name + ": " + reply.text, unit));
        break;
    }
    // The job moves the processes into the scope, all in one pass: wait until every one that
    // still lives is there (moving one onward before then, into a leaf, would be undone).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        bool all = true;
        for (pid_t p : pids) {
            std::string cg = cgroup_of(p);
            if (!cg.empty() && !cg.ends_with("/" + unit)) all = false;
        }
        if (all) break;
        if (std::chrono::steady_clock::now() > deadline)
            return fail(Error::message("StartTransientUnit",
                                       "this process did not arrive in the scope within 10 s",
                                       unit));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return unit;
}

}  // namespace butter::launcher
