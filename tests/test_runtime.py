"""The GPU features (bf16 autocast, torch.compile, fused AdamW) exercised on the CPU, on Mainrun's baseline and on
the full stack (RMSNorm, RoPE, SDPA, SwiGLU, parallel residual); the host-sync budget of the training loop,
execution settings outside a run's identity, and device slots."""
import math
import sys
from dataclasses import fields, replace
from typing import Literal, get_origin

import pytest
import torch

from conftest import committed_params
from mainrun import slots
from mainrun.config import ExecConfig, Interrupted, TrainConfig, resolve_variants, split_settings
from mainrun.evaluate import legacy_val_loss
from mainrun.model import GPT
from mainrun.train import train
from test_train import signal_on_call

# bf16 or compiled training may end this far from the fp32 eager run (legacy val_loss units); measured on the tiny
# config: bf16 5e-6, fused AdamW 1e-7, compile 7e-3 (inductor draws dropout masks with its own RNG)
TOLERANCE = 0.05


def architecture(variant: str) -> dict:
    """The committed variant's architecture choices (norm, positions, attention, MLP, residual...), not its sizes."""
    model, _ = split_settings(resolve_variants(committed_params())[variant])
    return {f.name: getattr(model, f.name) for f in fields(model) if f.type is bool or get_origin(f.type) is Literal}


@pytest.fixture(scope="module")
def trained(tiny_run, tmp_path_factory):
    """train(tiny run on an architecture, with train settings) -> (summary, dvclive dir), each trained once."""
    done = {}

    def get(arch: str, **settings):
        key = (arch, tuple(sorted(settings.items())))
        if key not in done:
            run = replace(tiny_run, model=replace(tiny_run.model, **architecture(arch)),
                          train=replace(tiny_run.train, **settings))
            d = tmp_path_factory.mktemp(arch)
            done[key] = train(run, d / "o", d / "l", d / "c", progress=False), d / "l"
        return done[key]
    return get


def test_the_full_stack_is_another_code_path():
    full = architecture("r4_4_parallel")
    assert full != architecture("baseline")
    assert (full["norm"], full["pos"], full["attn"], full["mlp"], full["parallel_residual"]) == (
        "rmsnorm", "rope", "sdpa", "swiglu", True)


# Each GPU feature on Mainrun's baseline and on the full stack (which CUDA runs in bf16 by default). Compiling costs
# most (inductor builds C++ kernels per graph): fp32 on one architecture, with bf16 on the other.
@pytest.mark.parametrize("arch, setting", [
    ("baseline", {"bf16": True}), ("baseline", {"fused_adamw": True}),
    pytest.param("baseline", {"compile": True}, marks=pytest.mark.slow),
    ("r4_4_parallel", {"bf16": True}), ("r4_4_parallel", {"fused_adamw": True}),
    pytest.param("r4_4_parallel", {"compile": True, "bf16": True}, marks=pytest.mark.slow)])
