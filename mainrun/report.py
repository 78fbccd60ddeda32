"""The ablation report, regenerated from cached artifacts alone (configs, metrics, dvclive curves).

Every verdict line is computed here from the numbers; none is written by hand.
"""
from importlib.resources import files
from pathlib import Path

import pandas as pd
import yaml

from . import charts
from .config import resolve_variants
from .configure import run_settings
from .runlog import read_json, write_json
from .studies import noise_section, noise_spread, noise_threshold, study_sections, verdict

EXECUTION_KEYS = {"device", "bf16", "tf32", "compile", "checkpoint_every_s", "study"}


def load_published() -> dict:
    return yaml.safe_load(files("mainrun").joinpath("published.yaml").read_text())


def load_runs(configs_dir, metrics_dir, live_dir) -> dict[str, dict]:
    """{run: {"spec", "metrics", "val": (steps, values), "train": (steps, values)}} for every enabled run."""
    runs = {}
    for path in sorted(Path(configs_dir).glob("*.json")):
        spec = read_json(path)
        metrics_path = Path(metrics_dir) / path.name
        if not spec["enabled"] or not metrics_path.exists():
            continue
        run = {"spec": spec, "metrics": read_json(metrics_path)}
        for curve in ("val_loss", "train_loss"):
            tsv = Path(live_dir) / spec["name"] / "plots" / "metrics" / f"{curve}.tsv"
            df = pd.read_csv(tsv, sep="\t") if tsv.exists() else pd.DataFrame({"step": [], curve: []})
            run[curve] = (df["step"].tolist(), df[curve].tolist())
        runs[spec["name"]] = run
    return runs


def writeup_setting(params: dict) -> tuple[bool, str]:
    """True only when data, sizes and every published variant's resolved settings are the write-up's exactly."""
    s = load_published()["setting"]
    for section in ("data", "model", "train"):
        for key, value in s[section].items():
            if params[section].get(key) != value:
                return False, f"{section}.{key} is {params[section].get(key)!r}, the write-up used {value!r}"
    for key in ("seed", "vocab_size"):
        if params[key] != s[key]:
            return False, f"{key} is {params[key]!r}, the write-up used {s[key]!r}"
    expected = resolve_variants({**params, "variants": s["variants"]})
    actual = resolve_variants(params)
    for name, want in expected.items():
        have = actual.get(name)
        if have is None:
            return False, f"variant {name} is not in params.yaml"
        for key in set(want) | set(have):
            if key not in EXECUTION_KEYS and want.get(key) != have.get(key):
                return False, f"variant {name} has {key}={have.get(key)!r}, the write-up used {want.get(key)!r}"
    return True, "real dataset, Mainrun sizes, 7 epochs: the write-up's own setting"


REPEAT_GAP = "the write-up's Rec. 1 repeat gap"


def _counting(run) -> tuple:
    """What decides which tokens the legacy figure counts and how many there are."""
    spec = run["spec"]
    return (spec.get("model", {}).get("block_size"), spec.get("train", {}).get("vocab_size"),
            spec.get("train", {}).get("tokenizer"))


def _fmt(x, digits=4):
    return "—" if x is None else f"{x:.{digits}f}"


def _published_text(value):
    return f"{value[0]:.3f}–{value[1]:.3f}" if isinstance(value, list) else f"{value:.4f}"


def _published_gap(value, ours):
    """ours minus the published value; 0 inside a published range."""
    if isinstance(value, list):
        return 0.0 if value[0] <= ours <= value[1] else ours - (value[0] if ours < value[0] else value[1])
    return ours - value


