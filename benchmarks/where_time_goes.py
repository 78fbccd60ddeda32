"""Benchmark (not a test): where a finished DAG's training time went, from each run's models/<run>/run.json.

    python benchmarks/where_time_goes.py [REPO] [--wall SECONDS]

Per run: process start-up (imports), setup (data, model, checkpoint), the first step (compile and device warm-up),
the other steps, the evaluations during training, and saving. With --wall (the DAG's wall time, e.g. from `time dvc
repro`), also what lies outside the train processes: the evaluate stages, the other stages and DVC itself.
"""
import argparse
import json
from pathlib import Path

COLUMNS = ("startup", "setup", "first_step", "steps", "evals", "save")


def phases(run: dict) -> dict:
    t = run.get("timing") or {}
    first = t.get("first_step")
    return {"startup": t.get("startup"), "setup": t.get("setup"), "first_step": first,
            "steps": run["train_seconds"] - (first or 0.0), "evals": run["eval_seconds"], "save": t.get("save")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", default=".")
    ap.add_argument("--wall", type=float, help="the DAG's wall time in seconds")
    args = ap.parse_args()
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(args.repo, "models").glob("*/run.json"))}
    if not runs:
        raise SystemExit(f"error: no models/*/run.json under {args.repo}: run the DAG first")
    totals = dict.fromkeys(COLUMNS, 0.0)
    print(f"{'run':<24}" + "".join(f"{c:>11}" for c in COLUMNS) + f"{'total':>9}  device")
    for name, run in runs.items():
        row = phases(run)
        for c in COLUMNS:
            totals[c] += row[c] or 0.0
        cells = "".join(f"{'-' if row[c] is None else f'{row[c]:.2f}':>11}" for c in COLUMNS)
        total = sum(v or 0.0 for v in row.values())
        where = run.get("execution") or {}  # slot and threads: older run.json files; torch_threads: today's
        slot = f"{where['slot']}, " if where.get("slot") else ""
        threads = where.get("threads", run.get("torch_threads", "?"))
        print(f"{name:<24}{cells}{total:>9.2f}  {run['device']} ({slot}{threads} threads)")
    busy = sum(totals.values())
    print(f"{'all runs':<24}" + "".join(f"{totals[c]:>11.2f}" for c in COLUMNS) + f"{busy:>9.2f}")
    print("share: " + ", ".join(f"{c} {totals[c] / busy:.0%}" for c in COLUMNS))
    if args.wall and busy <= args.wall:
        print(f"DAG wall {args.wall:.1f} s: {busy:.1f} s in train processes, {args.wall - busy:.1f} s "
              f"({1 - busy / args.wall:.0%}) outside them (evaluate stages, other stages, DVC)")
    elif args.wall:
        print(f"DAG wall {args.wall:.1f} s: {busy:.1f} s in train processes, {busy / args.wall:.2f} at a time on average")


if __name__ == "__main__":
    main()
