"""The learning-rate sweep (studies.lr_sweep): an axis of lr factors. Each swept run again at its own lr times each
factor of lr_sweep.factors (`r1_adamw-lr0.25`, `small-r1_adamw-lr4`); factor 1 is the swept run itself.

Swept: lr_sweep.variants (`chain`, the default: the headline chain, so a step added to it joins by itself), with
lr_sweep.parts the runs the attribution study generates too, and every run an axis after noise made of one of those
(the scale study's sizes); never a seed repeat: a sweep's noise is its size's seed noise. lr_sweep.extra adds factors
to one swept run (python -m mainrun.lr_extend writes them). A run whose settings another run has is that run.
"""
from .attribution import chain_or
from .config import ConfigError
from .study import Run, identity, study_run, trained_as


def on(params: dict) -> bool:
    """studies.lr_sweep; a params.yaml without the switch has it off (mainrun.params allows it to be left out)."""
    return bool(params["studies"].get("lr_sweep", False))


def cap(params: dict) -> float:
    """lr_sweep.extend.cap: python -m mainrun.lr_extend stops at cap x and 1/cap x a run's lr (the report marks it)."""
    from .params import LR_CAP
    return params["lr_sweep"].get("extend", {}).get("cap", LR_CAP)


def factor_name(factor: float) -> str:
    """2 -> '2', 0.25 -> '0.25': the shortest text that reads back as the same number."""
    return str(int(factor)) if float(factor).is_integer() else repr(float(factor))


def sweep_run_name(run: str, factor: float) -> str:
    return f"{run}-lr{factor_name(factor)}"


def swept_variants(params: dict) -> list[str]:
    return chain_or(params["lr_sweep"].get("variants", "chain"), params)


def swept(params: dict, found: dict[str, Run]) -> list[Run]:
    """The runs it sweeps that train, in the order found."""
    variants, parts = set(swept_variants(params)), params["lr_sweep"].get("parts", False)
    picked = {}
    for name, run in found.items():
        if run.trains and ((run.made_by is None and name in variants) or (run.made_by == "attribution" and parts)
                           or (run.made_by not in (None, "noise") and run.of in picked)):
            picked[name] = run
    return list(picked.values())


def runs(params: dict, found: dict[str, Run]) -> dict[str, Run]:
    """Every swept run at each of its factors, smallest first: lr_sweep.factors and its lr_sweep.extra."""
    spec, known, added = params["lr_sweep"], trained_as(found), {}
    bases = swept(params, found)
    extra = spec.get("extra", {})
    stray = sorted(set(extra) - {b.name for b in bases})
    if stray:
        raise ConfigError(f"lr_sweep.extra: {stray[0]!r} is not a run the sweep trains; name one of "
                          f"{', '.join(b.name for b in bases) or 'none (the sweep trains no run)'}")
    for base in bases:
        for factor in sorted(spec["factors"] + extra.get(base.name, [])):
            name = sweep_run_name(base.name, factor)
            settings = {**base.settings, "lr": base.settings["lr"] * factor, "study": "lr_sweep"}
            same = known.setdefault(identity(settings), name)
            added[name] = study_run(name, settings, "lr_sweep", None if same == name else same, base.name,
                                    variant=base.name, lr_factor=float(factor), size=base.row.get("size"))
    return added
