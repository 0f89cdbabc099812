#include "tmpdir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <butter/fd.hpp>

namespace butter::test {

TempDir::TempDir()
    : TempDir([] {
          const char* base = ::getenv("TMPDIR");
          return std::string(base && *base ? base : "/tmp");
      }()) {}

TempDir::TempDir(const std::string& base) {
    std::string templ = base + "/butter-test.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) {
        std::fprintf(stderr, "write_file(%s) failed\n", path.c_str());
        std::abort();
    }
}

std::string read_file(const std::string& path) {
    return butter::read_file(path.c_str()).value_or("");
}

std::map<std::string, std::string> tree_of(const std::string& dir) {
    std::map<std::string, std::string> out;
    std::function<void(const std::string&)> walk = [&](const std::string& rel) {
        std::string path = rel.empty() ? dir : dir + "/" + rel;
        DIR* d = ::opendir(path.c_str());
        if (!d) return;
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            std::string r = rel.empty() ? n : rel + "/" + n;
            struct stat st {};
            ::lstat((dir + "/" + r).c_str(), &st);
            char mode[16];
            std::snprintf(mode, sizeof mode, "%04o ", st.st_mode & 07777);
            if (S_ISDIR(st.st_mode)) {
                out[r] = std::string("dir ") + mode;
                walk(r);
            } else if (S_ISLNK(st.st_mode)) {
                char buf[256];
                ssize_t k = ::readlink((dir + "/" + r).c_str(), buf, sizeof buf);
                out[r] = "link " + std::string(buf, k > 0 ? static_cast<std::size_t>(k) : 0);
            } else {
                out[r] = std::string("file ") + mode + read_file(dir + "/" + r);
            }
        }
        ::closedir(d);
    };
    walk("");
    return out;
}

}  // namespace butter::test
