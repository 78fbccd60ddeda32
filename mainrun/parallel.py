"""Reproduce the pipeline with N runs at once, on DVC's own per-stage locking (dvc repro has no --jobs, dvc#755).

    python -m mainrun.parallel -j N [-S key=value ...]
    python -m mainrun.parallel --ray ADDRESS [-j N] [-S key=value ...]   (over a Ray cluster: mainrun/cluster.py)

1. `dvc repro configure`: download, the tokenizers and the run configs, one after the other;
2. every train stage that `dvc status` says is stale, with its evaluate stage, N at a time, each as
   `dvc repro -s`; each run takes a device slot (mainrun/slots.py): N spread over the visible GPUs, or the CPU's
   cores split N ways; if params.yaml or the code changed meanwhile, 1 and 2 again for what is stale now;
3. a plain `dvc repro`: the report, and anything still stale.
-S applies params overrides as `dvc exp run -S` does (DVC's own Hydra grammar). A failed run fails the command
with its stage named and its log kept; the others' results stay cached. Ctrl-C stops every run at a checkpoint.
The runs end with the runner, however it ends: a guard process leads their process group and stops them when the
runner dies (Linux; a parent-death signal). One runner per repo: a second one, or one started while an earlier
runner's runs are still ending, says so and stops.
"""
import argparse
import atexit
import contextlib
import fcntl
import json
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
RUNNER_LOCK = Path(".dvc/tmp/mainrun-runner.lock")  # held by the runner, its guard and its runs
_children: list[subprocess.Popen] = []
_stopping = threading.Event()
_group = {"pgid": None, "fds": ()}  # the runs' process group (the guard's) and the fds they inherit


class Busy(Exception):
    """Something else is working in this repo; the message says what and how to stop it."""


def dvc(*args, log=None, name=None) -> subprocess.CompletedProcess:
    cmd = ["dvc", "--wait-for-lock", *args]
    if log is None:
        return subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        start = f.tell()
        p = spawn(cmd, stdout=f, stderr=subprocess.STDOUT)
        _children.append(p)
        return subprocess.CompletedProcess(cmd, _watch(p, log, start, name or args[-1]))


def spawn(cmd, **kw) -> subprocess.Popen:
    """A child in the guard's process group (Ctrl-C and the guard reach it), holding the runner lock."""
    if _group["pgid"] is None:
        return subprocess.Popen(cmd, start_new_session=True, **kw)
    pgid = _group["pgid"]
    join = {"process_group": pgid} if sys.version_info >= (3, 11) else {"preexec_fn": lambda: os.setpgid(0, pgid)}
    return subprocess.Popen(cmd, pass_fds=_group["fds"], **join, **kw)


def _watch(p: subprocess.Popen, log: Path, start: int, name: str) -> int:
    """Wait for p; a run waiting for a device slot says so on the terminal, not only in its log."""
    told = False
    while True:
        try:
            return p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            if told:
                continue
            with open(log) as f:
                f.seek(start)
                waiting = [line for line in f if "slots are busy" in line]
            if waiting:
                print(f"  {name}: {waiting[0].strip()}", flush=True)
                told = True


def run_names(stage: str) -> str:
    """train@baseline -> baseline, train_seed@r1_adamw-1338 -> r1_adamw-seed1338 (its configs/<run>.json)."""
    kind, _, run = stage.partition("@")
    if kind.endswith("_seed"):
        variant, _, seed = run.rpartition("-")
        return f"{variant}-seed{seed}"
    return run


def enabled(stage: str) -> bool:
    try:
        return json.loads(Path("configs", f"{run_names(stage)}.json").read_text()).get("enabled", True)
    except (OSError, ValueError):
        return True


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
        rc = dvc("repro", "-s", evaluate, log=log, name=train).returncode
    if enabled(train):  # a switched-off study's runs only write their markers: not worth a line
        ran = f"Running stage '{train}'" in log.read_text()
        print(f"  {('done' if ran else 'restored') if rc == 0 else 'FAILED'}: {train} ({time.time() - t0:.0f} s)",
              flush=True)
    return train, rc, time.time() - t0, log


def devices() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def apply_overrides(overrides: list[str]) -> None:
    from dvc.utils.hydra import apply_overrides as apply  # what `dvc exp run -S` uses
    apply("params.yaml", overrides)


