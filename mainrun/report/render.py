"""Markdown from the analysis: every table through `table`, every chart as a spec beside the lines that show it.

Each section function returns (lines, chart specs); nothing here decides a verdict.
"""
from . import charts
from .analyse import judge
from .writeup import REPEAT_GAP

METRIC_NAMES = {"val_loss": "legacy val_loss", "val_bpb": "val_bpb"}


def table(header: list, rows: list) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header), *map(line, rows)]


def signed(x, digits=4) -> str:
    return "—" if x is None else f"{x:+.{digits}f}"


def verdict(what: str, delta: float, noise: float | None, metric: str = "legacy val_loss",
            noise_name: str = "seed noise") -> str:
    line = f"{what} changed the {metric} by {delta:+.4f}"
    judgement = judge(delta, noise)
    if judgement == "not measured":
        return line + f" ({noise_name} not measured: set noise.seeds to tell)"
    if judgement == "not shown":
        return line + f", within {noise_name} ({noise:.4f}): not shown"
    return line + f", beyond {noise_name} ({noise:.4f}): {judgement}"


def comparison(c, what: str | None = None) -> str:
    """A Comparison as one line: the verdict on its metric, then the other metric's change."""
    line = verdict(what or f"{c.run} (vs {c.ref})", c.delta, c.noise, METRIC_NAMES[c.metric])
    line += f"; {METRIC_NAMES[c.other]} by {c.other_delta:+.4f}"
    if c.counting:
        differ = f"{' and '.join(c.counting)} differ{'s' if len(c.counting) == 1 else ''}"
        line += f" ({differ}, so the legacy figure counts other tokens: judged on val_bpb)"
    return line


def header(data_stats: dict, runs: dict, setting) -> list[str]:
    devices = sorted({r.metrics["device"] for r in runs.values()})
    if setting.complete:
        status = f"**Write-up setting:** {setting.why}; published values are compared below."
    elif setting.comparable:
        status = (f"**Not the write-up's setting** ({setting.why}): published values are compared only for the runs "
                  "with the write-up's exact settings; for the others they are shown for reference only.")
    else:
        status = (f"**Not the write-up's setting** ({setting.why}): published values are shown for reference only, "
                  "and no difference from them is computed.")
    return ["# Mainrun ablation report", "",
            f"Data: `{data_stats['source']}`, {data_stats['train']['titles']} train / {data_stats['val']['titles']} "
            f"validation titles. Runs: {len(runs)} on {', '.join(devices) or 'nothing'}.", "",
            status, "", "## Write-up, figure by figure", ""]


def faithfulness(rows: list, metrics: dict, log: dict) -> list[str]:
    body = [[label, f"{theirs:,}", f"{ours:,}", "yes" if ours == theirs else "NO"] for label, theirs, ours in rows]
    body.append(["training seconds", f"{log['train_seconds']:,} (CPU)",
                 f"{metrics['train_seconds']:,.0f} ({metrics['device']})", "—"])
    return ["### Baseline against Mainrun's published log", "",
            *table(["", "Mainrun log", "this run", "match"], body), ""]


def published_text(value) -> str:
    return f"{value[0]:.3f}–{value[1]:.3f}" if isinstance(value, list) else f"{value:.4f}"


def figure(fig, runs: dict):
    lines = [f"### {fig.title}", ""]
    if not fig.rows:
        return lines + ["No variant of this chart ran.", ""], []
    bands = {}
    for r in fig.rows:
        if r.gap is not None and isinstance(r.published, list):
            bands.setdefault(tuple(r.published), []).append(r.run)
    spec = charts.Curves(f"{fig.key}.png", fig.title, {r.run: runs[r.run].curves["val_loss"] for r in fig.rows},
                         {r.run: r.curve for r in fig.rows if r.curve},
                         {", ".join(names): lohi for lohi, names in bands.items()})
    rows = [[r.run, published_text(r.published), f"{m['val_loss']:.4f}", signed(r.gap),
             f"{m['val_loss_per_token']:.4f}", f"{m['val_bpb']:.4f}"]
            for r, m in ((r, runs[r.run].metrics) for r in fig.rows)]
    lines += [f"![{fig.title}](figures/{spec.file})", "",
              *table(["variant", "published final", "this run: val_loss (legacy)", "difference",
                      "val_loss_per_token", "val_bpb"], rows), ""]
    for ours, theirs in fig.steps:
        lines.append(f"- {comparison(ours)}")
        if theirs:
            lines.append(f"  - published: {verdict(theirs.run, theirs.delta, theirs.noise, noise_name=REPEAT_GAP)}")
    return lines + [""], [spec]


