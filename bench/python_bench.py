#!/usr/bin/python3
"""The Python package against what Debian ships for the same jobs, measured in one run:
inotify events read per second (butter.inotify against pyinotify and python3-inotify), and
eventfd round trips per second (butter.eventfd against os.eventfd). Prints each rate and
butter's ratio to it (above 1.00x: butter is faster).

    PYTHONPATH=build/python bench/python_bench.py [ROUNDS]

Each figure is the median of ROUNDS (default 7). The inotify figure is the read side alone:
every round queues the same events first (creating and removing files, outside the clock),
then times reading and decoding all of them into event objects.
"""

import os
import statistics
import sys
import tempfile
import time

from butter.eventfd import EventFD
from butter.inotify import IN_CREATE, IN_DELETE, Inotify

FILES = 4000  # 8000 events a round: below fs.inotify.max_queued_events (16384)
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
TRIPS = 200_000


def queue_events(directory):
    for i in range(FILES):
        path = os.path.join(directory, "f%d" % i)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.unlink(path)


def butter_inotify(directory):
    with Inotify(blocking=False) as ino:
        ino.watch(directory, IN_CREATE | IN_DELETE)
        queue_events(directory)
        start = time.perf_counter()
        n = 0
        while True:
            got = ino.read_events()
            if not got:
                break
            n += len(got)
        return n, time.perf_counter() - start


def pyinotify_inotify(directory):
    import pyinotify
    wm = pyinotify.WatchManager()
    wm.add_watch(directory, pyinotify.IN_CREATE | pyinotify.IN_DELETE)
    seen = []
    notifier = pyinotify.Notifier(wm, default_proc_fun=seen.append, timeout=0)
    queue_events(directory)
    start = time.perf_counter()
    while notifier.check_events(timeout=0):
        notifier.read_events()
        notifier.process_events()
    elapsed = time.perf_counter() - start
    notifier.stop()
    return len(seen), elapsed


def python3_inotify(directory):
    import inotify.adapters
    import inotify.constants
    ino = inotify.adapters.Inotify(block_duration_s=0)
    ino.add_watch(directory, inotify.constants.IN_CREATE | inotify.constants.IN_DELETE)
    queue_events(directory)
    start = time.perf_counter()
    n, idle = 0, False
    for event in ino.event_gen(yield_nones=True):  # a None ends each poll's batch
        if event is None:
            if idle:  # a whole batch with no event: the queue is empty
                break
            idle = True
            continue
        idle = False
        n += 1
    elapsed = time.perf_counter() - start
    ino.remove_watch(directory)
    return n, elapsed


def butter_eventfd():
    with EventFD(blocking=False) as efd:
        write, read = efd.write, efd.read_event
        start = time.perf_counter()
        for _ in range(TRIPS):
            write(1)
            read()
        return TRIPS, time.perf_counter() - start


def os_eventfd():
    fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    write, read = os.eventfd_write, os.eventfd_read
    try:
        start = time.perf_counter()
        for _ in range(TRIPS):
            write(fd, 1)
            read(fd)
        return TRIPS, time.perf_counter() - start
    finally:
        os.close(fd)


def rate(fn, *args):
    rates = []
    for _ in range(ROUNDS):
        n, seconds = fn(*args)
        rates.append(n / seconds)
    return statistics.median(rates), n


def main():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        mine, n = rate(butter_inotify, d)
        assert n == 2 * FILES, n
        rows.append(("inotify events/s", "butter.inotify", mine, None))
        for name, fn in (("pyinotify", pyinotify_inotify), ("python3-inotify", python3_inotify)):
            try:
                theirs, m = rate(fn, d)
            except ImportError:
                rows.append(("inotify events/s", name + " (not installed)", None, None))
                continue
            assert m == 2 * FILES, (name, m)
            rows.append(("inotify events/s", name, theirs, mine / theirs))
    # Rounds of the two alternate: this machine's speed drifts more than they differ.
    mine_rates, their_rates = [], []
    for _ in range(ROUNDS):
        for fn, into in ((butter_eventfd, mine_rates), (os_eventfd, their_rates)):
            n, seconds = fn()
            into.append(n / seconds)
    mine, theirs = statistics.median(mine_rates), statistics.median(their_rates)
    rows.append(("eventfd round trips/s", "butter.eventfd", mine, None))
    rows.append(("eventfd round trips/s", "os.eventfd", theirs, mine / theirs))
    print("| figure | implementation | rate | butter vs it |")
    print("|---|---|---|---|")
    for figure, impl, r, ratio in rows:
        print("| %s | %s | %s | %s |" % (figure, impl, "-" if r is None else "%.0f" % r,
                                         "" if ratio is None else "%.2fx" % ratio))


if __name__ == "__main__":
    main()
