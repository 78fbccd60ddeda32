"""Strict parsing of params.yaml: an unknown key, a wrong type or a bad value fails with one line naming it."""
import math
import re

from .config import (ALT_TOKENIZERS, DELTA_KEYS, EXEC_CONFIG_KEYS, FIELD_TYPES, TRAIN_KEYS, ConfigError,
                     check_seed, check_tokenizer_corpus, check_value, read_yaml, seed_run_name)
from .common import check_vocab_size
from .scale import scale_variants

SECTIONS = {  # section -> the keys it may hold
    "data": {"source": str, "num_titles": int, "val_frac": float, "tokenizer_corpus": str},
    "model": {k: FIELD_TYPES[k] for k in ("n_layer", "n_head", "d_model", "dropout")},
    "train": {k: FIELD_TYPES[k] for k in sorted(EXEC_CONFIG_KEYS | TRAIN_KEYS - {
        "tokenizer", "vocab_size", "optimizer", "lr", "weight_decay", "schedule", "restart_epochs", "seed"})},
    "noise": {"variants": list, "seeds": list},
    "scales": {"variants": list | str, "sizes": dict},  # variants: a list, or `chain`: the headline chain
    "attribution": {"groups": dict},
    "lr_sweep": {"factors": list, "variants": list | str, "parts": bool, "extend": dict, "extra": dict},
}
TOP_LEVEL = {"seed": int, "vocab_size": int, "vocab_sizes": list, **{k: dict for k in SECTIONS},
             "variants": dict, "studies": dict, "alt_tokenizers": dict}
REQUIRED = ("data", "noise", "scales", "attribution")  # sections whose every key a stage reads; model and train default to Mainrun's
REQUIRED_KEYS = {"lr_sweep": ("factors",)}  # the others default: variants chain, parts false, extend.cap LR_CAP, extra {}
LR_CAP = 256  # lr_sweep.extend.cap's default: python -m mainrun.lr_extend stops at cap x and 1/cap x a run's lr
NAME = re.compile(r"[A-Za-z0-9_-]+")  # a variant names files, folders and DVC stages
SIZE_NAME = re.compile(r"[A-Za-z0-9_]+")  # a size starts a run's name: <size>-<variant>
SIZE_KEYS = ("n_layer", "n_head", "d_model")
UNDO = "a failed -S stays in params.yaml: see docs/first-hour.md#a-bad-value"  # appended to a params error


def load_params(path="params.yaml") -> dict:
    params = read_yaml(path)  # YAML 1.2, as DVC reads it: the same file means the same to both
    check_params(params)
    return params


def _mapping(path: str, value, allowed) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"params.yaml: {path} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        where = f"top-level key '{unknown[0]}'" if path is None else f"key {path}.{unknown[0]}"
        raise ConfigError(f"params.yaml: unknown {where}; allowed: {', '.join(sorted(allowed))}")
    return value


def _list_of(path: str, kind: type, value) -> None:
    for i, item in enumerate(value):
        check_value(f"{path}[{i}]", kind, item)


def _distinct(path: str, values: list) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{path} lists {v!r} twice; list each once")
        seen.add(v)


def _check_vocab_sizes(params: dict) -> None:
    _list_of("vocab_sizes", int, params["vocab_sizes"])
    for v in params["vocab_sizes"]:
        if v < 1:
            raise ConfigError(f"vocab_sizes: {v} is not a vocabulary size; use positive sizes, e.g. [8000, 16000, 32000]")
    _distinct("vocab_sizes", params["vocab_sizes"])
    check_vocab_size(params)


def _check_names(params: dict) -> None:
    """Variant names become paths and stage names: plain words only; noise runs must not collide with them."""
    variants = params["variants"]
    for name in variants:
        if not (isinstance(name, str) and NAME.fullmatch(name)):
            raise ConfigError(f"variant name {name!r} may hold only letters, digits, '_' and '-' "
                              f"(it names files and DVC stages); rename it, e.g. {_suggest(name)!r}")
    noise = params["noise"]
    _list_of("noise.variants", str, noise["variants"])
    _list_of("noise.seeds", int, noise["seeds"])
    _distinct("noise.variants", noise["variants"])
    _distinct("noise.seeds", noise["seeds"])
    for i, seed in enumerate(noise["seeds"]):
        check_seed(f"noise.seeds[{i}]", seed)
    for name in noise["variants"]:
        if name not in variants:
            raise ConfigError(f"noise.variants: {name!r} is not a variant; choose from {', '.join(variants)}")
        for seed in noise["seeds"]:
            if seed_run_name(name, seed) in variants:
                raise ConfigError(f"variant name {seed_run_name(name, seed)!r} is also the name of {name!r} at "
                                  f"noise seed {seed}; rename the variant")


