"""Host name, mounts and process ids: gethostname, sethostname, mount, umount, pivot_root,
and getpid/getppid as raw system calls (no C library cache)."""

from ._butter import (  # noqa: F401
    gethostname, sethostname, getdomainname, setdomainname, getpid, getppid,
    mount, umount, pivot_root,
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE,
    MS_SLAVE, MS_SHARED, MS_MOVE, MS_NOATIME,
    MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW,
)