def test_gpu_features_train_on_the_cpu_close_to_fp32_eager(trained, arch, setting):
    eager, _ = trained(arch)
    s, live = trained(arch, **setting)
    curve = (live / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()[1:]
    values = [float(line.split("\t")[-1]) for line in curve]
    assert values[-1] < values[0]  # it learned
    assert abs(s["final_val_loss"] - eager["final_val_loss"]) < TOLERANCE
    assert s["config_digest"] != eager["config_digest"]  # precision and compilation are part of the run's identity


@pytest.mark.slow
def test_interrupted_compiled_bf16_run_resumes(tiny_run, trained, tmp_path, monkeypatch):
    """Compiled CPU kernels are not bit-reproducible even uninterrupted (two runs differed by 2e-5 here), so a
    resumed compiled run is held to that closeness; eager fp32 runs resume to the last digit (test_train.py)."""
    setting = {"compile": True, "bf16": True}
    full, full_live = trained("r4_4_parallel", **setting)  # the compiled kernels are cached: resuming is cheap
    run = replace(tiny_run, model=replace(tiny_run.model, **architecture("r4_4_parallel")),
                  train=replace(tiny_run.train, **setting))
    with monkeypatch.context() as m:
        signal_on_call(m, torch.nn.utils, "clip_grad_norm_", 60)  # Ctrl-C during step 60: it completes, then stops
        with pytest.raises(Interrupted):
            train(run, tmp_path / "o", tmp_path / "l", tmp_path / "c", progress=False)
    assert torch.load(tmp_path / "c" / "ckpt.pt", weights_only=True)["step"] == 60
    resumed = train(run, tmp_path / "o", tmp_path / "l", tmp_path / "c", progress=False)
    assert abs(resumed["final_val_loss"] - full["final_val_loss"]) < 1e-3
    steps = [(d / "plots" / "metrics" / "train_loss.tsv").read_text().count("\n") for d in (tmp_path / "l", full_live)]
    assert steps[0] == steps[1] == full["steps"] + 1  # every step logged once, header included


@pytest.mark.parametrize("arch", ["baseline", "r4_4_parallel"])
def test_bf16_evaluation_takes_the_cross_entropy_in_fp32(tiny_run, monkeypatch, arch):
    import mainrun.evaluate as ev
    seen, real = [], ev.F.cross_entropy

    def spy(logits, *args, **kwargs):
        seen.append(logits.dtype)
        return real(logits, *args, **kwargs)

    model = GPT(replace(tiny_run.model, **architecture(arch)))
    ids = torch.randint(0, tiny_run.model.vocab_size, (4 * 16 * 3 + 1,))
    monkeypatch.setattr(ev.F, "cross_entropy", spy)
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    with bf16():
        logits, _ = model(ids[:16].view(1, 16))
    assert logits.dtype == torch.bfloat16  # the model's logits are bf16 under autocast ...
    seen.clear()
    value = legacy_val_loss(model, ids, 1000, 16, 4, bf16)
    assert seen and set(seen) == {torch.float32} and math.isfinite(value)  # ... the loss is taken in fp32


@pytest.mark.parametrize("arch", ["baseline", "r4_4_parallel"])
def test_the_training_loop_syncs_with_the_host_only_at_flushes(tiny_run, tmp_path, monkeypatch, arch):
    """Count the device-to-host transfers made by mainrun's own code: a fixed number per evaluation, none per step."""
    transfers = []
    for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            if sys._getframe(1).f_globals.get("__name__", "").startswith("mainrun"):
                transfers.append(_name)
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    run = replace(tiny_run, model=replace(tiny_run.model, **architecture(arch)))
    s = train(run, tmp_path / "o", tmp_path / "l", tmp_path / "c", ExecConfig(log_every=10**6), progress=False)
    monkeypatch.undo()
    evals = len((tmp_path / "l" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()) - 1
    assert s["steps"] > 10 * evals
    assert len(transfers) <= 2 * evals  # one for the interval's training losses, one for the validation loss


def test_log_every_changes_nothing_but_when_losses_are_fetched(tiny_run, trained, tmp_path):
    fp32_eager, _ = trained("baseline")
    s = train(tiny_run, tmp_path / "o", tmp_path / "l", tmp_path / "c", ExecConfig(log_every=7), progress=False)
    assert s["final_val_loss"] == fp32_eager["final_val_loss"] and s["config_digest"] == fp32_eager["config_digest"]
    losses = (tmp_path / "l" / "plots" / "metrics" / "train_loss.tsv").read_text().splitlines()[1:]
    assert [int(line.split("\t")[0]) for line in losses] == list(range(1, s["steps"] + 1))


def test_auto_precision_resolves_per_device():
    cpu, cuda = TrainConfig().resolved(False), TrainConfig().resolved(True)
    assert (cpu.device, cpu.bf16, cpu.tf32, cpu.fused_adamw, cpu.compile) == ("cpu", False, False, False, False)
    assert (cuda.device, cuda.bf16, cuda.tf32, cuda.fused_adamw) == ("cuda", True, True, True)
    forced = TrainConfig(bf16=True, device="cpu").resolved(True)
    assert (forced.device, forced.bf16, forced.fused_adamw) == ("cpu", True, False)


def test_slots_fill_every_gpu_and_a_dead_run_frees_its_slot(tmp_path, monkeypatch):
    import subprocess
    monkeypatch.setenv(slots.SLOT_DIR, str(tmp_path))
    monkeypatch.setenv(slots.RUNS_PER_DEVICE, "2")
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from mainrun import slots; "
                               "print(slots.claim('cuda', 2).name, flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # holds it until killed
    try:
        assert holder.stdout.readline().strip() == "cuda-0"
        taken = [slots.claim("cuda", 2, poll_s=0.01) for _ in range(3)]  # each claim holds its own lock
        assert [(t.name, t.index) for t in taken] == [("cuda-1", 1), ("cuda-2", 0), ("cuda-3", 1)]  # 2 GPUs x 2 runs
    finally:
        holder.kill()  # a crash: the kernel drops its lock
        holder.wait()
    assert slots.claim("cuda", 2, poll_s=0.01).name == "cuda-0"


def test_cpu_slots_split_the_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(slots, "cpu_cores", lambda: 8)
    monkeypatch.setenv(slots.SLOT_DIR, str(tmp_path))
    monkeypatch.setenv(slots.RUNS_PER_DEVICE, "4")
    assert slots.claim("cpu", 1).threads == 2
    assert slots.held("cpu").name == "cpu-0"  # the run's evaluation takes its training's slot
    monkeypatch.delenv(slots.RUNS_PER_DEVICE)
    assert slots.held("cpu") is None  # slots off: a later run in this process has the whole machine, not that slot
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert slots.claim("cpu", 1) == slots.Slot(0, 8, "unslotted")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own limit holds
    assert slots.claim("cpu", 1) == slots.Slot(0, 3, "unslotted")
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: torch ignores it, and so do we
    assert slots.claim("cpu", 1) == slots.Slot(0, 8, "unslotted")
