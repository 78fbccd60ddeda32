import pytest

from mainrun.config import ConfigError, GPTConfig, resolve_variants, split_settings
from mainrun.params import check_params

ARCH = {"norm": "rmsnorm", "pos": "rope", "attn": "sdpa", "attn_bias": False, "emb_scale": True,
        "mlp": "swiglu", "mlp_bias": False, "parallel_residual": True}


def test_baseline_is_mainrun_defaults(params):
    model, train = split_settings(resolve_variants(params)["baseline"])
    assert model == GPTConfig()  # every field at Mainrun's value
    assert (train.optimizer, train.lr, train.weight_decay, train.schedule) == ("sgd", 6e-3, 0.0, "cosine")
    assert (train.vocab_size_requested, train.batch_size, train.epochs, train.evals_per_epoch, train.seed) == (16000, 64, 7, 3, 1337)


def test_headline_chain_is_cumulative(params):
    v = resolve_variants(params)
    assert v["r1_adamw"]["optimizer"] == "adamw" and v["r1_adamw"]["vocab_size"] == 16000
    assert v["r2_vocab"]["vocab_size"] == params["vocab_size"] == 32000
    assert v["r3_block256"]["block_size"] == 256 and v["r3_block256"]["lr"] == 1e-3
    full = v["r4_4_parallel"]
    assert {k: full[k] for k in ARCH} == ARCH
    assert (full["optimizer"], full["vocab_size"], full["block_size"]) == ("adamw", 32000, 256)
    assert v["r4_2_rope"]["mlp"] == "gelu" and not v["r4_3_swiglu"]["parallel_residual"]


def test_figure_4b_group_builds_on_rec1_alone(params):
    last = resolve_variants(params)["adamw_parallel"]
    assert {k: last[k] for k in ARCH} == ARCH
    assert (last["optimizer"], last["lr"], last["vocab_size"], last["block_size"]) == ("adamw", 1e-3, 16000, 128)


def test_figure_4a_group_builds_on_sgd_baseline(params):
    last = resolve_variants(params)["sgd_parallel"]
    assert {k: last[k] for k in ARCH} == ARCH
    assert (last["optimizer"], last["lr"], last["vocab_size"], last["block_size"]) == ("sgd", 6e-3, 16000, 128)


def test_vocab_override_reaches_only_later_variants(params):
    params["vocab_size"] = 16000
    v = resolve_variants(params)
    assert v["r2_vocab"]["vocab_size"] == 16000 and v["baseline"]["vocab_size"] == 16000


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["variants"]["r1_adamw"].update(optimiser="adamw"), "unknown key variants.r1_adamw.optimiser"),
    (lambda p: p["variants"]["adamw_rmsnorm"].update({"from": "nope"}), "'nope' is not a variant declared above"),
    (lambda p: p["variants"]["vocab_8k"].update(study="nope"), "study 'nope' is used in params.yaml but has no switch"),
    (lambda p: p.update(vocab_size=24000), "not in vocab_sizes"),
    (lambda p: p["train"].update(epoch=3), "unknown key train.epoch"),
    (lambda p: p.update(extra=1), "unknown top-level key 'extra'"),
    (lambda p: p.pop("noise"), "missing key 'noise'"),
])
def test_bad_params_name_the_key(params, mutate, message):
    mutate(params)
    with pytest.raises(ConfigError, match=message):
        check_params(params)
        resolve_variants(params)


