"""Markdown from the analysis. Each section returns (lines, charts to draw): charts are partials of charts.py.

Every title and caption is written from the runs' resolved settings; nothing here decides a verdict.
"""
import statistics
from functools import partial

from . import charts, cost_charts
from .analyse import RULE, changed

METRIC = {"val_loss": "legacy val_loss", "val_bpb": "val_bpb"}
OPTIMIZERS = {"sgd": "SGD", "adamw": "AdamW"}
LABELS = {"vocab_size": "vocab", "block_size": "block", "n_layer": "layers", "d_model": "d_model"}
STUDY_TITLES = {"failed_attempts": "What the write-up says did not help"}


def tokens_seen(run) -> tuple[list, list]:
    """A run's legacy val_loss curve over tokens seen rather than optimiser steps."""
    steps, values = run.curves["val_loss"]
    per_step = run.settings["batch_size"] * run.settings["block_size"]
    return [s * per_step for s in steps], values


def table(header: list, rows: list) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header), *map(line, rows)]


def signed(x, digits=4) -> str:
    return "—" if x is None else f"{x:+.{digits}f}"


def num(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def vocab(run) -> str:
    return f"{run.vocab:,} of {run.settings['vocab_size']:,} asked" if run.unreached else f"{run.vocab:,}"


def value(run, key) -> str:
    return vocab(run) if key == "vocab_size" else OPTIMIZERS.get(run.settings[key], num(run.settings[key]))


def step_text(a, b) -> str:
    """What changes from run a to run b: sizes with their values, other settings by name."""
    keys = changed(a.settings, b.settings)
    shown = [f"{LABELS.get(k, k)} {value(a, k)} → {value(b, k)}" for k in keys if k in LABELS or k == "optimizer"]
    named = [k for k in keys if k not in LABELS and k != "optimizer"]
    return ", ".join(shown + named) if keys else "no change"


def labelled(names: list, runs: dict) -> dict:
    """Each run's name with the sizes that differ among names beside it, e.g. `r3_block256 (block 64)`: a name
    says what the write-up's run had, the label what this run had."""
    keys = [k for k in LABELS if len({runs[n].settings[k] for n in names}) > 1]
    return {n: f"{n} ({', '.join(f'{LABELS[k]} {value(runs[n], k)}' for k in keys)})" if keys else n for n in names}


def describe(members: list) -> str:
    """A figure's runs in a few words: its one step, or the base its steps stand on."""
    if len(members) == 2:
        return step_text(*members)
    base = members[0]
    return f"on {value(base, 'optimizer')}, vocab {vocab(base)}, block {base.settings['block_size']}"


def judged(delta: float, judgement: str, threshold: float | None, noise_name="seed noise") -> str:
    if judgement == "not measured":
        return f"{delta:+.4f} (seed noise not measured: set noise.seeds to tell)"
    if judgement == "within noise":
        return f"{delta:+.4f}, within {noise_name} (±{threshold:.4f}): no effect shown"
    return f"{delta:+.4f}, beyond {noise_name} (±{threshold:.4f}): {judgement}"


def si(x: float, signed: bool = False) -> str:
    """12.3M, 4.56G: a count in SI units."""
    for div, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
        if abs(x) >= div or div == 1:
            return f"{x / div:{'+' if signed else ''}.3g}{unit}"


COST = {"params": "params", "flops_per_token": "FLOPs/token", "train_seconds": "wall"}


def cost_text(cost: tuple) -> str:
    """What a step costs: Δ parameters, Δ training FLOPs per token, Δ train wall time, each also relative."""
    parts = [f"Δ {COST[k]} {si(b - a, True) + (' s' if k == 'train_seconds' else '')}"
             + (f" ({(b - a) / a:+.0%})" if a else "") for k, a, b in cost]
    return "cost: " + ", ".join(parts) if parts else ""


def comparison(c) -> str:
    """One comparison: identical runs and unreached vocabularies first, then the verdict and its confounds."""
    if c.same:
        return f"**{c.run} equals {c.ref} here: {c.same}**; the step was not made, so there is nothing to judge."
    line = f"{METRIC[c.metric]} {judged(c.delta, c.judgement, c.threshold)}; {METRIC[c.other]} {c.other_delta:+.4f}"
    if c.counting:
        differ = f"{' and '.join(c.counting)} differ{'s' if len(c.counting) == 1 else ''}"
        line += f" ({differ}: the legacy figure counts other tokens, so judged on val_bpb)"
    for run, reached, asked in c.unreached:
        line += f". **{run}'s tokenizer stopped at {reached:,} of the {asked:,} asked**"
    if c.steps:
        line += f". Confound: {c.steps[1]:,} optimiser steps against {c.steps[0]:,}"
    return line + (f". {cost_text(c.cost)[0].upper()}{cost_text(c.cost)[1:]}" if c.cost else "")


def precision(s: dict) -> str:
    parts = ["bf16 autocast" if s["bf16"] else "fp32"] + [n for k, n in (("tf32", "TF32"), (
        "fused_adamw", "fused AdamW"), ("compile", "torch.compile")) if s[k]]
    return f"{s['device']}, {', '.join(parts)}"


def what_ran(data_stats: dict, runs: dict, setting, noise: dict) -> list[str]:
    main = [r for r in runs.values() if r.study is None and r.repeat_of is None]
    root = main[0]

    def spread(key):
        return ", ".join(num(v) for v in sorted({r.settings[key] for r in main}))
    steps = sorted({r.metrics["steps"] for r in runs.values()})
    params = sorted(r.metrics["params"] for r in runs.values())
    repeats = sum(r.repeat_of is not None for r in runs.values())
    seconds = sum(r.metrics["train_seconds"] for r in runs.values())
    lines = ["# Mainrun ablation report", "", "## What ran", "",
             f"- **Data:** `{data_stats['source']}`, {data_stats['train']['titles']:,} train / "
             f"{data_stats['val']['titles']:,} validation titles; tokens per tokenizer below.",
             f"- **Model:** {spread('n_layer')} layers, {spread('n_head')} heads, d_model {spread('d_model')}, "
             f"dropout {spread('dropout')}, block {spread('block_size')}; {params[0]:,}–{params[-1]:,} parameters.",
             f"- **Training:** {spread('epochs')} epochs at batch {spread('batch_size')}; {steps[0]:,}–{steps[-1]:,} "
             f"optimiser steps per run; {seconds / 60:.1f} min of training in all.",
             f"- **Device and precision:** {'; '.join(sorted({precision(r.settings) for r in runs.values()}))}.",
             f"- **Runs:** {len(runs) - repeats} variants and {repeats} seed repeats of "
             f"{', '.join(sorted({r.repeat_of for r in runs.values() if r.repeat_of})) or 'none'}.", ""]
    tokenizers = {}
    for r in runs.values():
        tokenizers.setdefault((r.settings["tokenizer"], r.settings["vocab_size"]), (r, []))[1].append(r.name)
    rows = [[kind, f"{asked:,}", vocab(r) if not r.unreached else f"**{r.vocab:,} (stopped short)**",
             f"{r.data.get('train_tokens', 0):,}", f"{r.data.get('val_tokens', 0):,}", len(names)]
            for (kind, asked), (r, names) in sorted(tokenizers.items())]
    lines += table(["tokenizer", "vocab asked", "reached", "train tokens", "val tokens", "runs"], rows) + [""]
    for fp in {r.data.get("fingerprint") for r in runs.values()}:
        same = sorted({a for (_, a), (r, _) in tokenizers.items() if r.data.get("fingerprint") == fp})
        if len(same) > 1:
            lines.append(f"- **The tokenizers asked for {' and '.join(f'{a:,}' for a in same)} are one and the same "
                         "here**: the corpus has no more merges to learn, so runs that differ only in that are one "
                         "run.")
    if setting.differences:
        lines += ["", "**Differences from the write-up's setting.** The write-up's published values are listed beside "
                  "each run for reference; they are drawn in a chart only for a run in the write-up's exact setting "
                  f"(here: {setting.why}).", "",
                  *table(["setting", "write-up", "this run"], [[k, ", ".join(map(num, a)), ", ".join(map(num, b))]
                                                               for k, (a, b) in setting.differences.items()])]
    else:
        lines.append(f"**Write-up setting:** {setting.why}; published values are compared below.")
    lines += ["", f"**How a difference is judged.** σ is the seed-to-seed standard deviation, pooled over every "
              "repeated variant; the difference of two single runs varies by √2·σ, so a difference counts as an "
              f"effect only when {RULE}."]
    lines.append("Here 2·√2·σ = " + " and ".join(f"{n.threshold:.4f} on {METRIC[m]} (σ = {n.sigma:.4f}, {n.df} "
                                                "degrees of freedom)" for m, n in noise.items() if n) + "."
                 if any(noise.values()) else
                 "No seed repeats ran (noise.seeds is empty), so no verdict below can tell an effect from noise.")
    return lines + [""]


def faithfulness(rows: list, metrics: dict, log: dict) -> list[str]:
    body = [[label, f"{theirs:,}", f"{ours:,}", "yes" if ours == theirs else "NO"] for label, theirs, ours in rows]
    body.append(["training seconds", f"{log['train_seconds']:,} (CPU)",
                 f"{metrics['train_seconds']:,.0f} ({metrics['device']})", "—"])
    return ["### Baseline against Mainrun's published log", "",
            *table(["", "Mainrun log", "this run", "match"], body), ""]


def figure(fig, runs: dict, setting, noise: dict, repeat_gap: float, fig_dir, repeated: dict):
    """repeated: {our run: its published values by figure} where the write-up publishes more than one."""
    ours = [runs[r.run] for r in fig.rows]
    title = f"{fig.title} (write-up: {describe(fig.theirs)}; this run: {describe(ours) if ours else 'not run'})"
    lines = [f"### {title}", ""]
    if not fig.rows:
        return lines + ["No variant of this chart ran.", ""], []
    metric = fig.steps[-1][0].metric if fig.steps else "val_loss"
    sigma = noise[metric].sigma if noise[metric] else None
    drawn = any(r.curve for r in fig.rows)
    note = None if drawn else "published values not drawn (not the write-up's setting: see What ran)"
    label = labelled([r.run for r in fig.rows], runs)
    bars = ([label[r.run] for r in fig.rows], [runs[r.run].metrics[metric] for r in fig.rows],
            [2 * sigma] * len(fig.rows) if sigma else None, f"final {METRIC[metric]} (bars: ±2σ seed noise)")
    draw = partial(charts.figure_chart, fig_dir / f"{fig.key}.png", title,
                   {label[r.run]: runs[r.run].curves["val_loss"] for r in fig.rows},
                   {label[r.run]: r.curve for r in fig.rows if r.curve}, note, bars)
    gaps = any(r.gap is not None for r in fig.rows)
    rows = [[r.run, f"{r.published[0]:.3f}–{r.published[1]:.3f}" if isinstance(r.published, list)
             else f"{r.published:.4f}", f"{m['val_loss']:.4f}", *([signed(r.gap)] if gaps else []),
             f"{m['val_loss_per_token']:.4f}", f"{m['val_bpb']:.4f}"]
            for r, m in ((r, runs[r.run].metrics) for r in fig.rows)]
    lines += [f"![{fig.title}](figures/{fig.key}.png)", "",
              f"Left: the write-up's chart, legacy val_loss over steps"
              f"{' (published values as grey stars: ' + setting.why + ')' if drawn else ''}. "
              f"Right: the final {METRIC[metric]}, the metric the verdicts below use.", "",
              *table(["variant", "write-up's final (legacy)", "this run: legacy val_loss",
                      *(["this run − write-up"] if gaps else []), "val_loss_per_token", "val_bpb"], rows), "",
              *[f"- The write-up's final value for {r.run} is {repeated[r.run]}: one configuration drawn more than "
                "once, so its values differ by the write-up's own run-to-run noise (see Seed noise)."
                for r in fig.rows if r.run in repeated]]
    lines += [""] if lines[-1] else []
    draws = [draw]
    if len({runs[r.run].settings["batch_size"] * runs[r.run].settings["block_size"] for r in fig.rows}) > 1:
        draws.append(partial(cost_charts.tokens_chart, fig_dir / f"tokens_{fig.key}.png",
                             f"{fig.title}, over tokens seen",
                             {r.run: tokens_seen(runs[r.run]) for r in fig.rows}))
        lines += [f"![over tokens seen: {fig.title}](figures/tokens_{fig.key}.png)", "",
                  "The same curves over tokens seen (steps × batch_size × block_size): these runs see different "
                  "numbers of tokens per optimiser step, so the chart above (over steps, the write-up's axis) "
                  "compares them at unequal data.", ""]
    for c, theirs, agree in fig.steps:
        lines.append(f"- **{c.ref} → {c.run}** ({step_text(runs[c.ref], runs[c.run])}). This run: {comparison(c)}.")
        said = ("its chart gives a range, not a value: no effect shown" if theirs.metric == "range" else
                f"legacy val_loss {judged(theirs.delta, theirs.judgement, repeat_gap, 'its repeat gap')}")
        lines.append(f"  Write-up: {said}. **{agree[0].upper() + agree[1:]}.**")
    return lines + [""], draws


def chain(names: list[str], comparisons: list, runs: dict, noise: dict, fig_dir):
    if not names:
        return [], []
    bpb = [runs[n].metrics["val_bpb"] for n in names]
    notes = [f"{bpb[0]:.3f}"] + [f"{bpb[i]:.3f}\n{bpb[i] - bpb[i - 1]:+.3f}" for i in range(1, len(names))]
    sigma = noise["val_bpb"].sigma if noise["val_bpb"] else None
    steps = ["start"] + [step_text(runs[a], runs[b]) for a, b in zip(names, names[1:])]
    label = labelled(names, runs)
    draws = [partial(charts.chain_chart, fig_dir / "cumulative.png",
                     "Each recommendation on top of the last, judged on final val_bpb (hollow: within seed noise): "
                     + "; ".join(steps[1:]), names, bpb, steps,
                     noise["val_bpb"].threshold if noise["val_bpb"] else None, "final val_bpb"),
             partial(cost_charts.tokens_chart, fig_dir / "cumulative_tokens.png",
                     f"The chain over tokens seen: {describe([runs[names[0]], runs[names[-1]]])}",
                     {label[n]: tokens_seen(runs[n]) for n in names}),
             partial(charts.bars_chart, fig_dir / "final_val_bpb.png", "Final val_bpb along the chain (Δ previous)",
                     [label[n] for n in names], bpb, [2 * sigma] * len(names) if sigma else None,
                     "val_bpb (bars: ±2σ seed noise)", annotations=notes)]
    m0 = runs[names[0]].metrics
    rows = [[names[0], "—", f"{m0['val_loss']:.4f}", f"{m0['val_bpb']:.4f}", f"{m0['val_tokens_counted_frac']:.1%}",
             "—", "—"]]
    for c in comparisons:
        m, r = runs[c.run].metrics, runs[c.ref].metrics
        rel = [f"{m[k]:.4f} ({(m[k] - r[k]) / r[k]:+.1%})" for k in ("val_loss", "val_bpb")]
        rows.append([c.run, step_text(runs[c.ref], runs[c.run]), *rel, f"{m['val_tokens_counted_frac']:.1%}",
                     "same run" if c.same else f"{METRIC[c.metric]} {c.delta:+.4f}: {c.judgement}",
                     cost_text(c.cost).removeprefix("cost: ") or "—"])
    opposite = [c.run for c in comparisons if c.delta * c.other_delta < 0]
    return ["## The cumulative chain", "", "![cumulative](figures/cumulative.png)", "",
            "![over tokens seen](figures/cumulative_tokens.png)", "",
            "The second chart draws each run's legacy val_loss curve over tokens seen (optimiser steps × batch_size × "
            "block_size), not steps, so a step that changes the tokens per step is compared at equal data; its "
            "levels are comparable only between runs with the same vocabulary and block size (the first chart and "
            "the verdicts use val_bpb).", "",
            "![final val_bpb](figures/final_val_bpb.png)", "",
            *table(["variant", "what changed from the one before", "legacy val_loss (Δ)", "val_bpb (Δ)",
                    "tokens the legacy figure counts", "verdict", "cost (Δ params, FLOPs/token, train wall)"],
                   rows), "",
            "The legacy figure divides the summed loss of the *counted* tokens by the validation *characters*; it "
            "counts only full batches of batch_size×block_size+1 tokens, so a larger block or another vocabulary "
            "changes which tokens count. Bits per byte counts every token over UTF-8 bytes: the one comparable across "
            "block sizes and vocabularies, and the one such steps are judged on. "
            + (f"The two metrics move in opposite directions at: {', '.join(opposite)}." if opposite else
               "The two metrics move in the same direction at every step."), ""], draws


def only_with(stacked: list, verdict: str | None, theirs: str, runs: dict, fig_dir):
    if not stacked:
        return [], []
    names = [f"on {value(runs[c.ref], 'optimizer')} ({c.ref})" for c in stacked]
    keys, c0 = ", ".join(stacked[0].keys), stacked[0]
    draw = partial(charts.bars_chart, fig_dir / "only_with_adamw.png", f"The same changes ({keys}) stacked on each "
                   "base", names, [c.delta for c in stacked], None, f"Δ {METRIC[c0.metric]}", c0.threshold)
    lines = ["## Only with AdamW?", "", "![only with AdamW](figures/only_with_adamw.png)", "",
             f"Each chain below makes the same changes ({keys}) on a base with another optimiser; the grey band "
             "is the seed noise.", ""]
    lines += [f"- **Stacked {n} → {c.run}**: {comparison(c)}." for n, c in zip(names, stacked)]
    return lines + ["", f"**This run: \"only with AdamW\" {verdict}.** The write-up: {theirs}.", ""], [draw]


def vocab_sweep(sweep, runs: dict, fig_dir):
    rows = [(runs[n].vocab, n, runs[n].metrics["val_loss"], runs[n].metrics["val_bpb"]) for _, n in sweep.rows]
    draw = partial(charts.vocab_chart, fig_dir / "vocab_sweep.png", f"{sweep.ref} at each vocabulary",
                   *zip(*[(v, leg, b) for v, _, leg, b in rows]))
    lines = [f"## Vocabulary sweep ({sweep.ref} at each vocabulary)", "", "![vocab sweep](figures/vocab_sweep.png)",
             "", *table(["vocab asked", "reached", "variant", "val_loss (legacy)", "val_bpb"],
                        [[f"{a:,}", vocab(runs[n]), n, f"{leg:.4f}", f"{b:.4f}"]
                         for (a, n), (_, _, leg, b) in zip(sweep.rows, rows)]), "",
             f"- Best by bits per byte: {sweep.best_bpb}; by the legacy figure: {sweep.best_legacy}"
             + (" (they agree)." if sweep.best_bpb == sweep.best_legacy else " (they disagree: trust bits per byte).")]
    if sweep.best:
        lines.append(f"- {sweep.best.run} against the next best, {sweep.best.ref}: {comparison(sweep.best)}.")
    return lines + [""], [draw]


def attempts(study: str, found: list, runs: dict, fig_dir):
    if not found:
        return [], []
    refs = list(dict.fromkeys(c.ref for c in found))
    names = refs + [c.run for c in found]
    draw = partial(charts.bars_chart, fig_dir / f"{study}.png", f"Attempts on top of {', '.join(refs)}", names,
                   [runs[n].metrics["val_bpb"] for n in names], None, "val_bpb")
    lines = [f"## {STUDY_TITLES.get(study, f'Study {study}')} (each on {', '.join(refs)})", "",
             f"![{study}](figures/{study}.png)", ""]
    return lines + [f"- **{c.run}** (vs {c.ref}): {comparison(c)}." for c in found] + [""], [draw]


def seed_noise(noise: dict, runs: dict, published: dict, published_steps: list, fig_dir):
    a, b = published["rec1_repeat"]
    gap = published["repeat_gap"]
    small = sum(abs(d) <= gap for d in published_steps)
    lines = ["## Seed noise", "",
             f"The write-up drew Rec. 1 twice and got {a:.3f} and {b:.3f}: one configuration, {gap:.3f} apart. "
             f"{small} of the {len(published_steps)} step-to-step differences on its charts "
             f"{'is' if small == 1 else 'are'} that size or smaller: by its own numbers, no effect is shown there.", ""]
    legacy, bpb = noise["val_loss"], noise["val_bpb"]
    if not legacy:
        return lines + ["This run repeated no variant at other seeds (noise.seeds is empty), so no verdict in this "
                        "report can separate an effect from noise: set e.g. `noise.seeds: [1338, 1339]`.", ""], []
    rows = []
    for v, vs in legacy.groups.items():
        bs = bpb.groups[v]
        rows.append([v, len(vs), f"{statistics.mean(vs):.4f} ± {statistics.stdev(vs):.4f}", f"{max(vs) - min(vs):.4f}",
                     f"{statistics.mean(bs):.4f} ± {statistics.stdev(bs):.4f}"])
    names = list(legacy.groups)
    seeds = {v: [runs[v].settings["seed"]] + [r.settings["seed"] for r in runs.values() if r.repeat_of == v]
             for v in names}  # in noise_spread's order: the variant, then its repeats
    draw = partial(charts.seeds_chart, fig_dir / "seed_noise.png", "Final legacy val_loss at each seed",
                   {v: list(zip(seeds[v], vs)) for v, vs in legacy.groups.items()}, legacy.threshold,
                   "val_loss (legacy)")
    ref = statistics.mean(legacy.groups[names[0]])
    widest = max(names, key=lambda v: max(legacy.groups[v]) - min(legacy.groups[v]))
    spread, level = max(legacy.groups[widest]) - min(legacy.groups[widest]), statistics.mean(legacy.groups[widest])
    lines += ["![seed noise](figures/seed_noise.png)", "",
              *table(["variant", "seeds", "legacy val_loss mean ± std", "range", "val_bpb mean ± std"], rows), "",
              *table(["legacy val_loss", "write-up", "this run"],
                     [["one configuration, two draws", f"{a:.3f} vs {b:.3f}: gap {gap:.3f} ({gap / a:.1%})",
                       f"largest range over seeds: {spread:.4f} ({widest}, {spread / level:.1%} of its loss)"],
                      ["what a difference must exceed", f"its repeat gap, {gap:.3f} (this report's reading)",
                       f"2·√2·σ = {legacy.threshold:.4f} ({legacy.threshold / ref:.1%} of {names[0]}'s loss)"]]), "",
              f"Pooled σ = {legacy.sigma:.4f} on legacy val_loss and {bpb.sigma:.4f} on val_bpb, from {legacy.df} "
              f"degrees of freedom: with so few seeds σ itself is uncertain (by a factor of about "
              f"{1 + 1 / (2 * legacy.df) ** 0.5:.1f}), so a verdict near the threshold is weak either way.", ""]
    return lines, [draw]


def every_run(runs: dict) -> list[str]:
    rows = [[n, f"{m['params']:,}", vocab(r), r.settings["block_size"], f"{m['steps']:,}", f"{m['val_loss']:.4f}",
             f"{m['val_loss_per_token']:.4f}", f"{m['val_bpb']:.4f}", f"{m['val_tokens_counted_frac']:.1%}",
             f"{m['train_seconds']:.0f}", f"{m['tokens_per_second']:.0f}", m["device"]]
            for n, r, m in ((n, r, r.metrics) for n, r in runs.items())]
    return ["## Every run", "", *table(["run", "params", "vocab", "block", "steps", "val_loss", "val_loss_per_token",
                                        "val_bpb", "legacy counted", "train s", "tokens/s", "device"], rows)]
