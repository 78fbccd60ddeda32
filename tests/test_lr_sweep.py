"""The lr sweep's runs (one config per swept run and factor, factor 1 the run itself, at every size, on the part runs
when asked), strict factors, and the self-extending sweep's decisions on hand-made numbers."""
import json
import math
from pathlib import Path

import pytest

from mainrun import lr_extend
from mainrun.config import ConfigError, RunConfig
from mainrun.configure import configure, run_index, runs_on
from mainrun.lr_extend import beyond_edge, plan, read_sweeps
from mainrun.params import check_params
from test_configure import config_bytes, fake_tokenized
from test_scale import CHAIN

FACTORS = [0.25, 0.5, 2, 4]


def sweep_on(params, **spec):
    params["studies"]["lr_sweep"] = True
    params["lr_sweep"].update(spec)
    return params


def rows(params) -> dict[str, dict]:
    return {r["name"]: r for r in run_index(params) if r["study"] == "lr_sweep"}


def test_each_chain_variant_at_each_factor_and_factor_1_is_the_run_itself(params, tmp_path):
    off = config_bytes(params, tmp_path, "off")
    on = config_bytes(sweep_on(params), tmp_path, "on")
    swept = {f"{v}-lr{f}" for v in CHAIN for f in FACTORS}
    assert {n for n in on if on[n] != off.get(n)} == swept | {"runs", "new_runs"}  # no default config changes
    assert not [n for n in on if n.endswith("-lr1")]
    listed = (tmp_path / "on.yaml").read_text()
    assert listed.startswith((tmp_path / "off.yaml").read_text().rstrip("]\n"))  # the default runs first, as before

    def read(name):  # defaults filled in: a file holds only the settings away from them
        return {**RunConfig.from_dict(json.loads(on[name])).full_dict(), "study": json.loads(on[name])["study"]}
    for run, factor in (("baseline", 0.25), ("r1_adamw", 4), ("r4_2_rope", 0.5)):
        ref, lr = read(run), read(f"{run}-lr{factor}")
        assert lr["train"]["lr"] == ref["train"]["lr"] * factor and lr["study"] == "lr_sweep"
        assert {**lr["train"], "lr": ref["train"]["lr"]} == ref["train"] and lr["model"] == ref["model"]
    assert rows(params)["r1_adamw-lr0.25"] == {
        "name": "r1_adamw-lr0.25", "parent": None, "group": None, "repeat_of": None, "study": "lr_sweep",
        "enabled": True, "variant": "r1_adamw", "lr_factor": 0.25, "size": None, "same_as": None}


def test_chain_follows_the_chain_and_a_list_picks_variants(params):
    params["variants"]["r5_new"] = {"dropout": 0.0}  # a step added to the headline chain joins by itself
    params["variants"] = {k: params["variants"][k] for k in [*CHAIN, "r5_new", *list(params["variants"])[len(CHAIN):-1]]}
    assert {r["variant"] for r in rows(sweep_on(params)).values()} == {*CHAIN, "r5_new"}
    params["lr_sweep"]["variants"] = ["sgd_rope", "adamw_rope"]  # "only with AdamW?"
    assert set(rows(params)) == {f"{v}-lr{f}" for v in ("sgd_rope", "adamw_rope") for f in FACTORS}


def test_every_size_and_with_parts_every_part_run(params):
    params["studies"].update(scale=True, attribution=True)
    on = runs_on(sweep_on(params, factors=[2], variants=["r4_2_rope"]))
    assert {n for n in on if "-lr" in n} == {"r4_2_rope-lr2", "small-r4_2_rope-lr2", "large-r4_2_rope-lr2"}
    assert rows(params)["small-r4_2_rope-lr2"] | {"name": 0} == {
        "name": 0, "parent": None, "group": None, "repeat_of": None, "study": "lr_sweep", "enabled": True,
        "variant": "small-r4_2_rope", "lr_factor": 2.0, "size": "small", "same_as": None}
    params["lr_sweep"]["parts"] = True
    swept = {r["variant"] for r in rows(params).values()}
    parts = {r["name"] for r in run_index(params) if r["study"] == "attribution" and r["enabled"]}
    assert len(parts) == 10 and {f"{s}{p}" for s in ("", "small-", "large-") for p in parts} <= swept
    assert not [v for v in swept if "seed" in v]  # seed repeats are never swept


