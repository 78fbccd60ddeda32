"""The attribution study: parts from a delta, reused runs, the interaction and verdict words, names that change no
number."""
import json

import pytest

from mainrun.attribution import attribution_runs, parts_of, split_steps
from mainrun.configure import configure, read_run_list, run_settings, runs_on
from mainrun.report.analyse import Noise
from mainrun.report.attribution import carriers, defects, steps_at
from mainrun.report.load import Run
from test_configure import fake_tokenized


def test_each_key_is_a_part_unless_a_group_holds_it():
    delta = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "norm": "rmsnorm"}
    assert parts_of(delta, {}) == {k: (k,) for k in delta}
    assert parts_of(delta, {"optimizer": ["optimizer", "lr", "weight_decay"]}) == {
        "optimizer": ("optimizer", "lr", "weight_decay"), "norm": ("norm",)}


def test_the_committed_params_split_rec_4_2_and_4_3_only(params):
    assert {step: list(parts) for step, parts in split_steps(params).items()} == {
        "r4_2_rope": ["pos", "emb_scale", "attn", "attn_bias"], "r4_3_swiglu": ["mlp", "mlp_bias"]}
    params["attribution"]["groups"] = {}  # Rec. 1 is then three parts
    assert list(split_steps(params)["r1_adamw"]) == ["optimizer", "lr", "weight_decay"]


def test_a_part_run_is_the_parent_plus_the_part_or_the_step_less_it(params):
    runs = run_settings(params)
    parts = attribution_runs(params, runs)
    alone, drop = parts["r4_2_rope-alone-pos"].settings, parts["r4_2_rope-drop-pos"].settings
    assert {k for k in alone if alone[k] != runs["r4_1_rmsnorm"][k]} == {"pos", "study"}
    assert {k for k in drop if drop[k] != runs["r4_2_rope"][k]} == {"pos", "study"}


def test_a_run_with_the_settings_of_another_is_that_run(params, tmp_path):
    parts = attribution_runs(params, run_settings(params))
    # a two-part step less one part is the other part alone
    assert parts["r4_3_swiglu-drop-mlp"].same_as == "r4_3_swiglu-alone-mlp_bias"
    params["variants"]["r4_3_swiglu"]["norm"] = "rmsnorm"  # a key the parent already has: alone, that part is the parent
    assert attribution_runs(params, run_settings(params))["r4_3_swiglu-alone-norm"].same_as == "r4_2_rope"
    params["studies"]["attribution"] = True
    trained = configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    assert "r4_3_swiglu-alone-norm" not in trained and "r4_3_swiglu-drop-mlp" not in trained
    assert not (tmp_path / "cfg" / "r4_3_swiglu-drop-mlp.json").exists()


def test_switching_the_study_on_adds_runs_and_changes_no_default_config(params, tmp_path):
    tok = fake_tokenized(tmp_path / "tok")
    off = configure(params, tok, tmp_path / "off", tmp_path / "off.yaml", cuda=False)
    params["studies"]["attribution"] = True
    on = configure(params, tok, tmp_path / "on", tmp_path / "on.yaml", cuda=False)
    assert on[:len(off)] == off and len(on) == len(off) + 10
    assert all((tmp_path / "on" / f"{n}.json").read_bytes() == (tmp_path / "off" / f"{n}.json").read_bytes()
               for n in off)
    params["studies"]["scale"] = True  # then every part run trains at every size too
    assert {f"{size}-r4_2_rope-drop-attn" for size in params["scales"]["sizes"]} <= set(runs_on(params))


def run(name, loss, **settings):
    return Run(name, {"vocab_size": 16000, **settings}, metrics={"val_loss": loss, "val_bpb": loss})


NOISE = {m: Noise({}, 0.01, 4) for m in ("val_loss", "val_bpb")}  # threshold 2·√2·0.01 = 0.0283
ROWS = [{"name": f"s-{mode}-{part}", "step": "s", "parent": "p", "part": part, "mode": mode, "same_as": None}
        for mode in ("alone", "drop") for part in ("a", "b")]


def pool(p, s, a, b, drop_a, drop_b):
    return {"p": run("p", p), "s": run("s", s, pos="rope", attn="sdpa"), "s-alone-a": run("s-alone-a", a, pos="rope"),
            "s-alone-b": run("s-alone-b", b, attn="sdpa"), "s-drop-a": run("s-drop-a", drop_a, attn="sdpa"),
            "s-drop-b": run("s-drop-b", drop_b, pos="rope")}


