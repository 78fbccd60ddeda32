"""`python -m mainrun.parallel -j 2` in a tiny repo with a bare git origin and a DVC remote (tests/shared_repo.py):
killed and run again, its runs equal the train stage's own, bit for bit; then a teammate's fresh clone gets every
run through the DVC remote and its run-cache and trains nothing, and a damaged object on the remote is never taken
for a result; last, a run that fails fails the command. The tests run in order on one repo (the clones check what
the runner made, so no second repo trains the same runs: tests/test_sharing.py's, before, did)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from shared_repo import VARIANTS, ran, results, shared_repo
from stage_here import train_here
from tiny_repo import sh
from waiting import HANG_S  # waits are for events; this only turns a hang into a failure

pytestmark = pytest.mark.slow
CMD = [sys.executable, "-m", "mainrun.parallel", "-j", "2"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The folder of the repo `a`, its origin and its DVC remote."""
    tmp = tmp_path_factory.mktemp("parallel")
    shared_repo(tmp, edit=lambda params: params["train"].update(epochs=2))  # a run long enough to be killed in
    return tmp


def runner_env(tmp) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
            "MAINRUN_SLOT_DIR": str(tmp / "slots")}


def test_two_at_once_killed_and_run_again_equal_the_stages_own_runs(shared, monkeypatch):
    a, env = shared / "a", runner_env(shared)
    runner = subprocess.Popen(CMD, cwd=a, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    deadline = time.time() + HANG_S
    while not list((a / ".ckpt").glob("*/ckpt.pt")) and runner.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert runner.poll() is None, runner.communicate()[0]  # it was still running when its first checkpoint appeared
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C in the middle of the first runs
    out, _ = runner.communicate()  # the runner's exit: each run stops after its step in progress
    assert runner.returncode != 0 and "interrupted" in out, out
    done = subprocess.run(CMD, cwd=a, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from step" in "".join(p.read_text() for p in (a / ".dvc/tmp/mainrun-logs").glob("train*"))
    assert "the final dvc repro ran: new_runs, report" in done.stdout  # new_runs: its first run, nothing new
    # what dvc.lock records is what DVC computes here: every stage, its deps and outputs, up to date
    assert "Data and pipelines are up to date" in sh(a, "dvc", "repro")
    # each run equals the train stage's own (tests/stage_here.py) with the same threads per run as two at once on
    # this machine: on the CPU the thread count changes the last digits (it splits the reductions)
    monkeypatch.setenv("MAINRUN_RUNS_PER_DEVICE", "2")
    monkeypatch.setenv("MAINRUN_SLOT_DIR", str(shared / "here-slots"))
    train_here(a, VARIANTS, shared / "here")
    assert results(a) == results(shared / "here")


def test_a_fresh_clone_restores_every_run_from_the_remote(shared):
    """(was tests/test_sharing.py, on a repo of its own that trained the same two runs with plain dvc repro)"""
    a = shared / "a"
    sh(a, "git", "add", "-A")
    sh(a, "git", "commit", "-qm", "trained")
    sh(a, "dvc", "push", "--run-cache")
    sh(a, "git", "push", "-q", "origin", "HEAD:main")
    tracked = set(sh(a, "git", "ls-files").split())
    assert not {"metrics/eval/baseline.json", "reports/summary.json", "models/baseline/model.safetensors"} & tracked

    sh(shared, "git", "clone", "-q", "-b", "main", str(shared / "origin.git"), "b")
    b = shared / "b"
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
    damaged = shared / "dvc-remote" / model.relative_to(a / ".dvc" / "cache")
    damaged.chmod(0o644)
    damaged.write_bytes(model.read_bytes()[:100])
    sh(shared, "git", "clone", "-q", "-b", "main", str(shared / "origin.git"), "c")
    c = shared / "c"
    out = sh(c, "dvc", "repro", "--pull")
    assert "train@r1_adamw" in ran(out) and "train@baseline" not in ran(out), out
    assert results(c) == results(a)  # the right weights, never the 100-byte ones

    # the benchmark that reads finished runs, on these
    bench = subprocess.run([sys.executable, ROOT / "benchmarks" / "where_time_goes.py", a], capture_output=True,
                           text=True)
    assert bench.returncode == 0 and "all runs" in bench.stdout, bench.stderr
    assert {line.split()[0] for line in bench.stdout.splitlines()[1:3]} == {"baseline", "r1_adamw"}


def test_a_run_that_fails_fails_the_command_and_leaves_the_others_cached(shared):
    a = shared / "a"
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["variants"]["r1_adamw"]["lr"] = 1.0e30  # diverges at once
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = subprocess.run(CMD, cwd=a, env=runner_env(shared), capture_output=True, text=True)
    assert failed.returncode != 0 and "1 run(s) failed: train@r1_adamw" in failed.stderr
    assert "diverged" in failed.stderr
    assert "up to date" in sh(a, "dvc", "status", "train@baseline")