def test_a_sweep_run_with_the_settings_of_another_run_is_that_run(params):
    params["variants"]["r1_fast"] = {"from": "r1_adamw", "lr": 2.0e-3}
    row = rows(sweep_on(params, variants=["r1_adamw"]))["r1_adamw-lr2"]
    assert (row["same_as"], row["enabled"]) == ("r1_fast", False)
    assert "r1_adamw-lr2" not in runs_on(params) and "r1_adamw-lr4" in runs_on(params)


def test_extra_factors_join_one_run_only(params):
    params["studies"]["scale"] = True
    index = rows(sweep_on(params, extra={"small-r1_adamw": [8, 0.125]}))
    assert [r["lr_factor"] for r in index.values() if r["variant"] == "small-r1_adamw"] == [0.125, 0.25, 0.5, 2, 4, 8]
    assert [r["lr_factor"] for r in index.values() if r["variant"] == "r1_adamw"] == FACTORS
    params["lr_sweep"]["extra"] = {"r1_adamw-seed1338": [8]}
    with pytest.raises(ConfigError, match="lr_sweep.extra: 'r1_adamw-seed1338' is not a run the sweep trains"):
        runs_on(params)


def test_renaming_a_variant_changes_no_setting(params, tmp_path):
    tok = fake_tokenized(tmp_path / "tok")
    sweep_on(params, variants=["r1_adamw", "adamw_rope"])
    configure(params, tok, tmp_path / "a", tmp_path / "a.yaml", cuda=False)
    params["variants"] = {("adam" if k == "r1_adamw" else k): ({**d, "from": "adam"} if (d or {}).get("from") == "r1_adamw"
                                                               else d) for k, d in params["variants"].items()}
    params["noise"]["variants"] = ["adam", "r4_4_parallel"]
    params["lr_sweep"]["variants"] = ["adam", "adamw_rope"]
    configure(params, tok, tmp_path / "b", tmp_path / "b.yaml", cuda=False)
    for a, b in (("r1_adamw-lr0.25", "adam-lr0.25"), ("adamw_rope-lr4", "adamw_rope-lr4"), ("r1_adamw", "adam")):
        ja, jb = (json.loads((tmp_path / d / f"{n}.json").read_text()) for d, n in (("a", a), ("b", b)))
        assert {**ja, "name": b} == jb


def test_off_gives_the_same_files_whatever_the_sweep_asks(params, tmp_path):
    before = config_bytes(params, tmp_path, "before")
    params["lr_sweep"].update(factors=[0.1, 3], variants=["gone"], parts=True, extra={"x": [8]})
    assert config_bytes(params, tmp_path, "after") == before
    assert (tmp_path / "after.yaml").read_text() == (tmp_path / "before.yaml").read_text()


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(factors=[0.5, 0]), r"lr_sweep.factors\[1\]: 0 is not a learning-rate factor"),
    (lambda s: s.update(factors=[-2]), r"lr_sweep.factors\[0\]: -2 is not a learning-rate factor; use positive"),
    (lambda s: s.update(factors=[float("nan")]), r"lr_sweep.factors\[0\]: nan is not a learning-rate factor"),
    (lambda s: s.update(factors=["0.5"]), r"lr_sweep.factors\[0\] must be of type float, got '0.5' \(quoted"),
    (lambda s: s.update(factors=[True]), r"lr_sweep.factors\[0\] must be of type float, got True"),
    (lambda s: s.update(factors=0.5), r"lr_sweep.factors must be of type list, got 0.5"),
    (lambda s: s.update(factors=[0.5, 1]), r"lr_sweep.factors\[1\]: factor 1 is the swept run itself.*leave it out"),
    (lambda s: s.update(factors=[2, 0.5, 2.0]), r"lr_sweep.factors lists 2 and 2.0, one factor; list each once"),
    (lambda s: s.update(extra={"r1_adamw": [4]}), r"lr_sweep.extra.r1_adamw lists 4, which lr_sweep.factors has"),
    (lambda s: s.update(extra={"r1_adamw": [0]}), r"lr_sweep.extra.r1_adamw\[0\]: 0 is not a learning-rate factor"),
    (lambda s: s.update(extend={"cap": 1}), r"lr_sweep.extend.cap must be a number above 1"),
    (lambda s: s.update(extend={"cp": 4}), r"unknown key lr_sweep.extend.cp; allowed: cap"),
    (lambda s: s.update(variants="all"), r"lr_sweep.variants must be a list of variants or `chain` \(the headline chain\), got 'all'"),
    (lambda s: s.update(variants=["r1_adamw", "nope"]), r"lr_sweep.variants: 'nope' is not a variant"),
    (lambda s: s.update(variants=["vocab_8k"]), r"'vocab_8k' belongs to the opt-in study 'vocab_sweep'"),
    (lambda s: s.pop("factors"), r"missing key 'lr_sweep.factors'"),
])
def test_a_bad_sweep_fails_with_one_line(params, mutate, message):
    sweep_on(params)
    mutate(params["lr_sweep"])
    with pytest.raises(ConfigError, match=message) as err:
        check_params(params)
    assert "\n" not in str(err.value)


