import json
import math
import re
import statistics

import pytest

from conftest import committed_params
from mainrun.configure import configure, run_settings, tokenized_dir
from mainrun.report import build_report
from mainrun.report import charts
from mainrun.report.analyse import judge, noise_levels, noise_spread, pooled_noise
from mainrun.report.load import Run
from mainrun.runlog import write_json

pytestmark = pytest.mark.usefixtures("charts_not_rendered")  # conftest.py: charts built, not encoded

DEFAULT_RUNS = ["baseline", "r1_adamw", "r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
                "r4_4_parallel", "adamw_rmsnorm", "adamw_rope", "adamw_swiglu", "adamw_parallel",
                "sgd_rmsnorm", "sgd_rope", "sgd_swiglu", "sgd_parallel"]


def fake_tokenized(root, params, cap=None):
    """The meta.json of every tokenizer params.yaml asks for: enough for the configure stage. cap: the most tokens
    a tokenizer reaches (a corpus with no more merges); tokenizers that stop there share their data."""
    tokenizers = [("bpe", v) for v in params["vocab_sizes"]]
    tokenizers += [(kind, params["vocab_size"]) for kind in params["alt_tokenizers"]]
    for kind, asked in tokenizers:
        reached = min(asked, cap or asked)
        write_json(tokenized_dir(root, kind, asked) / "meta.json", {"vocab_size": reached, "fingerprint": f"{kind}-{reached}",
                                            "train": {"tokens": 1_102_455}, "val": {"tokens": 120_000}})
    return root


def fake_artifacts(root, params, values: dict[str, float], cap=None, steps=None):
    """What the configure and train stages leave behind, with chosen final losses (val_bpb: 1.5x)."""
    configure(params, fake_tokenized(root / "tokenized", params, cap), root / "configs", root / "runs.yaml")
    for name, v in values.items():
        write_json(root / "metrics" / f"{name}.json", {
            "val_loss": v, "val_loss_per_token": 3 * v, "val_bpb": 1.5 * v, "val_tokens_counted_frac": 0.9,
            "params": 1000, "steps": (steps or {}).get(name, 10), "batches_per_epoch": 2, "train_tokens_per_epoch": 100,
            "train_seconds": 1.0, "tokens_per_second": 100.0, "device": "cpu"})
        live = root / "dvclive" / name / "plots" / "metrics"
        live.mkdir(parents=True)
        (live / "val_loss.tsv").write_text("step\tval_loss\n1\t2.0\n10\t%s\n" % v)
        (live / "train_loss.tsv").write_text("step\ttrain_loss\n1\t2.5\n10\t%s\n" % v)
    return root


def make_report(tmp_path, params, values, source="synthetic", cap=None, steps=None):
    params["data"]["source"] = source
    fake_artifacts(tmp_path, params, values, cap, steps)
    stats = {"source": source, "train": {"titles": 90}, "val": {"titles": 10}}
    summary = build_report(params["data"], stats, tmp_path / "configs", tmp_path / "metrics", tmp_path / "dvclive",
                           tmp_path / "reports")
    return (tmp_path / "reports" / "report.md").read_text(), summary


SEEDS = ["r1_adamw-seed1338", "r1_adamw-seed1339", "r4_4_parallel-seed1338", "r4_4_parallel-seed1339"]


def chain_values(step=0.05, noise=0.01) -> dict[str, float]:
    """Each default variant `step` below the one before; the seed repeats `noise` either side of their variant."""
    values = {n: 1.5 - step * i for i, n in enumerate(DEFAULT_RUNS)}
    return values | {s: values[s.split("-")[0]] + (noise if s.endswith("8") else -noise) for s in SEEDS}


@pytest.fixture(scope="module")
def chain_report(tmp_path_factory):
    """The committed chains with chain_values(), rendered once for the tests that only read the report."""
    root = tmp_path_factory.mktemp("chain")
    text, summary = make_report(root, committed_params(), chain_values())
    return text, summary, root


