"""The attribution study (studies.attribution): which part of each bundled step does the work, at every size.

For a step of k parts: each part alone (on the step's parent: Δ alone = alone − parent) and the step less each part
(Δ dropped = whole − step-without-it), judged on the step's own metric against the size's seed noise. The
interaction is the step's Δ minus the sum of its parts' Δ alone; it is a sum of k + 2 distinct runs' values
(whole + (k−1)·parent − Σ alone), so its noise threshold is 2·σ·√(1 + (k−1)² + k). Decisions come from the index
rows' step, part and mode, and from settings (SAME_FUNCTION_KEYS), never from a run's name.
"""
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import SAME_FUNCTION_KEYS
from ..runlog import read_json
from .analyse import Comparison, compare, judge
from .load import CURVES, Run, flat_settings, read_curve


@dataclass(frozen=True)
class Part:
    name: str
    alone: Comparison  # parent -> the part alone
    dropped: Comparison | None  # the step without the part -> the whole step (its delta: what the part adds last)
    same_function: bool  # the part only changes how the same function is computed


@dataclass(frozen=True)
class Step:
    step: str
    parent: str
    size: str
    whole: Comparison  # parent -> the whole step
    parts: list
    interaction: float
    interaction_threshold: float | None

    @property
    def adds_up(self) -> str:
        verdict = judge(self.interaction, self.interaction_threshold)
        return {"within noise": "the parts add up", "not measured": "not measured"}.get(verdict, "the parts interact")


def load_part_runs(index: list[dict], configs_dir, metrics_dir, live_dir) -> dict[str, dict[str, Run]]:
    """{size (None: the default model): {part run name at the default size: Run}} for every part run that finished."""
    parts = {r["name"] for r in index if "step" in r}
    found = {}
    for row in index:
        size = row.get("size")
        base = row.get("variant") if size else row["name"]
        path = Path(metrics_dir) / f"{row['name']}.json"
        if base in parts and row["enabled"] and path.exists():
            config = read_json(Path(configs_dir) / f"{row['name']}.json")
            found.setdefault(size, {})[base] = Run(
                row["name"], flat_settings(config), row["parent"], None, "attribution", None, config["data"],
                read_json(path), {c: read_curve(live_dir, row["name"], c) for c in CURVES})
    return found


def steps_at(size: str, pool: dict[str, Run], rows: list[dict], noise: dict) -> list[Step]:
    """Every split step whose runs finished at one size. pool: {default-size name: Run} of the chain and the part
    runs at this size; rows: configs/runs.json's part rows (default size)."""
    by_step = {}
    for r in rows:
        by_step.setdefault((r["step"], r["parent"]), []).append(r)
    found = []
    for (step, parent), members in by_step.items():
        if step not in pool or parent not in pool:
            continue
        whole = compare(pool[parent], pool[step], noise)
        parts = []
        alone_rows = [m for m in members if m["mode"] == "alone"]
        for r in alone_rows:
            alone_run = pool.get(r["same_as"] or r["name"])
            drop = next((m for m in members if m["mode"] == "drop" and m["part"] == r["part"]), None)
            drop_run = drop and pool.get(drop["same_as"] or drop["name"])
            if alone_run is None:
                break
            alone = on_metric(compare(pool[parent], alone_run, noise), pool[parent], alone_run, whole.metric, noise)
            dropped = drop_run and on_metric(compare(drop_run, pool[step], noise), drop_run, pool[step], whole.metric,
                                             noise)
            parts.append(Part(r["part"], alone, dropped, bool(alone.keys) and set(alone.keys) <= SAME_FUNCTION_KEYS))
        if len(parts) < len(alone_rows) or not parts:  # a part's run has not finished: no sum over fewer parts
            continue
        k, sigma = len(parts), noise[whole.metric].sigma if noise[whole.metric] else None
        interaction = whole.delta - sum(p.alone.delta for p in parts)
        threshold = sigma and 2 * sigma * math.sqrt(1 + (k - 1) ** 2 + k)
        found.append(Step(step, parent, size, whole, parts, interaction, threshold))
    return found


SIGNIFICANT = ("better", "worse")


