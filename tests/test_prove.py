"""mainrun.prove: a run's identity holds only what it sets; a code edit that computes the same is proved, not re-run.
The end-to-end check (a new flag in a tiny DVC repo, nothing re-trained) is tests/test_extending.py's."""
import dataclasses
import json
import re
import shutil

import pytest
import torch

from mainrun.config import GPTConfig, RunConfig, TrainConfig
from mainrun.prove import PROVABLE, prove, refusal, replay, setting_changes
from mainrun.train import FINGERPRINT_STEPS, train


def test_a_new_key_at_its_default_changes_no_runs_identity(tiny_run):
    """configs/<run>.json holds the settings away from the defaults only: a field added with a default (QK-norm,
    off) leaves every existing run's file, and so its DVC stage, as it was; the full form still has every value."""
    Extended = dataclasses.make_dataclass("Extended", [("qk_norm", bool, False)], bases=(GPTConfig,), frozen=True)
    extended = dataclasses.replace(tiny_run, model=Extended(**dataclasses.asdict(tiny_run.model)))
    assert extended.to_dict() == tiny_run.to_dict()
    assert "qk_norm" not in tiny_run.to_dict()["model"] and "dropout" not in tiny_run.to_dict()["model"]
    assert extended.full_dict()["model"]["qk_norm"] is False and tiny_run.full_dict()["model"]["dropout"] == 0.1
    assert RunConfig.from_dict(tiny_run.to_dict()) == tiny_run  # the defaults filled back in
    assert tiny_run.digest() != extended.digest()  # a checkpoint is keyed on every value: never resumed across it


RECORDED = {"name": "r", "model": dataclasses.asdict(GPTConfig()), "data": {"dir": "d"},
            "train": {**dataclasses.asdict(TrainConfig()), "device": "cpu", "bf16": False, "tf32": False,
                      "fused_adamw": False}}
RUN = {"versions": {"torch": "2.13.0"}, "fingerprint": {"losses": [5.5, 5.4], "code": {f: "a" for f in
                                                                                         ("mainrun/model.py",
                                                                                          "mainrun/config.py",
                                                                                          "mainrun/train.py")}}}


def now(**edits) -> dict:
    out = json.loads(json.dumps(RECORDED))
    for key, value in edits.items():
        section, _, leaf = key.partition("__")
        out[section][leaf] = value
    return out


@pytest.mark.parametrize("edit, code, why", [
    ({}, {"mainrun/model.py": "b"}, None),  # a model edit: replayed
    ({"model__qk_norm": False}, {"mainrun/model.py": "b", "mainrun/config.py": "b"}, None),  # a new model key
    ({}, {"mainrun/train.py": "b"}, r"mainrun/train.py changed: only mainrun/model.py and mainrun/config.py"),
    ({}, {"mainrun/schedule.py": "b"}, "mainrun/schedule.py changed"),  # a new module the loop imports
    ({"model__dropout": 0.2}, {"mainrun/config.py": "b"}, r"settings moved \(model.dropout 0.1 -> 0.2\)"),  # a default
    ({"train__label_smoothing": 0.0}, {"mainrun/config.py": "b"}, r"train.label_smoothing 'absent' -> 0.0"),
    ({"train__device": "cuda"}, {}, r"train.device 'cpu' -> 'cuda'"),  # the config asks for CUDA now
])
def test_what_can_be_proved(edit, code, why):
    code_now = {**RUN["fingerprint"]["code"], **code}
    got = refusal(RUN, RECORDED, now(**edit), code_now, "2.13.0")
    assert got is None if why is None else got is not None and re.search(why, got), got


