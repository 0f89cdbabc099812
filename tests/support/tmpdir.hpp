// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
#pragma once

#include <map>
#include <string>

namespace butter::test {

class TempDir {
  public:
    TempDir();
    // Below `base` instead of $TMPDIR or /tmp.
    explicit TempDir(const std::string& base);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// Writes `content` to `path` (creating or truncating it); aborts the test binary on failure.
void write_file(const std::string& path, const std::string& content);
// The whole file, or "" if it cannot be read.
std::string read_file(const std::string& path);
// Every path below `dir` (relative): "dir MODE ", "file MODE CONTENT" or "link TEXT". Owners
// and times are left out (they differ between the ways a tree is made: as root, applied).
std::map<std::string, std::string> tree_of(const std::string& dir);

}  // namespace butter::test
