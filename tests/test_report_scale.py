"""The report's cost and scale parts on hand-made numbers: trend words, a multiplier by hand, the Pareto front, and
the scale section of a report built from fake artifacts."""
import json
import math
from dataclasses import replace

import pytest

from conftest import committed_params
from mainrun.attribution import headline_chain
from mainrun.report.analyse import Noise
from mainrun.report.cost_charts import pareto_front
from mainrun.report.load import Run
from mainrun.report.scale import Size, chain_rows, compute_to_reach, multiplier, per_size, read_scale, steps, trend
from mainrun.report import build_report
from mainrun.report.load import load_runs, read_configs
from test_report import fake_artifacts

pytestmark = pytest.mark.usefixtures("charts_not_rendered")  # conftest.py: charts built, not encoded

CHAIN = headline_chain(committed_params())  # the committed chain: a new step joins it


@pytest.mark.parametrize("judged, words", [
    ([("s", "better", -.1), ("m", "better", -.2), ("l", "better", -.3)], "holds at every size (better)"),
    ([("s", "worse", .1), ("m", "worse", .2)], "holds at every size (worse)"),
    ([("s", "within noise", -.01), ("m", "within noise", .01), ("l", "within noise", 0)], "inside noise everywhere"),
    ([("s", "within noise", 0), ("m", "within noise", 0), ("l", "better", -.2)],
     "appears above size m (better from l on)"),
    ([("s", "better", -.2), ("m", "within noise", 0), ("l", "within noise", 0)],
     "vanishes above size s (better up to s, inside noise from m)"),
    ([("s", "better", -.2), ("m", "within noise", 0), ("l", "worse", .2)],
     "flips sign between sizes s and l (better at s, worse at l)"),
    ([("s", "within noise", 0), ("m", "worse", .2), ("l", "within noise", 0)],
     "no single trend: within noise at s, worse at m, within noise at l"),
    ([("s", "better", -.2), ("m", "not measured", 0)], "not measured (no seed repeats at some size)"),
    ([("s", "better", -.2), ("m", "same run", 0), ("l", "same run", 0)],
     "not judged: the step makes no change at m, l"),
    ([("s", "better", -.1)], "holds at every size (better)"),  # a step that finished at one size only
    ([], "not measured"),
])
def test_trend_words(judged, words):
    assert trend(judged) == words


def size(name, ref_flops, ref_loss, run_flops=None, run_loss=None, sigma=None):
    def run(n, flops, loss):
        return Run(n, {"n_layer": 2, "d_model": 8}, metrics={"train_flops": flops, "val_loss": loss, "val_bpb": loss,
                                                             "params": 10})
    runs = {"a": run("a", ref_flops, ref_loss)}
    if run_flops:
        runs["b"] = run("b", run_flops, run_loss)
    return Size(name, runs, {"val_loss": sigma and Noise({}, sigma, 2)})


def test_a_multiplier_by_hand():
    """The previous variant a reaches 3.0, 2.5, 2.0 at 1, 4, 16 TFLOPs. The step b reaches 2.25 at 4 TFLOPs: between
    a's middle and largest size, at log-log fraction t = ln(2.25/2.5) / ln(2.0/2.5), so a would need 4·4^t TFLOPs:
    4^t times b's own compute."""
    sizes = [size("s", 1e12, 3.0), size("m", 4e12, 2.5, 4e12, 2.25, sigma=0.05), size("l", 16e12, 2.0)]
    t = math.log(2.25 / 2.5) / math.log(2.0 / 2.5)
    m = multiplier(("a", "b"), sizes[1], sizes, "val_loss")
    assert m.value == pytest.approx(4 ** t) and m.value == pytest.approx(1.9243, abs=1e-4)
    low_t, high_t = math.log(2.35 / 2.5) / math.log(0.8), math.log(2.15 / 2.5) / math.log(0.8)
    assert (m.low, m.high) == (pytest.approx(4 ** low_t), pytest.approx(4 ** high_t))  # the loss ± 2σ
    assert m.low < m.value < m.high


def test_a_loss_outside_the_measured_range_gets_no_multiplier():
    sizes = [size("s", 1e12, 3.0), size("m", 4e12, 2.5, 4e12, 1.9, sigma=0.2), size("l", 16e12, 2.0)]
    m = multiplier(("a", "b"), sizes[1], sizes, "val_loss")
    assert (m.value, m.why, m.high) == (None, "outside the measured range", None)
    assert m.low == pytest.approx(4 ** (math.log(2.3 / 2.5) / math.log(0.8)))  # 1.9 + 2σ is inside the range
    assert compute_to_reach([(1.0, 3.0), (4.0, 2.5)], 3.5) is None
    rising = [size("s", 1e12, 2.0), size("m", 4e12, 2.5, 4e12, 2.2)]
    assert multiplier(("a", "b"), rising[1], rising, "val_loss").why == "a's loss does not fall as its compute grows"


