"""Pure analysis of loaded runs: what differs between two runs, which metric can judge it, against which noise.

Every decision here comes from resolved settings and numbers, never from a run's name.
The noise rule: sigma is the seed-to-seed standard deviation pooled over the noise variants' repeats; a
difference between two single runs has a standard deviation of sqrt(2)*sigma, so it counts as real only when
|delta| > 2*sqrt(2)*sigma (about a 95% two-sided test).
"""
import math
import statistics
from dataclasses import dataclass

from ..config import EXECUTION_KEYS  # where and how precisely a run ran: never a difference between settings
from .load import Run

# These change which tokens the legacy figure counts and how many there are: across them only bits per byte compares.
COUNTING_KEYS = ("tokenizer", "vocab_size", "block_size")
METRICS = ("val_loss", "val_bpb")
RULE = "|Δ| > 2·√2·σ"
COST = ("params", "flops_per_token", "train_seconds")  # what a step costs, beside its verdict


def changed(a: dict, b: dict) -> list[str]:
    """The settings, not execution keys, in which a and b differ."""
    return sorted(k for k in a.keys() | b.keys() if k not in EXECUTION_KEYS and a.get(k) != b.get(k))


def same_computation(a: Run, b: Run) -> str | None:
    """Why a and b are the same run under two names, or None: equal settings, and the same tokenized data even
    where the vocabulary asked for differs (both tokenizers stopped at the same size)."""
    differ = [k for k in a.settings.keys() | b.settings.keys() if a.settings.get(k) != b.settings.get(k)]
    if not a.data.get("fingerprint") or a.data["fingerprint"] != b.data.get("fingerprint") or differ not in (
            [], ["vocab_size"]):
        return None
    return f"both tokenizers stopped at {a.vocab:,}" if differ else "the same settings"


@dataclass(frozen=True)
class Noise:
    groups: dict  # {variant: its value at every seed}
    sigma: float  # pooled seed-to-seed standard deviation
    df: int  # degrees of freedom behind sigma

    @property
    def threshold(self) -> float:
        return 2 * math.sqrt(2) * self.sigma


def noise_spread(runs: dict[str, Run], metric="val_loss") -> dict[str, list[float]]:
    """{variant: its value at each seed} for each repeated variant with at least two finished seeds."""
    seeds = {}
    for run in runs.values():
        if run.repeat_of in runs:
            seeds.setdefault(run.repeat_of, [runs[run.repeat_of].metrics[metric]]).append(run.metrics[metric])
    return {v: vs for v, vs in seeds.items() if len(vs) >= 2}


def pooled_noise(groups: dict[str, list[float]]) -> Noise | None:
    df = sum(len(vs) - 1 for vs in groups.values())
    if not df:
        return None
    ss = sum((x - statistics.mean(vs)) ** 2 for vs in groups.values() for x in vs)
    return Noise(groups, math.sqrt(ss / df), df)


def noise_levels(runs: dict[str, Run]) -> dict[str, Noise | None]:
    return {m: pooled_noise(noise_spread(runs, m)) for m in METRICS}


def judge(delta: float, threshold: float | None) -> str:
    if threshold is None:
        return "not measured"
    if abs(delta) <= threshold:
        return "within noise"
    return "better" if delta < 0 else "worse"


@dataclass(frozen=True)
class Comparison:
    run: str
    ref: str
    keys: tuple  # the settings that differ
    metric: str  # the one it is judged on
    delta: float  # run minus ref
    other: str  # the metric shown beside it
    other_delta: float
    counting: tuple  # the COUNTING_KEYS that differ
    threshold: float | None  # a smaller |delta| is within noise
    judgement: str  # better, worse, within noise, not measured, or same run
    same: str | None = None  # why the two are one run under two names
    unreached: tuple = ()  # (run, reached, asked) of a tokenizer that stopped short, where the vocabulary changes
    steps: tuple = ()  # (ref's optimiser steps, run's) where they differ: a confound
    cost: tuple = ()  # (what, ref's, run's) for parameters, FLOPs per token and train seconds, where recorded


