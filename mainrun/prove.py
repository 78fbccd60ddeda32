"""Prove that a code edit left a trained run's computation unchanged, and record the run without re-training it.

    python -m mainrun.prove            # brings the code and configure stages up to date, then proves each stale run
    python -m mainrun.prove --dry-run  # says what it would commit, commits nothing
    python -m mainrun.prove --adopt    # once, after upgrading from a version whose runs record no fingerprint

Each run records a fingerprint when it trains (models/<run>/run.json): its first FINGERPRINT_STEPS training losses,
exactly, its final legacy val_loss, exactly, and the digests of the code it ran. A stale run is committed
(`dvc commit -f train@<run>`) only when all of these hold:
- it trained on the CPU in fp32, not compiled, under this torch version: where bit-exactness holds (a run on CUDA or
  in bf16 is refused, in one line: it re-trains);
- the only files changed since it trained are modules whose function is the same at every step (PROVABLE: the model
  and the settings' defaults); an edit of the loop, schedule, optimiser, data or evaluation re-trains;
- every setting it recorded (models/<run>/config.json) is still its setting, defaults included (a moved default
  re-trains); only new model keys may be added, and their defaults must reproduce what follows:
- its first losses, replayed under the new code at its own config and data, and the evaluation of its saved weights
  under the new model, are bit-identical to what it recorded.
What it cannot see: a model edit whose effect starts after the replayed steps in a way the final weights' evaluation
does not show (a branch on the step or on the weights' values); docs/extending.md#what-the-proof-covers.
"""
import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from .code import digests
from .config import MainrunError, RunConfig
from .runlog import read_json, write_json

# the files an edit may touch and still be proved: each computes the same function at every step, so the first
# steps and the final weights' evaluation see what it changed
PROVABLE = ("mainrun/model.py", "mainrun/config.py")


def code_changes(recorded: dict, now: dict) -> list[str]:
    return sorted(f for f in recorded.keys() | now.keys() if recorded.get(f) != now.get(f))


def setting_changes(recorded: dict, now: dict) -> tuple[list[str], list[str]]:
    """(settings whose value moved, went or came, as 'section.key old -> new'; new model keys, which the replay
    judges): a run's recorded settings against today's, defaults filled in on both sides."""
    moved, new = [], []
    for section in ("model", "train", "data"):
        before, after = recorded.get(section, {}), now.get(section, {})
        for key in before.keys() | after.keys():
            if key not in before and section == "model":
                new.append(f"model.{key}")
            elif before.get(key, "absent") != after.get(key, "absent"):
                moved.append(f"{section}.{key} {before.get(key, 'absent')!r} -> {after.get(key, 'absent')!r}")
    return sorted(moved), sorted(new)


def refusal(run: dict, recorded: dict, now: dict, code_now: dict, torch_version: str) -> str | None:
    """Why this run cannot be proved from what it recorded (None: replay it)."""
    fp = run.get("fingerprint") or {}
    if not fp.get("losses") or None in fp["losses"] or not fp.get("code"):
        return "it records no fingerprint (trained before mainrun.prove, or resumed from an older checkpoint)"
    t = recorded["train"]
    if t.get("device") != "cpu" or t.get("bf16") is not False or t.get("compile"):
        return (f"it trained on {t.get('device')}{' in bf16' if t.get('bf16') is True else ''}"
                f"{' compiled' if t.get('compile') else ''}: not bit-exact there, so nothing can be proved")
    if run.get("versions", {}).get("torch") != torch_version:
        return f"it trained under torch {run.get('versions', {}).get('torch')}, this is {torch_version}"
    outside = [f for f in code_changes(fp["code"], code_now) if f not in PROVABLE]
    if outside:
        return f"{', '.join(outside)} changed: only {' and '.join(PROVABLE)} edits can be proved"
    moved, _ = setting_changes(recorded, now)
    if moved:
        return f"its settings moved ({'; '.join(moved)})"
    return None


