#include "plan/user_db.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

#include <butter/fd.hpp>

#include "plan/host_path.hpp"
#include "text.hpp"

namespace butter::launcher {

namespace {

// getent waits at most this long for a directory server.
constexpr int kGetentTimeoutMs = 10000;
// A passwd or group file larger than this is not read (and a getent answer is one line).
constexpr std::size_t kMaxDbBytes = 16 << 20;

bool all_digits(std::string_view s) {
    return !s.empty() && s.size() <= 10 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::uint32_t> number(std::string_view s) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

// The file at `path`, if it may be trusted: a regular file that root or the caller owns and
// no one else may write, opened without following symlinks.
std::optional<std::string> trusted_file(const std::string& path) {
    auto at = resolve_host_path(path, Symlinks::RootOnly);
    if (!at || !S_ISREG(at->st.st_mode)) return std::nullopt;
    if (at->st.st_uid != 0 && at->st.st_uid != ::geteuid()) return std::nullopt;
    if (at->st.st_mode & 022) return std::nullopt;
    if (static_cast<std::size_t>(at->st.st_size) > kMaxDbBytes) return std::nullopt;
    auto fd = reopen_host_path(at->path, at->st.st_dev, at->st.st_ino, O_RDONLY | O_CLOEXEC);
    if (!fd) return std::nullopt;
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd->get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxDbBytes) return std::nullopt;
    }
    return text;
}

}  // namespace

// The host's NSS as the host's own programs see it.
std::optional<std::string> getent(UserDb db, std::string_view key) {
    const char* prog = "/usr/bin/getent";
    if (key.empty() || key[0] == '-' || key.size() > 256 ||
        !std::all_of(key.begin(), key.end(), [](char c) { return std::isgraph(c) && c != ':'; }))
        return std::nullopt;
    if (::access(prog, X_OK) != 0) return std::nullopt;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return std::nullopt;
    Fd r(p[0]), w(p[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, w.get(), 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::string k(key);
    const char* argv[] = {"getent", db == UserDb::Passwd ? "passwd" : "group", k.c_str(), nullptr};
    const char* envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", nullptr};
    pid_t pid = -1;
    int err = ::posix_spawn(&pid, prog, &fa, nullptr, const_cast<char* const*>(argv),
                            const_cast<char* const*>(envp));
    posix_spawn_file_actions_destroy(&fa);
    w.reset();
    if (err != 0) return std::nullopt;
    std::string out;
    int waited = 0;
    bool late = false;
    while (out.size() < 4096) {
        struct pollfd pf {
            r.get(), POLLIN, 0
        };
        int n = ::poll(&pf, 1, 100);
        if (n < 0 && errno != EINTR) break;
        if (n == 0 && (waited += 100) >= kGetentTimeoutMs) {
            late = true;
            break;
        }
        if (n <= 0) continue;
        char buf[1024];
        ssize_t got = ::read(r.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        out.append(buf, static_cast<std::size_t>(got));
    }
    if (late || out.size() >= 4096) ::kill(pid, SIGKILL);  // past its time, or too much
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return out;
}

void for_each_user_entry(UserDb db, std::string_view text,
                         const std::function<bool(const UserEntry&)>& f) {
    while (!text.empty()) {
        std::string_view line = next_line(text);
        // name:password:id:... (passwd: name:x:uid:gid:gecos:home:shell)
        std::string_view field[7];
        std::size_t n = 0;
        for (std::string_view rest = line; n < 7;) {
            auto colon = rest.find(':');
            field[n++] = rest.substr(0, colon);
            if (colon == std::string_view::npos) break;
            rest.remove_prefix(colon + 1);
        }
        if (n < (db == UserDb::Passwd ? 4u : 3u) || field[0].empty() || field[0][0] == '#' ||
            field[0][0] == '+' || field[0][0] == '-')
            continue;
        auto id = number(field[2]);
        auto gid = db == UserDb::Passwd ? number(field[3]) : std::optional<std::uint32_t>(0);
        if (!id || !gid) continue;
        UserEntry e{std::string(field[0]), *id, *gid, std::string(field[5]), std::string(field[6])};
        if (!f(e)) return;
    }
}

std::optional<UserEntry> find_in_user_db(UserDb db, std::string_view text, std::string_view key) {
    bool by_id = all_digits(key);
    std::optional<std::uint32_t> key_id = by_id ? number(key) : std::nullopt;
    if (by_id && !key_id) return std::nullopt;
    std::optional<UserEntry> found;
    for_each_user_entry(db, text, [&](const UserEntry& e) {
        if (by_id ? e.id != *key_id : e.name != key) return true;
        found = e;
        return false;
    });
    return found;
}

std::optional<UserEntry> lookup_user_db(UserDb db, std::string_view key, const std::string& etc) {
    const char* file = db == UserDb::Passwd ? "/passwd" : "/group";
    if (!etc.empty() && etc != "/etc")
        if (auto text = trusted_file(etc + file))
            if (auto e = find_in_user_db(db, *text, key)) return e;
    if (auto text = trusted_file(std::string("/etc") + file))
        if (auto e = find_in_user_db(db, *text, key)) return e;
    if (auto text = getent(db, key)) return find_in_user_db(db, *text, key);
    return std::nullopt;
}

}  // namespace butter::launcher
