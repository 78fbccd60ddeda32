import math

import torch
from torch import nn
from torch.nn import functional as F

from mainrun.evaluate import evaluate_run, honest_metrics, legacy_counted_tokens, legacy_val_loss, token_nats


class Bigram(nn.Module):
    """A model whose loss we can compute by hand: logits depend on the current token only."""

    def __init__(self, vocab=5):
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Parameter(torch.randn(vocab, vocab))

    def forward(self, idx, targets=None):
        return self.table[idx], None


def nll(model, prev, nxt):
    return -torch.log_softmax(model.table[prev], -1)[nxt].item()


def test_legacy_metric_is_mainrun_formula_by_hand():
    model, ids = Bigram(), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 1, 1, 2, 0])  # 14 ids
    T, B, chars = 2, 2, 37
    # span = 5: batches at ptr 0 and 5 (ptr 10 would need ids[10:15]); targets within each span only
    expected = sum(nll(model, ids[p + i].item(), ids[p + i + 1].item()) for p in (0, 5) for i in range(4)) / chars
    assert math.isclose(legacy_val_loss(model, ids, chars, T, B), expected, rel_tol=1e-6)
    assert legacy_counted_tokens(len(ids), T, B) == 8
    ids = ids[:10]  # exactly two spans: the last one counts too
    expected = sum(nll(model, ids[p + i].item(), ids[p + i + 1].item()) for p in (0, 5) for i in range(4)) / chars
    assert math.isclose(legacy_val_loss(model, ids, chars, T, B), expected, rel_tol=1e-6)
    assert legacy_counted_tokens(len(ids), T, B) == 8 and legacy_counted_tokens(9, T, B) == 4


def test_honest_metrics_count_every_token_once():
    model, ids = Bigram(), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 1, 1, 2, 0])
    nats, targets = token_nats(model, ids, block_size=4, batch_size=2)
    by_hand = sum(nll(model, ids[i].item(), ids[i + 1].item()) for i in range(len(ids) - 1))
    assert targets == 13 and math.isclose(nats, by_hand, rel_tol=1e-6)
    m = honest_metrics(nats, targets, val_bytes=20)
    assert math.isclose(m["val_loss_per_token"], by_hand / 13, rel_tol=1e-6)
    assert math.isclose(m["val_bpb"], by_hand / math.log(2) / 20, rel_tol=1e-6)


def test_honest_metric_uses_context_within_the_window():
    """A block-size-aware model: with block 3, token 3 is predicted from tokens 0..2 only (a new window starts)."""
    class PositionProbe(nn.Module):
        def forward(self, idx, targets=None):
            B, T = idx.shape
            logits = torch.zeros(B, T, 4)
            logits[..., 0] = torch.arange(T).float()  # confidence in token 0 grows with the position in the window
            return logits, None
    ids = torch.zeros(8, dtype=torch.long)
    nats, n = token_nats(PositionProbe(), ids, block_size=3, batch_size=4)
    per_pos = [-torch.log_softmax(torch.tensor([float(p), 0, 0, 0]), 0)[0].item() for p in range(3)]
    assert n == 7 and math.isclose(nats, 2 * sum(per_pos) + per_pos[0], rel_tol=1e-6)


def test_evaluating_leaves_the_model_in_the_mode_it_found_it():
    """Both metrics run the model in eval mode (no dropout) and hand it back as it was: training resumes in train
    mode after a mid-epoch evaluation, and an evaluated model stays in eval mode."""
    class Probe(Bigram):
        def forward(self, idx, targets=None):
            modes.append(self.training)
            return super().forward(idx, targets)
    ids = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 1, 1, 2, 0])
    for training in (True, False):
        model, modes = Probe(), []
        model.train(training)
        legacy_val_loss(model, ids, 37, 2, 2)
        assert model.training is training
        token_nats(model, ids, block_size=4, batch_size=2)
        assert model.training is training and modes and not any(modes)


