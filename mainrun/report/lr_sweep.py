"""The learning-rate sweep (studies.lr_sweep): does each verdict survive when each side gets its own tuned lr?

Each swept variant ran at its lr times each factor of lr_sweep.factors; factor 1 is the variant itself. configs/
runs.json gives each sweep run's row: its lr_factor, the variant it sweeps (at its size) and its size. A step is a
swept variant whose parent (its Run's parent link) was swept at the same size; it is judged on the metric
analyse.compare picks for it, against that size's seed noise, at the default lr and best against best. Every
decision comes from rows, parent links, settings and numbers, never from a run's name.
"""
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from ..params import LR_CAP as CAP  # the self-extending sweep's default cap: it stops at cap x either way
from ..runlog import read_json
from .analyse import Comparison, chains, compare, judge, only_with, only_with_verdict
from .load import Run, flat_settings

OUTCOMES = {  # (verdict at the default lr, verdict best against best) -> the named outcome
    ("better", "better"): "holds", ("worse", "worse"): "holds", ("within noise", "within noise"): "holds",
    ("better", "within noise"): "gain vanishes", ("worse", "within noise"): "harm vanishes",
    ("better", "worse"): "reverses", ("worse", "better"): "reverses",
    ("within noise", "better"): "appears", ("within noise", "worse"): "appears"}


def outcome(default: str, tuned: str) -> str:
    """The named outcome of a step; a judgement outside better/worse/within noise (not measured, same run) is kept:
    pair judges both sides against one threshold and one same-run check, so the two then are one word."""
    return OUTCOMES.get((default, tuned), tuned)


@dataclass(frozen=True)
class Point:
    factor: float  # its lr over the variant's own
    lr: float
    run: Run


@dataclass(frozen=True)
class Sweep:
    """One variant at one size, at every lr that finished (factor 1: the variant itself), by factor."""
    variant: str
    points: tuple

    def losses(self, metric: str) -> dict[float, float]:
        return {p.factor: p.run.metrics[metric] for p in self.points}

    def best(self, metric: str) -> Point:
        return min(self.points, key=lambda p: p.run.metrics[metric])

    def edge(self, metric: str) -> str | None:
        """'smallest' or 'largest' where the best lr is the sweep's end: the optimum may lie beyond it."""
        f = self.best(metric).factor
        return "smallest" if f == self.points[0].factor else "largest" if f == self.points[-1].factor else None

    def beyond(self, metric: str, cap: float) -> float | None:
        """The factor to add past the edge (×2 or ÷2), or None where the edge is interior or at the cap."""
        edge, f = self.edge(metric), self.best(metric).factor
        if edge is None or self.capped(metric, cap):
            return None
        return f * 2 if edge == "largest" else f / 2

    def capped(self, metric: str, cap: float) -> bool:
        """The best is at an edge that reached the cap (cap× or 1/cap×): the sweep may extend no further."""
        edge, f = self.edge(metric), self.best(metric).factor
        return edge is not None and (f >= cap if edge == "largest" else f <= 1 / cap)

    def flat(self, metric: str, threshold: float | None) -> list[float]:
        """The other factors whose loss lies within noise of the best (a flat bottom)."""
        if threshold is None:
            return []
        best = self.best(metric)
        return [p.factor for p in self.points if p is not best and p.run.metrics[metric] - best.run.metrics[metric]
                <= threshold]

    def sensitivity(self, metric: str, factors=None) -> float:
        """Wortsman et al.'s lr sensitivity: the mean, over the sweep (or over `factors` of it), of the loss above
        the best of those points."""
        losses = [v for f, v in self.losses(metric).items() if factors is None or f in factors]
        return statistics.mean(losses) - min(losses)


def sensitivity_threshold(sigma: float | None, n: int) -> float | None:
    """The noise on the difference of two variants' sensitivities over the same n lrs. One variant's is
    mean(L) - L_best; with independent noise σ on each run and the best taken as fixed, its variance is
    σ²(1 - 1/n), so the difference's is 2σ²(1 - 1/n): judged like every verdict, at 2 standard deviations."""
    return None if sigma is None or n < 2 else 2 * sigma * math.sqrt(2 * (1 - 1 / n))


