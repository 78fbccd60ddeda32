"""Stage train: train one run from its resolved config (resuming from its checkpoint if one matches), then evaluate
it: the legacy Mainrun val_loss and the honest metrics, in the same process."""
import argparse
import sys
import time
from pathlib import Path

from stages._common import run_stage
from mainrun.config import ConfigError, RunConfig, exec_config, read_yaml
from mainrun.runlog import read_json, write_json


def code_unchanged(path) -> None:
    """DVC records this run under the digests the code stage wrote: the modules about to be imported must be those."""
    from mainrun.code import digests
    now, recorded = digests("stages.train", Path.cwd()), read_json(path)["files"]
    changed = sorted(f for f in now.keys() | recorded.keys() if now.get(f) != recorded.get(f))
    if changed:
        raise ConfigError(f"{', '.join(changed)} changed since the code stage wrote {path}: run dvc repro "
                          "(it runs the code stage first; dvc repro -s train@RUN does not)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True, help="directory for model.safetensors, config.json, run.json")
    ap.add_argument("--live", required=True, help="dvclive directory for the curves")
    ap.add_argument("--ckpt", required=True, help="resume directory (kept outside DVC)")
    ap.add_argument("--metrics", required=True, help="the evaluation's metrics JSON")
    ap.add_argument("--params", default="params.yaml", help="read for the execution settings only")
    ap.add_argument("--code", help="the code stage's digests (data/code/train.json), checked against the files here")
    args = ap.parse_args()
    spec = read_json(args.config)
    if not spec["enabled"]:  # a run params.yaml no longer has: dvc.yaml drops its stage once configure has run
        for d in (args.out, args.live):
            write_json(Path(d) / "skipped.json", {"name": spec["name"]})
        write_json(args.metrics, {"skipped": True})
        print(f"{spec['name']}: no longer a run of params.yaml: nothing to train")
        return
    if args.code:
        code_unchanged(args.code)
    sys.modules.setdefault("pandas", None)  # dvclive imports pandas when it can, for tables never logged here: 1 s
    from mainrun.checkpoint import Checkpoint  # torch loads only for runs that train
    from mainrun.evaluate import evaluate_run
    from mainrun.train import train

    # how it runs (checkpoint interval, logging) is read at run time, not a dependency: changing it re-trains nothing
    execution = exec_config(read_yaml(args.params).get("train") or {})
    cfg = RunConfig.from_dict(spec)
    code = read_json(args.code)["files"] if args.code else None  # recorded in the run's fingerprint (mainrun.prove)
    s = train(cfg, args.out, args.live, args.ckpt, execution, clear_checkpoint=False, code=code)
    t0 = time.time()
    metrics = evaluate_run(cfg, args.out)
    write_json(args.metrics, {**metrics, "evaluate_seconds": round(time.time() - t0, 3)})
    Checkpoint(args.ckpt, args.live, cfg.digest(), cfg.name).clear()  # evaluated: the run is done
    print(f"{s['name']}: val_loss {metrics['val_loss']:.4f} (legacy), {metrics['val_loss_per_token']:.4f} nats/token, "
          f"{metrics['val_bpb']:.4f} bits/byte after {s['steps']} steps, {s['tokens_per_second']:.0f} tokens/s on "
          f"{s['device']}")


if __name__ == "__main__":
    run_stage(main)
