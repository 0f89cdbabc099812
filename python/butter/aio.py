"""Linux AIO (io_submit(2)): reads and writes, scatter/gather, completion based.

    from butter.aio import AIOContext, aio_read, aio_writev
    with AIOContext() as ctx:
        buf = bytearray(4096)
        ctx.submit([aio_read(fd, buf, 0, data="first")])
        done = ctx.read_event()     # AIOCompletion: data, result (bytes or -errno), ok, errno

The buffers of a request stay referenced until its completion is read (or the context is
closed, which waits for what is in flight).
"""

from ._butter import (  # noqa: F401
    AIOContext, AIOCompletion, AIORequest, aio_read, aio_write, aio_readv, aio_writev, aio_fsync,
)
