// What a pool's processes say to each other (pool/pool.hpp), on unix stream sockets:
// - a client to the pool's daemon: a Header (Run or Stop); with Run, then one frame with the
//   Command and the client's stdio (three fds, SCM_RIGHTS), read by the sandbox's supervisor
//   the daemon hands the connection to; then Signal records while the command runs;
// - that supervisor to the sandbox's child: the Command (argv, environment and PATH
//   candidates resolved for the profile, the working directory inside) with the same stdio;
// - the supervisor (or the daemon, refusing) to the client: one Reply frame at the end.
// A frame is a 32-bit length and that many bytes; its fds come with its first byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <butter/error.hpp>
#include <butter/fd.hpp>

namespace butter::launcher::pool {

inline constexpr std::uint32_t kMagic = 0x31505442;  // "BTP1"
inline constexpr std::size_t kMaxCommand = 4u << 20;
inline constexpr std::size_t kMaxReply = 64u << 20;  // a report with long lists

struct Header {
    enum Request : std::uint32_t { Run = 1, Stop = 2 };
    std::uint32_t magic = kMagic;
    std::uint32_t request = Run;
};

// From the client while its command runs: a signal it got, to forward (SIGTERM: a stop).
struct SignalRecord {
    std::uint32_t type = 1;
    std::uint32_t signo = 0;
};

// What a plain run's command would get from the process that runs butter, and a pool's gets
// from its client's: the umask, the signal mask and the ignored signals, the nice value and
// the rlimits (each lowered to the client's, never raised).
struct ProcessContext {
    bool set = false;
    unsigned umask = 022;
    std::uint64_t mask = 0, ignored = 0;  // bit N-1: signal N
    int nice = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> rlimits;  // RLIMIT_* in order
    static ProcessContext of_this_process();
    // On this process: what a child of the client would have (no rlimit or nice raised).
    [[nodiscard]] Result<void> apply() const;
};

struct Command {
    std::vector<std::string> argv, env;
    std::vector<std::string> candidates;  // (to the child: where execve looks for argv[0])
    std::string cwd;                      // the client's (host path); to the child: inside
    bool report = false;                  // the client wants the JSON report
    ProcessContext context;
};
std::string encode_command(const Command& c);
[[nodiscard]] Result<Command> decode_command(std::string_view data);

struct Reply {
    int status = 125;      // the exit status, as `butter run` would exit
    std::string messages;  // lines for stderr, always ("butter: ...")
    std::string log;       // the supervisor's log lines (warnings), unless --quiet
    std::string report;    // the JSON report, if asked for
};
std::string encode_reply(const Reply& r);
[[nodiscard]] Result<Reply> decode_reply(std::string_view data);

// One frame, its fds with its first byte. MSG_NOSIGNAL: a peer gone is EPIPE.
[[nodiscard]] Result<void> send_frame(int socket, std::string_view data,
                                      std::span<const int> fds = {});
struct Frame {
    std::string data;
    std::vector<Fd> fds;
};
// EPIPE: the peer closed before a frame began; EMSGSIZE: longer than `max_size`; ETIMEDOUT:
// the whole frame did not come within `timeout_ms` (-1: no limit).
[[nodiscard]] Result<Frame> recv_frame(int socket, std::size_t max_size, std::size_t max_fds,
                                       int timeout_ms = -1);

// A pool's name: letters, digits, '.', '_' and '-', 1 to 64 of them, not starting with '.'.
[[nodiscard]] Result<void> check_name(std::string_view name);
// The directory of the caller's pools, checked (a directory the caller owns that no one else
// may write, no symlink on the way below its base): /run/butter/pool for root, else
// $XDG_RUNTIME_DIR/butter/pool. `create`: made (0700) where missing.
[[nodiscard]] Result<Fd> open_dir(bool create);
// The address of a pool's socket through `dir` (/proc/self/fd/N/NAME.sock), and its path.
std::string socket_address(const Fd& dir, std::string_view name);
std::string socket_path(std::string_view name);
// A connection to a running pool's socket; "not running" errors name the pool.
[[nodiscard]] Result<Fd> connect(std::string_view name);

}  // namespace butter::launcher::pool