@pytest.mark.parametrize("kwargs, message", [
    ({"norm": "batchnorm"}, "norm must be one of"),
    ({"d_model": 100, "n_head": 8}, "not divisible"),
    ({"pos": "rope", "d_model": 24, "n_head": 8}, "even head size"),
    ({"n_layer": "6"}, "n_layer must be of type int, got '6'"),
    ({"parallel_residual": 1}, "parallel_residual must be of type bool"),
])
def test_impossible_model_configs_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**kwargs)


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["variants"]["r1_adamw"].update(lr="1e-3"),
     r"variants.r1_adamw.lr must be of type float, got '1e-3' \(quoted, so it is text"),
    (lambda p: p["variants"]["r1_adamw"].update(epochs=7.5), "variants.r1_adamw.epochs must be of type int"),
    (lambda p: p["model"].update(dropout="0.1"), r"model.dropout must be of type float, got '0.1' \(quoted"),
    (lambda p: p["model"].update(dropout="high"), r"model.dropout must be of type float, got 'high'$"),
    (lambda p: p["train"].update(epochs="7"), "train.epochs must be of type int"),
    (lambda p: p["data"].update(num_titles="100"), "data.num_titles must be of type int"),
    (lambda p: p["data"].update(tokenizer_corpus="val"), "data.tokenizer_corpus must be 'train\\+val'"),
    (lambda p: p["variants"].update(r1_adamw="adamw"), "variants.r1_adamw must be a mapping"),
    (lambda p: p["noise"].update(seeds=1338), "noise.seeds must be of type list"),
    (lambda p: p["noise"].update(seeds=["a"]), r"noise.seeds\[0\] must be of type int"),
    (lambda p: p["studies"].update(vocab_swep=True), "unknown key studies.vocab_swep"),
    (lambda p: p["studies"].update(vocab_sweep="false"), "studies.vocab_sweep must be of type bool"),
    (lambda p: p["studies"].pop("vocab_sweep"), "add studies.vocab_sweep: false"),
    (lambda p: p["alt_tokenizers"]["unigram"].pop("study"), "alt_tokenizers.unigram needs `study:`"),
])
def test_wrong_types_and_values_name_the_key(params, mutate, message):
    mutate(params)
    with pytest.raises(ConfigError, match=message):
        check_params(params)


def test_range_errors_read_in_full():
    from mainrun.config import TrainConfig
    for make, message in [
        (lambda: GPTConfig(n_layer=0), "model.n_layer must be positive, got 0"),
        (lambda: GPTConfig(pos="rope", d_model=24, n_head=8), "rope needs an even head size, got d_model/n_head = 3"),
        (lambda: GPTConfig(dropout=1), r"dropout must be in \[0, 1\), got 1"),
        (lambda: GPTConfig(norm="batchnorm"), "norm must be one of layernorm, rmsnorm; got 'batchnorm'"),
        (lambda: TrainConfig(batch_size=0), "train.batch_size must be positive, got 0"),
        (lambda: TrainConfig(lr=0), "lr must be positive, got 0"),
        (lambda: TrainConfig(weight_decay=-0.1), "weight_decay must not be negative, got -0.1"),
        (lambda: TrainConfig(seed=-1), r"seed must be between 0 and 2\*\*32 - 1, got -1"),
        (lambda: TrainConfig(bf16="yes"), "bf16 must be of type bool or one of auto, got 'yes'"),
    ]:
        with pytest.raises(ConfigError, match=f"^{message}$"):
            make()


def test_the_smallest_legal_values_pass():
    from mainrun.config import TrainConfig
    GPTConfig(vocab_size=1, block_size=1, n_layer=1, n_head=1, d_model=1, dropout=0)
    GPTConfig(d_model=24, n_head=8)  # an odd head size is fine without rope
    GPTConfig(pos="rope", d_model=32, n_head=2)
    TrainConfig(batch_size=1, epochs=1, evals_per_epoch=1, lr=1e-9, weight_decay=0)


def test_exec_settings_must_be_positive():
    from mainrun.config import ExecConfig, exec_config
    for bad in ({"checkpoint_every_s": 0}, {"log_every": 0}):
        with pytest.raises(ConfigError, match="^train.checkpoint_every_s and train.log_every must be positive$"):
            ExecConfig(**bad)
    ExecConfig(checkpoint_every_s=0.5, log_every=1)
    with pytest.raises(ConfigError, match="^log_every must be of type int, got 2.5$"):
        ExecConfig(log_every=2.5)
    assert exec_config({"epochs": 3, "log_every": 10}) == ExecConfig(log_every=10)  # the train keys stay out


