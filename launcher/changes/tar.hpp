// Tar archives as OCI image layers have them (POSIX ustar, with pax extended headers for long
// names and large sizes): a streaming writer for the changes butter exports, and a reader that
// treats every archive as hostile (checksums, bounded headers, no size it cannot represent).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <butter/error.hpp>
#include <butter/fd.hpp>

namespace butter::launcher::changes {

struct TarEntry {
    enum class Type : char {
        File = '0',
        HardLink = '1',
        Symlink = '2',
        CharDevice = '3',
        BlockDevice = '4',
        Directory = '5',
        Fifo = '6',
        Other = '?',
    };
    std::string name;  // as in the archive: relative, "/" between components
    Type type = Type::File;
    unsigned mode = 0644;  // permission bits and set-id/sticky bits (07777)
    std::uint32_t uid = 0, gid = 0;
    std::uint64_t size = 0;  // File: the content's length
    std::int64_t mtime = 0;  // seconds since the epoch
    std::string link;        // Symlink, HardLink: the target
    char raw_type = '0';     // the header's type flag as read
};

// Writes entries to `fd` as they come; finish() ends the archive.
class TarWriter {
  public:
    explicit TarWriter(int fd) : fd_(fd) {}
    // One entry; a File's content is the first e.size bytes of `content` (read from its
    // current offset; sendfile(2), the kernel's splice, where the fds allow).
    [[nodiscard]] Result<void> add(const TarEntry& e, int content = -1);
    [[nodiscard]] Result<void> finish();
    std::uint64_t written() const { return written_; }

  private:
    Result<void> header(const TarEntry& e);
    Result<void> put(const char* data, std::size_t n);
    Result<void> flush();
    int fd_;
    std::string buf_;
    std::uint64_t written_ = 0;
};

// Reads an archive from `fd` (a file or a pipe) entry by entry. Pax ('x') and GNU long-name
// ('L', 'K') headers are folded into the entry they describe; global pax headers ('g') are
// skipped. Errors name the entry and what is wrong with it.
class TarReader {
  public:
    // Bounds on what a header may claim (a hostile archive's "huge headers").
    static constexpr std::uint64_t kMaxExtendedHeader = 1 << 20;
    static constexpr std::size_t kMaxName = 4096;

    explicit TarReader(int fd) : fd_(fd) {}
    // The next entry, or nullopt at the end of the archive.
    [[nodiscard]] Result<std::optional<TarEntry>> next();
    // The current File entry's content, copied to `out` (sendfile where it can), or skipped
    // when `out` is -1. next() skips whatever was not read.
    [[nodiscard]] Result<void> content(int out);
    // The current File entry's content, a chunk at a time.
    [[nodiscard]] Result<void> content_each(const std::function<void(std::string_view)>& f);
    // The current entry's content into memory (at most `limit` bytes; more is an error).
    [[nodiscard]] Result<std::string> content_string(std::uint64_t limit);

  private:
    Result<bool> read_block(char* block);
    Result<void> read_exact(char* data, std::size_t n);
    Result<void> skip(std::uint64_t n);
    int fd_;
    std::uint64_t offset_ = 0;
    std::uint64_t remaining_ = 0;  // of the current entry's content
    std::uint64_t padding_ = 0;    // after it, to the next 512-byte block
    std::string name_for_errors_;
};

}  // namespace butter::launcher::changes
