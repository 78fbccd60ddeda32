"""A run's cost: FLOPs counted on the meta device against PyTorch's counter on a real training step, and by hand."""
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mainrun.config import GPTConfig, TrainConfig
from mainrun.cost import param_counts, step_flops
from mainrun.model import GPT
from mainrun.train import make_optimizer, make_scheduler, train, train_step

FULL_STACK = dict(norm="rmsnorm", pos="rope", emb_scale=True, attn="sdpa", attn_bias=False, mlp="swiglu",
                  mlp_bias=False, parallel_residual=True)


def real_step_flops(cfg: GPTConfig, batch_size: int) -> int:
    """PyTorch's counter around one real step of the training loop: forward, backward, clipping, AdamW."""
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", lr=1e-3))
    sched = make_scheduler(opt, TrainConfig(), 10, 10)
    x = torch.randint(0, cfg.vocab_size, (batch_size, cfg.block_size))
    with FlopCounterMode(display=False) as counter:
        train_step(model, opt, sched, x, x.roll(-1, 1), lambda: torch.autocast("cpu", enabled=False), 1.0)
    return counter.get_total_flops()


@pytest.mark.parametrize("kw", [{}, FULL_STACK, dict(FULL_STACK, parallel_residual=False, mlp="gelu")])
def test_counted_flops_equal_pytorchs_counter_on_a_real_training_step(kw):
    cfg = GPTConfig(vocab_size=300, block_size=16, n_layer=2, n_head=2, d_model=32, **kw)
    assert step_flops(cfg, 4) == real_step_flops(cfg, 4) > 0


def test_baseline_flops_by_hand():
    """Per token, forward: 2 FLOPs per weight of every matrix product (12·d² a layer, d·V for the head) and the two
    attention products, 2·T·d each per layer; backward twice the forward."""
    L, d, V, T, B = 2, 64, 500, 32, 16
    cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=4, d_model=d)
    forward = 2 * (12 * L * d * d + d * V) + 4 * L * T * d
    assert step_flops(cfg, B) == 3 * forward * B * T == 425_459_712


def test_parameters_without_embeddings():
    cfg = GPTConfig(vocab_size=500, block_size=32, n_layer=2, n_head=4, d_model=64)
    total, rest = param_counts(GPT(cfg))
    assert total == GPT(cfg).num_params()  # the model's own count
    assert total - rest == 500 * 64 + 32 * 64  # token (tied to the head) and position embeddings
    total, rest = param_counts(GPT(replace(cfg, pos="rope")))
    assert total - rest == 500 * 64


def test_run_json_records_the_cost(tiny_run, tmp_path):
    s = train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    B, T = tiny_run.train.batch_size, tiny_run.model.block_size
    assert s["tokens_seen"] == s["steps"] * B * T
    assert s["train_flops"] == s["steps"] * s["flops_per_step"] == s["steps"] * step_flops(tiny_run.model, B)
    assert s["flops_per_token"] == s["flops_per_step"] / (B * T)
    assert 0 < s["params_non_embedding"] < s["parameters"] and s["train_seconds"] > 0 and s["device"] == "cpu"
