"""End to end: the real dvc.yaml in a temporary git+DVC copy of the repo, on a tiny synthetic profile.

These tests check DVC's wiring (what runs, what re-runs, what each stage writes where), so the copy keeps one
variant of each kind of place in the chains, not all 21: the headline chain to the full stack, a study run at
another vocabulary and one on an opt-in tokenizer (both `from:` variants), and a seed repeat. Each variant costs two processes
that import torch, and all go through the same `foreach`; that every variant's settings resolve, re-run narrowly
and train is the unit tests' job (test_config, test_configure, test_model, test_train). The tests run in order on
one repo, each leaving it as the next one expects.
"""
import json
import re
import shutil

import pytest
import yaml

from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.slow

HEADLINE = ["baseline", "r1_adamw", "r2_vocab", "r4_4_parallel"]  # Rec. 3 is a delta like Rec. 2
DEFAULT = HEADLINE  # the `from:` variants are the studies', trained in the last test
STUDIES = ["vocab_8k", "fail_unigram"]  # fail_unigram trains on a tokenize_alt output


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def dvc_json(repo, *args):
    """A dvc command's --json output (on stdout, before any warnings on stderr)."""
    return json.JSONDecoder().raw_decode(sh(repo, "dvc", *args, "--json").lstrip())[0]