def compare(ref: Run, run: Run, noise: dict) -> Comparison:
    """Judged on bits per byte when tokenizer, vocabulary or block size differ, else on the legacy figure."""
    keys = tuple(changed(ref.settings, run.settings))
    counting = tuple(k for k in keys if k in COUNTING_KEYS)
    metric, other = ("val_bpb", "val_loss") if counting else ("val_loss", "val_bpb")
    delta = run.metrics[metric] - ref.metrics[metric]
    same = same_computation(ref, run)
    threshold = noise[metric].threshold if noise[metric] else None
    unreached = tuple((r.name, r.vocab, r.settings["vocab_size"]) for r in (ref, run)
                      if "vocab_size" in keys and r.unreached)
    steps = (ref.metrics.get("steps"), run.metrics.get("steps"))
    cost = tuple((k, ref.metrics[k], run.metrics[k]) for k in COST if k in ref.metrics and k in run.metrics)
    return Comparison(run.name, ref.name, keys, metric, delta, other, run.metrics[other] - ref.metrics[other],
                      counting, threshold, "same run" if same else judge(delta, threshold), same, unreached,
                      steps if steps[0] != steps[1] else (), cost)


def chains(runs: dict[str, Run]) -> dict[int, list[str]]:
    """{group: its finished variants in order, studies left out}; group 0 is the chain from the root."""
    groups = {}
    for name, run in runs.items():
        if run.group is not None and run.study is None:
            groups.setdefault(run.group, []).append(name)
    return groups


def only_with(runs: dict[str, Run], noise: dict) -> list[Comparison]:
    """Chains that make the same changes on bases whose optimisers differ, each against its base, the base
    nearest the root first."""
    same = {}
    for names in chains(runs).values():
        base, last = runs[names[0]].parent, names[-1]
        if base in runs:
            c = compare(runs[base], runs[last], noise)
            same.setdefault(c.keys, []).append(c)
    found = [c for group in same.values() if len({runs[c.ref].settings["optimizer"] for c in group}) > 1
             for c in group]
    return sorted(found, key=lambda c: list(runs).index(c.ref))


def only_with_verdict(stacked: list[Comparison], runs: dict[str, Run], optimizer="adamw") -> str | None:
    """Whether the changes help on `optimizer` and on no other base: holds, does not hold, or not measured."""
    judged = {runs[c.ref].settings["optimizer"]: c.judgement for c in stacked}
    if not judged or "not measured" in judged.values():
        return "not measured" if judged else None
    alone = all(j != "better" for o, j in judged.items() if o != optimizer)
    return "holds" if judged.get(optimizer) == "better" and alone else "does not hold"


def study_runs(runs: dict[str, Run]) -> dict[str, list[str]]:
    """{study: its finished runs}, in params.yaml's order."""
    found = {}
    for name, run in runs.items():
        if run.study is not None and run.repeat_of is None:
            found.setdefault(run.study, []).append(name)
    return found


@dataclass(frozen=True)
class Sweep:
    """One variant at every vocabulary that ran with otherwise identical settings."""
    ref: str
    rows: list  # (vocab asked, run), by vocabulary
    best_bpb: str
    best_legacy: str
    best: Comparison  # the best run by bits per byte against the next best


def vocab_sweep(names: list[str], runs: dict[str, Run], noise: dict) -> Sweep | None:
    """A sweep when every run of a study changes only the vocabulary of its parent; None otherwise."""
    ref = runs[names[0]].parent
    if ref not in runs or any(changed(runs[ref].settings, runs[n].settings) != ["vocab_size"] for n in names):
        return None

    def others(n):
        return {k: v for k, v in runs[n].settings.items() if k != "vocab_size"}
    by_vocab = {}
    for n, run in runs.items():
        if run.repeat_of is None and not changed(others(n), others(ref)):
            by_vocab.setdefault(run.settings["vocab_size"], n)
    rows = sorted(by_vocab.items())
    bpb = sorted(rows, key=lambda r: runs[r[1]].metrics["val_bpb"])
    legacy = min(rows, key=lambda r: runs[r[1]].metrics["val_loss"])
    best = compare(runs[bpb[1][1]], runs[bpb[0][1]], noise)  # two rows at least: the parent and another vocabulary
    return Sweep(ref, rows, bpb[0][1], legacy[1], best)


def attempts(names: list[str], runs: dict[str, Run], noise: dict) -> list[Comparison]:
    """Each run of a study against the variant it is a delta on."""
    return [compare(runs[runs[n].parent], runs[n], noise) for n in names if runs[n].parent in runs]
