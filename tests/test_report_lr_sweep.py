"""The lr sweep's report section on hand-made numbers: the named outcomes, the edge and flat-bottom flags, the cap,
lr sensitivity, names that change no number, each size on its own runs and noise, and off leaving the default report
byte for byte."""
import json
import math
from dataclasses import replace

import pytest

from conftest import committed_params
from mainrun.report import build_report, lr_sweep, render_lr_sweep
from mainrun.report.analyse import Noise
from mainrun.config import RunConfig
from mainrun.report.load import Run
from mainrun.report.lr_sweep import Point, Sweep, outcome, pair, sensitivity_threshold, study
from mainrun.report.scale import Size
from mainrun.runlog import write_json
from test_report import chain_values, fake_artifacts

pytestmark = pytest.mark.usefixtures("charts_not_rendered")  # conftest.py: charts built, not encoded

NOISE = {m: Noise({}, 0.01, 4) for m in ("val_loss", "val_bpb")}  # threshold 2·√2·0.01 = 0.0283


def sweep(variant: str, losses: dict, lr=1e-3, **settings) -> Sweep:
    """A variant at each factor: {factor: final loss} (both metrics)."""
    return Sweep(variant, tuple(Point(f, lr * f, Run(f"{variant}@{f}", {"lr": lr * f, **settings},
                                                     metrics={"val_loss": v, "val_bpb": v}))
                                for f, v in sorted(losses.items())))


def step(ref: dict, run: dict, cap=256):
    """ref -> run, the run side changing the norm: judged on the legacy val_loss."""
    return pair(sweep("p", ref), sweep("v", run, norm="rmsnorm"), NOISE, cap)


BOWL = {0.25: 0.3, 0.5: 0.1, 1: 0.0, 2: 0.1, 4: 0.3}  # best at ×1, every other lr beyond noise of it


def shifted(base: float, **at) -> dict:
    """BOWL above `base`, with the factors named (f2=... for ×2) set to base + that."""
    losses = {f: base + v for f, v in BOWL.items()}
    return losses | {float(k[1:].replace("_", ".")): base + v for k, v in at.items()}


@pytest.mark.parametrize("ref, run, default, tuned, named", [
    (shifted(3.0), shifted(2.9), "better", "better", "holds"),
    (shifted(3.0), shifted(3.01), "within noise", "within noise", "holds"),
    (shifted(3.0, f2=-0.09), shifted(2.9), "better", "within noise", "gain vanishes"),  # ref's best 2.91 at ×2
    (shifted(3.0), shifted(3.1, f0_5=-0.09), "worse", "within noise", "harm vanishes"),  # run's best 3.01 at ×0.5
    (shifted(3.0, f0_5=-0.2), shifted(2.9), "better", "worse", "reverses"),  # ref's best 2.8
    (shifted(3.0), shifted(3.1, f2=-0.2), "worse", "better", "reverses"),  # run's best 2.9
    (shifted(3.0), shifted(3.01, f2=-0.05), "within noise", "better", "appears"),  # run's best 2.96
    (shifted(3.0, f2=-0.05), shifted(3.01), "within noise", "worse", "appears"),  # ref's best 2.95
])
def test_each_named_outcome(ref, run, default, tuned, named):
    p = step(ref, run)
    assert (p.default.judgement, p.judgement, p.outcome) == (default, tuned, named)
    assert p.delta == pytest.approx(min(run.values()) - min(ref.values()))
    assert p.threshold == pytest.approx(2 * math.sqrt(2) * 0.01) and p.metric == "val_loss"


def test_outcomes_not_judged_are_named_as_such():
    assert outcome("not measured", "not measured") == "not measured"
    assert outcome("same run", "same run") == "same run"


