"""The report decides from resolved settings, never from names: rename, reorder or add variants and it holds."""
import copy
import re

import pytest

from mainrun.configure import configure, run_index
from mainrun.report.analyse import Noise, compare
from mainrun.report.load import Run, load_published, read_configs
from mainrun.report.writeup import check_setting
from test_report import DEFAULT_RUNS, fake_tokenized, make_report

pytestmark = pytest.mark.usefixtures("charts_not_rendered")  # conftest.py: charts built, not encoded

HF = "hf:julien040/hacker-news-posts"


def configs(params, tmp_path):
    configure(params, fake_tokenized(tmp_path / "tok", params), tmp_path / "cfg", tmp_path / "runs.yaml")
    return read_configs(tmp_path / "cfg")


def setting(params, tmp_path):
    return check_setting(params["data"], configs(params, tmp_path), load_published()["setting"])


@pytest.mark.parametrize("change, metric", [
    ({"tokenizer": "unigram"}, "val_bpb"), ({"vocab_size": 8000}, "val_bpb"), ({"block_size": 256}, "val_bpb"),
    ({"schedule": "warm_restarts"}, "val_loss"), ({"n_layer": 8}, "val_loss"), ({"device": "cuda"}, "val_loss")])
def test_the_metric_follows_from_what_differs(change, metric):
    settings = {"tokenizer": "bpe", "vocab_size": 16000, "block_size": 128, "schedule": "cosine", "n_layer": 6,
                "device": "cpu"}
    ref = Run("a", settings, metrics={"val_loss": 1.5, "val_bpb": 2.0})
    run = Run("any name at all", {**settings, **change}, metrics={"val_loss": 1.0, "val_bpb": 2.5})
    c = compare(ref, run, {"val_loss": None, "val_bpb": Noise({}, 0.1, 4)})  # threshold 2·√2·0.1 = 0.28
    assert c.metric == metric and c.delta == run.metrics[metric] - ref.metrics[metric]
    assert c.judgement == ("worse" if metric == "val_bpb" else "not measured")


def test_chains_and_studies_in_the_run_index(params):
    index = {r["name"]: r for r in run_index(params)}
    groups = {}
    for name, row in index.items():
        groups.setdefault(row["group"], []).append(name)
    assert groups[0] == DEFAULT_RUNS[:8]
    assert groups[1] == DEFAULT_RUNS[8:12] and index["adamw_rmsnorm"]["parent"] == "r1_adamw"
    assert groups[2] == DEFAULT_RUNS[12:] and index["sgd_rmsnorm"]["parent"] == "baseline"
    assert all(index[n]["study"] is None and index[n]["enabled"] for n in DEFAULT_RUNS)
    assert index["fail_unigram"]["study"] == "failed_attempts" and not index["fail_unigram"]["enabled"]


def test_writeup_setting_detection_is_exact(params, tmp_path):
    params["data"]["source"] = HF
    s = setting(params, tmp_path / "ok")
    assert s.complete and s.match == {n: n for n in DEFAULT_RUNS}
    for i, mutate in enumerate((
            lambda p: p["data"].update(num_titles=99999), lambda p: p["model"].update(d_model=256),
            lambda p: p["train"].update(epochs=6), lambda p: p.update(vocab_size=16000),
            lambda p: p["data"].update(source="synthetic"),
            lambda p: p["variants"]["r3_block256"].update(block_size=192),
            lambda p: p["variants"]["adamw_rope"].update(emb_scale=False))):
        changed = copy.deepcopy(params)
        mutate(changed)
        s = setting(changed, tmp_path / str(i))
        assert not s.complete and s.why
    params["train"]["device"] = "cpu"  # where it runs is not part of the setting
    assert setting(params, tmp_path / "cpu").complete


def test_runs_match_the_writeup_by_place_and_change_not_by_value(params, tmp_path):
    """The CPU profile's sizes differ from the write-up's everywhere, yet each figure finds its runs."""
    params.update(vocab_sizes=[500, 1000, 2000], vocab_size=2000)
    params["variants"]["baseline"] = {"vocab_size": 1000, "block_size": 32}
    params["variants"]["r3_block256"] = {"block_size": 64}
    params["variants"]["vocab_8k"]["vocab_size"] = 500
    params["studies"]["vocab_sweep"] = True  # vocab_8k changes what r2_vocab changes, but is a study
    s = setting(params, tmp_path)
    assert s.match == {n: n for n in DEFAULT_RUNS} and not s.comparable
    assert s.why == "block_size is 32, 64, the write-up used 128, 256"
    assert set(s.differences) == {"block_size", "vocab_size"}


