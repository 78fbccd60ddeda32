"""Stage configure: resolve params.yaml's variant chains into one config file per run."""
import argparse

from stages._common import run_stage
from mainrun.config import ConfigError
from mainrun.params import UNDO, load_params
from mainrun.configure import configure


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokenized", required=True, help="root of the tokenized data directories")
    ap.add_argument("--out", required=True, help="directory for <run>.json")
    args = ap.parse_args()
    try:
        enabled = configure(load_params(), args.tokenized, args.out)
    except ConfigError as e:
        raise ConfigError(f"{e} ({UNDO})") from None
    on = [n for n, e in enabled.items() if e]
    print(f"{len(on)} runs configured: {', '.join(on)}; {len(enabled) - len(on)} opt-in runs off")


if __name__ == "__main__":
    run_stage(main)