def test_a_best_at_the_edge_makes_a_bound_and_names_the_factor_to_add():
    p = step(shifted(3.0), shifted(2.9, f4=-0.05))  # the run side's best at ×4, the largest swept
    assert p.edges == {"v": ("largest", 8)} and p.run_best.factor == 4
    assert p.bound == "an upper bound (the run side might do better beyond its edge)"
    p = step(shifted(3.0, f0_25=-0.05), shifted(2.9))  # the ref side's at ×0.25, the smallest
    assert p.edges == {"p": ("smallest", 0.125)} and p.bound.startswith("a lower bound")
    p = step(shifted(3.0, f0_25=-0.05), shifted(2.9, f4=-0.05))
    assert set(p.edges) == {"p", "v"} and p.bound.startswith("no bound either way")
    assert step(shifted(3.0), shifted(2.9)).edges == {} and step(shifted(3.0), shifted(2.9)).bound is None


def test_a_sweep_that_reached_the_cap_names_no_factor_to_add():
    wide = {f: 3.0 - 0.01 * math.log2(f) for f in (1 / 256, 1 / 16, 1, 16, 256)}  # best at ×256
    s = sweep("v", wide)
    assert s.edge("val_loss") == "largest" and s.capped("val_loss", 256) and s.beyond("val_loss", 256) is None
    assert not s.capped("val_loss", 512) and s.beyond("val_loss", 512) == 512
    low = sweep("v", {f: 3.0 + 0.01 * math.log2(f) for f in wide})  # best at ÷256
    assert low.capped("val_loss", 256) and not sweep("v", BOWL).capped("val_loss", 1)  # interior: never capped
    assert not sweep("v", {1 / 128: 2.9, 1: 3.0}).capped("val_loss", 256)  # ÷128: one more halving to the cap


def test_a_flat_bottom_lists_the_lrs_within_noise_of_the_best():
    p = step(shifted(3.0, f2=0.02, f0_5=0.03), shifted(2.9))  # 0.02 < 0.0283 < 0.03
    assert p.flat == {"p": [2], "v": []}
    assert sweep("v", BOWL).flat("val_loss", None) == []  # no noise measured: no flag
    t = NOISE["val_loss"].threshold
    assert sweep("v", {1: 0.0, 2: t, 4: 2 * t}).flat("val_loss", t) == [2]  # at the threshold is within noise


def test_lr_sensitivity_is_the_mean_loss_above_the_best_over_the_lrs_both_swept():
    ref = {0.25: 3.3, 0.5: 3.1, 1: 3.0, 2: 3.2, 8: 4.0}  # ×8: an extension only the ref has
    run = {0.25: 3.0, 0.5: 2.95, 1: 2.9, 2: 2.95}
    assert sweep("p", ref).sensitivity("val_loss") == pytest.approx((0.3 + 0.1 + 0 + 0.2 + 1.0) / 5)
    p = step(ref, run)
    assert p.sensitivity == (pytest.approx(0.15), pytest.approx(0.05))  # ×8 left out of the comparison
    assert p.sensitivity_threshold == pytest.approx(2 * 0.01 * math.sqrt(2 * (1 - 1 / 4)))
    assert p.basin == "widens"
    assert step(run, ref).basin == "narrows"
    assert step(run, ref).sensitivity == (pytest.approx(0.05), pytest.approx(0.15))  # the run side's ×8 left out
    assert step(ref, {f: v - 0.1 for f, v in ref.items() if f != 8}).basin == "no change shown"
    assert sensitivity_threshold(None, 4) is None and sensitivity_threshold(0.01, 1) is None
    assert sensitivity_threshold(0.01, 2) == pytest.approx(0.02)  # 2σ·√(2·½)


def test_a_pair_without_noise_or_of_one_run_under_two_names():
    p = pair(sweep("p", BOWL), sweep("v", shifted(-0.5), norm="rmsnorm"), {"val_loss": None, "val_bpb": None}, 256)
    assert (p.threshold, p.judgement, p.outcome, p.sensitivity_threshold, p.basin) == (
        None, "not measured", "not measured", None, "not measured")

    def twin(variant):  # the same settings on the same data
        return Sweep(variant, tuple(replace(pt, run=replace(pt.run, data={"fingerprint": "x"}))
                                    for pt in sweep(variant, BOWL).points))
    p = pair(twin("p"), twin("v"), NOISE, 256)
    assert (p.default.judgement, p.judgement, p.outcome) == ("same run", "same run", "same run")


