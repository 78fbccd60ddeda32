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
