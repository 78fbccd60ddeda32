"""The ablation report, regenerated from cached artifacts alone: load -> analyse -> render.

load: the configure stage's resolved settings, the evaluate stages' metrics, the dvclive curves.
analyse: pure functions from those to comparisons, verdicts, noise and studies; never from a run's name.
render: markdown lines and chart specs; the charts are drawn once the report is written.
"""
from pathlib import Path

from . import analyse, charts, render, render_studies, studies, writeup
from .analyse import noise_spread, noise_threshold
from .load import load_published, load_runs, read_configs
from .render import verdict
from ..runlog import write_json

__all__ = ["build_report", "noise_spread", "noise_threshold", "verdict"]


def sections(setting, data_stats: dict, runs: dict, published: dict):
    """Every section of the report in order, each as (lines, chart specs)."""
    noise = analyse.noise_levels(runs)
    yield render.header(data_stats, runs, setting), []
    root = setting.match.get(setting.variants[0])
    if root in runs and setting.variants[0] in setting.comparable:
        log = published["baseline_log"]
        yield render.faithfulness(writeup.faithfulness(runs[root].metrics, log), runs[root].metrics, log), []
    for key, fig in published["figures"].items():
        yield render.figure(writeup.figure(key, fig, runs, setting, noise, published), runs)
    chain = analyse.chains(runs).get(0, [])
    yield render.chain(chain, runs)
    yield render.disagreement(analyse.steps(chain, runs)), []
    yield render_studies.only_with(studies.only_with(runs, noise))
    for study, names in studies.study_runs(runs).items():
        sweep = studies.vocab_sweep(names, runs, noise)
        yield (render_studies.vocab_sweep(sweep, runs) if sweep else
               render_studies.attempts(study, studies.attempts(names, runs, noise), runs))
    steps = writeup.published_steps(published)
    yield render_studies.seed_noise(studies.seed_noise(runs, published["rec1_repeat"], steps))
    yield render.every_run(runs), []


def build_report(data: dict, data_stats: dict, configs_dir, metrics_dir, live_dir, out_dir) -> dict:
    """data: params.yaml's data section, the one setting the run configs do not hold."""
    out, fig_dir = Path(out_dir), Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    configs = read_configs(configs_dir)
    runs = load_runs(configs, metrics_dir, live_dir)
    published = load_published()
    setting = writeup.check_setting(data, configs, published["setting"])
    lines, specs = [], []
    for section_lines, section_specs in sections(setting, data_stats, runs, published):
        lines += section_lines
        specs += section_specs
    (out / "report.md").write_text("\n".join(lines) + "\n")
    for spec in specs:
        charts.draw(spec, fig_dir)
    summary = {"writeup_setting": setting.complete, "runs": len(runs)}
    for metric in ("val_loss", "val_loss_per_token", "val_bpb"):
        summary[metric] = {n: round(r.metrics[metric], 6) for n, r in runs.items()}
    write_json(out / "summary.json", summary)
    return summary
