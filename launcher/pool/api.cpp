// butter::Pool (butter/pool.hpp) over the pool's client (pool/pool.hpp).
#include <unistd.h>

#include <cerrno>

#include <butter/pool.hpp>

#include "pool/pool.hpp"

extern char** environ;

namespace butter {

Result<Pool> Pool::open(std::string name) {
    // (connected once here to say early whether it runs; each run connects again)
    BUTTER_ASSIGN_OR_RETURN(Fd probe, launcher::pool::connect(name));
    (void)probe;
    return Pool(std::move(name));
}

Result<PoolResult> Pool::run(const PoolCommand& command) const {
    launcher::pool::Command c;
    c.argv = command.argv;
    c.env = command.env;
    if (c.env.empty())
        for (char** e = environ; e && *e; ++e)
            c.env.emplace_back(*e);
    c.cwd = command.cwd;
    if (c.cwd.empty()) {
        char buf[4096];
        if (!::getcwd(buf, sizeof buf)) return fail_errno("getcwd");
        c.cwd = buf;
    }
    c.report = command.report;
    c.context = launcher::pool::ProcessContext::of_this_process();
    const int stdio[3] = {command.stdin_fd, command.stdout_fd, command.stderr_fd};
    BUTTER_ASSIGN_OR_RETURN(launcher::pool::Reply r,
                            launcher::pool::run(name_, std::move(c), stdio, command.signal_fd));
    PoolResult out;
    out.exit_status = r.status;
    out.messages = std::move(r.messages);
    out.log = std::move(r.log);
    out.report = std::move(r.report);
    return out;
}

Result<void> Pool::stop() const {
    return launcher::pool::stop(name_);
}

}  // namespace butter
