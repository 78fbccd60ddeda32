"""The scale study (studies.scale): an axis of sizes. scales.variants, their seed repeats and every run a study
before it added that trains (the attribution study's part runs), again at every size of scales.sizes.

Size S of run R is the run `S-R` (`small-r1_adamw`, `small-r1_adamw-seed1338`): its own config and train stage, so
DVC caches each (run, size) on its own. Where a size gives a run the settings it already has (the default model's
size), `S-R` is R itself (same_as): it is not a stage and nothing trains twice.
"""
from .attribution import chain_or
from .study import Run, study_run


def on(params: dict) -> bool:
    """studies.scale (mainrun.params requires the switch; a params dict built by hand may leave it out: off)."""
    return bool(params["studies"].get("scale", False))


def scale_variants(params: dict) -> list[str]:
    """scales.variants; `chain` (the committed value) is the headline chain, so a new step joins the study by itself."""
    return chain_or(params["scales"]["variants"], params)


def scale_run_name(size: str, run: str) -> str:
    return f"{size}-{run}"


def sized(params: dict, found: dict[str, Run]) -> list[Run]:
    """What the axis multiplies, in this order: scales.variants (mainrun.params checks they are variants while the
    study is on), the seed repeats (of variants in scales.variants, checked too), the runs of earlier studies."""
    return ([found[v] for v in scale_variants(params)] +
            [r for r in found.values() if r.made_by == "noise"] +
            [r for r in found.values() if r.made_by not in (None, "noise") and r.trains])


def runs(params: dict, found: dict[str, Run]) -> dict[str, Run]:
    """Every scale run, size by size. Its parent is its base's parent at the same size where that one is sized too;
    variant: the run it scales (a seed repeat: the variant it repeats)."""
    bases = sized(params, found)
    in_study = {r.name for r in bases}
    added = {}
    for size, spec in params["scales"]["sizes"].items():
        for base in bases:
            settings = {**base.settings, **spec, "study": "scale"}
            same = all(settings[k] == v for k, v in base.settings.items() if k != "study")
            parent, repeat_of = base.row["parent"], base.row["repeat_of"]
            name = scale_run_name(size, base.name)
            added[name] = study_run(name, settings, "scale", base.name if same else None, base.name,
                                    parent=scale_run_name(size, parent) if parent in in_study else None,
                                    repeat_of=repeat_of and scale_run_name(size, repeat_of), size=size,
                                    variant=repeat_of or base.name)
    return added
