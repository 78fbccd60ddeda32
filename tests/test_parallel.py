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

from test_pipeline import TINY, sh
from conftest import ROOT

pytestmark = pytest.mark.slow
VARIANTS = {"baseline": {"vocab_size": 300, "block_size": 16}, "r1_adamw": {"optimizer": "adamw", "lr": 3.0e-3},
            "adamw_rmsnorm": {"norm": "rmsnorm"}}


def tiny_repo(path):
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (path / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, path / f)
    params = yaml.safe_load((path / "params.yaml").read_text())
    for key, value in TINY.items():
        section, _, leaf = key.rpartition(".")
        (params[section] if section else params)[leaf] = value
    params["train"]["epochs"] = 2
    params["variants"] = VARIANTS
    params["noise"]["variants"] = ["r1_adamw"]
    params["studies"] = {"failed_attempts": False}  # the alt tokenizers' switch
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(path, "git", "init", "-q")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "tiny")
    return path


def outputs(repo) -> dict:
    """What the runs produced: each train and evaluate stage's recorded outputs, and the metrics."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    outs = {name: [(o["path"], o["md5"]) for o in stage.get("outs", [])] for name, stage in lock.items()
            if name.startswith(("train", "evaluate"))}
    metrics = {n: json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text()) for n in VARIANTS}
    for m in metrics.values():
        for volatile in ("train_seconds", "tokens_per_second"):
            m.pop(volatile)
    return {"outs": outs, "metrics": metrics}


def test_two_at_once_equals_sequential_and_a_killed_run_resumes(tmp_path):
    seq, par = tiny_repo(tmp_path / "seq"), tiny_repo(tmp_path / "par")
    sh(seq, "dvc", "repro")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MAINRUN_SLOT_DIR": str(tmp_path / "slots")}
    cmd = [sys.executable, "-m", "mainrun.parallel", "-j", "2"]
    runner = subprocess.Popen(cmd, cwd=par, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    deadline = time.time() + 120
    while not list((par / ".ckpt").glob("*/ckpt.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C in the middle of the first runs
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode != 0 and "interrupted" in out, out
    done = subprocess.run(cmd, cwd=par, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from step" in "".join(p.read_text() for p in (par / ".dvc/tmp/mainrun-logs").glob("train*"))
    assert "the final dvc repro ran: report" in done.stdout
    assert outputs(par) == outputs(seq)
    assert "Data and pipelines are up to date" in sh(par, "dvc", "repro")


def test_a_failed_run_fails_the_command_and_keeps_the_others(tmp_path):
    repo = tiny_repo(tmp_path / "r")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["variants"]["adamw_rmsnorm"]["lr"] = 1.0e38  # diverges at once
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MAINRUN_SLOT_DIR": str(tmp_path / "slots")}
    p = subprocess.run([sys.executable, "-m", "mainrun.parallel", "-j", "2"], cwd=repo, env=env, capture_output=True,
                       text=True)
    assert p.returncode != 0 and "1 run(s) failed: train@adamw_rmsnorm" in p.stderr
    assert "diverged" in p.stderr
    status = sh(repo, "dvc", "status", "train@baseline", "train@r1_adamw")
    assert "up to date" in status
