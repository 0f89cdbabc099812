import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import butter


def pytest_report_header(config):
    return "butter package: " + os.path.dirname(butter.__file__)


@pytest.fixture
def as_nobody():
    """Runs Python code as nobody (uid 65534) in a user namespace of its own where it is root,
    with a copy of the package it can read (the build tree may lie in a mode-700 home)."""
    if os.geteuid() != 0:
        pytest.skip("only root can become nobody")
    if shutil.which("setpriv") is None or shutil.which("unshare") is None:
        pytest.skip("no setpriv/unshare (util-linux)")
    where = tempfile.mkdtemp(prefix="butter-py-", dir="/tmp")
    os.chmod(where, 0o755)
    shutil.copytree(os.path.dirname(butter.__file__), os.path.join(where, "butter"))

    def run(code, *unshare_flags):
        return subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "unshare", "--user", "--map-root-user", *unshare_flags,
             sys.executable, "-c", code],
            env={"PYTHONPATH": where, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd="/", capture_output=True, text=True, timeout=60)

    yield run
    shutil.rmtree(where)
