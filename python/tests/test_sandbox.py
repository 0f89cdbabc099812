import json
import os

import pytest

from butter.sandbox import Profile, report, run


@pytest.fixture
def out(tmp_path):
    f = open(tmp_path / "out", "w+")
    yield f
    f.close()


def test_a_command_runs_isolated_and_reports(out):
    events = []
    outcome = run(Profile.builtin(), ["sh", "-c", "hostname; id -u; echo $$; exit 3"],
                  stdout=out, verbosity=0, on_event=events.append)
    assert outcome.kind == "exited" and outcome.code == 3 and outcome.exit_status == 3
    out.seek(0)
    lines = out.read().split()
    # Its own host name, and a fresh pid namespace (its init is 1, the shell 2).
    assert lines[0] != os.uname().nodename and int(lines[2]) <= 2
    r = report(outcome)
    assert r["status"] == 3 and r["exit_code"] == 3 and r["reason"] == "exited"
    assert any(json.loads(e)["event"] == "started" for e in events)


def test_time_limit_and_missing_command(out):
    outcome = run(Profile.builtin(), ["sleep", "10"], timeout=0.3, stdout=out, verbosity=0)
    assert outcome.kind == "time_limit" and outcome.exit_status == 124
    outcome = run(Profile.builtin(), ["no-such-command"], stdout=out, stderr=out, verbosity=0)
    assert outcome.exit_status == 127


def test_profiles_from_text_and_bad_ones():
    p = Profile.parse('extends = "default"\n[limits]\ntime = "5s"\n', "mine.toml")
    p.set("limits.memory", '"256M"')
    assert "256M" in p.to_toml() or "268435456" in p.to_toml()
    with pytest.raises(ValueError) as err:
        Profile.parse("[limits]\nbogus = 1\n", "bad.toml")
    assert "bad.toml:2:1" in str(err.value)
    with pytest.raises(ValueError):
        p.set("limits.nothing", "1")
    with pytest.raises(TypeError):
        run(p, "echo hi")
    with pytest.raises(ValueError):
        run(p, [])