def test_evaluate_run_scores_the_saved_weights_and_copies_the_run(tiny_run, tmp_path):
    from safetensors.torch import save_model

    from mainrun.cost import COST_KEYS
    from mainrun.model import GPT
    from mainrun.runlog import write_json
    from mainrun.tokenized import load_ids, load_meta

    torch.manual_seed(0)
    model = GPT(tiny_run.model).eval()  # evaluate_run's own GPT starts from other random weights: it must load these
    save_model(model, str(tmp_path / "model.safetensors"))
    keys = ("parameters", "steps", "batches_per_epoch", "train_tokens_per_epoch", "train_seconds", "tokens_per_second",
            "device", *COST_KEYS)
    run = {k: i for i, k in enumerate(keys)}
    write_json(tmp_path / "run.json", {**run, "name": "tiny"})
    meta = load_meta(tiny_run.data["dir"])["val"]
    ids = torch.from_numpy(load_ids(tiny_run.data["dir"], "val").astype("int64"))
    T, B = tiny_run.model.block_size, tiny_run.train.batch_size
    assert len(ids) > 2 * (T * B + 1) and T != B
    nats, targets = token_nats(model, ids, T, B)
    assert evaluate_run(tiny_run, tmp_path) == {
        "val_loss": legacy_val_loss(model, ids, meta["characters"], T, B),
        **honest_metrics(nats, targets, meta["bytes"]),
        "val_tokens_counted_frac": legacy_counted_tokens(len(ids), T, B) / len(ids),
        "val_tokens": len(ids), "val_characters": meta["characters"], "val_bytes": meta["bytes"],
        "params": run["parameters"], **{k: run[k] for k in keys[1:]}}


def test_legacy_metric_adds_the_batch_sums_as_mainrun_does():
    """Mainrun's `losses += loss.item()`: each batch's fp32 sum added in float64, to the last bit."""
    model, T, B = Bigram(), 2, 2
    ids = torch.randint(0, 5, (203,), generator=torch.Generator().manual_seed(0))  # 40 batches
    losses = 0.0
    for p in range(0, 200, 5):
        x, y = ids[p:p + 4].view(B, T), ids[p + 1:p + 5].view(B, T)
        losses += F.cross_entropy(model(x)[0].view(-1, 5), y.view(-1), reduction="sum").item()
    assert legacy_val_loss(model, ids, 37, T, B) == losses / 37


def test_honest_metric_batches_the_full_windows_and_runs_the_short_tail_alone():
    class ShapeProbe(Bigram):
        def forward(self, idx, targets=None):
            shapes.append(tuple(idx.shape))
            return super().forward(idx, targets)
    ids = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 1, 1, 2, 0])
    # 13 ids: 12 targets, three full windows of 4 and no tail; 14: a tail of 1; 12: two windows and a tail of 3
    for n_ids, expected in ((13, [(3, 4)]), (14, [(3, 4), (1, 1)]), (12, [(2, 4), (1, 3)])):
        model, shapes = ShapeProbe(), []
        nats, targets = token_nats(model, ids[:n_ids], block_size=4, batch_size=3)
        by_hand = sum(nll(model, ids[i].item(), ids[i + 1].item()) for i in range(n_ids - 1))
        assert shapes == expected and targets == n_ids - 1 and math.isclose(nats, by_hand, rel_tol=1e-6)


def test_honest_metric_short_tail_is_one_sequence():
    """The tail window's tokens are positions 0, 1, ... of one sequence (not one-token sequences)."""
    class PositionProbe(nn.Module):
        def forward(self, idx, targets=None):
            B, T = idx.shape
            logits = torch.zeros(B, T, 4)
            logits[..., 0] = torch.arange(T).float()
            return logits, None
    nats, n = token_nats(PositionProbe(), torch.zeros(9, dtype=torch.long), block_size=3, batch_size=4)
    per_pos = [-torch.log_softmax(torch.tensor([float(p), 0, 0, 0]), 0)[0].item() for p in range(3)]
    assert n == 8 and math.isclose(nats, 2 * sum(per_pos) + per_pos[0] + per_pos[1], rel_tol=1e-6)


def test_honest_metric_adds_the_batch_sums_in_float64():
    model, T, B = Bigram(), 2, 2
    ids = torch.randint(0, 5, (203,), generator=torch.Generator().manual_seed(0))  # 101 windows: 51 batches
    total = 0.0
    for p in range(0, 202, T * B):
        x = torch.stack([ids[s:s + T] for s in range(p, min(p + T * B, 202), T)])
        y = torch.stack([ids[s + 1:s + T + 1] for s in range(p, min(p + T * B, 202), T)])
        total += F.cross_entropy(model(x)[0].view(-1, 5), y.view(-1), reduction="sum").item()
    assert token_nats(model, ids, T, B) == (total, 202)
