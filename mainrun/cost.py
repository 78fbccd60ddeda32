"""What a run costs: training FLOPs counted by PyTorch's own counter, tokens seen, parameters.

The counter (torch.utils.flop_counter.FlopCounterMode) counts the matrix products of one training step, forward
and backward: every linear layer, attention's two products (q·kᵀ and weights·v, also inside
scaled_dot_product_attention) and the head. It counts no elementwise work (norms, activations, softmax, dropout,
RoPE's rotation, the loss) and not the optimiser; evaluation is not training and is not counted either. The step
runs on the meta device: shapes only, no numbers, no random draws, the same count on any machine.
"""
import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import GPTConfig
from .model import GPT

COST_KEYS = ("train_flops", "flops_per_step", "flops_per_token", "tokens_seen", "params_non_embedding")


def step_flops(model_cfg: GPTConfig, batch_size: int, device="meta") -> int:
    """FLOPs of one training step (forward and backward) on a (batch_size, block_size) batch."""
    with torch.device(device):
        model = GPT(model_cfg)
        x = torch.zeros(batch_size, model_cfg.block_size, dtype=torch.long)
    model.train()
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    return int(counter.get_total_flops())


def param_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, those outside the token and position embeddings); the head is tied to the token embedding."""
    total = model.num_params()
    embeddings = model.token_emb.weight.numel() + (model.pos_emb.numel() if hasattr(model, "pos_emb") else 0)
    return total, total - embeddings


def run_cost(model: torch.nn.Module, model_cfg: GPTConfig, batch_size: int, steps: int) -> dict:
    """The cost fields of a run's run.json."""
    per_step = step_flops(model_cfg, batch_size)
    tokens_per_step = batch_size * model_cfg.block_size
    params, non_embedding = param_counts(model)
    return {"train_flops": per_step * steps, "flops_per_step": per_step, "flops_per_token": per_step / tokens_per_step,
            "tokens_seen": tokens_per_step * steps, "params_non_embedding": non_embedding}
