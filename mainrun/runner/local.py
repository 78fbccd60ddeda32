"""N runs at once on this machine: `python -m mainrun.parallel -j N [-S key=value ...]` (docs/parallel.md)."""
import math
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..slots import RUNS_PER_DEVICE
from . import repo
from .repo import LOG_DIR, UPSTREAM, dvc, enabled, inputs_seen, stale_runs, upstream

_stopping = threading.Event()


def run_one(train: str) -> tuple[str, int, float, Path]:
    if _stopping.is_set():
        return train, 130, 0.0, LOG_DIR
    log, t0 = LOG_DIR / f"{train.replace('@', '-')}.log", time.time()
    log.unlink(missing_ok=True)
    rc = dvc("repro", "-s", train, log=log).returncode
    if enabled(train):  # a switched-off study's runs only write their markers: not worth a line
        ran = f"Running stage '{train}'" in log.read_text()
        print(f"  {('done' if ran else 'restored') if rc == 0 else 'FAILED'}: {train} ({time.time() - t0:.0f} s)",
              flush=True)
    return train, rc, time.time() - t0, log


def devices() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def stop_children(*_):
    """Ctrl-C or SIGTERM: every run stops at a checkpoint (the train stage checkpoints on SIGINT; dvc waits)."""
    _stopping.set()
    repo.interrupt()
    raise KeyboardInterrupt


def main(jobs: int, overrides: list[str]) -> int:
    repo.hold_repo()
    if overrides:
        repo.apply_overrides(overrides)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    t0 = time.time()
    os.environ[RUNS_PER_DEVICE] = str(math.ceil(jobs / devices()))
    print(f"1/3 upstream stages: dvc repro {' '.join(UPSTREAM)}", flush=True)
    upstream()
    runs, rounds, seen = stale_runs(), 0, inputs_seen()
    while runs:
        real = sum(map(enabled, runs))
        off = f" (and {len(runs) - real} switched-off study runs' markers)" if real < len(runs) else ""
        print(f"2/3 {real} runs to train and evaluate, {jobs} at a time{off}", flush=True)
        pool = ThreadPoolExecutor(jobs)
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
        if inputs_seen() == seen:
            break
        upstream()
        runs, rounds, seen = stale_runs(), rounds + 1, inputs_seen()
        if runs and rounds < 3:
            print(f"params.yaml or the code changed during the runs: {len(runs)} stale again, running them too",
                  flush=True)
        elif runs:
            break  # still changing: the final dvc repro takes what is left
    print("3/3 dvc repro (the report, and anything still stale)", flush=True)
    ran = repo.final_repro()
    print(f"finished in {time.time() - t0:.0f} s; the final dvc repro ran: {', '.join(ran) or 'nothing'}")
    return 0
