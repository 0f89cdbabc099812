#include "butter/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <thread>

#include "butter/process.hpp"
#include "sys.hpp"

namespace butter {

namespace {

std::string read_text(const std::string& path) {
    return read_file(path.c_str()).value_or("");
}

// The whitespace-separated words of `s`, as views into it.
std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        i = s.find_first_not_of(" \t\n", i);
        if (i == std::string_view::npos) break;
        std::size_t j = std::min(s.find_first_of(" \t\n", i), s.size());
        out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// Each line of `s` without its newline, the last one also without one.
template <typename F>
void for_each_line(std::string_view s, F&& fn) {
    while (!s.empty()) {
        std::size_t nl = std::min(s.find('\n'), s.size());
        fn(s.substr(0, nl));
        s.remove_prefix(std::min(nl + 1, s.size()));
    }
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

// mountinfo fields: id parent dev root mountpoint options [optional...] - fstype source super
struct MountLine {
    std::string mountpoint, fstype, super_options;
};

std::vector<MountLine> cgroup_mounts() {
    std::vector<MountLine> out;
    std::string text = read_text("/proc/self/mountinfo");
    for_each_line(text, [&](std::string_view line) {
        auto dash = line.find(" - ");
        if (dash == std::string_view::npos) return;
        auto head = words(line.substr(0, dash)), tail = words(line.substr(dash + 3));
        if (head.size() < 5 || tail.size() < 3) return;
        if (tail[0] == "cgroup" || tail[0] == "cgroup2")
            out.push_back(
                {std::string(head[4]), std::string(tail[0]), "," + std::string(tail[2]) + ","});
    });
    return out;
}

}  // namespace

Result<CgroupHierarchy> find_cgroup_hierarchy(std::string_view controller) {
    // /proc/self/cgroup: "0::/path" for v2, "N:ctrl1,ctrl2:/path" for v1.
    std::string v2_own;
    std::vector<std::pair<std::string, std::string>> v1;  // controllers, path
    std::string text = read_text("/proc/self/cgroup");
    for_each_line(text, [&](std::string_view line) {
        auto a = line.find(':');
        auto b = a == std::string_view::npos ? a : line.find(':', a + 1);
        if (b == std::string_view::npos) return;
        std::string_view ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (line.substr(0, a) == "0" && ctrls.empty()) {
            v2_own = path;
            // Moved into its leaf by enable_subtree_controller: its sandboxes go beside it.
            std::string leaf = "/" + std::string(kCgroupLeaf);
            if (v2_own.ends_with(leaf)) {
                v2_own.resize(v2_own.size() - leaf.size());
                if (v2_own.empty()) v2_own = "/";
            }
        } else
            v1.emplace_back("," + std::string(ctrls) + ",", path);
    });
    std::string want = "," + std::string(controller) + ",";
    for (const MountLine& m : cgroup_mounts()) {
        if (m.fstype == "cgroup2") {
            std::string ctrls = " " + read_text(m.mountpoint + "/cgroup.controllers");
            for (auto& ch : ctrls)
                if (ch == '\n') ch = ' ';
            if (!v2_own.empty() &&
                ctrls.find(" " + std::string(controller) + " ") != std::string::npos)
                return CgroupHierarchy{CgroupVersion::V2, m.mountpoint, v2_own};
        } else if (m.super_options.find(want) != std::string::npos) {
            for (const auto& [ctrls, path] : v1)
                if (ctrls.find(want) != std::string::npos)
                    return CgroupHierarchy{CgroupVersion::V1, m.mountpoint, path};
        }
    }
    return fail(Error::message("find_cgroup_hierarchy", "no cgroup hierarchy has this controller",
                               std::string(controller)));
}

namespace {

// The words of a cgroup v2 list file (cgroup.controllers, cgroup.subtree_control).
bool lists(const std::string& file, std::string_view word) {
    std::string text = read_text(file);
    for (std::string_view w : words(text))
        if (w == word) return true;
    return false;
}

Result<void> write_control(const std::string& file, std::string_view value) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", file);
    Fd owned(fd);
    ssize_t n = sys::retry_eintr([&] { return ::write(fd, value.data(), value.size()); });
    if (n < 0) return fail_errno("write", file + " = " + std::string(value));
    return {};
}

// Whether `pid` is this process or descends from it (a child started early, before the
// cgroups are made, and what that one started).
bool ours(pid_t pid) {
    for (int depth = 0; pid > 1 && depth < 16; ++depth) {
        if (pid == ::getpid()) return true;
        auto st = process_stat(pid);
        pid = st ? st->ppid : -1;
    }
    return false;
}

// "PID (comm)" for an error.
std::string describe(pid_t pid) {
    std::string comm = read_text("/proc/" + std::to_string(pid) + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    // Any process names itself (PR_SET_NAME): printable ASCII only reaches a terminal.
    for (char& c : comm)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    return std::to_string(pid) + " (" + comm + ")";
}

// Makes `own` a cgroup without processes: this process and its descendants move into the leaf
// (with `move_self`); anyone else there is EBUSY. Again while descendants appear (a child
// that forks meanwhile), a bounded number of times.
Result<void> empty_for_children(const std::string& own, bool move_self) {
    std::string leaf = own + "/" + std::string(kCgroupLeaf);
    for (int round = 0; round < 50; ++round) {
        std::vector<pid_t> mine, others;
        // (Named: words() points into it, and a range-for keeps only the outer temporary.)
        std::string procs = read_text(own + "/cgroup.procs");
        for (std::string_view w : words(procs)) {
            pid_t p = 0;
            if (parse_number(w, p)) (ours(p) ? mine : others).push_back(p);
        }
        if (mine.empty() && others.empty()) return {};
        if (!others.empty() || !move_self) {
            std::string who;
            for (pid_t p : others.empty() ? mine : others)
                who += (who.empty() ? "" : ", ") + describe(p);
            errno = EBUSY;
            return fail_errno("enable_subtree_controller",
                              own + " holds processes (" + who +
                                  "), and cgroup v2 puts cgroups only below one without");
        }
        if (round == 0 && ::mkdir(leaf.c_str(), 0755) < 0 && errno != EEXIST)
            return fail_errno("mkdir", leaf);
        for (pid_t p : mine) {
            auto moved = write_control(leaf + "/cgroup.procs", std::to_string(p));
            if (!moved && moved.error().errno_value() != ESRCH) return moved;  // (gone: fine)
        }
    }
    errno = EBUSY;
    return fail_errno("enable_subtree_controller", own + ": processes keep arriving");
}

}  // namespace

Result<void> enable_subtree_controller(const CgroupHierarchy& h, std::string_view controller,
                                       bool move_self) {
    if (h.version != CgroupVersion::V2) return {};
    std::string own = h.own_path();
    // Children only below a cgroup without processes (but the root's): the kernel refuses to
    // enable a domain controller (memory) beside processes, and while it lets threaded ones
    // (pids, cpu) be enabled there, that makes the cgroup a thread root whose new children
    // cannot take a process (EOPNOTSUPP).
    if (h.own != "/") BUTTER_TRY(empty_for_children(own, move_self));
    return enable_controller_in(own, controller);
}

Result<void> enable_controller_in(const std::string& dir, std::string_view controller) {
    if (lists(dir + "/cgroup.subtree_control", controller)) return {};
    if (!lists(dir + "/cgroup.controllers", controller)) {
        errno = ENOENT;
        return fail_errno("enable_subtree_controller",
                          dir + ": the " + std::string(controller) +
                              " controller is not delegated here (not in cgroup.controllers)");
    }
    return write_control(dir + "/cgroup.subtree_control", "+" + std::string(controller));
}

bool cgroup_delegated(const std::string& path) {
    // systemd (251+) marks a cgroup it delegates: trusted.delegate (the system manager, read
    // by root only) or user.delegate (a user manager).
    for (const char* name : {"trusted.delegate", "user.delegate"}) {
        char v[8] = {};
        if (::getxattr(path.c_str(), name, v, sizeof v) > 0 && v[0] == '1') return true;
    }
    // Unprivileged, trusted.* cannot be read: a cgroup systemd chowned to this user.
    struct stat st {};
    return ::geteuid() != 0 && ::stat(path.c_str(), &st) == 0 && st.st_uid == ::geteuid();
}

Result<Cgroup> Cgroup::create(const CgroupHierarchy& h, std::string_view name) {
    std::string path = h.own_path() + "/" + std::string(name);
    if (::mkdir(path.c_str(), 0755) < 0) return fail_errno("mkdir", path);
    return Cgroup(path, h.version);
}

Cgroup::Cgroup(Cgroup&& o) noexcept : path_(std::move(o.path_)), version_(o.version_) {
    o.path_.clear();
}

Cgroup& Cgroup::operator=(Cgroup&& o) noexcept {
    if (this != &o) {
        if (!path_.empty()) (void)destroy();
        path_ = std::move(o.path_);
        version_ = o.version_;
        o.path_.clear();
    }
    return *this;
}

Cgroup::~Cgroup() {
    if (!path_.empty()) (void)destroy();
}

bool Cgroup::has(std::string_view file) const {
    return ::access((path_ + "/" + std::string(file)).c_str(), F_OK) == 0;
}

Result<void> Cgroup::write(std::string_view file, std::string_view value) const {
    return write_control(path_ + "/" + std::string(file), value);
}

Result<std::string> Cgroup::read(std::string_view file) const {
    return read_file((path_ + "/" + std::string(file)).c_str());
}

Result<std::uint64_t> Cgroup::read_number(std::string_view file) const {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read(file));
    if (s.starts_with("max")) return std::numeric_limits<std::uint64_t>::max();
    std::uint64_t v = 0;
    auto w = words(s);
    if (w.size() != 1 || !parse_number(w[0], v))
        return fail(Error::message("read", "not a number: " + s, path_ + "/" + std::string(file)));
    return v;
}

Result<std::uint64_t> Cgroup::read_key(std::string_view file, std::string_view key) const {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read(file));
    auto w = words(s);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i + 1 < w.size(); i += 2)
        if (w[i] == key && parse_number(w[i + 1], v)) return v;
    return fail(
        Error::message("read", "no key " + std::string(key), path_ + "/" + std::string(file)));
}

