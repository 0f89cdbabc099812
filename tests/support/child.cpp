#include "child.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace butter::test {

namespace {
int g_report_fd = -1;  // the child's end of the report pipe

void write_all(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        ssize_t r = ::write(fd, s.data() + done, s.size() - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        done += static_cast<std::size_t>(r);
    }
}
}  // namespace

void child_note(const std::string& line) {
    if (g_report_fd >= 0) write_all(g_report_fd, line + "\n");
}

void child_fail(const char* file, int line, const std::string& message) {
    child_note(std::string(file) + ":" + std::to_string(line) + ": " + message);
    ::_exit(1);
}

ChildResult run_in_child(const std::function<int()>& fn) {
    ChildResult result;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) {
        result.output = "pipe2 failed";
        return result;
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        g_report_fd = fds[1];
        ::_exit(fn());
    }
    ::close(fds[1]);
    if (pid < 0) {
        ::close(fds[0]);
        result.output = "fork failed";
        return result;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exited = WIFEXITED(status);
    result.exit_code = result.exited ? WEXITSTATUS(status) : -1;
    result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return result;
}

ChildResult run_as_nobody(const std::function<int()>& fn) {
    return run_in_child([&] {
        if (::getuid() == 0) {
            if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
                ::setresuid(65534, 65534, 65534) < 0) {
                child_note("cannot drop to nobody");
                return 99;
            }
            // A credential change clears the dumpable flag, which makes /proc/self/* root's
            // and so uid_map unwritable; a real unprivileged process is dumpable.
            ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
        return fn();
    });
}

}  // namespace butter::test
