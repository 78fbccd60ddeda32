"""The write-up's side: its configurations (published.yaml), matched to our runs by settings, never by name."""
from dataclasses import dataclass

from ..config import resolve_variants, variant_parents
from .analyse import Comparison, changed, compare, judge
from .load import Run

OWN_SETTING = "real dataset, Mainrun sizes, 7 epochs: the write-up's own setting"


def writeup_runs(setting: dict) -> dict[str, Run]:
    """The write-up's configurations, resolved as params.yaml's chains are (same defaults, same rules)."""
    params = {**setting, "studies": {}}
    settings, parents = resolve_variants(params), variant_parents(params)
    return {n: Run(n, {k: v for k, v in s.items() if k != "study"}, parents[n]) for n, s in settings.items()}


def match(writeup: dict[str, Run], ours: dict[str, Run]) -> dict[str, str]:
    """{write-up variant: our run}, by resolved settings, never by name.

    A run with exactly a configuration's settings is its run. Otherwise (other sizes, say) the run that stands in
    its place: the child of its parent's run that changes the most of the same settings and the fewest others.
    A child that changes nothing still stands in for its step (Rec. 2 at the root's vocabulary); one that changes
    only other settings does not. Studies and seed repeats never match.
    """
    candidates = [n for n, r in ours.items() if r.study is None and r.repeat_of is None]
    found = {}
    for w, run in writeup.items():  # a parent comes before its children
        free = [n for n in candidates if n not in found.values()]
        base = found.get(run.parent)
        exact = [n for n in free if not changed(run.settings, ours[n].settings)]
        if exact:
            found[w] = next((n for n in exact if ours[n].parent == base), exact[0])
            continue
        if run.parent is not None and base is None:
            continue
        want = set(changed(writeup[run.parent].settings, run.settings)) if base else set()
        scored = []
        for i, n in enumerate(free):
            have = set(changed(ours[base].settings, ours[n].settings)) if base else set()
            if ours[n].parent == base and (have & want or not have):
                scored.append((len(have & want), -len(have ^ want), -i, n))
        if scored:
            found[w] = max(scored)[-1]
    return found


@dataclass(frozen=True)
class Setting:
    runs: dict  # the write-up's configurations as Runs, its root (Mainrun's baseline) first
    match: dict  # write-up variant -> our run
    comparable: frozenset  # write-up variants whose run has exactly their settings, on their data
    differences: dict  # {setting: (the write-up's values, ours)}, every one in which this run is not the write-up's
    missing: tuple  # write-up variants no run stands in for

    @property
    def complete(self) -> bool:
        return len(self.comparable) == len(self.runs)

    @property
    def why(self) -> str:
        if self.differences:
            key, (theirs, ours) = next(iter(self.differences.items()))
            return f"{key} is {', '.join(map(repr, ours))}, the write-up used {', '.join(map(repr, theirs))}"
        return f"no variant stands where the write-up's {self.missing[0]} does" if self.missing else OWN_SETTING


def check_setting(data: dict, ours: dict[str, Run], setting: dict) -> Setting:
    """Compare with the write-up only where data and every resolved setting but execution keys are its own."""
    writeup = writeup_runs(setting)
    found = match(writeup, ours)
    diffs = {f"data.{k}": ({v}, {data.get(k)}) for k, v in setting["data"].items() if data.get(k) != v}
    data_differs, comparable = bool(diffs), set()
    for w in (w for w in writeup if w in found):
        theirs, mine = writeup[w].settings, ours[found[w]].settings
        for k in changed(theirs, mine):
            diffs.setdefault(k, (set(), set()))[0].add(theirs.get(k))
            diffs[k][1].add(mine.get(k))
        if not changed(theirs, mine) and not data_differs:
            comparable.add(w)
    ordered = {k: tuple(tuple(sorted(vs, key=lambda v: (str(type(v)), v))) for vs in pair) for k, pair in diffs.items()}
    return Setting(writeup, found, frozenset(comparable), ordered, tuple(w for w in writeup if w not in found))


