"""Stage train: train one run from its resolved config (resumes from its checkpoint if one matches)."""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.config import RunConfig, exec_config, read_yaml
from mainrun.runlog import read_json, write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True, help="directory for model.safetensors, config.json, run.json")
    ap.add_argument("--live", required=True, help="dvclive directory for the curves")
    ap.add_argument("--ckpt", required=True, help="resume directory (kept outside DVC)")
    ap.add_argument("--params", default="params.yaml", help="read for the execution settings only")
    args = ap.parse_args()
    spec = read_json(args.config)
    if not spec["enabled"]:
        for d in (args.out, args.live):
            Path(d).mkdir(parents=True, exist_ok=True)
            write_json(Path(d) / "skipped.json", {"name": spec["name"], "study": spec["study"]})
        print(f"{spec['name']}: " + (f"is the run {spec['same_as']} (same settings): nothing to train"
                                     if spec.get("same_as") else f"skipped (studies.{spec['study']} is false)"))
        return
    from mainrun.train import train  # torch loads only for runs that train

    # how it runs (checkpoint interval, logging) is read at run time, not a dependency: changing it re-trains nothing
    execution = exec_config(read_yaml(args.params).get("train") or {})
    s = train(RunConfig.from_dict(spec), args.out, args.live, args.ckpt, execution)
    print(f"{s['name']}: val_loss {s['final_val_loss']:.4f} after {s['steps']} steps, "
          f"{s['tokens_per_second']:.0f} tokens/s on {s['device']}")


if __name__ == "__main__":
    run_stage(main)
