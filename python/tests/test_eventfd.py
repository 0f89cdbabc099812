import asyncio
import os
import threading

import pytest

from butter.eventfd import EventFD, EventFD_async


def test_the_counter_adds_up_and_resets():
    with EventFD(2) as efd:
        efd.write(3)
        efd.write()
        assert efd.read_event() == 6
        assert efd.read_event(timeout=0.05) is None


def test_semaphore_mode_hands_out_ones():
    with EventFD(3, semaphore=True, blocking=False) as efd:
        assert [efd.read_event() for _ in range(4)] == [1, 1, 1, None]
        assert efd.read_events() == []


def test_overflow_and_bad_values():
    with EventFD() as efd:
        efd.write(2**64 - 2)
        with pytest.raises(BlockingIOError) as err:
            efd.write(1)
        assert err.value.call.startswith("write")
        with pytest.raises(ValueError):
            efd.write(2**64 - 1)
        with pytest.raises(OverflowError):
            efd.write(-1)
        with pytest.raises(OverflowError):
            efd.write(2**64)
        with pytest.raises(TypeError):
            efd.write("1")


def test_a_thread_wakes_a_blocked_reader():
    with EventFD() as efd:
        t = threading.Timer(0.05, lambda: efd.write(7))
        t.start()
        assert efd.read_event() == 7  # the GIL is released while it waits
        t.join()


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        EventFD(-1)
    with pytest.raises(TypeError):
        EventFD(0, True)  # semaphore is keyword-only
    with EventFD(blocking=False) as efd:
        assert efd.blocking is False and efd.read_event(timeout=0) is None
        with pytest.raises(TypeError):
            efd.read_event(1, 2)
        with pytest.raises(TypeError):
            efd.read_event(wait=1)
        with pytest.raises(ValueError):
            efd.read_event(timeout=-1)
        with pytest.raises(TypeError):
            efd.write(1, 2)
    with pytest.raises(ValueError):
        efd.write(1)
    assert efd.closed


def test_the_asyncio_twin_round_trips():
    async def main():
        with EventFD_async() as efd:
            for n in range(1, 50):
                efd.write(n)
                assert await asyncio.wait_for(efd.get(), 5) == n
            assert efd.empty()

    asyncio.run(main())


def test_a_twin_made_outside_a_loop_serves_the_loop_that_reads_it():
    efd = EventFD_async(semaphore=True)
    efd.write(2)

    async def main():
        return [await asyncio.wait_for(efd.get(), 5) for _ in range(2)]

    assert asyncio.run(main()) == [1, 1]
    efd.close()
