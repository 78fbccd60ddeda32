"""Stage code: the digests of the project files each stage kind's command imports (download, tokenize, train): what
their results depend on besides their params and inputs."""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.code import digests
from mainrun.runlog import write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--module", required=True, action="append", help="a stage's module, e.g. stages.train; repeat "
                    "it with --out for each stage kind (one file each: a stage re-runs for its own code only)")
    ap.add_argument("--out", required=True, action="append", help="the JSON file of {file: md5}, one per --module")
    args = ap.parse_args()
    if len(args.module) != len(args.out):
        ap.error("give one --out for each --module")
    for module, out in zip(args.module, args.out):
        files = digests(module, Path.cwd())  # the files DVC tracks here
        write_json(out, {"module": module, "files": files})
        print(f"{module}: {len(files)} files")


if __name__ == "__main__":
    run_stage(main)
