"""Resolve params.yaml into one config file per run, so DVC's content hashes decide exactly what re-trains.

A run is a variant, or a run a study adds: the studies of STUDIES, each reading the runs found before it
(mainrun/study.py). Its file holds the resolved model and training settings and the fingerprint of the tokenized
data it reads: a file that did not change means nothing to redo.
"""
import ctypes
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import attribution, lr_sweep, noise, scale
from .config import (ALT_TOKENIZERS, ConfigError, RunConfig, is_enabled, read_yaml, resolve_variants,
                     split_settings, tokenized_name, variant_parents)
from .runlog import write_json
from .study import Run
from .tokenized import load_meta

STUDIES = (noise, attribution, scale, lr_sweep)  # in this order: each one multiplies the runs of those before it


def tokenized_dir(root, kind: str, vocab_size: int) -> Path:
    """bpe-<vocab> for each BPE size; an opt-in tokenizer, built at vocab_size only by the one tokenize_alt stage, is
    alt/<kind> whatever the size, so changing vocab_size never leaves an output without a hash in dvc.lock."""
    return Path(root) / ("alt/" + kind if kind in ALT_TOKENIZERS else tokenized_name(kind, vocab_size))


def variant_runs(params: dict) -> dict[str, Run]:
    """Every variant, switched on or off, with its parent and its chain (a `from:` starts one)."""
    for taken in ("runs", "new_runs"):
        if taken in params["variants"]:
            raise ConfigError(f"a variant may not be called '{taken}': configs/{taken}.json is the configure stage's")
    settings, found, group = resolve_variants(params), {}, -1
    for name, parent in variant_parents(params).items():
        group += not found or "from" in (params["variants"][name] or {})
        found[name] = Run(settings[name], {"name": name, "parent": parent, "group": group, "repeat_of": None,
                                           "study": settings[name]["study"],
                                           "enabled": is_enabled(settings[name], params)})
    return found


def all_runs(params: dict) -> dict[str, Run]:
    """The variants, their seed repeats, then the runs of each study that is on, in STUDIES' order."""
    found = variant_runs(params)
    for study in STUDIES:
        if study.on(params):
            for name, run in study.runs(params, found).items():
                if name in found:
                    raise ConfigError(f"variant name {name!r} is also the name of a run of the "
                                      f"{study.__name__.rpartition('.')[2]} study; rename the variant")
                found[name] = run
    return found


def run_settings(params: dict) -> dict[str, dict]:
    """Every default run's flat settings: the variants, then each noise variant at each extra seed."""
    found = variant_runs(params)
    return {name: run.settings for name, run in {**found, **noise.runs(params, found)}.items()}


def check_runs(params: dict) -> None:
    """Every run that is on resolves to a valid model and training config (ranges, combinations, a vocabulary that
    is built): configure's checks that need no tokenized data, named by the first run the bad value reaches."""
    for name, settings in runs_on(params).items():
        try:
            split_settings(settings)  # which takes the model and train keys only
        except ConfigError as e:
            raise ConfigError(f"variant '{name}': {e}") from None
        if settings["tokenizer"] == "bpe" and settings["vocab_size"] not in params["vocab_sizes"]:
            raise ConfigError(f"variant '{name}' uses vocab_size {settings['vocab_size']}, which is not in "
                              f"vocab_sizes {params['vocab_sizes']}: add it to vocab_sizes so the tokenize stage "
                              "builds it")


def resolve_run(name: str, settings: dict, params: dict, tokenized_root, cuda: bool) -> RunConfig:
    """One run's resolved config; cuda: whether a GPU is visible (it decides what `device: auto` and the other
    per-device `auto`s become, which are part of the run's identity)."""
    try:
        model, train = split_settings(settings)
    except ConfigError as e:
        raise ConfigError(f"variant '{name}': {e}") from None
    train = train.resolved(cuda)
    vocab = train.vocab_size_requested
    if train.tokenizer == "bpe" and vocab not in params["vocab_sizes"]:
        raise ConfigError(f"variant '{name}' uses vocab_size {vocab}, which is not in vocab_sizes "
                          f"{params['vocab_sizes']}: add it to vocab_sizes so the tokenize stage builds it")
    if train.tokenizer != "bpe" and vocab != params["vocab_size"]:
        raise ConfigError(f"variant '{name}': the {train.tokenizer} tokenizer is built at vocab_size "
                          f"{params['vocab_size']} only, not {vocab}")
    tokdir = tokenized_dir(tokenized_root, train.tokenizer, vocab)
    study = params["alt_tokenizers"].get(train.tokenizer, {}).get("study")
    if study and not params["studies"][study]:
        raise ConfigError(f"variant '{name}' needs the {train.tokenizer} tokenizer, which is built only when "
                          f"studies.{study} is true: switch it on or give '{name}' that study")
    if not (tokdir / "meta.json").exists():
        raise ConfigError(f"variant '{name}' needs the {train.tokenizer} tokenizer at vocab {vocab}, "
                          f"which was not built ({tokdir}); run `dvc repro` so the tokenize stages build it")
    meta = load_meta(tokdir)
    model = replace(model, vocab_size=meta["vocab_size"])
    span = model.block_size * train.batch_size + 1
    n_train, n_val = meta["train"]["tokens"], meta["val"]["tokens"]
    fix = "lower block_size or train.batch_size, or raise data.num_titles"
    if n_train <= span:
        raise ConfigError(f"variant '{name}': one batch needs {span} tokens (block_size {model.block_size} x "
                          f"batch_size {train.batch_size} + 1) but the train split has {n_train}; {fix}")
    if n_val < span:
        raise ConfigError(f"variant '{name}': the legacy metric needs one full batch of {span} validation tokens "
                          f"but the validation split has {n_val}; {fix}")
    batches = n_train // (span - 1)
    if batches < train.evals_per_epoch:
        raise ConfigError(f"variant '{name}': {batches} batches per epoch is fewer than train.evals_per_epoch "
                          f"{train.evals_per_epoch}; lower evals_per_epoch or {fix}")
    data = {"dir": str(tokdir), "fingerprint": meta["fingerprint"], "vocab_size": meta["vocab_size"],
            "train_tokens": n_train, "val_tokens": n_val}
    return RunConfig(name, model, train, data)


