"""Where and how a run computes: its device and slot, precision, compilation, and its token ids on the device.
Shared by training, evaluation and the benchmark, so all three run the same way."""
import contextlib

import torch

from . import slots
from .config import ConfigError, TrainConfig
from .tokenized import load_ids


def pick_device(name: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> the device type to run on (no slot taken)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is visible; set train.device to auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def claim_device(name: str) -> tuple[torch.device, slots.Slot]:
    """The device for this process: on CUDA the GPU of a free slot; on the CPU the slot's share of the cores."""
    kind = pick_device(name).type
    slot = slots.held(kind) or slots.claim(kind, torch.cuda.device_count() if kind == "cuda" else 1)
    torch.set_num_threads(slot.threads)
    if kind == "cuda":
        torch.cuda.set_device(slot.index)
        return torch.device("cuda", slot.index), slot
    return torch.device("cpu"), slot


def set_precision(device: torch.device, tc: TrainConfig) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(tc.tf32)


def autocast_for(device: torch.device, bf16: bool):
    """A context factory: bf16 autocast on this device when asked (CPU or CUDA), else nothing."""
    if bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def setup(tc: TrainConfig):
    """Where and how a run computes, in one call: (device, the train config with every `auto` resolved for it,
    the autocast context factory, the device slot held)."""
    device, slot = claim_device(tc.device)
    tc = tc.resolved(device.type == "cuda")
    set_precision(device, tc)
    return device, tc, autocast_for(device, tc.bf16), slot


def ids_tensor(tokenized_dir, split: str, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(load_ids(tokenized_dir, split).astype("int64")).to(device)