def _check_study_variants(params: dict, path: str, chosen, study: str) -> None:
    """A study's variant list (scales.variants, lr_sweep.variants): `chain` (the headline chain) or distinct variants
    that always run. While the study is off, a name no longer in variants only makes marker stages."""
    variants = params["variants"]
    if isinstance(chosen, str) and chosen != "chain":
        raise ConfigError(f"{path} must be a list of variants or `chain` (the headline chain), got {chosen!r}")
    if chosen == "chain":
        return
    _list_of(path, str, chosen)
    _distinct(path, chosen)
    for name in chosen:
        if name not in variants and params["studies"].get(study):
            raise ConfigError(f"{path}: {name!r} is not a variant; choose from {', '.join(variants)}, or write `chain` "
                              "(the headline chain)")
        if (variants.get(name) or {}).get("study"):
            raise ConfigError(f"{path}: {name!r} belongs to the opt-in study {variants[name]['study']!r}; the "
                              f"{study} study takes variants that always run")


def _check_scales(params: dict) -> None:
    """scales.variants train at every size of scales.sizes when studies.scale is true (see mainrun/scale.py)."""
    scales, variants = params["scales"], params["variants"]
    _check_study_variants(params, "scales.variants", scales["variants"], "scale")
    for size, spec in scales["sizes"].items():
        if not (isinstance(size, str) and SIZE_NAME.fullmatch(size)):
            raise ConfigError(f"scales.sizes: the size name {size!r} may hold only letters, digits and '_' (it starts "
                              f"run names, <size>-<variant>); rename it, e.g. {_suggest(size).replace('-', '_')!r}")
        _mapping(f"scales.sizes.{size}", spec, SIZE_KEYS)
        for key in SIZE_KEYS:
            if key not in spec:
                raise ConfigError(f"scales.sizes.{size} needs {key} (each size sets {', '.join(SIZE_KEYS)})")
            check_value(f"scales.sizes.{size}.{key}", int, spec[key])
            if spec[key] < 1:
                raise ConfigError(f"scales.sizes.{size}.{key} must be positive, got {spec[key]}")
        if spec["d_model"] % spec["n_head"]:
            raise ConfigError(f"scales.sizes.{size}: d_model {spec['d_model']} is not divisible by n_head "
                              f"{spec['n_head']}")
    if params["studies"].get("scale"):
        for name in params["noise"]["variants"]:
            if name not in scale_variants(params):
                raise ConfigError(f"noise.variants: {name!r} is not in scales.variants, so the scale study has no run "
                                  f"at each size for its seed repeats to repeat; add it to scales.variants")
    taken = set(variants) | {seed_run_name(v, s) for v in params["noise"]["variants"] for s in params["noise"]["seeds"]}
    for size in scales["sizes"]:
        for name in scale_variants(params):
            if f"{size}-{name}" in taken:
                raise ConfigError(f"variant name {f'{size}-{name}'!r} is also the name of {name!r} at size {size!r} of "
                                  "scales.sizes; rename the variant or the size")


def _check_factors(path: str, factors: list) -> None:
    """Learning-rate factors: positive finite numbers, each once, never 1 (the swept run itself)."""
    seen = {}
    for i, f in enumerate(factors):
        check_value(f"{path}[{i}]", float, f)
        if not (math.isfinite(f) and f > 0):
            raise ConfigError(f"{path}[{i}]: {f} is not a learning-rate factor; use positive numbers, e.g. "
                              "[0.25, 0.5, 2, 4]")
        if f == 1:
            raise ConfigError(f"{path}[{i}]: factor 1 is the swept run itself, always in the sweep and never trained "
                              "twice; leave it out")
        if float(f) in seen:
            raise ConfigError(f"{path} lists {seen[float(f)]!r} and {f!r}, one factor; list each once")
        seen[float(f)] = f