def figure_section(key, fig, runs, in_setting, noise, fig_dir, published) -> list[str]:
    names = [n for n in fig["final"] if n in runs]
    lines = [f"### {fig['title']}", ""]
    if not names:
        return lines + ["No variant of this chart ran.", ""]
    grey, bands = {}, {}
    if in_setting:
        for n in names:
            if n == "baseline":
                log = published["baseline_log"]["val_loss"]
                grey[n] = (list(log), list(log.values()))
            elif isinstance(fig["final"][n], list):
                bands.setdefault(tuple(fig["final"][n]), []).append(n)
            else:
                grey[n] = ([fig.get("steps", {}).get(n, runs[n]["val_loss"][0][-1])], [fig["final"][n]])
    charts.curves_chart(fig_dir / f"{key}.png", fig["title"], {n: runs[n]["val_loss"] for n in names}, grey,
                        bands={", ".join(ns): lohi for lohi, ns in bands.items()})
    lines += [f"![{fig['title']}](figures/{key}.png)", "",
              "| variant | published final | this run: val_loss (legacy) | difference | val_loss_per_token | val_bpb |",
              "|---|---|---|---|---|---|"]
    for n in names:
        m, pub = runs[n]["metrics"], fig["final"][n]
        diff = f"{_published_gap(pub, m['val_loss']):+.4f}" if in_setting else "—"
        lines.append(f"| {n} | {_published_text(pub)} | {m['val_loss']:.4f} | {diff} | "
                     f"{m['val_loss_per_token']:.4f} | {m['val_bpb']:.4f} |")
    lines.append("")
    for prev, n in zip(names, names[1:]):
        a, b = runs[prev], runs[n]
        line = verdict(f"{n} (vs {prev})", b["metrics"]["val_loss"] - a["metrics"]["val_loss"], noise)
        line += f"; val_bpb by {b['metrics']['val_bpb'] - a['metrics']['val_bpb']:+.4f}"
        if _counting(a) != _counting(b):
            line += " (block size or vocabulary differ, so the legacy figure counts other tokens: trust val_bpb)"
        lines.append(f"- {line}")
        p_prev, p_n = fig["final"][prev], fig["final"][n]
        if not isinstance(p_prev, list) and not isinstance(p_n, list):
            gap = abs(published["rec1_repeat"][0] - published["rec1_repeat"][1])
            lines.append(f"  - published: {verdict(n, p_n - p_prev, gap, noise_name=REPEAT_GAP)}")
    return lines + [""]


def faithfulness_section(ours: dict, log: dict) -> list[str]:
    """The baseline's structure against Mainrun's published log: these must match exactly."""
    rows = [("parameters", "params", "parameters"), ("batches per epoch", "batches_per_epoch", "batches_per_epoch"),
            ("training tokens per epoch", "train_tokens_per_epoch", "train_tokens_per_epoch"),
            ("steps", "steps", "steps")]
    lines = ["### Baseline against Mainrun's published log", "", "| | Mainrun log | this run | match |", "|---|---|---|---|"]
    for label, mine, theirs in rows:
        lines.append(f"| {label} | {log[theirs]:,} | {ours.get(mine, 0):,} | {'yes' if ours.get(mine) == log[theirs] else 'NO'} |")
    lines.append(f"| training seconds | {log['train_seconds']:,} (CPU) | {ours['train_seconds']:,.0f} ({ours['device']}) | — |")
    return lines + [""]


def variant_groups(params: dict) -> list[list[str]]:
    """Chains as params.yaml declares them: a new group starts at every `from:`."""
    groups = []
    for name, delta in params["variants"].items():
        if not groups or "from" in (delta or {}):
            groups.append([])
        groups[-1].append(name)
    return groups


def chain_section(chain, runs, noise, fig_dir) -> list[str]:
    chain = [n for n in chain if n in runs]
    if not chain:
        return []
    base = runs[chain[0]]["metrics"]["val_loss"]
    charts.curves_chart(fig_dir / "cumulative.png", "Cumulative recommendations vs the baseline",
                        {n: runs[n]["val_loss"] for n in chain})
    values = [runs[n]["metrics"]["val_loss"] for n in chain]
    notes = [""] + [f"{values[i] - values[i - 1]:+.3f} / {values[i] - base:+.3f}" for i in range(1, len(chain))]
    charts.bars_chart(fig_dir / "final_val_loss.png", "Final val_loss (Δ previous / Δ baseline)", chain, values,
                      annotations=notes)
    lines = ["## The cumulative chain", "", "![cumulative](figures/cumulative.png)", "",
             "![final val_loss](figures/final_val_loss.png)", "",
             "| variant | val_loss (legacy) | Δ previous | Δ baseline | val_loss_per_token | val_bpb | Δ bpb previous |",
             "|---|---|---|---|---|---|---|"]
    for i, n in enumerate(chain):
        m = runs[n]["metrics"]
        prev = runs[chain[i - 1]]["metrics"] if i else None
        lines.append(f"| {n} | {m['val_loss']:.4f} | {_fmt(prev and m['val_loss'] - prev['val_loss'])} | "
                     f"{m['val_loss'] - base:+.4f} | {m['val_loss_per_token']:.4f} | {m['val_bpb']:.4f} | "
                     f"{_fmt(prev and m['val_bpb'] - prev['val_bpb'])} |")
    return lines + [""]


