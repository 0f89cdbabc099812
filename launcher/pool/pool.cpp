#include "pool/pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>

#include <butter/loop.hpp>
#include <butter/process.hpp>
#include <butter/signalfd.hpp>
#include <butter/timerfd.hpp>
#include <butter/unix_socket.hpp>

#include "learn/learn.hpp"
#include "plan/command.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "supervise/report.hpp"
#include "supervise/supervisor.hpp"

extern char** environ;

namespace butter::launcher::pool {

namespace {

constexpr int kFailed = 125;
// Clients waiting for a sandbox while none is prepared, at most.
constexpr std::size_t kMaxWaiting = 256;
// How long a connection may take to send its request (the peer is the pool's own user).
constexpr int kRequestTimeoutSeconds = 5;
// Sandboxes that fail to set up one after another before the pool stops preparing them for
// a while (the first retry after kFirstRetryDelay, then twice as long each time).
constexpr unsigned kMaxFailures = 3;
constexpr std::chrono::milliseconds kFirstRetryDelay{1000}, kMaxRetryDelay{60000};
// After `pool stop`, how long a sandbox's supervisor has to end before it is killed.
constexpr std::chrono::seconds kStopDeadline{30};

// A profile file as the pool read it: any write changes its size, mtime or ctime.
struct FileIdentity {
    std::string path;
    struct stat st {};
};

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
           a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// What the daemon made once, before it forks each sandbox's supervisor (which shares it).
struct Prepared {
    std::string name;
    profile::Loaded loaded;
    SandboxPlan plan;
    std::vector<FileIdentity> files;           // the profile's chain, as read
    std::optional<std::string> spec, located;  // -p as given, and the file it named then
    // What butter set in the plan's environment itself, beyond the profile's rules applied to
    // the daemon's own (HOME of a home tmpfs, ...): each command gets these too.
    std::vector<std::string> butter_env;
    std::string daemon_cwd;
    sigset_t command_mask{};
    unsigned size = 2;
    int verbosity = 1;
};

// Why `plan` cannot be prepared ahead, or "".
std::string why_not_poolable(const Prepared& pr) {
    const SandboxPlan& plan = pr.plan;
    const profile::Profile& p = pr.loaded.profile;
    if (plan.tier != profile::Tier::Namespaces)
        return std::string("isolation: the ") + profile::to_string(plan.tier) +
               " tier has nothing to prepare: a pool needs the namespaces tier";
    if (!plan.namespaces.has(Namespace::Pid))
        return "namespaces.pid = false: a pool's commands each need a fresh pid namespace";
    if (plan.restart != profile::RestartPolicy::No)
        return "supervise.restart: a pool's sandbox runs its one command once";
    if (plan.notify) return "supervise.notify: not with a pool";
    if (plan.stdout_spec.kind != OutputSpec::Kind::Inherit ||
        plan.stderr_spec.kind != OutputSpec::Kind::Inherit)
        return "output.stdout/stderr: a pool's commands write to the client's own streams "
               "(\"inherit\")";
    if (p.process.session == profile::SessionMode::Pty)
        return "process.session = \"pty\": a pool's commands run without a terminal of their own";
    if (plan.changes.mount >= 0)
        return "filesystem.workspace = \"overlay\": not with a pool (its changes are the run's)";
    if (!plan.report_path.empty())
        return "report.path: a pool's reports go where `butter run --pool NAME --report FILE` "
               "says";
    return "";
}

// KEY=VALUE into `env`, replacing KEY's value if it has one.
void set_var(std::vector<std::string>& env, const std::string& kv) {
    std::string_view key(kv.data(), kv.find('='));
    for (std::string& e : env)
        if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
            e = kv;
            return;
        }
    env.push_back(kv);
}

// The client's command made ready for the child: its environment by the profile's rules
// (with what butter set in the plan itself: HOME of a home tmpfs, ...), the PATH candidates,
// and its working directory inside (through the bind it is in, where the profile's cwd was
// the pool's own $PWD).
Result<Command> resolve(const Prepared& pr, Command c) {
    Command out;
    out.argv = std::move(c.argv);
    out.report = c.report;
    out.context = c.context;
    out.env = command_environment(pr.loaded.profile, c.env);
    for (const std::string& kv : pr.butter_env)
        set_var(out.env, kv);
    out.candidates = exec_candidates(out.argv[0], out.env);
    if (pr.plan.cwd != pr.daemon_cwd || c.cwd == pr.daemon_cwd) {
        out.cwd = pr.plan.cwd;  // the profile's own process.cwd, or the pool's $PWD
        return out;
    }
    const MountStep* best = nullptr;
    for (const MountStep& m : pr.plan.mounts) {
        if (m.type != profile::MountType::Bind || !m.source_is_dir) continue;
        bool inside = c.cwd == m.source || m.source == "/" ||
                      (c.cwd.starts_with(m.source) && c.cwd[m.source.size()] == '/');
        if (inside && (!best || m.source.size() > best->source.size())) best = &m;
    }
    if (!best)
        return fail(Error::message(
            "pool", pr.name + ": the current directory " + c.cwd +
                        " is not in its sandboxes (the pool binds what its profile binds, "
                        "from where it was started: " +
                        pr.daemon_cwd + ")"));
    std::string rest = best->source == "/" ? c.cwd : c.cwd.substr(best->source.size());
    out.cwd = best->target == "/" && !rest.empty() ? rest : best->target + rest;
    return out;
}

void refuse(int fd, const std::string& message) {
    Reply r;
    r.status = kFailed;
    r.messages = "butter: " + message + "\n";
    (void)send_frame(fd, encode_reply(r));
}

}  // namespace

