#include "tmpdir.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

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

}  // namespace butter::test
