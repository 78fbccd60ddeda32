"""Stage new_runs: train the runs that a switch (`-S studies.scale=true`) added in this very `dvc repro`.

DVC read runs.yaml, and so made its train stages, before the configure stage wrote the new runs into it; a second
`dvc repro -s` sees them. Each is still its own cached stage: one that ran before is restored, not re-trained.
"""
import argparse

from stages._common import run_stage
from mainrun.new_runs import train_new_runs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", required=True, help="configs/new_runs.json, written by the configure stage")
    ap.add_argument("--out", required=True, help="what ran: the run names")
    args = ap.parse_args()
    train_new_runs(args.runs, args.out)


if __name__ == "__main__":
    run_stage(main)
