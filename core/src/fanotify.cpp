#include "butter/fanotify.hpp"

#include <limits.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "sys.hpp"

namespace butter {

namespace {

constexpr std::array<FlagName<FanotifyInit>, 12> kInitNames{{
    {FanotifyInit::ClassContent, "ClassContent"},
    {FanotifyInit::ClassPreContent, "ClassPreContent"},
    {FanotifyInit::NonBlock, "NonBlock"},
    {FanotifyInit::UnlimitedQueue, "UnlimitedQueue"},
    {FanotifyInit::UnlimitedMarks, "UnlimitedMarks"},
    {FanotifyInit::EnableAudit, "EnableAudit"},
    {FanotifyInit::ReportTid, "ReportTid"},
    {FanotifyInit::ReportFid, "ReportFid"},
    {FanotifyInit::ReportDirFid, "ReportDirFid"},
    {FanotifyInit::ReportName, "ReportName"},
    {FanotifyInit::ReportTargetFid, "ReportTargetFid"},
    {FanotifyInit::ReportPidfd, "ReportPidfd"},
}};
constexpr std::array<FlagName<FanotifyMask>, 21> kMaskNames{{
    {FanotifyMask::Access, "Access"},
    {FanotifyMask::Modify, "Modify"},
    {FanotifyMask::Attrib, "Attrib"},
    {FanotifyMask::CloseWrite, "CloseWrite"},
    {FanotifyMask::CloseNoWrite, "CloseNoWrite"},
    {FanotifyMask::Open, "Open"},
    {FanotifyMask::MovedFrom, "MovedFrom"},
    {FanotifyMask::MovedTo, "MovedTo"},
    {FanotifyMask::Create, "Create"},
    {FanotifyMask::Delete, "Delete"},
    {FanotifyMask::DeleteSelf, "DeleteSelf"},
    {FanotifyMask::MoveSelf, "MoveSelf"},
    {FanotifyMask::OpenExec, "OpenExec"},
    {FanotifyMask::QueueOverflow, "QueueOverflow"},
    {FanotifyMask::FsError, "FsError"},
    {FanotifyMask::OpenPerm, "OpenPerm"},
    {FanotifyMask::AccessPerm, "AccessPerm"},
    {FanotifyMask::OpenExecPerm, "OpenExecPerm"},
    {FanotifyMask::Rename, "Rename"},
    {FanotifyMask::OnDir, "OnDir"},
    {FanotifyMask::EventOnChild, "EventOnChild"},
}};
constexpr std::array<FlagName<FanotifyMarkFlag>, 6> kMarkNames{{
    {FanotifyMarkFlag::DontFollow, "DontFollow"},
    {FanotifyMarkFlag::OnlyDir, "OnlyDir"},
    {FanotifyMarkFlag::IgnoredMask, "IgnoredMask"},
    {FanotifyMarkFlag::IgnoredSurvModify, "IgnoredSurvModify"},
    {FanotifyMarkFlag::Evictable, "Evictable"},
    {FanotifyMarkFlag::Ignore, "Ignore"},
}};

// Parses the info records after the metadata of one event.
void parse_info(FanotifyEvent& ev, const char* p, const char* end) {
    while (p + sizeof(struct fanotify_event_info_header) <= end) {
        struct fanotify_event_info_header hdr;
        std::memcpy(&hdr, p, sizeof hdr);
        if (hdr.len < sizeof hdr || p + hdr.len > end) return;
        switch (hdr.info_type) {
            case FAN_EVENT_INFO_TYPE_FID:
            case FAN_EVENT_INFO_TYPE_DFID:
            case FAN_EVENT_INFO_TYPE_DFID_NAME:
            case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
            case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: {
                FileHandle h;
                h.info_type = hdr.info_type;
                const char* q = p + sizeof hdr;
                std::memcpy(&h.fsid, q, sizeof h.fsid);
                q += sizeof(__kernel_fsid_t);
                struct file_handle fh;
                std::memcpy(&fh, q, sizeof fh);
                q += sizeof fh;
                h.handle_type = fh.handle_type;
                h.handle.assign(q, q + fh.handle_bytes);
                q += fh.handle_bytes;
                if (hdr.info_type != FAN_EVENT_INFO_TYPE_FID &&
                    hdr.info_type != FAN_EVENT_INFO_TYPE_DFID && q < p + hdr.len)
                    h.name.assign(q, ::strnlen(q, static_cast<std::size_t>(p + hdr.len - q)));
                ev.handles.push_back(std::move(h));
                break;
            }
            case FAN_EVENT_INFO_TYPE_PIDFD: {
                struct fanotify_event_info_pidfd info;
                std::memcpy(&info, p, sizeof info);
                if (info.pidfd >= 0) ev.pidfd = Fd(info.pidfd);
                break;
            }
            case FAN_EVENT_INFO_TYPE_ERROR: {
                struct fanotify_event_info_error info;
                std::memcpy(&info, p, sizeof info);
                ev.error = info.error;
                ev.error_count = info.error_count;
                break;
            }
            default:
                break;
        }
        p += hdr.len;
    }
}

}  // namespace

std::span<const FlagName<FanotifyInit>> flag_names(FanotifyInit) {
    return kInitNames;
}
std::span<const FlagName<FanotifyMask>> flag_names(FanotifyMask) {
    return kMaskNames;
}
std::span<const FlagName<FanotifyMarkFlag>> flag_names(FanotifyMarkFlag) {
    return kMarkNames;
}

bool FanotifyEvent::is_permission() const {
    return mask.any(FanotifyMask::OpenPerm | FanotifyMask::AccessPerm | FanotifyMask::OpenExecPerm);
}

std::string FanotifyEvent::name() const {
    for (const FileHandle& h : handles)
        if (!h.name.empty()) return h.name;
    return "";
}

std::string FanotifyEvent::path() const {
    return fd.valid() ? fd_path(fd) : "";
}

std::string FanotifyEvent::to_string() const {
    std::string s = butter::to_string(mask);
    std::string p = path();
    if (!p.empty()) s += " " + p;
    std::string n = name();
    if (!n.empty()) s += " name=" + n;
    return s + " pid=" + std::to_string(pid);
}

Result<Fanotify> Fanotify::create(Flags<FanotifyInit> flags, int event_f_flags) {
    int fd = ::fanotify_init(FAN_CLOEXEC | flags.raw(),
                             static_cast<unsigned>(event_f_flags | O_CLOEXEC));
    if (fd < 0) return fail_errno("fanotify_init", to_string(flags));
    return Fanotify(Fd(fd));
}

Result<void> Fanotify::mark(unsigned op, const std::string& path, FanotifyMasks mask,
                            FanotifyMarkType type, Flags<FanotifyMarkFlag> flags) {
    if (::fanotify_mark(fd_.get(), op | static_cast<unsigned>(type) | flags.raw(), mask.raw(),
                        AT_FDCWD, path.c_str()) < 0)
        return fail_errno("fanotify_mark", path);
    return {};
}

Result<void> Fanotify::add_mark(const std::string& path, FanotifyMasks mask, FanotifyMarkType type,
                                Flags<FanotifyMarkFlag> flags) {
    return mark(FAN_MARK_ADD, path, mask, type, flags);
}

Result<void> Fanotify::remove_mark(const std::string& path, FanotifyMasks mask,
                                   FanotifyMarkType type, Flags<FanotifyMarkFlag> flags) {
    return mark(FAN_MARK_REMOVE, path, mask, type, flags);
}

Result<void> Fanotify::flush(FanotifyMarkType type) {
    if (::fanotify_mark(fd_.get(), FAN_MARK_FLUSH | static_cast<unsigned>(type), 0, AT_FDCWD,
                        nullptr) < 0)
        return fail_errno("fanotify_mark", "FAN_MARK_FLUSH");
    return {};
}

Result<bool> Fanotify::fill() {
    alignas(struct fanotify_event_metadata) char buf[kBufferSize];
    ssize_t n = sys::retry_eintr([&] { return ::read(fd_.get(), buf, sizeof buf); });
    if (n < 0) {
        if (errno == EAGAIN) return false;
        return fail_errno("read(fanotify)");
    }
    const char* p = buf;
    const char* end = buf + n;
    while (p + sizeof(struct fanotify_event_metadata) <= end) {
        struct fanotify_event_metadata meta;
        std::memcpy(&meta, p, sizeof meta);
        if (meta.event_len < FAN_EVENT_METADATA_LEN || p + meta.event_len > end) break;
        if (meta.vers != FANOTIFY_METADATA_VERSION) {
            if (meta.fd >= 0) ::close(meta.fd);
            return fail(
                Error("read(fanotify)", EPROTO, "metadata version " + std::to_string(meta.vers)));
        }
        FanotifyEvent ev;
        ev.mask = FanotifyMasks::from_raw(meta.mask);
        ev.pid = meta.pid;
        if (meta.fd >= 0) ev.fd = Fd(meta.fd);
        parse_info(ev, p + meta.metadata_len, p + meta.event_len);
        pending_.push_back(std::move(ev));
        p += meta.event_len;
    }
    return true;
}

Result<std::optional<FanotifyEvent>> Fanotify::read_event() {
    if (pending_.empty()) {
        BUTTER_ASSIGN_OR_RETURN(bool got, fill());
        if (!got) return std::optional<FanotifyEvent>();
    }
    std::optional<FanotifyEvent> ev(std::move(pending_.front()));
    pending_.pop_front();
    return ev;
}

Result<std::vector<FanotifyEvent>> Fanotify::read_events() {
    if (pending_.empty()) BUTTER_TRY(fill());
    std::vector<FanotifyEvent> out;
    out.reserve(pending_.size());
    for (auto& e : pending_)
        out.push_back(std::move(e));
    pending_.clear();
    return out;
}

Result<void> Fanotify::respond(const FanotifyEvent& event, bool allow, bool audit) {
    struct fanotify_response r {};
    r.fd = event.fd.get();
    r.response = (allow ? FAN_ALLOW : FAN_DENY) | (audit ? FAN_AUDIT : 0);
    ssize_t n = sys::retry_eintr([&] { return ::write(fd_.get(), &r, sizeof r); });
    if (n < 0) return fail_errno("write(fanotify response)");
    return {};
}

Result<FileHandle> name_to_handle(BorrowedFd dirfd, const char* path, std::uint64_t fsid,
                                  int flags) {
    // MAX_HANDLE_SZ (128) bytes hold any filesystem's handle.
    alignas(struct file_handle) unsigned char storage[sizeof(struct file_handle) + 128];
    auto* fh = reinterpret_cast<struct file_handle*>(storage);
    fh->handle_bytes = 128;
    int mount_id = 0;
    if (::name_to_handle_at(dirfd.get(), path, fh, &mount_id, flags) < 0)
        return fail_errno("name_to_handle_at", path);
    FileHandle h;
    h.fsid = fsid;
    h.handle_type = fh->handle_type;
    h.handle.assign(fh->f_handle, fh->f_handle + fh->handle_bytes);
    return h;
}

Result<Fd> open_by_handle(BorrowedFd mount_fd, const FileHandle& handle, int flags) {
    std::vector<unsigned char> storage(sizeof(struct file_handle) + handle.handle.size());
    auto* fh = reinterpret_cast<struct file_handle*>(storage.data());
    fh->handle_bytes = static_cast<unsigned>(handle.handle.size());
    fh->handle_type = handle.handle_type;
    std::memcpy(fh->f_handle, handle.handle.data(), handle.handle.size());
    int fd = ::open_by_handle_at(mount_fd.get(), fh, flags | O_CLOEXEC);
    if (fd < 0) return fail_errno("open_by_handle_at", handle.name);
    return Fd(fd);
}

}  // namespace butter
