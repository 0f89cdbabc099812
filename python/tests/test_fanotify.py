import asyncio
import os

import pytest

from butter.fanotify import (FAN_CLOSE_WRITE, FAN_CREATE, FAN_EVENT_ON_CHILD, FAN_OPEN_PERM,
                             FAN_CLASS_CONTENT, FAN_REPORT_DFID_NAME, Fanotify, Fanotify_async)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="fanotify with fds needs root")


def test_a_write_is_reported_with_an_open_fd(tmp_path):
    with Fanotify() as fan:
        fan.mark(str(tmp_path), FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD)
        (tmp_path / "f").write_text("hello")
        event = fan.read_event(timeout=5)
        assert event.mask & FAN_CLOSE_WRITE and "CloseWrite" in event.flags
        assert event.pid == os.getpid()
        assert event.path == str(tmp_path / "f")
        assert os.pread(event.fd, 5, 0) == b"hello"
        event.close()
        assert event.fd == -1
        assert fan.read_event(timeout=0.05) is None


def test_names_with_fid_reporting(tmp_path):
    with Fanotify(FAN_REPORT_DFID_NAME) as fan:
        fan.mark(str(tmp_path), FAN_CREATE)
        (tmp_path / "new").write_text("")
        event = fan.read_event(timeout=5)
        assert event.name == "new" and event.fd == -1 and event.handles


def test_a_permission_event_is_answered(tmp_path):
    import threading
    (tmp_path / "secret").write_text("x")
    with Fanotify(FAN_CLASS_CONTENT) as fan:
        fan.mark(str(tmp_path / "secret"), FAN_OPEN_PERM)
        result = []

        def opener():
            try:
                open(tmp_path / "secret").close()
                result.append("opened")
            except PermissionError:
                result.append("refused")

        t = threading.Thread(target=opener)
        t.start()
        event = fan.read_event(timeout=5)
        assert event.is_permission
        fan.respond(event, allow=False)
        t.join(5)
        assert result == ["refused"]


def test_bad_marks():
    with Fanotify() as fan:
        with pytest.raises(FileNotFoundError) as err:
            fan.mark("/nonexistent/x", FAN_CLOSE_WRITE)
        assert err.value.call.startswith("fanotify_mark")
        with pytest.raises(ValueError):
            fan.mark("/tmp", FAN_CLOSE_WRITE, type="tree")


def test_the_asyncio_twin(tmp_path):
    async def main():
        with Fanotify_async() as fan:
            fan.mark(str(tmp_path), FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD)
            asyncio.get_running_loop().call_later(0.01, (tmp_path / "a").write_text, "")
            event = await asyncio.wait_for(fan.get(), 5)
            assert event.path == str(tmp_path / "a")

    asyncio.run(main())
