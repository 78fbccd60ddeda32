"""Stage check: every value of params.yaml, before any other stage runs (download depends on its marker).

A bad `-S` stops `dvc exp run` here with one line naming the key (and the variant it reaches first), whichever stage
would have met the value first: an argparse usage block of a tokenizer stage, or a failure half-way down the DAG.
"""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.config import ConfigError
from mainrun.configure import check_runs
from mainrun.params import UNDO, load_params


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="marker file: the same bytes whenever the check passes")
    args = ap.parse_args()
    try:
        check_runs(load_params())
    except ConfigError as e:
        raise ConfigError(f"{e} ({UNDO})") from None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("params.yaml passed the checks of mainrun.params and mainrun.configure\n")


if __name__ == "__main__":
    run_stage(main)