std::string describe(std::string_view name, const Error& e) {
    // The pool's own errors name it in their text ("NAME is not running", "NAME: ...").
    if (std::string_view(e.call()) == "pool" && e.errno_value() == 0) {
        if (e.text().starts_with("pool " + std::string(name))) return e.text();
        if (e.text().starts_with(std::string(name))) return "pool " + e.text();
    }
    return "pool " + std::string(name) + ": " +
           (std::string_view(e.call()) == "pool" && e.errno_value() == 0 ? e.text() : e.what());
}

namespace {

// ---- one sandbox's supervisor: a child of the daemon ----------------------------------------

struct Serving {
    const Prepared& pr;
    int channel;  // to the daemon (SOCK_SEQPACKET): "R" ready, "F..." failed; "c" + client
    std::string log;
    Fd client;
    std::optional<Command> command;
    std::string refused;  // the client's command could not be handed on: why
    EventLoop::Registration channel_reg, client_reg;
};

int serve_one(const Prepared& pr, int channel) {
    Serving sv{pr, channel, {}, {}, {}, {}, {}, {}};
    auto failed = [&](const std::string& why) {
        std::string msg = "F" + why;
        (void)::send(channel, msg.data(), msg.size(), MSG_NOSIGNAL);
        return kFailed;
    };
    auto loop = EventLoop::create();
    if (!loop) return failed(loop.error().what());
    auto sfd = SignalFd::create(supervised_signals(pr.plan), SignalFdFlag::NonBlock);
    if (!sfd) return failed(sfd.error().what());
    auto pair = SocketPair::create(SOCK_STREAM);
    if (!pair) return failed(pair.error().what());
    SupervisorOptions so;
    so.verbosity = pr.verbosity;
    so.log_fd = -1;
    so.log = [&sv](std::string_view line) {
        sv.log.append(line);
        if (!line.ends_with('\n')) sv.log.push_back('\n');
    };
    so.mode = SpawnMode::Fork;
    so.command_mask = pr.command_mask;
    so.signal_fd = sfd->fd();
    so.command_fd = pair->second.get();
    so.command_clock_later = true;
    so.cgroup_move_self = true;
    so.on_ready = [channel, &pair] {
        // The child has its end: a child gone is EPIPE to the send of its command from now on.
        pair->second.reset();
        (void)::send(channel, "R", 1, MSG_NOSIGNAL);
    };
    SandboxPlan plan = pr.plan;  // its argv becomes the command's when it comes
    auto sup = Supervisor::create(*loop, plan, std::move(so));
    if (!sup) return failed(sup.error().what());
    Supervisor& s = **sup;
    auto take_client = [&]() -> Result<void> {
        BUTTER_ASSIGN_OR_RETURN(Received got, recv_fds(BorrowedFd(channel), 1, 16));
        sv.channel_reg.reset();
        if (got.fds.empty()) return fail(Error::message("pool", "stopped"));  // the daemon's EOF
        sv.client = std::move(got.fds[0]);
        BUTTER_ASSIGN_OR_RETURN(
            Frame f, recv_frame(sv.client.get(), kMaxCommand, 3, kRequestTimeoutSeconds * 1000));
        if (f.fds.size() != 3)
            return fail(Error::message("pool", "the command came without its stdio"));
        BUTTER_ASSIGN_OR_RETURN(Command c, decode_command(f.data));
        BUTTER_ASSIGN_OR_RETURN(Command ready, resolve(pr, std::move(c)));
        int fds[3] = {f.fds[0].get(), f.fds[1].get(), f.fds[2].get()};
        // (its PATH candidates make it longer than what came: the child takes kMaxCommand)
        std::string to_child = encode_command(ready);
        if (to_child.size() > kMaxCommand)
            return fail(Error::message("pool", pr.name +
                                                   ": the command and its environment "
                                                   "are too long (" +
                                                   std::to_string(to_child.size()) +
                                                   " bytes with the PATH candidates)"));
        BUTTER_TRY(send_frame(pair->first.get(), to_child, fds));
        plan.argv = ready.argv;  // (what its messages and report name)
        s.set_command(ready.argv);
        sv.command = std::move(ready);
        BUTTER_TRY(s.start_command_clock());
        BUTTER_TRY(set_nonblocking(sv.client.get(), true));
        // What the client relays while the command runs; its end (killed, gone) ends the run.
        BUTTER_ASSIGN_OR_RETURN(sv.client_reg, loop->add(sv.client, IoEvent::In, [&](IoEvents) {
            SignalRecord rec;
            for (;;) {
                ssize_t n = ::recv(sv.client.get(), &rec, sizeof rec, MSG_WAITALL);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && errno == EAGAIN) return;
                if (n != static_cast<ssize_t>(sizeof rec) || rec.type != 1) {
                    sv.client_reg.reset();
                    s.forward(SIGKILL);  // as when `butter run` is killed
                    return;
                }
                int sig = static_cast<int>(rec.signo);
                if (sig == SIGTERM)
                    s.stop();
                else if (sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP)
                    s.forward(sig);
            }
        }));
        return {};
    };
    auto channel_reg = loop->add(BorrowedFd(channel), IoEvent::In, [&](IoEvents) {
        if (auto r = take_client(); !r) {
            sv.refused = sv.client.valid() ? describe(pr.name, r.error()) : "";
            s.forward(SIGKILL);  // the sandbox, unused, goes
        }
    });
    if (!channel_reg) return failed(channel_reg.error().what());
    sv.channel_reg = std::move(*channel_reg);
    auto sig_reg = loop->add(sfd->fd(), IoEvent::In, [&](IoEvents) {
        while (auto got = sfd->read_event()) {
            if (!*got) break;
            if ((*got)->signo == SIGTERM) s.stop();  // the pool stops: as SIGTERM to butter run
        }
    });
    if (!sig_reg) return failed(sig_reg.error().what());
    auto ran = loop->run_until_complete(s.run());
    Result<RunOutcome> outcome = ran ? std::move(*ran) : fail(std::move(ran).error());
    sv.client_reg.reset();
    if (!sv.client.valid() || !sv.command) {
        if (sv.client.valid() && !sv.refused.empty()) {
            refuse(sv.client.get(), sv.refused);
            return 0;  // the sandbox was fine: the daemon counts no failure
        }
        std::string why = !outcome                    ? outcome.error().what()
                          : !outcome->message.empty() ? outcome->message
                                                      : "its sandbox ended before a command came";
        return failed(why);
    }
    Reply reply;
    if (!outcome) {
        reply.messages = "butter: " + outcome.error().what() + "\n";
    } else {
        reply.status = outcome->exit_status();
        if (!outcome->message.empty()) reply.messages = "butter: " + outcome->message + "\n";
        SandboxPlan shown = pr.plan;  // the report names the command that ran
        shown.argv = sv.command->argv;
        shown.env = sv.command->env;
        shown.cwd = sv.command->cwd;
        for (const std::string& h : learn::hints(shown, *outcome))
            sv.log += "butter: hint: " + h + "\n";
        if (outcome->kind == RunOutcome::Kind::TimedOut)
            sv.log += "butter: time limit reached, command stopped\n";
        if (sv.command->report) reply.report = report_json(shown, *outcome);
    }
    reply.log = std::move(sv.log);
    (void)send_frame(sv.client.get(), encode_reply(reply));
    return 0;
}

