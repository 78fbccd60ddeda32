"""Device slots: several runs side by side on one machine, each on its own GPU (or share of the CPU cores).

A slot is a file lock (flock), so the kernel frees it when its process exits or crashes. Slots exist only when
MAINRUN_RUNS_PER_DEVICE is set (by `python -m mainrun.parallel`, or by hand for `dvc queue start`): then there are
runs-per-device slots on each visible GPU (or on the CPU), and each run takes the first free one or waits.
"""
import fcntl
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RUNS_PER_DEVICE = "MAINRUN_RUNS_PER_DEVICE"
SLOT_DIR = "MAINRUN_SLOT_DIR"  # default: one folder per machine, so every repo and queue worker shares its GPUs
_held = []  # open lock files: a slot is held as long as this process lives
_mine: dict[str, "Slot"] = {}  # kind -> the first slot this process took (training, then evaluating, use it)


@dataclass(frozen=True)
class Slot:
    index: int  # the GPU index on CUDA; 0 on the CPU
    threads: int  # CPU threads this run may use
    name: str  # e.g. "cuda-3" or "cpu-1" (which lock), or "unslotted"


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def holder() -> str:
    """Who holds a slot, as the waiting runs name it in one line: pid, command and folder."""
    said = f"pid {os.getpid()} {os.path.basename(sys.argv[0])} {' '.join(sys.argv[1:3])} in {os.getcwd()}"
    return "".join(" " if c < " " or c == "\x7f" else c for c in said)  # an argument may hold a newline


def held(kind: str) -> "Slot | None":
    """The slot this process already holds on `kind`, if any: a run's evaluation takes its training's.
    None while slots are off (MAINRUN_RUNS_PER_DEVICE unset): then every run has the whole machine."""
    return _mine.get(kind) if int(os.environ.get(RUNS_PER_DEVICE, "0") or 0) >= 1 else None


def claim(kind: str, n_devices: int, poll_s: float = 0.5) -> Slot:
    """Take a free slot for a run on `kind` ('cuda' or 'cpu') with n_devices of it visible; wait while all are busy."""
    per_device = int(os.environ.get(RUNS_PER_DEVICE, "0") or 0)
    if per_device < 1:  # plain `dvc repro`: one run at a time, the whole machine (or OMP_NUM_THREADS of it)
        omp = os.environ.get("OMP_NUM_THREADS", "")  # the user's own limit, when it is a thread count
        return Slot(0, int(omp) if omp.isdigit() and int(omp) > 0 else cpu_cores(), "unslotted")
    slots = n_devices * per_device
    folder = Path(os.environ.get(SLOT_DIR) or Path(tempfile.gettempdir()) / "mainrun-slots")
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for i in range(slots):  # slot i sits on device i % n_devices: the GPUs fill evenly
            f = open(folder / f"{kind}-{i}.lock", "a+")  # not "w": that would erase the holder's name
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            f.truncate(0)
            f.write(holder())
            f.flush()
            _held.append(f)
            slot = Slot(i % n_devices, max(1, cpu_cores() // slots), f"{kind}-{i}")
            _mine.setdefault(kind, slot)
            return slot
        if not waited:
            held = "; ".join(f"{kind}-{i}: {(folder / f'{kind}-{i}.lock').read_text().strip() or '?'}"
                             for i in range(slots))
            print(f"all {slots} {kind} slots are busy ({held}): waiting for one to free up", flush=True)
            waited = True
        time.sleep(poll_s)
