"""A temporary git+DVC copy of this repo on a tiny synthetic profile, for the end-to-end tests."""
import os
import shutil
import subprocess

import yaml

from conftest import ROOT, committed_params
from mainrun.configure import runs_on, write_run_list

TINY = {"data.source": "synthetic", "data.num_titles": 600, "vocab_sizes": [200, 300, 400], "vocab_size": 400,
        "model.n_layer": 1, "model.n_head": 2, "model.d_model": 16,
        "train.epochs": 1, "train.batch_size": 8, "train.evals_per_epoch": 2, "noise.seeds": [],
        "scales.sizes": {}}  # no scale study stages: tests/test_studies_pipeline.py adds its sizes


def sh(repo, *cmd, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def run_outputs(dvc_yaml: dict) -> list[str]:
    """What the stages write: a path, or the part of a templated one before its first `${`."""
    found = []
    for stage in dvc_yaml["stages"].values():
        body = stage.get("do", stage)
        for out in body.get("outs", []) + body.get("metrics", []) + body.get("plots", []):
            found.append(out if isinstance(out, str) else next(iter(out)))
    return [p.split("${")[0] if "${" in p else p.rstrip("/") + "/" for p in found]


def written_by_a_run(path: str, outputs: list[str]) -> bool:
    """dvc.lock and the outputs, but runs.yaml: DVC needs that one to read dvc.yaml (configure rewrites it)."""
    return path == "dvc.lock" or path != "runs.yaml" and any(path.startswith(o) or path + "/" == o for o in outputs)


def make_tiny_repo(repo, edit=lambda params: None, source=ROOT):
    """A fresh pipeline in `repo` from the tracked files of `source`: the code as it is on disk (an edit is tested
    before it is committed), params.yaml as committed with TINY and then `edit` applied, and nothing a run writes
    (dvc.lock, outputs: a `dvc exp run` in `source` changes nothing here); committed."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=source, capture_output=True, text=True, check=True).stdout
    files = listed.split("\0")[:-1]
    outputs = run_outputs(yaml.safe_load((source / "dvc.yaml").read_text()))
    for f in files:
        if (source / f).is_file() and not written_by_a_run(f, outputs):
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / f, repo / f)
    params = committed_params(source)
    for key, value in TINY.items():
        section, _, leaf = key.rpartition(".")
        (params[section] if section else params)[leaf] = value
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_run_list(list(runs_on(params)), repo / "runs.yaml")  # as committed: the runs of the committed params
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny profile")
    return repo