// ---- the daemon --------------------------------------------------------------------------------

class Daemon {
  public:
    Daemon(const Prepared& pr, Fd dir, Fd listener, Fd ready_pipe, EventLoop loop)
        : pr_(pr),
          dir_(std::move(dir)),
          listener_(std::move(listener)),
          ready_pipe_(std::move(ready_pipe)),
          loop_(std::move(loop)) {}

    int run();

  private:
    struct Slot {
        pid_t pid = 0;
        Fd pidfd, channel;
        bool ready = false, busy = false;
        std::string failure;
        EventLoop::Registration pid_reg, channel_reg;
    };
    bool spawn_slot();  // false: the pool gave up (give_up)
    void refill();
    void give_up(const std::string& why);
    void on_channel(Slot& s);
    void on_exit(std::list<Slot>::iterator it);
    void on_accept();
    struct Incoming {
        Fd conn;
        EventLoop::Registration reg;
    };
    void on_request(std::list<Incoming>::iterator it);
    void dispatch();
    void begin_stop();
    void say_ready(bool ok, const std::string& why);
    unsigned idle() const {
        return static_cast<unsigned>(
            std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; }));
    }
    std::string changed_file() const;

    const Prepared& pr_;
    Fd dir_, listener_, ready_pipe_;
    EventLoop loop_;
    EventLoop::Registration listener_reg_, signal_reg_;
    std::list<Slot> slots_;
    std::list<Incoming> incoming_;  // connections whose request has not come yet
    std::deque<Fd> waiting_;        // commands waiting for a prepared sandbox
    Fd stopper_;
    bool stopping_ = false;
    unsigned failures_ = 0;
    bool ever_ready_ = false;
    std::string failing_;  // why preparing fails now (give_up), while it is tried again
    std::chrono::milliseconds retry_delay_ = kFirstRetryDelay;
    std::optional<TimerFd> retry_, stop_timer_;
    EventLoop::Registration retry_reg_, stop_reg_;
};

