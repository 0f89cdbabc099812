import os
import threading

import pytest

from butter.splice import (SPLICE_F_MOVE, SPLICE_F_NONBLOCK, pipe_size, set_pipe_size, splice,
                           tee, vmsplice)


def test_splice_moves_a_file_through_a_pipe_at_offsets(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"0123456789")
    r, w = os.pipe()
    try:
        with open(src, "rb") as f:
            assert splice(f.fileno(), w, 4, off_in=3) == 4
            assert f.tell() == 0  # an offset given: the file position stays
        with open(tmp_path / "dst", "wb") as out:
            assert splice(r, out.fileno(), 4, off_out=2, flags=SPLICE_F_MOVE) == 4
        assert (tmp_path / "dst").read_bytes() == b"\0\x003456"
    finally:
        os.close(r)
        os.close(w)


def test_tee_copies_without_consuming_and_vmsplice_takes_buffers():
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        # vmsplice maps the pages: they must stay alive and unchanged until read.
        parts = [b"hello ", bytearray(b"world"), memoryview(b"!")]
        assert vmsplice(w1, parts) == 12
        assert tee(r1, w2, 100) == 12
        assert os.read(r1, 100) == b"hello world!"
        assert os.read(r2, 100) == b"hello world!"
        with pytest.raises(BlockingIOError):
            tee(r1, w2, 100, SPLICE_F_NONBLOCK)  # r1 is empty now
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)


def test_errors_name_the_call():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as err:
        splice(r, w, 10)
    assert err.value.errno == 9 and err.value.call == "splice"
    with pytest.raises(OSError) as err:
        tee(r, w, 10)
    assert err.value.call == "tee"
    with pytest.raises(TypeError):
        vmsplice(w, ["text"])
    with pytest.raises(TypeError):
        splice("0", 1, 10)
    with pytest.raises(TypeError):
        splice(0, 1, -1)


def test_pipe_size():
    r, w = os.pipe()
    try:
        assert pipe_size(r) == 65536
        assert set_pipe_size(w, 1 << 20) == 1 << 20
        assert pipe_size(r) == 1 << 20
    finally:
        os.close(r)
        os.close(w)


def test_one_gib_through_splice_and_tee():
    # /dev/zero -> pipe A -(tee)-> pipe B; A and B spliced to /dev/null: 1 GiB each way.
    total = 1 << 30
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    zero = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
    drained = [0]

    def drain_b():
        while drained[0] < total:
            n = splice(b_r, null, 1 << 20)
            if n == 0:
                break
            drained[0] += n

    t = threading.Thread(target=drain_b)
    t.start()
    try:
        moved = 0
        while moved < total:
            filled = splice(zero, a_w, min(1 << 16, total - moved))
            left = filled
            while left:
                n = tee(a_r, b_w, left)  # the first n bytes of A, into B
                done = 0
                while done < n:  # and those n consumed from A
                    done += splice(a_r, null, n - done)
                left -= n
            moved += filled
        os.close(b_w)
        b_w = -1
        t.join(60)
        assert moved == total and drained[0] == total
    finally:
        for fd in (a_r, a_w, b_r, b_w, zero, null):
            if fd >= 0:
                os.close(fd)
