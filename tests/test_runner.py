"""The local runner's faults (issue 18, section 3), each on its own, without training anything."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from mainrun import parallel, slots

# a runner in miniature: the repo lock, the guard, and one run that takes 1 s to checkpoint on Ctrl-C
RUNNER = """
import sys, time
from mainrun import parallel
fd = parallel.claim_repo()
parallel.start_guard(fd)
run = parallel.spawn([sys.executable, "-c", "import signal, sys, time\\n"
                      "signal.signal(signal.SIGINT, lambda *a: (time.sleep(1), sys.exit(3)))\\n"
                      "print('run', flush=True)\\ntime.sleep(120)"])
print(run.pid, flush=True)
time.sleep(120)
"""


def start_runner(repo: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=repo, env=env, stdout=subprocess.PIPE, text=True)
    lines = [runner.stdout.readline().strip() for _ in range(2)]
    return runner, int(next(x for x in lines if x.isdigit()))


def gone(pid: int, within_s: float) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z":
            return True  # a zombie: it ended, its parent has not reaped it yet
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard uses Linux's parent-death signal")
def test_runs_end_with_a_killed_runner_and_a_new_runner_says_they_are_ending(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner, run = start_runner(tmp_path)
    with pytest.raises(parallel.Busy, match=rf"another mainrun.parallel \(pid {runner.pid}\) is already running"):
        parallel.claim_repo()
    runner.kill()  # SIGKILL: no handler runs in the runner
    runner.wait()
    with pytest.raises(parallel.Busy, match=r"still ending in this repo .* `kill -INT -- -\d+`"):
        parallel.claim_repo()  # the run is checkpointing (1 s) and still holds the repo's lock
    assert gone(run, within_s=20), "the run outlived its runner"
    deadline = time.time() + 10
    while time.time() < deadline:  # the guard leaves once its group is empty
        try:
            os.close(parallel.claim_repo())
            break
        except parallel.Busy:
            time.sleep(0.1)
    else:
        pytest.fail("the repo stayed locked after the runs ended")


def test_a_dvc_command_working_in_the_repo_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    lock = {"read": {}, "write": {str(tmp_path / "metrics/data.json"): {"pid": os.getpid(), "cmd": "dvc repro -s x"}}}
    (tmp_path / ".dvc/tmp/rwlock").write_text(json.dumps(lock))
    with pytest.raises(parallel.Busy, match=rf"pid {os.getpid()} \(dvc repro -s x\).*do not delete"):
        parallel.claim_repo()
    lock["write"] = {"x": {"pid": 2 ** 22 + 1, "cmd": "dvc repro"}}  # a dead pid: DVC clears it itself
    (tmp_path / ".dvc/tmp/rwlock").write_text(json.dumps(lock))
    os.close(parallel.claim_repo())


def test_a_run_waiting_for_a_slot_names_the_holder_on_the_terminal(tmp_path, monkeypatch, capsys):
    env = {**os.environ, slots.SLOT_DIR: str(tmp_path), slots.RUNS_PER_DEVICE: "1", "PYTHONPATH": str(ROOT)}
    claim = "from mainrun import slots; print(slots.claim('cpu', 1, poll_s=0.05).name, flush=True)"
    holder = subprocess.Popen([sys.executable, "-c", claim + "; import time; time.sleep(60)"], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "cpu-0"
        log = tmp_path / "run.log"
        with open(log, "w") as f:
            waiter = subprocess.Popen([sys.executable, "-c", claim], env=env, stdout=f, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while "busy" not in log.read_text() and time.time() < deadline:
                time.sleep(0.05)
            threading.Timer(1.5, holder.kill).start()  # the slot frees up while the runner watches
            assert parallel._watch(waiter, log, 0, "train@x") == 0
        shown = capsys.readouterr().out
        assert f"train@x: all 1 cpu slots are busy (cpu-0: pid {holder.pid} " in shown
        assert "waiting for one to free up" in shown
    finally:
        holder.kill()


def test_restored_runs_say_so_and_switched_off_runs_are_not_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(parallel, "LOG_DIR", tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/fail_unigram.json").write_text(json.dumps({"name": "fail_unigram", "enabled": False}))
    (tmp_path / "configs/r1_adamw-seed7.json").write_text(json.dumps({"name": "r1_adamw-seed7", "enabled": True}))
    said = {"train@a": "Running stage 'train@a':\n", "train@b": "Stage 'train@b' is cached - skipping run\n"}

    def fake_dvc(*args, log=None, name=None):
        with open(log, "a") as f:
            f.write(said.get(args[-1], ""))
        return subprocess.CompletedProcess(args, 0)
    monkeypatch.setattr(parallel, "dvc", fake_dvc)
    for pair in [("train@a", "evaluate@a"), ("train@b", "evaluate@b"), ("train@fail_unigram", None)]:
        parallel.run_one(pair)
    out = capsys.readouterr().out
    assert "done: train@a" in out and "restored: train@b" in out and "fail_unigram" not in out
    assert not parallel.enabled("train@fail_unigram") and parallel.enabled("train_seed@r1_adamw-7")


def test_params_edited_mid_run_reruns_the_stale_runs_n_at_a_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(parallel, "LOG_DIR", tmp_path / "logs")
    rounds = [[("train@a", "evaluate@a"), ("train@b", "evaluate@b")], [("train@b", "evaluate@b")], []]
    monkeypatch.setattr(parallel, "stale_runs", lambda: rounds.pop(0))
    monkeypatch.setattr(parallel, "upstream", lambda: None)
    monkeypatch.setattr(parallel, "devices", lambda: 1)
    monkeypatch.setenv(slots.RUNS_PER_DEVICE, "1")  # main() sets it: recorded here so it does not outlive this test, or
    # every later in-process train() on this worker claims a slot it never frees, until one waits forever
    ran = []
    monkeypatch.setattr(parallel, "run_one", lambda pair: ran.append(pair[0]) or (pair[0], 0, 0.0, tmp_path))

    def fake_dvc(*args, log=None, name=None):
        Path(log).write_text("")
        return subprocess.CompletedProcess(args, 0)
    monkeypatch.setattr(parallel, "dvc", fake_dvc)
    try:
        assert parallel.main(["-j", "2"]) == 0
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out = capsys.readouterr().out
    assert ran == ["train@a", "train@b", "train@b"] and "1 stale again, running them too" in out
    assert "the final dvc repro ran: nothing" in out
