"""Stage configure: resolve params.yaml's variant chains into one config file per run that trains, and their list
(runs.yaml, which dvc.yaml makes the train stages from)."""
import argparse

from stages._common import run_stage
from mainrun.config import ConfigError
from mainrun.params import UNDO, load_params
from mainrun.configure import configure


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokenized", required=True, help="root of the tokenized data directories")
    ap.add_argument("--out", required=True, help="directory for <run>.json, runs.json and new_runs.json")
    ap.add_argument("--runs", required=True, help="the run list dvc.yaml reads (runs.yaml)")
    args = ap.parse_args()
    try:
        runs = configure(load_params(), args.tokenized, args.out, args.runs)
    except ConfigError as e:
        raise ConfigError(f"{e} ({UNDO})") from None
    print(f"{len(runs)} runs configured: {', '.join(runs)}")


if __name__ == "__main__":
    run_stage(main)