def test_each_variants_own_metric():
    """That of the step into it, else of the first step out of it, else the legacy figure."""
    from types import SimpleNamespace as NS

    def step_(ref, run, metric):
        return None, NS(ref=NS(variant=ref), run=NS(variant=run), metric=metric)
    steps = [step_("a", "b", "val_bpb"), step_("b", "c", "val_loss"), step_("a", "d", "val_loss")]
    assert lr_sweep.own_metrics(dict.fromkeys("abcdx"), steps) == {
        "a": "val_bpb", "b": "val_bpb", "c": "val_loss", "d": "val_loss", "x": "val_loss"}


def run_at(name, loss, parent=None, lr=1e-3, **settings):
    return Run(name, {"lr": lr, "vocab_size": 1000, "n_layer": 2, "d_model": 8, **settings}, parent,
               metrics={"val_loss": loss, "val_bpb": loss, "params": 10})


def sweep_index(names: dict, size=None, factors=(0.5, 2)) -> list[dict]:
    return [{"name": names[(v, f)], "parent": None, "group": None, "repeat_of": None, "study": "lr_sweep",
             "enabled": True, "variant": names[v], "lr_factor": f, "size": size, "same_as": None}
            for v in ("a", "b", "c") for f in factors]


LOSSES = {"a": {0.5: 3.2, 1: 3.1, 2: 3.0}, "b": {0.5: 3.0, 1: 3.05, 2: 3.1}, "c": {0.5: 2.99, 1: 2.9, 2: 3.0}}


def chain(names: dict, scale=1.0, prefix=""):
    """The chain a -> b -> c and each at each factor; scale multiplies every loss."""
    settings = {"a": {}, "b": {"norm": "rmsnorm"}, "c": {"norm": "rmsnorm", "mlp": "swiglu"}}
    parents = {"a": None, "b": "a", "c": "b"}
    pool = {}
    for v, losses in LOSSES.items():
        for f, loss in losses.items():
            name = names[v] if f == 1 else names[(v, f)]
            pool[name] = run_at(name, loss * scale, names[parents[v]] if f == 1 and parents[v] else None,
                                lr=1e-3 * f, **settings[v])
    return pool


def numbers(found) -> list:
    return [(s.size, [(p.delta, p.judgement, p.outcome, p.ref_best.factor, p.run_best.factor, p.sensitivity,
                       p.basin, sorted(p.edges.values()), sorted(map(sorted, p.flat.values())))
                      for _, p in s.steps]) for s in found]


def test_renaming_every_run_changes_no_number():
    """Names that follow no pattern, sorted in another order than the chain: the same steps, the same numbers."""
    plain = {v: v for v in "abc"} | {(v, f): f"{v}-lr{f:g}" for v in "abc" for f in (0.5, 2)}
    odd = {"a": "zeta", "b": "m0", "c": "alpha", ("a", 0.5): "q", ("a", 2): "b", ("b", 0.5): "x-lr4",
           ("b", 2): "a", ("c", 0.5): "lr0.5", ("c", 2): "k"}
    found = []
    for names in (plain, odd):
        pool = chain(names)
        runs = {names[v]: pool[names[v]] for v in "abc"}
        found.append(study(sweep_index(names), pool, runs, NOISE, []))
    assert numbers(found[0]) == numbers(found[1])
    assert [(p.ref.variant, p.run.variant) for _, p in found[1][0].steps] == [("zeta", "m0"), ("m0", "alpha")]
    assert [p.outcome for _, p in found[0][0].steps] == ["gain vanishes", "holds"]  # a→b: -0.05, then 3.0 vs 3.0
    assert found[0][0].size == "default" and found[0][0].default  # no scale study: the one size is the default


