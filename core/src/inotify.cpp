#include "butter/inotify.hpp"

#include <unistd.h>

#include <array>
#include <cstring>

#include "sys.hpp"

namespace butter {

namespace {

// Moves whose MovedTo never comes (renamed out of every watched directory) must not pile up.
constexpr std::size_t kMaxPendingMoves = 128;

constexpr std::array<FlagName<InotifyMask>, 22> kMaskNames{{
    {InotifyMask::Access, "Access"},
    {InotifyMask::Modify, "Modify"},
    {InotifyMask::Attrib, "Attrib"},
    {InotifyMask::CloseWrite, "CloseWrite"},
    {InotifyMask::CloseNoWrite, "CloseNoWrite"},
    {InotifyMask::Open, "Open"},
    {InotifyMask::MovedFrom, "MovedFrom"},
    {InotifyMask::MovedTo, "MovedTo"},
    {InotifyMask::Create, "Create"},
    {InotifyMask::Delete, "Delete"},
    {InotifyMask::DeleteSelf, "DeleteSelf"},
    {InotifyMask::MoveSelf, "MoveSelf"},
    {InotifyMask::Unmount, "Unmount"},
    {InotifyMask::QueueOverflow, "QueueOverflow"},
    {InotifyMask::Ignored, "Ignored"},
    {InotifyMask::IsDir, "IsDir"},
    {InotifyMask::OnlyDir, "OnlyDir"},
    {InotifyMask::DontFollow, "DontFollow"},
    {InotifyMask::ExclUnlink, "ExclUnlink"},
    {InotifyMask::MaskCreate, "MaskCreate"},
    {InotifyMask::MaskAdd, "MaskAdd"},
    {InotifyMask::OneShot, "OneShot"},
}};
constexpr std::array<FlagName<InotifyFlag>, 1> kFlagNames{{{InotifyFlag::NonBlock, "NonBlock"}}};

}  // namespace

std::span<const FlagName<InotifyMask>> flag_names(InotifyMask) {
    return kMaskNames;
}
std::span<const FlagName<InotifyFlag>> flag_names(InotifyFlag) {
    return kFlagNames;
}

std::string InotifyEvent::path() const {
    if (name.empty()) return watch_path;
    if (watch_path.empty() || watch_path.back() == '/') return watch_path + name;
    return watch_path + "/" + name;
}

std::string InotifyEvent::to_string() const {
    std::string s = butter::to_string(mask);
    if (!watch_path.empty() || !name.empty()) s += " " + path();
    if (moved_from) s += " (from " + *moved_from + ")";
    return s;
}

Result<Inotify> Inotify::create(Flags<InotifyFlag> flags, std::size_t buffer_size) {
    int fd = ::inotify_init1(IN_CLOEXEC | flags.raw());
    if (fd < 0) return fail_errno("inotify_init1");
    return Inotify(Fd(fd), buffer_size < kMinBufferSize ? kMinBufferSize : buffer_size);
}

Result<int> Inotify::add_watch(const std::string& path, InotifyMasks mask) {
    int wd = ::inotify_add_watch(fd_.get(), path.c_str(), mask.raw());
    if (wd < 0) return fail_errno("inotify_add_watch", path);
    Watch& w = watches_[wd];
    // The same inode under a second name keeps its wd; the newest name wins, as the caller
    // just asked about it.
    w.path = path;
    w.removed = false;
    return wd;
}

Result<int> Inotify::modify_watch(int wd, InotifyMasks mask) {
    auto it = watches_.find(wd);
    if (it == watches_.end() || it->second.removed)
        return fail(Error("inotify_add_watch", EINVAL, "wd " + std::to_string(wd)));
    std::string path = it->second.path;  // add_watch may rehash the map
    return add_watch(path, mask.without(InotifyMask::MaskCreate));
}

Result<void> Inotify::remove_watch(int wd) {
    if (::inotify_rm_watch(fd_.get(), wd) < 0)
        return fail_errno("inotify_rm_watch", "wd " + std::to_string(wd));
    if (auto it = watches_.find(wd); it != watches_.end()) it->second.removed = true;
    return {};
}

const std::string* Inotify::path_of(int wd) const {
    auto it = watches_.find(wd);
    return it == watches_.end() ? nullptr : &it->second.path;
}

std::optional<int> Inotify::wd_of(const std::string& path) const {
    for (const auto& [wd, w] : watches_)
        if (!w.removed && w.path == path) return wd;
    return std::nullopt;
}

std::size_t Inotify::watch_count() const {
    std::size_t n = 0;
    for (const auto& entry : watches_)
        n += entry.second.removed ? 0 : 1;
    return n;
}

InotifyEvent Inotify::parse(const struct inotify_event& raw, const char* name) {
    InotifyEvent ev;
    ev.wd = raw.wd;
    ev.mask = InotifyMasks::from_raw(raw.mask);
    ev.cookie = raw.cookie;
    if (raw.len > 0) ev.name.assign(name, ::strnlen(name, raw.len));  // NUL-padded
    if (ev.is_overflow()) {
        moves_.clear();  // pairing across dropped events would be guesswork
        // The kernel queues the overflow event last: an IN_IGNORED still awaited for a
        // removed watch was among the dropped events, and will never come.
        std::erase_if(watches_, [](const auto& entry) { return entry.second.removed; });
        return ev;
    }
    if (auto it = watches_.find(raw.wd); it != watches_.end()) {
        ev.watch_path = it->second.path;
        if (ev.is_ignored()) watches_.erase(it);
    }
    if (ev.mask.has(InotifyMask::MovedFrom)) {
        if (moves_.size() == kMaxPendingMoves) moves_.pop_front();
        moves_.emplace_back(ev.cookie, ev.path());
    } else if (ev.mask.has(InotifyMask::MovedTo)) {
        for (auto it = moves_.begin(); it != moves_.end(); ++it) {
            if (it->first != ev.cookie) continue;
            ev.moved_from = std::move(it->second);
            moves_.erase(it);
            break;
        }
    }
    return ev;
}

Result<bool> Inotify::fill() {
    ssize_t n = sys::retry_eintr([&] { return ::read(fd_.get(), buffer_.data(), buffer_.size()); });
    if (n < 0) {
        if (errno == EAGAIN) return false;
        return fail_errno("read(inotify)");
    }
    std::size_t off = 0;
    const auto total = static_cast<std::size_t>(n);
    while (off + sizeof(struct inotify_event) <= total) {
        struct inotify_event raw;
        std::memcpy(&raw, buffer_.data() + off, sizeof raw);  // the buffer is not aligned
        const char* name = buffer_.data() + off + sizeof raw;
        pending_.push_back(parse(raw, name));
        off += sizeof raw + raw.len;
    }
    return true;
}

Result<std::optional<InotifyEvent>> Inotify::read_event() {
    if (pending_.empty()) {
        BUTTER_ASSIGN_OR_RETURN(bool got, fill());
        if (!got) return std::optional<InotifyEvent>();
    }
    std::optional<InotifyEvent> ev(std::move(pending_.front()));
    pending_.pop_front();
    return ev;
}

Result<std::vector<InotifyEvent>> Inotify::read_events() {
    if (pending_.empty()) BUTTER_TRY(fill());
    std::vector<InotifyEvent> out(std::make_move_iterator(pending_.begin()),
                                  std::make_move_iterator(pending_.end()));
    pending_.clear();
    return out;
}

}  // namespace butter
