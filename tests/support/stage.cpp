#include "stage.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>

namespace butter::test {

namespace {

namespace fs = std::filesystem;

// Others may search every directory from / down to `path`'s parent.
bool others_can_reach(const fs::path& path) {
    for (fs::path dir = path.parent_path(); !dir.empty(); dir = dir.parent_path()) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) < 0 || !(st.st_mode & S_IXOTH)) return false;
        if (dir == dir.root_path()) break;
    }
    return true;
}

struct Stage {
    std::mutex mu;
    std::string dir;  // made on first use
    pid_t owner = 0;  // only the process that made it removes it (not a forked child)
    std::map<std::string, std::string> staged;

    const std::string& get(const std::string& path) {
        std::lock_guard lock(mu);
        if (auto it = staged.find(path); it != staged.end()) return it->second;
        if (others_can_reach(path)) return staged[path] = path;
        if (dir.empty()) {
            std::string tmpl = "/tmp/butter-stage-XXXXXX";
            if (!::mkdtemp(tmpl.data()) || ::chmod(tmpl.c_str(), 0755) < 0) std::abort();
            dir = tmpl;
            owner = ::getpid();
            std::atexit([] { instance().remove(); });
        }
        // Named by position so that two files of one name stay apart.
        fs::path to = fs::path(dir) /
                      (std::to_string(staged.size()) + "-" + fs::path(path).filename().string());
        std::error_code ec;
        if (fs::is_directory(path)) {
            fs::copy(path, to, fs::copy_options::recursive, ec);
        } else if (::link(path.c_str(), to.c_str()) < 0) {
            fs::copy_file(path, to, ec);
        }
        if (ec) std::abort();
        // A copy keeps the source's mode; directories must be searchable by others too.
        for (auto& e : fs::recursive_directory_iterator(to, ec))
            if (e.is_directory()) ::chmod(e.path().c_str(), 0755);
        if (fs::is_directory(to)) ::chmod(to.c_str(), 0755);
        return staged[path] = to.string();
    }

    void remove() {
        if (!dir.empty() && ::getpid() == owner) {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    }

    static Stage& instance() {
        static Stage* s = new Stage;  // never destroyed: the atexit handler still uses it
        return *s;
    }
};

}  // namespace

const std::string& reachable(const std::string& path) {
    return Stage::instance().get(path);
}

#ifdef BUTTER_PROFILES_SRC
const std::string& profiles_src() {
    return reachable(BUTTER_PROFILES_SRC);
}

std::string profile_path_env() {
    return "BUTTER_PROFILE_PATH=" + profiles_src();
}
#endif

}  // namespace butter::test