def test_compute_to_reach_at_the_ends_and_on_a_curve_that_does_not_fall():
    assert compute_to_reach([(1.0, 3.0), (4.0, 2.5)], 3.0) == pytest.approx(1.0)  # the measured ends count
    assert compute_to_reach([(4.0, 2.5), (1.0, 3.0)], 2.5) == pytest.approx(4.0)
    assert compute_to_reach([(1.0, 3.0), (2.0, 2.0), (4.0, 2.5)], 2.8) is None  # falls, then rises
    assert compute_to_reach([(1.0, 3.0), (2.0, 3.0), (4.0, 2.5)], 2.8) is None  # flat


def test_a_multiplier_needs_two_sizes_with_flops_and_a_falling_curve():
    one = [size("m", 4e12, 2.5, 4e12, 2.25, sigma=0.05)]
    assert multiplier(("a", "b"), one[0], one, "val_loss").why == "fewer than two sizes measured"
    no_flops = size("s", 1e12, 3.0)
    del no_flops.runs["a"].metrics["train_flops"]  # a size whose flops were not recorded is left out
    assert multiplier(("a", "b"), one[0], [no_flops, *one], "val_loss").why == "fewer than two sizes measured"
    flat = [size("s", 1e12, 2.5), size("m", 4e12, 2.5, 4e12, 2.25)]
    assert multiplier(("a", "b"), flat[1], flat, "val_loss").why == "a's loss does not fall as its compute grows"
    quiet = size("m", 4e12, 2.5, 4e12, 2.75)  # no seed noise at this size: no interval
    m = multiplier(("a", "b"), quiet, [size("s", 1e12, 3.0), quiet], "val_loss")
    assert m.value == pytest.approx(4 ** (math.log(2.75 / 3) / math.log(2.5 / 3)) / 4)  # a: 1e12·4^t; b: 4e12
    assert (m.low, m.high, m.why) == (None, None, None)


def test_per_size_compares_a_step_where_both_runs_finished_under_the_default_names():
    s, m = size("s", 1e12, 3.0), size("m", 4e12, 2.5, 4e12, 2.25, sigma=0.05)  # b did not finish at s
    m = Size("m", {k: replace(r, name=f"m-{k}") for k, r in m.runs.items()}, m.noise)  # named as at a size
    found = per_size(("a", "b"), [s, m])
    assert list(found) == ["m"] and (found["m"].ref, found["m"].run) == ("a", "b")
    assert found["m"].delta == pytest.approx(-0.25) and found["m"].judgement == "better"


def test_the_scale_rows_are_the_chain_and_its_repeats_only(params):
    """With every study on, the part runs and the lr sweep's runs at each size are not the scale study's."""
    from mainrun.configure import run_index
    for study in ("scale", "attribution", "lr_sweep"):
        params["studies"][study] = True
    rows = chain_rows(run_index(params))
    assert {r["variant"] for r in rows} == set(CHAIN) and len(rows) == 2 * (len(CHAIN) + 4)
    assert steps([], []) == []  # no scale rows: no step


def test_read_scale_reads_each_sizes_finished_runs(params, tmp_path):
    """A size with the default model's shape is the default runs under that size's name; a run whose metrics are
    missing has not finished; each run keeps its row's parent, repeat and its curves."""
    params["studies"]["scale"] = True
    params["data"]["source"] = "synthetic"
    params["scales"]["sizes"] = {"small": params["scales"]["sizes"]["small"],
                                 "mid": {k: params["model"][k] for k in ("n_layer", "n_head", "d_model")}}
    names = [*CHAIN, "r1_adamw-seed1338"]
    fake_artifacts(tmp_path, params, {n: 3.0 for n in names} | {f"small-{n}": 3.5 for n in names[:-2]})
    runs = load_runs(read_configs(tmp_path / "configs"), tmp_path / "metrics", tmp_path / "dvclive")
    sizes = read_scale(tmp_path / "configs", tmp_path / "metrics", tmp_path / "dvclive", runs, {})
    by_name = {s.name: s.runs for s in sizes}
    assert sorted(by_name) == ["mid", "small"] and by_name["mid"] == {n: runs[n] for n in names}
    small = by_name["small"]
    assert list(small) == CHAIN[:-1]  # small-r4_4_parallel left no metrics
    r = small["r1_adamw"]
    assert (r.name, r.parent, r.study, r.repeat_of, r.metrics["val_loss"]) == (
        "small-r1_adamw", "small-baseline", "scale", None, 3.5)
    assert r.curves["val_loss"] == ([1, 10], [2.0, 3.5])
    del params["scales"]["sizes"]["mid"]  # one size beside the default model's
    fake_artifacts(tmp_path / "one", params, {n: 3.0 for n in names} | {f"small-{n}": 3.5 for n in names})
    sizes = read_scale(tmp_path / "one" / "configs", tmp_path / "one" / "metrics", tmp_path / "one" / "dvclive",
                       runs, {})
    assert sorted(s.name for s in sizes) == ["default", "small"]


def test_pareto_front_keeps_the_runs_nothing_beats_on_both():
    points = {"cheap": (1.0, 3.0), "dear_worse": (5.0, 3.5), "mid": (2.0, 2.0), "tie_dearer": (3.0, 2.0),
              "best": (10.0, 1.0)}
    assert pareto_front(points) == ["cheap", "mid", "best"]


