/* floor BPF_FILE CMD [ARG...]: the start-up benchmark's floor. A minimal static launcher that
 * does bwrap's work for
 *   bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib
 *         --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp CMD
 * plus what butter adds by default: no capabilities, no_new_privs and a seccomp filter (the
 * BPF in BPF_FILE, exported by bench_export_bpf), with a PID 1 that waits for CMD. No checks
 * beyond "die on error", no configuration, no supervision: what is left is the kernel's price
 * of the isolation, measured in the same run as the launchers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
    perror(what);
    _exit(125);
}

static void write_file(const char* path, const char* text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
    close(fd);
}

static void bind_ro(const char* src, const char* dst) {
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) die(dst);
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        die(dst);
}

static void build_dev(void) {
    static const char* nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char src[64], dst[64];
    if (mkdir("dev", 0755) < 0 || mount("tmpfs", "dev", "tmpfs", MS_NOSUID, "mode=0755") < 0)
        die("dev");
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; ++i) {
        snprintf(src, sizeof src, "/dev/%s", nodes[i]);
        snprintf(dst, sizeof dst, "dev/%s", nodes[i]);
        int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0) die(dst);
        close(fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) die(dst);
    }
    if (mkdir("dev/pts", 0755) < 0 || mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                                            "newinstance,ptmxmode=0666") < 0)
        die("dev/pts");
    if (symlink("pts/ptmx", "dev/ptmx") < 0 || symlink("/proc/self/fd", "dev/fd") < 0 ||
        symlink("/proc/self/fd/0", "dev/stdin") < 0 ||
        symlink("/proc/self/fd/1", "dev/stdout") < 0 ||
        symlink("/proc/self/fd/2", "dev/stderr") < 0)
        die("dev symlinks");
    if (mkdir("dev/shm", 01777) < 0 ||
        mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, NULL) < 0)
        die("dev/shm");
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor BPF_FILE CMD [ARG...]\n");
        return 2;
    }
    static struct sock_filter insns[4096];
    int bpf = open(argv[1], O_RDONLY | O_CLOEXEC);
    ssize_t n = bpf < 0 ? -1 : read(bpf, insns, sizeof insns);
    if (n <= 0) die(argv[1]);
    close(bpf);
    struct sock_fprog prog = {(unsigned short)(n / sizeof insns[0]), insns};
    char map[64];
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)getuid());
    char gmap[64];
    snprintf(gmap, sizeof gmap, "0 %u 1\n", (unsigned)getgid());

    int pidfd = -1;
    struct clone_args ca = {0};
    ca.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
               CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD;
    ca.pidfd = (unsigned long)&pidfd;
    ca.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0) die("clone3");
    if (pid > 0) {
        siginfo_t si;
        if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0) die("waitid");
        return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    }

    /* The child: PID 1 of the new namespaces. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("PR_SET_PDEATHSIG");
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", map);
    write_file("/proc/self/gid_map", gmap);
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) die("propagation");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) die("root tmpfs");
    if (chdir("/tmp") < 0) die("chdir");
    if (mkdir("usr", 0755) < 0) die("usr");
    bind_ro("/usr", "usr");
    if (symlink("usr/bin", "bin") < 0 || symlink("usr/lib", "lib") < 0 ||
        symlink("usr/lib64", "lib64") < 0)
        die("symlinks");
    if (mkdir("proc", 0755) < 0 ||
        mount("proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
        die("proc");
    build_dev();
    if (mkdir("tmp", 01777) < 0 || mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, NULL) < 0)
        die("tmp");
    if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0) die("umount old root");
    if (chdir("/") < 0) die("chdir /");

    pid_t cmd = fork();
    if (cmd < 0) die("fork");
    if (cmd == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        if (syscall(SYS_capset, &h, d) < 0) die("capset");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) die("seccomp");
        execvp(argv[2], argv + 2);
        die(argv[2]);
    }
    int status;
    for (;;) {
        pid_t w = wait(&status);
        if (w == cmd) break;
        if (w < 0) die("wait");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
