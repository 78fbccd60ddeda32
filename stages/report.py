"""Stage report: reports/report.md, its PNGs, summary.json and headline.json, from cached metrics and curves only."""
import argparse

from stages._common import run_stage
from mainrun.params import load_params
from mainrun.report import build_report, lr_sweep
from mainrun.runlog import read_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--configs", required=True)
    ap.add_argument("--metrics", required=True, help="directory of the train stages' evaluations (JSON)")
    ap.add_argument("--live", required=True, help="dvclive root with one directory per run")
    ap.add_argument("--data-stats", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    params = load_params()
    cap = read_json(f"{args.configs}/runs.json").get("lr_cap", lr_sweep.CAP)  # configure's, while the sweep is on
    summary = build_report(params["data"], read_json(args.data_stats), args.configs, args.metrics, args.live, args.out,
                           cap)
    print(f"report: {summary['runs']} runs -> {args.out}/report.md")


if __name__ == "__main__":
    run_stage(main)