def test_a_step_that_changes_nothing_still_stands_in(params, tmp_path):
    params["vocab_size"] = 16000  # r2_vocab now equals r1_adamw
    assert setting(params, tmp_path).match["r2_vocab"] == "r2_vocab"


def rename(params: dict, names: dict, swap_groups=False, extra=None) -> dict:
    """params with every variant renamed; optionally the figure-4a group before 4b, and an extra chain first."""
    p = copy.deepcopy(params)
    variants = {names[n]: ({**d, "from": names[d["from"]]} if d and "from" in d else d)
                for n, d in params["variants"].items()}
    order = list(variants)
    if swap_groups:
        order = order[:8] + order[12:16] + order[8:12] + order[16:]
    p["variants"] = {**{n: variants[n] for n in order[:8]}, **(extra or {}), **{n: variants[n] for n in order[8:]}}
    p["noise"]["variants"] = [names[n] for n in params["noise"]["variants"]]
    return p


def with_studies(params):
    params["studies"] = {"vocab_sweep": True, "failed_attempts": True}
    params["noise"]["seeds"] = [1338, 1339]
    return params


@pytest.mark.parametrize("source, swap_groups", [("synthetic", False), (HF, True)])
def test_renamed_variants_give_the_same_report(params, tmp_path, source, swap_groups):
    params = with_studies(params)
    names = {n: f"v{i:02d}x" for i, n in enumerate(params["variants"])}
    back = {new: old for old, new in names.items()}
    runs = [r["name"] for r in run_index(params)]
    values = {n: 1.6 - 0.013 * i + 0.002 * (i % 3) for i, n in enumerate(runs)}
    text, summary = make_report(tmp_path / "a", params, values, source)
    new_values = {re.sub(r"^[^-]+", lambda m: names[m.group()], n): v for n, v in values.items()}
    renamed, new_summary = make_report(tmp_path / "b", rename(params, names, swap_groups), new_values, source)
    assert not re.search(r"r1_adamw|sgd_parallel|fail_unigram|vocab_8k", renamed)
    renamed = re.sub(r"\bv\d\dx\b", lambda m: back[m.group()], renamed)
    head, _, tail = text.partition("## Every run")
    new_head, _, new_tail = renamed.partition("## Every run")
    assert new_head == head and "## Only with AdamW?" in head and "Write-up: " in head
    assert sorted(new_tail.splitlines()) == sorted(tail.splitlines())  # the run table follows params.yaml's order
    assert (renamed == text) == (not swap_groups)
    assert new_summary["val_bpb"] == {re.sub(r"^[^-]+", lambda m: names[m.group()], n): v
                                      for n, v in summary["val_bpb"].items()}


def test_a_fourth_chain_changes_no_figure(params, tmp_path):
    values = {n: 1.6 - 0.013 * i for i, n in enumerate(DEFAULT_RUNS)}
    text, _ = make_report(tmp_path / "a", params, values)
    extra = {"lowlr_rmsnorm": {"from": "r1_adamw", "lr": 3.0e-4, "norm": "rmsnorm"}, "lowlr_rope": {"pos": "rope"}}
    more = rename(params, {n: n for n in params["variants"]}, extra=extra)
    more_text, _ = make_report(tmp_path / "b", more, values | {"lowlr_rmsnorm": 1.0, "lowlr_rope": 0.9})
    for title in ("## Write-up, figure by figure", "## Only with AdamW?"):
        assert section(more_text, title) == section(text, title) and section(text, title).count("\n") > 4


def section(text: str, title: str) -> str:
    return title + text.split(title, 1)[1].split("\n## ", 1)[0]