def published_twice(published: dict) -> dict:
    """{write-up variant: where it has which value} for each variant the write-up publishes with different final values in different
    figures (Rec. 1: 1.330 in figures 1-2, 1.311 as the base of 4b): one configuration drawn more than once."""
    values = {}
    for fig in published["figures"].values():
        for w, v in fig["final"].items():
            if not isinstance(v, list):
                values.setdefault(w, {}).setdefault(v, []).append(fig["title"].split(":")[0])
    return {w: "; ".join(f"{v:.3f} in {' and '.join(figs)}" for v, figs in vs.items())
            for w, vs in values.items() if len(vs) > 1}


def published_gap(value, ours: float) -> float:
    """ours minus the published value; 0 inside a published range."""
    if isinstance(value, list):
        return 0.0 if value[0] <= ours <= value[1] else ours - (value[0] if ours < value[0] else value[1])
    return ours - value


@dataclass(frozen=True)
class Row:
    run: str
    published: float | list  # the write-up's final value, or a [low, high] range read off its chart
    gap: float | None  # ours minus published: only for a run with the write-up's exact settings
    curve: tuple | None  # the published curve or point to draw, likewise


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    theirs: list  # the write-up's configurations it shows (Runs)
    rows: list
    steps: list  # (our Comparison, the write-up's own Comparison, agreement) per step


def agreement(ours: Comparison, theirs: Comparison) -> str:
    if ours.same:
        return "not tested here: the two runs are one"
    if ours.judgement == "not measured":
        return "cannot tell (seed noise not measured)"
    if ours.judgement == theirs.judgement:
        return "agree"
    if ours.judgement == "within noise":
        return "not reproduced: within this run's noise"
    if theirs.judgement == "within noise":
        return "this run shows an effect the write-up's own repeat gap could not"
    return "disagree: opposite directions"


def figure(key: str, fig: dict, runs: dict[str, Run], setting: Setting, noise: dict, published: dict) -> Figure:
    members = [(w, setting.match[w]) for w in fig["final"] if setting.match.get(w) in runs]
    rows = []
    for w, n in members:
        value, curve, gap = fig["final"][w], None, None
        if w in setting.comparable:
            gap = published_gap(value, runs[n].metrics["val_loss"])
            if w == next(iter(setting.runs)):
                log = published["baseline_log"]["val_loss"]
                curve = (list(log), list(log.values()))
            elif not isinstance(value, list):
                curve = ([fig.get("steps", {}).get(w, runs[n].curves["val_loss"][0][-1])], [value])
        rows.append(Row(n, value, gap, curve))
    gap = published["repeat_gap"]  # the write-up's own differences are judged against its repeat gap
    steps = []
    for (wa, a), (wb, b) in zip(members, members[1:]):
        pa, pb = fig["final"][wa], fig["final"][wb]
        if isinstance(pa, list) or isinstance(pb, list):  # a range read off the chart: no effect it could show
            theirs = Comparison(b, a, (), "range", 0.0, "", 0.0, (), None, "within noise")
        else:
            theirs = Comparison(b, a, (), "val_loss", pb - pa, "", 0.0, (), gap, judge(pb - pa, gap))
        ours = compare(runs[a], runs[b], noise)
        steps.append((ours, theirs, agreement(ours, theirs)))
    return Figure(key, fig["title"], [setting.runs[w] for w in fig["final"]], rows, steps)


def published_steps(published: dict) -> list[float]:
    """Every step-to-step difference the write-up's charts report (pairs of single values)."""
    diffs = {}
    for fig in published["figures"].values():
        final = list(fig["final"].items())
        for (a, va), (b, vb) in zip(final, final[1:]):
            if not isinstance(va, list) and not isinstance(vb, list):
                diffs[(a, b)] = vb - va
    return list(diffs.values())


def faithfulness(metrics: dict, log: dict) -> list[tuple]:
    """(what, Mainrun's log, ours) for the baseline's structure: these must match exactly."""
    pairs = [("parameters", "params", "parameters"), ("batches per epoch", "batches_per_epoch", "batches_per_epoch"),
             ("training tokens per epoch", "train_tokens_per_epoch", "train_tokens_per_epoch"),
             ("steps", "steps", "steps")]
    return [(label, log[theirs], metrics.get(ours, 0)) for label, ours, theirs in pairs]