def test_auto_settings_resolve_per_device():
    from mainrun.config import TrainConfig
    assert TrainConfig().resolved(False) == TrainConfig(device="cpu", bf16=False, tf32=False, fused_adamw=False)
    assert TrainConfig().resolved(True) == TrainConfig(device="cuda", bf16=True, tf32=True, fused_adamw=True)
    # what is set stays set: the device, and a switch forced either way
    assert TrainConfig(device="cpu", bf16=True).resolved(True) == TrainConfig(device="cpu", bf16=True, tf32=False,
                                                                              fused_adamw=False)
    assert TrainConfig(device="cuda", tf32=False).resolved(False) == TrainConfig(device="cuda", bf16=True,
                                                                                 tf32=False, fused_adamw=True)


def test_run_config_files_round_trip():
    import hashlib
    import json
    from dataclasses import asdict
    from mainrun.config import RunConfig, TrainConfig
    run = RunConfig("r", GPTConfig(n_layer=2), TrainConfig(lr=1e-3), {"dir": "d"})
    assert run.to_dict() == {"name": "r", "model": {"n_layer": 2}, "train": {"lr": 1e-3}, "data": {"dir": "d"}}
    assert run.full_dict() == {"name": "r", "model": asdict(run.model), "train": asdict(run.train),
                               "data": {"dir": "d"}}
    assert RunConfig.from_dict(run.to_dict()) == RunConfig.from_dict(run.full_dict()) == run
    assert RunConfig.from_dict({"name": "r", "model": {}, "train": {}}).data == {}
    # the checkpoint key: sha256 of the sorted JSON of every setting, 16 hex digits
    full = json.dumps(run.full_dict(), sort_keys=True).encode()
    assert run.digest() == hashlib.sha256(full).hexdigest()[:16]
    assert RunConfig("r", GPTConfig(), TrainConfig(lr=1e-3), {"dir": "d"}).digest() != run.digest()


def test_a_variant_is_on_when_its_study_is(params):
    from mainrun.config import is_enabled
    assert is_enabled({"study": None}, params) and is_enabled({}, params)
    assert not is_enabled({"study": "vocab_sweep"}, params)
    params["studies"]["vocab_sweep"] = True
    assert is_enabled({"study": "vocab_sweep"}, params)


def test_base_takes_the_top_level_seed_and_the_train_sizes_only(params):
    from mainrun.config import base_delta
    params["seed"] = 7
    params["train"].update(epochs=3, log_every=10)
    base = base_delta(params)
    assert (base["seed"], base["epochs"]) == (7, 3) and "log_every" not in base


def test_study_is_inherited_down_a_chain(params):
    params["variants"]["vocab_8k_rope"] = {"from": "vocab_8k", "pos": "rope"}  # no study: of its own
    params["variants"]["vocab_8k_own"] = {"from": "vocab_8k", "study": "failed_attempts"}
    v = resolve_variants(params)
    assert v["vocab_8k"]["study"] == v["vocab_8k_rope"]["study"] == "vocab_sweep"
    assert v["vocab_8k_own"]["study"] == "failed_attempts" and v["r1_adamw"]["study"] is None
    assert list(v["vocab_8k_rope"])[-1] == "study" and "from" not in v["vocab_8k"]


def test_resolve_names_an_unknown_key_and_study(params):
    from mainrun.config import DELTA_KEYS
    params["variants"]["r1_adamw"]["optimiser"] = "adamw"
    with pytest.raises(ConfigError, match=f"^variant 'r1_adamw': unknown key 'optimiser'; allowed: "
                                          f"{', '.join(sorted(DELTA_KEYS))}$"):
        resolve_variants(params)
    del params["variants"]["r1_adamw"]["optimiser"]
    params["variants"]["vocab_8k"]["study"] = "nope"
    with pytest.raises(ConfigError, match=r"^variant 'vocab_8k': study 'nope' is not a key of studies: "
                                          r"\['vocab_sweep', 'failed_attempts', 'scale', 'attribution', 'lr_sweep'\]$"):
        resolve_variants(params)


def test_check_value_on_unions():
    from mainrun.config import check_value
    check_value("x", float | str, 1)  # an int stands for a float in a union too
    with pytest.raises(ConfigError, match="^x must be of type int or of type str, got True$"):
        check_value("x", int | str, True)  # a bool never for a number
    with pytest.raises(ConfigError, match="^x must be of type list or of type str, got 5$"):
        check_value("x", list | str, 5)
