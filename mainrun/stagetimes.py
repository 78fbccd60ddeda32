"""Where a DAG's wall time goes: each stage process appends its start and end to one log, so that
benchmarks/where_time_goes.py can tell the stages' own time from DVC's between them."""
import json
import os
import sys
import time
from pathlib import Path

LOG = Path(".dvc/tmp/mainrun-stage-times.jsonl")  # DVC's scratch folder: no output, never in git


def record(started: float, log: Path = LOG) -> None:
    """One line for this stage process: its script, its first argument's value, when it started and ended."""
    if not log.parent.is_dir():  # not in a DVC repo (a stage run by hand elsewhere): nothing to record
        return
    line = {"stage": Path(sys.argv[0]).stem, "target": sys.argv[2] if len(sys.argv) > 2 else None,
            "start": round(started, 3), "end": round(time.time(), 3), "pid": os.getpid()}
    with open(log, "a") as f:  # one short append per process: lines from runs side by side do not interleave
        f.write(json.dumps(line) + "\n")
