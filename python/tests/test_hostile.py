"""What an independent review found, each kept as a test: hostile arguments, threads, signals."""
import asyncio
import os
import signal
import threading
import time

import pytest

from butter import system
from butter.eventfd import EventFD, EventFD_async
from butter.inotify import IN_CREATE, Inotify
from butter.seccomp import SeccompFilter
from butter.splice import SPLICE_F_NONBLOCK, splice, tee, vmsplice
from butter.timerfd import TimerFD


def test_vmsplice_takes_the_write_end_only_and_contiguous_buffers():
    r, w = os.pipe()
    try:
        os.write(w, b"ZZ")
        constant = b"ab"
        with pytest.raises(ValueError):
            vmsplice(r, [constant], SPLICE_F_NONBLOCK)  # would copy the pipe into `constant`
        assert constant == b"ab" and os.read(r, 2) == b"ZZ"
        for strided in (memoryview(b"abcdef")[::2], memoryview(bytearray(b"ABCDEFGH"))[::-1]):
            with pytest.raises(ValueError):
                vmsplice(w, [strided])
    finally:
        os.close(r)
        os.close(w)


class Alarm:
    """SIGALRM every `every` seconds with a handler that returns (or raises)."""

    def __init__(self, every, raises=False):
        self.every, self.raises, self.count = every, raises, 0

    def handler(self, *_):
        self.count += 1
        if self.raises:
            raise TimeoutError("alarm")

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self.handler)
        signal.setitimer(signal.ITIMER_REAL, self.every, self.every)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)


@pytest.mark.parametrize("make", [EventFD, TimerFD, Inotify])
def test_a_timeout_holds_through_signals_whose_handlers_return(make):
    with make() as obj, Alarm(0.05) as alarm:
        start = time.monotonic()
        assert obj.read_event(timeout=0.4) is None
        took = time.monotonic() - start
    assert 0.39 <= took < 1.5 and alarm.count >= 3


def test_blocked_splice_tee_and_vmsplice_run_signal_handlers():
    r, w = os.pipe()
    r2, w2 = os.pipe()
    try:
        for call in (lambda: splice(r, w2, 10), lambda: tee(r, w2, 10)):
            with Alarm(0.1, raises=True):
                with pytest.raises(TimeoutError):
                    call()
        os.set_blocking(w, False)
        try:
            while True:
                os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
        keep = [b"y" * 4096]
        with Alarm(0.1, raises=True):
            with pytest.raises(TimeoutError):
                vmsplice(w, keep)  # the pipe is full
    finally:
        for fd in (r, w, r2, w2):
            os.close(fd)


@pytest.mark.parametrize("make", [EventFD, TimerFD, Inotify])
def test_close_from_another_thread_ends_a_blocked_read(make):
    obj = make()
    failure = []

    def reader():
        try:
            obj.read_event()
        except ValueError as e:
            failure.append(e)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    obj.close()
    t.join(5)
    assert not t.is_alive() and failure and time.monotonic() - start < 2


def test_a_cancelled_getter_passes_its_event_on():
    async def main():
        q = EventFD_async()
        t1 = asyncio.ensure_future(q.get())
        t2 = asyncio.ensure_future(q.get())
        await asyncio.sleep(0.05)
        q.write(5)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        t1.cancel()
        assert await asyncio.wait_for(t2, 2) == 5
        q.close()

    asyncio.run(main())


def test_a_twin_serves_a_second_asyncio_run_and_copies_fail_cleanly():
    import copy
    q = EventFD_async()
    for n in (1, 2):
        q.write(n)
        assert asyncio.run(asyncio.wait_for(q.get(), 2)) == n
    assert copy.copy(q).fileno() == q.fileno()  # (it recursed in __getattr__ once)
    q.close()


def test_timer_values_that_do_not_fit_are_refused():
    with TimerFD() as t:
        for bad in (1e10, 9.3e9):
            with pytest.raises(ValueError):
                t.set(bad)
        with pytest.raises(ValueError):
            t.set(9.3e9, absolute=True)


def test_nul_bytes_are_refused_and_odd_names_round_trip(tmp_path):
    with Inotify() as ino:
        with pytest.raises(ValueError):
            ino.watch(str(tmp_path) + "\0bogus")
        wd = ino.watch(os.fsencode(tmp_path), IN_CREATE)
        odd = os.fsdecode(b"caf\xff")
        open(os.path.join(os.fsencode(tmp_path), b"caf\xff"), "w").close()
        e = ino.read_event(timeout=5)
        assert e.name == odd and os.fsencode(e.path).endswith(b"/caf\xff") and repr(e)
        assert ino.path_of(wd) == str(tmp_path)
    with pytest.raises(ValueError):
        system.sethostname("ab\0cd")
    with pytest.raises(ValueError):
        SeccompFilter("allow").add_rule("errno:EPERM", "mkdir\0x")


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        SeccompFilter(1)
    f = SeccompFilter("allow")
    with pytest.raises(TypeError):
        f.add_rule("errno:EPERM", None)
    f.add_rule("errno:EPERM", "openat", [(0, "==", -100)])  # AT_FDCWD, as C has it


def test_errors_name_paths_only_as_filename():
    with Inotify() as ino:
        with pytest.raises(OSError) as err:
            ino.ignore(12345)
        assert err.value.filename is None and "12345" in str(err.value)


def test_buffered_events_are_counted(tmp_path):
    with Inotify() as ino:
        ino.watch(str(tmp_path), IN_CREATE)
        for n in "abc":
            (tmp_path / n).write_text("")
        assert ino.read_event(timeout=5).name == "a"
        assert ino.buffered == 2
        assert [e.name for e in ino.read_events()] == ["b", "c"] and ino.buffered == 0


# Made by Cls.__new__(Cls) without __init__, each class of the extension: every attribute and
# method either works (EventFD's __new__ makes a whole one) or raises TypeError, never reads
# the uninitialised memory pybind11 would hand it (a crash, or garbage). In a child process
# each, so that a crash fails the test instead of ending the run.
PROBE = """
import inspect, sys
import butter._butter as b
cls = getattr(b, sys.argv[1])
try:
    obj = cls.__new__(cls)
except TypeError:
    sys.exit(0)
touched = 0
for name, _ in inspect.getmembers(cls):
    if name.startswith("__") and name not in ("__enter__", "__exit__", "__repr__"):
        continue
    try:
        attr = getattr(obj, name)
        if callable(attr):
            if name == "__exit__":
                attr(None, None, None)
            elif name in ("read_event", "read_events"):
                attr(0)  # (EventFD's whole one would wait for ever)
            else:
                attr()
    except (TypeError, ValueError, OSError):
        pass
    touched += 1
print(touched)
"""


def extension_classes():
    import butter._butter as b

    return sorted(
        n for n, v in vars(b).items() if isinstance(v, type) and v.__module__ == b.__name__
    )


@pytest.mark.parametrize("name", extension_classes())
def test_an_object_made_by_new_alone_never_crashes(name):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", PROBE, name], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
