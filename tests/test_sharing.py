"""A teammate's clone gets every run through the DVC remote and its run-cache, and trains nothing."""
import json

import pytest

from shared_repo import ran, results, shared_repo
from tiny_repo import sh

pytestmark = pytest.mark.slow


def test_fresh_clone_restores_every_run_from_the_remote(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    a = shared_repo(tmp_path)
    assert {"train@baseline", "evaluate@baseline", "report"} <= ran(sh(a, "dvc", "repro"))
    sh(a, "git", "add", "-A")
    sh(a, "git", "commit", "-qm", "trained")
    sh(a, "dvc", "push", "--run-cache")
    sh(a, "git", "push", "-q", "origin", "HEAD:main")
    tracked = set(sh(a, "git", "ls-files").split())
    assert not {"metrics/eval/baseline.json", "reports/summary.json", "models/baseline/model.safetensors"} & tracked

    sh(tmp_path, "git", "clone", "-q", "-b", "main", str(tmp_path / "origin.git"), "b")
    b = tmp_path / "b"
    assert not (b / "reports" / "summary.json").exists()  # not in git: it comes through the remote
    out = sh(b, "dvc", "repro", "--pull")
    assert not ran(out), out  # every stage restored from the remote, none ran
    assert (b / "reports" / "summary.json").read_text() == (a / "reports" / "summary.json").read_text()
    assert results(b) == results(a)
    shown = json.loads(sh(b, "dvc", "metrics", "show", "--json"))
    [files] = [rev["data"] for rev in shown.values()]  # the one metrics file, restored from the remote
    assert "baseline" in files["reports/summary.json"]["data"]["val_bpb"]
    assert "Data and pipelines are up to date" in sh(b, "dvc", "status")
    assert "val_loss" in sh(b, "dvc", "exp", "show", "--json")
