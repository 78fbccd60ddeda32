"""The ablation report, regenerated from cached artifacts alone: load -> analyse -> render.

load: the configure stage's resolved settings, the train stages' evaluations, the dvclive curves.
analyse (+ writeup, the published side): pure functions to comparisons, verdicts, noise and studies; never from
a run's name. render: markdown lines, and the charts to draw once the report is written.
"""
import os
from dataclasses import asdict
from pathlib import Path

from . import analyse, attribution, lr_sweep, render, render_attribution, render_lr_sweep, render_scale, scale, writeup
from .load import load_published, load_runs, read_configs
from ..runlog import read_json, write_json

__all__ = ["build_report"]
COST = ("params", "params_non_embedding", "train_flops", "flops_per_step", "flops_per_token", "tokens_seen",
        "train_seconds", "device")  # mainrun.cost.COST_KEYS and the rest of a run's cost (not imported: torch)


def sections(setting, data_stats: dict, runs: dict, published: dict, noise: dict, fig_dir, verdicts: list,
             sizes: list = (), index: list = (), studied: dict | None = None, parts: dict | None = None,
             swept: list = (), cap: float = lr_sweep.CAP):
    """Every section of the report in order, each as (lines, charts to draw); verdicts collects each judgement,
    studied the scale study's summary (and the lr sweep's, under "lr_sweep") (sizes: scale.read_scale's, index:
    configs/runs.json's rows), parts the attribution study's steps (attribution.study's), swept the lr sweep's
    (lr_sweep.study's)."""
    tuned = lr_sweep.only_with_tuned(swept, runs, noise, cap) if swept else None
    yield render.what_ran(data_stats, runs, setting, noise) + render_lr_sweep.opening(swept, tuned), []
    yield ["## Write-up, figure by figure", ""], []
    root = setting.match.get(next(iter(setting.runs)))
    if root in runs and next(iter(setting.runs)) in setting.comparable:
        log = published["baseline_log"]
        yield render.faithfulness(writeup.faithfulness(runs[root].metrics, log), runs[root].metrics, log), []
    repeated = {setting.match[w]: note for w, note in writeup.published_twice(published).items()
                if setting.match.get(w) in runs}
    for key, fig in published["figures"].items():
        f = writeup.figure(key, fig, runs, setting, noise, published)
        verdicts += [{"figure": key, **asdict(c), "writeup": t.judgement, "agreement": a} for c, t, a in f.steps]
        yield render.figure(f, runs, setting, noise, published["repeat_gap"], fig_dir, repeated)
    chain = analyse.chains(runs).get(0, [])
    comparisons = [analyse.compare(runs[a], runs[b], noise) for a, b in zip(chain, chain[1:])]
    yield render.chain(chain, comparisons, runs, noise, fig_dir)
    yield render_scale.cost(runs, sizes, fig_dir)
    lines, draws, summary = render_scale.scale_study(sizes, index, runs, fig_dir)
    if summary is not None and studied is not None:
        studied.update(summary)
    yield lines, draws
    yield render_attribution.section(parts or {}, fig_dir)
    lines, draws, summary = render_lr_sweep.section(swept, sizes, cap, fig_dir)
    if summary is not None and studied is not None:
        studied["lr_sweep"] = summary
    yield lines, draws
    stacked = analyse.only_with(runs, noise)
    claim = analyse.only_with_verdict(stacked, runs)
    verdicts += [{"figure": "only_with_adamw", **asdict(c), "claim": claim} for c in stacked]
    yield render.only_with(stacked, claim, published["only_with_adamw"], runs, fig_dir)
    if tuned and studied is not None:
        studied["lr_sweep"]["only_with_adamw"] = {"default": tuned["default"], "tuned": tuned["tuned"]}
    yield render_lr_sweep.only_with(tuned, cap), []
    for study, names in analyse.study_runs(runs).items():
        sweep = analyse.vocab_sweep(names, runs, noise)
        yield (render.vocab_sweep(sweep, runs, fig_dir) if sweep else
               render.attempts(study, analyse.attempts(names, runs, noise), runs, fig_dir))
    yield render.seed_noise(noise, runs, published, writeup.published_steps(published), fig_dir)
    yield render.every_run(runs), []


def shown(source: str) -> str:
    """A data source as the report prints it: a file path relative to the project (the stages run from its root),
    so no report names a folder of the machine it ran on."""
    return os.path.relpath(source) if os.path.isabs(source) else source


def build_report(data: dict, data_stats: dict, configs_dir, metrics_dir, live_dir, out_dir,
                 lr_cap: float = lr_sweep.CAP) -> dict:
    """data: params.yaml's data section, the one setting the run configs do not hold; lr_cap: the self-extending lr
    sweep's cap (params lr_sweep.extend.cap)."""
    data, data_stats = {**data, "source": shown(data["source"])}, {**data_stats, "source": shown(data_stats["source"])}
    out, fig_dir = Path(out_dir), Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):  # a chart this run no longer draws must not linger
        old.unlink()
    configs = read_configs(configs_dir)
    runs = load_runs(configs, metrics_dir, live_dir)
    published = load_published()
    setting = writeup.check_setting(data, configs, published["setting"])
    noise = analyse.noise_levels(runs)
    index = read_json(Path(configs_dir) / "runs.json")["runs"]
    sizes = scale.read_scale(configs_dir, metrics_dir, live_dir, runs, noise)
    parts = attribution.study(index, runs, noise, sizes, configs_dir, metrics_dir, live_dir)
    pool = {r.name: r for r in runs.values()} | {r.name: r for s in sizes for r in s.runs.values()}
    pool |= lr_sweep.load_runs(index, pool, configs_dir, metrics_dir)
    swept = lr_sweep.study(index, pool, runs, noise, sizes, lr_cap)
    lines, draws, verdicts, studied = [], [], [], {}
    for section_lines, section_draws in sections(setting, data_stats, runs, published, noise, fig_dir, verdicts,
                                                 sizes, index, studied, parts, swept, lr_cap):
        lines += section_lines
        draws += section_draws
    (out / "report.md").write_text("\n".join(lines) + "\n")
    for draw in draws:
        draw()
    summary = {"writeup_setting": setting.complete, "runs": len(runs),
               "noise": {m: n and {"sigma": round(n.sigma, 6), "threshold": round(n.threshold, 6), "df": n.df}
                         for m, n in noise.items()},
               "verdicts": [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
                            for row in verdicts]}
    for metric in ("val_loss", "val_loss_per_token", "val_bpb"):
        summary[metric] = {n: round(r.metrics[metric], 6) for n, r in runs.items()}
    every = {**runs, **{r.name: r for s in sizes for r in s.runs.values()}}
    summary["cost"] = [{"run": n, **{k: r.metrics[k] for k in COST if k in r.metrics}}
                       for n, r in every.items()]  # rows, not a mapping: dvc exp show stays narrow
    if studied.get("lr_sweep"):
        summary["lr_sweep"] = studied.pop("lr_sweep")
    if studied:
        summary["scale"] = studied
    if parts:
        summary["attribution"] = attribution.summary(parts)
    write_json(out / "summary.json", summary)
    write_json(out / "headline.json", headline(runs))
    return summary


def headline(runs: dict) -> dict:
    """DVC's metrics file: the challenge's figure (legacy val_loss) and the honest one (val_bpb) along the headline
    chain, so `dvc metrics show` stays one short row and `dvc exp show` loses the other runs (see summary.json)."""
    chain = analyse.chains(runs).get(0, [])
    return {metric: {n: round(runs[n].metrics[metric], 6) for n in chain} for metric in ("val_loss", "val_bpb")}
