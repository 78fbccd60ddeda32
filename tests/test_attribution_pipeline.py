"""The attribution study in a tiny DVC repo: `dvc exp run -S studies.attribution=true` trains each part of the split
step and nothing that ran, the report gains its section, and switching it off gives the default report back."""
import json
import re

import pytest

from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow


def one_split_step(params):
    """baseline, then one step of two parts (SwiGLU and no MLP bias): 2 part runs (dropping one is the other alone)."""
    params.update(vocab_sizes=[300], vocab_size=300)
    params["variants"] = {"baseline": {"vocab_size": 300, "block_size": 16}, "swiglu": {"mlp": "swiglu",
                                                                                       "mlp_bias": False}}
    params["noise"] = {"variants": ["baseline"], "seeds": [7]}
    params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}
    params["scales"] = {"variants": ["baseline", "swiglu"], "sizes": {"small": {"n_layer": 1, "n_head": 2,
                                                                               "d_model": 8}}}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def trained(output: str) -> set[str]:
    return {s.split("@", 1)[1] for s in ran(output) if s.startswith("train@")}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_tiny_repo(tmp_path_factory.mktemp("attribution"), one_split_step)


def test_switching_attribution_on_trains_the_parts_only_then_off_restores_the_report(repo):
    assert trained(sh(repo, "dvc", "repro")) == {"baseline", "swiglu", "baseline-seed7"}
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "default runs")
    default_report = (repo / "reports" / "report.md").read_text()
    assert "What in each step does the work?" not in default_report

    on = sh(repo, "dvc", "exp", "run", "-S", "studies.attribution=true")
    assert trained(on) == {"swiglu-alone-mlp", "swiglu-alone-mlp_bias"}  # the drop runs are these two
    report = (repo / "reports" / "report.md").read_text()
    assert "## What in each step does the work?" in report and "figures/attribution_swiglu.png" in report
    assert (repo / "reports" / "figures" / "attribution_swiglu.png").is_file()
    parts = json.loads((repo / "reports" / "summary.json").read_text())["attribution"]["swiglu"]
    [at] = parts.values()
    assert set(at["parts"]) == {"mlp", "mlp_bias"} and at["adds_up"] in ("the parts add up", "the parts interact")
    metrics = {n: json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text())["val_loss"]
               for n in ("baseline", "swiglu", "swiglu-alone-mlp", "swiglu-alone-mlp_bias")}
    whole = metrics["swiglu"] - metrics["baseline"]
    alone = [metrics[f"swiglu-alone-{p}"] - metrics["baseline"] for p in ("mlp", "mlp_bias")]
    assert at["interaction"] == pytest.approx(whole - sum(alone), abs=2e-6)
    assert at["parts"]["mlp"]["dropped"]["delta"] == pytest.approx(metrics["swiglu"] - metrics["swiglu-alone-mlp_bias"],
                                                                   abs=2e-6)

    both = sh(repo, "dvc", "exp", "run", "-S", "studies.scale=true")  # every part at the other size too
    assert trained(both) == {"small-baseline", "small-swiglu", "small-baseline-seed7", "small-swiglu-alone-mlp",
                             "small-swiglu-alone-mlp_bias"}
    assert len(json.loads((repo / "reports" / "summary.json").read_text())["attribution"]["swiglu"]) == 2

    off = sh(repo, "dvc", "exp", "run", "-S", "studies.attribution=false", "-S", "studies.scale=false")
    assert trained(off) and all(n.startswith("small-") or "-alone-" in n for n in trained(off))  # their stages, once:
    assert all(json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text()) == {"skipped": True}  # markers
               for n in trained(off))
    assert (repo / "reports" / "report.md").read_text() == default_report
