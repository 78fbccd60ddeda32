"""A temporary git+DVC copy of this repo on a tiny synthetic profile, for the end-to-end tests."""
import os
import shutil
import subprocess

import yaml

from conftest import ROOT

TINY = {"data.source": "synthetic", "data.num_titles": 600, "vocab_sizes": [200, 300, 400], "vocab_size": 400,
        "model.n_layer": 1, "model.n_head": 2, "model.d_model": 16,
        "train.epochs": 1, "train.batch_size": 4, "train.evals_per_epoch": 2, "noise.seeds": []}


def sh(repo, *cmd, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def make_tiny_repo(repo, edit=lambda params: None):
    """Copy the tracked files into `repo`, apply TINY and then `edit` to params.yaml, and commit."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in TINY.items():
        section, _, leaf = key.rpartition(".")
        (params[section] if section else params)[leaf] = value
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny profile")
    return repo