@dataclass(frozen=True)
class Pair:
    """Two swept variants, ref -> run (a step, or the base and end of an 'only with' chain), at one size."""
    ref: Sweep
    run: Sweep
    default: Comparison  # at each variant's own lr
    metric: str
    ref_best: Point
    run_best: Point
    delta: float  # best against best: run's best minus ref's best
    threshold: float | None
    judgement: str
    outcome: str
    edges: dict  # {variant: (edge, factor to add or None at the cap)} for a side whose best is at its sweep's edge
    flat: dict  # {variant: [factors within noise of its best]}
    sensitivity: tuple  # (ref's, run's) over the factors both have
    sensitivity_threshold: float | None
    basin: str  # widens, narrows, no change shown, not measured

    @property
    def bound(self) -> str | None:
        """What an edge makes of the best-against-best Δ: the side at the edge might do better beyond it."""
        at = {self.ref.variant, self.run.variant} & set(self.edges)
        if not at:
            return None
        if len(at) == 2:
            return "no bound either way (both sides' best lie at an edge)"
        return ("an upper bound (the run side might do better beyond its edge)" if self.run.variant in at else
                "a lower bound (the reference side might do better beyond its edge)")


def pair(ref: Sweep, run: Sweep, noise: dict, cap: float) -> Pair:
    default = compare(at_one(ref), at_one(run), noise)
    metric = default.metric
    threshold = noise[metric].threshold if noise.get(metric) else None
    a, b = ref.best(metric), run.best(metric)
    delta = b.run.metrics[metric] - a.run.metrics[metric]
    judgement = "same run" if default.same else judge(delta, threshold)
    edges = {s.variant: (s.edge(metric), s.beyond(metric, cap)) for s in (ref, run) if s.edge(metric)}
    common = set(ref.losses(metric)) & set(run.losses(metric))
    sens = (ref.sensitivity(metric, common), run.sensitivity(metric, common))
    sigma = noise[metric].sigma if noise.get(metric) else None
    s_threshold = sensitivity_threshold(sigma, len(common))
    basin = judge(sens[1] - sens[0], s_threshold)
    basin = {"better": "widens", "worse": "narrows", "within noise": "no change shown"}.get(basin, basin)
    return Pair(ref, run, default, metric, a, b, delta, threshold, judgement, outcome(default.judgement, judgement),
                edges, {s.variant: s.flat(metric, threshold) for s in (ref, run)}, sens, s_threshold, basin)


def at_one(sweep: Sweep) -> Run:
    return next(p.run for p in sweep.points if p.factor == 1)


@dataclass(frozen=True)
class SizeSweep:
    size: str
    sweeps: dict  # {variant at this size: Sweep}, in the index's order
    metrics: dict  # {variant: the metric its own step is judged on}
    steps: list  # [(chain label, Pair)]
    noise: dict
    default: bool  # the default model's size (its runs are the default runs)


def sweep_rows(index: list[dict]) -> list[dict]:
    return [r for r in index if "lr_factor" in r]


def load_runs(index: list[dict], known: dict[str, Run], configs_dir, metrics_dir) -> dict[str, Run]:
    """Every finished run a sweep row names (itself, the variant it sweeps) that `known` does not hold."""
    rows = {r["name"]: r for r in index}
    names = {n for r in sweep_rows(index) for n in (r["name"], r["variant"]) if n not in known}
    found = {}
    for name in names:
        path, row = Path(metrics_dir) / f"{name}.json", rows.get(name, {})
        if row.get("enabled", True) and not row.get("same_as") and path.exists():
            config = read_json(Path(configs_dir) / f"{name}.json")
            found[name] = Run(name, flat_settings(config), row.get("parent"), None, row.get("study"), None,
                              config["data"], read_json(path))
    return found