def stop_children(*_):
    _stopping.set()
    if _group["pgid"] is not None:
        with contextlib.suppress(ProcessLookupError):  # the train stage checkpoints on SIGINT; dvc, the guard ignore it
            os.killpg(_group["pgid"], signal.SIGINT)
    for p in _children:
        if p.poll() is None and _group["pgid"] is None:
            os.killpg(p.pid, signal.SIGINT)
    raise KeyboardInterrupt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def claim_repo() -> int:
    """Take this repo's runner lock (an open fd the runs inherit), or raise Busy naming what holds it."""
    RUNNER_LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUNNER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        pid, pgid = holder.get("pid"), holder.get("pgid")
        if pid and _alive(pid):
            raise Busy(f"another mainrun.parallel (pid {pid}) is already running in this repo; wait for it, or stop "
                       f"it with `kill -INT {pid}`")
        raise Busy(f"the runs of an earlier mainrun.parallel (pid {pid}, gone) are still ending in this repo and hold "
                   f"its locks; wait for them, or stop them with `kill -INT -- -{pgid}`")
    for mode, entries in _rwlock().items():  # a plain `dvc repro`, or runs orphaned by an older runner
        for path, infos in entries.items():
            for info in infos if isinstance(infos, list) else [infos]:
                if _alive(info["pid"]):
                    os.close(fd)
                    raise Busy(f"DVC is already working in this repo: pid {info['pid']} ({info['cmd']}) holds "
                               f"{path}; wait for it, or stop it with `kill -INT {info['pid']}` (do not delete "
                               ".dvc/tmp/rwlock while it runs)")
    return fd


def _rwlock() -> dict:
    try:
        return json.loads(Path(".dvc/tmp/rwlock").read_text())
    except (OSError, ValueError):
        return {}


def start_guard(lock_fd: int) -> None:
    """The runs' process group leader: when the runner dies, even by SIGKILL, it stops them (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # this very mainrun
    guard = subprocess.Popen([sys.executable, "-m", "mainrun.parallel", "--guard", str(os.getpid())], env=env,
                             preexec_fn=os.setpgrp, pass_fds=(lock_fd,))  # its own group, this session (runs join)
    _group.update(pgid=guard.pid, fds=(lock_fd,))
    atexit.register(lambda: guard.poll() is None and (guard.terminate(), guard.wait()))  # the repo is free on exit
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, json.dumps({"pid": os.getpid(), "pgid": guard.pid}).encode(), 0)


def group_members(pgid: int) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    found.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def guard(parent: int, grace_s: float = 60.0) -> None:
    """Wait for the runner to end; then Ctrl-C the runs (they checkpoint), and kill what is left after grace_s."""
    import ctypes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the runner dies
    if os.getppid() == parent:
        signal.sigwait({signal.SIGTERM})
    if not group_members(os.getpid()):
        return
    os.killpg(os.getpid(), signal.SIGINT)
    deadline = time.time() + grace_s
    while group_members(os.getpid()) and time.time() < deadline:
        time.sleep(0.2)
    for pid in group_members(os.getpid()):
        os.kill(pid, signal.SIGKILL)


def upstream() -> None:
    (LOG_DIR / "upstream.log").unlink(missing_ok=True)
    if dvc("repro", "configure", log=LOG_DIR / "upstream.log").returncode:
        print((LOG_DIR / "upstream.log").read_text()[-3000:], file=sys.stderr)
        sys.exit("error: the upstream stages failed (log above)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=None,
                    help="runs at once (locally: default 1, all share the visible devices; with --ray: runs per GPU)")
    ap.add_argument("-S", "--set-param", action="append", default=[], help="a params override, as in dvc exp run")
    ap.add_argument("--ray", metavar="ADDRESS", help="run on this Ray cluster (what ray.init(address=...) takes)")
    ap.add_argument("--guard", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.guard:
        return guard(args.guard) or 0
    if args.jobs is not None and args.jobs < 1:
        sys.exit("error: -j must be at least 1")
    if args.ray:
        from .cluster import main as on_ray
        return on_ray(args.ray, args.jobs or 1, args.set_param)
    jobs = args.jobs or 1
    try:
        lock_fd = claim_repo()
    except Busy as e:
        sys.exit(f"error: {e}")
    if args.set_param:
        apply_overrides(args.set_param)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    start_guard(lock_fd)
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    t0 = time.time()
    os.environ[RUNS_PER_DEVICE] = str(math.ceil(jobs / devices()))
    print("1/3 upstream stages: dvc repro configure", flush=True)
    upstream()
    runs, rounds = stale_runs(), 0
    while runs:
        real = sum(enabled(train) for train, _ in runs)
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
        upstream()
        runs, rounds = stale_runs(), rounds + 1
        if runs and rounds < 3:
            print(f"params.yaml or the code changed during the runs: {len(runs)} stale again, running them too",
                  flush=True)
        elif runs:
            break  # still changing: the final dvc repro takes what is left
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
