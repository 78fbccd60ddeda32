"""Markdown, charts and summary.json part of the lr sweep: "Does each verdict survive a tuned learning rate?"."""
from functools import partial

from . import charts
from .analyse import RULE
from .render import METRIC, table

def x(f: float) -> str:
    """A factor as the report writes it: ×4, ×1, ÷4."""
    return f"×{f:g}" if f >= 1 else f"÷{1 / f:g}"


def lr_cell(p) -> str:
    return f"{x(p.factor)} ({p.lr:.3g})"


def verdict(delta: float, judgement: str, threshold) -> str:
    if judgement == "same run":
        return "same run"
    return f"{delta:+.4f}" + ("" if threshold is None else f" (±{threshold:.3f})") + f": {judgement}"


def notes(p, cap) -> list[str]:
    """The edge and flat-bottom flags of one pair."""
    out = []
    for s in (p.ref, p.run):
        if s.variant in p.edges:
            edge, add = p.edges[s.variant]
            f = s.best(p.metric).factor
            out.append(f"{s.variant}'s best lr is the {edge} factor swept ({x(f)}): its optimum may lie beyond it; "
                       + (f"add {x(add)}." if add else f"the sweep hit its cap ({x(cap)} either way)."))
        if p.flat[s.variant]:
            others = ", ".join(x(f) for f in p.flat[s.variant])
            out.append(f"{s.variant}: {others} lie{'s' if len(p.flat[s.variant]) == 1 else ''} within noise of its "
                       f"best ({x(s.best(p.metric).factor)}): a flat bottom, its best lr is not pinned down.")
    if p.bound:
        out.append(f"So {p.ref.variant} → {p.run.variant}'s Δ best against best is {p.bound}, and its outcome "
                   "with it.")
    return out


def pair_row(p) -> list:
    return [f"{p.ref.variant} → {p.run.variant}", METRIC[p.metric],
            verdict(p.default.delta, p.default.judgement, p.default.threshold), lr_cell(p.ref_best),
            lr_cell(p.run_best), verdict(p.delta, p.judgement, p.threshold), f"**{p.outcome}**"]


HEADER = ["step", "judged on", "Δ at the default lr", "ref's best lr", "run's best lr", "Δ best against best",
          "outcome"]


def size_lines(s, cap, dims: str, fig_dir, several: bool):
    path = fig_dir / f"lr_sweep_{s.size}.png"
    lines = [f"### Size {s.size}{dims}", ""] if several else []
    lines += [f"![each variant against lr at size {s.size}](figures/{path.name})", ""]
    by_chain = {}
    for label, p in s.steps:
        by_chain.setdefault(label, []).append(p)
    for label, pairs in by_chain.items():
        lines += [f"Each step of {label}:", "", *table(HEADER, [pair_row(p) for p in pairs]), ""]
        lines += [f"- {n}" for n in dict.fromkeys(n for p in pairs for n in notes(p, cap))]  # a variant in two steps
        lines += [""] if lines[-1] else []
    rows = []
    for v, sweep in s.sweeps.items():
        m = s.metrics[v]
        b = sweep.best(m)
        away = "at its default" if b.factor == 1 else f"{x(b.factor)} its default"
        flag = " **(hit the cap)**" if sweep.capped(m, cap) else ""
        rows.append([v, METRIC[m], ", ".join(x(p.factor) for p in sweep.points), lr_cell(b), away + flag,
                     f"{sweep.sensitivity(m):.4f}"])
    lines += ["Each variant: where its optimum lies and its lr sensitivity (the mean, over its sweep, of its loss "
              "above its best; Wortsman et al., 2023):", "",
              *table(["variant", "judged on", "factors", "best lr", "optimum", "lr sensitivity"], rows), ""]
    basin = [[f"{p.ref.variant} → {p.run.variant}", f"{p.sensitivity[0]:.4f}", f"{p.sensitivity[1]:.4f}",
              verdict(p.sensitivity[1] - p.sensitivity[0], p.basin, p.sensitivity_threshold).replace(
                  ": within noise", ": no change shown")] for _, p in s.steps]
    if basin:
        lines += ["Does a step widen or narrow the basin? Each side's sensitivity over the factors both swept; the "
                  "step narrows it where the run's exceeds the ref's beyond noise (2·√(2(1−1/n))·σ for n lrs: "
                  "docs/report.md), widens it where it falls short:", "",
                  *table(["step", "ref's sensitivity", "run's sensitivity", "Δ: the basin"], basin), ""]
    panels = []
    for metric in dict.fromkeys(s.metrics.values()):
        members = [v for v in s.sweeps if s.metrics[v] == metric or any(
            p.metric == metric and v in (p.ref.variant, p.run.variant) for _, p in s.steps)]
        panels.append((METRIC[metric], {v: [(p.lr, p.run.metrics[metric]) for p in sorted(
            s.sweeps[v].points, key=lambda p: p.lr)] for v in members},
            {v: (s.sweeps[v].best(metric).lr, s.sweeps[v].best(metric).run.metrics[metric]) for v in members}))
    draw = partial(charts.lr_chart, path, f"Each variant's final loss against its learning rate, size {s.size}",
                   panels)
    return lines, [draw]


