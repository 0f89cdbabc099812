import os
import subprocess
import sys

import pytest

from butter import system


def test_getpid_and_getppid_are_the_kernels():
    assert system.getpid() == os.getpid()
    assert system.getppid() == os.getppid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, f"{system.getpid()} {system.getppid()}".encode())
        os._exit(0)
    os.close(w)
    got = os.read(r, 100).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    assert got == [str(pid), str(os.getpid())]


def test_gethostname_is_unames():
    assert system.gethostname() == os.uname().nodename


def run_unshared(code, *flags):
    if os.geteuid() != 0:
        pytest.skip("needs root (the nobody test covers user namespaces)")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(system.__file__)))
    return subprocess.run(["unshare", *flags, sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=60)


HOSTNAME = """
from butter import system
system.sethostname("sandboxed")
system.setdomainname("example")
print(system.gethostname(), system.getdomainname())
try:
    system.sethostname("x" * 100)
except OSError as e:
    print(type(e).__name__, e.call)
"""


def test_sethostname_in_a_uts_namespace():
    r = run_unshared(HOSTNAME, "--uts")
    assert r.stdout.split("\n")[:2] == ["sandboxed example", "OSError sethostname"], r.stderr


MOUNTS = """
import os
from butter import system
system.mount("none", "/", flags=system.MS_REC | system.MS_PRIVATE)
os.makedirs("/tmp/butter-py-root", exist_ok=True)
system.mount("tmpfs", "/tmp/butter-py-root", "tmpfs", system.MS_NOSUID, "size=1m")
os.mkdir("/tmp/butter-py-root/old")
open("/tmp/butter-py-root/marker", "w").close()
os.chdir("/tmp/butter-py-root")
system.pivot_root(".", "old")
os.chdir("/")
print(sorted(os.listdir("/")))
system.umount("/old", system.MNT_DETACH)
print(os.listdir("/old"))
try:
    system.umount("/nowhere")
except FileNotFoundError as e:
    print(e.call, e.filename)
"""


def test_mount_pivot_root_and_umount_in_a_mount_namespace():
    r = run_unshared(MOUNTS, "--mount")
    assert r.stdout.split("\n")[:3] == ["['marker', 'old']", "[]", "umount2 /nowhere"], r.stderr


def test_as_nobody_in_a_user_namespace(as_nobody):
    r = as_nobody(HOSTNAME, "--uts")
    assert r.stdout.split("\n")[:2] == ["sandboxed example", "OSError sethostname"], r.stderr
    # Without the namespace's root, the host's name stays out of reach.
    r = as_nobody("from butter import system\ntry:\n    system.sethostname('x')\n"
                  "except PermissionError as e:\n    print('refused', e.call)")
    assert r.stdout.strip() == "refused sethostname", r.stderr
