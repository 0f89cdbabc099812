#include "changes/tar.hpp"

#include "changes/changes.hpp"

#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace butter::launcher::changes {

namespace {

constexpr std::size_t kBlock = 512;

// ustar's header, field by field (offsets as POSIX gives them).
struct Header {
    char name[100];
    char mode[8];
    char uid[8];
    char gid[8];
    char size[12];
    char mtime[12];
    char chksum[8];
    char typeflag;
    char linkname[100];
    char magic[6];
    char version[2];
    char uname[32];
    char gname[32];
    char devmajor[8];
    char devminor[8];
    char prefix[155];
    char pad[12];
};
static_assert(sizeof(Header) == kBlock);

// `v` in octal, zero-padded, NUL-terminated in `n` bytes; false when it does not fit.
bool octal(char* field, std::size_t n, std::uint64_t v) {
    char tmp[32];
    int len = std::snprintf(tmp, sizeof tmp, "%0*llo", static_cast<int>(n - 1),
                            static_cast<unsigned long long>(v));
    if (len < 0 || static_cast<std::size_t>(len) > n - 1) return false;
    std::memcpy(field, tmp, n - 1);
    field[n - 1] = '\0';
    return true;
}

unsigned checksum(const Header& h) {
    Header copy = h;
    std::memset(copy.chksum, ' ', sizeof copy.chksum);
    const auto* p = reinterpret_cast<const unsigned char*>(&copy);
    unsigned sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i)
        sum += p[i];
    return sum;
}

// A number field: octal digits (spaces or NULs around them), or GNU's base-256 (high bit set).
std::optional<std::uint64_t> number(const char* field, std::size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(field);
    if (p[0] & 0x80) {
        if (p[0] != 0x80) return std::nullopt;  // negative or beyond 64 bits
        std::uint64_t v = 0;
        for (std::size_t i = 1; i < n; ++i) {
            if (v >> 56) return std::nullopt;
            v = (v << 8) | p[i];
        }
        return v;
    }
    std::size_t i = 0;
    while (i < n && p[i] == ' ')
        ++i;
    std::uint64_t v = 0;
    bool digits = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
        if (v >> 61) return std::nullopt;
        v = v * 8 + (p[i] - '0');
        digits = true;
    }
    for (; i < n; ++i)
        if (p[i] != ' ' && p[i] != '\0') return std::nullopt;
    if (!digits) return std::uint64_t{0};
    return v;
}

std::string field_string(const char* field, std::size_t n) {
    return std::string(field, strnlen(field, n));
}

std::string pax_record(const std::string& key, const std::string& value) {
    std::size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len)
        len = std::to_string(len).size() + body;
    return std::to_string(len) + " " + key + "=" + value + "\n";
}

// An archive that butter refuses: "tar("dir/name"): what".
Error bad(const std::string& entry, const std::string& what) {
    return Error::message("tar", what, quote_path(entry));
}

}  // namespace

Result<void> TarWriter::put(const char* data, std::size_t n) {
    buf_.append(data, n);
    written_ += n;
    if (buf_.size() >= (64 << 10)) return flush();
    return {};
}

Result<void> TarWriter::flush() {
    std::size_t at = 0;
    while (at < buf_.size()) {
        ssize_t w = ::write(fd_, buf_.data() + at, buf_.size() - at);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fail_errno("write", "tar");
        at += static_cast<std::size_t>(w);
    }
    buf_.clear();
    return {};
}