def test_noise_rule_pools_sigma_over_every_repeated_variant():
    groups = {"a": [1.30, 1.33, 1.31], "b": [1.10, 1.12]}
    runs = {n: Run(n, {}, repeat_of=None if "-" not in n else n.split("-")[0], metrics={"val_loss": v, "val_bpb": v})
            for n, v in {"a": 1.30, "a-1": 1.33, "a-2": 1.31, "b": 1.10, "b-1": 1.12, "lone": 1.0}.items()}
    assert noise_spread(runs) == groups
    ss = 2 * statistics.variance(groups["a"]) + statistics.variance(groups["b"])
    noise = pooled_noise(groups)
    assert noise.df == 3 and noise.sigma == pytest.approx(math.sqrt(ss / 3)) and noise.groups == groups
    assert noise.threshold == pytest.approx(2 * math.sqrt(2) * noise.sigma)
    assert noise_levels(runs)["val_bpb"].sigma == pytest.approx(noise.sigma)
    doubled = {n: Run(n, {}, repeat_of=r.repeat_of, metrics={"val_loss": v, "val_bpb": 2 * v})
               for n, r in runs.items() for v in [r.metrics["val_loss"]]}
    assert noise_levels(doubled)["val_bpb"].sigma == pytest.approx(2 * noise.sigma)  # each metric its own spread
    t = noise.threshold
    assert judge(1.01 * t, t) == "worse" and judge(-1.01 * t, t) == "better" and judge(0.99 * t, t) == "within noise"
    assert judge(5.0, None) == "not measured" and pooled_noise({}) is None
    assert judge(t, t) == "within noise"  # |Δ| must exceed the threshold


def test_every_difference_is_judged_against_the_measured_noise(params, tmp_path):
    values = chain_values() | {"adamw_rmsnorm": chain_values()["r1_adamw"] + 0.002}  # one step far inside the noise
    text, summary = make_report(tmp_path, params, values)
    noise = pooled_noise(noise_spread(load_like(values)))  # each variant and its two repeats: v, v + 0.01, v - 0.01
    assert noise.sigma == pytest.approx(0.01) and noise.df == 4
    assert summary["noise"]["val_loss"]["threshold"] == pytest.approx(noise.threshold, abs=1e-6)
    assert "not measured" not in text and f"|Δ| > 2·√2·σ" in text
    assert f"legacy val_loss -0.0500, beyond seed noise (±{noise.threshold:.4f}): better" in text
    assert f"legacy val_loss +0.0020, within seed noise (±{noise.threshold:.4f}): no effect shown" in text
    assert "**This run: \"only with AdamW\" does not hold.**" in text  # both bases improved beyond the noise
    figs = tmp_path / "reports" / "figures"
    assert {p.name for p in figs.glob("*.png")} >= {"only_with_adamw.png", "seed_noise.png", "final_val_bpb.png"}
    assert "(1.4%)" in text and "0.019" in text  # the write-up's repeat gap beside the measured spread


def load_like(values: dict) -> dict:
    return {n: Run(n, {}, repeat_of=n.split("-")[0] if "-" in n else None, metrics={"val_loss": v})
            for n, v in values.items()}


def test_a_step_to_identical_settings_is_named_not_differenced(params, tmp_path):
    params["vocab_size"] = 16000  # the mission's own `-S vocab_size=16000`: r2_vocab is now r1_adamw
    text, summary = make_report(tmp_path, params, chain_values())
    assert "**r2_vocab equals r1_adamw here: the same settings**" in text
    assert "Figure 2: Rec. 1 vs Rec. 1 & 2 (write-up: vocab 16,000 → 32,000; this run: no change)" in text
    step = next(v for v in summary["verdicts"] if v["run"] == "r2_vocab" and v["figure"] == "fig2_vocab")
    assert step["judgement"] == "same run" and step["agreement"] == "not tested here: the two runs are one"