def test_a_sweep_run_that_is_another_run_takes_that_runs_numbers():
    """A row whose settings another run already has (same_as) is that run: configure trains it once."""
    names = {v: v for v in "abc"} | {(v, f): f"{v}-lr{f:g}" for v in "abc" for f in (0.5, 2)}
    pool = chain(names)
    plain = study(sweep_index(names), pool, {v: pool[v] for v in "abc"}, NOISE, [])
    index = [{**r, "same_as": "twin"} if r["name"] == "b-lr2" else r for r in sweep_index(names)]
    pool["twin"] = replace(pool.pop("b-lr2"), name="twin")
    found = study(index, pool, {v: pool[v] for v in "abc"}, NOISE, [])
    assert numbers(found) == numbers(plain) and found[0].sweeps["b"].points[-1].run.name == "twin"
    del pool["c-lr2"]  # not finished; and a's sweep left out: b's step has no swept parent
    index = [r for r in sweep_index(names) if r["variant"] != "a"]
    [found] = study(index, pool, {v: pool[v] for v in "abc"}, NOISE, [])
    assert [(p.ref.variant, p.run.variant) for _, p in found.steps] == [("b", "c")]
    assert [pt.factor for pt in found.sweeps["c"].points] == [0.5, 1.0]


def test_each_size_uses_its_own_runs_and_noise(tmp_path):
    """The same chain at a second size, every loss ×1.1, with 10 times the seed noise there."""
    names = {v: v for v in "abc"} | {(v, f): f"{v}-lr{f:g}" for v in "abc" for f in (0.5, 2)}
    big = {k: f"big-{n}" for k, n in names.items()}
    pool = chain(names) | chain(big, scale=1.1)
    runs = {v: pool[v] for v in "abc"}
    loud = {m: Noise({}, 0.1, 4) for m in NOISE}
    sizes = [Size("small", runs, NOISE), Size("big", {v: pool[big[v]] for v in "abc"}, loud)]
    index = sweep_index(names) + sweep_index(big, size="big")
    gone = sweep_index({k: f"gone-{n}" for k, n in names.items()}, size="gone")  # a size whose runs did not load
    small, large = study(gone + index, pool, runs, NOISE, sizes)
    assert (small.size, large.size) == ("small", "big")  # the default runs' size takes the default rows
    assert (small.default, large.default, small.noise, large.noise) == (True, False, NOISE, loud)
    assert set(large.sweeps) == {"big-a", "big-b", "big-c"}
    ab_small, ab_large = small.steps[0][1], large.steps[0][1]
    assert ab_large.default.delta == pytest.approx(1.1 * (3.05 - 3.1))
    assert ab_large.threshold == pytest.approx(2 * math.sqrt(2) * 0.1) and ab_large.outcome == "holds"
    assert ab_small.threshold == pytest.approx(2 * math.sqrt(2) * 0.01) and ab_small.outcome == "gain vanishes"
    lines, draws, summary = render_lr_sweep.section([small, large], sizes, 256, tmp_path)
    assert [line for line in lines if line.startswith("### ")] == ["### Size small (2×8)", "### Size big (2×8)"]
    assert list(summary["sizes"]) == ["small", "big"] and summary["changed"] == ["a → b (gain vanishes, size small)"]
    for draw in draws:
        draw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_sweep_big.png", "lr_sweep_small.png"]


# The end to end test: the committed chains at chain_values() (σ = 0.01 on the legacy figure, 0.015 on val_bpb), the
# headline chain swept at ×¼, ×½, ×2, ×4 in a bowl around each default (best at ×1), but for three runs.
HEADLINE = ["baseline", "r1_adamw", "r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
            "r4_4_parallel"]
FACTORS = (0.25, 0.5, 2, 4)


def sweep_values() -> dict:
    base = chain_values()
    values = {(v, f): base[v] + {0.25: 0.2, 0.5: 0.05, 2: 0.04, 4: 0.1}[f] for v in HEADLINE + ["adamw_parallel",
                                                                                                 "sgd_parallel"]
              for f in FACTORS}
    values[("baseline", 4)] = 0.74  # SGD's best lr beyond the sweep: below every default run but sgd_parallel's 0.75
    values[("r4_2_rope", 2)] = base["r4_2_rope"] - 0.08  # so Rec. 4.3 (-0.05 at the default lr) now hurts: +0.03
    values[("r3_block256", 2)] = base["r3_block256"] + 0.02  # a flat bottom, on both metrics (within 2·√2·σ of each)
    return values


