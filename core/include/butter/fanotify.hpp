// Fanotify: an owned fanotify(7) group, event-like (read_event / read_events, as Inotify), with
// marks on inodes, mounts and whole filesystems, FID/DFID_NAME reporting, and permission events
// answered with allow or deny.
//
// Needs CAP_SYS_ADMIN in the initial user namespace for most uses (mount and filesystem marks,
// permission classes); since 5.13 an unprivileged caller may create a FID-reporting group with
// inode marks only.
#pragma once

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

enum class FanotifyInit : unsigned {
    ClassNotif = FAN_CLASS_NOTIF,             // notification only (0)
    ClassContent = FAN_CLASS_CONTENT,         // permission events, after content is final
    ClassPreContent = FAN_CLASS_PRE_CONTENT,  // permission events, before content is read
    NonBlock = FAN_NONBLOCK,
    UnlimitedQueue = FAN_UNLIMITED_QUEUE,
    UnlimitedMarks = FAN_UNLIMITED_MARKS,
    EnableAudit = FAN_ENABLE_AUDIT,
    ReportTid = FAN_REPORT_TID,
    ReportFid = FAN_REPORT_FID,         // file handles instead of fds
    ReportDirFid = FAN_REPORT_DIR_FID,  // the parent directory's handle
    ReportName = FAN_REPORT_NAME,       // with ReportDirFid: the entry's name
    ReportTargetFid = FAN_REPORT_TARGET_FID,
    ReportPidfd = FAN_REPORT_PIDFD,
};
std::span<const FlagName<FanotifyInit>> flag_names(FanotifyInit);
inline constexpr Flags<FanotifyInit> kFanotifyReportDfidName =
    Flags<FanotifyInit>::from_raw(FAN_REPORT_DFID_NAME);

enum class FanotifyMask : std::uint64_t {
    Access = FAN_ACCESS,
    Modify = FAN_MODIFY,
    Attrib = FAN_ATTRIB,
    CloseWrite = FAN_CLOSE_WRITE,
    CloseNoWrite = FAN_CLOSE_NOWRITE,
    Open = FAN_OPEN,
    MovedFrom = FAN_MOVED_FROM,
    MovedTo = FAN_MOVED_TO,
    Create = FAN_CREATE,
    Delete = FAN_DELETE,
    DeleteSelf = FAN_DELETE_SELF,
    MoveSelf = FAN_MOVE_SELF,
    OpenExec = FAN_OPEN_EXEC,
    QueueOverflow = FAN_Q_OVERFLOW,
    FsError = FAN_FS_ERROR,
    OpenPerm = FAN_OPEN_PERM,
    AccessPerm = FAN_ACCESS_PERM,
    OpenExecPerm = FAN_OPEN_EXEC_PERM,
    Rename = FAN_RENAME,
    OnDir = FAN_ONDIR,                  // also report events on directories
    EventOnChild = FAN_EVENT_ON_CHILD,  // report events on a marked directory's children
};
std::span<const FlagName<FanotifyMask>> flag_names(FanotifyMask);
using FanotifyMasks = Flags<FanotifyMask>;

enum class FanotifyMarkType : unsigned {
    Inode = FAN_MARK_INODE,
    Mount = FAN_MARK_MOUNT,
    Filesystem = FAN_MARK_FILESYSTEM,
};

enum class FanotifyMarkFlag : unsigned {
    DontFollow = FAN_MARK_DONT_FOLLOW,
    OnlyDir = FAN_MARK_ONLYDIR,
    IgnoredMask = FAN_MARK_IGNORED_MASK,
    IgnoredSurvModify = FAN_MARK_IGNORED_SURV_MODIFY,
    Evictable = FAN_MARK_EVICTABLE,
    Ignore = FAN_MARK_IGNORE,
};
std::span<const FlagName<FanotifyMarkFlag>> flag_names(FanotifyMarkFlag);