def _check_lr_sweep(params: dict) -> None:
    """lr_sweep: the learning-rate sweep's factors, variants and extension (mainrun/lr_sweep.py)."""
    spec, variants = params["lr_sweep"], params["variants"]
    _check_factors("lr_sweep.factors", spec["factors"])
    _check_study_variants(params, "lr_sweep.variants", spec.get("variants", "chain"), "lr_sweep")
    cap = _mapping("lr_sweep.extend", spec.get("extend", {}), {"cap"}).get("cap", LR_CAP)
    check_value("lr_sweep.extend.cap", float, cap)
    if not (math.isfinite(cap) and cap > 1):
        raise ConfigError(f"lr_sweep.extend.cap must be a number above 1 (the sweep extends up to cap times and "
                          f"1/cap times each run's lr), got {cap}")
    factors = {float(f) for f in spec["factors"]}
    for run, extra in spec.get("extra", {}).items():
        check_value(f"lr_sweep.extra.{run}", list, extra)
        _check_factors(f"lr_sweep.extra.{run}", extra)
        both = sorted(factors & {float(f) for f in extra})
        if both:
            raise ConfigError(f"lr_sweep.extra.{run} lists {both[0]:g}, which lr_sweep.factors has already; "
                              "drop it from lr_sweep.extra")


def _check_groups(groups: dict) -> None:
    """attribution.groups: {part name: [delta keys]}, each key in one group at most."""
    seen = {}
    for name, keys in groups.items():
        if not (isinstance(name, str) and SIZE_NAME.fullmatch(name)):
            raise ConfigError(f"attribution.groups: the group name {name!r} may hold only letters, digits and '_' (it "
                              f"names runs, <step>-alone-<part>); rename it, e.g. {_suggest(name).replace('-', '_')!r}")
        check_value(f"attribution.groups.{name}", list, keys)
        _list_of(f"attribution.groups.{name}", str, keys)
        if name in DELTA_KEYS and name not in keys:
            raise ConfigError(f"attribution.groups: the group {name!r} is named after a key it does not hold; name it "
                              f"after one of its keys ({', '.join(map(str, keys))}) or another word")
        for key in keys:
            if key not in DELTA_KEYS:
                raise ConfigError(f"attribution.groups.{name}: {key!r} is not a key a variant sets; choose from "
                                  f"{', '.join(sorted(DELTA_KEYS))}")
            if key in seen:
                raise ConfigError(f"attribution.groups: {key!r} is in both {seen[key]!r} and {name!r}; put it in one")
            seen[key] = name


def _suggest(name) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") or "my_variant"


def check_params(params: dict) -> None:
    _mapping(None, params, TOP_LEVEL)
    for key, kind in TOP_LEVEL.items():
        if key not in params:
            raise ConfigError(f"params.yaml: missing key '{key}' (see the committed params.yaml)")
        check_value(key, kind, params[key])
    for section, keys in SECTIONS.items():
        for key, value in _mapping(section, params[section], keys).items():
            check_value(f"{section}.{key}", keys[key], value)
        for key in keys if section in REQUIRED else REQUIRED_KEYS.get(section, ()):
            if key not in params[section]:
                raise ConfigError(f"params.yaml: missing key '{section}.{key}' (see the committed params.yaml)")
    check_seed("seed", params["seed"])
    _check_vocab_sizes(params)
    _check_names(params)
    check_tokenizer_corpus(params["data"]["tokenizer_corpus"])
    _check_groups(params["attribution"]["groups"])
    used_studies = {"scale", "attribution"}
    for name, delta in params["variants"].items():
        for key, value in _mapping(f"variants.{name}", delta or {}, DELTA_KEYS | {"from", "study"}).items():
            if key == "study":
                used_studies.add(value)
            elif key != "from" and not (key == "vocab_size" and value == "@vocab_size"):
                check_value(f"variants.{name}.{key}", FIELD_TYPES[key], value)
    for kind, spec in _mapping("alt_tokenizers", params["alt_tokenizers"], ALT_TOKENIZERS).items():
        _mapping(f"alt_tokenizers.{kind}", spec, {"study", "extra"})
        if "study" not in spec:
            raise ConfigError(f"alt_tokenizers.{kind} needs `study:` (the study whose switch builds it)")
        used_studies.add(spec["study"])
        _list_of(f"alt_tokenizers.{kind}.extra", str, spec.get("extra", []))
    missing = sorted(used_studies - set(params["studies"]))
    if missing:
        raise ConfigError(f"study '{missing[0]}' is used in params.yaml but has no switch: add studies.{missing[0]}: false")
    for study, on in _mapping("studies", params["studies"], used_studies | {"lr_sweep"}).items():
        check_value(f"studies.{study}", bool, on)  # lr_sweep may be left out: then it is off
    _check_scales(params)
    _check_lr_sweep(params)