def replay(cfg: RunConfig, run: dict, weights: Path) -> str | None:
    """Why the new code computes otherwise (None: bit-identical first losses and final evaluation)."""
    import torch
    from safetensors.torch import load_model

    from .evaluate import legacy_val_loss
    from .model import GPT
    from .runtime import ids_tensor
    from .tokenized import load_meta
    from .train import first_steps

    recorded = run["fingerprint"]["losses"]
    losses = first_steps(cfg, len(recorded), run["torch_threads"])
    if losses != recorded:
        step = next(i for i, (a, b) in enumerate(zip(losses, recorded), 1) if a != b)
        return f"its training loss at step {step} is {losses[step - 1]!r} under the new code, {recorded[step - 1]!r} recorded"
    model = GPT(cfg.model)
    try:
        load_model(model, str(weights))  # strict: a new or renamed parameter is a new model
    except RuntimeError as e:
        return f"its saved weights do not fit the new model ({str(e).splitlines()[0]})"
    val_ids = ids_tensor(cfg.data["dir"], "val", torch.device("cpu"))
    val = legacy_val_loss(model, val_ids, load_meta(cfg.data["dir"])["val"]["characters"], cfg.model.block_size,
                          cfg.train.batch_size)
    if val != run["final_val_loss"]:
        return f"its saved weights evaluate to {val!r} under the new code, {run['final_val_loss']!r} recorded"
    return None


def curve_fingerprint(root: Path, name: str, code_now: dict) -> dict:
    """--adopt: a run trained before fingerprints, fingerprinted from its own curve (dvclive writes each loss as
    Python's repr: exact) and today's code digests; the replay then checks it like any other."""
    from .train import FINGERPRINT_STEPS
    with open(root / "dvclive" / name / "plots" / "metrics" / "train_loss.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {"losses": [float(r["train_loss"]) for r in rows[:FINGERPRINT_STEPS]], "code": code_now}


def prove(name: str, root: Path, code_now: dict, adopt: bool = False) -> str | None:
    """None when run `name` computes the same under the code here, else why not (one clause). adopt: a run without
    a fingerprint gets one from its curve, and is written into its run.json once proved."""
    import torch

    spec = read_json(root / "configs" / f"{name}.json")
    out = root / "models" / name
    if not all((out / f).exists() for f in ("run.json", "config.json", "model.safetensors")):
        return "it has not trained in this workspace"
    run, recorded = read_json(out / "run.json"), read_json(out / "config.json")
    if adopt and not run.get("fingerprint"):
        run["fingerprint"] = curve_fingerprint(root, name, code_now)
    cfg = RunConfig.from_dict(spec)
    why = refusal(run, recorded, cfg.full_dict(), code_now, torch.__version__)  # run.json's form: 2.13.0+cpu
    why = why or replay(cfg, run, out / "model.safetensors")
    if adopt and not why:
        write_json(out / "run.json", run)
    return why


def dvc(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], capture_output=True, text=True)


def stale_runs() -> dict[str, list]:
    """{train stage: what dvc status says changed} for each stale train stage."""
    p = dvc("status", "--json")
    if p.returncode:
        raise MainrunError(f"dvc status failed: {(p.stderr or p.stdout).strip().splitlines()[-1]}")
    return {k: v for k, v in json.loads(p.stdout or "{}").items() if k.startswith("train@")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="prove and say, commit nothing")
    ap.add_argument("--adopt", action="store_true", help="once, after upgrading from a version whose runs record no "
                    "fingerprint: take it from each run's curve (and today's code), then prove as usual")
    args = ap.parse_args(argv)
    root = Path.cwd()
    p = dvc("repro", "configure")  # the code stage's digests and the run configs, as the new code writes them
    if p.returncode:
        raise MainrunError("dvc repro configure failed: " + (p.stderr or p.stdout).strip()[-1000:])
    code_now = digests("stages.train", root)
    if read_json(root / "data/code/train.json")["files"] != code_now:
        raise MainrunError("the code changed while proving: run python -m mainrun.prove again")
    proved = []
    for stage, changes in stale_runs().items():
        name, t0 = stage.partition("@")[2], time.time()
        outs = {k: v for c in changes if isinstance(c, dict) for k, v in c.get("changed outs", {}).items()}
        if "modified" in outs.values():
            why = "its outputs differ from dvc.lock's (dvc checkout restores them)"
        elif not read_json(root / "configs" / f"{name}.json").get("enabled", True):
            continue
        else:
            why = prove(name, root, code_now, args.adopt and not args.dry_run)
        if why:
            print(f"{name}: re-train: {why}")
        else:
            print(f"{name}: proved unchanged in {time.time() - t0:.1f} s")
            proved.append(stage)
    if proved and not args.dry_run:
        p = dvc("commit", "-f", *proved)
        if p.returncode:
            raise MainrunError("dvc commit failed: " + (p.stderr or p.stdout).strip()[-1000:])
    verb = "would commit" if args.dry_run else "committed"
    print(f"{verb} {len(proved)} run(s) without re-training; dvc repro trains the rest")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MainrunError as e:
        sys.exit(f"error: {e}")
