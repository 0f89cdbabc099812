import asyncio
import time

import pytest

from butter.timerfd import Clock, TimerFD, TimerFD_async, clock_now


def test_a_one_shot_timer_expires_once():
    with TimerFD() as t:
        start = time.monotonic()
        t.set(0.05)
        assert t.read_event() == 1
        assert time.monotonic() - start >= 0.049
        assert t.read_event(timeout=0.1) is None
        assert t.get() == (0.0, 0.0)


def test_an_interval_timer_counts_missed_expirations():
    with TimerFD(Clock.BOOTTIME) as t:
        t.set(0.01, interval=0.01)
        remaining, interval = t.get()
        assert 0 < remaining <= 0.01 and interval == pytest.approx(0.01)
        time.sleep(0.1)
        assert t.read_event() >= 5
        t.disarm()
        assert t.read_event(timeout=0.05) is None


def test_an_absolute_timer_and_the_clock():
    with TimerFD(Clock.REALTIME) as t:
        t.set(clock_now(Clock.REALTIME) + 0.02, absolute=True)
        assert t.read_event(timeout=5) == 1


def test_bad_values_are_refused():
    with TimerFD() as t:
        for bad in (-1, float("nan"), float("inf"), 0):
            with pytest.raises(ValueError):
                t.set(bad)
        with pytest.raises(TypeError):
            t.set("soon")
    with pytest.raises(TypeError):
        TimerFD("monotonic")


def test_the_asyncio_twin_ticks():
    async def main():
        with TimerFD_async() as t:
            t.set(0.01, interval=0.01)
            total = 0
            while total < 5:
                total += await asyncio.wait_for(t.get(), 5)

    asyncio.run(main())
