"""One training loop for every variant: Mainrun's, with the optimiser and schedule as config fields."""
import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import save_model
from tqdm import tqdm

from .checkpoint import Checkpoint, StopFlag, rng_state, seed_everything, set_rng_state
from .config import ExecConfig, Interrupted, MainrunError, RunConfig, TrainConfig
from .cost import run_cost
from .evaluate import legacy_val_loss
from .model import GPT
from .runlog import run_info, seconds_since_process_start, write_json
from .runtime import ids_tensor, setup
from .tokenized import load_meta


class TrainingDiverged(MainrunError, RuntimeError):
    pass


FINGERPRINT_STEPS = 8  # the first training losses a run records, exactly: mainrun.prove replays them under new code


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


def train_step(fwd, opt, sched, xb, yb, autocast, grad_clip: float) -> torch.Tensor:
    """One optimisation step. It never waits for the device: the loss comes back as a device tensor."""
    with autocast():
        _, loss = fwd(xb, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(fwd.parameters(), grad_clip)
    opt.step()
    sched.step()
    return loss.detach()


def schedule_of(cfg: RunConfig, n_train_ids: int) -> tuple[int, int, int]:
    """(batches per epoch, max steps, eval interval), exactly as Mainrun derives them."""
    batches = n_train_ids // (cfg.model.block_size * cfg.train.batch_size)
    return batches, cfg.train.epochs * batches, batches // cfg.train.evals_per_epoch


@dataclass
class Progress:
    """Where a run stands; saved in its checkpoint."""
    step: int = 0
    ptr: int = 0  # next batch's start in the train ids
    train_s: float = 0.0
    eval_s: float = 0.0
    first_losses: list = field(default_factory=list)  # the first FINGERPRINT_STEPS training losses (the fingerprint)


def log_losses(live, pending: list, name: str) -> list[tuple[int, float]]:
    """Bring the pending (step, loss) device scalars to the host in one transfer, check them, log them."""
    values = torch.stack([loss for _, loss in pending]).tolist() if pending else []
    for (step, _), v in zip(pending, values):
        if not math.isfinite(v):
            raise TrainingDiverged(f"variant '{name}' diverged at step {step}: training loss is {v}; "
                                   "lower its lr or check its settings")
        live.step = step
        live.log_metric("train_loss", v)
    logged = [(step, v) for (step, _), v in zip(pending, values)]
    pending.clear()
    return logged


def log_evaluation(live, val: float, p: Progress, batches: int, tokens_per_step: int) -> None:
    live.step = p.step
    live.log_metric("val_loss", val)
    live.log_metric("epoch", (p.step - 1) // batches + 1)
    live.log_metric("elapsed_s", round(p.train_s + p.eval_s, 2))
    live.log_metric("tokens_per_s", round(p.step * tokens_per_step / max(p.train_s, 1e-9), 1))
    live.make_summary()


def resume_state(model, opt, sched, p: Progress, device) -> dict:
    return {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": p.step,
            "ptr": p.ptr, "train_s": p.train_s, "eval_s": p.eval_s, "rng": rng_state(device),
            "first_losses": p.first_losses}


def restore(state: dict, model, opt, sched, device) -> Progress:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    set_rng_state(state["rng"], device)
    # a checkpoint of older code holds no first losses: the run records no fingerprint (mainrun.prove re-trains it)
    first = state.get("first_losses", [None] if state["step"] else [])
    return Progress(state["step"], state["ptr"], state["train_s"], state["eval_s"], first)


def timing(startup, setup, first_step, loop, save) -> dict:
    """Where this process's wall time went besides the steps and evaluations (seconds; None: not measured, e.g. the
    first step of a resumed run), and when its training loop ran (loop: [start, end], epoch seconds), so that runs
    side by side can be told apart from runs one after another (benchmarks/where_time_goes.py)."""
    times = {k: None if v is None else round(v, 4)  # a tiny model's first step can take under 5 ms
             for k, v in {"startup": startup, "setup": setup, "first_step": first_step, "save": save}.items()}
    return {**times, "loop": [round(t, 3) for t in loop]}


def curves(live_dir, resume: bool):
    """dvclive's Live for the curves alone (dvc.yaml declares them: dvcyaml=False, no experiment of its own). Live()
    otherwise opens the DVC repo and git to name an experiment that is never saved: about 1.5 s a run."""
    from dvclive import Live

    class Curves(Live):
        def _init_dvc(self):
            self._dvc_repo = None

    return Curves(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=resume, report=None)


def train(cfg: RunConfig, out_dir, live_dir, ckpt_dir, execution: ExecConfig = ExecConfig(),
          progress: bool | None = None, clear_checkpoint: bool = True, code: dict | None = None) -> dict:
    """Train one variant; write model.safetensors, config.json and run.json to out_dir, curves to live_dir.
    SIGINT or SIGTERM stops it after the step in progress: it saves a checkpoint and raises Interrupted.
    progress: the tqdm bar (None: only on a terminal). clear_checkpoint=False keeps the last checkpoint for the
    caller to clear once it is done with the run (the train stage evaluates it first: a stop there loses only the
    steps after that checkpoint). code: the digests of the code it runs (data/code/train.json's files), recorded in
    its fingerprint with its first losses."""
    startup_s, setup_start = seconds_since_process_start(), time.time()
    with StopFlag() as stop:
        device, tc, autocast, slot = setup(cfg.train)
        cfg = replace(cfg, train=tc)
        seed_everything(tc.seed)
        tokdir, T, B = cfg.data["dir"], cfg.model.block_size, tc.batch_size
        train_ids, val_ids = ids_tensor(tokdir, "train", device), ids_tensor(tokdir, "val", device)
        val_chars = load_meta(tokdir)["val"]["characters"]
        batches, max_steps, eval_interval = schedule_of(cfg, len(train_ids))
        model = GPT(cfg.model).to(device)
        opt = make_optimizer(model, tc)
        sched = make_scheduler(opt, tc, max_steps, batches)
        ckpt = Checkpoint(ckpt_dir, live_dir, cfg.digest(), cfg.name)
        state = ckpt.load()
        p = Progress() if state is None else restore(state, model, opt, sched, device)
        if state is not None:
            print(f"[{cfg.name}] resuming from step {p.step}/{max_steps}")
        fwd = torch.compile(model) if tc.compile else model
        live = curves(live_dir, resume=state is not None)
        bar = tqdm(total=max_steps, initial=p.step, desc=cfg.name, dynamic_ncols=True,
                   disable=None if progress is None else not progress)
        model.train()
        pending, val, first_step_s = [], None, None  # training losses stay on the device until logged
        setup_s = time.time() - setup_start
        clock = last_save = loop_start = time.time()  # clock: start of the training time not yet counted in p.train_s
        while p.step < max_steps and not stop.requested:
            xb, yb, p.ptr = get_batch(train_ids, p.ptr, T, B)
            loss = train_step(fwd, opt, sched, xb, yb, autocast, tc.grad_clip)
            p.step += 1
            pending.append((p.step, loss))
            bar.update(1)
            evaluating = p.step == 1 or p.step % eval_interval == 0 or p.step == max_steps
            saving = p.step < max_steps and (evaluating or stop.requested
                                               or time.time() - last_save > execution.checkpoint_every_s)
            if not (evaluating or saving or len(pending) >= execution.log_every):
                continue
            logged = log_losses(live, pending, cfg.name)  # waits for the device: the steps so far are done
            p.first_losses += [v for step, v in logged if step <= FINGERPRINT_STEPS]
            p.train_s += time.time() - clock
            first_step_s = p.train_s if p.step == 1 else first_step_s  # compilation and warm-up land here
            if evaluating:
                t0 = time.time()
                val = legacy_val_loss(model, val_ids, val_chars, T, B, autocast)
                p.eval_s += time.time() - t0
                log_evaluation(live, val, p, batches, T * B)
                bar.set_postfix(val_loss=f"{val:.4f}")
            if saving:
                ckpt.save(resume_state(model, opt, sched, p, device))
                last_save = time.time()
            clock = time.time()
        bar.close()
        loop = (loop_start, time.time())
        if p.step < max_steps:
            raise Interrupted(f"[{cfg.name}] interrupted: " + (f"checkpoint saved at step {p.step}; run dvc repro "
                              "again to resume" if p.step else "before its first step; run dvc repro again"))
        live.end()
        summary = {"name": cfg.name, "config_digest": cfg.digest(), "parameters": model.num_params(),
                   "steps": max_steps, "batches_per_epoch": batches, "train_tokens_per_epoch": len(train_ids),
                   "final_val_loss": val, "train_seconds": round(p.train_s, 2), "eval_seconds": round(p.eval_s, 2),
                   "tokens_per_second": round(max_steps * T * B / p.train_s, 1),
                   **run_cost(model, cfg.model, B, max_steps),
                   **run_info(device),
                   "fingerprint": {"losses": p.first_losses, "code": code or {}}}
        summary["execution"] = {**summary["execution"], **asdict(execution), "slot": slot.name, "threads": slot.threads}
        summary = save_outputs(Path(out_dir), model, cfg, summary, (startup_s, setup_s, first_step_s, loop))
        if clear_checkpoint:
            ckpt.clear()
        return summary


def first_steps(cfg: RunConfig, steps: int, threads: int) -> list[float]:
    """A run's first training losses, replayed on the CPU as train() computes them: the same seed, initialisation,
    batches, optimiser and schedule, in the same order (an evaluation or a checkpoint between steps draws no random
    number). On the CPU in fp32 they are bit-exact: mainrun.prove compares them with the run's fingerprint."""
    torch.set_num_threads(threads)
    device, tc, T = torch.device("cpu"), cfg.train, cfg.model.block_size
    seed_everything(tc.seed)
    train_ids = ids_tensor(cfg.data["dir"], "train", device)
    batches, max_steps, _ = schedule_of(cfg, len(train_ids))
    model = GPT(cfg.model).to(device)
    opt = make_optimizer(model, tc)
    sched = make_scheduler(opt, tc, max_steps, batches)
    model.train()
    losses, ptr = [], 0
    for _ in range(min(steps, max_steps)):
        xb, yb, ptr = get_batch(train_ids, ptr, T, tc.batch_size)
        losses.append(train_step(model, opt, sched, xb, yb, contextlib.nullcontext, tc.grad_clip).item())
    return losses


def save_outputs(out: Path, model, cfg: RunConfig, summary: dict, times: tuple) -> dict:
    """model.safetensors, config.json and run.json: the summary plus where the wall time went (see timing())."""
    save_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / "model.safetensors"))
    write_json(out / "config.json", cfg.full_dict())  # every value, defaults too: mainrun.prove compares them
    summary = {**summary, "timing": timing(*times, time.time() - save_start)}
    write_json(out / "run.json", summary)
    return summary
