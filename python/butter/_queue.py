"""The asyncio twins: an event-like object read as a read-only asyncio.Queue."""

import asyncio
import collections


class EventQueue:
    """A read-only asyncio.Queue over an event-like object.

    The running loop's reader callback (loop.add_reader, no threads) reads every event the
    kernel has into the queue; get() waits for one, get_nowait() raises asyncio.QueueEmpty.
    Subclasses set `_source` to a non-blocking event-like object before calling __init__.
    """

    def __init__(self, source, *, loop=None):
        self._source = source
        self._loop = loop  # else the running loop of the first get()
        self._events = collections.deque()
        self._getters = collections.deque()
        self._reading = False
        self._error = None

    # The queue's interface (asyncio.Queue's read side).
    def qsize(self):
        self._fill_now()
        return len(self._events)

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return False

    def get_nowait(self):
        self._fill_now()
        if self._error is not None:
            raise self._error
        if not self._events:
            raise asyncio.QueueEmpty
        return self._events.popleft()

    async def get(self):
        while True:
            if self._events:
                return self._events.popleft()
            if self._error is not None:
                raise self._error
            if self._source.closed:
                raise ValueError("get() on a closed " + type(self).__name__)
            if self._loop is None or (self._loop.is_closed() and not self._reading):
                self._loop = asyncio.get_running_loop()  # (a first, or a later asyncio.run)
            waiter = self._loop.create_future()
            self._getters.append(waiter)
            self._start()
            try:
                await waiter
            except BaseException:
                # Cancelled after it was woken: its event goes to the next getter, as
                # asyncio.Queue passes a wakeup on.
                if waiter in self._getters:
                    self._getters.remove(waiter)
                elif self._events:
                    self._wake(1)
                if not self._getters:
                    self._stop()
                raise
            if not self._getters:
                self._stop()

    # The event-like object's own side.
    def fileno(self):
        return self._source.fileno()

    @property
    def closed(self):
        return self._source.closed

    def close(self):
        self._stop()
        self._source.close()
        for waiter in self._getters:
            if not waiter.done():
                waiter.set_exception(ValueError("closed while waiting"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        # watch(), write(), set(), ... of the wrapped object (never its private parts, nor
        # before it is set: copy and pickle probe an instance made without __init__).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._source, name)

    # The reader callback.
    def _start(self):
        if not self._reading and not self._source.closed:
            self._loop.add_reader(self._source.fileno(), self._on_readable)
            self._reading = True

    def _stop(self):
        if self._reading:
            self._reading = False
            if not self._source.closed:
                self._loop.remove_reader(self._source.fileno())

    def _fill_now(self):
        if self._source.closed or self._error is not None:
            return
        try:
            self._events.extend(self._source.read_events())
        except OSError as e:
            self._error = e

    def _on_readable(self):
        self._fill_now()
        # One getter per event (all of them for an error): the fd is drained, so the loop
        # will not call again for these.
        self._wake(len(self._getters) if self._error is not None else len(self._events))

    def _wake(self, count):
        while count > 0 and self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
