import asyncio
import os
import selectors

import pytest

from butter.inotify import (IN_ALL_EVENTS, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_IGNORED,
                            IN_ISDIR, IN_MOVED_FROM, IN_MOVED_TO, Inotify, Inotify_async)


def test_events_carry_the_watch_path_the_name_and_named_flags(tmp_path):
    with Inotify() as ino:
        wd = ino.watch(str(tmp_path), IN_CREATE | IN_DELETE | IN_CLOSE_WRITE)
        assert ino.path_of(wd) == str(tmp_path)
        (tmp_path / "a").write_text("x")
        os.mkdir(tmp_path / "d")
        os.unlink(tmp_path / "a")
        got = []
        while len(got) < 4:
            got.extend(ino.read_events(timeout=5))
        assert [(e.wd, e.name) for e in got] == [(wd, "a"), (wd, "a"), (wd, "d"), (wd, "a")]
        assert [e.mask & (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE) for e in got] == [
            IN_CREATE, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE]
        assert got[2].is_dir and got[2].mask & IN_ISDIR and "IsDir" in got[2].flags
        assert got[0].path == str(tmp_path / "a") and got[0].watch_path == str(tmp_path)
        assert "Create" in repr(got[0])


def test_a_rename_pairs_by_cookie_and_names_the_old_path(tmp_path):
    (tmp_path / "old").write_text("")
    with Inotify() as ino:
        ino.watch(str(tmp_path), IN_MOVED_FROM | IN_MOVED_TO)
        os.rename(tmp_path / "old", tmp_path / "new")
        a = ino.read_event(timeout=5)
        b = ino.read_event(timeout=5)
        assert a.mask & IN_MOVED_FROM and b.mask & IN_MOVED_TO
        assert a.cookie == b.cookie != 0
        assert b.moved_from == str(tmp_path / "old") and b.name == "new"


def test_read_event_returns_one_and_keeps_the_rest(tmp_path):
    with Inotify() as ino:
        ino.watch(str(tmp_path), IN_CREATE)
        for n in range(3):
            (tmp_path / str(n)).write_text("")
        first = ino.read_event(timeout=5)
        rest = ino.read_events()
        assert [first.name] + [e.name for e in rest] == ["0", "1", "2"]


def test_ignore_queues_in_ignored_and_forgets_the_watch(tmp_path):
    with Inotify() as ino:
        wd = ino.watch(str(tmp_path))
        ino.ignore(wd)
        e = ino.read_event(timeout=5)
        assert e.wd == wd and e.mask & IN_IGNORED and e.is_ignored
        assert ino.watch_count == 0
        with pytest.raises(OSError) as err:
            ino.ignore(wd)
        assert err.value.call == "inotify_rm_watch"


def test_non_blocking_and_timeouts_return_none_or_nothing(tmp_path):
    with Inotify(blocking=False) as ino:
        ino.watch(str(tmp_path))
        assert ino.read_event() is None and ino.read_events() == []
    with Inotify() as ino:
        ino.watch(str(tmp_path))
        assert ino.read_event(timeout=0.05) is None
        assert ino.read_events(timeout=0.05) == []


def test_errors_are_oserrors_with_errno_filename_and_call(tmp_path):
    with Inotify() as ino:
        with pytest.raises(FileNotFoundError) as err:
            ino.watch(str(tmp_path / "missing"))
        assert err.value.errno == 2
        assert err.value.filename == str(tmp_path / "missing")
        assert err.value.call == "inotify_add_watch"
        assert "inotify_add_watch" in str(err.value)
        with pytest.raises(TypeError):
            ino.watch(42)
        with pytest.raises(TypeError):
            ino.watch(str(tmp_path), -1)
    with pytest.raises(ValueError):
        ino.read_event()
    with pytest.raises(ValueError):
        ino.fileno()
    ino.close()  # again: nothing
    assert ino.closed


def test_selectors_see_it_readable(tmp_path):
    with Inotify() as ino, selectors.DefaultSelector() as sel:
        ino.watch(str(tmp_path), IN_CREATE)
        sel.register(ino, selectors.EVENT_READ)
        assert sel.select(timeout=0) == []
        (tmp_path / "x").write_text("")
        ready = sel.select(timeout=5)
        assert len(ready) == 1 and ready[0][0].fileobj is ino
        assert ino.read_event().name == "x"


def test_the_asyncio_twin_is_a_read_only_queue(tmp_path):
    async def main():
        ino = Inotify_async()
        ino.watch(str(tmp_path), IN_CREATE)
        assert ino.empty() and ino.qsize() == 0
        with pytest.raises(asyncio.QueueEmpty):
            ino.get_nowait()
        waiters = [asyncio.ensure_future(ino.get()) for _ in range(2)]
        await asyncio.sleep(0.01)
        (tmp_path / "one").write_text("")
        (tmp_path / "two").write_text("")
        got = await asyncio.wait_for(asyncio.gather(*waiters), 5)
        assert sorted(e.name for e in got) == ["one", "two"]
        (tmp_path / "three").write_text("")
        assert ino.qsize() == 1 and ino.get_nowait().name == "three"
        assert not hasattr(ino, "put") and not hasattr(ino, "put_nowait")
        ino.close()
        with pytest.raises(ValueError):
            await ino.get()

    asyncio.run(main())


def test_a_watcher_in_the_style_of_the_seed(tmp_path):
    # The seed's README: an asyncio loop printing what happens in a directory.
    seen = []

    async def watcher(ino):
        while ("Delete", "f") not in seen:
            event = await ino.get()
            seen.append((event.flags[0], event.name))

    async def main():
        with Inotify_async() as ino:
            ino.watch(str(tmp_path), IN_ALL_EVENTS & ~0x20 & ~0x01 & ~0x10)  # no open/access/close-nowrite
            task = asyncio.ensure_future(watcher(ino))
            await asyncio.sleep(0.01)
            (tmp_path / "f").write_text("data")
            os.unlink(tmp_path / "f")
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert seen[0] == ("Create", "f") and ("Delete", "f") in seen
