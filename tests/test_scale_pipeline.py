"""The scale study in a tiny DVC repo: switching it on trains only the other sizes, switching it off restores the
default report, switching it on again restores the study's runs from DVC's run-cache."""
import json
import re

import pytest

from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow


def one_variant(params):
    """Each run costs two processes that import torch: one variant shows what the switch re-trains."""
    params.update(vocab_sizes=[300], vocab_size=300)
    params["variants"] = {"baseline": {"vocab_size": 300, "block_size": 16}}
    params["noise"]["variants"] = []
    params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}
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
    # tokenize_alt reads every switch (it builds the opt-in tokenizers of the studies that are on): one short process
    first = sh(repo, "dvc", "repro")
    assert ran(first) == {"check", "download", "tokenize@300", "tokenize_alt", "configure", "train@baseline",
                          "new_runs", "report"}  # a switched-off study has no stage
    assert "small-baseline" not in sh(repo, "dvc", "stage", "list")
    default_report = (repo / "reports" / "report.md").read_text()

    on = switch(repo, True)  # the new run has no stage in this `dvc repro` yet: new_runs trains it
    assert ran(on) - {"tokenize_alt"} == {"check", "configure", "new_runs", "train@small-baseline", "report"}
    assert (repo / "models" / "small-baseline" / "model.safetensors").is_file()
    assert "small-baseline" in (repo / "reports" / "report.md").read_text()  # the cheapest run: on the Pareto front
    assert "train@small-baseline" in sh(repo, "dvc", "stage", "list")  # from now on, a stage like any other
    assert "base-baseline" not in sh(repo, "dvc", "stage", "list")  # the default size is the default run

    off = switch(repo, False)
    # this `dvc repro` still has the run's stage, which writes a marker (check may come from the run-cache)
    assert ran(off) <= {"check", "tokenize_alt", "configure", "new_runs", "train@small-baseline", "report"}
    assert json.loads((repo / "metrics" / "eval" / "small-baseline.json").read_text()) == {"skipped": True}
    assert (repo / "reports" / "report.md").read_text() == default_report
    assert "small-baseline" not in sh(repo, "dvc", "stage", "list")

    again = switch(repo, True)  # the study's run is still in the workspace and dvc.lock, else in the run-cache
    assert not {s for s in ran(again) if s.startswith("train")}
    assert re.search(r"Stage 'train@small-baseline' (is cached - skipping run|didn't change)", again)