def test_an_unreached_vocabulary_is_flagged_where_it_matters(params, tmp_path):
    text, _ = make_report(tmp_path / "short", params, chain_values(), cap=20000)
    assert "this run: vocab 16,000 → 20,000 of 32,000 asked)" in text
    assert "**r2_vocab's tokenizer stopped at 20,000 of the 32,000 asked**" in text
    assert "| bpe | 32,000 | **20,000 (stopped short)** |" in text
    assert text.count("stopped at 20,000") == 2  # Figure 2 and the chain's step; Figure 5 changes vocab too
    text, _ = make_report(tmp_path / "both", params, chain_values(), cap=12000)
    assert "**r2_vocab equals r1_adamw here: both tokenizers stopped at 12,000**" in text
    assert "The tokenizers asked for 16,000 and 32,000 are one and the same here" in text


def test_titles_and_the_opening_name_what_ran(params, tmp_path):
    """The CPU profile's sizes: every title says them beside the write-up's."""
    params.update(vocab_sizes=[250, 500, 1000], vocab_size=1000)
    params["variants"]["baseline"] = {"vocab_size": 500, "block_size": 32}
    params["variants"]["r3_block256"] = {"block_size": 64}
    params["model"].update(n_layer=2, d_model=64)
    params["train"]["epochs"] = 4
    text, _ = make_report(tmp_path, params, chain_values(), steps={n: 5 for n in DEFAULT_RUNS[3:8]})
    assert "### Figure 2: Rec. 1 vs Rec. 1 & 2 (write-up: vocab 16,000 → 32,000; this run: vocab 500 → 1,000)" in text
    assert "### Figure 3: Rec. 1 & 2 vs Rec. 1, 2 & 3 (write-up: block 128 → 256; this run: block 32 → 64)" in text
    assert ("### Figure 4b: Rec. 4.1-4.4 stacked on Rec. 1 alone (write-up: on AdamW, vocab 16,000, block 128; "
            "this run: on AdamW, vocab 500, block 32)") in text
    assert "- **Model:** 2 layers, 8 heads, d_model 64" in text and "- **Training:** 4 epochs at batch 64" in text
    assert "| n_layer | 6 | 2 |" in text and "| vocab_size | 16,000, 32,000 | 500, 1,000 |" in text
    assert "Confound: 5 optimiser steps against 10" in section(text, "### Figure 3")
    assert "vocab 32k" not in text and "block 256)" not in text


def section(text: str, title: str) -> str:
    return title + text.split(title, 1)[1].split("\n#", 1)[0]


def test_verdicts_say_this_run_first_then_the_writeup_and_whether_they_agree(chain_report):
    text, _, _ = chain_report
    fig1 = section(text, "### Figure 1")
    ours, theirs = fig1.index("This run: legacy val_loss -0.0500"), fig1.index("Write-up: legacy val_loss -0.4233")
    assert ours < theirs and "**Agree.**" in fig1
    fig4b = section(text, "### Figure 4b")  # the write-up's adamw_rmsnorm step (+0.010) is inside its own repeat gap
    assert "Write-up: legacy val_loss +0.0100, within its repeat gap (±0.0190): no effect shown." in fig4b
    assert "**This run shows an effect the write-up's own repeat gap could not.**" in fig4b
    assert "The two metrics move in the same direction at every step." in text