std::string Daemon::changed_file() const {
    for (const FileIdentity& f : pr_.files) {
        struct stat st {};
        if (::stat(f.path.c_str(), &st) < 0 || !same_file(st, f.st))
            return "its profile " + f.path + " changed";
    }
    // A name that the search path now resolves elsewhere (a file put before it).
    if (pr_.spec && profile::locate(*pr_.spec, profile::search_path()) != pr_.located)
        return "its profile " + *pr_.spec + " now names another file";
    return "";
}

void Daemon::say_ready(bool ok, const std::string& why) {
    if (!ready_pipe_.valid()) {
        if (ok && pr_.verbosity > 0)
            std::fprintf(stderr, "butter: pool %s: ready (%u sandboxes prepared) at %s\n",
                         pr_.name.c_str(), pr_.size, socket_path(pr_.name).c_str());
        return;
    }
    std::string msg = ok ? "0" : "1" + why;
    (void)::write(ready_pipe_.get(), msg.data(), msg.size());
    ready_pipe_.reset();
}

bool Daemon::spawn_slot() {
    auto pair = SocketPair::create(SOCK_SEQPACKET);
    if (!pair) {
        give_up(pair.error().what());
        return false;
    }
    const pid_t daemon = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        give_up(Error::from_errno("fork", "a sandbox's supervisor").what());
        return false;
    }
    if (pid == 0) {
        // The sandbox's supervisor: dies with the daemon (and its sandbox with it), keeps
        // none of the daemon's descriptors but its channel.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || ::getppid() != daemon) ::_exit(1);
        int keep = pair->second.get();
        if (keep > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U);
        ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U);
        ::_exit(serve_one(pr_, keep));
    }
    Slot s;
    s.pid = pid;
    s.channel = std::move(pair->first);
    auto pidfd = pidfd_open(pid, true);
    if (!pidfd) {
        (void)::kill(pid, SIGKILL);
        (void)::waitpid(pid, nullptr, 0);
        give_up(pidfd.error().what());
        return false;
    }
    s.pidfd = std::move(*pidfd);
    slots_.push_back(std::move(s));
    auto it = std::prev(slots_.end());
    auto pr = loop_.add(it->pidfd, IoEvent::In, [this, it](IoEvents) { on_exit(it); });
    auto cr = loop_.add(it->channel, IoEvent::In, [this, it](IoEvents) { on_channel(*it); });
    if (!pr || !cr) {
        (void)pidfd_send_signal(it->pidfd, SIGKILL);
        (void)waitid_pidfd(it->pidfd, WEXITED);
        slots_.erase(it);
        give_up((!pr ? pr.error() : cr.error()).what());
        return false;
    }
    it->pid_reg = std::move(*pr);
    it->channel_reg = std::move(*cr);
    return true;
}

void Daemon::on_channel(Slot& s) {
    char buf[4096];
    ssize_t n = ::recv(s.channel.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) s.channel_reg.reset();
        return;
    }
    if (buf[0] == 'R') {
        s.ready = true;
        ever_ready_ = true;
        failures_ = 0;
        retry_delay_ = kFirstRetryDelay;
        failing_.clear();
        say_ready(true, "");
        dispatch();
        refill();  // (after a failing spell: the rest)
    } else if (buf[0] == 'F') {
        s.failure.assign(buf + 1, static_cast<std::size_t>(n - 1));
    }
}

