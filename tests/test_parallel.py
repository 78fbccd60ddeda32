"""`python -m mainrun.parallel -j 2` against plain `dvc repro`, in two temporary copies of the repo (tiny profile)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tiny_repo import make_tiny_repo, sh
from waiting import HANG_S  # waits are for events; this only turns a hang into a failure

pytestmark = pytest.mark.slow
VARIANTS = {"baseline": {"vocab_size": 300, "block_size": 16}, "r1_adamw": {"optimizer": "adamw", "lr": 3.0e-3}}


def tiny_repo(path):
    def two_variants(params):
        params.update(vocab_sizes=[300], vocab_size=300)  # the one tokenizer the variants use
        params["train"]["epochs"] = 2
        params["variants"] = VARIANTS
        params["noise"]["variants"] = []
        params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}  # the alt tokenizers' switch, the scale study's
    return make_tiny_repo(path, two_variants)


def outputs(repo) -> dict:
    """What the runs computed: each train stage's recorded deps, the weights, and the metrics (timings left out)."""
    import hashlib
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    deps = {name: stage["deps"] for name, stage in lock.items() if name.startswith("train")}
    weights = {n: hashlib.sha256((repo / "models" / n / "model.safetensors").read_bytes()).hexdigest() for n in VARIANTS}
    metrics = {n: json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text()) for n in VARIANTS}
    for m in metrics.values():
        for volatile in ("train_seconds", "tokens_per_second", "evaluate_seconds"):
            m.pop(volatile)
    return {"deps": deps, "weights": weights, "metrics": metrics}


def test_two_at_once_equals_sequential_and_a_killed_run_resumes(tmp_path, monkeypatch):
    seq = tiny_repo(tmp_path / "seq")
    sh(seq, "dvc", "repro", "configure", "code")  # the shared upstream (data, tokenizer, configs), made once
    par = shutil.copytree(seq, tmp_path / "par", symlinks=True)
    # the sequential runs with the same threads per run as two-at-once on this machine: on the CPU the thread count
    # changes the last digits (it splits the reductions), so equal results need equal threads
    with monkeypatch.context() as m:
        m.setenv("MAINRUN_RUNS_PER_DEVICE", "2")
        m.setenv("MAINRUN_SLOT_DIR", str(tmp_path / "seq-slots"))
        sh(seq, "dvc", "repro", "train")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MAINRUN_SLOT_DIR": str(tmp_path / "slots")}
    cmd = [sys.executable, "-m", "mainrun.parallel", "-j", "2"]
    runner = subprocess.Popen(cmd, cwd=par, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    deadline = time.time() + HANG_S
    while not list((par / ".ckpt").glob("*/ckpt.pt")) and runner.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert runner.poll() is None, runner.communicate()[0]  # it was still running when its first checkpoint appeared
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C in the middle of the first runs
    out, _ = runner.communicate()  # the runner's exit: each run stops after its step in progress
    assert runner.returncode != 0 and "interrupted" in out, out
    done = subprocess.run(cmd, cwd=par, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from step" in "".join(p.read_text() for p in (par / ".dvc/tmp/mainrun-logs").glob("train*"))
    assert "the final dvc repro ran: new_runs, report" in done.stdout  # new_runs: its first run, nothing new
    assert outputs(par) == outputs(seq)
    assert "Data and pipelines are up to date" in sh(par, "dvc", "repro")

    # a run that fails fails the command, named, and leaves the others cached
    params = yaml.safe_load((par / "params.yaml").read_text())
    params["variants"]["r1_adamw"]["lr"] = 1.0e30  # diverges at once
    (par / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = subprocess.run(cmd, cwd=par, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "1 run(s) failed: train@r1_adamw" in failed.stderr
    assert "diverged" in failed.stderr
    assert "up to date" in sh(par, "dvc", "status", "train@baseline")