def add_sweep(root, values: dict, rows=True):
    """Each (variant, factor) as the interface writes it: its config (lr × factor), and its row in configs/runs.json
    while the study is on."""
    index = json.loads((root / "configs" / "runs.json").read_text())
    for (variant, f), v in values.items():
        config = json.loads((root / "configs" / f"{variant}.json").read_text())
        name = f"{variant}-lr{f:g}"
        config["train"]["lr"] = RunConfig.from_dict(config).train.lr * f  # the file may leave a default lr out
        write_json(root / "configs" / f"{name}.json", {**config, "name": name, "study": "lr_sweep"})
        index["runs"] += [{"name": name, "parent": None, "group": None, "repeat_of": None, "study": "lr_sweep",
                           "enabled": True, "variant": variant, "lr_factor": f, "size": None, "same_as": None}] * rows
    write_json(root / "configs" / "runs.json", index)


def build(root, params):
    stats = {"source": "synthetic", "train": {"titles": 90}, "val": {"titles": 10}}
    summary = build_report(params["data"], stats, root / "configs", root / "metrics", root / "dvclive",
                           root / "reports")
    files = {p.name: p.read_bytes() for p in (root / "reports").glob("*.*")}
    return files, summary, sorted(p.name for p in (root / "reports" / "figures").iterdir())


def test_off_the_report_is_the_default_one_byte_for_byte(tmp_path, monkeypatch):
    """Today's report (every lr-sweep function stubbed out) against the report with the study switched off: its
    runs' configs and metrics left behind, no row in configs/runs.json."""
    params = committed_params()
    params["data"]["source"] = "synthetic"
    values = sweep_values()
    fake_artifacts(tmp_path, params, chain_values() | {f"{v}-lr{f:g}": x for (v, f), x in values.items()})
    add_sweep(tmp_path, values, rows=False)
    with monkeypatch.context() as m:
        for module, name, stub in [(lr_sweep, "load_runs", {}), (lr_sweep, "study", []),
                                   (lr_sweep, "only_with_tuned", None), (render_lr_sweep, "opening", []),
                                   (render_lr_sweep, "section", ([], [], None)), (render_lr_sweep, "only_with", [])]:
            m.setattr(module, name, lambda *a, stub=stub, **k: stub)
        today = build(tmp_path, params)
    assert build(tmp_path, params) == today and "lr_sweep" not in today[1]