void Daemon::on_exit(std::list<Slot>::iterator it) {
    (void)waitid_pidfd(it->pidfd, WEXITED);
    bool failed = !it->busy;  // it ended before a command came: it failed to set up
    std::string why = it->failure.empty() ? "a sandbox's supervisor ended" : it->failure;
    slots_.erase(it);
    if (stopping_) return;
    if (failed && (!ever_ready_ || ++failures_ >= kMaxFailures)) {
        give_up("its sandboxes fail to set up: " + why);
        return;
    }
    if (failing_.empty()) refill();
}

void Daemon::refill() {
    while (!stopping_ && failing_.empty() && idle() < pr_.size)
        if (!spawn_slot()) return;
}

void Daemon::give_up(const std::string& why) {
    for (Fd& c : waiting_)
        refuse(c.get(), "pool " + pr_.name + ": " + why);
    waiting_.clear();
    if (!ever_ready_) {
        // None was ever prepared (start says why): the pool ends.
        say_ready(false, why);
        begin_stop();
        return;
    }
    // kMaxFailures in a row (a bind source moved away, the host out of something): commands
    // are refused saying why, those running go on, and preparing is tried again later, each
    // time after twice the wait (1 s to 60 s).
    failing_ = why;
    auto t = TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock);
    if (t && t->set_relative(retry_delay_)) {
        retry_ = std::move(*t);
        auto reg = loop_.add(retry_->fd(), IoEvent::In, [this](IoEvents) {
            retry_reg_.reset();
            if (!stopping_) (void)spawn_slot();
        });
        if (reg) retry_reg_ = std::move(*reg);
    }
    retry_delay_ = std::min<std::chrono::milliseconds>(retry_delay_ * 2, kMaxRetryDelay);
}

void Daemon::dispatch() {
    while (!waiting_.empty()) {
        auto it = std::find_if(slots_.begin(), slots_.end(),
                               [](const Slot& s) { return s.ready && !s.busy; });
        if (it == slots_.end()) return;
        int fd = waiting_.front().get();
        char c = 'c';
        if (auto r = send_fds(it->channel, std::span<const int>(&fd, 1), std::span(&c, 1)); !r) {
            (void)pidfd_send_signal(it->pidfd, SIGKILL);  // a broken one: another is prepared
            it->busy = true;
        } else {
            it->busy = true;
            waiting_.pop_front();
        }
        if (!spawn_slot()) return;  // one more prepared in the background
    }
}

// Why the peer may not use the pool although its uid is the pool's, or "": a process in
// another user, mount or network namespace (a sandbox of the same user that reaches the
// socket, a caller confined to a network namespace of its own), or under a seccomp filter or
// no_new_privs the daemon does not have, would have the pool run commands beyond its own
// confinement. (SO_PEERPIDFD, Linux 6.5+: the pid is still the peer's after the checks.)
std::string peer_differs(int conn, pid_t pid) {
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    Fd peer;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
        peer = Fd(pidfd);
    const std::string proc = "/proc/" + std::to_string(pid);
    for (const char* ns : {"user", "mnt", "net"}) {
        struct stat mine {
        }, theirs{};
        if (::stat((std::string("/proc/self/ns/") + ns).c_str(), &mine) < 0 ||
            ::stat((proc + "/ns/" + ns).c_str(), &theirs) < 0 || mine.st_ino != theirs.st_ino ||
            mine.st_dev != theirs.st_dev)
            return std::string("the caller's ") + (std::string_view(ns) == "mnt" ? "mount" : ns) +
                   " namespace is not the pool's";
    }
    auto status = [](const std::string& path, const char* key) {
        auto text = read_file(path.c_str());
        if (!text) return std::string("?");
        auto at = text->find(std::string("\n") + key + ":");
        if (at == std::string::npos) return std::string("?");
        auto start = text->find_first_not_of(" \t", at + std::strlen(key) + 2);
        return text->substr(start, text->find('\n', start) - start);
    };
    for (const char* key : {"NoNewPrivs", "Seccomp"}) {
        std::string mine = status("/proc/self/status", key), theirs = status(proc + "/status", key);
        if (theirs == "?" || (theirs != "0" && mine == "0"))
            return std::string("the caller runs under ") +
                   (std::string_view(key) == "Seccomp" ? "a seccomp filter" : "no_new_privs") +
                   " the pool does not have";
    }
    if (peer.valid() && !pidfd_send_signal(peer, 0)) return "the caller is gone";
    return "";
}