def disagreement_section(chain, runs) -> list[str]:
    """Where the legacy figure and bits per byte tell different stories, and why."""
    chain = [n for n in chain if n in runs]
    lines = ["## Legacy metric vs bits per byte", "",
             "The legacy figure divides the summed loss of the *counted* tokens by the validation *characters*. "
             "It counts only full batches of batch_size×block_size+1 tokens, so a larger block (or a vocabulary that "
             "changes the token count) changes which tokens are counted, and each `<eos>` marker adds five characters "
             "to its denominator. Bits per byte counts every token and divides by UTF-8 bytes (one per end of title), "
             "so it is the one comparable across block sizes and vocabularies.", "",
             "| step | Δ legacy (relative) | Δ bpb (relative) | tokens counted by legacy | agree? |", "|---|---|---|---|---|"]
    moves = []
    for prev, n in zip(chain, chain[1:]):
        a, b = runs[prev]["metrics"], runs[n]["metrics"]
        rl = (b["val_loss"] - a["val_loss"]) / a["val_loss"]
        rb = (b["val_bpb"] - a["val_bpb"]) / a["val_bpb"]
        agree = "no: opposite directions" if rl * rb < 0 else "no: sizes differ" if abs(rl - rb) > 0.02 else "yes"
        lines.append(f"| {n} | {rl:+.2%} | {rb:+.2%} | {a['val_tokens_counted_frac']:.1%} → "
                     f"{b['val_tokens_counted_frac']:.1%} | {agree} |")
        moves.append((b["val_bpb"] - a["val_bpb"], n))
    if moves:
        best = min(moves)
        lines += ["", f"- The recommendation that moved bits per byte most: **{best[1]}** ({best[0]:+.4f} bits/byte)."]
        disagree = [r.split("|")[1].strip() for r in lines if r.endswith("| no: opposite directions |")
                    or r.endswith("| no: sizes differ |")]
        lines.append(f"- The two metrics disagree at: {', '.join(disagree) if disagree else 'no step'}.")
    return lines + [""]


def build_report(params, data_stats, configs_dir, metrics_dir, live_dir, out_dir) -> dict:
    out, fig_dir = Path(out_dir), Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(configs_dir, metrics_dir, live_dir)
    published = load_published()
    in_setting, why = writeup_setting(params)
    noise = noise_threshold(noise_spread(params, runs))
    groups = variant_groups(params)
    device = sorted({r["metrics"]["device"] for r in runs.values()})
    lines = ["# Mainrun ablation report", "",
             f"Data: `{data_stats['source']}`, {data_stats['train']['titles']} train / {data_stats['val']['titles']} "
             f"validation titles. Runs: {len(runs)} on {', '.join(device) or 'nothing'}.", "",
             (f"**Write-up setting:** {why}; published values are compared below." if in_setting else
              f"**Not the write-up's setting** ({why}): published values are shown for reference only, "
              "and no difference from them is computed."), "",
             "## Write-up, figure by figure", ""]
    if in_setting and "baseline" in runs:
        lines += faithfulness_section(runs["baseline"]["metrics"], published["baseline_log"])
    for key, fig in published["figures"].items():
        lines += figure_section(key, fig, runs, in_setting, noise, fig_dir, published)
    lines += chain_section(groups[0], runs, noise, fig_dir)
    lines += disagreement_section(groups[0], runs)
    lines += study_sections(params, runs, noise, fig_dir)
    lines += noise_section(params, runs, published, fig_dir)
    lines += ["## Every run", "",
              "| run | params | steps | val_loss | val_loss_per_token | val_bpb | legacy counted | train s | tokens/s | device |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for n in run_settings(params):
        if n in runs:
            m = runs[n]["metrics"]
            lines.append(f"| {n} | {m['params']:,} | {m['steps']} | {m['val_loss']:.4f} | {m['val_loss_per_token']:.4f} "
                         f"| {m['val_bpb']:.4f} | {m['val_tokens_counted_frac']:.1%} | {m['train_seconds']:.0f} | "
                         f"{m['tokens_per_second']:.0f} | {m['device']} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary = {"writeup_setting": in_setting, "runs": len(runs)}
    for metric in ("val_loss", "val_loss_per_token", "val_bpb"):
        summary[metric] = {n: round(r["metrics"][metric], 6) for n, r in runs.items()}
    write_json(out / "summary.json", summary)
    return summary