def shrink(params):
    """The committed chains, cut to DEFAULT and STUDIES: Rec. 4.1-4.4 become one full-stack step after Rec. 2."""
    v = params["variants"]
    full_stack = {k: x for n in ("r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu", "r4_4_parallel") for k, x in v[n].items()}
    params["variants"] = {n: v[n] for n in DEFAULT + STUDIES}
    params["variants"].update(baseline={"vocab_size": 300, "block_size": 16}, r4_4_parallel=full_stack)
    params["variants"]["vocab_8k"]["vocab_size"] = 200
    params["noise"]["variants"] = ["r1_adamw"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_tiny_repo(tmp_path_factory.mktemp("repo"), shrink)


def test_download_and_tokenize_then_nothing(repo):
    first = ran(sh(repo, "dvc", "repro", "download", "tokenize"))
    assert first == {"check", "code", "download", "tokenize@200", "tokenize@300", "tokenize@400"}  # code: their digests
    assert sorted((t["stage"], t["target"]) for t in stage_times(repo)) == [  # what stagetimes.record wrote
        ("check", "data/params.ok"), ("code", "stages.download"), ("download", "data/raw"),
        *(("tokenize", "bpe") for _ in range(3))]
    assert ran(sh(repo, "dvc", "repro", "download", "tokenize")) == set()
    stats = json.loads((repo / "metrics" / "data.json").read_text())
    assert (stats["train"]["titles"], stats["val"]["titles"]) == (540, 60)


def stage_times(repo) -> list[dict]:
    """The lines the stage processes appended to the stage-time log (mainrun.stagetimes), oldest first."""
    log = repo / ".dvc" / "tmp" / "mainrun-stage-times.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_full_repro_trains_every_default_run_then_nothing(repo):
    before = len(stage_times(repo))
    out = sh(repo, "dvc", "repro")
    assert {f"train@{n}" for n in DEFAULT} | {"configure", "report"} <= ran(out)
    # each stage process that ran recorded itself: its script, first argument, start, end (benchmarks/where_time_goes)
    times = stage_times(repo)[before:]
    script = {"tokenize_alt": "tokenize"}  # the stage's script, when it is not named after the stage
    assert sorted(t["stage"] for t in times) == sorted(script.get(s, s) for s in (r.split("@")[0] for r in ran(out)))
    assert {t["target"] for t in times if t["stage"] == "train"} == {f"configs/{n}.json" for n in DEFAULT}
    assert all(0 < t["end"] - t["start"] < 3600 for t in times) and len({t["pid"] for t in times}) == len(times)
    stages = sh(repo, "dvc", "stage", "list", "--name-only").split()  # a switched-off study has no stage at all
    assert not [s for s in stages if any(n in s for n in STUDIES)] and len(stages) == 10 + len(DEFAULT)  # 10: check ... report
    for n in DEFAULT:
        m = json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text())
        assert {"val_loss", "val_loss_per_token", "val_bpb", "val_tokens_counted_frac", "params", "train_seconds",
                "tokens_per_second", "device"} <= set(m)
        curve = (repo / "dvclive" / n / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()
        assert float(curve[-1].split("\t")[-1]) < float(curve[1].split("\t")[-1])  # the loss fell
    assert not any((repo / "metrics" / "eval" / f"{n}.json").exists() for n in STUDIES)
    report = (repo / "reports" / "report.md").read_text()
    figures = re.findall(r"\]\(figures/([^)]+)\)", report)
    assert "Differences from the write-up's setting" in report and {"fig1_adamw.png", "fig2_vocab.png"} <= set(figures)
    assert all((repo / "reports" / "figures" / f).is_file() for f in figures)
    assert ran(sh(repo, "dvc", "repro")) == set()
    shown = dvc_json(repo, "metrics", "show")  # one small file, so the default view stays readable
    [files] = [rev["data"] for rev in shown.values()]
    assert files["reports/headline.json"]["data"] == {
        m: {n: round(json.loads((repo / "metrics" / "eval" / f"{n}.json").read_text())[m], 6) for n in HEADLINE}
        for m in ("val_loss", "val_bpb")} and list(files) == ["reports/headline.json"]
    [every] = [rev["data"] for rev in dvc_json(repo, "metrics", "show", "reports/summary.json").values()]
    assert set(every["reports/summary.json"]["data"]["val_bpb"]) == set(DEFAULT)  # every run, on asking
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny run")


def test_an_edit_retrains_the_runs_whose_code_it_changes_and_nothing_else(repo):
    """Every train stage depends on the digests of the modules it imports (stage code), not on each module."""
    def edit(path):
        with open(repo / path, "a") as f:
            f.write("\n# an edit\n")
    edit("mainrun/bootstrap.py")  # no stage's command imports it
    assert ran(sh(repo, "dvc", "repro")) == {"code"}  # the same digests: nothing downstream re-runs
    edit("mainrun/model.py")
    assert ran(sh(repo, "dvc", "repro", "code")) == {"code"}
    assert {f"train@{n}" for n in DEFAULT} <= set(dvc_json(repo, "status"))  # every run would re-train
    sh(repo, "git", "checkout", "mainrun/model.py", "mainrun/bootstrap.py")
    sh(repo, "dvc", "repro", "code")
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status")  # as before: nothing to re-train


def test_deleted_reports_are_restored_from_the_cache(repo):
    shutil.rmtree(repo / "reports")
    assert ran(sh(repo, "dvc", "repro")) == set()  # a cached output: restored from the cache
    assert (repo / "reports" / "report.md").exists()
    # the report re-run from the cached runs, none re-trained: tests/test_studies_pipeline.py (the studies off)


def test_plots_list_every_variant(repo):
    plots = dvc_json(repo, "plots", "diff")["data"]  # the plots also name the variants left out: DVC warns
    files = {v["filename"].split("dvclive/")[-1] for plot in plots.values() for v in plot[0]["content"]["data"]["values"]}
    assert files == {f"{n}/plots/metrics/val_loss.tsv" for n in DEFAULT}
    assert set(plots) >= {"fig1_adamw", "fig2_vocab", "fig3_block", "fig4a_arch_on_sgd", "fig4b_arch_on_adamw",
                          "fig5_full_stack"}


def test_an_edit_of_params_reruns_check_which_stops_it(repo):
    """check tracks the whole params.yaml and runs first, so a misspelt key stops `dvc repro` at once, with one line."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump({**params, "vocab_szie": 16000}, sort_keys=False))
    out = sh(repo, "dvc", "repro", check=False)
    assert ran(out) == {"check"} and "error: params.yaml: unknown top-level key 'vocab_szie'" in out
    sh(repo, "git", "checkout", "params.yaml")
    assert ran(sh(repo, "dvc", "repro")) <= {"check", "configure"}  # the same outputs: nothing else re-runs


def test_vocab_experiment_reruns_exactly_rec2_onwards(repo):
    out = sh(repo, "dvc", "exp", "run", "-n", "vocab300", "-S", "vocab_size=300")
    later = HEADLINE[2:]
    assert ran(out) == {"check", "tokenize_alt", "configure", "report"} | {f"train@{n}" for n in later}
    exps = sh(repo, "dvc", "exp", "show", "--json")
    assert "vocab300" in exps
    diff = dvc_json(repo, "plots", "diff", "HEAD", "vocab300")["data"]["fig2_vocab"]
    revs = {v["rev"] for v in diff[0]["content"]["data"]["values"]}
    assert len(revs) == 2
    sh(repo, "git", "checkout", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "-q")


def test_opt_in_studies_and_seeds_train(repo):
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` applies; plain dvc repro is cheaper, and
    # experiments are the vocabulary test's (above)
    apply_overrides(str(repo / "params.yaml"), ["studies.vocab_sweep=true", "studies.failed_attempts=true"])
    out = sh(repo, "dvc", "repro")
    trained = {s.split("@", 1)[1] for s in ran(out) if s.startswith("train")}
    assert trained == set(STUDIES)  # trained by new_runs: this `dvc repro` had no stage for them
    # (a seed repeat through new_runs, and its row in the report: tests/test_studies_pipeline.py)
    assert {"tokenize_alt", "new_runs"} <= ran(out)
    report = (repo / "reports" / "report.md").read_text()
    for asked, run in ((200, "vocab_8k"), (300, "r1_adamw"), (400, "r2_vocab")):  # vocab asked | reached | run
        assert re.search(rf"\| {asked} \| [^|]+ \| {run} \|", report)
    assert "## Vocabulary sweep" in report and "## What the write-up says did not help" in report
