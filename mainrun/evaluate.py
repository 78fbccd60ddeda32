"""Validation metrics: Mainrun's legacy figure and two honest ones beside it."""
import contextlib
import math

import torch
from torch.nn import functional as F


def full_batches(ids: torch.Tensor, block_size: int, batch_size: int):
    """Mainrun's iter_full_split: spans of batch_size*block_size+1 tokens, stride one span, no partial span."""
    span = block_size * batch_size + 1
    for ptr in range(0, len(ids) - span + 1, span):
        batch = ids[ptr:ptr + span]
        yield batch[:-1].view(batch_size, block_size), batch[1:].view(batch_size, block_size)


def legacy_counted_tokens(n_ids: int, block_size: int, batch_size: int) -> int:
    return (n_ids // (block_size * batch_size + 1)) * block_size * batch_size


@torch.no_grad()
def legacy_val_loss(model, val_ids, val_chars: int, block_size: int, batch_size: int,
                    autocast=contextlib.nullcontext) -> float:
    """Mainrun's evaluate(), to the letter. Its quirks, kept on purpose so the number compares with 1.7533:
    - it divides the summed token cross-entropy by the number of *characters* of the validation text,
      so it is neither a per-token loss nor comparable across block sizes or vocabularies;
    - it counts only full batches of batch_size*block_size+1 tokens: the partial last batch is skipped,
      and one token between consecutive batches is never a target.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=val_ids.device)
    for xb, yb in full_batches(val_ids, block_size, batch_size):
        total += _summed_ce(model, xb, yb, autocast)
    model.train(was_training)
    return total.item() / val_chars


@torch.no_grad()
def token_nats(model, val_ids, block_size: int, batch_size: int, autocast=contextlib.nullcontext) -> tuple[float, int]:
    """Summed cross-entropy over every validation token after the first, each predicted from the tokens before it
    in its window of block_size (windows tile the split; the last one is shorter). Returns (nats, targets)."""
    was_training = model.training
    model.eval()
    n = len(val_ids) - 1
    starts = list(range(0, n, block_size))
    full = [s for s in starts if s + block_size <= n]
    total = torch.zeros((), dtype=torch.float64, device=val_ids.device)
    for i in range(0, len(full), batch_size):
        chunk = full[i:i + batch_size]
        x = torch.stack([val_ids[s:s + block_size] for s in chunk])
        y = torch.stack([val_ids[s + 1:s + block_size + 1] for s in chunk])
        total += _summed_ce(model, x, y, autocast)
    if len(full) < len(starts):  # the short tail window
        s = starts[-1]
        total += _summed_ce(model, val_ids[s:n].unsqueeze(0), val_ids[s + 1:n + 1].unsqueeze(0), autocast)
    model.train(was_training)
    return total.item(), n


def _summed_ce(model, x, y, autocast) -> torch.Tensor:
    """Summed fp32 cross-entropy (whatever the autocast), as a float64 device scalar: adding these on the device
    gives the same sum as Mainrun's `losses += loss.item()`, without a host sync per batch."""
    with autocast():
        logits, _ = model(x)
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").double()


def honest_metrics(nats: float, targets: int, val_bytes: int) -> dict:
    return {"val_loss_per_token": nats / targets, "val_bpb": nats / math.log(2) / val_bytes}


def evaluate_run(cfg, model_dir) -> dict:
    """All metrics of a trained run, from its saved weights and tokenized validation split."""
    from pathlib import Path

    from safetensors.torch import load_model

    from .cost import COST_KEYS
    from .model import GPT
    from .runlog import read_json
    from .runtime import ids_tensor, setup
    from .tokenized import load_meta

    device, _, autocast, _ = setup(cfg.train)
    model = GPT(cfg.model)
    load_model(model, str(Path(model_dir) / "model.safetensors"))
    model.to(device)
    meta = load_meta(cfg.data["dir"])
    val_ids = ids_tensor(cfg.data["dir"], "val", device)
    T, B = cfg.model.block_size, cfg.train.batch_size
    nats, targets = token_nats(model, val_ids, T, B, autocast)
    run = read_json(Path(model_dir) / "run.json")
    return {"val_loss": legacy_val_loss(model, val_ids, meta["val"]["characters"], T, B, autocast),
            **honest_metrics(nats, targets, meta["val"]["bytes"]),
            "val_tokens_counted_frac": legacy_counted_tokens(len(val_ids), T, B) / len(val_ids),
            "val_tokens": len(val_ids), "val_characters": meta["val"]["characters"], "val_bytes": meta["val"]["bytes"],
            "params": run["parameters"], "steps": run["steps"], "batches_per_epoch": run["batches_per_epoch"],
            "train_tokens_per_epoch": run["train_tokens_per_epoch"], "train_seconds": run["train_seconds"],
            "tokens_per_second": run["tokens_per_second"], "device": run["device"],
            **{k: run[k] for k in COST_KEYS}}
