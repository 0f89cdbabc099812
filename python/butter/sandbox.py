"""Run a command in a sandbox from a profile, as `butter run` does, and read how it ended.

    from butter.sandbox import Profile, run
    profile = Profile.load("ci")                 # or Profile.builtin(), Profile.parse(toml)
    profile.set("limits.memory", '"1G"')         # as --set, checked now
    outcome = run(profile, ["make", "test"], timeout=600)
    outcome.exit_status, outcome.kind            # 0, "exited"; outcome.report: the JSON report
    # kind: "exited", "signaled", "time_limit", "setup_failed" or "exec_failed" (the report's
    # reason words)

Profiles by name are found as the butter program finds them ($BUTTER_PROFILE_PATH, then the
installed profiles directory), so Profile.load("ci") needs an installed butter or that
variable. Profile errors are ValueError naming the file, line and column. The run blocks the
calling thread (other Python threads run meanwhile) and Python's signal handlers run once it has
ended: bound it with `timeout`, after which the command gets the profile's stop signal and,
after supervise.stop_timeout (10 s by default), SIGKILL.
"""

import json

from ._butter import Outcome, Profile, run_sandbox  # noqa: F401


def run(profile, command, *, binds=(), ro_binds=(), timeout=None, stdout=1, stderr=2,
        verbosity=1, on_event=None):
    """Runs `command` (a list: argv) in a sandbox of `profile` (a Profile or a name).

    binds and ro_binds: host paths, or (host, inside) pairs, as --bind and --ro-bind. stdout and
    stderr: file descriptors (or objects with fileno()). on_event: called with each event of the
    run as a JSON string (started, exec, denied, exit, ...).
    """
    if isinstance(profile, str):
        profile = Profile.load(profile)
    if isinstance(command, str):
        raise TypeError("command: a list of arguments, not a string")
    return run_sandbox(profile, list(command), list(binds), list(ro_binds), timeout,
                       _fd(stdout), _fd(stderr), verbosity, on_event)


def report(outcome):
    """The outcome's JSON report as a dict."""
    return json.loads(outcome.report)


def _fd(f):
    return f if isinstance(f, int) else f.fileno()
