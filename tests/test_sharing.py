"""A teammate's clone gets every run through the DVC remote and its run-cache, and trains nothing; a damaged object
on the remote is never taken for a result."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from shared_repo import ran, results, shared_repo
from tiny_repo import sh

pytestmark = pytest.mark.slow


def test_fresh_clone_restores_every_run_from_the_remote(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    a = shared_repo(tmp_path)
    assert {"train@baseline", "report"} <= ran(sh(a, "dvc", "repro"))
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
    assert set(files["reports/headline.json"]["data"]["val_bpb"]) == {"baseline", "r1_adamw"}
    assert "Data and pipelines are up to date" in sh(b, "dvc", "status")
    assert "val_loss" in sh(b, "dvc", "exp", "show", "--json")

    # a truncated model object on the remote: the clone re-trains that run (the remote verifies downloads)
    model = next(f for f in (a / ".dvc" / "cache" / "files" / "md5").rglob("*")
                 if f.is_file() and f.read_bytes() == (a / "models" / "r1_adamw" / "model.safetensors").read_bytes())
    damaged = tmp_path / "dvc-remote" / model.relative_to(a / ".dvc" / "cache")
    damaged.chmod(0o644)
    damaged.write_bytes(model.read_bytes()[:100])
    sh(tmp_path, "git", "clone", "-q", "-b", "main", str(tmp_path / "origin.git"), "c")
    c = tmp_path / "c"
    out = sh(c, "dvc", "repro", "--pull")
    assert "train@r1_adamw" in ran(out) and "train@baseline" not in ran(out), out
    assert results(c) == results(a)  # the right weights, never the 100-byte ones

    # the benchmark that reads finished runs, on these
    bench = subprocess.run([sys.executable, ROOT / "benchmarks" / "where_time_goes.py", a], capture_output=True,
                           text=True)
    assert bench.returncode == 0 and "all runs" in bench.stdout, bench.stderr
    assert {line.split()[0] for line in bench.stdout.splitlines()[1:3]} == {"baseline", "r1_adamw"}