def test_parts_that_add_up_and_the_part_that_carries_the_step():
    [step] = steps_at("default", pool(3.0, 3.1, 3.1, 3.0, 3.0, 3.1), ROWS, NOISE)
    assert [round(p.alone.delta, 6) for p in step.parts] == [0.1, 0.0]
    assert [round(p.dropped.delta, 6) for p in step.parts] == [0.1, 0.0]
    assert round(step.interaction, 6) == 0.0 and step.adds_up == "the parts add up"
    assert round(step.interaction_threshold, 4) == round(2 * 0.01 * 4 ** 0.5, 4)  # 1 + (k-1)^2 + k runs' worth, k = 2
    assert carriers(step) == "a carries the step's effect (worse, alone and when dropped last)."
    assert defects(step) == ["b only changes how the same function is computed, and comes out inside noise, as it must."]


def test_parts_that_interact_and_a_same_function_part_that_moves_is_flagged():
    [step] = steps_at("default", pool(3.0, 3.2, 3.0, 3.05, 3.2, 3.0), ROWS, NOISE)
    assert round(step.interaction, 6) == 0.15 and step.adds_up == "the parts interact"
    assert carriers(step) == "b carries the step's effect (worse, alone and when dropped last)."
    assert defects(step)[0].startswith("**Possible defect:** b only changes how the same function is computed")
    [step] = steps_at("default", pool(3.0, 3.2, 3.0, 3.0, 3.0, 3.0), ROWS, NOISE)
    assert carriers(step) == ("No single part carries the step's effect (worse): it needs its parts together "
                              "(dropping any of a, b removes it).")


def test_a_three_part_step_sums_five_runs_worth_of_noise():
    """k = 3: the interaction whole + 2·parent − Σ alone has noise 2σ·√(1 + 2² + 3) = 2σ·√8 (k = 2 cannot tell
    that from 2σ·√(k + 2) or 2σ·√(2k))."""
    rows = [{"name": f"s-{mode}-{part}", "step": "s", "parent": "p", "part": part, "mode": mode, "same_as": None}
            for mode in ("alone", "drop") for part in ("a", "b", "c")]
    runs = {"p": run("p", 3.0), "s": run("s", 3.3, pos="rope", attn="sdpa", mlp="swiglu"),
            "s-alone-a": run("s-alone-a", 3.1, pos="rope"), "s-alone-b": run("s-alone-b", 3.05, attn="sdpa"),
            "s-alone-c": run("s-alone-c", 3.02, mlp="swiglu"), "s-drop-a": run("s-drop-a", 3.2, attn="sdpa", mlp="swiglu"),
            "s-drop-b": run("s-drop-b", 3.3, pos="rope", mlp="swiglu"), "s-drop-c": run("s-drop-c", 3.3, pos="rope",
                                                                                       attn="sdpa")}
    [step] = steps_at("default", runs, rows, NOISE)
    assert [p.name for p in step.parts] == ["a", "b", "c"]
    assert round(step.interaction, 6) == round(0.3 - (0.1 + 0.05 + 0.02), 6)
    assert step.interaction_threshold == pytest.approx(2 * 0.01 * 8 ** 0.5)
    assert step.adds_up == "the parts interact"  # 0.13 > 0.0566
    assert [round(p.dropped.delta, 6) for p in step.parts] == [0.1, 0.0, 0.0]


