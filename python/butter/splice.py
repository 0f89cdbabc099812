"""splice(2), tee(2) and vmsplice(2): move bytes through pipes without copying them to
Python. Every call returns the number of bytes moved; errors are OSError.

vmsplice maps the buffers' pages into the pipe (as vmsplice(2) does without SPLICE_F_GIFT):
keep them alive and unchanged until the reader has read them."""

from ._butter import (  # noqa: F401
    splice, tee, vmsplice, pipe_size, set_pipe_size,
    SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT,
)
