"""The benchmark scripts' own arithmetic (their figures are measured, never asserted)."""
import json
import subprocess
import sys

from conftest import ROOT


def test_where_time_goes_splits_each_run_and_the_wall(tmp_path):
    def run(name, timing, train_s, eval_s, evaluate_s):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "run.json").write_text(json.dumps(
            {"timing": timing, "train_seconds": train_s, "eval_seconds": eval_s, "device": "cuda",
             "execution": {"slot": "cuda-0", "threads": 4}}))
        (tmp_path / "metrics" / "eval").mkdir(parents=True, exist_ok=True)
        (tmp_path / "metrics" / "eval" / f"{name}.json").write_text(json.dumps({"evaluate_seconds": evaluate_s}))
    run("a", {"startup": 3.0, "setup": 1.0, "first_step": 20.0, "save": 0.5, "loop": [14, 69]}, 50.0, 5.0, 2.0)
    run("b", {"startup": 3.0, "setup": 1.0, "first_step": None, "save": 0.5, "loop": [44, 55]}, 10.0, 1.0, 1.0)
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    spans = [("check", 0, 2), ("configure", 5, 6), ("train", 10, 70), ("train", 40, 90), ("report", 95, 98)]
    (tmp_path / ".dvc" / "tmp" / "mainrun-stage-times.jsonl").write_text("".join(
        json.dumps({"stage": s, "target": None, "start": a, "end": b, "pid": 1}) + "\n" for s, a, b in spans))
    out = subprocess.run([sys.executable, ROOT / "benchmarks" / "where_time_goes.py", tmp_path, "--wall", "100"],
                         capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:4]}
    assert rows["a"][:8] == ["3.00", "1.00", "20.00", "30.00", "5.00", "0.50", "2.00", "61.50"]
    assert rows["b"][:8] == ["3.00", "1.00", "-", "10.00", "1.00", "0.50", "1.00", "16.50"]
    assert rows["all"][1:9] == ["6.00", "2.00", "20.00", "40.00", "6.00", "1.00", "3.00", "78.00"]
    # train processes cover 10-90 (80 s, side by side counted once), the others 6 s, DVC the other 14 s of 100
    assert "DAG wall 100.0 s: train processes 80.0 s (80%, 2 processes), other stages 6.0 s (6%, 3), DVC's own " \
           "time 14.0 s (14%)" in out
    # b's loop lies inside a's: the wall had a run training during 55 s of its 100
    assert "training loops (steps and evaluations) ran during 55.0 s of the wall; outside them: 45% of the wall" in out


def test_where_time_goes_needs_a_finished_dag(tmp_path):
    p = subprocess.run([sys.executable, ROOT / "benchmarks" / "where_time_goes.py", tmp_path],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.strip() == f"error: no models/*/run.json under {tmp_path}: run the DAG first"


def test_where_time_goes_reads_todays_run_json(tmp_path):
    """run.json as the train stage writes it now (mainrun/runlog.py, mainrun/train.py): `execution` names the node,
    host and device, the execution settings, the device slot and its threads; `torch_threads` what torch used. A
    run under the runner took a slot (`cpu-1`); one under plain `dvc repro` none (`unslotted`)."""
    for name, slot, threads in (("a", "cpu-1", 1), ("b", "unslotted", 2)):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "run.json").write_text(json.dumps(
            {"timing": {"startup": 7.2, "setup": 5.4, "first_step": 0.8, "save": 0.02}, "train_seconds": 23.2,
             "eval_seconds": 3.7, "device": "cpu", "torch_threads": 3,
             "execution": {"node": None, "host": "vm", "device": "cpu", "checkpoint_every_s": 300.0, "log_every": 50,
                           "slot": slot, "threads": threads}}))
    p = subprocess.run([sys.executable, ROOT / "benchmarks" / "where_time_goes.py", tmp_path], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:3]}
    assert rows["a"].endswith("cpu (cpu-1, 1 threads)") and rows["b"].endswith("cpu (unslotted, 2 threads)"), rows


def test_throughput_runs_on_tiny_models():
    """A smoke test of the script (its figures are measured elsewhere): each model runs its steps and prints a line."""
    p = subprocess.run([sys.executable, ROOT / "benchmarks" / "throughput.py", "--tiny", "--steps", "1", "--device",
                        "cpu"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["baseline", "full_stack"], p.stdout
    assert all("tokens/s" in line and "on cpu" in line for line in lines), p.stdout
