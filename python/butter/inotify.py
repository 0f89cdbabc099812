"""inotify(7): watch files and directories for changes.

    from butter.inotify import Inotify, IN_CREATE, IN_DELETE
    with Inotify() as inotify:
        wd = inotify.watch("/tmp", IN_CREATE | IN_DELETE)
        event = inotify.read_event()       # InotifyEvent: wd, mask, cookie, name, path, ...

Each event carries the path its watch was added with (watch_path), the child's name, path
(the two joined), flags (the mask's names) and, for a rename read whole, moved_from.
"""

from ._butter import Inotify, InotifyEvent  # noqa: F401
from ._butter import (  # noqa: F401
    IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_CLOSE_NOWRITE, IN_CLOSE, IN_OPEN,
    IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF,
    IN_ALL_EVENTS, IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR, IN_ONLYDIR, IN_DONT_FOLLOW,
    IN_EXCL_UNLINK, IN_MASK_CREATE, IN_MASK_ADD, IN_ONESHOT,
)
from ._queue import EventQueue


class Inotify_async(EventQueue):
    """Inotify read as a read-only asyncio.Queue: `event = await inotify.get()`."""

    def __init__(self, *, loop=None):
        super().__init__(Inotify(blocking=False), loop=loop)
