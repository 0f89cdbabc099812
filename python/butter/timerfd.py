"""timerfd_create(2): timers delivered as readable events.

    from butter.timerfd import TimerFD, Clock
    t = TimerFD(Clock.MONOTONIC)
    t.set(0.5, interval=0.1)     # first after 0.5 s, then every 0.1 s
    t.read_event()               # the expirations since the last read
"""

from ._butter import TimerFD, Clock, clock_now  # noqa: F401
from ._queue import EventQueue

CLOCK_MONOTONIC = Clock.MONOTONIC
CLOCK_BOOTTIME = Clock.BOOTTIME
CLOCK_REALTIME = Clock.REALTIME


class TimerFD_async(EventQueue):
    """TimerFD read as a read-only asyncio.Queue of expiration counts."""

    def __init__(self, clock=Clock.MONOTONIC, *, loop=None):
        super().__init__(TimerFD(clock, blocking=False), loop=loop)
