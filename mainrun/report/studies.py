"""The write-up's other claims as data: "only with AdamW?", seed noise and the opt-in studies."""
import statistics
from dataclasses import dataclass

from .analyse import Comparison, chains, changed, compare, noise_spread, noise_threshold
from .load import Run


@dataclass(frozen=True)
class Stacked:
    """One chain's changes, all stacked, against the variant it branches from."""
    base: str
    last: str
    optimizer: str
    keys: tuple  # the settings the chain changes
    comparison: Comparison


def only_with(runs: dict[str, Run], noise: dict) -> list[Stacked]:
    """Chains that make the same changes on bases whose optimisers differ, the base nearest the root first."""
    same = {}
    for names in chains(runs).values():
        base, last = runs[names[0]].parent, names[-1]
        if base in runs:
            keys = tuple(changed(runs[base].settings, runs[last].settings))
            same.setdefault(keys, []).append(Stacked(base, last, runs[base].settings["optimizer"], keys,
                                                     compare(runs[base], runs[last], noise)))
    order = list(runs)
    found = [s for group in same.values() if len({s.optimizer for s in group}) > 1 for s in group]
    return sorted(found, key=lambda s: order.index(s.base))


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
    rows: list  # (vocab_size, run), by vocabulary
    best_bpb: int
    best_legacy: int
    best: Comparison | None  # the best vocabulary by bits per byte against the next best


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
    best = compare(runs[bpb[1][1]], runs[bpb[0][1]], noise) if len(rows) > 1 else None
    return Sweep(ref, rows, bpb[0][0], legacy[0], best)


def attempts(names: list[str], runs: dict[str, Run], noise: dict) -> list[Comparison]:
    """Each run of a study against the variant it is a delta on."""
    return [compare(runs[runs[n].parent], runs[n], noise) for n in names if runs[n].parent in runs]


@dataclass(frozen=True)
class Noise:
    rows: list  # (variant, seeds, mean, std, range) of val_loss
    measured: float | None  # the largest range
    repeat: tuple  # the write-up's two values of one configuration
    small: int  # how many of the write-up's step-to-step differences are no larger than their gap
    total: int


def seed_noise(runs: dict[str, Run], repeat: list, published_steps: list[float]) -> Noise:
    groups = noise_spread(runs)
    rows = [(v, len(vs), statistics.mean(vs), statistics.stdev(vs), max(vs) - min(vs)) for v, vs in groups.items()]
    gap = abs(repeat[0] - repeat[1])
    return Noise(rows, noise_threshold(groups), tuple(repeat), sum(abs(d) <= gap for d in published_steps),
                 len(published_steps))