def test_a_run_with_the_writeup_settings_matches_wherever_it_sits(params, tmp_path):
    """The full stack declared in one delta on the baseline is still the write-up's full stack."""
    full = {"from": "baseline", "optimizer": "adamw", "lr": 1.0e-3, "weight_decay": 0.01, "vocab_size": 32000,
            "block_size": 256, "norm": "rmsnorm", "pos": "rope", "emb_scale": True, "attn": "sdpa",
            "attn_bias": False, "mlp": "swiglu", "mlp_bias": False, "parallel_residual": True}
    params["variants"] = {**{n: params["variants"][n] for n in DEFAULT_RUNS[:4]}, "full_in_one": full,
                          **{n: params["variants"][n] for n in DEFAULT_RUNS[8:]}}
    params["noise"]["variants"] = ["r1_adamw"]
    params["data"]["source"] = HF
    s = setting(params, tmp_path)
    assert s.match["r4_4_parallel"] == "full_in_one" and "r4_4_parallel" in s.comparable
    assert s.why == "no variant stands where the write-up's r4_1_rmsnorm does"


def test_a_comparison_in_full():
    """Every field of one comparison: a vocabulary change, judged on val_bpb, whose tokenizer stopped short, with
    another step count and its cost (a cost only one side recorded is left out); the device is no difference."""
    from mainrun.report.analyse import Comparison
    ref = Run("a", {"vocab_size": 16000, "lr": 1e-3, "device": "cpu"}, data={"vocab_size": 16000, "fingerprint": "x"},
              metrics={"val_loss": 1.5, "val_bpb": 2.0, "steps": 10, "params": 100, "train_seconds": 5.0})
    run = Run("b", {"vocab_size": 32000, "lr": 1e-3, "device": "cuda"}, data={"vocab_size": 30000, "fingerprint": "y"},
              metrics={"val_loss": 1.0, "val_bpb": 1.9, "steps": 12, "params": 150, "flops_per_token": 1e6,
                       "train_seconds": 4.0})
    noise = {"val_loss": Noise({}, 0.1, 4), "val_bpb": Noise({}, 0.01, 4)}
    assert compare(ref, run, noise) == Comparison(
        "b", "a", ("vocab_size",), "val_bpb", pytest.approx(-0.1), "val_loss", pytest.approx(-0.5), ("vocab_size",),
        pytest.approx(0.0283, abs=1e-4), "better", None, (("b", 30000, 32000),), (10, 12),
        (("params", 100, 150), ("train_seconds", 5.0, 4.0)))
    short = Run("c", {**run.settings, "device": "cpu"}, data={"vocab_size": 16000, "fingerprint": "x"},
                metrics={**run.metrics, "steps": 10})  # reached 16,000 on a's data: a's run under another name
    c = compare(ref, short, {"val_loss": None, "val_bpb": None})
    assert (c.judgement, c.same, c.unreached, c.steps, c.threshold) == (
        "same run", "both tokenizers stopped at 16,000", (("c", 16000, 32000),), (), None)


def test_the_same_computation_needs_the_same_data_and_settings():
    from mainrun.report.analyse import same_computation
    a = Run("a", {"lr": 1e-3}, data={"fingerprint": "x"})
    assert same_computation(a, Run("b", {"lr": 1e-3}, data={"fingerprint": "x"})) == "the same settings"
    assert same_computation(a, Run("b", {"lr": 1e-3}, data={"fingerprint": "y"})) is None
    assert same_computation(a, Run("b", {"lr": 1e-3, "norm": "rmsnorm"}, data={"fingerprint": "x"})) is None
    assert same_computation(Run("a", {"lr": 1e-3}), Run("b", {"lr": 1e-3})) is None  # no data recorded: not known


def test_only_with_verdict_words():
    from types import SimpleNamespace
    from mainrun.report.analyse import only_with_verdict
    runs = {"adam": Run("adam", {"optimizer": "adamw"}), "sgd": Run("sgd", {"optimizer": "sgd"})}

    def verdict(adam, sgd):
        return only_with_verdict([SimpleNamespace(ref="adam", judgement=adam),
                                  SimpleNamespace(ref="sgd", judgement=sgd)], runs)
    assert verdict("better", "within noise") == "holds" and verdict("better", "worse") == "holds"
    assert verdict("better", "better") == "does not hold" and verdict("within noise", "worse") == "does not hold"
    assert verdict("better", "not measured") == "not measured" and only_with_verdict([], runs) is None