// A file handle from FID reporting, usable with open_by_handle_at(2).
struct FileHandle {
    std::uint8_t info_type = 0;  // FAN_EVENT_INFO_TYPE_FID, _DFID, _DFID_NAME, _OLD/_NEW_DFID_NAME
    std::uint64_t fsid = 0;
    int handle_type = 0;
    std::vector<unsigned char> handle;
    std::string name;  // for *_DFID_NAME records: the entry's name ("." for the dir itself)
};

struct FanotifyEvent {
    FanotifyMasks mask;
    pid_t pid = 0;                    // or tid with ReportTid
    Fd fd;                            // an open fd of the object (not with FID reporting)
    Fd pidfd;                         // with ReportPidfd
    std::vector<FileHandle> handles;  // with FID reporting
    int error = 0;                    // FsError: the error and its count
    std::uint32_t error_count = 0;

    bool is_permission() const;
    bool is_overflow() const { return mask.has(FanotifyMask::QueueOverflow); }
    bool is_dir() const { return mask.has(FanotifyMask::OnDir); }
    // The name in the first DFID_NAME record, or "".
    std::string name() const;
    // The path of `fd` (readlink of /proc/self/fd/N), or "" without an fd.
    std::string path() const;
    std::string to_string() const;
};

class Fanotify {
  public:
    using Event = FanotifyEvent;
    static constexpr std::size_t kBufferSize = 16 * 1024;

    // fanotify_init(FAN_CLOEXEC | flags, event_f_flags | O_CLOEXEC). EPERM without
    // CAP_SYS_ADMIN (unprivileged: only ReportFid-style groups); EINVAL: flags this kernel lacks.
    [[nodiscard]] static Result<Fanotify> create(Flags<FanotifyInit> flags,
                                                 int event_f_flags = O_RDONLY | O_LARGEFILE);

    // fanotify_mark(FAN_MARK_ADD | type | flags, mask, AT_FDCWD, path).
    [[nodiscard]] Result<void> add_mark(const std::string& path, FanotifyMasks mask,
                                        FanotifyMarkType type = FanotifyMarkType::Inode,
                                        Flags<FanotifyMarkFlag> flags = {});
    [[nodiscard]] Result<void> remove_mark(const std::string& path, FanotifyMasks mask,
                                           FanotifyMarkType type = FanotifyMarkType::Inode,
                                           Flags<FanotifyMarkFlag> flags = {});
    // Removes every mark of `type`.
    [[nodiscard]] Result<void> flush(FanotifyMarkType type = FanotifyMarkType::Inode);

    [[nodiscard]] Result<std::optional<FanotifyEvent>> read_event();
    [[nodiscard]] Result<std::vector<FanotifyEvent>> read_events();
    std::size_t buffered() const { return pending_.size(); }

    // Answers a permission event: the blocked open/access proceeds (allow) or fails with EPERM.
    [[nodiscard]] Result<void> respond(const FanotifyEvent& event, bool allow, bool audit = false);

    int fd() const { return fd_.get(); }

  private:
    explicit Fanotify(Fd fd) : fd_(std::move(fd)) {}
    Result<bool> fill();
    Result<void> mark(unsigned op, const std::string& path, FanotifyMasks mask,
                      FanotifyMarkType type, Flags<FanotifyMarkFlag> flags);
    Fd fd_;
    std::deque<FanotifyEvent> pending_;
};

// open_by_handle_at(2) for a FID handle: needs CAP_DAC_READ_SEARCH; `mount_fd` is any fd on
// the same filesystem.
[[nodiscard]] Result<Fd> open_by_handle(BorrowedFd mount_fd, const FileHandle& handle, int flags);
// name_to_handle_at(2): the handle of `path` (relative to `dirfd`), as FID reporting gives it
// for the same object on the same filesystem; `fsid` is the caller's (statfs f_fsid), the
// kernel does not return it. `flags`: AT_SYMLINK_FOLLOW, AT_EMPTY_PATH.
[[nodiscard]] Result<FileHandle> name_to_handle(BorrowedFd dirfd, const char* path,
                                                std::uint64_t fsid, int flags = 0);

}  // namespace butter
