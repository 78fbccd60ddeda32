"""A tiny repo with a bare git origin and a local-directory DVC remote beside it: what a team shares."""
import hashlib
import json
import re
import subprocess

from tiny_repo import make_tiny_repo, sh

VARIANTS = {"baseline": {"vocab_size": 300, "block_size": 16}, "r1_adamw": {"optimizer": "adamw", "lr": 3.0e-3}}


def few_variants(params):
    params["vocab_sizes"], params["vocab_size"] = [300], 300
    params["variants"] = VARIANTS
    params["noise"]["variants"] = []
    params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}  # the alt tokenizers' switch, the scale study's


def shared_repo(tmp_path, name="a", edit=lambda params: None):
    """Clone `name` of a tiny repo whose `origin` is a bare git repo and whose default DVC remote is a folder;
    edit(params) after few_variants."""
    repo = make_tiny_repo(tmp_path / name, lambda params: (few_variants(params), edit(params)))
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    sh(repo, "git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    sh(repo, "dvc", "remote", "add", "-d", "shared", str(tmp_path / "dvc-remote"))
    sh(repo, "dvc", "remote", "modify", "shared", "verify", "true")  # a damaged object re-runs (docs/sharing.md)
    sh(repo, "git", "commit", "-qam", "the team's DVC remote")
    sh(repo, "git", "push", "-q", "origin", "HEAD:main")
    return repo


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def results(repo, runs=VARIANTS) -> dict:
    """What the runs computed: the weights' sha256 and the metrics, timings left out."""
    weights = {n: hashlib.sha256((repo / "models" / n / "model.safetensors").read_bytes()).hexdigest() for n in runs}
    metrics = {n: json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text()) for n in runs}
    for m in metrics.values():
        for volatile in ("train_seconds", "tokens_per_second", "evaluate_seconds"):
            m.pop(volatile)
    return {"weights": weights, "metrics": metrics}
