"""The charts of what runs cost: loss against FLOPs with its Pareto front, curves over tokens seen, Δ over sizes."""
import math
from itertools import cycle

from matplotlib.ticker import EngFormatter

from .charts import GREY, STYLES, plt, save


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """The names of the points (flops, loss) that no other point beats on both, cheapest first."""
    front, best = [], math.inf
    for name, (_, loss) in sorted(points.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        if loss < best:
            front.append(name)
            best = loss
    return front


def pareto_chart(path, title: str, points: dict[str, tuple[float, float]], groups: dict[str, str]):
    """points: {run: (training FLOPs, final val_bpb)}; groups: {run: its size}, one marker per size."""
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    markers = dict(zip(dict.fromkeys(groups.values()), cycle("os^Dv")))
    for group, marker in markers.items():
        names = [n for n in points if groups[n] == group]
        ax.scatter([points[n][0] for n in names], [points[n][1] for n in names], marker=marker, s=28, alpha=0.8,
                   label=group)
    front = pareto_front(points)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], color="black", linewidth=1.0,
            drawstyle="steps-post", label="Pareto front (no run is both cheaper and better)")
    for n in front:
        ax.annotate(n, points[n], fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", xlabel="training FLOPs (log scale)", ylabel="final val_bpb")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, path, title)


def tokens_chart(path, title: str, curves: dict[str, tuple[list, list]], ylabel="validation loss (legacy)"):
    """curves: {run: (tokens seen, values)}: runs whose steps see different numbers of tokens, at equal data."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for (label, (tokens, values)), (ls, marker) in zip(curves.items(), cycle(STYLES)):
        ax.plot(tokens, values, linestyle=ls, marker=marker, markersize=4, markevery=max(1, len(tokens) // 6),
                linewidth=1.4, alpha=0.8, label=label)
    ax.set(xlabel="tokens seen (optimiser steps × batch_size × block_size)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, path, title)


def scale_chart(path, title: str, panels: list[tuple[str, str, list, list, list]]):
    """One panel per step: (step, metric, parameters of each size, Δ at each size, noise threshold at each size);
    the grey band is ±threshold, inside it a Δ is seed noise."""
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    for ax, (step, metric, params, deltas, bands) in zip(axes.flat, panels):
        if all(b is not None for b in bands):
            ax.fill_between(params, [-b for b in bands], bands, color=GREY, alpha=0.35,
                            label="seed noise (±2·√2·σ)")
        ax.plot(params, deltas, marker="o", color="#4C72B0")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xticks(params)  # one tick per size, labelled with its parameters: 25k, 100k, 397k
        ax.xaxis.set_major_formatter(EngFormatter(places=0, sep=""))
        ax.minorticks_off()
        ax.set_title(step, fontsize=8)
        ax.set_xlabel("non-embedding parameters", fontsize=7)
        ax.set_ylabel(f"Δ {metric}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    save(fig, path, title)
