"""Markdown and chart for the attribution study: "What in each step does the work?"."""
from functools import partial

from . import attribution, charts, scale
from .render import METRIC, cost_text, table


def cell(c) -> str:
    if c is None:
        return "—"
    band = "" if c.threshold is None else f" (±{c.threshold:.3f})"
    return f"{c.delta:+.4f}{band}: {c.judgement}"


def step_lines(s) -> list[str]:
    rows = [[p.name, cell(p.alone), cell(p.dropped), cost_text(p.alone.cost).removeprefix("cost: ") or "—"]
            for p in s.parts]
    return [f"**{s.step}** at size {s.size} (on {s.parent}; judged on {METRIC[s.whole.metric]}): the whole step "
            f"{cell(s.whole)}.", "",
            *table(["part", "Δ alone (part − parent)", "Δ when dropped (whole − whole without it)", "cost alone"],
                   rows), "",
            f"Interaction: the step's Δ minus its parts' Δ alone is {s.interaction:+.4f}"
            + (f" (±{s.interaction_threshold:.3f})" if s.interaction_threshold else "") + f": {s.adds_up}. "
            + attribution.carriers(s), *[""] + attribution.defects(s), ""]


def trends(at: list) -> list[str]:
    """Per part, its Δ alone over the sizes, in the scale section's words."""
    if len(at) < 2:
        return []
    names = [p.name for p in at[0].parts]
    rows = [[n, *[cell(next((p.alone for p in s.parts if p.name == n), None)) for s in at],
             scale.trend([(s.size, p.alone.judgement, p.alone.delta) for s in at for p in s.parts if p.name == n])]
            for n in names]
    return ["Each part alone as the model grows:", "",
            *table(["part", *[s.size for s in at], "as the model grows"], rows), ""]


def section(found: dict, fig_dir):
    """The section, and its charts: one per step, a panel per size."""
    if not found:
        return [], []
    lines = ["## What in each step does the work?", "",
             "Each step of the headline chain that bundles several changes, split into its parts (params.yaml's "
             "`attribution.groups` keeps keys that only make sense together as one part). **Δ alone**: the part on "
             "the step's parent, against the parent. **Δ when dropped**: the whole step against the step without "
             "the part. Both are judged against the same seed-noise threshold as every other verdict; the "
             "interaction's threshold grows with the runs it adds up.", ""]
    draws = []
    for step, at in found.items():
        for s in at:
            lines += step_lines(s)
        lines += trends(at)
        path = fig_dir / f"attribution_{step}.png"
        panels = [(s.size, [p.name for p in s.parts], [p.alone.delta for p in s.parts],
                   [p.dropped.delta if p.dropped else 0.0 for p in s.parts], s.whole.threshold) for s in at]
        draws.append(partial(charts.attribution_chart, path, f"{step}: each part's Δ alone and when dropped", panels,
                             METRIC[at[0].whole.metric]))
        lines += [f"![{step}: each part](figures/{path.name})", ""]
    return lines, draws
