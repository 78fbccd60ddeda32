"""Markdown for what runs cost (the FLOPs against val_bpb chart) and for the scale study, with their summary rows."""
from functools import partial

from . import cost_charts, scale
from .render import METRIC, si, table


def cost(runs: dict, sizes: list, fig_dir):
    """Every run's final val_bpb against its training FLOPs (seed repeats left out), the Pareto front named."""
    default = next((f"{s.name} ({s.dims})" for s in sizes if any(r.name in runs for r in s.runs.values())),
                   "the default model")
    members = {n: (r, default) for n, r in runs.items() if r.repeat_of is None}
    for s in sizes:
        members |= {r.name: (r, f"{s.name} ({s.dims})") for r in s.runs.values() if r.repeat_of is None}
    members = {n: m for n, m in members.items() if "train_flops" in m[0].metrics}
    if not members:
        return [], []
    points = {n: (r.metrics["train_flops"], r.metrics["val_bpb"]) for n, (r, _) in members.items()}
    front = cost_charts.pareto_front(points)
    draw = partial(cost_charts.pareto_chart, fig_dir / "pareto.png", "Final val_bpb against training FLOPs",
                   points, {n: g for n, (_, g) in members.items()})
    rows = [[n, si(points[n][0]), f"{points[n][1]:.4f}", si(r.metrics["params"]),
             si(r.metrics["params_non_embedding"]), si(r.metrics["tokens_seen"]), f"{r.metrics['train_seconds']:.0f}"]
            for n in front for r in [members[n][0]]]
    return ["## What each run cost", "", "![FLOPs against val_bpb](figures/pareto.png)", "",
            "Training FLOPs (log axis) are PyTorch's count of one training step's matrix products, times the steps "
            "(docs/report.md says what is counted). Seed repeats are left out. On the Pareto front, no other run is "
            "both cheaper and better:", "",
            *table(["run", "training FLOPs", "val_bpb", "params", "non-embedding", "tokens seen", "train s"], rows),
            ""], [draw]


def study_cost(runs: dict, sizes: list) -> str:
    """What the study's own runs cost beside the default runs: training time and FLOPs, as recorded."""
    study = [r for s in sizes for r in s.runs.values() if r.name not in runs]

    def total(rs, key):
        return sum(r.metrics.get(key, 0) for r in rs)
    default = list(runs.values())
    return (f"Its {len(study)} runs of its own trained for {total(study, 'train_seconds') / 60:.1f} min "
            f"({si(total(study, 'train_flops'))} FLOPs), beside {total(default, 'train_seconds') / 60:.1f} min "
            f"({si(total(default, 'train_flops'))} FLOPs) for the {len(default)} default runs.")


def scale_study(sizes: list, index: list[dict], runs: dict, fig_dir):
    """The section "Does each recommendation hold as the model grows?" and its summary.json part."""
    if len(sizes) < 2:
        return [], [], None
    lines = ["## Does each recommendation hold as the model grows?", "",
             "The chain again at every size (each with its own seed repeats and noise threshold): "
             + ", ".join(f"**{s.name}** {s.dims} ({si(s.params)} non-embedding parameters)" for s in sizes)
             + ". Each step is judged on the metric it is judged on everywhere in this report. "
             + study_cost(runs, sizes), ""]
    rows, panels, summary = [], [], []
    for step in scale.steps(sizes, index):
        found = scale.per_size(step, sizes)
        at = [s for s in sizes if s.name in found]
        if not at:
            continue
        metric = found[at[0].name].metric
        words = scale.trend([(s.name, found[s.name].judgement, found[s.name].delta) for s in at])
        mult = {s.name: scale.multiplier(step, s, sizes, metric) for s in at}
        rows.append([f"{step[0]} → {step[1]}", METRIC[metric],
                     *[cell(found[s.name]) if s.name in found else "—" for s in sizes], words])
        panels.append((f"{step[0]} → {step[1]}", metric, [s.params for s in at], [found[s.name].delta for s in at],
                       [found[s.name].threshold for s in at]))
        summary.append({"step": list(step), "metric": metric, "trend": words, "sizes": {
            s.name: {"delta": round(found[s.name].delta, 6), "judgement": found[s.name].judgement,
                     "threshold": found[s.name].threshold and round(found[s.name].threshold, 6),
                     "cost": {k: [a, b] for k, a, b in found[s.name].cost},
                     "multiplier": {k: v and round(v, 4) if isinstance(v, float) else v
                                    for k, v in vars(mult[s.name]).items()}} for s in at}})
    if not panels:
        return lines + ["No step of the chain ran at two sizes or more: nothing to judge.", ""], [], None
    draw = partial(cost_charts.scale_chart, fig_dir / "scale.png", "Each step's Δ against model size", panels)
    lines += [*table(["step", "judged on", *[f"{s.name} ({s.dims})" for s in sizes], "as the model grows"], rows),
              "", "![each step's Δ against parameters](figures/scale.png)", "",
              "Each panel: one step's Δ (run minus the variant before it; below zero is better) at each size, over "
              "non-embedding parameters (log axis); the grey band is that size's seed noise, 2·√2·σ.", ""]
    lines += multipliers(summary, sizes)
    return lines, [draw], {"sizes": {s.name: {"dims": s.dims, "params_non_embedding": s.params} for s in sizes},
                           "steps": summary}


def cell(c) -> str:
    if c.judgement == "same run":
        return "same run"
    band = "" if c.threshold is None else f" (±{c.threshold:.3f})"
    return f"{c.delta:+.4f}{band}: {c.judgement}"


def multipliers(summary: list, sizes: list) -> list[str]:
    def text(m: dict) -> str:
        if m["value"] is None:
            return m["why"]
        ends = [f"{x:.2f}×" if x is not None else "outside" for x in (m["low"], m["high"])]
        return f"{m['value']:.2f}× (seed noise: {ends[0]} to {ends[1]})"
    rows = [[" → ".join(row["step"]), *[text(row["sizes"][s.name]["multiplier"]) if s.name in row["sizes"] else "—"
                                        for s in sizes]] for row in summary]
    return ["**Effective-compute multipliers.** For each step and size: the training FLOPs the previous variant "
            "would need to reach the step's loss, read off its loss-against-FLOPs curve over the sizes (interpolated "
            "log-log), divided by the step's own FLOPs. Above 1× the step is worth more compute than it costs; only "
            "a loss inside the measured range gets a number. The interval is the multiplier at the step's loss ± 2σ "
            "of that size (its seed noise); the curve's own noise is not in it.", "",
            *table(["step", *[f"{s.name} ({s.dims})" for s in sizes]], rows), ""]
