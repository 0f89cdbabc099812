"""seccomp(2) filters through libseccomp: rules by system call name, with conditions on the
arguments, and user notification (a supervisor answers the held calls).

    from butter.seccomp import SeccompFilter
    f = SeccompFilter("allow")
    f.add_rule("errno:EPERM", "mkdir")
    f.add_rule("errno:EACCES", "socket", [(0, "==", 17)])   # AF_PACKET
    f.load()                     # this thread and its children from now on; no way back
"""

from ._butter import (  # noqa: F401
    SeccompAction, SeccompFilter, SeccompNotification, SeccompNotifyFd, resolve_syscall,
    syscall_name, seccomp_action_available,
)