def study(index: list[dict], pool: dict[str, Run], runs: dict[str, Run], noise: dict, sizes: list,
          cap: float = CAP) -> list[SizeSweep]:
    """Every size's sweeps and steps, smallest first; [] when no sweep row is in the index. pool: every finished
    run by name; runs: the default runs; sizes: scale.read_scale's ([] without the scale study)."""
    rows = sweep_rows(index)
    if not rows:
        return []
    alias = {r["name"]: r["same_as"] for r in index if r.get("same_as")}

    def resolve(name):
        for _ in range(len(alias) + 1):
            name = alias.get(name, name)
        return name
    default = next((s.name for s in sizes if any(runs.get(n) is r for n, r in s.runs.items())), "default")
    noises = {s.name: s.noise for s in sizes} | {default: noise}
    order = [s.name for s in sizes] or [default]
    by_size = {}
    for r in rows:
        size = default if r["size"] is None else r["size"]
        if size not in noises:  # a size whose runs did not load
            continue
        variant, run = resolve(r["variant"]), pool.get(resolve(r["name"]))
        if variant in pool and run is not None and run.metrics:
            points = by_size.setdefault(size, {}).setdefault(variant, {1.0: Point(1.0, pool[variant].settings["lr"],
                                                                                    pool[variant])})
            points.setdefault(float(r["lr_factor"]), Point(float(r["lr_factor"]), run.settings["lr"], run))
    chain_of = chain_labels(index, runs)
    found = []
    for size in (s for s in order if s in by_size):
        sweeps = {v: Sweep(v, tuple(sorted(ps.values(), key=lambda p: p.factor)))  # factor 1 and a finished one
                  for v, ps in by_size[size].items()}
        steps = [(chain_of.get(v), pair(sweeps[resolve(pool[v].parent)], sweeps[v], noises[size], cap))
                 for v in sweeps if pool[v].parent and resolve(pool[v].parent) in sweeps]
        found.append(SizeSweep(size, sweeps, own_metrics(sweeps, steps), steps, noises[size], size == default))
    return found


def chain_labels(index: list[dict], runs: dict[str, Run]) -> dict[str, str]:
    """{run name at any size: the chain its default-size variant belongs to}: 'the headline chain', 'the chain on
    X' (X: the base its first variant stands on), the attribution study's part runs, or other swept variants."""
    groups, parts = chains(runs), {r["name"] for r in index if "step" in r}
    label = {g: "the headline chain" if g == 0 else f"the chain on {runs[names[0]].parent}"
             for g, names in groups.items()}
    of = {n: label[g] for g, names in groups.items() for n in names}
    found = {}
    for r in index:
        base = r.get("variant", r["name"])  # a scale or sweep row's: the run it scales or sweeps
        found[r["name"]] = of.get(base) or ("the attribution study's part runs" if base in parts else
                                            "other swept variants")
    return found


def own_metrics(sweeps: dict, steps: list) -> dict[str, str]:
    """Each variant's metric: that of the step leading to it, else of the first step it leads from, else legacy."""
    into = {p.run.variant: p.metric for _, p in steps}
    out = {}
    for _, p in steps:
        out.setdefault(p.ref.variant, p.metric)
    return {v: into.get(v, out.get(v, "val_loss")) for v in sweeps}


def only_with_tuned(found: list[SizeSweep], runs: dict[str, Run], noise: dict, cap: float = CAP) -> dict | None:
    """'Only with AdamW?' again with each base and end at its best lr (the default size): None where no such chain's
    base and end were both swept."""
    at = next((s for s in found if s.default), None)
    stacked = only_with(runs, noise)
    if at is None or not stacked or any(c.ref not in at.sweeps or c.run not in at.sweeps for c in stacked):
        return None
    pairs = [pair(at.sweeps[c.ref], at.sweeps[c.run], noise, cap) for c in stacked]
    tuned = [replace(c, judgement=p.judgement) for c, p in zip(stacked, pairs)]
    return {"pairs": pairs, "default": only_with_verdict(stacked, runs), "tuned": only_with_verdict(tuned, runs)}
