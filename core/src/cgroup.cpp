#include "butter/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "sys.hpp"

namespace butter {

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// mountinfo fields: id parent dev root mountpoint options [optional...] - fstype source super
struct MountLine {
    std::string mountpoint, fstype, super_options;
};

std::vector<MountLine> cgroup_mounts() {
    std::vector<MountLine> out;
    std::istringstream in(read_text("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(in, line)) {
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
        std::string id, parent, dev, root, mp, fstype, source, super;
        head >> id >> parent >> dev >> root >> mp;
        tail >> fstype >> source >> super;
        if (fstype == "cgroup" || fstype == "cgroup2")
            out.push_back({mp, fstype, "," + super + ","});
    }
    return out;
}

}  // namespace

Result<CgroupHierarchy> find_cgroup_hierarchy(std::string_view controller) {
    // /proc/self/cgroup: "0::/path" for v2, "N:ctrl1,ctrl2:/path" for v1.
    std::string v2_own;
    std::vector<std::pair<std::string, std::string>> v1;  // controllers, path
    std::istringstream in(read_text("/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (line.substr(0, a) == "0" && ctrls.empty())
            v2_own = path;
        else
            v1.emplace_back("," + ctrls + ",", path);
    }
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
    std::string p = path_ + "/" + std::string(file);
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", p);
    Fd owned(fd);
    ssize_t n = sys::retry_eintr([&] { return ::write(fd, value.data(), value.size()); });
    if (n < 0) return fail_errno("write", p + " = " + std::string(value));
    return {};
}

Result<std::string> Cgroup::read(std::string_view file) const {
    std::string p = path_ + "/" + std::string(file);
    std::ifstream in(p);
    if (!in) return fail_errno("open", p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Result<std::uint64_t> Cgroup::read_number(std::string_view file) const {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read(file));
    if (s.starts_with("max")) return std::numeric_limits<std::uint64_t>::max();
    try {
        return static_cast<std::uint64_t>(std::stoull(s));
    } catch (...) {
        return fail(Error::message("read", "not a number: " + s, path_ + "/" + std::string(file)));
    }
}

Result<std::uint64_t> Cgroup::read_key(std::string_view file, std::string_view key) const {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read(file));
    std::istringstream in(s);
    std::string k;
    std::uint64_t v;
    while (in >> k >> v)
        if (k == key) return v;
    return fail(
        Error::message("read", "no key " + std::string(key), path_ + "/" + std::string(file)));
}

Result<void> Cgroup::add(pid_t pid) const {
    return write("cgroup.procs", std::to_string(pid));
}

Result<std::vector<pid_t>> Cgroup::processes() const {
    BUTTER_ASSIGN_OR_RETURN(std::string s, read("cgroup.procs"));
    std::vector<pid_t> out;
    std::istringstream in(s);
    pid_t p;
    while (in >> p)
        out.push_back(p);
    return out;
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
