import re
import statistics

import pytest

from mainrun.configure import configure, run_settings
from mainrun.report import build_report, noise_spread, noise_threshold, verdict
from mainrun.report.load import Run
from mainrun.runlog import write_json

DEFAULT_RUNS = ["baseline", "r1_adamw", "r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
                "r4_4_parallel", "adamw_rmsnorm", "adamw_rope", "adamw_swiglu", "adamw_parallel",
                "sgd_rmsnorm", "sgd_rope", "sgd_swiglu", "sgd_parallel"]


def fake_tokenized(root, params):
    """The meta.json of every tokenizer params.yaml asks for: enough for the configure stage."""
    dirs = [f"bpe-{v}" for v in params["vocab_sizes"]]
    dirs += [f"{kind}-{params['vocab_size']}" for kind in params["alt_tokenizers"]]
    for d in dirs:
        write_json(root / d / "meta.json", {"vocab_size": int(d.rsplit("-", 1)[1]), "fingerprint": d,
                                            "train": {"tokens": 1_102_455}, "val": {"tokens": 120_000}})
    return root


def fake_artifacts(root, params, values: dict[str, float]):
    """What the configure, train and evaluate stages leave behind, with chosen final losses."""
    configure(params, fake_tokenized(root / "tokenized", params), root / "configs")
    for i, (name, v) in enumerate(values.items()):
        write_json(root / "metrics" / f"{name}.json", {
            "val_loss": v, "val_loss_per_token": 3 * v, "val_bpb": 1.5 * v + 0.01 * i, "val_tokens_counted_frac": 0.9,
            "params": 1000, "steps": 10, "batches_per_epoch": 2, "train_tokens_per_epoch": 100,
            "train_seconds": 1.0, "tokens_per_second": 100.0, "device": "cpu"})
        live = root / "dvclive" / name / "plots" / "metrics"
        live.mkdir(parents=True)
        (live / "val_loss.tsv").write_text("step\tval_loss\n1\t2.0\n10\t%s\n" % v)
        (live / "train_loss.tsv").write_text("step\ttrain_loss\n1\t2.5\n10\t%s\n" % v)
    return root


def make_report(tmp_path, params, values, source="synthetic"):
    params["data"]["source"] = source
    fake_artifacts(tmp_path, params, values)
    stats = {"source": source, "train": {"titles": 90}, "val": {"titles": 10}}
    summary = build_report(params["data"], stats, tmp_path / "configs", tmp_path / "metrics", tmp_path / "dvclive",
                           tmp_path / "reports")
    return (tmp_path / "reports" / "report.md").read_text(), summary


def test_verdicts_follow_from_the_numbers():
    assert verdict("r1", -0.05, 0.02).endswith("beyond seed noise (0.0200): better")
    assert "by +0.0300" in verdict("r1", 0.03, 0.02) and verdict("r1", 0.03, 0.02).endswith("worse")
    assert verdict("r1", 0.01, 0.02).endswith("within seed noise (0.0200): not shown")
    assert "not measured" in verdict("r1", 0.5, None)


def test_noise_aggregate(params, tmp_path):
    params["noise"] = {"variants": ["r1_adamw"], "seeds": [1338, 1339]}
    runs = {n: Run(n, {}, repeat_of=None if n == "r1_adamw" else "r1_adamw", metrics={"val_loss": v}) for n, v in
            {"r1_adamw": 1.30, "r1_adamw-seed1338": 1.33, "r1_adamw-seed1339": 1.31}.items()}
    assert noise_spread(runs) == {"r1_adamw": [1.30, 1.33, 1.31]}
    assert noise_threshold(noise_spread(runs)) == pytest.approx(0.03)
    values = {n: 1.5 for n in DEFAULT_RUNS} | {n: r.metrics["val_loss"] for n, r in runs.items()}
    text, _ = make_report(tmp_path, params, values)
    mean, std = statistics.mean([1.30, 1.33, 1.31]), statistics.stdev([1.30, 1.33, 1.31])
    assert f"| r1_adamw | 3 | {mean:.4f} ± {std:.4f} | 0.0300 |" in text
    assert "within seed noise (0.0300): not shown" in text
    assert (tmp_path / "reports" / "figures" / "seed_noise.png").exists()


def test_toy_run_prints_no_published_difference(params, tmp_path):
    text, summary = make_report(tmp_path, params, {n: 1.0 + i / 100 for i, n in enumerate(DEFAULT_RUNS)})
    assert "Not the write-up's setting" in text and not summary["writeup_setting"]
    assert "Mainrun's published log" not in text
    assert "1 of the 8 step-to-step differences its charts report is no larger than that" in text
    assert len(list((tmp_path / "reports" / "figures").glob("fig*.png"))) == 6
    assert len(re.findall(r"!\[Figure \d\w?:", text)) == 6
    rows = [line for line in text.splitlines() if line.startswith("| baseline | 1.7533 |")]
    assert rows and all(row.split("|")[4].strip() == "—" for row in rows)
    # the write-up's own differences, judged against its Rec. 1 repeat gap (1.330 vs 1.311)
    assert ("published: adamw_rmsnorm changed the legacy val_loss by +0.0100, within the write-up's Rec. 1 repeat gap "
            "(0.0190): not shown") in text
    assert "published: r1_adamw changed the legacy val_loss by -0.4233, beyond" in text


def test_writeup_setting_shows_differences_and_grey_published_curve(params, tmp_path):
    values = {n: 1.20 for n in DEFAULT_RUNS} | {"baseline": 1.76, "r4_4_parallel": 1.14}
    text, summary = make_report(tmp_path, params, values, source="hf:julien040/hacker-news-posts")
    assert summary["writeup_setting"] and "**Write-up setting:**" in text
    assert "| baseline | 1.7533 | 1.7600 | +0.0067 |" in text
    assert "| r4_4_parallel | 1.1370 | 1.1400 | +0.0030 |" in text
    assert "| sgd_rmsnorm | 1.748–1.768 | 1.2000 | -0.5480 |" in text  # distance to the published range
    assert "| parameters | 27,172,864 | 1,000 | NO |" in text  # the faithfulness table compares structure


def test_headline_tables_and_disagreement(params, tmp_path):
    values = {n: 1.5 - 0.05 * i for i, n in enumerate(DEFAULT_RUNS)}
    text, summary = make_report(tmp_path, params, values)
    assert "| r1_adamw | 1.4500 | -0.0500 | -0.0500 |" in text
    assert "The recommendation that moved bits per byte most" in text
    assert set(summary["val_bpb"]) == set(DEFAULT_RUNS)
    for png in ("cumulative.png", "final_val_loss.png"):
        assert (tmp_path / "reports" / "figures" / png).stat().st_size > 1000


def test_study_sections_appear_when_switched_on(params, tmp_path):
    params["studies"] = {"vocab_sweep": True, "failed_attempts": True}
    names = list(run_settings(params))
    values = {n: 1.4 + 0.01 * i for i, n in enumerate(names)} | {"vocab_8k": 1.0}
    text, _ = make_report(tmp_path, params, values)
    assert "## Vocabulary sweep" in text and "## What the write-up says did not help" in text
    assert "| 16000 | r1_adamw |" in text and "| 32000 | r2_vocab |" in text
    assert "| 8000 | vocab_8k |" in text and "Best vocabulary by bits per byte: 8000; by the legacy figure: 8000 (they agree)" in text
    assert (tmp_path / "reports" / "figures" / "vocab_sweep.png").exists()
