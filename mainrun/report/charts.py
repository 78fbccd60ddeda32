"""The report's PNGs (matplotlib, headless). Bars start at zero; curves that coincide get their own style and say so;
seeds are dots on an axis zoomed to their values; notes sit above a plot, never over its curves."""
import textwrap
from itertools import cycle

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

GREY = "#9a9a9a"
STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 3)), "P")]


def plot_curves(ax, curves: dict, published: dict, note: str | None, ylabel: str):
    """curves, published: {label: (steps, values)}, the published ones grey; a curve equal to an earlier one says so."""
    for label, (steps, values) in published.items():
        ax.plot(steps, values, color=GREY, linestyle="--", marker="*", markersize=9, label=f"{label} (published)")
    seen, every = {}, [v for _, values in curves.values() for v in values]
    close = 0.01 * (max(every) - min(every)) if every else 0  # 1% of the axis: the eye cannot part them
    for (label, (steps, values)), (ls, marker) in zip(curves.items(), cycle(STYLES)):
        twin = next((n for n, v in seen.items() if v == values), None)
        near = twin or next((n for n, v in seen.items() if len(v) == len(values) and values and
                             all(abs(a - b) <= close for a, b in zip(values, v))), None)
        seen[label] = values
        tag = f" (identical to {twin})" if twin else f" (overlaps {near})" if near else ""
        ax.plot(steps, values, linestyle=ls, marker=marker, markersize=4, markevery=max(1, len(steps) // 6),
                linewidth=2.2 if tag else 1.4, alpha=0.8, label=label + tag)
    if note:  # above the axes: inside them it covered the end of a curve
        ax.set_title(note, fontsize=7, color="#555555", loc="left")
    ax.set(xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_bars(ax, labels: list, values: list, errors: list | None, ylabel: str, band: float | None = None,
              annotations: list | None = None):
    """Bars from zero; band: a grey ±band around zero (differences inside it are within seed noise)."""
    ax.bar(range(len(labels)), values, yerr=errors, color="#4C72B0", capsize=4)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    if band:
        ax.axhspan(-band, band, color=GREY, alpha=0.35, label=f"within seed noise (±{band:.4f})")
        ax.legend(fontsize=7)
    for i, text in enumerate(annotations if annotations is not None else [f"{v:.4f}" for v in values]):
        up = values[i] >= 0  # beyond the bar's end and its error bar, dark on white
        end = values[i] + (errors[i] if errors else 0) * (1 if up else -1)
        ax.annotate(text, (i, end), ha="center", va="bottom" if up else "top", fontsize=8,
                    xytext=(0, 3 if up else -3), textcoords="offset points")
    ax.margins(y=0.15)  # room for the labels above the highest bar
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def save(fig, path, title: str):
    fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 14)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_chart(path, title: str, curves: dict, published: dict, note: str | None, bars: tuple):
    """Left: the write-up's chart (legacy val_loss curves); right: the final value of the metric the verdict uses."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    plot_curves(left, curves, published, note, "validation loss (legacy)")
    plot_bars(right, *bars)
    save(fig, path, title)


def chain_chart(path, title: str, labels: list, values: list, steps: list, threshold: float | None, ylabel: str):
    """The final value of each run along a chain, in chain order; each point names the change that led to it and
    its difference from the one before, hollow where that difference is within seed noise (±threshold)."""
    fig, ax = plt.subplots(figsize=(max(7.5, 1.3 * len(labels) + 1.5), 4.6))
    x = range(len(labels))
    ax.plot(x, values, color="#4C72B0", linewidth=1.2, zorder=1)
    for i, v in enumerate(values):
        within = i and threshold is not None and abs(v - values[i - 1]) <= threshold
        ax.scatter([i], [v], s=45, zorder=2, color="white" if within else "#4C72B0", edgecolors="#4C72B0")
        text = f"{v:.3f}" if not i else f"{v:.3f}\n{v - values[i - 1]:+.3f}{' (noise)' if within else ''}"
        ax.annotate(text, (i, v), ha="center", va="bottom", fontsize=8, xytext=(0, 6), textcoords="offset points")
    ticks = [f"{n}\n{textwrap.fill(s, 16, break_long_words=False)}" for n, s in zip(labels, steps)]
    ax.set_xticks(list(x), ticks, fontsize=7)
    ax.margins(x=0.06, y=0.2)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    save(fig, path, title)


def seeds_chart(path, title: str, groups: dict, threshold: float, ylabel: str):
    """groups: {variant: [(seed, final value)]}. One panel per variant, each zoomed to its own values on the same
    span: the seeds as dots, their mean as a line, and beside it a bar as tall as the threshold a difference must
    exceed (2·√2·σ), so the spread reads against it."""
    span = max(threshold, *(max(v for _, v in g) - min(v for _, v in g) for g in groups.values())) * 1.6
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups) + 0.8, 4.0), squeeze=False)
    for ax, (name, points) in zip(axes[0], groups.items()):
        seeds, vals = zip(*points)
        mean = sum(vals) / len(vals)
        ax.scatter(range(len(vals)), vals, s=40, color="#4C72B0", zorder=2)
        for i, (seed, v) in enumerate(points):
            ax.annotate(f"seed {seed}\n{v:.4f}", (i, v), fontsize=7, ha="left", xytext=(6, -4),
                        textcoords="offset points")
        ax.axhline(mean, color="black", linewidth=0.9, label=f"mean {mean:.4f}")
        ax.errorbar([len(vals) - 0.4], [mean + threshold / 2], yerr=threshold / 2, color="#C44E52", capsize=5,
                    label=f"threshold 2·√2·σ = {threshold:.4f}")
        ax.set_ylim(mean - span / 2, mean + span / 2)
        ax.set_xlim(-0.5, len(vals) + 0.1)
        ax.set_xticks([])
        ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02))  # below: clear of the dots
    axes[0][0].set_ylabel(ylabel)
    save(fig, path, title)


def bars_chart(path, title: str, labels: list, values: list, errors=None, ylabel="", band=None, annotations=None):
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(labels) + 2), 4.2))
    plot_bars(ax, labels, values, errors, ylabel, band, annotations)
    save(fig, path, title)


def vocab_chart(path, title: str, vocabs: list, legacy: list, bpb: list):
    fig, ax1 = plt.subplots(figsize=(6.5, 4.0))
    ax1.plot(vocabs, legacy, marker="o", label="val_loss (legacy)")
    ax1.set(xlabel="BPE vocabulary reached", ylabel="val_loss (legacy)", xscale="log")
    ax2 = ax1.twinx()
    ax2.plot(vocabs, bpb, marker="s", color="#C44E52", label="val_bpb (the verdict's metric)")
    ax2.set_ylabel("bits per byte")
    fig.legend(loc="upper right", fontsize=8)
    save(fig, path, title)


def attribution_chart(path, title: str, panels: list, ylabel: str):
    """panels: [(size, parts, Δ alone, Δ dropped, noise threshold)]: two bars per part, the noise band around 0."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (size, parts, alone, dropped, band) in zip(axes[0], panels):
        x = range(len(parts))
        ax.bar([i - 0.2 for i in x], alone, 0.4, color="#4C72B0", label="alone (part − parent)")
        ax.bar([i + 0.2 for i in x], dropped, 0.4, color="#DD8452", label="dropped (whole − without it)")
        ax.set_xticks(list(x), parts, rotation=30, ha="right", fontsize=7)
        ax.axhline(0, color="black", linewidth=0.8)
        if band:
            ax.axhspan(-band, band, color=GREY, alpha=0.35, label=f"seed noise (±{band:.3f})")
        ax.set_title(f"size {size}", fontsize=8)
        ax.set_ylabel(f"Δ {ylabel}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=6)
    save(fig, path, title)


def lr_chart(path, title: str, panels: list):
    """panels: [(metric label, {variant: [(lr, loss)] by lr}, {variant: (best lr, best loss)})]: a line per variant
    over lr (log axis), its best point a star."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False)
    for ax, (ylabel, lines, best) in zip(axes[0], panels):
        for (name, points), (ls, marker) in zip(lines.items(), cycle(STYLES)):
            drawn = ax.plot(*zip(*points), linestyle=ls, marker=marker, markersize=4, linewidth=1.2, label=name)
            ax.scatter(*best[name], marker="*", s=150, color=drawn[0].get_color(), edgecolors="black", zorder=3)
        ax.set(xscale="log", xlabel="learning rate (log axis)", ylabel=f"final {ylabel}")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels at 2×, 3×... of a decade overlapped
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, title="★ each variant's best", title_fontsize=6)
    save(fig, path, title)
