"""The attribution study: parts from a delta, reused runs, the interaction and verdict words, names that change no
number."""
import json

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


def test_renaming_a_variant_changes_no_number():
    def renamed(name):
        return name.replace("s", "step_two").replace("p", "previous")
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