Result<void> TarWriter::header(const TarEntry& e) {
    Header h{};
    std::string pax;
    if (e.name.size() > sizeof h.name) pax += pax_record("path", e.name);
    if (e.link.size() > sizeof h.linkname) pax += pax_record("linkpath", e.link);
    bool big = !octal(h.size, sizeof h.size, e.size);
    if (big) pax += pax_record("size", std::to_string(e.size));
    if (!pax.empty()) {
        TarEntry x;
        x.name = "PaxHeaders/" + e.name.substr(0, 80);
        x.type = TarEntry::Type::Other;
        x.raw_type = 'x';
        x.size = pax.size();
        BUTTER_TRY(header(x));
        BUTTER_TRY(put(pax.data(), pax.size()));
        static const char zeros[kBlock] = {};
        std::size_t pad = (kBlock - pax.size() % kBlock) % kBlock;
        BUTTER_TRY(put(zeros, pad));
    }
    std::memcpy(h.name, e.name.data(), std::min(e.name.size(), sizeof h.name));
    std::memcpy(h.linkname, e.link.data(), std::min(e.link.size(), sizeof h.linkname));
    (void)octal(h.mode, sizeof h.mode, e.mode & 07777);
    // Ids beyond ustar's 7 octal digits: the pax header would carry them; a layer's ids are
    // the sandbox's (below 2^21 in practice): kept when they fit.
    if (!octal(h.uid, sizeof h.uid, e.uid)) (void)octal(h.uid, sizeof h.uid, 0);
    if (!octal(h.gid, sizeof h.gid, e.gid)) (void)octal(h.gid, sizeof h.gid, 0);
    if (big) (void)octal(h.size, sizeof h.size, 0);
    (void)octal(h.mtime, sizeof h.mtime,
                static_cast<std::uint64_t>(std::max<std::int64_t>(e.mtime, 0)));
    h.typeflag = e.type == TarEntry::Type::Other ? e.raw_type : static_cast<char>(e.type);
    std::memcpy(h.magic, "ustar", 6);
    std::memcpy(h.version, "00", 2);
    (void)octal(h.devmajor, sizeof h.devmajor, 0);
    (void)octal(h.devminor, sizeof h.devminor, 0);
    std::snprintf(h.chksum, sizeof h.chksum, "%06o", checksum(h));
    h.chksum[7] = ' ';
    return put(reinterpret_cast<const char*>(&h), kBlock);
}

Result<void> TarWriter::add(const TarEntry& e, int content) {
    BUTTER_TRY(header(e));
    if (e.type != TarEntry::Type::File || e.size == 0) return {};
    BUTTER_TRY(flush());
    std::uint64_t left = e.size;
    bool can_sendfile = true;
    char chunk[1 << 16];
    while (left > 0) {
        ssize_t n = -1;
        if (can_sendfile) {
            n = ::sendfile(fd_, content, nullptr, std::min<std::uint64_t>(left, 1 << 30));
            if (n < 0 && (errno == EINVAL || errno == ENOSYS)) can_sendfile = false;
        }
        if (!can_sendfile) {
            n = ::read(content, chunk, std::min<std::uint64_t>(left, sizeof chunk));
            if (n > 0) {
                std::size_t at = 0;
                while (at < static_cast<std::size_t>(n)) {
                    ssize_t w = ::write(fd_, chunk + at, static_cast<std::size_t>(n) - at);
                    if (w < 0 && errno == EINTR) continue;
                    if (w < 0) return fail_errno("write", "tar");
                    at += static_cast<std::size_t>(w);
                }
            }
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno(can_sendfile ? "sendfile" : "read", e.name);
        if (n == 0)
            return fail(Error::message("read", "the file shrank while it was read", e.name));
        left -= static_cast<std::uint64_t>(n);
        written_ += static_cast<std::uint64_t>(n);
    }
    static const char zeros[kBlock] = {};
    return put(zeros, (kBlock - e.size % kBlock) % kBlock);
}

Result<void> TarWriter::finish() {
    static const char zeros[2 * kBlock] = {};
    BUTTER_TRY(put(zeros, sizeof zeros));
    return flush();
}

Result<void> TarReader::read_exact(char* data, std::size_t n) {
    std::size_t at = 0;
    while (at < n) {
        ssize_t r = ::read(fd_, data + at, n - at);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_errno("read", "tar");
        if (r == 0)
            return fail(bad(name_for_errors_, "the archive ends in the middle of an entry"));
        at += static_cast<std::size_t>(r);
    }
    offset_ += n;
    return {};
}

Result<bool> TarReader::read_block(char* block) {
    std::size_t at = 0;
    while (at < kBlock) {
        ssize_t r = ::read(fd_, block + at, kBlock - at);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_errno("read", "tar");
        if (r == 0) {
            if (at == 0) return false;
            return fail(bad(name_for_errors_, "the archive ends in the middle of a header"));
        }
        at += static_cast<std::size_t>(r);
    }
    offset_ += kBlock;
    return true;
}

Result<void> TarReader::skip(std::uint64_t n) {
    char chunk[1 << 14];
    while (n > 0) {
        std::size_t step = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof chunk));
        BUTTER_TRY(read_exact(chunk, step));
        n -= step;
    }
    return {};
}

