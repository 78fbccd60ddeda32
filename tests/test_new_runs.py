"""The runs a switch adds in the running `dvc repro`: configure lists exactly those in new_runs.json, and the
new_runs stage trains them by a nested `dvc repro -s` (stood in for here: what it is asked, how it ends)."""
import json
import subprocess
import sys

import pytest

from mainrun import new_runs
from mainrun.config import Interrupted, MainrunError
from mainrun.configure import configure
from test_configure import fake_tokenized


def test_new_runs_json_lists_exactly_the_runs_a_switch_added(params, tmp_path):
    tok, cfg, run_list = fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml"

    def added() -> list[str]:
        return json.loads((cfg / "new_runs.json").read_text())["runs"]
    off = configure(params, tok, cfg, run_list, cuda=False)
    assert added() == off  # the first configure: every run is new to the list
    params["studies"]["scale"] = True
    on = configure(params, tok, cfg, run_list, cuda=False)
    assert added() == [n for n in on if n not in off] and added()  # the scale runs, in the list's order
    assert all(n.startswith(("small-", "large-")) for n in added())
    configure(params, tok, cfg, run_list, cuda=False)
    assert added() == []  # the same params again: nothing new
    params["studies"]["scale"] = False
    configure(params, tok, cfg, run_list, cuda=False)
    assert added() == []  # switched off: runs leave the list, none is added


class Nested:
    """The nested `dvc repro -s`: the command it was given, and how it ends (an exit code, or Ctrl-C first)."""
    started: list = []

    def __init__(self, cmd, rc=0, ctrl_c=False):
        self.started.append(cmd)
        self.returncode, self.ctrl_c, self.waits = rc, ctrl_c, 0

    def wait(self):
        self.waits += 1
        if self.ctrl_c and self.waits == 1:
            raise KeyboardInterrupt  # Ctrl-C reached this stage and the nested dvc at once
        return self.returncode


@pytest.fixture
def nested(tmp_path, monkeypatch):
    """A new_runs.json naming two runs; new_runs' nested dvc replaced by Nested(cmd, **how) for the test's `how`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new.json").write_text(json.dumps({"runs": ["small-a", "large-b"]}))
    how, procs = {}, []

    def popen(cmd):
        procs.append(Nested(cmd, **how))
        return procs[-1]
    Nested.started = []
    monkeypatch.setattr(subprocess, "Popen", popen)
    return how, procs


def test_the_new_runs_train_in_one_nested_dvc_repro_and_are_written_down(nested, tmp_path):
    assert new_runs.train_new_runs("new.json", "out.json") == ["small-a", "large-b"]
    assert Nested.started == [[sys.executable, "-m", "dvc", "repro", "-s", "train@small-a", "train@large-b"]]
    assert json.loads((tmp_path / "out.json").read_text()) == {"runs": ["small-a", "large-b"]}


def test_no_new_run_starts_nothing(nested, tmp_path):
    (tmp_path / "new.json").write_text(json.dumps({"runs": []}))
    assert new_runs.train_new_runs("new.json", "out.json") == []
    assert Nested.started == [] and json.loads((tmp_path / "out.json").read_text()) == {"runs": []}


def test_a_failed_new_run_fails_the_stage_and_writes_nothing(nested, tmp_path):
    nested[0]["rc"] = 1
    with pytest.raises(MainrunError, match="a new run failed .* the runs that finished are cached") as e:
        new_runs.train_new_runs("new.json", "out.json")
    assert not isinstance(e.value, Interrupted) and not (tmp_path / "out.json").exists()  # the stage runs again


@pytest.mark.parametrize("how", [{"ctrl_c": True, "rc": 130}, {"rc": 130}, {"rc": -2}])
def test_ctrl_c_waits_for_the_nested_run_then_stops_the_stage(nested, tmp_path, how):
    """Ctrl-C here (KeyboardInterrupt) or only in the nested dvc (its exit code): Interrupted, after the nested run
    has saved its checkpoint (it is waited for), and nothing written."""
    nested[0].update(how)
    with pytest.raises(Interrupted, match="run dvc repro again to resume"):
        new_runs.train_new_runs("new.json", "out.json")
    [proc] = nested[1]
    assert proc.waits == (2 if how.get("ctrl_c") else 1)
    assert not (tmp_path / "out.json").exists()