def section(found: list, sizes: list, cap: float, fig_dir):
    """The section, its charts, and its summary.json part; ([], [], None) when the sweep did not run."""
    if not found:
        return [], [], None
    factors = sorted({p.factor for s in found for sw in s.sweeps.values() for p in sw.points if p.factor != 1})
    lines = ["## Does each verdict survive a tuned learning rate?", "",
             f"Each swept variant trained again at its own lr times each factor ({', '.join(map(x, factors))}; "
             "×1 is the variant's default run; a self-extended sweep has more factors for some variants, each "
             "variant's are listed below). Each step is judged as everywhere in this report (on its metric, "
             f"against its size's seed noise, {RULE}): first with each side at its default lr, then **best against "
             "best**, each side at the lr of its sweep with the lowest loss on that metric. Outcome: **holds** (the "
             "same verdict), **gain vanishes** (better → within noise), **harm vanishes** (worse → within noise), "
             "**reverses** (better ↔ worse), **appears** (within noise → better or worse).", "",
             "Picking the best of N noisy runs biases each side's best low; both sides pick from the same N lrs, so "
             "most of that bias cancels in their difference, which is judged against the same seed-noise threshold "
             "as every other verdict.", ""]
    dims = {s.name: f" ({s.dims})" for s in sizes}
    draws = []
    for s in found:
        more, drawn = size_lines(s, cap, dims.get(s.size, ""), fig_dir, len(found) > 1)
        lines += more
        draws += drawn
    return lines, draws, summary(found, cap)


def only_with(tuned: dict | None, cap: float) -> list[str]:
    """Whether the 'Only with AdamW?' verdict survives each base and end at its best lr."""
    if tuned is None:
        return []
    rows = [pair_row(p) for p in tuned["pairs"]]
    flags = [f"- {n}" for n in dict.fromkeys(n for p in tuned["pairs"] for n in notes(p, cap))]
    same = tuned["tuned"] == tuned["default"]
    return ["With each chain's base and end at its own best lr (the lr sweep):", "", *table(HEADER, rows), "",
            *flags, *([""] if flags else []),
            f"**With a tuned lr: \"only with AdamW\" {tuned['tuned']}: the verdict "
            f"{'survives' if same else 'does not survive'}** (at the default lr: {tuned['default']}).", ""]


def changed(found: list) -> list[str]:
    """Every step whose verdict changes once each side gets its own lr, with its outcome and size."""
    several = len(found) > 1
    return [f"{p.ref.variant} → {p.run.variant} ({p.outcome}{f', size {s.size}' if several else ''})"
            for s in found for _, p in s.steps if p.outcome not in ("holds", "not measured", "same run")]


def opening(found: list, tuned: dict | None) -> list[str]:
    """The line the report opens with (in What ran) when the sweep ran."""
    if not found:
        return []
    steps = changed(found)
    claim = ("" if tuned is None or tuned["tuned"] == tuned["default"] else
             f" \"Only with AdamW\" {tuned['tuned']} with a tuned lr ({tuned['default']} at the default lr).")
    return [("**With a tuned lr** (each side at the best lr of its sweep: \"Does each verdict survive a tuned "
             "learning rate?\"), " + (f"these verdicts change: {'; '.join(steps)}." if steps else
                                      "every swept step's verdict holds.") + claim), ""]


def summary(found: list, cap: float) -> dict:
    def pt(p):
        return {"factor": p.factor, "lr": p.lr}

    def side(p, s):
        return {"best": pt(s.best(p.metric)), "edge": p.edges.get(s.variant, (None, None))[0],
                "add_factor": p.edges.get(s.variant, (None, None))[1], "flat": p.flat[s.variant]}
    out = {"cap": cap, "changed": changed(found), "sizes": {}}
    for s in found:
        out["sizes"][s.size] = {
            "variants": {v: {"metric": s.metrics[v], "points": [{**pt(p), **{m: round(p.run.metrics[m], 6) for m in
                                                                             METRIC}} for p in sw.points],
                             "best": pt(sw.best(s.metrics[v])), "capped": sw.capped(s.metrics[v], cap),
                             "sensitivity": round(sw.sensitivity(s.metrics[v]), 6)} for v, sw in s.sweeps.items()},
            "steps": [{"chain": label, "step": [p.ref.variant, p.run.variant], "metric": p.metric,
                       "default": {"delta": round(p.default.delta, 6), "judgement": p.default.judgement},
                       "tuned": {"delta": round(p.delta, 6), "judgement": p.judgement},
                       "threshold": p.threshold and round(p.threshold, 6), "outcome": p.outcome, "bound": p.bound,
                       "ref": side(p, p.ref), "run": side(p, p.run),
                       "sensitivity": [round(v, 6) for v in p.sensitivity], "basin": p.basin,
                       "sensitivity_threshold": p.sensitivity_threshold and round(p.sensitivity_threshold, 6)}
                      for label, p in s.steps]}
    return out
