import errno
import os
import socket

import pytest

from butter.seccomp import (SeccompAction, SeccompFilter, SeccompNotifyFd, resolve_syscall,
                            seccomp_action_available, syscall_name)


def in_child(body):
    """Runs body() in a forked child (a filter is for ever); its return value as exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(body())
        except BaseException:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_rule_makes_a_call_fail_with_its_errno(tmp_path):
    def body():
        f = SeccompFilter("allow")
        f.add_rule("errno:EPERM", "mkdir")
        f.add_rule("errno:EPERM", "mkdirat")
        f.add_rule(SeccompAction("errno:EACCES"), "socket", [(0, "==", socket.AF_PACKET)])
        f.load()
        try:
            os.mkdir(tmp_path / "d")
            return 1
        except PermissionError:
            pass
        socket.socket(socket.AF_UNIX).close()  # only AF_PACKET is refused
        try:
            socket.socket(socket.AF_PACKET)
            return 2
        except PermissionError as e:
            return 0 if e.errno == errno.EACCES else 3

    assert in_child(body) == 0
    assert not (tmp_path / "d").exists()


def test_kill_ends_the_process():
    def body():
        f = SeccompFilter("allow")
        f.add_rule("kill", "getppid")
        f.load()
        os.getppid()
        return 0

    assert in_child(body) == -31  # SIGSYS


def test_names_actions_and_bad_input():
    assert syscall_name(resolve_syscall("openat")) == "openat"
    assert str(SeccompAction("errno:EPERM")) == "errno:EPERM"
    assert seccomp_action_available("notify") is True
    with pytest.raises(ValueError):
        resolve_syscall("no_such_call")
    with pytest.raises(ValueError):
        SeccompAction("maybe")
    f = SeccompFilter("allow")
    with pytest.raises(ValueError):
        f.add_rule("errno:EPERM", "no_such_call")
    with pytest.raises(ValueError):
        f.add_rule("errno:EPERM", "socket", [(7, "==", 1)])
    with pytest.raises(ValueError):
        f.add_rule("errno:EPERM", "socket", [(0, "~", 1)])
    assert len(f.export_bpf()) % 8 == 0 and len(f.export_bpf()) > 0


def test_user_notification_answers_a_held_call():
    # The child loads a filter that holds uname(2) and sends the listener to the parent,
    # which answers with EHOSTDOWN.
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            parent.close()
            f = SeccompFilter("allow")
            f.add_rule("notify", "uname")
            listener = f.load_with_listener()
            socket.send_fds(child, [b"l"], [listener.fileno()])
            listener.close()
            try:
                os.uname()
                code = 1
            except OSError as e:
                code = 0 if e.errno == errno.EHOSTDOWN else 2
        finally:
            os._exit(code)
    child.close()
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    with SeccompNotifyFd(fds[0]) as listener:
        os.close(fds[0])
        held = listener.read_event(timeout=10)
        assert held.syscall_name == "uname" and held.pid == pid
        assert listener.id_valid(held.id)
        listener.respond_errno(held.id, errno.EHOSTDOWN)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        # No process left under the filter: nothing more will come.
        assert listener.read_event(timeout=1) is None
    parent.close()


def test_notify_rules_need_the_listener_and_end_with_it():
    def body():
        f = SeccompFilter("allow")
        f.add_rule("notify", "uname")
        try:
            f.load()  # nobody would answer: refused
            return 1
        except ValueError:
            pass
        listener = f.load_with_listener()
        listener.close()  # the only listener: held calls now fail
        try:
            os.uname()
            return 2
        except OSError as e:
            return 0 if e.errno == errno.ENOSYS else 3

    assert in_child(body) == 0
    with pytest.raises(ValueError):
        SeccompFilter("allow").load_with_listener()  # no notify rule