def on_metric(c: Comparison, ref: Run, run: Run, metric: str, noise: dict) -> Comparison:
    """c judged on the whole step's metric: a part that alone changes no counting key would otherwise be judged on
    the legacy figure beside a step judged on val_bpb, and the interaction would add the two."""
    if c.metric == metric or c.same:
        return c
    other = "val_loss" if metric == "val_bpb" else "val_bpb"
    delta, threshold = run.metrics[metric] - ref.metrics[metric], noise[metric].threshold if noise[metric] else None
    return replace(c, metric=metric, delta=delta, other=other, other_delta=run.metrics[other] - ref.metrics[other],
                   threshold=threshold, judgement=judge(delta, threshold))


def carriers(s: Step) -> str:
    """One line: which part or parts carry the step's effect."""
    effect = s.whole.judgement
    if effect not in SIGNIFICANT:
        moved = [p.name for p in s.parts if p.alone.judgement in SIGNIFICANT]
        return (f"The step is {effect}" + (f"; alone, {', '.join(moved)} moves the loss beyond noise, and the other "
                                           "parts cancel it" if moved else "; so is every part alone") + ".")
    alone = [p.name for p in s.parts if p.alone.judgement == effect]
    needed = [p.name for p in s.parts if p.dropped and p.dropped.judgement == effect]
    named = [n for n in alone if n in needed] or alone or (needed if len(needed) == 1 else [])
    if not named:
        return (f"No single part carries the step's effect ({effect}): it needs its parts together"
                + (f" (dropping any of {', '.join(needed)} removes it)." if needed else "."))
    how = ("alone and when dropped last" if set(named) <= set(alone) & set(needed) else
           "alone" if set(named) <= set(alone) else "when dropped last")
    return f"{' and '.join(named)} carr{'ies' if len(named) == 1 else 'y'} the step's effect ({effect}, {how})."


def defects(s: Step) -> list[str]:
    """A part that only changes how the same function is computed, yet moves the loss beyond noise."""
    out = []
    for p in s.parts:
        if p.same_function:
            if p.alone.judgement in SIGNIFICANT:
                out.append(f"**Possible defect:** {p.name} only changes how the same function is computed "
                           f"({', '.join(p.alone.keys)}), yet alone it is {p.alone.judgement} beyond noise.")
            elif p.alone.judgement == "within noise":
                out.append(f"{p.name} only changes how the same function is computed, and comes out inside noise, "
                           "as it must.")
    return out


def pools(index: list[dict], runs: dict, noise: dict, sizes: list, configs_dir, metrics_dir, live_dir) -> list:
    """[(size name, {default-size name: Run}, noise)] smallest first: the default model's, then each scale size's."""
    parts = load_part_runs(index, configs_dir, metrics_dir, live_dir)
    default = next((s.name for s in sizes if any(runs.get(n) is r for n, r in s.runs.items())), "default")
    if not sizes:
        return [(default, {**runs, **parts.get(None, {})}, noise)]
    return [(s.name, {**(runs if s.name == default else s.runs), **parts.get(None if s.name == default else s.name,
                                                                           {})}, s.noise) for s in sizes]


def study(index: list[dict], runs: dict, noise: dict, sizes: list, configs_dir, metrics_dir, live_dir) -> dict:
    """{step: [Step at each size where it finished]}, in the chain's order."""
    rows = [r for r in index if "step" in r]
    found = {}
    for size, pool, size_noise in pools(index, runs, noise, sizes, configs_dir, metrics_dir, live_dir):
        for s in steps_at(size, pool, rows, size_noise):
            found.setdefault(s.step, []).append(s)
    return found


def summary(found: dict) -> dict:
    def comp(c):
        return c and {"delta": round(c.delta, 6), "judgement": c.judgement, "metric": c.metric,
                      "threshold": c.threshold and round(c.threshold, 6), "cost": {k: [a, b] for k, a, b in c.cost}}
    return {step: {s.size: {"parent": s.parent, "whole": comp(s.whole), "interaction": round(s.interaction, 6),
                            "interaction_threshold": s.interaction_threshold and round(s.interaction_threshold, 6),
                            "adds_up": s.adds_up, "carriers": carriers(s),
                            "parts": {p.name: {"alone": comp(p.alone), "dropped": comp(p.dropped),
                                               "same_function": p.same_function} for p in s.parts}}
                   for s in at} for step, at in found.items()}
