import os

import pytest

from butter.aio import AIOContext, aio_fsync, aio_read, aio_readv, aio_write, aio_writev


def test_reads_and_writes_complete_with_their_data(tmp_path):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        with AIOContext() as ctx:
            assert ctx.submit([aio_write(fd, b"hello world", 0, data="w")]) == 1
            done = ctx.read_event(timeout=5)
            assert (done.data, done.result, done.ok) == ("w", 11, True)
            a, b = bytearray(5), bytearray(6)
            buf = bytearray(11)
            n = ctx.submit([aio_readv(fd, [a, b], 0, data=1), aio_read(fd, buf, 0, data=2),
                            aio_fsync(fd, data=3)])
            assert n == 3
            got = []
            while len(got) < 3:
                got.extend(ctx.read_events(timeout=5))
            assert sorted(c.data for c in got) == [1, 2, 3]
            assert (bytes(a), bytes(b), bytes(buf)) == (b"hello", b" world", b"hello world")
            assert ctx.in_flight == 0
            ctx.submit([aio_writev(fd, [b"HE", memoryview(b"LLO")], 0)])
            assert ctx.read_event(timeout=5).result == 5
        assert os.pread(fd, 11, 0) == b"HELLO world"
    finally:
        os.close(fd)


def test_errors_come_as_completions_or_exceptions(tmp_path):
    with AIOContext(blocking=False) as ctx:
        assert ctx.read_event() is None
        r, w = os.pipe()
        try:
            # A read-only buffer cannot be read into.
            with pytest.raises(BufferError):
                aio_read(r, b"immutable", 0)
            with pytest.raises(ValueError):
                aio_read(r, bytearray(1), -1)
            with pytest.raises(OSError) as err:
                ctx.submit([aio_read(-1, bytearray(1), 0)])
            assert err.value.errno == 9 and err.value.call == "io_submit"
        finally:
            os.close(r)
            os.close(w)
        # A write to a read-only fd is refused at submission: nothing queued, nothing held.
        fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            with pytest.raises(OSError) as err:
                ctx.submit([aio_write(fd, b"x", 0, data="bad")])
            assert err.value.errno == 9 and ctx.in_flight == 0
        finally:
            os.close(fd)