def chain(names: list[str], runs: dict):
    if not names:
        return [], []
    values = [runs[n].metrics["val_loss"] for n in names]
    notes = [""] + [f"{values[i] - values[i - 1]:+.3f} / {values[i] - values[0]:+.3f}" for i in range(1, len(names))]
    specs = [charts.Curves("cumulative.png", "Cumulative recommendations vs the baseline",
                           {n: runs[n].curves["val_loss"] for n in names}),
             charts.Bars("final_val_loss.png", "Final val_loss (Δ previous / Δ baseline)", names, values,
                         annotations=notes)]
    rows = []
    for i, n in enumerate(names):
        m, prev = runs[n].metrics, runs[names[i - 1]].metrics if i else None
        rows.append([n, f"{m['val_loss']:.4f}", signed(prev and m["val_loss"] - prev["val_loss"]),
                     signed(m["val_loss"] - values[0]), f"{m['val_loss_per_token']:.4f}", f"{m['val_bpb']:.4f}",
                     signed(prev and m["val_bpb"] - prev["val_bpb"])])
    return ["## The cumulative chain", "", "![cumulative](figures/cumulative.png)", "",
            "![final val_loss](figures/final_val_loss.png)", "",
            *table(["variant", "val_loss (legacy)", "Δ previous", "Δ baseline", "val_loss_per_token", "val_bpb",
                    "Δ bpb previous"], rows), ""], specs


def disagreement(steps: list) -> list[str]:
    lines = ["## Legacy metric vs bits per byte", "",
             "The legacy figure divides the summed loss of the *counted* tokens by the validation *characters*. "
             "It counts only full batches of batch_size×block_size+1 tokens, so a larger block (or a vocabulary that "
             "changes the token count) changes which tokens are counted, and each `<eos>` marker adds five characters "
             "to its denominator. Bits per byte counts every token and divides by UTF-8 bytes (one per end of title), "
             "so it is the one comparable across block sizes and vocabularies.", "",
             *table(["step", "Δ legacy (relative)", "Δ bpb (relative)", "tokens counted by legacy", "agree?"],
                    [[s.run, f"{s.legacy:+.2%}", f"{s.bpb:+.2%}", f"{s.counted[0]:.1%} → {s.counted[1]:.1%}", s.agree]
                     for s in steps])]
    if steps:
        best = min(steps, key=lambda s: s.bpb_delta)
        disagree = [s.run for s in steps if s.agree != "yes"]
        lines += ["", f"- The recommendation that moved bits per byte most: **{best.run}** ({best.bpb_delta:+.4f} "
                  "bits/byte).", f"- The two metrics disagree at: {', '.join(disagree) or 'no step'}."]
    return lines + [""]


def every_run(runs: dict) -> list[str]:
    rows = [[n, f"{m['params']:,}", m["steps"], f"{m['val_loss']:.4f}", f"{m['val_loss_per_token']:.4f}",
             f"{m['val_bpb']:.4f}", f"{m['val_tokens_counted_frac']:.1%}", f"{m['train_seconds']:.0f}",
             f"{m['tokens_per_second']:.0f}", m["device"]] for n, m in ((n, r.metrics) for n, r in runs.items())]
    return ["## Every run", "", *table(["run", "params", "steps", "val_loss", "val_loss_per_token", "val_bpb",
                                        "legacy counted", "train s", "tokens/s", "device"], rows)]