def test_each_size_is_judged_on_its_own_runs_and_noise(monkeypatch):
    """With the scale study, each size's step is its own runs' differences against its own seed noise."""
    from mainrun.report import attribution
    from mainrun.report.scale import Size

    default, small = pool(3.0, 3.1, 3.1, 3.0, 3.0, 3.1), pool(4.0, 3.5, 3.9, 3.6, 3.6, 3.9)
    parts = {None: {n: r for n, r in default.items() if "-" in n}, "small": {n: r for n, r in small.items() if "-" in n}}
    monkeypatch.setattr(attribution, "load_part_runs", lambda *a: parts)
    chain = {n: r for n, r in default.items() if "-" not in n}
    small_noise = {m: Noise({}, 0.1, 4) for m in ("val_loss", "val_bpb")}
    sizes = [Size("small", {n: r for n, r in small.items() if "-" not in n}, small_noise), Size("default", chain, NOISE)]
    found = attribution.study(ROWS, chain, NOISE, sizes, None, None, None)
    at = {s.size: s for s in found["s"]}
    assert list(at) == ["small", "default"]
    assert [round(x, 6) for x in (at["small"].whole.delta, at["default"].whole.delta)] == [-0.5, 0.1]
    assert [[round(p.alone.delta, 6) for p in at[z].parts] for z in at] == [[-0.1, -0.4], [0.1, 0.0]]
    assert [[round(p.dropped.delta, 6) for p in at[z].parts] for z in at] == [[-0.1, -0.4], [0.1, 0.0]]
    assert at["small"].whole.threshold == pytest.approx(2 * 2 ** 0.5 * 0.1)  # small's noise: -0.1 is inside it,
    assert [p.alone.judgement for p in at["small"].parts] == ["within noise", "better"]  # the default's: not
    assert at["small"].interaction_threshold == pytest.approx(2 * 0.1 * 4 ** 0.5)
    assert at["default"].whole.judgement == "worse" and carriers(at["default"]).startswith("a carries")
    assert carriers(at["small"]).startswith("b carries")


def test_a_grouped_part_moves_all_its_keys_together(params):
    """A group of several keys is one part: alone, the parent plus every key of it; dropped, the step less all of
    them; and it is 'the same function' only if every key of it is."""
    params["attribution"]["groups"]["attention"] = ["attn", "attn_bias"]
    runs = run_settings(params)
    assert split_steps(params)["r4_2_rope"] == {"pos": ("pos",), "emb_scale": ("emb_scale",),
                                               "attention": ("attn", "attn_bias")}
    parts = attribution_runs(params, runs)
    alone, drop = parts["r4_2_rope-alone-attention"].settings, parts["r4_2_rope-drop-attention"].settings
    assert {k for k in alone if alone[k] != runs["r4_1_rmsnorm"][k]} == {"attn", "attn_bias", "study"}
    assert {k: alone[k] for k in ("attn", "attn_bias")} == {k: runs["r4_2_rope"][k] for k in ("attn", "attn_bias")}
    assert {k for k in drop if drop[k] != runs["r4_2_rope"][k]} == {"attn", "attn_bias", "study"}
    assert "r4_2_rope-alone-attn" not in parts and "r4_2_rope-alone-attn_bias" not in parts
    rows = [{"name": f"s-{mode}-{part}", "step": "s", "parent": "p", "part": part, "mode": mode, "same_as": None}
            for mode in ("alone", "drop") for part in ("pos", "attention")]
    both = {"attn": "sdpa", "attn_bias": False}
    runs = {"p": run("p", 3.0), "s": run("s", 3.2, pos="rope", **both), "s-alone-pos": run("s-alone-pos", 3.0, pos="rope"),
            "s-alone-attention": run("s-alone-attention", 3.2, **both), "s-drop-pos": run("s-drop-pos", 3.2, **both),
            "s-drop-attention": run("s-drop-attention", 3.0, pos="rope")}
    [step] = steps_at("default", runs, rows, NOISE)
    attention = step.parts[1]
    assert attention.alone.keys == ("attn", "attn_bias") and not attention.same_function  # attn_bias changes it
    assert defects(step) == [] and carriers(step).startswith("attention carries")


def test_renaming_a_variant_changes_no_number():
    """Names of no shape at all (no -alone- or -drop-, no step name in a part's): the rows decide, not the names."""
    opaque = {}

    def renamed(name):
        return opaque.setdefault(name, f"run{len(opaque) * 7 % 11}")
    numbers = []
    for rename in (str, renamed):
        rows = [{**r, "name": rename(r["name"]), "step": rename("s"), "parent": rename("p")} for r in ROWS]
        runs = {rename(n): run(rename(n), r.metrics["val_loss"], **{k: v for k, v in r.settings.items()
                                                                    if k != "vocab_size"})
                for n, r in pool(3.0, 3.2, 3.0, 3.05, 3.2, 3.0).items()}
        [step] = steps_at("default", runs, rows, NOISE)
        numbers.append([(p.alone.delta, p.alone.judgement, p.dropped.delta, p.dropped.judgement) for p in step.parts]
                       + [step.interaction, step.adds_up])
    assert numbers[0] == numbers[1]


