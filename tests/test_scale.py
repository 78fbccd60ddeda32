"""The scale study's runs: one config per (run, size), the default runs untouched by the switch, strict params."""
import json
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, committed_params
from mainrun.attribution import headline_chain
from mainrun.config import ConfigError, RunConfig
from mainrun.configure import configure
from mainrun.params import check_params
from mainrun.runner.repo import run_names
from test_configure import config_bytes, fake_tokenized

CHAIN = headline_chain(committed_params())  # the committed chain: a new step joins it


def test_switching_the_study_on_changes_no_default_run(params, tmp_path):
    off = config_bytes(params, tmp_path, "off")
    params["studies"]["scale"] = True
    on = config_bytes(params, tmp_path, "on")
    scale = {n for n in on if n.startswith(("small-", "large-"))}
    assert {n for n in on if on[n] != off.get(n)} == scale | {"runs", "new_runs"}
    assert len(scale) == 2 * (len(CHAIN) + 4)  # the chain and the 4 noise repeats, at both sizes
    assert not {n for n in off if n.startswith(("small-", "large-"))}  # off: no run, no stage


def test_a_scale_run_is_its_variant_at_that_size(params, tmp_path):
    params["studies"]["scale"] = True
    configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)

    def read(name):  # defaults filled in: a config file holds the settings away from them only
        spec = json.loads((tmp_path / "cfg" / f"{name}.json").read_text())
        return {**spec, **RunConfig.from_dict(spec).full_dict()}
    for run in ("r4_2_rope", "r1_adamw-seed1339"):
        ref, big = read(run), read(f"large-{run}")
        assert big["enabled"] and big["study"] == "scale"
        assert {k: big["model"][k] for k in ("n_layer", "n_head", "d_model")} == params["scales"]["sizes"]["large"]
        assert {**big["model"], **{k: ref["model"][k] for k in ("n_layer", "n_head", "d_model")}} == ref["model"]
        assert big["train"] == ref["train"] and big["data"] == ref["data"]
    index = {r["name"]: r for r in json.loads((tmp_path / "cfg" / "runs.json").read_text())["runs"]}
    assert index["small-r4_2_rope"] | {"enabled": True} == {
        "name": "small-r4_2_rope", "parent": "small-r4_1_rmsnorm", "group": None, "repeat_of": None, "study": "scale",
        "enabled": True, "size": "small", "variant": "r4_2_rope", "same_as": None}
    assert index["small-r1_adamw-seed1338"]["repeat_of"] == "small-r1_adamw"


def test_a_size_that_is_the_default_model_is_the_default_run(params, tmp_path):
    params["studies"]["scale"] = True
    params["scales"]["sizes"]["mine"] = {k: params["model"][k] for k in ("n_layer", "n_head", "d_model")}
    trained = configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    assert "mine-r2_vocab" not in trained and "small-r2_vocab" in trained
    index = {r["name"]: r for r in json.loads((tmp_path / "cfg" / "runs.json").read_text())["runs"]}
    assert index["mine-r4_4_parallel-seed1338"]["same_as"] == "r4_4_parallel-seed1338"


def dvc_stages(params, tmp_path) -> list[str]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(["dvc", "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    return subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=tmp_path, check=True, capture_output=True,
                          text=True).stdout.split()


def test_every_train_stage_reads_a_config_that_configure_writes(params, tmp_path):
    """mainrun.parallel finds a stage's config by its name (run_names); the scale stages' names must map too."""
    written = set(configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False))
    trains = [s for s in dvc_stages(params, tmp_path) if s.startswith("train")]
    assert not {s for s in trains if s.startswith("train@small-")}  # the study is off: no stage
    params["studies"]["scale"] = True
    (tmp_path / "on").mkdir()
    written = set(configure(params, tmp_path / "tok", tmp_path / "cfg", tmp_path / "on" / "runs.yaml", cuda=False))
    trains = [s for s in dvc_stages(params, tmp_path / "on") if s.startswith("train")]
    assert {"train@small-r2_vocab", "train@large-r4_4_parallel-seed1339"} <= set(trains)
    assert {run_names(s) for s in trains} == written


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["scales"]["sizes"].update({"x-l": {"n_layer": 1, "n_head": 1, "d_model": 8}}),
     r"scales.sizes: the size name 'x-l' may hold only letters, digits and '_'.*e.g. 'x_l'"),
    (lambda p: p["scales"]["sizes"]["small"].pop("n_head"), r"scales.sizes.small needs n_head"),
    (lambda p: p["scales"]["sizes"]["small"].update(d_model=100, n_head=3), "scales.sizes.small: d_model 100 is not"),
    (lambda p: p["scales"]["sizes"]["small"].update(width=3), r"unknown key scales.sizes.small.width"),
    (lambda p: p["scales"].update(variants=["baseline", "vocab_8k"]), "'vocab_8k' belongs to the opt-in study 'vocab_"),
    (lambda p: p["scales"].update(variants="all"), r"scales.variants must be a list of variants or `chain` \(the headline chain\), got 'all'"),
    (lambda p: p["scales"].update(variants=["baseline", "gone"], ) or p["studies"].update(scale=True),
     r"scales.variants: 'gone' is not a variant"),
    (lambda p: p["scales"].update(variants=["baseline"]) or p["studies"].update(scale=True),
     r"noise.variants: 'r1_adamw' is not in scales.variants"),
    (lambda p: p["variants"].update({"small-r1_adamw": {}}), r"variant name 'small-r1_adamw' is also the name of"),
    (lambda p: p["studies"].pop("scale"), r"study 'scale' is used in params.yaml but has no switch"),
])
def test_bad_scales_name_the_key(params, mutate, message):
    mutate(params)
    with pytest.raises(ConfigError, match=message):
        check_params(params)


def test_while_off_a_stale_variant_name_makes_nothing(params, tmp_path):
    params["scales"]["variants"] = ["baseline", "gone"]
    check_params(params)
    trained = configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    assert not [n for n in trained if "gone" in n]


def test_a_params_dict_without_the_switch_has_the_study_off():
    from mainrun import scale
    assert not scale.on({"studies": {}}) and scale.on({"studies": {"scale": True}})


def test_a_sized_run_whose_parent_is_not_sized_has_no_parent(params, tmp_path):
    """scales.variants a part of the chain: the first one's parent has no run at that size, so it names none."""
    params["studies"]["scale"] = True
    params["scales"]["variants"] = ["r2_vocab", "r3_block256"]
    params["noise"]["variants"] = []
    configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    index = {r["name"]: r for r in json.loads((tmp_path / "cfg" / "runs.json").read_text())["runs"]}
    assert index["small-r2_vocab"]["parent"] is None and index["small-r3_block256"]["parent"] == "small-r2_vocab"
