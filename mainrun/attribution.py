"""The attribution study (studies.attribution): every bundled step of the headline chain, split into its parts.

A step is a variant of the headline chain; its parts are the keys of its delta, where the keys that params.yaml's
`attribution.groups` puts together count as one part. For a step of two or more parts, each part is trained
  alone:    on the step's parent, with that part and nothing else of the step  (`r4_2_rope-alone-pos`)
  dropped:  as the whole step, less that part                                  (`r4_2_rope-drop-pos`)
A run whose settings another run already has is that run (same_as): it is not trained twice. With the scale study
on, every part run is trained at every size as well (`small-r4_2_rope-alone-pos`).
"""
from dataclasses import dataclass

from .config import ConfigError, is_enabled, variant_parents
from .study import Run, identity, study_run

MODES = ("alone", "drop")


def on(params: dict) -> bool:
    return bool(params["studies"].get("attribution", False))


def part_run_name(step: str, mode: str, part: str) -> str:
    return f"{step}-{mode}-{part}"


def delta_of(params: dict, variant: str) -> dict:
    """A step's own settings (a step of the headline chain has no `from:` or `study:`: the chain stops before them)."""
    return params["variants"][variant] or {}


def parts_of(delta: dict, groups: dict[str, list]) -> dict[str, tuple]:
    """{part name: its keys}: each group whose keys the delta sets (by the group's name), then every other key alone
    (by its own name), in the delta's order."""
    parts = {}
    for key in delta:
        group = next((g for g, keys in groups.items() if key in keys), None)
        if group is None:
            parts[key] = (key,)
        else:
            parts.setdefault(group, tuple(k for k in delta if k in groups[group]))
    return parts


def headline_chain(params: dict) -> list[str]:
    """The variants from the first down to the one before the first `from:` or opt-in study."""
    chain = []
    for name, delta in params["variants"].items():
        if chain and ("from" in (delta or {}) or "study" in (delta or {})):
            break
        chain.append(name)
    return chain


def chain_or(chosen, params: dict) -> list[str]:
    """A params list of variants, where the word `chain` stands for the headline chain (a new step joins by itself)."""
    return headline_chain(params) if chosen == "chain" else chosen


def split_steps(params: dict) -> dict[str, dict[str, tuple]]:
    """{step: {part: keys}} for every step of the headline chain with two or more parts."""
    parents, groups = variant_parents(params), params["attribution"]["groups"]
    steps = {}
    for step in headline_chain(params):
        parts = parts_of(delta_of(params, step), groups)
        if parents[step] is not None and len(parts) > 1:
            steps[step] = parts
    return steps


@dataclass(frozen=True)
class PartRun:
    settings: dict  # flat settings, study 'attribution'
    step: str  # the variant whose delta is split
    part: str
    mode: str  # alone | drop
    parent: str  # the step's parent run: what `alone` adds to
    same_as: str | None  # an earlier run with exactly these settings


def attribution_runs(params: dict, runs: dict[str, dict]) -> dict[str, PartRun]:
    """Every part run, switched on or off; runs: each default run's flat settings (configure.run_settings)."""
    parents, found = variant_parents(params), {}
    known = {name: identity(s) for name, s in runs.items() if is_enabled(s, params)}  # the runs that train
    for step, parts in split_steps(params).items():
        parent, whole = runs[parents[step]], runs[step]
        for mode in MODES:
            for part, keys in parts.items():
                base, source = (parent, whole) if mode == "alone" else (whole, parent)
                settings = {**base, **{k: source[k] for k in keys}, "study": "attribution"}
                same = next((n for n, ident in known.items() if ident == identity(settings)), None)
                name = part_run_name(step, mode, part)
                if name in runs:
                    raise ConfigError(f"variant name {name!r} is also the name of the attribution study's run of "
                                      f"{step!r} {mode} {part!r}; rename the variant")
                found[name] = PartRun(settings, step, part, mode, parents[step], same)
                if same is None:
                    known[name] = identity(settings)
    return found


def runs(params: dict, found: dict[str, Run]) -> dict[str, Run]:
    """The study's runs (a generator, not an axis): every part run of the runs found so far, as rows."""
    parts = attribution_runs(params, {name: run.settings for name, run in found.items()})
    return {name: study_run(name, p.settings, "attribution", p.same_as, parent=p.parent, step=p.step, part=p.part,
                            mode=p.mode) for name, p in parts.items()}
