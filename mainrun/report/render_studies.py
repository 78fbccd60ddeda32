"""Markdown for the write-up's other claims: only with AdamW?, the opt-in studies, seed noise."""
from . import charts
from .render import comparison, signed, table

OPTIMIZERS = {"sgd": "SGD", "adamw": "AdamW"}
STUDY_TITLES = {"failed_attempts": "What the write-up says did not help"}


def only_with(stacked: list):
    if not stacked:
        return [], []
    on = [f"on {OPTIMIZERS.get(s.optimizer, s.optimizer)}" for s in stacked]
    spec = charts.Bars("only_with_adamw.png", "The same changes stacked on each base: change in val_loss",
                       [f"{o} ({s.base})" for o, s in zip(on, stacked)], [s.comparison.delta for s in stacked],
                       ylabel="Δ val_loss (legacy)")
    lines = ["## Only with AdamW?", "", f"![only with AdamW](figures/{spec.file})", "",
             f"Each chain below makes the same changes ({', '.join(stacked[0].keys)}) on a base with another "
             "optimiser.", ""]
    lines += [f"- {comparison(s.comparison, f'Stacked {o} ({s.base} → {s.last})')}" for o, s in zip(on, stacked)]
    return lines + [""], [spec]


def vocab_sweep(sweep, runs: dict):
    vocabs = [v for v, _ in sweep.rows]
    legacy = [runs[n].metrics["val_loss"] for _, n in sweep.rows]
    bpb = [runs[n].metrics["val_bpb"] for _, n in sweep.rows]
    spec = charts.Vocab("vocab_sweep.png", f"{sweep.ref} at each vocabulary", vocabs, legacy, bpb)
    lines = [f"## Vocabulary sweep ({sweep.ref} at each vocabulary)", "", f"![vocab sweep](figures/{spec.file})", "",
             *table(["vocab", "variant", "val_loss (legacy)", "val_bpb"],
                    [[v, n, f"{l:.4f}", f"{b:.4f}"] for (v, n), l, b in zip(sweep.rows, legacy, bpb)]), "",
             f"- Best vocabulary by bits per byte: {sweep.best_bpb}; by the legacy figure: {sweep.best_legacy}"
             + (" (they agree)." if sweep.best_bpb == sweep.best_legacy else " (they disagree: trust bits per byte).")]
    if sweep.best:
        next_best = runs[sweep.best.ref].settings["vocab_size"]
        what = f"the best vocabulary ({sweep.best_bpb}) against the next best ({next_best})"
        lines.append(f"- {comparison(sweep.best, what)}")
    return lines + [""], [spec]


def attempts(study: str, found: list, runs: dict):
    if not found:
        return [], []
    refs = list(dict.fromkeys(c.ref for c in found))
    rows = []
    for c in found:
        m, r = runs[c.run].metrics, runs[c.ref].metrics
        rows.append([c.run, c.ref, f"{m['val_loss']:.4f}", signed(m["val_loss"] - r["val_loss"]), f"{m['val_bpb']:.4f}",
                     signed(m["val_bpb"] - r["val_bpb"])])
    names = refs + [c.run for c in found]
    spec = charts.Bars(f"{study}.png", f"Attempts on top of {', '.join(refs)}", names,
                       [runs[n].metrics["val_bpb"] for n in names], ylabel="val_bpb")
    lines = [f"## {STUDY_TITLES.get(study, f'Study {study}')} (each on {', '.join(refs)})", "",
             *table(["variant", "on", "val_loss (legacy)", "Δ val_loss", "val_bpb", "Δ bpb"], rows), "",
             f"![{study}](figures/{spec.file})", ""]
    return lines + [f"- {comparison(c)}" for c in found] + [""], [spec]


def seed_noise(noise):
    a, b = noise.repeat
    gap = abs(a - b)
    lines = ["## Seed noise", "",
             f"The write-up draws Rec. 1 twice, one configuration ending at {a:.3f} and at {b:.3f}: {gap:.3f} apart. "
             f"{noise.small} of the {noise.total} step-to-step differences its charts report "
             f"{'is' if noise.small == 1 else 'are'} no larger than that: by its own numbers, not shown.", ""]
    if not noise.rows:
        return lines + ["This run measured no seed spread (noise.seeds is empty), so no verdict in this report can "
                        "separate an effect from noise: set e.g. `noise.seeds: [1338, 1339]`.", ""], []
    spec = charts.Bars("seed_noise.png", "val_loss over seeds (mean ± std)", [r[0] for r in noise.rows],
                       [r[2] for r in noise.rows], [r[3] for r in noise.rows])
    lines += [f"![seed noise](figures/{spec.file})", "",
              *table(["variant", "seeds", "val_loss mean ± std", "range"],
                     [[v, n, f"{mean:.4f} ± {std:.4f}", f"{rng:.4f}"] for v, n, mean, std, rng in noise.rows]), "",
              f"Differences smaller than {noise.measured:.4f} (the largest range) are marked not shown.",
              f"- This run's seed spread ({noise.measured:.4f}) is {'larger' if noise.measured > gap else 'no larger'} "
              f"than the write-up's Rec. 1 repeat gap ({gap:.4f}).", ""]
    return lines, [spec]

