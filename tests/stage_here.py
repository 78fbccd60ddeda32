"""The train stage run in the test's own process: its main() with the arguments dvc.yaml gives it, in the repo, its
outputs in a folder of their own. The same code on the same configs as `dvc repro -f -s train@RUN`, without a dvc
process and a Python importing torch per run: what a test compares a runner's results with, bit for bit."""
import os
import sys

import torch


def train_here(repo, runs, out) -> None:
    """Train and evaluate each run of `repo` (its configs/<run>.json, code digests and tokenizers) into
    out/models/<run>, out/metrics/eval/<run>.json (out/dvclive, out/.ckpt): the layout shared_repo.results reads.
    The threads come from the environment, as in a stage: the caller sets OMP_NUM_THREADS or the slots."""
    from stages.train import main

    argv, cwd, threads, pandas = sys.argv, os.getcwd(), torch.get_num_threads(), "pandas" in sys.modules
    try:
        os.chdir(repo)  # where a stage runs: a config names its tokenizer relative to the repo
        for n in runs:
            sys.argv = ["stages.train", "--config", f"configs/{n}.json", "--out", str(out / "models" / n),
                        "--live", str(out / "dvclive" / n), "--ckpt", str(out / ".ckpt" / n),
                        "--metrics", str(out / "metrics" / "eval" / f"{n}.json"), "--code", "data/code/train.json"]
            main()
    finally:
        sys.argv = argv
        os.chdir(cwd)
        torch.set_num_threads(threads)  # a run sets its slot's: the worker's later tests keep theirs
        if not pandas and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]  # the stage blocks dvclive's pandas import, for its process only
