"""One training loop for every variant: Mainrun's, with the optimiser and schedule as config fields."""
import math
import random
import shutil
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import save_model
from tqdm import tqdm

from .config import ExecConfig, MainrunError, RunConfig, TrainConfig
from .evaluate import legacy_val_loss
from .model import GPT
from .runlog import run_info, seconds_since_process_start, write_json
from .runtime import autocast_for, claim_device, ids_tensor, set_precision
from .tokenized import load_meta


class TrainingDiverged(MainrunError, RuntimeError):
    pass


def get_batch(ids: torch.Tensor, ptr: int, block_size: int, batch_size: int):
    """Mainrun's sequential batching; note `>=`: it wraps to 0 even when the span would just fit."""
    span = block_size * batch_size + 1
    if ptr + span >= len(ids):
        ptr = 0
    batch = ids[ptr:ptr + span]
    return batch[:-1].view(batch_size, block_size), batch[1:].view(batch_size, block_size), ptr + span - 1


def make_optimizer(model: torch.nn.Module, tc: TrainConfig):
    if tc.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=tc.fused_adamw is True)


def make_scheduler(opt, tc: TrainConfig, max_steps: int, batches: int):
    if tc.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_steps)
    return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=max(1, round(batches * tc.restart_epochs)))


def train_step(fwd, opt, sched, xb, yb, autocast, grad_clip: float, mark=lambda phase: None) -> torch.Tensor:
    """One optimisation step. It never waits for the device: the loss comes back as a device tensor.
    mark("update") is called just before the weights start to change."""
    with autocast():
        _, loss = fwd(xb, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(fwd.parameters(), grad_clip)
    mark("update")
    opt.step()
    sched.step()
    return loss.detach()


def schedule_of(cfg: RunConfig, n_train_ids: int) -> tuple[int, int, int]:
    """(batches per epoch, max steps, eval interval), exactly as Mainrun derives them."""
    batches = n_train_ids // (cfg.model.block_size * cfg.train.batch_size)
    return batches, cfg.train.epochs * batches, batches // cfg.train.evals_per_epoch


class Checkpoint:
    """Atomic resume state in one directory: ckpt.pt plus a snapshot of the dvclive folder at that step."""

    def __init__(self, directory, live_dir, digest: str):
        self.dir, self.live_dir, self.digest = Path(directory), Path(live_dir), digest

    def save(self, state: dict):
        tmp = self.dir.with_name(self.dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save({**state, "digest": self.digest}, tmp / "ckpt.pt")
        if self.live_dir.exists():
            shutil.copytree(self.live_dir, tmp / "live")
        shutil.rmtree(self.dir, ignore_errors=True)
        tmp.rename(self.dir)

    def load(self):
        """The saved state if it belongs to this exact config (restoring the dvclive folder), else None."""
        path = self.dir / "ckpt.pt"
        if not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("digest") != self.digest:
            self.clear()  # written for other params: start over
            return None
        shutil.rmtree(self.live_dir, ignore_errors=True)
        if (self.dir / "live").exists():
            shutil.copytree(self.dir / "live", self.live_dir)
        return state

    def clear(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _rng_state(device):
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else torch.empty(0, dtype=torch.uint8)}


def _set_rng_state(s, device):
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    if device.type == "cuda" and s["cuda"].numel():
        torch.cuda.set_rng_state(s["cuda"])


def timing(startup, setup, first_step, save) -> dict:
    """Where this process's wall time went besides the steps and evaluations (seconds; None: not measured, e.g. the
    first step of a resumed run)."""
    return {k: None if v is None else round(v, 2)
            for k, v in {"startup": startup, "setup": setup, "first_step": first_step, "save": save}.items()}


def train(cfg: RunConfig, out_dir, live_dir, ckpt_dir, execution: ExecConfig = ExecConfig(),
          progress: bool | None = None) -> dict:
    """Train one variant; write model.safetensors, config.json and run.json to out_dir, curves to live_dir.
    progress: the tqdm bar (None: only on a terminal)."""
    from dvclive import Live

    startup_seconds, setup_start = seconds_since_process_start(), time.time()
    device, slot = claim_device(cfg.train.device)
    cfg = replace(cfg, train=cfg.train.resolved(device.type == "cuda"))
    tc = cfg.train
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    set_precision(device, tc)
    autocast = autocast_for(device, tc.bf16)

    tokdir = cfg.data["dir"]
    train_ids, val_ids = ids_tensor(tokdir, "train", device), ids_tensor(tokdir, "val", device)
    val_chars = load_meta(tokdir)["val"]["characters"]
    batches, max_steps, eval_interval = schedule_of(cfg, len(train_ids))
    tokens_per_step = cfg.model.block_size * tc.batch_size

    model = GPT(cfg.model).to(device)
    opt = make_optimizer(model, tc)
    sched = make_scheduler(opt, tc, max_steps, batches)
    ckpt = Checkpoint(ckpt_dir, live_dir, cfg.digest())
    state = ckpt.load()
    step, ptr, train_seconds, eval_seconds = 0, 0, 0.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, ptr, train_seconds, eval_seconds = state["step"], state["ptr"], state["train_s"], state["eval_s"]
        _set_rng_state(state["rng"], device)
        print(f"[{cfg.name}] resuming from step {step}/{max_steps}")
    fwd = torch.compile(model) if tc.compile else model

    # Training losses stay on the device until flush(): one transfer per log_every steps, evaluation or checkpoint.
    pending: list[tuple[int, torch.Tensor]] = []
    clock = time.time()  # start of the training time not yet counted in train_seconds

    def flush():
        nonlocal train_seconds, clock
        values = torch.stack([loss for _, loss in pending]).tolist() if pending else []
        train_seconds += time.time() - clock  # the transfer waited for the device: the steps are done
        for (s, _), v in zip(pending, values):
            if not math.isfinite(v):
                raise TrainingDiverged(f"variant '{cfg.name}' diverged at step {s}: training loss is {v}; "
                                       "lower its lr or check its settings")
            live.step = s
            live.log_metric("train_loss", v)
        pending.clear()

    def restart_clock():
        nonlocal clock
        clock = time.time()

    def save_checkpoint(rng=None, pending_eval=False):
        ckpt.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                   "ptr": ptr, "train_s": train_seconds, "eval_s": eval_seconds, "rng": rng or _rng_state(device),
                   "pending_eval": pending_eval})

    def is_eval_step(s):
        return s == 1 or s % eval_interval == 0 or s == max_steps

    def evaluate_and_log():
        nonlocal eval_seconds
        t1 = time.time()
        val = legacy_val_loss(model, val_ids, val_chars, cfg.model.block_size, tc.batch_size, autocast)
        eval_seconds += time.time() - t1
        live.step = step
        live.log_metric("val_loss", val)
        live.log_metric("epoch", (step - 1) // batches + 1)
        live.log_metric("elapsed_s", round(train_seconds + eval_seconds, 2))
        live.log_metric("tokens_per_s", round(step * tokens_per_step / max(train_seconds, 1e-9), 1))
        live.make_summary()
        bar.set_postfix(val_loss=f"{val:.4f}")
        return val

    def on_sigterm(*_):
        raise KeyboardInterrupt

    def mark(p):
        nonlocal phase
        phase = p

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=state is not None, report=None)
    bar = tqdm(total=max_steps, initial=step, desc=cfg.name, disable=None if progress is None else not progress,
               dynamic_ncols=True)
    if state is not None and state["pending_eval"]:  # the evaluation an interrupt cut short
        val = evaluate_and_log()
    # phase: "forward" changes nothing yet; "update" is changing weights; "done": the step is committed
    last_save, last_eval, phase, rng_before = time.time(), step, "done", None
    model.train()
    setup_seconds, first_step_seconds = time.time() - setup_start, None
    restart_clock()
    try:
        while step < max_steps:
            rng_before, phase = _rng_state(device), "forward"
            xb, yb, next_ptr = get_batch(train_ids, ptr, cfg.model.block_size, tc.batch_size)
            loss = train_step(fwd, opt, sched, xb, yb, autocast, tc.grad_clip, mark)
            step, ptr, phase = step + 1, next_ptr, "done"
            pending.append((step, loss))
            bar.update(1)
            if is_eval_step(step):
                flush()
                if step == 1:  # compile and device warm-up land here
                    first_step_seconds = train_seconds
                val, last_eval = evaluate_and_log(), step
                if step < max_steps:
                    save_checkpoint()
                    last_save = time.time()
                restart_clock()
            elif len(pending) >= execution.log_every or time.time() - last_save > execution.checkpoint_every_s:
                flush()
                if time.time() - last_save > execution.checkpoint_every_s:
                    save_checkpoint()
                    last_save = time.time()
                restart_clock()
    except KeyboardInterrupt:
        if phase == "update":  # weights half-updated: the last checkpoint stands
            print(f"\n[{cfg.name}] interrupted during an update: `dvc repro` resumes from the last checkpoint")
        elif 0 < step < max_steps:  # an unfinished step is dropped whole, RNG included
            flush()
            save_checkpoint(rng_before if phase == "forward" else None,
                            pending_eval=phase == "done" and is_eval_step(step) and last_eval != step)
            print(f"\n[{cfg.name}] interrupted: checkpoint saved at step {step}; run `dvc repro` again to resume")
        raise
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous_handler)
    live.end()

    save_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / "model.safetensors"))
    write_json(out / "config.json", cfg.to_dict())
    summary = {"name": cfg.name, "config_digest": cfg.digest(), "parameters": model.num_params(),
               "steps": max_steps, "batches_per_epoch": batches, "train_tokens_per_epoch": len(train_ids),
               "final_val_loss": val, "train_seconds": round(train_seconds, 2),
               "eval_seconds": round(eval_seconds, 2),
               "timing": timing(startup_seconds, setup_seconds, first_step_seconds, time.time() - save_start),
               "tokens_per_second": round(max_steps * tokens_per_step / train_seconds, 1),
               "execution": {**asdict(execution), "slot": slot.name, "threads": slot.threads},
               **run_info(device)}
    write_json(out / "run.json", summary)
    ckpt.clear()
    return summary
