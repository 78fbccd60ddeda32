"""The write-up's other claims, each with a chart and a verdict computed from the numbers: seed noise,
"only with AdamW?", the vocabulary sweep and the attempts that did not help."""
import statistics

from . import charts
from .config import resolve_variants, variant_parents
from .configure import seed_run_name


def noise_spread(params: dict, runs: dict, metric="val_loss") -> dict[str, list[float]]:
    """{variant: values over its seeds} for each noise variant with at least two finished seeds."""
    groups = {}
    for name in params["noise"]["variants"]:
        names = [name] + [seed_run_name(name, s) for s in params["noise"]["seeds"]]
        values = [runs[n]["metrics"][metric] for n in names if n in runs]
        if len(values) >= 2:
            groups[name] = values
    return groups


def noise_threshold(groups: dict[str, list[float]]) -> float | None:
    """The largest seed-to-seed range measured: differences below it are not evidence."""
    return max((max(v) - min(v) for v in groups.values()), default=None)


def verdict(what: str, delta: float, noise: float | None, metric: str = "legacy val_loss",
            noise_name: str = "seed noise") -> str:
    line = f"{what} changed the {metric} by {delta:+.4f}"
    if noise is None:
        return line + f" ({noise_name} not measured: set noise.seeds to tell)"
    if abs(delta) <= noise:
        return line + f", within {noise_name} ({noise:.4f}): not shown"
    return line + f", beyond {noise_name} ({noise:.4f}): {'better' if delta < 0 else 'worse'}"


def study_sections(params, runs, noise, fig_dir) -> list[str]:
    parents = variant_parents(params)
    settings = resolve_variants(params)
    lines = []
    # Only with AdamW? The same architecture changes on SGD and on AdamW.
    if all(n in runs for n in ("baseline", "sgd_parallel", "r1_adamw", "adamw_parallel")):
        d_sgd = runs["sgd_parallel"]["metrics"]["val_loss"] - runs["baseline"]["metrics"]["val_loss"]
        d_adamw = runs["adamw_parallel"]["metrics"]["val_loss"] - runs["r1_adamw"]["metrics"]["val_loss"]
        charts.bars_chart(fig_dir / "only_with_adamw.png", "Rec. 4.1–4.4 stacked: change in val_loss",
                          ["on SGD (4a)", "on AdamW (4b)"], [d_sgd, d_adamw], ylabel="Δ val_loss (legacy)")
        lines += ["## Only with AdamW?", "", "![only with AdamW](figures/only_with_adamw.png)", "",
                  "The curves are figures 4a and 4b above.", "",
                  f"- {verdict('Rec. 4.1–4.4 on SGD (baseline → sgd_parallel)', d_sgd, noise)}",
                  f"- {verdict('Rec. 4.1–4.4 on AdamW (r1_adamw → adamw_parallel)', d_adamw, noise)}", ""]
    sweep = [n for n, s in settings.items() if s["study"] == "vocab_sweep" and n in runs]
    if sweep:
        names = _same_but_vocab(parents[sweep[0]], settings, runs)
        vocabs = [settings[n]["vocab_size"] for n in names]
        legacy = [runs[n]["metrics"]["val_loss"] for n in names]
        bpb = [runs[n]["metrics"]["val_bpb"] for n in names]
        charts.vocab_chart(fig_dir / "vocab_sweep.png", "Rec. 1 at each vocabulary", vocabs, legacy, bpb)
        lines += ["## Vocabulary sweep (Rec. 1 at each vocabulary)", "", "![vocab sweep](figures/vocab_sweep.png)", "",
                  "| vocab | variant | val_loss (legacy) | val_bpb |", "|---|---|---|---|"]
        lines += [f"| {v} | {n} | {l:.4f} | {b:.4f} |" for v, n, l, b in zip(vocabs, names, legacy, bpb)]
        best_bpb, best_legacy = vocabs[bpb.index(min(bpb))], vocabs[legacy.index(min(legacy))]
        lines += ["", f"- Best vocabulary by bits per byte: {best_bpb}; by the legacy figure: {best_legacy}"
                  + (" (they agree)." if best_bpb == best_legacy else " (they disagree: trust bits per byte).")]
        if len(bpb) > 1:
            bpb_noise = noise_threshold(noise_spread(params, runs, "val_bpb"))
            what = f"the best vocabulary ({best_bpb}) against the next best"
            lines.append(f"- {verdict(what, min(bpb) - sorted(bpb)[1], bpb_noise, 'val_bpb')}")
        lines.append("")
    failed = [n for n, s in settings.items() if s["study"] == "failed_attempts" and n in runs]
    if failed:
        ref = parents[failed[0]]
        lines += ["## What the write-up says did not help (each on the full stack)", "",
                  "| variant | val_loss (legacy) | Δ vs full stack | val_bpb | Δ bpb |", "|---|---|---|---|---|"]
        r = runs[ref]["metrics"]
        for n in failed:
            m = runs[n]["metrics"]
            lines.append(f"| {n} | {m['val_loss']:.4f} | {m['val_loss'] - r['val_loss']:+.4f} | {m['val_bpb']:.4f} | "
                         f"{m['val_bpb'] - r['val_bpb']:+.4f} |")
        charts.bars_chart(fig_dir / "failed_attempts.png", "Attempts on top of the full stack", [ref, *failed],
                          [runs[n]["metrics"]["val_bpb"] for n in [ref, *failed]], ylabel="val_bpb")
        lines += ["", "![failed attempts](figures/failed_attempts.png)", ""]
        bpb_noise = noise_threshold(noise_spread(params, runs, "val_bpb"))
        lines += [f"- {verdict(n, runs[n]['metrics']['val_bpb'] - r['val_bpb'], bpb_noise, 'val_bpb')}"
                  if n.endswith(("domain_tokens", "unigram")) else
                  f"- {verdict(n, runs[n]['metrics']['val_loss'] - r['val_loss'], noise)}" for n in failed]
        lines.append("")
    return lines


