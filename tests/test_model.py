import math
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from mainrun.config import GPTConfig
from mainrun.model import GPT, GeluMLP, SwiGLU, apply_rope, rope_tables

FULL_STACK = dict(norm="rmsnorm", pos="rope", attn="sdpa", attn_bias=False, emb_scale=True, mlp="swiglu",
                  mlp_bias=False, parallel_residual=True)
TINY = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, d_model=16, dropout=0.0)


def test_mainrun_baseline_parameter_count():
    assert GPT(GPTConfig(vocab_size=16000)).num_params() == 27_172_864


def test_full_stack_parameter_count():
    assert GPT(GPTConfig(vocab_size=32000, block_size=256, **FULL_STACK)).num_params() == 35_262_464


def test_head_is_tied_and_init_matches_mainrun():
    torch.manual_seed(0)
    m = GPT(TINY)
    assert m.head.weight is m.token_emb.weight
    assert torch.count_nonzero(m.pos_emb) == 0
    assert all(torch.count_nonzero(b.attn.qkv.bias) == 0 for b in m.blocks)
    big = GPT(GPTConfig(vocab_size=2000, d_model=256, n_head=4, n_layer=1))
    assert abs(big.blocks[0].attn.qkv.weight.std().item() - 0.02) < 1e-3


def test_rmsnorm_replaces_layernorm_in_blocks_only():
    m = GPT(replace(TINY, norm="rmsnorm"))
    assert all(isinstance(b.ln1, torch.nn.RMSNorm) and isinstance(b.ln2, torch.nn.RMSNorm) for b in m.blocks)
    assert isinstance(m.ln_f, torch.nn.LayerNorm)
    assert not any(isinstance(x, torch.nn.LayerNorm) for b in m.blocks for x in b.modules())


def test_rope_drops_learned_positions_and_attention_biases():
    m = GPT(replace(TINY, pos="rope", attn="sdpa", attn_bias=False, emb_scale=True))
    names = dict(m.named_parameters())
    assert "pos_emb" not in names and not any(n.endswith("qkv.bias") or n.endswith("proj.bias") for n in names)
    assert m.emb_scale == pytest.approx(16 ** -0.5)
    assert "pos_emb" in dict(GPT(TINY).named_parameters())


def test_block_rmsnorm_is_torchs_with_default_eps():
    norm = GPT(replace(TINY, norm="rmsnorm")).blocks[0].ln1
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
    x = 1e-3 * torch.randn(4, 16)  # small enough that eps shows: 1e-6 or 1e-5 would fail this
    eps = torch.finfo(torch.float32).eps
    expected = norm.weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    torch.testing.assert_close(norm(x), expected, rtol=1e-6, atol=0)
    assert norm.eps is None and dict(norm.named_parameters()).keys() == {"weight"}


def test_rope_rotates_half_by_hand():
    # head_dim 4: channel 0 turns with channel 2 at angle p, channel 1 with channel 3 at angle p / 100
    cos, sin = rope_tables(4, 3)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(1, 1, 3, 4)
    expected = [[math.cos(a) - 3 * math.sin(a), 2 * math.cos(b) - 4 * math.sin(b),
                 math.sin(a) + 3 * math.cos(a), 2 * math.sin(b) + 4 * math.cos(b)]
                for a, b in ((p, p / 100) for p in range(3))]
    out = apply_rope(x, cos, sin)[0, 0]
    torch.testing.assert_close(out, torch.tensor(expected))
    assert out[0].tolist() == [1.0, 2.0, 3.0, 4.0]  # position 0 is not turned
    assert out[1].tolist() == pytest.approx([-1.9841106, 1.9599007, 2.4623779, 4.0197997], abs=1e-6)


def test_rope_rotation_is_relative():
    cos, sin = rope_tables(8, 16)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    def score(i, j):
        qi = apply_rope(q.expand(1, 1, 16, 8), cos, sin)[..., i, :]
        kj = apply_rope(k.expand(1, 1, 16, 8), cos, sin)[..., j, :]
        return (qi * kj).sum()
    torch.testing.assert_close(score(5, 2), score(13, 10))  # depends on i - j only


