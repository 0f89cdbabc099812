"""signalfd(2): signals read as events (block them first: signal.pthread_sigmask).

    import signal
    from butter.signalfd import SignalFD
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    sfd = SignalFD([signal.SIGUSR1])
    info = sfd.read_event()      # SignalInfo: signo, pid, uid, code, status, ...
"""

from ._butter import SignalFD, SignalInfo, signal_name, parse_signal  # noqa: F401
from ._queue import EventQueue


class SignalFD_async(EventQueue):
    """SignalFD read as a read-only asyncio.Queue of SignalInfo."""

    def __init__(self, signals, *, loop=None):
        super().__init__(SignalFD(list(signals), blocking=False), loop=loop)