def _same_but_vocab(ref: str, settings: dict, runs: dict) -> list[str]:
    """Runs with ref's settings at other vocabularies (r2_vocab is Rec. 1 at vocab_size), one per vocabulary."""
    def key(n):
        return {k: v for k, v in settings[n].items() if k not in ("vocab_size", "study")}
    by_vocab = {}
    for n in settings:
        if n in runs and key(n) == key(ref):
            by_vocab.setdefault(settings[n]["vocab_size"], n)
    return [by_vocab[v] for v in sorted(by_vocab)]


def published_steps(published: dict) -> list[float]:
    """Every step-to-step difference the write-up's charts report (pairs of single values)."""
    diffs = {}
    for fig in published["figures"].values():
        final = list(fig["final"].items())
        for (a, va), (b, vb) in zip(final, final[1:]):
            if not isinstance(va, list) and not isinstance(vb, list):
                diffs[(a, b)] = vb - va
    return list(diffs.values())


def noise_section(params, runs, published, fig_dir) -> list[str]:
    groups = noise_spread(params, runs)
    a, b = published["rec1_repeat"]
    gap, steps = abs(a - b), published_steps(published)
    small = sum(abs(d) <= gap for d in steps)
    lines = ["## Seed noise", "",
             f"The write-up draws Rec. 1 twice, one configuration ending at {a:.3f} and at {b:.3f}: {gap:.3f} apart. "
             f"{small} of the {len(steps)} step-to-step differences its charts report "
             f"{'is' if small == 1 else 'are'} no larger than that: by its own numbers, not shown.", ""]
    if not groups:
        return lines + ["This run measured no seed spread (noise.seeds is empty), so no verdict in this report can separate "
                        "an effect from noise: set e.g. `noise.seeds: [1338, 1339]`.", ""]
    charts.bars_chart(fig_dir / "seed_noise.png", "val_loss over seeds (mean ± std)", list(groups),
                      [statistics.mean(v) for v in groups.values()], [statistics.stdev(v) for v in groups.values()])
    lines += ["![seed noise](figures/seed_noise.png)", "",
              "| variant | seeds | val_loss mean ± std | range |", "|---|---|---|---|"]
    for name, values in groups.items():
        lines.append(f"| {name} | {len(values)} | {statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} | "
                     f"{max(values) - min(values):.4f} |")
    measured = noise_threshold(groups)
    lines += ["", f"Differences smaller than {measured:.4f} (the largest range) are marked not shown.",
              f"- This run's seed spread ({measured:.4f}) is {'larger' if measured > gap else 'no larger'} than the "
              f"write-up's Rec. 1 repeat gap ({gap:.4f}).", ""]
    return lines
