"""The lr sweep that finds the bottom by itself: python -m mainrun.lr_extend [-j N]   (studies.lr_sweep on)

1. run the pipeline (python -m mainrun.parallel -j N): every swept run at every factor, the report;
2. for each swept run whose best factor is the smallest or the largest it ran at, the next factor beyond that edge
   (x2 or /2), unless that passes lr_sweep.extend.cap either way;
3. none: stop. Else add them to lr_sweep.extra in params.yaml (as `dvc exp run -S` writes it: each added run is a
   cached train stage like any other) and go to 1.
A run is judged on both metrics the report may judge it on (legacy val_loss and val_bpb): an edge on either extends.
A run that diverged (a loss that is not a number) is never a best.
"""
import argparse
import math
import subprocess
import sys
from pathlib import Path

from .config import MainrunError
from .lr_sweep import cap as lr_sweep_cap, on
from .params import load_params
from .runlog import read_json

METRICS = ("val_loss", "val_bpb")  # what the report judges a step on (mainrun/report/analyse.py)


def beyond_edge(losses: dict[float, float], cap: float) -> list[float]:
    """{factor: final loss} of one run (factor 1 included) -> the factors to add: [] when its best is interior, or
    the next one beyond its edge would pass cap x or 1/cap x."""
    if not losses:
        return []
    factors = sorted(losses)
    best = min(factors, key=lambda f: losses[f] if math.isfinite(losses[f]) else math.inf)
    add = []
    if best == factors[0] and factors[0] / 2 * cap >= 1 - 1e-9:
        add.append(factors[0] / 2)
    if best == factors[-1] and factors[-1] * 2 <= cap * (1 + 1e-9):
        add.append(factors[-1] * 2)
    return add


def plan(sweeps: dict[str, dict[float, dict]], cap: float) -> dict[str, list[float]]:
    """{swept run: {factor: its metrics}} -> {swept run: the factors to add}, for the runs that need any."""
    found = {}
    for run, points in sweeps.items():
        add = {f for m in METRICS for f in beyond_edge({f: p[m] for f, p in points.items() if m in p}, cap)}
        if add:
            found[run] = sorted(add)
    return found


def read_sweeps(configs_dir="configs", metrics_dir="metrics/eval") -> tuple[dict, list[str]]:
    """({swept run: {factor: metrics}} from configs/runs.json's lr_sweep rows and metrics/eval, [runs whose sweep
    has not finished])."""
    rows = read_json(Path(configs_dir) / "runs.json")["runs"]
    same = {r["name"]: r["same_as"] for r in rows if r.get("same_as")}

    def metrics(name):
        while name in same:
            name = same[name]
        path = Path(metrics_dir) / f"{name}.json"
        m = read_json(path) if path.exists() else {}
        return None if m.get("skipped") or not all(k in m for k in METRICS) else m
    sweeps, unfinished = {}, []
    for r in rows:
        if "lr_factor" in r:
            points = sweeps.setdefault(r["variant"], {1.0: metrics(r["variant"])})
            points[float(r["lr_factor"])] = metrics(r["name"])
    for run, points in list(sweeps.items()):
        if None in points.values():
            unfinished.append(run)
            del sweeps[run]
    return sweeps, unfinished


def overrides(params: dict, added: dict[str, list[float]]) -> list[str]:
    """-S overrides that add the factors to lr_sweep.extra (Hydra's `++`: the key may not be there yet)."""
    extra = params["lr_sweep"].get("extra", {})
    return [f"++lr_sweep.extra.{run}=[{','.join(repr(f) for f in sorted(extra.get(run, []) + fs))}]"
            for run, fs in added.items()]


def pipeline(jobs: int, sets: list[str]) -> None:
    cmd = [sys.executable, "-m", "mainrun.parallel", "-j", str(jobs), *[a for s in sets for a in ("-S", s)]]
    print("lr_extend:", " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd).returncode:
        raise MainrunError("lr_extend: the pipeline failed (its output is above); fix it and run this again: every "
                           "run that finished is cached")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (mainrun.parallel's -j)")
    args = ap.parse_args(argv)
    if not on(load_params()):
        raise MainrunError("lr_extend: studies.lr_sweep is off; switch it on in params.yaml (studies.lr_sweep: true)")
    sets = []
    while True:
        pipeline(args.jobs, sets)
        params = load_params()
        cap = lr_sweep_cap(params)
        sweeps, unfinished = read_sweeps()
        if unfinished:
            raise MainrunError(f"lr_extend: no final metrics for every factor of {', '.join(unfinished)}; run "
                               "`dvc repro` and look at what failed")
        added = plan(sweeps, cap)
        if not added:
            print(f"lr_extend: every best of {len(sweeps)} swept runs is inside its sweep or at the cap ({cap:g}x)")
            return 0
        print("lr_extend: adding " + "; ".join(f"{r} x{', x'.join(map(repr, fs))}" for r, fs in added.items()),
              flush=True)
        sets = overrides(params, added)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MainrunError as e:
        sys.exit(f"error: {e}")
