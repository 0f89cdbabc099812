"""eventfd(2): a counter to wake a reader (a thread, a process, an event loop).

    from butter.eventfd import EventFD
    efd = EventFD()
    efd.write(3)
    efd.read_event()     # 3 (the counter, reset); 1 at a time with semaphore=True
"""

from ._butter import EventFD  # noqa: F401
from ._queue import EventQueue


class EventFD_async(EventQueue):
    """EventFD read as a read-only asyncio.Queue of counter values."""

    def __init__(self, initial=0, *, semaphore=False, loop=None):
        super().__init__(EventFD(initial, semaphore=semaphore, blocking=False), loop=loop)
