"""Seed noise (always on): an axis of seeds. Each variant of noise.variants again at each seed of noise.seeds
(`r1_adamw-seed1338`); the report judges every difference against their spread."""
from .config import ConfigError, is_enabled, seed_run_name
from .study import Run


def on(params: dict) -> bool:
    return True


def runs(params: dict, found: dict[str, Run]) -> dict[str, Run]:
    """Each repeat, a variant's seeds together (mainrun.params checked that noise.variants are variants)."""
    added = {}
    for name in params["noise"]["variants"]:
        for seed in params["noise"]["seeds"]:
            if seed == found[name].settings["seed"]:  # the same run again: its spread of 0 would pass for no noise
                raise ConfigError(f"noise.seeds: {seed} is the seed {name!r} already trains with, so its repeat would "
                                  f"measure no noise; list other seeds, e.g. [{seed + 1}, {seed + 2}]")
            settings, run = {**found[name].settings, "seed": seed}, seed_run_name(name, seed)
            row = {"name": run, "parent": None, "group": None, "repeat_of": name, "study": settings["study"],
                   "enabled": is_enabled(settings, params)}
            added[run] = Run(settings, row, "noise", name)
    return added
