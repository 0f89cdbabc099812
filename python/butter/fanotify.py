"""fanotify(7): file access events for a file, a directory, a mount or a whole filesystem,
with permission events a monitor answers (needs CAP_SYS_ADMIN, except FAN_REPORT_FID groups).

    from butter.fanotify import Fanotify, FAN_CLOSE_WRITE, FAN_EVENT_ON_CHILD
    with Fanotify() as fan:
        fan.mark("/srv", FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD)
        event = fan.read_event()     # FanotifyEvent: mask, pid, fd, path, flags
        event.close()                # its fd (also closed when the event goes)
"""

from ._butter import Fanotify, FanotifyEvent, FileHandle  # noqa: F401
from ._butter import (  # noqa: F401
    FAN_ACCESS, FAN_MODIFY, FAN_ATTRIB, FAN_CLOSE_WRITE, FAN_CLOSE_NOWRITE, FAN_CLOSE, FAN_OPEN,
    FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE, FAN_DELETE_SELF, FAN_MOVE_SELF,
    FAN_OPEN_EXEC, FAN_Q_OVERFLOW, FAN_OPEN_PERM, FAN_ACCESS_PERM, FAN_OPEN_EXEC_PERM, FAN_ONDIR,
    FAN_EVENT_ON_CHILD, FAN_CLASS_NOTIF, FAN_CLASS_CONTENT, FAN_CLASS_PRE_CONTENT,
    FAN_UNLIMITED_QUEUE, FAN_UNLIMITED_MARKS, FAN_REPORT_TID, FAN_REPORT_FID, FAN_REPORT_DIR_FID,
    FAN_REPORT_NAME, FAN_REPORT_DFID_NAME, FAN_MARK_DONT_FOLLOW, FAN_MARK_ONLYDIR,
)
from ._queue import EventQueue


class Fanotify_async(EventQueue):
    """Fanotify read as a read-only asyncio.Queue of FanotifyEvent."""

    def __init__(self, flags=FAN_CLASS_NOTIF, *, loop=None):
        super().__init__(Fanotify(flags, blocking=False), loop=loop)