@pytest.mark.parametrize("recorded, run, why", [
    (now(train__device="cuda"), RUN, "it trained on cuda: not bit-exact there"),
    (now(train__bf16=True), RUN, "it trained on cpu in bf16: not bit-exact"),
    (now(train__compile=True), RUN, "compiled"),
    (RECORDED, {**RUN, "fingerprint": None}, "it records no fingerprint"),
    (RECORDED, {**RUN, "fingerprint": {**RUN["fingerprint"], "losses": [None, 5.4]}}, "no fingerprint"),
    (RECORDED, {**RUN, "versions": {"torch": "2.12.0"}}, "under torch 2.12.0, this is 2.13.0"),
])
def test_where_bit_exactness_does_not_hold_it_refuses(recorded, run, why):
    assert why in refusal(run, recorded, recorded, RUN["fingerprint"]["code"], "2.13.0")


def test_setting_changes_name_new_model_keys_apart():
    moved, new = setting_changes(RECORDED, now(model__qk_norm=False, model__norm="rmsnorm"))
    assert moved == ["model.norm 'layernorm' -> 'rmsnorm'"] and new == ["model.qk_norm"]
    assert set(PROVABLE) == {"mainrun/model.py", "mainrun/config.py"}  # docs/extending.md names these two


@pytest.fixture(scope="module")
def trained(tiny_run, tmp_path_factory):
    d = tmp_path_factory.mktemp("proved")
    summary = train(tiny_run, d / "out", d / "live", d / "ckpt", progress=False, code={"mainrun/model.py": "x"})
    return summary, d / "out" / "model.safetensors"


def test_a_run_records_its_first_losses_and_the_replay_matches_them_bit_for_bit(tiny_run, trained):
    run, weights = trained
    assert len(run["fingerprint"]["losses"]) == FINGERPRINT_STEPS and run["fingerprint"]["code"]
    assert replay(tiny_run, run, weights) is None


def test_a_model_edit_that_computes_otherwise_is_caught(tiny_run, trained, monkeypatch):
    import mainrun.model as m
    run, weights = trained
    monkeypatch.setattr(m.GPT, "_init_weights", staticmethod(lambda mod: isinstance(mod, torch.nn.Linear)
                                                              and torch.nn.init.normal_(mod.weight, std=0.01)))
    assert "training loss at step 1 is" in replay(tiny_run, run, weights)  # another initialisation


def test_a_model_edit_seen_only_in_the_final_evaluation_is_caught(tiny_run, trained, monkeypatch):
    import mainrun.model as m
    run, weights = trained
    forward = m.GPT.forward
    monkeypatch.setattr(m.GPT, "forward", lambda self, idx, targets=None: (
        forward(self, idx, targets) if self.training else (lambda lg, loss: (lg * 1.001, loss))(
            *forward(self, idx, targets))))
    assert "evaluate to" in replay(tiny_run, run, weights)


def test_adopt_fingerprints_an_older_run_from_its_curve_then_proves_it(tiny_run, trained, tmp_path):
    """The one-time upgrade (docs/layout.md): a run that records no fingerprint is proved from its own curve."""
    run, weights = trained
    spec = dataclasses.replace(tiny_run, train=tiny_run.train.resolved(False)).to_dict()  # as configure writes it
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.json").write_text(json.dumps(spec))
    shutil.copytree(weights.parent, tmp_path / "models" / "tiny")
    shutil.copytree(weights.parent.parent / "live", tmp_path / "dvclive" / "tiny")
    older = {k: v for k, v in run.items() if k != "fingerprint"}
    (tmp_path / "models" / "tiny" / "run.json").write_text(json.dumps(older))
    code = run["fingerprint"]["code"]
    assert "records no fingerprint" in prove("tiny", tmp_path, code)
    assert prove("tiny", tmp_path, code, adopt=True) is None
    adopted = json.loads((tmp_path / "models" / "tiny" / "run.json").read_text())["fingerprint"]
    assert adopted == run["fingerprint"]  # the curve holds the exact losses
    (tmp_path / "configs" / "other.json").write_text(json.dumps({**spec, "name": "other"}))
    assert prove("other", tmp_path, code) == "it has not trained in this workspace"  # partly trained: left to repro