Result<std::optional<TarEntry>> TarReader::next() {
    BUTTER_TRY(skip(remaining_ + padding_));
    remaining_ = padding_ = 0;
    std::optional<std::string> long_name, long_link;
    std::optional<std::uint64_t> pax_size;
    for (;;) {
        Header h;
        BUTTER_ASSIGN_OR_RETURN(bool got, read_block(reinterpret_cast<char*>(&h)));
        if (!got) return std::optional<TarEntry>{};  // no end marker: the end all the same
        static const char zeros[kBlock] = {};
        if (std::memcmp(&h, zeros, kBlock) == 0) return std::optional<TarEntry>{};
        std::string name = field_string(h.name, sizeof h.name);
        std::string prefix = field_string(h.prefix, sizeof h.prefix);
        if (std::memcmp(h.magic, "ustar", 5) == 0 && !prefix.empty()) name = prefix + "/" + name;
        name_for_errors_ = name;
        auto sum = number(h.chksum, sizeof h.chksum);
        if (!sum || *sum != checksum(h))
            return fail(bad(name, "bad header checksum (not a tar archive, or a damaged one)"));
        auto size = number(h.size, sizeof h.size);
        auto mode = number(h.mode, sizeof h.mode);
        auto uid = number(h.uid, sizeof h.uid);
        auto gid = number(h.gid, sizeof h.gid);
        auto mtime = number(h.mtime, sizeof h.mtime);
        if (!size || !mode || !uid || !gid || !mtime)
            return fail(bad(name, "a header field is not a number"));
        char type = h.typeflag;
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
            if (*size > kMaxExtendedHeader)
                return fail(bad(name, "an extended header of " + std::to_string(*size) +
                                          " bytes (at most " + std::to_string(kMaxExtendedHeader) +
                                          ")"));
            std::string data(*size, '\0');
            BUTTER_TRY(read_exact(data.data(), data.size()));
            BUTTER_TRY(skip((kBlock - *size % kBlock) % kBlock));
            if (type == 'L' || type == 'K') {
                std::string v = data.substr(0, data.find('\0'));
                if (v.size() > kMaxName) return fail(bad(name, "a name longer than 4096 bytes"));
                (type == 'L' ? long_name : long_link) = v;
                continue;
            }
            if (type == 'g') continue;
            std::size_t at = 0;
            while (at < data.size()) {
                std::size_t sp = data.find(' ', at);
                if (sp == std::string::npos) return fail(bad(name, "a malformed pax record"));
                std::uint64_t len = 0;
                for (std::size_t i = at; i < sp; ++i) {
                    if (data[i] < '0' || data[i] > '9' || len > kMaxExtendedHeader)
                        return fail(bad(name, "a malformed pax record"));
                    len = len * 10 + static_cast<std::uint64_t>(data[i] - '0');
                }
                if (len <= sp - at + 1 || at + len > data.size() || data[at + len - 1] != '\n')
                    return fail(bad(name, "a malformed pax record"));
                std::string rec = data.substr(sp + 1, at + len - 1 - (sp + 1));
                std::size_t eq = rec.find('=');
                if (eq == std::string::npos) return fail(bad(name, "a malformed pax record"));
                std::string key = rec.substr(0, eq), value = rec.substr(eq + 1);
                if (key == "path" || key == "linkpath") {
                    if (value.size() > kMaxName)
                        return fail(bad(name, "a name longer than 4096 bytes"));
                    (key == "path" ? long_name : long_link) = value;
                } else if (key == "size") {
                    std::uint64_t v = 0;
                    if (value.empty() || value.size() > 19)
                        return fail(bad(name, "a pax size that is not a number"));
                    for (char c : value) {
                        if (c < '0' || c > '9')
                            return fail(bad(name, "a pax size that is not a number"));
                        v = v * 10 + static_cast<std::uint64_t>(c - '0');
                    }
                    pax_size = v;
                }
                at += len;
            }
            continue;
        }
        TarEntry e;
        e.name = long_name ? *long_name : name;
        e.link = long_link ? *long_link : field_string(h.linkname, sizeof h.linkname);
        name_for_errors_ = e.name;
        if (e.name.size() > kMaxName) return fail(bad(e.name, "a name longer than 4096 bytes"));
        if (e.name.find('\0') != std::string::npos || e.link.find('\0') != std::string::npos)
            return fail(bad(e.name, "a name with a NUL byte"));
        e.raw_type = type;
        switch (type) {
            case '0':
            case '\0':
            case '7':  // contiguous file: a file
                e.type = TarEntry::Type::File;
                break;
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
                e.type = static_cast<TarEntry::Type>(type);
                break;
            default:
                e.type = TarEntry::Type::Other;
        }
        e.mode = static_cast<unsigned>(*mode & 07777);
        if (*mode > 07777 && (*mode & ~std::uint64_t{0170000 | 07777}))
            return fail(bad(e.name, "a mode that is not a file mode"));
        e.uid = static_cast<std::uint32_t>(std::min<std::uint64_t>(*uid, UINT32_MAX));
        e.gid = static_cast<std::uint32_t>(std::min<std::uint64_t>(*gid, UINT32_MAX));
        e.mtime = static_cast<std::int64_t>(std::min<std::uint64_t>(*mtime, INT64_MAX));
        e.size = pax_size ? *pax_size : *size;
        // Only a file carries content; others' sizes are skipped as the archive says.
        remaining_ = e.size;
        padding_ = (kBlock - e.size % kBlock) % kBlock;
        if (e.type != TarEntry::Type::File && e.type != TarEntry::Type::Other) e.size = 0;
        return std::optional<TarEntry>(std::move(e));
    }
}