def report_with_cost(tmp_path, params, values: dict, cost) -> tuple[str, dict]:
    """test_report's fake artifacts, each run's metrics with cost(name) added."""
    fake_artifacts(tmp_path, params, values)
    for name in values:
        path = tmp_path / "metrics" / f"{name}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | cost(name)))
    stats = {"source": "synthetic", "train": {"titles": 90}, "val": {"titles": 10}}
    summary = build_report(params["data"], stats, tmp_path / "configs", tmp_path / "metrics", tmp_path / "dvclive",
                           tmp_path / "reports")
    return (tmp_path / "reports" / "report.md").read_text(), summary


def scale_values(base: dict, sizes=("small", "large")) -> dict:
    """Default runs as given; at `small` every loss 0.3 higher, at `large` 0.3 lower; seed repeats ± 0.01."""
    values = dict(base)
    for s, shift in zip(sizes, (0.3, -0.3)):
        values |= {f"{s}-{n}": v + shift for n, v in base.items()}
    return values


def test_the_scale_section_judges_every_step_at_every_size(params, tmp_path):
    params["studies"]["scale"] = True
    base = {n: 3.0 - 0.05 * i for i, n in enumerate(CHAIN)}
    base |= {f"{v}-seed{s}": base[v] + (0.01 if s == 1338 else -0.01) for v in ("r1_adamw", "r4_4_parallel")
             for s in (1338, 1339)}
    values = scale_values(base) | {n: 2.0 for n in ["adamw_rmsnorm", "adamw_rope", "adamw_swiglu", "adamw_parallel",
                                                     "sgd_rmsnorm", "sgd_rope", "sgd_swiglu", "sgd_parallel"]}
    values["large-r4_2_rope"] = values["large-r4_1_rmsnorm"] + 0.2  # RoPE hurts at the largest size only
    flops = {"small": 1e12, "large": 16e12}

    def cost(name):
        return {"train_flops": flops.get(name.split("-")[0], 4e12), "flops_per_token": 1e6, "tokens_seen": 1000,
                "params_non_embedding": {"small": 10, "large": 1000}.get(name.split("-")[0], 100)}
    params["data"]["source"] = "synthetic"
    text, summary = report_with_cost(tmp_path, params, values, cost)
    assert "## Does each recommendation hold as the model grows?" in text
    steps = {" → ".join(s["step"]): s for s in summary["scale"]["steps"]}
    assert len(steps) == len(CHAIN) - 1
    assert steps["r1_adamw → r2_vocab"]["trend"] == "holds at every size (better)"
    assert steps["r4_1_rmsnorm → r4_2_rope"]["trend"] == (
        "flips sign between sizes default and large (better at default, worse at large)")
    assert list(steps["r1_adamw → r2_vocab"]["sizes"]) == ["small", "default", "large"]  # by parameters
    m = steps["baseline → r1_adamw"]["sizes"]["default"]["multiplier"]  # 2.95 on the baseline's 3.3, 3.0, 2.7 curve
    assert m["value"] == pytest.approx(4 ** (math.log(2.95 / 3.0) / math.log(2.7 / 3.0)), abs=1e-4)
    assert steps["baseline → r1_adamw"]["sizes"]["large"]["multiplier"]["why"] == "outside the measured range"
    assert "Cost: Δ params +0 (+0%), Δ FLOPs/token +0 (+0%), Δ wall +0 s (+0%)" in text  # beside every verdict
    assert "figures/scale.png" in text and (tmp_path / "reports" / "figures" / "scale.png").is_file()
    assert "figures/pareto.png" in text and {"run": "large-r4_4_parallel", "train_flops": 16e12} .items() <= next(
        r for r in summary["cost"] if r["run"] == "large-r4_4_parallel").items()
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["scale"] == summary["scale"]


def test_cost_beside_a_verdict():  # no local path in a report: test_second_pass.py
    from mainrun.report.render import cost_text

    assert cost_text((("params", 1000, 1500), ("flops_per_token", 2e6, 3e6), ("train_seconds", 10.0, 5.0))) == (
        "cost: Δ params +500 (+50%), Δ FLOPs/token +1M (+50%), Δ wall -5 s (-50%)")


def test_the_scale_chart_has_one_tick_per_size_labelled_with_its_parameters(monkeypatch, tmp_path):
    from mainrun.report import cost_charts
    drawn = []
    monkeypatch.setattr(cost_charts, "save", lambda fig, path, title: (fig.canvas.draw(), drawn.append(fig)))
    params = [25_472, 100_096, 396_800]
    cost_charts.scale_chart(tmp_path / "scale.png", "t", [("a → b", "val_bpb", params, [.1, .05, 0], [.02] * 3),
                                                         ("b → c", "val_loss", params[1:], [-.1, -.2], [None] * 2)])
    first, second = drawn[0].axes[:2]
    assert list(first.get_xticks()) == params and list(second.get_xticks()) == params[1:]
    assert [t.get_text() for t in first.get_xticklabels()] == ["25k", "100k", "397k"]
    assert len(first.get_xticks(minor=True)) == 0  # no 3×10⁴, 4×10⁴, ... between the sizes