def test_a_sweep_run_named_like_a_variant_is_refused(params, tmp_path):
    params["variants"]["r1_adamw-lr2"] = {"from": "baseline"}
    check_params(sweep_on(params))
    with pytest.raises(ConfigError, match="variant name 'r1_adamw-lr2' is also the name of a run of the lr_sweep study"):
        configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)


# the self-extending sweep (mainrun/lr_extend.py): its decisions on hand-made losses
def test_an_interior_best_stops_the_extension():
    assert beyond_edge({0.25: 3.1, 0.5: 3.0, 1: 2.9, 2: 3.0, 4: 3.4}, 256) == []


def test_an_edge_best_extends_that_side_only():
    assert beyond_edge({0.25: 3.1, 0.5: 3.0, 1: 2.9, 2: 2.8, 4: 2.7}, 256) == [8]
    assert beyond_edge({0.25: 2.5, 0.5: 3.0, 1: 2.9, 2: 2.8, 4: 2.7}, 256) == [0.125]
    assert beyond_edge({1: 3.0}, 256) == [0.5, 2]  # one point is both edges


def test_the_cap_stops_the_extension():
    assert beyond_edge({64: 3.0, 128: 2.9, 256: 2.8}, 256) == []
    assert beyond_edge({1 / 256: 2.0, 1: 3.0}, 256) == []
    assert beyond_edge({64: 3.0, 128: 2.9}, 256) == [256]
    assert beyond_edge({1 / 128: 2.0, 1: 3.0}, 256) == [1 / 256]


def test_a_diverged_run_is_never_the_best():
    assert beyond_edge({0.5: 3.0, 1: 2.9, 2: 2.8, 4: math.nan}, 256) == []
    assert beyond_edge({0.25: math.nan, 0.5: 3.0, 1: 2.9, 2: 3.0}, 256) == []  # min() alone would keep a NaN first
    assert beyond_edge({0.5: 3.0, 1: 2.9, 2: math.inf}, 256) == []


def test_plan_extends_on_either_metric():
    sweeps = {"a": {0.5: {"val_loss": 3.0, "val_bpb": 1.2}, 1: {"val_loss": 2.9, "val_bpb": 1.1},
                    2: {"val_loss": 3.1, "val_bpb": 1.0}},  # interior on the legacy loss, at the top on bpb
              "b": {0.5: {"val_loss": 3.0, "val_bpb": 1.2}, 1: {"val_loss": 2.9, "val_bpb": 1.1},
                    2: {"val_loss": 3.1, "val_bpb": 1.3}}}
    assert plan(sweeps, 256) == {"a": [4]}


def test_read_sweeps_follows_same_as_and_names_unfinished_runs(tmp_path):
    index = [{"name": "v"}, {"name": "w"}, {"name": "u"},
             {"name": "v-lr2", "variant": "v", "lr_factor": 2.0, "same_as": None},
             {"name": "v-lr4", "variant": "v", "lr_factor": 4.0, "same_as": "w"},
             {"name": "u-lr2", "variant": "u", "lr_factor": 2.0, "same_as": None}]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "runs.json").write_text(json.dumps({"runs": index}))
    for name, loss in (("v", 3.0), ("w", 2.5), ("v-lr2", 2.8), ("u", 3.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"val_loss": loss, "val_bpb": loss / 2}))
    sweeps, unfinished = read_sweeps(tmp_path / "configs", tmp_path)
    assert sweeps == {"v": {1.0: {"val_loss": 3.0, "val_bpb": 1.5}, 2.0: {"val_loss": 2.8, "val_bpb": 1.4},
                            4.0: {"val_loss": 2.5, "val_bpb": 1.25}}}
    assert unfinished == ["u"]


