"""The scale study (studies.scale): each chain step judged at every size, its trend, its effective-compute multiplier.

Sizes are the default model's and scales.sizes, ordered by the first variant's non-embedding parameters. At each
size a step is compared as everywhere else (analyse.compare), against that size's own seed noise.
"""
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..runlog import read_json
from .analyse import Comparison, compare, noise_levels
from .load import CURVES, Run, flat_settings, read_curve

SIGNIFICANT = ("better", "worse")


@dataclass(frozen=True)
class Size:
    name: str
    runs: dict  # {default run name it stands for: Run}, the chain and its seed repeats at this size
    noise: dict  # {metric: Noise or None}, from this size's repeats

    @property
    def dims(self) -> str:
        s = next(iter(self.runs.values())).settings
        return f"{s['n_layer']}×{s['d_model']}"

    @property
    def params(self) -> int:
        """Non-embedding parameters of the size's first run (the x of the scale charts)."""
        m = next(iter(self.runs.values())).metrics
        return m.get("params_non_embedding", m["params"])


def read_scale(configs_dir, metrics_dir, live_dir, runs: dict[str, Run], default_noise: dict) -> list[Size]:
    """Every size with its finished runs, smallest first; [] when the study did not run. runs: the default runs."""
    rows = chain_rows(read_json(Path(configs_dir) / "runs.json")["runs"])
    if not any(r["enabled"] for r in rows):
        return []
    chain = [r["name"].removeprefix(f"{r['size']}-") for r in rows if r["size"] == rows[0]["size"]]
    sizes, default = {}, None
    for row in rows:
        base = row["name"].removeprefix(f"{row['size']}-")
        path = Path(metrics_dir) / f"{row['name']}.json"
        if row["same_as"]:
            default = row["size"]
        elif row["enabled"] and path.exists():
            config = read_json(Path(configs_dir) / f"{row['name']}.json")
            run = Run(row["name"], flat_settings(config), row["parent"], None, "scale", row["repeat_of"],
                      config["data"], read_json(path), {c: read_curve(live_dir, row["name"], c) for c in CURVES})
            sizes.setdefault(row["size"], {})[base] = run
    found = [Size(default or "default", {b: runs[b] for b in chain if b in runs}, default_noise)]
    found += [Size(s, rs, noise_levels({r.name: r for r in rs.values()})) for s, rs in sizes.items()]
    return sorted((s for s in found if s.runs), key=lambda s: s.params)


def chain_rows(index: list[dict]) -> list[dict]:
    """The scale runs of the chain and its seed repeats (the attribution study's part runs at each size are its, the
    lr sweep's runs at each size lr_sweep.py's)."""
    parts = {r["name"] for r in index if "step" in r}
    return [r for r in index if "size" in r and "lr_factor" not in r and r["variant"] not in parts]


def steps(sizes: list[Size], index: list[dict]) -> list[tuple[str, str]]:
    """(previous variant, variant) of each chain step in the study, in params.yaml's order."""
    rows = [r for r in chain_rows(index) if r["repeat_of"] is None]
    first = rows[0]["size"] if rows else None
    return [(r["parent"].removeprefix(f"{first}-"), r["variant"]) for r in rows if r["size"] == first and r["parent"]]


def per_size(step: tuple[str, str], sizes: list[Size]) -> dict[str, Comparison]:
    """{size: the step's comparison there}, at the sizes where both of its runs finished."""
    ref, run = step
    return {s.name: replace(compare(s.runs[ref], s.runs[run], s.noise), ref=ref, run=run)
            for s in sizes if ref in s.runs and run in s.runs}


def trend(judged: list[tuple[str, str, float]]) -> str:
    """The words for one step over sizes, smallest first: judged = [(size, judgement, delta)]."""
    if not judged:
        return "not measured"
    names, verdicts = [n for n, _, _ in judged], [j for _, j, _ in judged]
    if "not measured" in verdicts:
        return "not measured (no seed repeats at some size)"
    if "same run" in verdicts:
        return "not judged: the step makes no change at " + ", ".join(n for n, j, _ in judged if j == "same run")
    seen = [(n, j) for n, j, _ in judged if j in SIGNIFICANT]
    if not seen:
        return "inside noise everywhere"
    if len(set(verdicts)) == 1:
        return f"holds at every size ({verdicts[0]})"
    for (a, ja), (b, jb) in zip(seen, seen[1:]):
        if ja != jb:
            return f"flips sign between sizes {a} and {b} ({ja} at {a}, {jb} at {b})"
    kind = seen[0][1]
    inside = [v == "within noise" for v in verdicts]
    cut = next(i for i in range(1, len(verdicts)) if inside[i] != inside[i - 1])  # both kind and noise are there
    if all(x == inside[0] for x in inside[:cut]) and all(x == inside[cut] for x in inside[cut:]):
        return (f"appears above size {names[cut - 1]} ({kind} from {names[cut]} on)" if inside[0] else
                f"vanishes above size {names[cut - 1]} ({kind} up to {names[cut - 1]}, inside noise from {names[cut]})")
    return "no single trend: " + ", ".join(f"{j} at {n}" for n, j, _ in judged)


def compute_to_reach(curve: list[tuple[float, float]], loss: float) -> float | None:
    """The training FLOPs at which the curve [(flops, loss)] reaches `loss`, interpolated log-log between measured
    points; None outside the measured range or where the curve's loss does not fall as compute grows."""
    pts = sorted(curve)
    if any(b[1] >= a[1] for a, b in zip(pts, pts[1:])):  # fewer than two points: no segment below
        return None
    for (c0, l0), (c1, l1) in zip(pts, pts[1:]):
        if l1 <= loss <= l0:
            t = (math.log(loss) - math.log(l0)) / (math.log(l1) - math.log(l0))
            return math.exp(math.log(c0) + t * (math.log(c1) - math.log(c0)))
    return None


@dataclass(frozen=True)
class Multiplier:
    value: float | None  # None: outside the measured range (or the curve does not fall with compute)
    low: float | None  # at the step's loss + 2σ of its size (None: that end is outside the range)
    high: float | None  # at the step's loss - 2σ
    why: str | None = None  # why there is no value


def multiplier(step: tuple[str, str], size: Size, sizes: list[Size], metric: str) -> Multiplier:
    """Compute the previous variant needs to reach the step's loss (its loss against training FLOPs over every
    size), divided by the step's own compute."""
    ref, run = step
    curve = [(s.runs[ref].metrics["train_flops"], s.runs[ref].metrics[metric]) for s in sizes
             if ref in s.runs and "train_flops" in s.runs[ref].metrics]
    if len(curve) < 2:
        return Multiplier(None, None, None, "fewer than two sizes measured")
    if any(b[1] >= a[1] for a, b in zip(sorted(curve), sorted(curve)[1:])):
        return Multiplier(None, None, None, f"{ref}'s loss does not fall as its compute grows")
    own, loss = size.runs[run].metrics["train_flops"], size.runs[run].metrics[metric]
    sigma = size.noise[metric].sigma if size.noise.get(metric) else None

    def at(x):
        c = compute_to_reach(curve, x)
        return None if c is None else c / own
    value = at(loss)
    low, high = (at(loss + 2 * sigma), at(loss - 2 * sigma)) if sigma is not None else (None, None)
    return Multiplier(value, low, high, None if value is not None else "outside the measured range")
