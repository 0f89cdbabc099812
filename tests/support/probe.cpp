// butter-probe: a small static multi-call program run inside sandboxes by the integration
// tests. Each subcommand prints one fact or tries one thing and reports it, so the tests
// assert on the sandbox from the inside (as bubblewrap's try-syscall and crun's init do).
//
//   probe hostname | ids | pid | caps | fds | procs | zombies | ifaces
//   probe write PATH | read PATH | exists PATH | ns NAME (its /proc/self/ns/NAME link)
//   probe dir PATH                "<mode> <entries> same|other": other = not on /'s filesystem
//   probe owner PATH              "<uid> <gid> <mode>" (lstat) | env NAME: its value or (unset)
//   probe try-syscall NAME        exit status = errno of the call (0 = it worked)
//   probe connect PORT            tcp connect to 127.0.0.1:PORT: "connected" or the errno name
//   probe sleep SECONDS | wait-signal | ignore-term SECONDS | orphans N | spawn-daemon
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

// One datagram to `a` carrying `text` and `fd` (SCM_RIGHTS), as sd_notify does with a barrier's.
ssize_t send_with_fd(int s, sockaddr_un* a, const char* text, int fd) {
    iovec iov{const_cast<char*>(text), strlen(text)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_name = a;  // (none: a connected socket)
    m.msg_namelen = a ? sizeof *a : 0;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(s, &m, 0);
}

int report_errno(int r) {
    if (r >= 0) {
        std::puts("ok");
        return 0;
    }
    int e = errno;
    std::printf("%s\n", strerrorname_np(e));
    return 1;
}

std::string status_field(const char* name) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(name, 0) == 0) return line.substr(line.find(':') + 1);
    return "";
}

std::string trim(std::string s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.erase(s.begin());
    return s;
}

int count_procs(bool zombies_only) {
    int n = 0;
    DIR* d = opendir("/proc");
    if (!d) return -1;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (!zombies_only) {
            ++n;
            continue;
        }
        std::ifstream st(std::string("/proc/") + e->d_name + "/stat");
        std::string line;
        std::getline(st, line);
        auto paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') ++n;
    }
    closedir(d);
    return n;
}

int try_syscall(const std::string& name) {
    long r = -1;
    errno = 0;
    if (name == "mount")
        r = ::mount("none", "/tmp", "tmpfs", 0, nullptr);
    else if (name == "umount2")
        r = ::umount2("/proc", MNT_DETACH);
    else if (name == "pivot_root")
        r = ::syscall(SYS_pivot_root, "/tmp", "/tmp");
    else if (name == "unshare-user")
        r = ::unshare(CLONE_NEWUSER);
    else if (name == "unshare-net")
        r = ::unshare(CLONE_NEWNET);
    else if (name == "sethostname")
        r = ::sethostname("x", 1);
    else if (name == "keyctl")
        r = ::syscall(SYS_keyctl, 0, 0, 0, 0, 0);
    else if (name == "bpf")
        r = ::syscall(SYS_bpf, 0, nullptr, 0);
    else if (name == "perf_event_open")
        r = ::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0);
    else if (name == "userfaultfd")
        r = ::syscall(SYS_userfaultfd, 0);
    else if (name == "ptrace")
        r = ::syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
    else if (name == "reboot")
        r = ::syscall(SYS_reboot, 0, 0, 0, nullptr);
    else if (name == "init_module")
        r = ::syscall(SYS_init_module, nullptr, 0, "");
    else if (name == "swapon")
        r = ::syscall(SYS_swapon, "/nonexistent", 0);
    else if (name == "chroot")
        r = ::chroot("/");
    else if (name == "getpid")
        r = ::syscall(SYS_getpid);
    else if (name == "io_uring_setup")
        r = ::syscall(SYS_io_uring_setup, 1, nullptr);
    else if (name == "x32-getpid")
        r = ::syscall(0x40000000 | SYS_getpid);
    else if (name == "int80-getpid") {
        long ret;
        asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        if (ret < 0) errno = static_cast<int>(-ret);
        r = ret < 0 ? -1 : ret;
    } else if (name.rfind("nr:", 0) == 0) {
        r = ::syscall(std::atol(name.c_str() + 3), 0, 0, 0, 0, 0);
    } else if (name.rfind("socket:", 0) == 0) {
        r = ::socket(std::atoi(name.c_str() + 7), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } else if (name == "tiocsti-junk") {
        // TIOCSTI with junk in the upper half: the kernel takes the low 32 bits.
        char c = 'x';
        r = ::syscall(SYS_ioctl, 0, 0xdead000000000000ULL | TIOCSTI, &c);
    } else if (name == "clone-newuser") {
        r = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0) _exit(0);
        if (r > 0) waitpid(static_cast<pid_t>(r), nullptr, 0);
    } else if (name == "clone3") {
        r = ::syscall(SYS_clone3, nullptr, 0);
    } else {
        std::fprintf(stderr, "probe: unknown syscall %s\n", name.c_str());
        return 255;
    }
    if (r >= 0) return 0;
    std::printf("%s\n", strerrorname_np(errno));
    return errno;
}

