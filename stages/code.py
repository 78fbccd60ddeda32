"""Stage code: the digests of the project files a stage's command imports (for the train stage: what every run's
results depend on besides its config)."""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.code import digests
from mainrun.runlog import write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--module", required=True, help="the stage's module, e.g. stages.train")
    ap.add_argument("--out", required=True, help="the JSON file of {file: md5}")
    args = ap.parse_args()
    files = digests(args.module, Path.cwd())  # the files DVC tracks here
    write_json(args.out, {"module": args.module, "files": files})
    print(f"{args.module}: {len(files)} files")


if __name__ == "__main__":
    run_stage(main)
