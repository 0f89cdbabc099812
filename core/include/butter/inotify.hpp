// Inotify: an owned inotify(7) instance with a watch -> path map, move pairing, and the
// event-like interface (read_event / read_events).
//
// Event-like semantics (shared/DESIGN.md): read_event() returns one event, from the events
// already buffered or else from one read(2) of the kernel queue; read_events() returns the
// buffered events if there are any, else every event one read(2) gets. The kernel never splits
// an event across reads, and the buffer always holds at least one maximal event, so no event is
// lost at the buffer's edge. On a blocking instance both block until an event arrives; on a
// non-blocking one they return std::nullopt / an empty vector when nothing is ready.
#pragma once

#include <sys/inotify.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "butter/error.hpp"
#include "butter/fd.hpp"
#include "butter/flags.hpp"

namespace butter {

// Every IN_* bit: events (watchable), events only the kernel reports, and add_watch flags.
enum class InotifyMask : std::uint32_t {
    Access = IN_ACCESS,
    Modify = IN_MODIFY,
    Attrib = IN_ATTRIB,
    CloseWrite = IN_CLOSE_WRITE,
    CloseNoWrite = IN_CLOSE_NOWRITE,
    Open = IN_OPEN,
    MovedFrom = IN_MOVED_FROM,
    MovedTo = IN_MOVED_TO,
    Create = IN_CREATE,
    Delete = IN_DELETE,
    DeleteSelf = IN_DELETE_SELF,
    MoveSelf = IN_MOVE_SELF,
    // reported by the kernel only
    Unmount = IN_UNMOUNT,           // the watched filesystem was unmounted (IN_IGNORED follows)
    QueueOverflow = IN_Q_OVERFLOW,  // events were dropped (wd == -1)
    Ignored = IN_IGNORED,           // the watch is gone (removed, file deleted, unmounted)
    IsDir = IN_ISDIR,               // the subject of the event is a directory
    // inotify_add_watch flags
    OnlyDir = IN_ONLYDIR,         // fail with ENOTDIR unless the path is a directory
    DontFollow = IN_DONT_FOLLOW,  // watch a symlink itself
    ExclUnlink = IN_EXCL_UNLINK,  // no events for children after they are unlinked
    MaskCreate = IN_MASK_CREATE,  // fail with EEXIST if the inode is already watched
    MaskAdd = IN_MASK_ADD,        // add to an existing watch's mask instead of replacing it
    OneShot = IN_ONESHOT,         // remove the watch after its first event
};
std::span<const FlagName<InotifyMask>> flag_names(InotifyMask);
using InotifyMasks = Flags<InotifyMask>;

inline constexpr InotifyMasks kInotifyClose = InotifyMasks::from_raw(IN_CLOSE);
inline constexpr InotifyMasks kInotifyMove = InotifyMasks::from_raw(IN_MOVE);
inline constexpr InotifyMasks kInotifyAllEvents = InotifyMasks::from_raw(IN_ALL_EVENTS);

enum class InotifyFlag : int { NonBlock = IN_NONBLOCK };
std::span<const FlagName<InotifyFlag>> flag_names(InotifyFlag);

struct InotifyEvent {
    int wd = -1;
    InotifyMasks mask;
    std::uint32_t cookie = 0;  // links IN_MOVED_FROM and IN_MOVED_TO of one rename
    std::string name;          // the child's name for events on a watched directory, else ""
    std::string watch_path;    // the path the watch was added with ("" for QueueOverflow)
    // For a MovedTo whose MovedFrom (same cookie) was read from this instance: the old path.
    std::optional<std::string> moved_from;

    // watch_path/name, or watch_path for events on the watched object itself.
    std::string path() const;
    bool is_dir() const { return mask.has(InotifyMask::IsDir); }
    bool is_overflow() const { return mask.has(InotifyMask::QueueOverflow); }
    bool is_ignored() const { return mask.has(InotifyMask::Ignored); }
    bool has(InotifyMasks m) const { return mask.any(m); }
    // "Create|IsDir /tmp/x/sub"
    std::string to_string() const;
};

class Inotify {
  public:
    using Event = InotifyEvent;
    // Large enough for about a thousand short-named events in one read(2).
    static constexpr std::size_t kDefaultBufferSize = 64 * 1024;
    // One event with the longest name: no smaller buffer can read every event.
    static constexpr std::size_t kMinBufferSize = sizeof(struct inotify_event) + 255 + 1;

    // inotify_init1(IN_CLOEXEC | flags). EMFILE: fs.inotify.max_user_instances reached.
    // `buffer_size` is raised to kMinBufferSize if smaller.
    [[nodiscard]] static Result<Inotify> create(Flags<InotifyFlag> flags = {},
                                                std::size_t buffer_size = kDefaultBufferSize);

    // inotify_add_watch(2). Returns the watch descriptor. Watching an inode that is already
    // watched returns its existing wd and replaces its mask (or ORs it with MaskAdd; EEXIST with
    // MaskCreate). ENOSPC: fs.inotify.max_user_watches reached.
    [[nodiscard]] Result<int> add_watch(const std::string& path, InotifyMasks mask);
    // Changes the mask of an existing watch (re-adding its path); MaskAdd ORs the new bits in.
    [[nodiscard]] Result<int> modify_watch(int wd, InotifyMasks mask);
    // inotify_rm_watch(2). The kernel then queues IN_IGNORED for `wd`; the path mapping lasts
    // until that event is read, so it carries the path. EINVAL: no such watch.
    [[nodiscard]] Result<void> remove_watch(int wd);

    // The path `wd` was added with, or nullptr when `wd` is unknown.
    const std::string* path_of(int wd) const;
    // The wd watching `path` (as given to add_watch), if any.
    std::optional<int> wd_of(const std::string& path) const;
    std::size_t watch_count() const;

    [[nodiscard]] Result<std::optional<InotifyEvent>> read_event();
    [[nodiscard]] Result<std::vector<InotifyEvent>> read_events();
    // Events read from the kernel but not yet returned.
    std::size_t buffered() const { return pending_.size(); }

    int fd() const { return fd_.get(); }

  private:
    struct Watch {
        std::string path;
        bool removed = false;  // inotify_rm_watch called; waiting for IN_IGNORED
    };
    Inotify(Fd fd, std::size_t buffer_size) : fd_(std::move(fd)), buffer_(buffer_size) {}
    // One read(2) into buffer_, every event parsed into pending_. False when nothing was ready.
    Result<bool> fill();
    InotifyEvent parse(const struct inotify_event& raw, const char* name);

    Fd fd_;
    std::vector<char> buffer_;
    std::deque<InotifyEvent> pending_;
    std::unordered_map<int, Watch> watches_;
    // MovedFrom events waiting for their MovedTo: (cookie, old path), oldest first, bounded.
    std::deque<std::pair<std::uint32_t, std::string>> moves_;
};

}  // namespace butter
