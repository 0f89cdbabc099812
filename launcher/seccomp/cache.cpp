#include "seccomp/cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <seccomp.h>

#include <butter/fd.hpp>

#include "version.hpp"

namespace butter::launcher::seccomp {

namespace {

constexpr char kMagic[8] = {'b', 'u', 't', 't', 'e', 'r', 'b', '1'};

struct Header {
    char magic[8];
    std::uint64_t key_hash;
    std::uint32_t insns;
    std::uint32_t flags;  // bit 0: uses_notify
    std::int32_t denied_errno;
    std::uint32_t reserved;
};

// FNV-1a 64: the key is long; the file name and header carry its hash, the file its full text.
std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

// A directory owned by us, mode 0700, not a symlink; created if missing.
std::optional<std::string> cache_dir() {
    std::string dir;
    uid_t uid = ::getuid();
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x == '/')
        dir = std::string(x) + "/butter";
    else if (uid == 0)
        dir = "/run/butter";
    else
        dir = "/tmp/butter-" + std::to_string(uid);
    if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return std::nullopt;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 077) != 0)
        return std::nullopt;
    return dir;
}

std::string file_for(const std::string& dir, std::uint64_t h) {
    char name[40];
    std::snprintf(name, sizeof name, "/seccomp-%016llx.bpf", static_cast<unsigned long long>(h));
    return dir + name;
}

}  // namespace

std::string cache_key(const profile::Profile& p) {
    const auto& s = p.seccomp;
    // libseccomp's version stands for its syscall table (probing the table costs more than
    // the whole cached run).
    const scmp_version* v = seccomp_version();
    std::string groups(syscall_groups_text());
    std::string k = std::string("butter ") + BUTTER_VERSION + "\n" + "libseccomp " +
                    std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->micro) + "\n" + "compiler " + kPolicyCompilerStamp + "\n" +
                    "groups " + std::to_string(fnv1a(groups)) + "\n" + "default " +
                    s.default_action + "\nerrno " + s.errno_name + "\nreport " +
                    (s.report ? "1" : "0") + "\n";
    for (const auto& d : s.deny)
        k += "deny " + d + "\n";
    for (const auto& a : s.allow)
        k += "allow " + a + "\n";
    for (const auto& r : s.rules)
        k += "rule " + r.text + "\n";
    return k;
}

std::optional<Compiled> cache_load(const std::string& key) {
    auto dir = cache_dir();
    if (!dir) return std::nullopt;
    std::uint64_t h = fnv1a(key);
    auto fd = open(file_for(*dir, h).c_str(), O_RDONLY | O_NOFOLLOW);
    if (!fd) return std::nullopt;
    struct stat st {};
    if (::fstat(fd->get(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != ::getuid() ||
        (st.st_mode & 022) != 0)
        return std::nullopt;
    Header hd;
    if (::pread(fd->get(), &hd, sizeof hd, 0) != static_cast<ssize_t>(sizeof hd))
        return std::nullopt;
    if (std::memcmp(hd.magic, kMagic, sizeof kMagic) != 0 || hd.key_hash != h || hd.insns == 0 ||
        hd.insns > 4096)
        return std::nullopt;
    std::size_t prog_bytes = hd.insns * sizeof(struct sock_filter);
    if (static_cast<std::size_t>(st.st_size) != sizeof hd + prog_bytes + key.size())
        return std::nullopt;
    Compiled c;
    c.program.resize(hd.insns);
    std::string stored(key.size(), '\0');
    if (::pread(fd->get(), c.program.data(), prog_bytes, sizeof hd) !=
            static_cast<ssize_t>(prog_bytes) ||
        ::pread(fd->get(), stored.data(), key.size(), static_cast<off_t>(sizeof hd + prog_bytes)) !=
            static_cast<ssize_t>(key.size()) ||
        stored != key)
        return std::nullopt;
    c.uses_notify = hd.flags & 1;
    c.denied_errno = hd.denied_errno;
    return c;
}

void cache_store(const std::string& key, const Compiled& c) {
    if (c.program.empty()) return;
    auto dir = cache_dir();
    if (!dir) return;
    std::uint64_t h = fnv1a(key);
    std::string path = file_for(*dir, h);
    std::string tmp = path + ".tmp" + std::to_string(::getpid());
    auto fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (!fd) return;
    Header hd{};
    std::memcpy(hd.magic, kMagic, sizeof kMagic);
    hd.key_hash = h;
    hd.insns = static_cast<std::uint32_t>(c.program.size());
    hd.flags = c.uses_notify ? 1 : 0;
    hd.denied_errno = c.denied_errno;
    std::string blob(reinterpret_cast<const char*>(&hd), sizeof hd);
    blob.append(reinterpret_cast<const char*>(c.program.data()),
                c.program.size() * sizeof(struct sock_filter));
    blob += key;
    bool ok = ::write(fd->get(), blob.data(), blob.size()) == static_cast<ssize_t>(blob.size());
    ok = fd->close() && ok;
    // rename: readers see the old file or the whole new one, never half of it.
    if (!ok || ::rename(tmp.c_str(), path.c_str()) < 0) ::unlink(tmp.c_str());
}

std::optional<Compiled> compile_cached(const profile::Profile& p, profile::Diagnostics& out) {
    const char* off = std::getenv("BUTTER_NO_CACHE");
    bool use = !(off && *off && *off != '0');
    std::string key;
    if (use) {
        key = cache_key(p);
        if (auto hit = cache_load(key)) return hit;
    }
    std::optional<Compiled> c = compile(p, out);
    if (c && use) cache_store(key, *c);
    return c;
}

}  // namespace butter::launcher::seccomp