void Daemon::on_accept() {
    for (;;) {
        int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // EAGAIN (or a connection gone before it was taken)
        Fd conn(c);
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != ::geteuid()) {
            refuse(c, "pool " + pr_.name + " belongs to uid " + std::to_string(::geteuid()) +
                          ": uid " + std::to_string(cred.uid) + " may not use it");
            continue;
        }
        if (std::string why = peer_differs(c, cred.pid); !why.empty()) {
            refuse(c, "pool " + pr_.name + ": " + why +
                          " (its commands would run outside that): use butter run there");
            continue;
        }
        if (incoming_.size() >= kMaxWaiting) {
            refuse(c, "pool " + pr_.name + ": too many connections waiting");
            continue;
        }
        // Its request when it comes: the daemon never waits for one connection.
        incoming_.push_back({std::move(conn), {}});
        auto it = std::prev(incoming_.end());
        auto reg = loop_.add(it->conn, IoEvent::In, [this, it](IoEvents) { on_request(it); });
        if (!reg) {
            incoming_.erase(it);
            continue;
        }
        it->reg = std::move(*reg);
    }
}

void Daemon::on_request(std::list<Incoming>::iterator it) {
    Fd conn = std::move(it->conn);
    incoming_.erase(it);  // (its registration with it)
    int c = conn.get();
    Header h;
    // The client writes its header whole: anything shorter is not one of ours. (MSG_DONTWAIT:
    // the descriptor's own flags are the supervisor's to keep, blocking.)
    ssize_t n = ::recv(c, &h, sizeof h, MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(sizeof h) || h.magic != kMagic) return;
    if (h.request == Header::Stop) {
        stopper_ = std::move(conn);
        begin_stop();
        return;
    }
    if (h.request != Header::Run) return;
    std::string changed = changed_file();
    if (!changed.empty()) {
        refuse(c, "pool " + pr_.name + ": " + changed +
                      " after the pool prepared its sandboxes: start the pool "
                      "again (butter pool stop " +
                      pr_.name + ", then butter pool start)");
    } else if (stopping_) {
        refuse(c, "pool " + pr_.name + " stopped");
    } else if (!failing_.empty() && std::none_of(slots_.begin(), slots_.end(), [](const Slot& x) {
                   return x.ready && !x.busy;
               })) {
        refuse(c, "pool " + pr_.name + ": " + failing_ + " (trying again)");
    } else if (waiting_.size() >= kMaxWaiting) {
        refuse(c, "pool " + pr_.name + ": too many commands waiting for a sandbox");
    } else {
        waiting_.push_back(std::move(conn));
        dispatch();
    }
}

void Daemon::begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    (void)::unlinkat(dir_.get(), (pr_.name + ".sock").c_str(), 0);
    listener_reg_.reset();
    listener_.reset();
    incoming_.clear();
    for (Fd& c : waiting_)
        refuse(c.get(), "pool " + pr_.name + " stopped");
    waiting_.clear();
    // The idle sandboxes go at once (their supervisors see the channel close: the sandbox is
    // killed, its cgroups removed); the running commands stop as `butter run`'s do on SIGTERM
    // (their stop signal, SIGKILL after the grace period). Whatever is left after
    // kStopDeadline is killed.
    for (Slot& s : slots_) {
        if (s.busy)
            (void)pidfd_send_signal(s.pidfd, SIGTERM);
        else
            (void)::shutdown(s.channel.get(), SHUT_RDWR);
    }
    auto t = TimerFd::create(butter::Clock::Monotonic, TimerFdFlag::NonBlock);
    if (t && t->set_relative(kStopDeadline)) {
        stop_timer_ = std::move(*t);
        auto reg = loop_.add(stop_timer_->fd(), IoEvent::In, [this](IoEvents) {
            stop_reg_.reset();
            for (Slot& s : slots_)
                (void)pidfd_send_signal(s.pidfd, SIGKILL);
        });
        if (reg) stop_reg_ = std::move(*reg);
    }
}

