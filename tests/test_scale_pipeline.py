"""The scale study in a tiny DVC repo: switching it on trains only the other sizes, switching it off restores the
default report, switching it on again restores the study's runs from DVC's run-cache."""
import re

import pytest

from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow


def one_variant(params):
    """Each run costs two processes that import torch: one variant shows what the switch re-trains."""
    params.update(vocab_sizes=[300], vocab_size=300)
    params["variants"] = {"baseline": {"vocab_size": 300, "block_size": 16}}
    params["noise"]["variants"] = []
    params["studies"] = {"failed_attempts": False, "scale": False}
    params["scales"] = {"variants": ["baseline"],  # base is TINY's model: the default run itself
                        "sizes": {"small": {"n_layer": 1, "n_head": 2, "d_model": 8},
                                  "base": {"n_layer": 1, "n_head": 2, "d_model": 16}}}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def switch(repo, on: bool, *targets) -> str:
    text = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(re.sub(r"scale: (true|false)", f"scale: {str(on).lower()}", text))
    return sh(repo, "dvc", "repro", *targets)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_tiny_repo(tmp_path_factory.mktemp("scale"), one_variant)


def test_switching_the_study_on_trains_only_the_other_size(repo):
    first = sh(repo, "dvc", "repro")
    assert {"train@baseline", "train_scale@small-baseline", "train_scale@base-baseline"} <= ran(first)
    assert "small-baseline: skipped (studies.scale is false)" in first
    assert "base-baseline: is the run baseline (same settings): nothing to train" in first
    default_report = (repo / "reports" / "report.md").read_text()

    on = switch(repo, True)
    assert ran(on) == {"check", "configure", "train_scale@small-baseline", "evaluate_scale@small-baseline", "report"}
    assert (repo / "models" / "small-baseline" / "model.safetensors").is_file()
    assert "small-baseline" in (repo / "reports" / "report.md").read_text()  # the cheapest run: on the Pareto front

    off = switch(repo, False)  # the study's stages write their markers again; the default runs stay as they were
    assert not {s for s in ran(off) if not s.startswith(("train_scale@small", "evaluate_scale@small"))} - {
        "check", "configure", "report"}
    assert (repo / "reports" / "report.md").read_text() == default_report

    again = switch(repo, True, "train_scale", "evaluate_scale")  # every run of the study is in the run-cache
    assert not {s for s in ran(again) if s.startswith("train")}
    assert "Stage 'train_scale@small-baseline' is cached - skipping run" in again
