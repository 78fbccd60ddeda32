"""End to end: the real dvc.yaml in a temporary git+DVC copy of the repo, on a tiny synthetic profile."""
import json
import re
import shutil

import pytest

from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow

HEADLINE = ["baseline", "r1_adamw", "r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
            "r4_4_parallel"]
DEFAULT = HEADLINE + ["adamw_rmsnorm", "adamw_rope", "adamw_swiglu", "adamw_parallel",
                      "sgd_rmsnorm", "sgd_rope", "sgd_swiglu", "sgd_parallel"]


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def shrink(params):
    params["variants"]["baseline"] = {"vocab_size": 300, "block_size": 16}
    params["variants"]["r3_block256"] = {"block_size": 32}
    params["variants"]["vocab_8k"]["vocab_size"] = 200
    params["variants"]["fail_bigger"].update(n_layer=2, d_model=24, n_head=3)  # bigger than tiny, not Mainrun-big


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_tiny_repo(tmp_path_factory.mktemp("repo"), shrink)


def test_download_and_tokenize_then_nothing(repo):
    first = ran(sh(repo, "dvc", "repro", "download", "tokenize"))
    assert first == {"download", "tokenize@200", "tokenize@300", "tokenize@400"}
    assert ran(sh(repo, "dvc", "repro", "download", "tokenize")) == set()
    stats = json.loads((repo / "metrics" / "data.json").read_text())
    assert (stats["train"]["titles"], stats["val"]["titles"]) == (540, 60)


def test_full_repro_trains_all_three_groups_then_nothing(repo):
    out = sh(repo, "dvc", "repro")
    assert {f"train@{n}" for n in DEFAULT} <= ran(out)
    for n in DEFAULT:
        m = json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text())
        assert {"val_loss", "val_loss_per_token", "val_bpb", "val_tokens_counted_frac", "params", "train_seconds",
                "tokens_per_second", "device"} <= set(m)
        curve = (repo / "dvclive" / n / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()
        assert float(curve[-1].split("\t")[-1]) < float(curve[1].split("\t")[-1])  # the loss fell
    assert json.loads((repo / "metrics" / "eval" / "vocab_8k.json").read_text()) == {"skipped": True}
    report = (repo / "reports" / "report.md").read_text()
    assert "Not the write-up's setting" in report and len(list((repo / "reports" / "figures").glob("fig*.png"))) == 6
    assert ran(sh(repo, "dvc", "repro")) == set()
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json"))
    assert "metrics/eval/r4_4_parallel.json" in json.dumps(shown)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny run")


def test_report_alone_regenerates_after_deleting_reports(repo):
    shutil.rmtree(repo / "reports")
    assert ran(sh(repo, "dvc", "repro")) == set()  # a cached output: restored from the cache
    assert (repo / "reports" / "report.md").exists()
    assert ran(sh(repo, "dvc", "repro", "-f", "-s", "report")) == {"report"}  # rebuilt alone, from the cached runs


def test_plots_list_every_variant(repo):
    plots = json.loads(sh(repo, "dvc", "plots", "diff", "--json"))["data"]
    files = {v["filename"].split("dvclive/")[-1] for v in plots["val_loss_all"][0]["content"]["data"]["values"]}
    assert files == {f"{n}/plots/metrics/val_loss.tsv" for n in DEFAULT}
    assert set(plots) >= {"fig1_adamw", "fig2_vocab", "fig3_block", "fig4a_arch_on_sgd", "fig4b_arch_on_adamw",
                          "fig5_full_stack"}


def test_vocab_experiment_reruns_exactly_rec2_onwards(repo):
    out = sh(repo, "dvc", "exp", "run", "-n", "vocab300", "-S", "vocab_size=300")
    later = HEADLINE[2:]
    expected = ({"configure", "report", "tokenize_alt@unigram", "tokenize_alt@bpe_whitelist"}
                | {f"train@{n}" for n in later} | {f"evaluate@{n}" for n in later})
    assert ran(out) == expected
    exps = sh(repo, "dvc", "exp", "show", "--json")
    assert "vocab300" in exps
    diff = json.loads(sh(repo, "dvc", "plots", "diff", "HEAD", "vocab300", "--json"))["data"]["fig2_vocab"]
    revs = {v["rev"] for v in diff[0]["content"]["data"]["values"]}
    assert len(revs) == 2
    sh(repo, "git", "checkout", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "-q")


def test_opt_in_studies_and_seeds_train(repo):
    out = sh(repo, "dvc", "exp", "run", "-n", "studies", "-S", "studies.vocab_sweep=true",
             "-S", "studies.failed_attempts=true", "-S", "noise.seeds=[7]")
    new = {"vocab_8k", "fail_warm_restarts", "fail_domain_tokens", "fail_unigram", "fail_bigger",
           "r1_adamw-seed7", "r4_4_parallel-seed7"}
    trained = {s.split("@", 1)[1] for s in ran(out) if s.startswith("train")}
    assert trained == {n if "seed" not in n else n.replace("-seed", "-") for n in new}
    report = (repo / "reports" / "report.md").read_text()
    assert "| 200 | vocab_8k |" in report and "| 300 | r1_adamw |" in report and "| 400 | r2_vocab |" in report
    assert "## Vocabulary sweep" in report and "## What the write-up says did not help" in report
    assert "| r1_adamw | 2 |" in report  # mean ± std over two seeds