def test_vocab_sweep_rows_and_bests():
    """Every run with the parent's settings but the vocabulary (the first at each size; repeats and runs that change
    more left out), by vocabulary; the best by each metric; the best against the next best by bits per byte."""
    from mainrun.report.analyse import vocab_sweep

    def run(name, vocab, bpb, loss, parent="p", repeat_of=None, lr=1e-3):
        return Run(name, {"vocab_size": vocab, "lr": lr}, parent, repeat_of=repeat_of,
                   metrics={"val_bpb": bpb, "val_loss": loss})
    runs = {r.name: r for r in [run("p", 16000, 2.0, 1.5, parent=None), run("v8", 8000, 1.9, 1.6),
                                run("v32", 32000, 1.95, 1.4), run("v8-seed", 8000, 1.0, 1.0, repeat_of="v8"),
                                run("v8-again", 8000, 1.0, 1.0), run("lr", 64000, 1.0, 1.0, lr=2e-3)]}
    noise = {"val_loss": Noise({}, 0.01, 4), "val_bpb": Noise({}, 0.01, 4)}
    s = vocab_sweep(["v8", "v32"], runs, noise)
    assert s.ref == "p" and s.rows == [(8000, "v8"), (16000, "p"), (32000, "v32")]
    assert (s.best_bpb, s.best_legacy) == ("v8", "v32")
    assert (s.best.ref, s.best.run, s.best.delta) == ("v32", "v8", pytest.approx(-0.05))
    assert vocab_sweep(["lr"], runs, noise) is None and vocab_sweep(["p"], runs, noise) is None


def test_chains_studies_and_attempts_from_the_runs():
    from mainrun.report.analyse import attempts, chains, study_runs
    runs = {r.name: r for r in [
        Run("a", {"lr": 1.0}, None, 0, metrics={"val_loss": 1.0, "val_bpb": 1.0}),
        Run("b", {"lr": 2.0}, "a", 0, metrics={"val_loss": 0.9, "val_bpb": 0.9}),
        Run("c", {"lr": 3.0}, "a", 1, metrics={"val_loss": 0.8, "val_bpb": 0.8}),
        Run("s", {"lr": 4.0}, "b", 0, "fails", metrics={"val_loss": 1.2, "val_bpb": 1.2}),
        Run("s-seed", {"lr": 4.0}, None, None, "fails", "s"), Run("t", {"lr": 5.0}, "gone", None, "other")]}
    assert chains(runs) == {0: ["a", "b"], 1: ["c"]}
    assert study_runs(runs) == {"fails": ["s"], "other": ["t"]}
    noise = {"val_loss": None, "val_bpb": None}
    assert [(c.ref, c.run, round(c.delta, 6)) for c in attempts(["s", "t"], runs, noise)] == [("b", "s", 0.3)]


def test_only_with_stacks_the_chains_making_the_same_changes_on_other_optimisers():
    """Each chain's last run against its base, where chains with the same changes stand on bases whose optimisers
    differ; the base nearest the root first. A chain of other changes, or on a base that did not run, is no part."""
    from mainrun.report.analyse import only_with

    def run(name, parent, group, optimizer, **settings):
        return Run(name, {"optimizer": optimizer, **settings}, parent, group, metrics={"val_loss": 1.0, "val_bpb": 1.0})
    both = {"norm": "rmsnorm", "pos": "rope"}
    runs = {r.name: r for r in [
        run("sgd", None, 0, "sgd"), run("adam", "sgd", 0, "adamw"),
        run("adam_n", "adam", 1, "adamw", norm="rmsnorm"), run("adam_nr", "adam_n", 1, "adamw", **both),
        run("sgd_n", "sgd", 2, "sgd", norm="rmsnorm"), run("sgd_nr", "sgd_n", 2, "sgd", **both),
        run("swiglu", "adam", 3, "adamw", mlp="swiglu"), run("orphan", "gone", 4, "sgd", **both)]}
    stacked = only_with(runs, {"val_loss": None, "val_bpb": None})
    assert [(c.ref, c.run, c.keys) for c in stacked] == [("sgd", "sgd_nr", ("norm", "pos")),
                                                        ("adam", "adam_nr", ("norm", "pos"))]
