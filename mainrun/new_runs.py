"""The runs a switch added in this `dvc repro`, trained by a nested `dvc repro -s` (stage new_runs).

DVC makes the train stages from runs.yaml when it starts; the configure stage rewrites that file. A run that a
switch just turned on has no stage in the `dvc repro` that is running, so this stage, after configure, runs
`dvc repro -s train@RUN` for each: a new DVC process, which reads the new list. DVC releases its repo lock while a
stage's command runs, and `-s` touches no upstream stage, so the two do not collide. On the next `dvc repro` those
stages are in the DAG like any other, and this stage does not run.
"""
import subprocess
import sys

from .config import Interrupted, MainrunError
from .runlog import read_json, write_json


def train_new_runs(new_runs_file, out_file) -> list[str]:
    runs = read_json(new_runs_file)["runs"]
    if runs:
        print(f"{len(runs)} runs added by this change of params.yaml: dvc repro -s train@RUN for each", flush=True)
        p = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", *[f"train@{r}" for r in runs]])
        try:
            p.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the nested dvc and its run too: wait for the run's checkpoint
            p.wait()
            raise Interrupted("interrupted while training the new runs; run dvc repro again to resume") from None
        if p.returncode in (130, -2):
            raise Interrupted("interrupted while training the new runs; run dvc repro again to resume")
        if p.returncode:
            raise MainrunError(f"a new run failed (its output is above); fix it and run dvc repro again: the runs "
                               "that finished are cached")
    write_json(out_file, {"runs": runs})
    return runs
