"""Reproduce the pipeline with N runs at once, on DVC's own per-stage locking (dvc repro has no --jobs, dvc#755).

    python -m mainrun.parallel -j N [-S key=value ...]

1. `dvc repro configure`: download, the tokenizers and the run configs, one after the other;
2. every train stage that `dvc status` says is stale, with its evaluate stage, N at a time, each as
   `dvc repro -s`; each run takes a device slot (mainrun/slots.py): N spread over the visible GPUs, or the CPU's
   cores split N ways;
3. a plain `dvc repro`: the report, and anything still stale.
-S applies params overrides as `dvc exp run -S` does (DVC's own Hydra grammar). A failed run fails the command
with its stage named and its log kept; the others' results stay cached. Ctrl-C stops every run at a checkpoint.
"""
import argparse
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .slots import RUNS_PER_DEVICE

LOG_DIR = Path(".dvc/tmp/mainrun-logs")
_children: list[subprocess.Popen] = []
_stopping = threading.Event()


def dvc(*args, log=None) -> subprocess.CompletedProcess:
    cmd = ["dvc", "--wait-for-lock", *args]
    if log is None:
        return subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        _children.append(p)
        return subprocess.CompletedProcess(cmd, p.wait())


def stale_runs() -> list[tuple[str, str]]:
    """(train stage, evaluate stage) pairs with either one stale, in dvc.yaml's order."""
    names = dvc("stage", "list", "--name-only").stdout.split()
    status = dvc("status", "--json")
    stale = set(re.findall(r'"([^"]+)":', status.stdout)) if status.returncode == 0 else set(names)
    runs = []
    for name in names:
        kind, _, run = name.partition("@")
        if kind.startswith("train") and run:
            evaluate = f"{kind.replace('train', 'evaluate', 1)}@{run}"
            if name in stale or evaluate in stale:
                runs.append((name, evaluate if evaluate in names else None))
    return runs


def run_one(pair) -> tuple[str, int, float, Path]:
    train, evaluate = pair
    if _stopping.is_set():
        return train, 130, 0.0, LOG_DIR
    log, t0 = LOG_DIR / f"{train.replace('@', '-')}.log", time.time()
    log.unlink(missing_ok=True)
    rc = dvc("repro", "-s", train, log=log).returncode
    if rc == 0 and evaluate:
        rc = dvc("repro", "-s", evaluate, log=log).returncode
    print(f"  {'done' if rc == 0 else 'FAILED'}: {train} ({time.time() - t0:.0f} s)", flush=True)
    return train, rc, time.time() - t0, log


def devices() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def apply_overrides(overrides: list[str]) -> None:
    from dvc.utils.hydra import apply_overrides as apply  # what `dvc exp run -S` uses
    apply("params.yaml", overrides)


def stop_children(*_):
    _stopping.set()
    for p in _children:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)  # the train stage checkpoints on SIGINT
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (all of them share the visible devices)")
    ap.add_argument("-S", "--set-param", action="append", default=[], help="a params override, as in dvc exp run")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        sys.exit("error: -j must be at least 1")
    if args.set_param:
        apply_overrides(args.set_param)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    t0 = time.time()
    print("1/3 upstream stages: dvc repro configure", flush=True)
    (LOG_DIR / "upstream.log").unlink(missing_ok=True)
    first = dvc("repro", "configure", log=LOG_DIR / "upstream.log")
    if first.returncode:
        print((LOG_DIR / "upstream.log").read_text()[-3000:], file=sys.stderr)
        sys.exit("error: the upstream stages failed (log above)")
    runs = stale_runs()
    os.environ[RUNS_PER_DEVICE] = str(math.ceil(args.jobs / devices()))
    print(f"2/3 {len(runs)} runs to train and evaluate, {args.jobs} at a time", flush=True)
    pool = ThreadPoolExecutor(args.jobs)
    try:
        results = list(pool.map(run_one, runs))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    failed = [(name, log) for name, rc, _, log in results if rc]
    for name, log in failed:
        print(f"--- {name} (log: {log}) ---\n{log.read_text()[-2000:]}", file=sys.stderr)
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {', '.join(n for n, _ in failed)}; their logs are above, "
                 "the other runs are cached; fix and run this command again")
    print("3/3 dvc repro (the report, and anything still stale)", flush=True)
    (LOG_DIR / "final.log").unlink(missing_ok=True)
    last = dvc("repro", log=LOG_DIR / "final.log")
    ran = re.findall(r"Running stage '([^']+)'", (LOG_DIR / "final.log").read_text())
    if last.returncode:
        sys.exit(f"error: the final dvc repro failed; see {LOG_DIR / 'final.log'}")
    print(f"finished in {time.time() - t0:.0f} s; the final dvc repro ran: {', '.join(ran) or 'nothing'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for p in _children:
            p.wait()
        sys.exit("interrupted: each run saved a checkpoint; run the same command again to resume")
