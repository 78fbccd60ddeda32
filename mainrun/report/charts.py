"""The report's PNGs (matplotlib, headless). Bars start at zero; curves that coincide get their own style and say so."""
import textwrap
from itertools import cycle

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    if note:
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=7, color="#555555", va="bottom", wrap=True)
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
        if errors:  # inside the bar, clear of the error bar
            ax.annotate(text, (i, values[i] / 2), ha="center", va="center", fontsize=6, color="white")
        else:
            ax.annotate(text, (i, values[i]), ha="center", va="bottom" if values[i] >= 0 else "top", fontsize=6,
                        xytext=(0, 2 if values[i] >= 0 else -2), textcoords="offset points")
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


def curves_chart(path, title: str, curves: dict, ylabel="validation loss (legacy)"):
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    plot_curves(ax, curves, {}, None, ylabel)
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