int Daemon::run() {
    auto sfd = SignalFd::create(SignalSet{SIGTERM, SIGINT, SIGHUP}, SignalFdFlag::NonBlock);
    if (!sfd) {
        std::fprintf(stderr, "butter: pool %s: %s\n", pr_.name.c_str(), sfd.error().what().c_str());
        return kFailed;
    }
    auto sreg = loop_.add(sfd->fd(), IoEvent::In, [&](IoEvents) {
        while (auto got = sfd->read_event())
            if (!*got) break;
        begin_stop();
    });
    auto lreg = loop_.add(listener_, IoEvent::In, [this](IoEvents) { on_accept(); });
    if (!sreg || !lreg) {
        std::fprintf(stderr, "butter: pool %s: %s\n", pr_.name.c_str(),
                     (!sreg ? sreg.error() : lreg.error()).what().c_str());
        return kFailed;
    }
    signal_reg_ = std::move(*sreg);
    listener_reg_ = std::move(*lreg);
    refill();
    auto done = loop_.run_until([this] { return stopping_ && slots_.empty(); });
    if (stopper_.valid()) {
        Reply r;
        r.status = 0;
        (void)send_frame(stopper_.get(), encode_reply(r));
    }
    if (!done) {
        std::fprintf(stderr, "butter: pool %s: %s\n", pr_.name.c_str(),
                     done.error().what().c_str());
        return kFailed;
    }
    return 0;
}

}  // namespace

int start(const StartOptions& o) {
    auto say = [&](const std::string& line) {
        std::fprintf(stderr, "butter: pool %s: %s\n", o.name.c_str(), line.c_str());
        return kFailed;
    };
    if (auto ok = check_name(o.name); !ok) {
        std::fprintf(stderr, "butter: pool: %s\n", ok.error().text().c_str());
        return kFailed;
    }
    // The daemon keeps nothing its starter left open (its sandboxes' supervisors close them
    // anyway), from before it opens anything of its own.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    Prepared pr;
    pr.name = o.name;
    pr.size = o.size;
    pr.verbosity = o.verbosity;
    profile::LoadOptions lo;
    lo.overrides = o.sets;
    pr.loaded = profile::load(o.profile, lo);
    for (const auto& d : pr.loaded.diagnostics)
        if (d.severity != profile::Diagnostic::Severity::Note)
            std::fprintf(stderr, "%s\n", d.render().c_str());
    if (!pr.loaded.ok()) return kFailed;
    pr.spec = o.profile;
    if (o.profile) pr.located = profile::locate(*o.profile, profile::search_path());
    for (const std::string& path : pr.loaded.chain) {
        FileIdentity f{path, {}};
        if (::stat(path.c_str(), &f.st) == 0) pr.files.push_back(f);  // (not the built-in one)
    }
    PlanOptions po;
    po.argv = {"true"};  // each command's own comes with it
    po.builtin_programs = o.builtin_programs;
    profile::Diagnostics d;
    auto plan = make_plan(pr.loaded.profile, po, d);
    for (const auto& x : d)
        if (x.severity != profile::Diagnostic::Severity::Note)
            std::fprintf(stderr, "%s\n", x.render().c_str());
    if (!plan) return kFailed;
    pr.plan = std::move(*plan);
    if (pr.plan.pty && pr.loaded.profile.process.session == profile::SessionMode::Auto) {
        pr.plan.pty = false;  // (the pool's own terminal, if any, is not its commands')
        pr.plan.pty_ptmx.clear();
    }
    if (std::string why = why_not_poolable(pr); !why.empty()) return say(why);
    std::vector<std::string> daemon_env;
    for (char** e = environ; e && *e; ++e)
        daemon_env.emplace_back(*e);
    const auto base = command_environment(pr.loaded.profile, daemon_env);
    for (const std::string& kv : pr.plan.env)
        if (kv.starts_with("HOME=") || std::find(base.begin(), base.end(), kv) == base.end())
            pr.butter_env.push_back(kv);
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return say(Error::from_errno("getcwd").what());
    pr.daemon_cwd = cwd;

    auto dir = open_dir(true);
    if (!dir) return say(dir.error().what());
    // Two starts of one name: one binds, the other finds it running.
    int locked = ::openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (locked < 0 || ::flock(locked, LOCK_EX) < 0)
        return say(Error::from_errno("flock", socket_path(o.name)).what());
    Fd lock(locked);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::string a = socket_address(*dir, o.name);
    std::memcpy(addr.sun_path, a.c_str(), a.size() + 1);
    if (auto running = connect(o.name)) {
        std::fprintf(stderr, "butter: pool %s is already running (%s)\n", o.name.c_str(),
                     socket_path(o.name).c_str());
        return 1;
    }
    // What is left of a pool that was killed: its socket, which nothing answers.
    if (::unlinkat(dir->get(), (o.name + ".sock").c_str(), 0) < 0 && errno != ENOENT)
        return say(Error::from_errno("unlink", socket_path(o.name)).what());
    int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ls < 0) return say(Error::from_errno("socket").what());
    Fd listener(ls);
    mode_t old = ::umask(0177);  // the socket 0600: only its user may connect
    int bound = ::bind(ls, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
    int bind_errno = errno;
    ::umask(old);
    if (bound < 0) return say(Error("bind", bind_errno, socket_path(o.name)).what());
    if (::listen(ls, 128) < 0) return say(Error::from_errno("listen").what());
    lock.reset();

    // The signals each sandbox's supervisor forwards (and the daemon's stop) are blocked
    // from here; the commands get the caller's mask back.
    SignalSet blocked = supervised_signals(pr.plan);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        blocked.add(sig);
    auto guard = SignalMaskGuard::block(blocked);
    if (!guard) return say(guard.error().what());
    pr.command_mask = guard->previous();
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);

    Fd ready_pipe;
    if (!o.foreground) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return say(Error::from_errno("pipe2").what());
        Fd rd(p[0]), wr(p[1]);
        pid_t pid = ::fork();
        if (pid < 0) return say(Error::from_errno("fork").what());
        if (pid > 0) {
            // `butter pool start` returns once the first sandbox is prepared, or says why not.
            wr.reset();
            listener.reset();
            std::string msg;
            char buf[4096];
            ssize_t n;
            while ((n = ::read(rd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
                if (n > 0) msg.append(buf, static_cast<std::size_t>(n));
            if (msg == "0") return 0;
            return say(msg.empty() ? "its daemon ended before a sandbox was prepared"
                                   : msg.substr(1));
        }
        rd.reset();
        ready_pipe = std::move(wr);
        (void)::setsid();
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            for (int fd = 0; fd < 3; ++fd)
                (void)::dup2(null, fd);
            ::close(null);
        }
    }
    auto loop = EventLoop::create();
    if (!loop) {
        if (ready_pipe.valid()) {
            std::string msg = "1" + loop.error().what();
            (void)::write(ready_pipe.get(), msg.data(), msg.size());
        }
        return say(loop.error().what());
    }
    Daemon daemon(pr, std::move(*dir), std::move(listener), std::move(ready_pipe),
                  std::move(*loop));
    return daemon.run();
}