AUTO_DEVICE = "MAINRUN_AUTO_DEVICE"  # cuda|cpu: what `device: auto` means here; the Ray driver sets the cluster's


def cuda_visible() -> bool:
    if os.environ.get(AUTO_DEVICE):
        return os.environ[AUTO_DEVICE] == "cuda"
    if sys.platform == "linux" and not gpu_driver():
        return False  # what torch would say, without the 2 s of importing it at every change of params.yaml
    import torch
    return torch.cuda.is_available()


def gpu_driver() -> bool:
    """Whether this Linux machine has a CUDA (libcuda, from the NVIDIA driver) or ROCm (/dev/kfd) driver: without
    one, no torch build sees a GPU."""
    if os.path.exists("/dev/kfd"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


RUN_LIST = "runs.yaml"  # dvc.yaml's `vars`: the runs it makes a train stage for (configure writes it)


def runs_on(params: dict) -> dict[str, dict]:
    """{run: flat settings} of every run that trains, in order (all_runs'): a run another run stands for (same_as) is
    not one."""
    return {name: run.settings for name, run in all_runs(params).items() if run.trains}


def read_run_list(path=RUN_LIST) -> list[str]:
    try:
        return list(read_yaml(path).get("runs") or [])
    except FileNotFoundError:
        return []


def write_run_list(runs: list[str], path=RUN_LIST) -> None:
    Path(path).write_text("# Written by the configure stage from params.yaml: the runs dvc.yaml makes a train stage for.\n"
                          "# Do not edit; a run a switch adds trains in the same `dvc repro` (stage new_runs).\n"
                          f"runs: [{', '.join(json.dumps(r) for r in runs)}]\n")  # quoted: a run named `null` stays text


def configure(params: dict, tokenized_root, out_dir, run_list, cuda: bool | None = None) -> list[str]:
    """Write out_dir/<run>.json for every run that trains (params checked by mainrun.params.check_params), the run
    list dvc.yaml reads, and out_dir/new_runs.json: the runs that list did not hold before, whose stages this
    `dvc repro` does not have yet (stage new_runs trains them). Returns the runs that train. cuda: None detects it."""
    cuda = cuda_visible() if cuda is None else cuda
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    on, before = runs_on(params), read_run_list(run_list)
    for name, settings in on.items():
        cfg = resolve_run(name, settings, params, tokenized_root, cuda)
        write_json(out / f"{name}.json", {**cfg.to_dict(), "enabled": True, "study": settings["study"]})
    for name in before:  # this `dvc repro` still has their stages: each writes a marker (the run-cache keeps the run)
        if name not in on:
            write_json(out / f"{name}.json", {"name": name, "enabled": False})
    cap = {"lr_cap": lr_sweep.cap(params)} if lr_sweep.on(params) else {}  # the report marks a sweep that reached it
    write_json(out / "runs.json", {"runs": run_index(params), **cap})
    write_json(out / "new_runs.json", {"runs": [n for n in on if n not in before]})
    write_run_list(list(on), run_list)
    return list(on)


def run_index(params: dict) -> list[dict]:
    """For the report, each run's row in order: the variants (parent, chain, study, whether it runs), the seed
    repeats (the variant each repeats), then each study's rows while it is on: the attribution study's (step, part,
    mode), the scale study's (size, the run it scales), the lr sweep's (the run it sweeps, lr_factor, size), each with
    the run it is (same_as) where another run has its settings (mainrun/attribution.py, scale.py, lr_sweep.py)."""
    return [run.row for run in all_runs(params).values()]