Result<void> Cgroup::add(pid_t pid) const {
    return write("cgroup.procs", std::to_string(pid));
}

Result<std::vector<pid_t>> cgroup_processes(const std::string& dir) {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read_file((dir + "/cgroup.procs").c_str()));
    std::vector<pid_t> out;
    for (std::string_view w : words(s)) {
        pid_t p = 0;
        if (parse_number(w, p)) out.push_back(p);
    }
    return out;
}

Result<std::vector<pid_t>> Cgroup::processes() const {
    return cgroup_processes(path_);
}

Result<Fd> Cgroup::open_dir() const {
    return open(path_.c_str(), O_RDONLY | O_DIRECTORY);
}

Result<void> Cgroup::destroy() {
    if (path_.empty()) return {};
    if (version_ == CgroupVersion::V2 && has("cgroup.kill")) {
        (void)write("cgroup.kill", "1");
    } else if (auto procs = processes()) {
        for (pid_t p : *procs)
            ::kill(p, SIGKILL);
    }
    // Killed processes leave the cgroup only once they are reaped: retry for a moment.
    for (int i = 0;; ++i) {
        if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) {
            path_.clear();
            return {};
        }
        if (errno != EBUSY || i == 100) return fail_errno("rmdir", path_);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

}  // namespace butter
