"""Benchmark (not a test): where a finished DAG's wall time went.

    python benchmarks/where_time_goes.py [REPO] [--wall SECONDS]

Per train process, from models/<run>/run.json and metrics/eval/<run>.json: start-up (imports), setup (data, model,
checkpoint), the first step (compile and device warm-up), the other steps, the evaluations during training, saving,
and the final evaluation. Then the whole wall, from the stage log every stage process appends to
(.dvc/tmp/mainrun-stage-times.jsonl, mainrun.stagetimes): the train processes, the other stages, and DVC's own time
(the wall that no stage process covers). The wall is the log's first start to its last end, or --wall (e.g. from
`time make demo`) when given; the log holds every `dvc repro` since it was last deleted, so delete it before a
measured run.
"""
import argparse
import json
from pathlib import Path

COLUMNS = ("startup", "setup", "first_step", "steps", "evals", "save", "evaluate")


def phases(run: dict, metrics: dict) -> dict:
    t = run.get("timing") or {}
    first = t.get("first_step")
    return {"startup": t.get("startup"), "setup": t.get("setup"), "first_step": first,
            "steps": run["train_seconds"] - (first or 0.0), "evals": run["eval_seconds"], "save": t.get("save"),
            "evaluate": metrics.get("evaluate_seconds")}


def covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds of the union of intervals: runs side by side count once."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def train_table(repo: Path) -> list:
    """Prints the per-run table; returns each run's training loop [start, end] (steps and evaluations)."""
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(repo, "models").glob("*/run.json"))}
    if not runs:
        raise SystemExit(f"error: no models/*/run.json under {repo}: run the DAG first")
    totals = dict.fromkeys(COLUMNS, 0.0)
    print(f"{'run':<32}" + "".join(f"{c:>11}" for c in COLUMNS) + f"{'total':>9}  device")
    for name, run in runs.items():
        metrics = Path(repo, "metrics", "eval", f"{name}.json")
        row = phases(run, json.loads(metrics.read_text()) if metrics.exists() else {})
        for c in COLUMNS:
            totals[c] += row[c] or 0.0
        cells = "".join(f"{'-' if row[c] is None else f'{row[c]:.2f}':>11}" for c in COLUMNS)
        where = run.get("execution") or {}
        slot = f"{where['slot']}, " if where.get("slot") else ""
        threads = where.get("threads", run.get("torch_threads", "?"))
        print(f"{name:<32}{cells}{sum(v or 0.0 for v in row.values()):>9.2f}  {run['device']} ({slot}{threads} threads)")
    busy = sum(totals.values())
    print(f"{'all runs':<32}" + "".join(f"{totals[c]:>11.2f}" for c in COLUMNS) + f"{busy:>9.2f}")
    print("share: " + ", ".join(f"{c} {totals[c] / busy:.0%}" for c in COLUMNS))
    return [tuple(r["timing"]["loop"]) for r in runs.values() if (r.get("timing") or {}).get("loop")]


def wall_split(repo: Path, wall: float | None, loops: list) -> None:
    log = Path(repo, ".dvc/tmp/mainrun-stage-times.jsonl")
    if not log.exists():
        print(f"no stage log ({log}): run the DAG with this version to split the wall")
        return
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["stage"] != "new_runs"]  # its span holds nested train stages and DVC's time
    spans = {kind: [(r["start"], r["end"]) for r in rows if (r["stage"] == "train") == (kind == "train")]
             for kind in ("train", "other")}
    wall = wall or max(r["end"] for r in rows) - min(r["start"] for r in rows)
    train, other = covered(spans["train"]), covered(spans["other"])
    stages = covered(spans["train"] + spans["other"])
    print(f"\nDAG wall {wall:.1f} s: train processes {train:.1f} s ({train / wall:.0%}, {len(spans['train'])} "
          f"processes), other stages {other:.1f} s ({other / wall:.0%}, {len(spans['other'])}), DVC's own time "
          f"{wall - stages:.1f} s ({1 - stages / wall:.0%})")
    training = covered(loops)
    print(f"training loops (steps and evaluations) ran during {training:.1f} s of the wall; outside them: "
          f"{1 - training / wall:.0%} of the wall")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", default=".")
    ap.add_argument("--wall", type=float, help="the DAG's wall time in seconds (default: from the stage log)")
    args = ap.parse_args()
    wall_split(Path(args.repo), args.wall, train_table(Path(args.repo)))


if __name__ == "__main__":
    main()