def test_the_section_end_to_end(tmp_path):
    params = committed_params()
    params["data"]["source"] = "synthetic"
    values = sweep_values()
    fake_artifacts(tmp_path, params, chain_values() | {f"{v}-lr{f:g}": x for (v, f), x in values.items()})
    add_sweep(tmp_path, values)
    files, summary, figures = build(tmp_path, params)
    text = files["report.md"].decode()
    assert "## Does each verdict survive a tuned learning rate?" in text and "lr_sweep_default.png" in figures
    assert "## Does each recommendation hold as the model grows?" not in text  # its rows are not the scale study's
    steps = {tuple(s["step"]): s for s in summary["lr_sweep"]["sizes"]["default"]["steps"]}
    assert list(steps) == list(zip(HEADLINE, HEADLINE[1:])) and "Each step of the headline chain:" in text
    assert steps[("baseline", "r1_adamw")]["outcome"] == "reverses"  # SGD at ×4 reaches 0.74
    assert steps[("baseline", "r1_adamw")]["ref"] == {"best": {"factor": 4, "lr": pytest.approx(4 * 6e-3)},
                                                      "edge": "largest", "add_factor": 8, "flat": []}
    assert ("| r4_2_rope → r4_3_swiglu | legacy val_loss | -0.0500 (±0.028): better | ×2 (0.002) | ×1 (0.001) | "
            "+0.0300 (±0.028): worse | **reverses** |") in text
    assert steps[("r1_adamw", "r2_vocab")]["metric"] == "val_bpb" and steps[("r1_adamw", "r2_vocab")]["outcome"] == (
        "holds")
    assert summary["lr_sweep"]["changed"] == ["baseline → r1_adamw (reverses)", "r4_2_rope → r4_3_swiglu (reverses)"]
    opening = text.split("## Write-up")[0]
    assert "these verdicts change: baseline → r1_adamw (reverses); r4_2_rope → r4_3_swiglu (reverses)." in opening
    assert "\"Only with AdamW\" holds with a tuned lr (does not hold at the default lr)." in opening
    assert "baseline's best lr is the largest factor swept (×4): its optimum may lie beyond it; add ×8." in text
    assert text.count("- So baseline → r1_adamw's Δ best against best is a lower bound (the reference side") == 1
    assert text.count("- r3_block256: ×2 lies within noise of its best (×1): a flat bottom") == 1  # in two steps
    assert steps[("r3_block256", "r4_1_rmsnorm")]["ref"]["flat"] == [2] == steps[("r2_vocab", "r3_block256")][
        "run"]["flat"]
    assert summary["lr_sweep"]["only_with_adamw"] == {"default": "does not hold", "tuned": "holds"}
    assert ("| baseline → sgd_parallel | legacy val_loss | -0.7500 (±0.028): better | ×4 (0.024) | ×1 (0.006) | "
            "+0.0100 (±0.028): within noise | **gain vanishes** |") in text
    assert ("| r1_adamw → adamw_parallel | legacy val_loss | -0.5000 (±0.028): better | ×1 (0.001) | ×1 (0.001) | "
            "-0.5000 (±0.028): better | **holds** |") in text
    assert "\"only with AdamW\" holds: the verdict does not survive** (at the default lr: does not hold)" in text
    assert json.loads(files["summary.json"])["lr_sweep"] == summary["lr_sweep"]


def test_a_sweep_run_is_never_read_as_a_default_run(tmp_path):
    """Even a sweep row without a size (the interface writes one) stays out of the default runs."""
    from mainrun.report.load import read_configs
    config = {"name": "v", "model": {}, "train": {"vocab_size_requested": 100, "lr": 1e-3}, "data": {}}
    rows = [{"name": "v", "parent": None, "group": 0, "study": None, "repeat_of": None, "enabled": True},
            {"name": "w", "parent": None, "group": None, "study": "lr_sweep", "repeat_of": None, "enabled": True,
             "variant": "v", "lr_factor": 2}]
    for name in ("v", "w"):
        write_json(tmp_path / f"{name}.json", config)
    write_json(tmp_path / "runs.json", {"runs": rows})
    assert list(read_configs(tmp_path)) == ["v"]


def test_chain_labels_name_each_rows_chain():
    """The chain of a row's variant (at a size: of the variant it scales), else the part runs, else 'other'."""
    runs = {n: Run(n, {}, parent, group) for n, parent, group in
            [("a", None, 0), ("b", "a", 0), ("c", "a", 1), ("d", "c", 1)]}
    index = [{"name": n} for n in "abcd"] + [
        {"name": "s-alone-x", "step": "b"}, {"name": "big-s-alone-x", "variant": "s-alone-x", "size": "big"},
        {"name": "big-d", "variant": "d", "size": "big"}, {"name": "d-lr2", "variant": "d", "lr_factor": 2,
                                                            "size": None}, {"name": "z"}]
    assert lr_sweep.chain_labels(index, runs) == {
        "a": "the headline chain", "b": "the headline chain", "c": "the chain on a", "d": "the chain on a",
        "s-alone-x": "the attribution study's part runs", "big-s-alone-x": "the attribution study's part runs",
        "big-d": "the chain on a", "d-lr2": "the chain on a", "z": "other swept variants"}