def test_bars_start_at_zero_and_the_noise_band_is_drawn(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    charts.plot_bars(ax, ["a", "b"], [1.40, 1.41], [0.02, 0.02], "val_bpb")
    assert ax.get_ylim()[0] <= 0
    charts.plot_bars(ax, ["a", "b"], [-0.05, 0.01], None, "Δ", band=0.03)
    assert any(p.get_label().startswith("within seed noise (±0.0300)") for p in ax.patches)
    plt.close(fig)


def test_toy_run_prints_no_published_difference(chain_report):
    text, summary, tmp_path = chain_report
    assert "Differences from the write-up's setting" in text and not summary["writeup_setting"]
    assert "| data.source | hf:julien040/hacker-news-posts | synthetic |" in text
    assert "Mainrun's published log" not in text and "this run − write-up" not in text
    assert "1 of the 8 step-to-step differences on its charts is that size or smaller" in text
    assert len(list((tmp_path / "reports" / "figures").glob("fig*.png"))) == 6
    assert len(re.findall(r"!\[Figure \d\w?:", text)) == 6


def test_writeup_setting_shows_differences_and_grey_published_curve(params, tmp_path):
    values = {n: 1.20 for n in DEFAULT_RUNS} | {"baseline": 1.76, "r4_4_parallel": 1.14}
    values |= {s: values[s.split("-")[0]] + 0.001 for s in SEEDS}
    text, summary = make_report(tmp_path, params, values, source="hf:julien040/hacker-news-posts")
    assert summary["writeup_setting"] and "**Write-up setting:**" in text
    assert "| baseline | 1.7533 | 1.7600 | +0.0067 |" in text
    assert "| r4_4_parallel | 1.1370 | 1.1400 | +0.0030 |" in text
    assert "| sgd_rmsnorm | 1.748–1.768 | 1.2000 | -0.5480 |" in text  # distance to the published range
    assert "| parameters | 27,172,864 | 1,000 | NO |" in text  # the faithfulness table compares structure
    assert "published values as grey stars" in text


def test_headline_tables(chain_report):
    text, summary, tmp_path = chain_report
    assert "| r1_adamw | optimizer SGD → AdamW, lr, weight_decay | 1.4500 (-3.3%) | 2.1750 (-3.3%) | 90.0% |" in text
    assert set(summary["val_bpb"]) == set(DEFAULT_RUNS + SEEDS)
    chain = DEFAULT_RUNS[:8]  # the headline chain: DVC's metrics file holds it, the other runs are in summary.json
    assert json.loads((tmp_path / "reports" / "headline.json").read_text()) == {
        m: {n: round(summary[m][n], 6) for n in chain} for m in ("val_loss", "val_bpb")}
    for png in ("cumulative.png", "final_val_bpb.png"):
        assert (tmp_path / "reports" / "figures" / png).stat().st_size > 1000


def test_study_sections_appear_when_switched_on(params, tmp_path):
    params["studies"] = {"vocab_sweep": True, "failed_attempts": True}
    names = list(run_settings(params))
    values = {n: 1.4 + 0.01 * i for i, n in enumerate(names)} | {"vocab_8k": 1.0}
    text, _ = make_report(tmp_path, params, values)
    assert "## Vocabulary sweep" in text and "## What the write-up says did not help" in text
    assert "| 16,000 | 16,000 | r1_adamw |" in text and "| 32,000 | 32,000 | r2_vocab |" in text
    assert "| 8,000 | 8,000 | vocab_8k |" in text
    assert "Best by bits per byte: vocab_8k; by the legacy figure: vocab_8k (they agree)" in text
    assert (tmp_path / "reports" / "figures" / "vocab_sweep.png").exists()


def test_the_tokenize_stage_warns_when_a_vocabulary_stops_short(params, tmp_path, monkeypatch, capsys):
    import shutil
    import sys
    import yaml
    from mainrun.data import write_split
    from mainrun.synthetic import synthetic_titles
    from stages import tokenize
    titles = synthetic_titles(300, seed=3)
    (tmp_path / "raw").mkdir()
    write_split(titles[:270], tmp_path / "raw" / "train.json")
    write_split(titles[270:], tmp_path / "raw" / "val.json")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    for asked in (300, 5000):
        monkeypatch.setattr(sys, "argv", ["tokenize", "--vocab-size", str(asked), "--raw", "raw", "--out",
                                          f"tok{asked}", "--metrics", f"m{asked}.json"])
        tokenize.main()
        shutil.rmtree(f"tok{asked}")
    out = capsys.readouterr().out
    assert "WARNING: bpe-300" not in out
    assert re.search(r"WARNING: bpe-5000 stopped at [\d,]+ of the 5,000 tokens asked", out)