def test_the_added_factors_are_written_as_params_that_pass_the_checks(params, tmp_path):
    import yaml
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    params["studies"]["scale"] = True
    path.write_text(yaml.safe_dump(sweep_on(params, extra={"r1_adamw": [8]}), sort_keys=False))
    apply_overrides(path, lr_extend.overrides(params, {"r1_adamw": [16], "small-r1_adamw": [0.125]}))
    written = yaml.safe_load(path.read_text())
    check_params(written)
    assert written["lr_sweep"]["extra"] == {"r1_adamw": [8, 16], "small-r1_adamw": [0.125]}
    assert {"r1_adamw-lr16", "small-r1_adamw-lr0.125"} <= set(runs_on(written))


def test_the_extend_loop_adds_factors_until_each_best_is_interior_or_at_the_cap(params, tmp_path, monkeypatch):
    """The loop with a stand-in for the pipeline: configure, then every run's loss from its lr alone (a parabola in
    log2 lr around an optimum per variant)."""
    import yaml
    from dvc.utils.hydra import apply_overrides

    from mainrun.params import load_params
    optimum = {"baseline": 6e-3 * 100, "r1_adamw": 1e-3 * 4}  # far beyond the cap of 8; 4x, inside it

    def pipeline(jobs, sets):
        calls.append(sets)
        assert len(calls) < 10, "the loop does not stop"
        if sets:
            apply_overrides("params.yaml", sets)
        for name in configure(load_params(), tok, "configs", "runs.yaml", cuda=False):
            cfg = RunConfig.from_dict(json.loads(Path("configs", f"{name}.json").read_text())).full_dict()
            base = "baseline" if cfg["train"]["optimizer"] == "sgd" else "r1_adamw"
            loss = 3 + (math.log2(cfg["train"]["lr"]) - math.log2(optimum[base])) ** 2
            Path("metrics/eval").mkdir(parents=True, exist_ok=True)
            Path("metrics/eval", f"{name}.json").write_text(json.dumps({"val_loss": loss, "val_bpb": loss}))

    tok, calls = fake_tokenized(tmp_path / "tok"), []
    sweep_on(params, factors=[0.5, 2], variants=["baseline", "r1_adamw"], extend={"cap": 8})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lr_extend, "pipeline", pipeline)
    assert lr_extend.main([]) == 0
    assert load_params()["lr_sweep"]["extra"] == {"baseline": [4.0, 8.0], "r1_adamw": [4.0, 8.0]}
    assert len(calls) == 3  # the sweep, then 4x, then 8x (baseline's next, 16x, passes the cap; r1_adamw's best is 4x)


def test_extend_with_the_sweep_off_says_how_to_switch_it_on(params, tmp_path, monkeypatch):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(lr_extend.MainrunError, match=r"studies.lr_sweep is off; switch it on"):
        lr_extend.main([])


def test_a_sweep_section_of_factors_alone_takes_every_default(params):
    """extend, variants, parts and extra may be left out: the cap, the headline chain, no part run, no extra factor;
    a params dict without the switch has the sweep off."""
    from mainrun import lr_sweep
    from mainrun.params import LR_CAP
    params["studies"].update(attribution=True, lr_sweep=True)
    params["lr_sweep"] = {"factors": [2]}
    check_params(params)
    assert lr_sweep.cap(params) == LR_CAP and lr_sweep.swept_variants(params) == CHAIN
    assert {(r["variant"], r["lr_factor"]) for r in rows(params).values()} == {(v, 2.0) for v in CHAIN}
    assert not lr_sweep.on({"studies": {}})


def test_a_stray_extra_names_the_runs_the_sweep_trains(params):
    sweep_on(params, variants=["baseline", "r1_adamw"], extra={"r2_vocab": [8]})
    with pytest.raises(ConfigError, match=r"trains; name one of baseline, r1_adamw$"):
        runs_on(params)
    params["lr_sweep"]["variants"] = []
    with pytest.raises(ConfigError, match=r"trains; name one of none \(the sweep trains no run\)$"):
        runs_on(params)


def test_two_sweep_runs_with_the_same_settings_train_once(params):
    """r1_fast is r1_adamw at lr x 2: r1_fast at x 2 is r1_adamw at x 4, whichever the sweep made first."""
    params["variants"]["r1_fast"] = {"from": "r1_adamw", "lr": 2.0e-3}
    index = rows(sweep_on(params, variants=["r1_adamw", "r1_fast"], factors=[2, 4]))
    assert index["r1_adamw-lr4"]["enabled"] and index["r1_fast-lr2"]["same_as"] == "r1_adamw-lr4"
    assert not index["r1_fast-lr2"]["enabled"] and index["r1_fast-lr4"]["enabled"]
