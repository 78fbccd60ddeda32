"""Stage download: Mainrun's seeded split of the titles, plus counts."""
import argparse

from stages._common import run_stage
from mainrun.common import read_yaml
from mainrun.data import download
from mainrun.runlog import write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="directory for train.json and val.json")
    ap.add_argument("--stats", required=True, help="metrics file with title, character and byte counts")
    args = ap.parse_args()
    params = read_yaml("params.yaml")  # checked by the check stage upstream; params.py would tie this stage to
    # config.py, and so a model flag to the download
    d = params["data"]
    stats = download(d["source"], d["num_titles"], d["val_frac"], params["seed"], args.out)
    write_json(args.stats, stats)
    print(f"{stats['train']['titles']} train / {stats['val']['titles']} validation titles from {d['source']}")


if __name__ == "__main__":
    run_stage(main)
