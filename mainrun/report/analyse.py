"""Pure analysis of loaded runs: what differs between two runs, which metric can judge it, against which noise.

Every decision here comes from resolved settings and numbers, never from a run's name.
"""
from dataclasses import dataclass

from .load import Run

EXECUTION_KEYS = frozenset({"device", "bf16", "tf32", "fused_adamw", "compile"})  # where and how precisely it ran
# These change which tokens the legacy figure counts and how many there are: across them only bits per byte compares.
COUNTING_KEYS = ("tokenizer", "vocab_size", "block_size")
METRICS = ("val_loss", "val_bpb")


def changed(a: dict, b: dict) -> list[str]:
    """The settings, not execution keys, in which a and b differ."""
    return sorted(k for k in a.keys() | b.keys() if k not in EXECUTION_KEYS and a.get(k) != b.get(k))


def judge(delta: float, noise: float | None) -> str:
    if noise is None:
        return "not measured"
    if abs(delta) <= noise:
        return "not shown"
    return "better" if delta < 0 else "worse"


@dataclass(frozen=True)
class Comparison:
    run: str
    ref: str
    metric: str  # the one it is judged on
    delta: float  # run minus ref
    other: str  # the metric shown beside it
    other_delta: float
    counting: tuple  # the COUNTING_KEYS that differ
    noise: float | None
    judgement: str


def compare(ref: Run, run: Run, noise: dict) -> Comparison:
    """Judged on bits per byte when tokenizer, vocabulary or block size differ, else on the legacy figure."""
    counting = tuple(k for k in changed(ref.settings, run.settings) if k in COUNTING_KEYS)
    metric, other = ("val_bpb", "val_loss") if counting else ("val_loss", "val_bpb")
    delta = run.metrics[metric] - ref.metrics[metric]
    return Comparison(run.name, ref.name, metric, delta, other, run.metrics[other] - ref.metrics[other], counting,
                      noise[metric], judge(delta, noise[metric]))


def noise_spread(runs: dict[str, Run], metric="val_loss") -> dict[str, list[float]]:
    """{variant: its value at each seed} for each repeated variant with at least two finished seeds."""
    seeds = {}
    for run in runs.values():
        if run.repeat_of:
            seeds.setdefault(run.repeat_of, [run.repeat_of]).append(run.name)
    values = {v: [runs[n].metrics[metric] for n in names if n in runs] for v, names in seeds.items()}
    return {v: vs for v, vs in values.items() if len(vs) >= 2}


def noise_threshold(groups: dict[str, list[float]]) -> float | None:
    """The largest seed-to-seed range measured: differences below it are not evidence."""
    return max((max(v) - min(v) for v in groups.values()), default=None)


def noise_levels(runs: dict[str, Run]) -> dict[str, float | None]:
    return {m: noise_threshold(noise_spread(runs, m)) for m in METRICS}


def chains(runs: dict[str, Run]) -> dict[int, list[str]]:
    """{group: its finished variants in order, studies left out}; group 0 is the chain from the root."""
    groups = {}
    for name, run in runs.items():
        if run.group is not None and run.study is None:
            groups.setdefault(run.group, []).append(name)
    return groups


@dataclass(frozen=True)
class Step:
    """One step of a chain, as the legacy figure and bits per byte see it."""
    run: str
    legacy: float  # relative change
    bpb: float  # relative change
    bpb_delta: float
    counted: tuple  # the share of tokens the legacy figure counts, before and after
    agree: str


def steps(chain: list[str], runs: dict[str, Run]) -> list[Step]:
    out = []
    for prev, name in zip(chain, chain[1:]):
        a, b = runs[prev].metrics, runs[name].metrics
        rl = (b["val_loss"] - a["val_loss"]) / a["val_loss"]
        rb = (b["val_bpb"] - a["val_bpb"]) / a["val_bpb"]
        agree = "no: opposite directions" if rl * rb < 0 else "no: sizes differ" if abs(rl - rb) > 0.02 else "yes"
        out.append(Step(name, rl, rb, b["val_bpb"] - a["val_bpb"],
                        (a["val_tokens_counted_frac"], b["val_tokens_counted_frac"]), agree))
    return out