def test_load_runs_reads_the_finished_sweep_runs_and_the_variants_they_sweep(tmp_path):
    """Not a run already known, one whose metrics are missing, one switched off or one that is another run."""
    params = committed_params()
    params["data"]["source"] = "synthetic"
    fake_artifacts(tmp_path, params, chain_values() | {"r1_adamw-lr2": 1.0})
    add_sweep(tmp_path, {("r1_adamw", 2): 1.0, ("r1_adamw", 0.5): 1.1, ("r2_vocab", 2): 1.0})
    index = json.loads((tmp_path / "configs" / "runs.json").read_text())["runs"]
    known = {"r2_vocab": Run("r2_vocab", {})}

    def load(index):
        return lr_sweep.load_runs(index, known, tmp_path / "configs", tmp_path / "metrics")
    found = load(index)
    assert sorted(found) == ["r1_adamw", "r1_adamw-lr2"]
    r, v = found["r1_adamw-lr2"], found["r1_adamw"]
    assert (r.name, r.parent, r.study, r.metrics["val_loss"], r.settings["lr"]) == (
        "r1_adamw-lr2", None, "lr_sweep", 1.0, pytest.approx(2 * v.settings["lr"]))
    assert (v.parent, v.study, r.data) == ("baseline", None, v.data) and r.data
    for change in ({"enabled": False}, {"same_as": "r1_adamw"}):
        assert "r1_adamw-lr2" not in load([{**row, **change} if row["name"] == "r1_adamw-lr2" else row
                                           for row in index])


def test_only_with_adamw_again_at_each_sides_best_lr():
    """The same change (norm) on an SGD base and on an AdamW base: it helps on AdamW alone at the default lr, on
    both at their best lrs (SGD's at x2, the sweep's edge). None without the study's sweeps of every base and end."""
    def run(name, parent, group, optimizer, loss, **settings):
        return Run(name, {"lr": 1e-3, "optimizer": optimizer, **settings}, parent, group,
                   metrics={"val_loss": loss, "val_bpb": loss})
    runs = {r.name: r for r in [run("sgd", None, 0, "sgd", 3.0), run("adam", "sgd", 0, "adamw", 2.9),
                                run("sgd_n", "sgd", 1, "sgd", 3.0, norm="rmsnorm"),
                                run("adam_n", "adam", 2, "adamw", 2.8, norm="rmsnorm")]}
    sweeps = {"sgd": sweep("sgd", {0.5: 3.1, 1: 3.0, 2: 3.05}, optimizer="sgd"),
              "adam": sweep("adam", {0.5: 3.0, 1: 2.9, 2: 3.0}, optimizer="adamw"),
              "sgd_n": sweep("sgd_n", {0.5: 3.1, 1: 3.0, 2: 2.8}, optimizer="sgd", norm="rmsnorm"),
              "adam_n": sweep("adam_n", {0.5: 2.9, 1: 2.8, 2: 2.9}, optimizer="adamw", norm="rmsnorm")}

    def tuned(sweeps, runs=runs, default=True):
        return lr_sweep.only_with_tuned([lr_sweep.SizeSweep("d", sweeps, {}, [], NOISE, default)], runs, NOISE)
    found = tuned(sweeps)
    assert (found["default"], found["tuned"]) == ("holds", "does not hold")
    assert [(p.ref.variant, p.run.variant, p.judgement) for p in found["pairs"]] == [
        ("sgd", "sgd_n", "better"), ("adam", "adam_n", "better")]
    assert found["pairs"][0].edges == {"sgd_n": ("largest", 4)}
    assert tuned(sweeps, default=False) is None and lr_sweep.only_with_tuned([], runs, NOISE) is None
    for left_out in ("sgd", "adam_n"):
        assert tuned({v: s for v, s in sweeps.items() if v != left_out}) is None
    assert tuned(sweeps, {n: r for n, r in runs.items() if n != "adam_n"}) is None  # one base: nothing to compare
    sweeps["sgd_n"] = sweep("sgd_n", {0.5: 3.1, 1: 3.0, 2: 2.98}, optimizer="sgd", norm="rmsnorm")  # within noise
    assert tuned(sweeps)["tuned"] == "holds"
