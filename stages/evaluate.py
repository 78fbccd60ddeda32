"""Stage evaluate: the legacy Mainrun val_loss and the honest metrics of one trained run."""
import argparse

from stages._common import run_stage
from mainrun.config import RunConfig
from mainrun.runlog import read_json, write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--model", required=True, help="the train stage's output directory")
    ap.add_argument("--out", required=True, help="metrics JSON")
    args = ap.parse_args()
    spec = read_json(args.config)
    if not spec["enabled"]:
        write_json(args.out, {"skipped": True})
        return
    from mainrun.evaluate import evaluate_run

    metrics = evaluate_run(RunConfig.from_dict(spec), args.model)
    write_json(args.out, metrics)
    print(f"{spec['name']}: val_loss {metrics['val_loss']:.4f} (legacy), {metrics['val_loss_per_token']:.4f} "
          f"nats/token, {metrics['val_bpb']:.4f} bits/byte")


if __name__ == "__main__":
    run_stage(main)
