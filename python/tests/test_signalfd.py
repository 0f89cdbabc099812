import asyncio
import os
import selectors
import signal

import pytest

from butter.eventfd import EventFD
from butter.signalfd import SignalFD, SignalFD_async, parse_signal, signal_name
from butter.timerfd import TimerFD


@pytest.fixture
def blocked():
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
    yield
    # Nothing left pending to kill the test run when unblocked.
    while signal.SIGUSR1 in signal.sigpending() or signal.SIGUSR2 in signal.sigpending():
        signal.sigwait({signal.SIGUSR1, signal.SIGUSR2})
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


def test_a_blocked_signal_is_read_with_its_sender(blocked):
    with SignalFD([signal.SIGUSR1]) as sfd:
        os.kill(os.getpid(), signal.SIGUSR1)
        info = sfd.read_event(timeout=5)
        assert info.signo == signal.SIGUSR1
        assert info.pid == os.getpid() and info.uid == os.getuid()
        assert "SIGUSR1" in repr(info)
        sfd.set_mask([signal.SIGUSR2])
        os.kill(os.getpid(), signal.SIGUSR2)
        assert sfd.read_event(timeout=5).signo == signal.SIGUSR2


def test_names_and_bad_signals():
    assert signal_name(15) == "SIGTERM" and parse_signal("TERM") == 15
    with pytest.raises(ValueError):
        parse_signal("SIGNOPE")
    with pytest.raises(ValueError):
        SignalFD([0])
    with pytest.raises(ValueError):
        SignalFD([100])


def test_a_selectors_server_with_signalfd_and_timerfd(blocked):
    # The loop a non-blocking server runs: ticks from a timer until a signal says stop.
    ticks, stopped = 0, None
    with SignalFD([signal.SIGUSR1], blocking=False) as sfd, TimerFD(blocking=False) as t, \
            EventFD(blocking=False) as kick, selectors.DefaultSelector() as sel:
        sel.register(sfd, selectors.EVENT_READ, "signal")
        sel.register(t, selectors.EVENT_READ, "tick")
        sel.register(kick, selectors.EVENT_READ, "kick")
        t.set(0.005, interval=0.005)
        while stopped is None:
            for key, _ in sel.select(timeout=5):
                if key.data == "tick":
                    ticks += t.read_event() or 0
                    if ticks >= 3:
                        kick.write(1)
                elif key.data == "kick":
                    kick.read_event()
                    os.kill(os.getpid(), signal.SIGUSR1)
                else:
                    stopped = sfd.read_event()
    assert ticks >= 3 and stopped.signo == signal.SIGUSR1


def test_the_asyncio_twin(blocked):
    async def main():
        with SignalFD_async([signal.SIGUSR2]) as sfd:
            asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), signal.SIGUSR2)
            info = await asyncio.wait_for(sfd.get(), 5)
            assert info.signo == signal.SIGUSR2

    asyncio.run(main())
