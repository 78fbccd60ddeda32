"""Resolve params.yaml into one config file per run, so DVC's content hashes decide exactly what re-trains.

A run is a variant, a variant at an extra seed from `noise`, or one of those at another size (mainrun/scale.py).
Its file holds the resolved model and training settings and the fingerprint of the tokenized data it reads: a file
that did not change means nothing to redo.
"""
import os
from dataclasses import replace
from pathlib import Path

from .config import (ALT_TOKENIZERS, ConfigError, RunConfig, is_enabled, resolve_variants, seed_run_name,
                     split_settings, tokenized_name, variant_parents)
from .runlog import write_json
from .scale import scale_on, scale_runs
from .tokenized import load_meta


def tokenized_dir(root, kind: str, vocab_size: int) -> Path:
    """bpe-<vocab> for each BPE size; an opt-in tokenizer, built at vocab_size only, has one folder whatever the
    size, so changing vocab_size never leaves its output without a hash in dvc.lock (DVC warned of each)."""
    return Path(root) / (kind if kind in ALT_TOKENIZERS else tokenized_name(kind, vocab_size))


def run_settings(params: dict) -> dict[str, dict]:
    """Every run's flat settings: the variants, then each noise variant (check_params made sure it exists) at each
    extra seed."""
    variants = resolve_variants(params)
    runs = dict(variants)
    for name in params["noise"]["variants"]:
        for seed in params["noise"]["seeds"]:
            if seed == variants[name]["seed"]:  # the same run again: its spread of 0 would pass for no noise
                raise ConfigError(f"noise.seeds: {seed} is the seed {name!r} already trains with, so its repeat would "
                                  f"measure no noise; list other seeds, e.g. [{seed + 1}, {seed + 2}]")
            runs[seed_run_name(name, seed)] = {**variants[name], "seed": seed}
    return runs


def check_runs(params: dict) -> None:
    """Every run that is on resolves to a valid model and training config (ranges, combinations, a vocabulary that
    is built): configure's checks that need no tokenized data, named by the first run the bad value reaches."""
    for name, settings in run_settings(params).items():
        if not is_enabled(settings, params):
            continue
        try:
            split_settings({k: v for k, v in settings.items() if k != "study"})
        except ConfigError as e:
            raise ConfigError(f"variant '{name}': {e}") from None
        if settings["tokenizer"] == "bpe" and settings["vocab_size"] not in params["vocab_sizes"]:
            raise ConfigError(f"variant '{name}' uses vocab_size {settings['vocab_size']}, which is not in "
                              f"vocab_sizes {params['vocab_sizes']}: add it to vocab_sizes so the tokenize stage "
                              "builds it")


def resolve_run(name: str, settings: dict, params: dict, tokenized_root, cuda: bool = False) -> RunConfig:
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
    if (tokdir / "skipped.json").exists():
        study = params["alt_tokenizers"][train.tokenizer]["study"]
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
    import torch
    return torch.cuda.is_available()


def configure(params: dict, tokenized_root, out_dir, cuda: bool | None = None) -> dict[str, bool]:
    """Write out_dir/<run>.json for every run of params (checked by mainrun.params.check_params); returns
    {run: enabled}. cuda: None detects it."""
    cuda = cuda_visible() if cuda is None else cuda
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enabled, runs = {}, run_settings(params)
    scaled = scale_runs(params, runs)
    for name, settings in {**runs, **{n: r.settings for n, r in scaled.items()}}.items():
        same = scaled[name].same_as if name in scaled else None
        enabled[name] = (is_enabled(settings, params) if name not in scaled else scale_on(params)) and same is None
        if enabled[name]:
            cfg = resolve_run(name, {k: v for k, v in settings.items() if k != "study"}, params, tokenized_root, cuda)
            write_json(out / f"{name}.json", {**cfg.to_dict(), "enabled": True, "study": settings["study"]})
        else:  # an opt-in study that is off, or a size that is the default run: its stages write a marker
            write_json(out / f"{name}.json", {"name": name, "enabled": False, "study": settings["study"],
                                              **({"same_as": same} if same else {})})
    write_json(out / "runs.json", {"runs": run_index(params, runs, scaled)})
    return enabled


def run_index(params: dict, settings: dict[str, dict] | None = None, scaled: dict | None = None) -> list[dict]:
    """For the report, each run in order: its parent, its chain (a `from:` starts one), its study, whether it
    runs, and for a seed run the variant it repeats; then, when studies.scale is on, the scale runs, each with its
    size, the variant it scales and the default run it is (same_as) where it is one. settings, scaled:
    run_settings(params) and scale_runs(params, settings), when already computed."""
    if "runs" in params["variants"]:
        raise ConfigError("a variant may not be called 'runs': configs/runs.json lists every run")
    settings, parents = settings or run_settings(params), variant_parents(params)
    index, group = [], -1
    for name, parent in parents.items():
        group += not index or "from" in (params["variants"][name] or {})
        index.append({"name": name, "parent": parent, "group": group, "repeat_of": None})
    for variant in params["noise"]["variants"]:
        index += [{"name": seed_run_name(variant, s), "parent": None, "group": None, "repeat_of": variant}
                  for s in params["noise"]["seeds"]]
    for row in index:
        row.update(study=settings[row["name"]]["study"], enabled=is_enabled(settings[row["name"]], params))
    if not scale_on(params):  # its rows only when it runs: runs.json, and so the report, as without the study
        return index
    scaled = scale_runs(params, settings) if scaled is None else scaled
    index += [{"name": n, "parent": r.parent, "group": None, "repeat_of": r.repeat_of, "study": "scale",
               "enabled": scale_on(params) and r.same_as is None, "size": r.size,
               "variant": r.variant, "same_as": r.same_as} for n, r in scaled.items()]
    return index
