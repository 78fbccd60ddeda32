"""The opt-in scale and attribution studies in one tiny DVC repo: switching both on in one edit trains only their
runs (through new_runs in the same `dvc repro`): the scale study's at the other size, each part of the split step at
every size; switching both off gives the default report back byte for byte, and on again restores their runs without
training. The lr sweep with them trains its one factor at both sizes and nothing else (off again, the report is as
before: tests/test_report_lr_sweep.py)."""
import json
import re
import time

import pytest

from mainrun.config import RunConfig
from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow


def one_split_step(params):
    """baseline, then one step of two parts (SwiGLU and no MLP bias): 2 part runs (dropping one is the other alone).
    Two sizes: small, and base, which is the default model (its runs are the default runs)."""
    params.update(vocab_sizes=[300], vocab_size=300)
    params["variants"] = {"baseline": {"vocab_size": 300, "block_size": 16},
                          "swiglu": {"mlp": "swiglu", "mlp_bias": False}}
    params["noise"] = {"variants": ["baseline"], "seeds": [7]}
    params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False, "lr_sweep": False}
    params["lr_sweep"] = {"factors": [2], "variants": ["swiglu"]}
    params["scales"] = {"variants": ["baseline", "swiglu"],
                        "sizes": {"small": {"n_layer": 1, "n_head": 2, "d_model": 8},
                                  "base": {"n_layer": 1, "n_head": 2, "d_model": 16}}}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def trained(output: str) -> set[str]:
    return {s.split("@", 1)[1] for s in ran(output) if s.startswith("train@")}


def switch(repo, **on) -> str:
    """params.yaml's study switches set, then plain `dvc repro` (cheaper than `dvc exp run -S`: this test is not about
    experiments; tests/test_pipeline.py's vocabulary experiment is)."""
    text = (repo / "params.yaml").read_text()
    for study, value in on.items():
        text = re.sub(rf"\b{study}: (true|false)", f"{study}: {str(value).lower()}", text)
    (repo / "params.yaml").write_text(text)
    return sh(repo, "dvc", "repro")


def stages(repo) -> list[str]:
    return sh(repo, "dvc", "stage", "list", "--name-only").split()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_tiny_repo(tmp_path_factory.mktemp("studies"), one_split_step)


def test_each_study_trains_only_its_runs_and_off_restores_the_default_report(repo):
    first = sh(repo, "dvc", "repro")
    assert ran(first) == {"check", "download", "tokenize@300", "tokenize_alt", "configure", "code", "train@baseline",
                          "train@swiglu", "train@baseline-seed7", "new_runs", "report"}  # no stage for a study off
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "default runs")
    default_report = (repo / "reports" / "report.md").read_text()
    assert "What in each step does the work?" not in default_report and "small-baseline" not in default_report
    assert "| baseline | 2 |" in default_report  # the seed repeat's row: mean ± std over two seeds

    # both studies on in one edit: their runs have no stage in this `dvc repro` yet (DVC read runs.yaml first), so
    # new_runs trains them: the scale study's at the other size only (base is the default runs), and each part of the
    # split step alone, at both sizes
    on = switch(repo, scale=True, attribution=True)
    small = {"small-baseline", "small-swiglu", "small-baseline-seed7"}
    parts = {"swiglu-alone-mlp", "swiglu-alone-mlp_bias", "small-swiglu-alone-mlp", "small-swiglu-alone-mlp_bias"}
    # (the drop runs are the alone runs: dropping one of two parts leaves the other alone)
    assert ran(on) - {"tokenize_alt"} == {"check", "configure", "new_runs", "report"} | {f"train@{n}" for n in
                                                                                          small | parts}, on
    assert (repo / "models" / "small-baseline" / "model.safetensors").is_file()
    listed = stages(repo)
    assert "train@small-baseline" in listed and "train@base-baseline" not in listed  # base: the default runs
    report = (repo / "reports" / "report.md").read_text()
    assert "small-baseline" in report  # the cheapest run: on the Pareto front
    assert "## What in each step does the work?" in report and "figures/attribution_swiglu.png" in report
    assert (repo / "reports" / "figures" / "attribution_swiglu.png").is_file()
    by_size = json.loads((repo / "reports" / "summary.json").read_text())["attribution"]["swiglu"]
    assert set(by_size) == {"small", "base"}  # base: the default size
    metrics = {n: json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text())["val_loss"]
               for n in ("baseline", "swiglu", "swiglu-alone-mlp", "swiglu-alone-mlp_bias")}
    at = by_size["base"]
    assert set(at["parts"]) == {"mlp", "mlp_bias"} and at["adds_up"] in ("the parts add up", "the parts interact")
    whole = metrics["swiglu"] - metrics["baseline"]
    alone = [metrics[f"swiglu-alone-{p}"] - metrics["baseline"] for p in ("mlp", "mlp_bias")]
    assert at["interaction"] == pytest.approx(whole - sum(alone), abs=2e-6)
    assert at["parts"]["mlp"]["dropped"]["delta"] == pytest.approx(metrics["swiglu"] - metrics["swiglu-alone-mlp_bias"],
                                                                   abs=2e-6)

    # both off: their runs' stages, once, write markers (never re-trained at settings changed in the same edit)
    off = switch(repo, attribution=False, scale=False)
    assert trained(off) and all(n.startswith("small-") or "-alone-" in n for n in trained(off))
    assert ran(off) - {f"train@{n}" for n in trained(off)} <= {"check", "tokenize_alt", "configure", "new_runs", "report"}
    assert all(json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text()) == {"skipped": True}
               for n in trained(off))
    assert (repo / "reports" / "report.md").read_text() == default_report
    assert not [s for s in stages(repo) if "small-" in s or "-alone-" in s]

    # both on again, and the lr sweep with them: every run they need is in DVC's cache; only the sweep's runs train
    # (the swept step at lr x 2, at both sizes; base is the default runs)
    t0 = time.time()
    swept = {"swiglu-lr2", "small-swiglu-lr2"}
    again = switch(repo, attribution=True, scale=True, lr_sweep=True)
    assert trained(again) == swept, again
    assert re.search(r"Stage 'train@small-baseline' (is cached - skipping run|didn't change)", again)
    lrs = {n: RunConfig.from_dict(json.loads((repo / "configs" / f"{n}.json").read_text())).train.lr
           for n in ("swiglu", *swept)}  # a config file leaves out the settings at their defaults
    assert lrs["swiglu-lr2"] == 2 * lrs["swiglu"] and (repo / "metrics" / "eval" / "small-swiglu-lr2.json").is_file()
    # the sweep off leaves the default report byte for byte: tests/test_report_lr_sweep.py, on hand-made numbers
    print(f"the last switch: {time.time() - t0:.0f} s")
