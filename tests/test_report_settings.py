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
