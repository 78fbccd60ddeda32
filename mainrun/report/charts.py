"""The report's PNGs (matplotlib, headless), each drawn from a chart spec that the render step builds."""
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GREY = "#9a9a9a"


@dataclass(frozen=True)
class Curves:
    file: str
    title: str
    curves: dict  # {label: (steps, values)}
    published: dict = field(default_factory=dict)  # {label: (steps, values)}, grey and dashed
    bands: dict = field(default_factory=dict)  # {label: (low, high)}, a published range


@dataclass(frozen=True)
class Bars:
    file: str
    title: str
    labels: list
    values: list
    errors: list | None = None
    ylabel: str = "val_loss (legacy)"
    annotations: list | None = None


@dataclass(frozen=True)
class Vocab:
    file: str
    title: str
    vocabs: list
    legacy: list
    bpb: list


def draw(spec, fig_dir) -> None:
    path = Path(fig_dir) / spec.file
    if isinstance(spec, Curves):
        curves_chart(path, spec.title, spec.curves, spec.published, bands=spec.bands)
    elif isinstance(spec, Bars):
        bars_chart(path, spec.title, spec.labels, spec.values, spec.errors, spec.ylabel, spec.annotations)
    else:
        vocab_chart(path, spec.title, spec.vocabs, spec.legacy, spec.bpb)


def curves_chart(path, title: str, curves: dict, published: dict | None = None, ylabel="validation loss (legacy)",
                 bands: dict | None = None):
    """curves, published: {label: (steps, values)}, the published ones grey and dashed; bands: {label: (lo, hi)}."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, (lo, hi) in (bands or {}).items():
        ax.axhspan(lo, hi, color=GREY, alpha=0.25, label=f"{label} (published range)")
    for label, (steps, values) in (published or {}).items():
        ax.plot(steps, values, color=GREY, linestyle="--", marker="o" if len(steps) == 1 else None,
                label=f"{label} (published)")
    for label, (steps, values) in curves.items():
        ax.plot(steps, values, label=label)
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bars_chart(path, title: str, labels: list, values: list, errors: list | None = None, ylabel="val_loss (legacy)",
               annotations: list | None = None):
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(labels) + 2), 4.2))
    ax.bar(range(len(labels)), values, yerr=errors, color="#4C72B0", capsize=4)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.25 or 0.05
    if lo < 0:  # changes: keep zero in view so both signs show
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylim(min(lo, 0) - pad, max(hi, 0) + pad)
    else:  # levels: zoom in on the differences
        ax.set_ylim(max(0.0, lo - pad), hi + pad)
    for i, text in enumerate(annotations or []):
        ax.annotate(text, (i, values[i]), ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                    textcoords="offset points")
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def vocab_chart(path, title: str, vocabs: list, legacy: list, bpb: list):
    fig, ax1 = plt.subplots(figsize=(6.5, 4.0))
    ax1.plot(vocabs, legacy, marker="o", label="val_loss (legacy)")
    ax1.set(xlabel="BPE vocabulary", ylabel="val_loss (legacy)", title=title, xscale="log")
    ax2 = ax1.twinx()
    ax2.plot(vocabs, bpb, marker="s", color="#C44E52", label="val_bpb")
    ax2.set_ylabel("bits per byte")
    fig.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