Result<void> stop(std::string_view name) {
    BUTTER_ASSIGN_OR_RETURN(Fd sock, connect(name));
    Header h;
    h.request = Header::Stop;
    if (::send(sock.get(), &h, sizeof h, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof h))
        return fail_errno("send", "pool");
    BUTTER_ASSIGN_OR_RETURN(Frame f, recv_frame(sock.get(), kMaxReply, 0));
    BUTTER_ASSIGN_OR_RETURN(Reply r, decode_reply(f.data));
    if (r.status != 0) {
        std::string m = r.messages;
        if (m.starts_with("butter: ")) m.erase(0, 8);
        while (!m.empty() && m.back() == '\n')
            m.pop_back();
        return fail(Error::message("pool", m));
    }
    return {};
}

Result<Reply> run(std::string_view name, Command command, std::span<const int> stdio,
                  int signal_fd) {
    if (command.argv.empty()) return fail(Error::message("pool", "no command"));
    BUTTER_ASSIGN_OR_RETURN(Fd sock, connect(name));
    std::vector<Fd> nulls;
    std::vector<int> fds;
    for (std::size_t i = 0; i < 3; ++i) {
        int fd = i < stdio.size() ? stdio[i] : -1;
        if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
            int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null < 0) return fail_errno("open", "/dev/null");
            nulls.emplace_back(null);
            fd = null;
        }
        fds.push_back(fd);
    }
    Header h;
    // (A refusal may come before the request is read: the reply is read either way.)
    Result<void> sent;
    if (::send(sock.get(), &h, sizeof h, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof h))
        sent = fail_errno("send", "pool");
    else
        sent = send_frame(sock.get(), encode_command(command), fds);
    nulls.clear();
    for (;;) {
        struct pollfd p[2] = {{sock.get(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
        int n = ::poll(p, signal_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("poll", "pool");
        if (signal_fd >= 0 && (p[1].revents & POLLIN)) {
            struct signalfd_siginfo si {};
            while (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                SignalRecord rec;
                rec.signo = si.ssi_signo;
                (void)::send(sock.get(), &rec, sizeof rec, MSG_NOSIGNAL);
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            auto f = recv_frame(sock.get(), kMaxReply, 0);
            if (!f && f.error().errno_value() == EPIPE)
                return fail(Error::message(
                    "pool", std::string(name) + ": the sandbox ended without a status" +
                                (sent ? "" : " (" + sent.error().what() + ")")));
            if (!f) return fail(std::move(f).error());
            return decode_reply(f->data);
        }
    }
}

}  // namespace butter::launcher::pool
