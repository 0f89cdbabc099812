"""butter: Linux's low-level features for Python, on libbutter.

The modules follow butter 0.8: butter.inotify, butter.eventfd, butter.timerfd,
butter.signalfd, butter.splice and butter.system. Every kernel object is *event-like*: a
file-like object (fileno(), close(), a context manager; select, selectors and asyncio accept
it) with read_event() (one event) and read_events() (the cached ones, or all the kernel has).
Each has an asyncio twin named with `_async` (Inotify_async) that behaves like a read-only
asyncio.Queue.

read_event() reads everything the kernel has and returns the first event; the rest stay
cached (`buffered` says how many), where select() and selectors cannot see them: drain them
(read_events()) before waiting on the descriptor again. A blocking read waits with the GIL
released; signals run Python's handlers (an exception from one ends the wait) and close()
from another thread ends it with ValueError.

Paths and names go in as os.fsencode takes them (str, bytes, os.PathLike; no NUL byte) and
come out as os.fsdecode gives them.

Errors from the kernel are OSError (its errno's subclass: FileNotFoundError, PermissionError,
...) with errno, strerror naming the system call, filename and a `call` attribute.
"""

__version__ = "0.8.0"