volatile sig_atomic_t g_signal = 0;
void on_signal(int s) {
    g_signal = s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 254;
    std::string cmd = argv[1];
    std::string arg = argc > 2 ? argv[2] : "";
    if (cmd == "hostname") {
        char buf[128] = {};
        gethostname(buf, sizeof buf - 1);
        std::puts(buf);
    } else if (cmd == "ns") {
        // The namespace NAME this process is in, as /proc/self/ns/NAME names it.
        char buf[64] = {};
        std::string link = "/proc/self/ns/" + arg;
        if (readlink(link.c_str(), buf, sizeof buf - 1) < 0) return 1;
        std::puts(buf);
    } else if (cmd == "ids") {
        std::printf("%u %u\n", getuid(), getgid());
    } else if (cmd == "pid") {
        std::printf("%ld\n", static_cast<long>(syscall(SYS_getpid)));
    } else if (cmd == "caps") {
        std::printf("CapEff=%s CapPrm=%s CapBnd=%s NoNewPrivs=%s Seccomp=%s\n",
                    trim(status_field("CapEff")).c_str(), trim(status_field("CapPrm")).c_str(),
                    trim(status_field("CapBnd")).c_str(), trim(status_field("NoNewPrivs")).c_str(),
                    trim(status_field("Seccomp")).c_str());
    } else if (cmd == "fds") {
        DIR* d = opendir("/proc/self/fd");
        int self = d ? dirfd(d) : -1;
        std::string out;
        while (dirent* e = d ? readdir(d) : nullptr) {
            if (e->d_name[0] == '.') continue;
            int fd = std::atoi(e->d_name);
            if (fd > 2 && fd != self) out += std::to_string(fd) + " ";
        }
        if (d) closedir(d);
        std::printf("fds:%s\n", out.c_str());
    } else if (cmd == "procs") {
        std::printf("%d\n", count_procs(false));
    } else if (cmd == "zombies") {
        std::printf("%d\n", count_procs(true));
    } else if (cmd == "ifaces") {
        struct if_nameindex* ifs = if_nameindex();
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        for (auto* i = ifs; i && i->if_name; ++i) {
            struct ifreq ifr {};
            strncpy(ifr.ifr_name, i->if_name, IFNAMSIZ - 1);
            ioctl(s, SIOCGIFFLAGS, &ifr);
            std::printf("%s:%s\n", i->if_name, (ifr.ifr_flags & IFF_UP) ? "up" : "down");
        }
        if (ifs) if_freenameindex(ifs);
    } else if (cmd == "write") {
        int fd = open(arg.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0 && write(fd, "probe\n", 6) != 6) fd = -1;
        return report_errno(fd);
    } else if (cmd == "read") {
        std::ifstream in(arg);
        if (!in) return report_errno(-1);
        std::string line;
        std::getline(in, line);
        std::puts(line.c_str());
    } else if (cmd == "dir") {
        // "<mode> <entries> <same|other>": the directory's mode, how many entries it lists,
        // and whether it is on the filesystem of / (st_dev).
        struct stat st {
        }, root{};
        if (stat(arg.c_str(), &st) < 0 || stat("/", &root) < 0) return report_errno(-1);
        DIR* d = opendir(arg.c_str());
        if (!d) return report_errno(-1);
        int entries = 0;
        while (const dirent* e = readdir(d))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++entries;
        closedir(d);
        std::printf("%o %d %s\n", st.st_mode & 07777, entries,
                    st.st_dev == root.st_dev ? "same" : "other");
    } else if (cmd == "owner") {
        // "<uid> <gid> <mode>" of the path (lstat).
        struct stat st {};
        if (lstat(arg.c_str(), &st) < 0) return report_errno(-1);
        std::printf("%u %u %o\n", st.st_uid, st.st_gid, st.st_mode & 07777);
    } else if (cmd == "env") {
        const char* v = getenv(arg.c_str());
        std::puts(v ? v : "(unset)");
    } else if (cmd == "exists") {
        std::puts(access(arg.c_str(), F_OK) == 0 ? "yes" : "no");
    } else if (cmd == "try-syscall") {
        return try_syscall(arg);
    } else if (cmd == "connect") {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) return report_errno(-1);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(std::atoi(arg.c_str())));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            std::puts("connected");
            return 0;
        }
        return report_errno(-1);
    } else if (cmd == "sleep") {
        sleep(static_cast<unsigned>(std::atoi(arg.c_str())));
    } else if (cmd == "wait-signal") {
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGUSR1, on_signal);
        std::puts("ready");
        std::fflush(stdout);
        while (!g_signal)
            pause();
        std::printf("got %s\n", sigabbrev_np(g_signal));
        return 0;
    } else if (cmd == "ignore-term") {
        signal(SIGTERM, SIG_IGN);
        std::puts("ready");
        std::fflush(stdout);
        sleep(static_cast<unsigned>(std::atoi(arg.c_str())));
    } else if (cmd == "orphans") {
        // Children that fork grandchildren and exit: the grandchildren are orphaned to PID 1.
        int n = std::atoi(arg.c_str());
        for (int i = 0; i < n; ++i) {
            pid_t p = fork();
            if (p == 0) {
                if (fork() == 0) _exit(0);  // orphan: exits at once, reaped by init
                _exit(0);
            }
            waitpid(p, nullptr, 0);
        }
        usleep(200000);
        std::printf("%d\n", count_procs(true));
    } else if (cmd == "emit") {
        // N pseudo-random bytes (xorshift64 from a fixed seed) on stdout.
        unsigned long long left = std::strtoull(arg.c_str(), nullptr, 10);
        std::uint64_t x = 88172645463325252ULL;
        static std::uint64_t buf[8192];
        while (left > 0) {
            for (auto& w : buf) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w = x;
            }
            std::size_t n = left < sizeof buf ? static_cast<std::size_t>(left) : sizeof buf;
            const char* p = reinterpret_cast<const char*>(buf);
            for (std::size_t off = 0; off < n;) {
                ssize_t w = write(1, p + off, n - off);
                if (w <= 0) return 1;
                off += static_cast<std::size_t>(w);
            }
            left -= n;
        }
    } else if (cmd == "spin") {
        // Burns CPU for MS milliseconds of its own CPU time.
        long ms = std::atol(arg.c_str());
        struct timespec ts {};
        volatile unsigned long sink = 0;
        do {
            for (int i = 0; i < 100000; ++i)
                sink = sink + static_cast<unsigned long>(i);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        } while (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 < ms);
    } else if (cmd == "alloc") {
        // Touches MB megabytes, then sleeps a moment holding them.
        std::size_t mb = static_cast<std::size_t>(std::atol(arg.c_str()));
        char* p = static_cast<char*>(malloc(mb << 20));
        if (!p) return 1;
        for (std::size_t i = 0; i < (mb << 20); i += 4096)
            p[i] = 1;
        usleep(100000);
        std::puts("allocated");
    } else if (cmd == "forkbomb") {
        // Forks paused children until fork fails; prints how many it got.
        int made = 0;
        for (; made < 100000; ++made) {
            pid_t p = fork();
            if (p == 0) {
                pause();
                _exit(0);
            }
            if (p < 0) break;
        }
        std::printf("%d %s\n", made, strerrorname_np(errno));
        std::fflush(stdout);
        kill(0, SIGKILL);
    } else if (cmd == "open-many") {
        int n = 0;
        while (open("/dev/null", O_RDONLY) >= 0)
            ++n;
        std::printf("%d %s\n", n, strerrorname_np(errno));
    } else if (cmd == "notify") {
        // sd_notify(MSG) by hand: one datagram to $NOTIFY_SOCKET.
        const char* path = getenv("NOTIFY_SOCKET");
        if (!path) {
            std::puts("no NOTIFY_SOCKET");
            return 0;
        }
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        std::string msg = arg;
        for (auto& c : msg)
            c = c == ';' ? '\n' : c == '|' ? '\r' : c;
        if (sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
            return report_errno(-1);
        std::puts("sent");
    } else if (cmd == "notify-cut" || cmd == "notify-barrier") {
        // notify-cut: a datagram whose first 4096 bytes end in a line "READY=1" (the rest of
        // that line says otherwise): what a relay that reads 4096 bytes would send on.
        // notify-barrier: BARRIER=1 with a pipe's write end, as sd_notify_barrier() does;
        // "barrier ok" once the manager has closed every copy (POLLHUP on the read end).
        const char* path = getenv("NOTIFY_SOCKET");
        if (!path) return std::puts("no NOTIFY_SOCKET"), 0;
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        if (cmd == "notify-cut") {
            std::string msg = "X-PAD=" + std::string(4082, 'a') + "\nREADY=1-NOT-REALLY\n";
            if (sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
                return report_errno(-1);
            std::puts("sent");
            return 0;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) return report_errno(-1);
        if (send_with_fd(s, &a, "BARRIER=1", p[1]) < 0) return report_errno(-1);
        close(p[1]);
        pollfd w{p[0], POLLIN, 0};
        int n = poll(&w, 1, 3000);
        std::puts(n == 1 && (w.revents & POLLHUP) ? "barrier ok" : "barrier timeout");
    } else if (cmd == "notify-linger" || cmd == "notify-linger-nested") {
        // A message the relay drops ("X=1") with a TCP socket whose last close would wait:
        // SO_LINGER set, its send buffer full towards a peer that never reads (nested: a unix
        // socket holding that one in flight). Then sleeps ARG seconds.
        const char* path = getenv("NOTIFY_SOCKET");
        if (!path) return std::puts("no NOTIFY_SOCKET"), 0;
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof in;
        if (bind(l, reinterpret_cast<sockaddr*>(&in), sizeof in) < 0 || listen(l, 1) < 0 ||
            getsockname(l, reinterpret_cast<sockaddr*>(&in), &len) < 0)
            return report_errno(-1);
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(c, reinterpret_cast<sockaddr*>(&in), sizeof in) < 0) return report_errno(-1);
        fcntl(c, F_SETFL, O_NONBLOCK);
        static char chunk[65536];
        while (send(c, chunk, sizeof chunk, MSG_NOSIGNAL) > 0) {
        }
        linger lg{1, 3600};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        if (cmd == "notify-linger-nested") {
            int pair[2];
            if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0 ||
                send_with_fd(pair[0], nullptr, "in flight", c) < 0)
                return report_errno(-1);
            close(c);
            close(pair[0]);
            c = pair[1];
        }
        if (send_with_fd(s, &a, "X=1", c) < 0) return report_errno(-1);
        close(c);
        std::puts("sent");
        std::fflush(stdout);
        sleep(static_cast<unsigned>(std::atoi(arg.c_str())));
    } else if (cmd == "service") {
        // A Type=notify daemon: READY=1, serve until SIGTERM, STOPPING=1, exit ARG.
        const char* path = getenv("NOTIFY_SOCKET");
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (path) strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        auto notify = [&](const char* msg) {
            if (path) sendto(s, msg, strlen(msg), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
        };
        signal(SIGTERM, on_signal);
        notify("READY=1\nSTATUS=serving");
        while (!g_signal)
            pause();
        notify("STOPPING=1");
        return std::atoi(arg.c_str());
    } else if (cmd == "listen-serve") {
        // Socket activation: LISTEN_PID must be us, fd 3 a listening socket to serve once.
        const char* lp = getenv("LISTEN_PID");
        const char* lf = getenv("LISTEN_FDS");
        const char* ln = getenv("LISTEN_FDNAMES");
        if (!lp || !lf || std::atol(lp) != getpid() || std::atoi(lf) != 1) {
            std::printf("bad env: LISTEN_PID=%s LISTEN_FDS=%s pid=%d\n", lp ? lp : "-",
                        lf ? lf : "-", getpid());
            return 1;
        }
        int c = accept(3, nullptr, nullptr);
        if (c < 0) return report_errno(-1);
        std::string hello = std::string("hello from ") + (ln ? ln : "?") + "\n";
        (void)!write(c, hello.data(), hello.size());
        close(c);
        std::puts("served");
    } else if (cmd == "spawn-daemon") {
        // A double-forked daemon that tries to outlive the sandbox, writing its pid.
        pid_t p = fork();
        if (p == 0) {
            setsid();
            if (fork() == 0) {
                for (;;)
                    pause();
            }
            _exit(0);
        }
        waitpid(p, nullptr, 0);
        std::puts("spawned");
    } else {
        std::fprintf(stderr, "probe: unknown command %s\n", cmd.c_str());
        return 254;
    }
    return 0;
}
