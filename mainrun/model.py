"""One GPT whose config fields select each of the write-up's architecture changes.

Defaults are Mainrun's model to the letter: learned absolute positions (zero-initialised), pre-LayerNorm blocks,
explicit softmax attention with biases, 4x GELU MLP, head tied to the token embedding, N(0, 0.02) init.
The full stack computes what the write-up's train.py computes, op for op (tests/test_model.py pins how).
"""
import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from .config import GPTConfig


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0):
    """cos and sin of shape (max_len, head_dim / 2): channel i turns with channel i + head_dim / 2."""
    half = head_dim // 2
    inv_freq = 1.0 / base ** (torch.arange(half).float() / half)
    angles = torch.outer(torch.arange(max_len).float(), inv_freq)  # (max_len, half)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """x: (B, nh, T, hs); rotate-half RoPE (GPT-NeoX/LLaMA layout), as the write-up does."""
    T, half = x.size(-2), x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]  # 2 x (B, nh, T, hs / 2)
    cos, sin = cos[:T], sin[:T]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.d_model // cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.attn_bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.attn_bias)
        self.attn_drop = nn.Dropout(cfg.dropout)
        self.resid_drop = nn.Dropout(cfg.dropout)
        self.use_sdpa = cfg.attn == "sdpa"
        self.use_rope = cfg.pos == "rope"
        if self.use_rope:
            cos, sin = rope_tables(self.head_dim, cfg.block_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if not self.use_sdpa:
            self.register_buffer("tril", torch.tril(torch.ones(cfg.block_size, cfg.block_size)), persistent=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        if self.use_rope:
            q, k = apply_rope(q, self.rope_cos, self.rope_sin), apply_rope(k, self.rope_cos, self.rope_sin)
        if self.use_sdpa:
            p = self.dropout if self.training else 0.0
            if x.is_cuda:  # 4-D keeps CUDA's fused flash / memory-efficient kernels
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
            else:  # (B*nh, T, hs) as the write-up calls it: a 4-D call takes another CPU kernel, other rounding
                y = F.scaled_dot_product_attention(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), is_causal=True,
                                                   dropout_p=p).view(B, self.n_head, T, self.head_dim)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))  # (B, nh, T, T)
            att = att.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            y = self.attn_drop(F.softmax(att, dim=-1)) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class GeluMLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.mlp_bias),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.mlp_bias),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x):
        return self.net(x)


class SwiGLU(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hidden = int(2.6667 * cfg.d_model)  # ~8/3 d_model keeps the 4x MLP's parameter count
        self.gate = nn.Linear(cfg.d_model, hidden, bias=cfg.mlp_bias)
        self.up = nn.Linear(cfg.d_model, hidden, bias=cfg.mlp_bias)
        self.down = nn.Linear(hidden, cfg.d_model, bias=cfg.mlp_bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))


NORMS = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm}  # RMSNorm eps: the dtype's epsilon
MLPS = {"gelu": GeluMLP, "swiglu": SwiGLU}


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = NORMS[cfg.norm](cfg.d_model)
        self.ln2 = NORMS[cfg.norm](cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLPS[cfg.mlp](cfg)
        self.parallel = cfg.parallel_residual

    def forward(self, x):
        if self.parallel:
            # x ──┬─ ln1 ─ attn ─┐
            #     ├─ ln2 ─ mlp ──┤
            #     └───────────── + ─> out
            a = self.attn(self.ln1(x))
            m = self.mlp(self.ln2(x))  # both branches before the sum, so autograd adds up x's gradient
            return x + a + m           # in the write-up's order (x + attn + mlp would not)
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.token_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.pos == "learned":
            self.pos_emb = nn.Parameter(torch.zeros(1, cfg.block_size, cfg.d_model))
        self.emb_scale = cfg.d_model ** -0.5 if cfg.emb_scale else 1.0
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)  # LayerNorm in every variant, as in the write-up
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        self.head.weight = self.token_emb.weight  # tied after init, as Mainrun does

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        x = self.token_emb(idx) * self.emb_scale  # (B, T, C)
        if self.cfg.pos == "learned":
            x = x + self.pos_emb[:, :T, :]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))  # (B, T, vocab)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