def test_bad_groups_name_the_fix(params):
    import pytest
    from mainrun.config import ConfigError
    from mainrun.params import check_params
    params["attribution"]["groups"] = {"lr": ["optimizer", "weight_decay"]}  # named after a key it does not hold
    with pytest.raises(ConfigError, match="the group 'lr' is named after a key it does not hold"):
        check_params(params)
    params["attribution"]["groups"] = {"opt": ["optimizer"], "also": ["optimizer"]}
    with pytest.raises(ConfigError, match="'optimizer' is in both 'opt' and 'also'"):
        check_params(params)
    params["attribution"]["groups"] = {"opt": [["lr"]]}
    with pytest.raises(ConfigError, match=r"attribution.groups.opt\[0\] must be of type str"):
        check_params(params)


def test_a_run_switched_off_keeps_its_stage_once_as_a_marker(params, tmp_path):
    tok = fake_tokenized(tmp_path / "tok")
    params["studies"]["attribution"] = True
    configure(params, tok, tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    params["studies"]["attribution"] = False
    configure(params, tok, tmp_path / "cfg2", tmp_path / "runs.yaml", cuda=False)
    assert json.loads((tmp_path / "cfg2" / "r4_2_rope-alone-pos.json").read_text()) == {
        "name": "r4_2_rope-alone-pos", "enabled": False}  # not re-trained at whatever else changed
    assert "r4_2_rope-alone-pos" not in read_run_list(tmp_path / "runs.yaml")


def test_a_part_runs_row_names_its_step_part_mode_and_parent(params):
    from mainrun.configure import run_index
    params["studies"]["attribution"] = True
    rows = {r["name"]: r for r in run_index(params)}
    assert rows["r4_2_rope-drop-pos"] == {
        "name": "r4_2_rope-drop-pos", "parent": "r4_1_rmsnorm", "group": None, "repeat_of": None,
        "study": "attribution", "enabled": True, "step": "r4_2_rope", "part": "pos", "mode": "drop", "same_as": None}
    assert rows["r4_3_swiglu-alone-mlp"]["parent"] == "r4_2_rope" and rows["r4_3_swiglu-alone-mlp"]["mode"] == "alone"


def test_a_variant_named_like_a_part_run_is_refused_in_one_line(params):
    from mainrun.config import ConfigError
    params["variants"]["r4_3_swiglu-alone-mlp"] = {"from": "baseline", "study": "failed_attempts"}
    with pytest.raises(ConfigError, match=r"^variant name 'r4_3_swiglu-alone-mlp' is also the name of the attribution "
                                          r"study's run of 'r4_3_swiglu' alone 'mlp'; rename the variant$"):
        attribution_runs(params, run_settings(params))


def test_the_chain_stops_before_an_opt_in_variant_and_the_switch_defaults_to_off(params):
    from mainrun import attribution
    chain = attribution.headline_chain(params)
    variants = params["variants"]
    params["variants"] = {**{n: variants[n] for n in chain}, "mine": {"study": "failed_attempts", "lr": 2e-3},
                          **{n: v for n, v in variants.items() if n not in chain}}
    assert attribution.headline_chain(params) == chain
    assert not attribution.on({"studies": {}})


@pytest.mark.usefixtures("charts_not_rendered")
def test_the_report_reads_the_part_runs_and_sums_up_each_step(params, tmp_path):
    """From the artifacts: r4_3_swiglu's parts finished (its drop-mlp is its alone-mlp_bias), r4_2_rope's did not, so
    it is left out. r4_2_rope -> r4_3_swiglu is 1.25 -> 1.2 on the legacy figure, σ 0.01 (test_report.chain_values)."""
    from test_report import chain_values, make_report
    params["studies"]["attribution"] = True
    parts = {"r4_3_swiglu-alone-mlp": 1.21, "r4_3_swiglu-alone-mlp_bias": 1.25, "r4_3_swiglu-drop-mlp_bias": 1.21}
    text, summary = make_report(tmp_path, params, chain_values() | parts)

    def comp(delta, judgement):
        return {"delta": delta, "judgement": judgement, "metric": "val_loss", "threshold": 0.028284,
                "cost": {"params": [1000, 1000], "train_seconds": [1.0, 1.0]}}
    assert summary["attribution"] == {"r4_3_swiglu": {"default": {
        "parent": "r4_2_rope", "whole": comp(-0.05, "better"), "interaction": -0.01, "interaction_threshold": 0.04,
        "adds_up": "the parts add up",
        "carriers": "mlp carries the step's effect (better, alone and when dropped last).",
        "parts": {"mlp": {"alone": comp(-0.04, "better"), "dropped": comp(-0.05, "better"), "same_function": False},
                  "mlp_bias": {"alone": comp(0.0, "within noise"), "dropped": comp(-0.01, "within noise"),
                               "same_function": False}}}}}
    assert "**r4_3_swiglu** at size default (on r4_2_rope; judged on legacy val_loss)" in text


def test_part_runs_are_read_at_each_size_under_their_default_size_names(params, tmp_path):
    """A part run that is another run (same_as) is not read, even where a file of its name is there."""
    from mainrun.report.attribution import load_part_runs
    from test_report import fake_artifacts
    params["studies"]["attribution"] = params["studies"]["scale"] = True
    fake_artifacts(tmp_path, params, {"r4_3_swiglu-alone-mlp": 1.21, "small-r4_3_swiglu-alone-mlp": 1.5,
                                      "r4_3_swiglu-drop-mlp": 9.0})
    index = json.loads((tmp_path / "configs" / "runs.json").read_text())["runs"]
    found = load_part_runs(index, tmp_path / "configs", tmp_path / "metrics", tmp_path / "dvclive")
    assert {size: list(runs) for size, runs in found.items()} == {None: ["r4_3_swiglu-alone-mlp"],
                                                                  "small": ["r4_3_swiglu-alone-mlp"]}
    r = found["small"]["r4_3_swiglu-alone-mlp"]
    assert (r.name, r.parent, r.study, r.repeat_of, r.settings["mlp"], r.metrics["val_loss"]) == (
        "small-r4_3_swiglu-alone-mlp", "small-r4_2_rope", "attribution", None, "swiglu", 1.5)
    assert r.curves["val_loss"] == ([1, 10], [2.0, 1.5])


def test_carriers_words():
    """Whole-step verdict and each part's (alone, dropped last): which part the line names, and how."""
    from types import SimpleNamespace as NS

    def step(whole, *parts):
        return NS(whole=NS(judgement=whole),
                  parts=[NS(name=n, alone=NS(judgement=a), dropped=d and NS(judgement=d)) for n, a, d in parts])
    B, W, N = "better", "worse", "within noise"
    assert carriers(step(N, ("a", N, N), ("b", N, None))) == "The step is within noise; so is every part alone."
    assert carriers(step(N, ("a", B, N), ("b", N, N))) == (
        "The step is within noise; alone, a moves the loss beyond noise, and the other parts cancel it.")
    assert carriers(step(N, ("a", B, N), ("b", W, N), ("c", N, N))).startswith("The step is within noise; alone, a, b ")
    assert carriers(step(W, ("a", N, W), ("b", N, N))) == "a carries the step's effect (worse, when dropped last)."
    assert carriers(step(B, ("a", B, N), ("b", B, None))) == "a and b carry the step's effect (better, alone)."
    assert carriers(step(B, ("a", B, B), ("b", B, N))) == (
        "a carries the step's effect (better, alone and when dropped last).")
    assert carriers(step(W, ("a", N, N), ("b", N, None))) == (
        "No single part carries the step's effect (worse): it needs its parts together.")


def test_a_part_is_judged_on_the_whole_steps_metric():
    """The step changes the vocabulary (judged on val_bpb); its norm part alone changes no counting key, yet is judged
    on val_bpb too, so the interaction adds like with like. A part with the parent's settings on its data is that
    run."""
    def run(name, loss, bpb, **settings):
        return Run(name, {"vocab_size": 16000, **settings}, data={"fingerprint": "x"},
                   metrics={"val_loss": loss, "val_bpb": bpb})
    noise = {"val_loss": Noise({}, 0.01, 4), "val_bpb": Noise({}, 0.02, 4)}
    rows = [{"name": f"s-{mode}-{part}", "step": "s", "parent": "p", "part": part, "mode": mode, "same_as": None}
            for mode in ("alone", "drop") for part in ("vocab", "norm")]
    runs = {"p": run("p", 3.0, 2.0), "s": run("s", 2.0, 1.8, vocab_size=8000, norm="rmsnorm"),
            "s-alone-vocab": run("s-alone-vocab", 2.0, 1.9, vocab_size=8000),
            "s-alone-norm": run("s-alone-norm", 3.1, 1.9, norm="rmsnorm"),
            "s-drop-vocab": run("s-drop-vocab", 3.1, 1.9, norm="rmsnorm"),
            "s-drop-norm": run("s-drop-norm", 2.0, 1.9, vocab_size=8000)}
    [step] = steps_at("default", runs, rows, noise)
    norm = step.parts[1]
    for c, delta, other_delta in ((norm.alone, -0.1, 0.1), (norm.dropped, -0.1, 0.0)):
        assert (c.metric, c.other, c.threshold, c.judgement) == ("val_bpb", "val_loss", pytest.approx(0.0566, abs=1e-4),
                                                               "better")
        assert (c.delta, c.other_delta) == (pytest.approx(delta), pytest.approx(other_delta))
    assert step.interaction == pytest.approx(-0.2 - (-0.1 - 0.1))
    runs["s-alone-norm"] = run("s-alone-norm", 3.0, 2.0)  # the parent's settings: the same run, kept as it is
    alone = steps_at("default", runs, rows, noise)[0].parts[1].alone
    assert (alone.judgement, alone.metric) == ("same run", "val_loss")


def test_a_step_is_summed_only_when_its_runs_and_all_its_parts_finished():
    def without(*names):
        return {n: r for n, r in pool(3.0, 3.1, 3.1, 3.0, 3.0, 3.1).items() if n not in names}
    assert steps_at("default", without("s-alone-b"), ROWS, NOISE) == []
    assert steps_at("default", without("p"), ROWS, NOISE) == []
    other = [{**r, "name": "t" + r["name"][1:], "step": "t"} for r in ROWS]  # a step listed first that did not run
    [step] = steps_at("default", without(), other + ROWS, NOISE)
    assert step.step == "s"
    [step] = steps_at("default", without(), ROWS, {"val_loss": None, "val_bpb": None})
    assert (step.interaction_threshold, step.adds_up) == (None, "not measured")


def test_the_summary_rounds_to_six_places():
    noise = {m: Noise({}, 0.0123457, 4) for m in ("val_loss", "val_bpb")}
    [step] = steps_at("default", pool(3.0, 3.1234567, 3.1, 3.0, 3.0, 3.1), ROWS, noise)
    from mainrun.report.attribution import summary
    s = summary({"s": [step]})["s"]["default"]
    assert (s["whole"]["delta"], s["interaction"], s["interaction_threshold"]) == (0.123457, 0.023457, 0.049383)


def test_the_default_size_is_the_one_holding_the_default_runs(monkeypatch):
    """Its pool is every default run (the scale study may scale fewer) and the part runs of the default size."""
    from mainrun.report import attribution
    from mainrun.report.scale import Size
    default = pool(3.0, 3.1, 3.1, 3.0, 3.0, 3.1)
    chain = {n: r for n, r in default.items() if "-" not in n}
    parts = {None: {n: r for n, r in default.items() if "-" in n}}
    monkeypatch.setattr(attribution, "load_part_runs", lambda *a: parts)
    sizes = [Size("small", {"p": run("small-p", 4.0)}, NOISE), Size("mid", {"p": chain["p"]}, NOISE)]  # p scaled only
    found = attribution.study(ROWS, chain, NOISE, sizes, None, None, None)
    assert [s.size for s in found["s"]] == ["mid"]  # small: no part runs
    monkeypatch.setattr(attribution, "load_part_runs", lambda *a: {})
    assert attribution.study(ROWS, chain, NOISE, [], None, None, None) == {}  # no part run finished


def test_on_metric_moves_a_comparison_to_the_other_metric():
    from mainrun.report.analyse import compare
    from mainrun.report.attribution import on_metric
    p, v = run("p", 3.0), Run("v", {"vocab_size": 8000}, metrics={"val_loss": 2.9, "val_bpb": 3.2})
    c = on_metric(compare(p, v, NOISE), p, v, "val_loss", NOISE)  # judged on val_bpb alone, on val_loss here
    assert (c.metric, c.other, c.judgement) == ("val_loss", "val_bpb", "better")
    assert (c.delta, c.other_delta) == (pytest.approx(-0.1), pytest.approx(0.2))
    none = {"val_loss": None, "val_bpb": None}
    c = on_metric(compare(p, v, none), p, v, "val_loss", none)
    assert (c.threshold, c.judgement) == (None, "not measured")