def test_swiglu_shape_and_no_biases():
    m = GPT(GPTConfig(vocab_size=100, d_model=512, n_layer=1, mlp="swiglu", mlp_bias=False))
    mlp = m.blocks[0].mlp
    assert isinstance(mlp, SwiGLU) and mlp.gate.out_features == int(2.6667 * 512) == 1365
    assert all(lin.bias is None for lin in (mlp.gate, mlp.up, mlp.down))
    assert isinstance(GPT(TINY).blocks[0].mlp, GeluMLP)


def test_sdpa_equals_manual_attention():
    torch.manual_seed(0)
    manual = GPT(TINY).eval()
    fused = GPT(replace(TINY, attn="sdpa")).eval()
    fused.load_state_dict(manual.state_dict())
    idx = torch.randint(0, 50, (3, 8))
    torch.testing.assert_close(fused(idx)[0], manual(idx)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("parallel", [False, True])
def test_residual_algebra(parallel):
    block = GPT(replace(TINY, parallel_residual=parallel)).blocks[0].eval()
    x = torch.randn(2, 8, 16)
    if parallel:
        expected = x + block.attn(block.ln1(x)) + block.mlp(block.ln2(x))
    else:
        h = x + block.attn(block.ln1(x))
        expected = h + block.mlp(block.ln2(h))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("flags", [{}, {"norm": "rmsnorm"}, {"pos": "rope"}, {"mlp": "swiglu"},
                                   {"parallel_residual": True}, FULL_STACK])
def test_every_flag_combination_runs_causally(flags):
    torch.manual_seed(0)
    m = GPT(replace(TINY, **flags)).eval()
    idx = torch.randint(0, 50, (2, 8))
    logits, loss = m(idx, idx)
    assert logits.shape == (2, 8, 50) and torch.isfinite(loss)
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 50  # the future must not leak into earlier positions
    torch.testing.assert_close(m(changed)[0][:, :-1], logits[:, :-1])


@pytest.mark.parametrize("training", [True, False])
def test_full_stack_block_is_the_writeups_arithmetic(training):
    """The write-up's parallel block op for op, so the CPU reproduces its numbers to the last bit: rotate-half
    RoPE, SDPA called on (B*nh, T, hs) with its own dropout (a 4-D call takes another CPU kernel in eval), the
    residual dropout, then the SwiGLU branch and its dropout, and both branches built before x + attn + mlp."""
    B, T, C, nh, hs, p = 3, 8, 16, 2, 8, 0.1
    torch.manual_seed(0)
    block = GPT(replace(TINY, dropout=p, **FULL_STACK)).blocks[0].train(training)
    attn, mlp, p = block.attn, block.mlp, p if training else 0.0

    def rotate_half(t):
        cos, sin, t1, t2 = attn.rope_cos[:T], attn.rope_sin[:T], t[..., :hs // 2], t[..., hs // 2:]
        return torch.cat((t1 * cos - t2 * sin, t1 * sin + t2 * cos), dim=-1)

    def reference(x):
        qkv = attn.qkv(F.rms_norm(x, (C,), block.ln1.weight)).view(B, T, 3, nh, hs)
        q, k, v = (qkv[:, :, i].transpose(1, 2).reshape(B * nh, T, hs) for i in range(3))
        y = F.scaled_dot_product_attention(rotate_half(q), rotate_half(k), v, dropout_p=p, is_causal=True)
        a = F.dropout(attn.proj(y.view(B, nh, T, hs).transpose(1, 2).reshape(B, T, C)), p)
        h = F.rms_norm(x, (C,), block.ln2.weight)
        m = F.dropout(mlp.down(F.silu(mlp.gate(h)) * mlp.up(h)), p)
        return x + a + m

    x, grad_out = torch.randn(B, T, C, requires_grad=True), torch.randn(B, T, C)
    results = []
    for fn in (block, reference):
        torch.manual_seed(1)
        out = fn(x)
        results.append((out, *torch.autograd.grad(out, [x, *block.parameters()], grad_out)))
    for ours, theirs in zip(*results):
        assert torch.equal(ours, theirs)


class OnCuda(torch.Tensor):
    """A CPU tensor that says it is on CUDA: the attention then makes its 4-D SDPA call (CUDA's), here on the CPU."""

    @property
    def is_cuda(self):
        return True


def test_sdpa_cuda_call_is_causal_attention_with_its_dropout():
    torch.manual_seed(0)
    manual = GPT(replace(TINY, dropout=0.5)).blocks[0].attn.eval()
    fused = GPT(replace(TINY, attn="sdpa", dropout=0.5)).blocks[0].attn.eval()
    fused.load_state_dict(manual.state_dict())
    x = torch.randn(3, 8, 16)
    on_cuda = fused(x.as_subclass(OnCuda)).as_subclass(torch.Tensor)
    torch.testing.assert_close(on_cuda, manual(x), rtol=1e-5, atol=1e-5)
    fused.train().resid_drop = torch.nn.Identity()  # the attention's own dropout alone
    assert not torch.allclose(fused(x.as_subclass(OnCuda)).as_subclass(torch.Tensor), on_cuda)


def test_swiglu_biases_follow_mlp_bias():
    mlp = GPT(replace(TINY, mlp="swiglu", mlp_bias=True)).blocks[0].mlp
    assert all(lin.bias is not None for lin in (mlp.gate, mlp.up, mlp.down))


def test_too_long_a_sequence_is_refused_with_its_length():
    with pytest.raises(ValueError, match=r"^sequence length 9 exceeds block_size 8$"):
        GPT(TINY)(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("emb_scale", [False, True])
def test_input_is_scaled_token_embedding_plus_learned_position(emb_scale):
    m = GPT(replace(TINY, emb_scale=emb_scale)).eval()
    with torch.no_grad():
        m.pos_emb.normal_()  # zero at init: give the positions a value to add
    seen = []
    m.drop.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    idx = torch.randint(0, 50, (2, 5))  # shorter than block_size: the first 5 positions
    m(idx)
    scale = 16 ** -0.5 if emb_scale else 1.0
    torch.testing.assert_close(seen[0], m.token_emb.weight[idx] * scale + m.pos_emb[:, :5])


def test_gelu_mlp_is_linear_gelu_linear_dropout():
    torch.manual_seed(0)
    mlp = GeluMLP(replace(TINY, dropout=0.5))
    fc, out = (mod for mod in mlp.modules() if isinstance(mod, torch.nn.Linear))
    x = torch.randn(2, 8, 16)
    for training in (False, True):
        mlp.train(training)
        torch.manual_seed(1)
        ours = mlp(x)
        torch.manual_seed(1)
        assert torch.equal(ours, F.dropout(out(F.gelu(fc(x))), 0.5, training))
    lins = [mod for mod in GeluMLP(replace(TINY, mlp_bias=False)).modules() if isinstance(mod, torch.nn.Linear)]
    assert len(lins) == 2 and all(lin.bias is None for lin in lins)


def test_every_linear_and_embedding_weight_is_normal_0_002_and_every_bias_zero():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=2000, d_model=256, n_head=4, n_layer=1))
    for name, p in m.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif p.dim() == 2:  # token_emb (= head), qkv, proj, the MLP's two
            assert abs(p.mean().item()) < 1e-3 and abs(p.std().item() - 0.02) < 1e-3, name


@pytest.mark.parametrize("flags", [{}, FULL_STACK])
def test_saved_state_holds_the_parameters_only(flags):
    """The causal mask and the RoPE tables are rebuilt from the config, never saved with the weights."""
    m = GPT(replace(TINY, **flags))
    assert set(m.state_dict()) == {name for name, _ in m.named_parameters(remove_duplicate=False)}
