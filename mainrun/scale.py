"""The scale study (studies.scale): scales.variants and the noise repeats, again at every size of scales.sizes.

Size S of run R is the run `S-R` (`small-r1_adamw`, `small-r1_adamw-seed1338`): its own config, train and evaluate
stages, so DVC caches each (run, size) on its own. Where a size gives a run the settings it already has (the
default model's size), `S-R` is R itself: its stages write a marker naming R and nothing trains twice.
"""
from dataclasses import dataclass

from .attribution import headline_chain
from .config import seed_run_name, variant_parents


def scale_on(params: dict) -> bool:
    """studies.scale (mainrun.params requires the switch; a params dict built by hand may leave it out: off)."""
    return bool(params["studies"].get("scale", False))


def scale_variants(params: dict) -> list[str]:
    """scales.variants; `chain` (the committed value) is the headline chain, so a new step joins the study by itself."""
    variants = params["scales"]["variants"]
    return headline_chain(params) if variants == "chain" else variants


def scale_run_name(size: str, run: str) -> str:
    return f"{size}-{run}"


@dataclass(frozen=True)
class ScaleRun:
    settings: dict  # the run's flat settings at this size, study 'scale'
    size: str
    variant: str  # the variant it scales (a seed repeat's too)
    parent: str | None  # the scale run of the variant's parent at this size, where that one is in the study
    repeat_of: str | None  # a seed repeat: the scale run it repeats
    same_as: str | None  # the default run with exactly these settings, if any


def scale_runs(params: dict, runs: dict[str, dict], parts: dict | None = None) -> dict[str, ScaleRun]:
    """Every scale run, switched on or off, in size order; runs: every default run's flat settings (run_settings).
    parts: the attribution study's part runs (mainrun.attribution) that train, when that study is on: each is
    scaled too, its parent the scale run of its step's parent. While the study is off, scales.variants may name a
    variant that is gone, and noise.variants one outside scales.variants (mainrun.params checks it is on)."""
    scales, noise = params["scales"], params["noise"]
    parents = variant_parents(params)
    bases = [(v, v, None) for v in scale_variants(params)]
    bases += [(v, seed_run_name(v, s), v) for v in noise["variants"] for s in noise["seeds"]]
    runs = {**runs, **{name: p.settings for name, p in (parts or {}).items()}}
    parents = {**parents, **{name: p.parent for name, p in (parts or {}).items()}}
    bases += [(name, name, None) for name in parts or {}]
    in_study = set(scale_variants(params)) | set(parts or {})
    found = {}
    for size, spec in scales["sizes"].items():
        for variant, base, repeat_of in bases:
            if base not in runs:
                found[scale_run_name(size, base)] = ScaleRun({"study": "scale"}, size, variant, None, None, None)
                continue
            settings = {**runs[base], **spec, "study": "scale"}
            same = all(settings[k] == v for k, v in runs[base].items() if k != "study")
            parent = parents[variant] if repeat_of is None else None
            found[scale_run_name(size, base)] = ScaleRun(
                settings, size, variant, scale_run_name(size, parent) if parent in in_study else None,
                repeat_of and scale_run_name(size, repeat_of), base if same else None)
    return found