Result<void> TarReader::content(int out) {
    if (out < 0) {
        BUTTER_TRY(skip(remaining_));
        remaining_ = 0;
        return {};
    }
    char chunk[1 << 16];
    while (remaining_ > 0) {
        std::size_t step =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, sizeof chunk));
        BUTTER_TRY(read_exact(chunk, step));
        std::size_t at = 0;
        while (at < step) {
            ssize_t w = ::write(out, chunk + at, step - at);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fail_errno("write", name_for_errors_);
            at += static_cast<std::size_t>(w);
        }
        remaining_ -= step;
    }
    return {};
}

Result<void> TarReader::content_each(const std::function<void(std::string_view)>& f) {
    char chunk[1 << 16];
    while (remaining_ > 0) {
        std::size_t step =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, sizeof chunk));
        BUTTER_TRY(read_exact(chunk, step));
        f(std::string_view(chunk, step));
        remaining_ -= step;
    }
    return {};
}

Result<std::string> TarReader::content_string(std::uint64_t limit) {
    if (remaining_ > limit)
        return fail(bad(name_for_errors_, "larger than " + std::to_string(limit) + " bytes"));
    std::string s(remaining_, '\0');
    BUTTER_TRY(read_exact(s.data(), s.size()));
    remaining_ = 0;
    return s;
}

}  // namespace butter::launcher::changes
