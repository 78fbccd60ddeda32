import contextlib
import hashlib
import json
import math
import os
import re
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mainrun.checkpoint import Checkpoint
from mainrun.config import Interrupted, RunConfig, TrainConfig
from mainrun.tokenized import load_ids
from mainrun.train import (FINGERPRINT_STEPS, Progress, TrainingDiverged, first_steps, get_batch, log_evaluation,
                           log_losses, make_optimizer, make_scheduler, restore, resume_state, schedule_of, timing,
                           train, train_step)
from waiting import finish, run_to_end, wait_for


def test_get_batch_is_mainrun_sequential_with_wrap():
    ids = torch.arange(20)
    x, y, ptr = get_batch(ids, 0, block_size=2, batch_size=3)  # span 7
    assert x.tolist() == [[0, 1], [2, 3], [4, 5]] and y.tolist() == [[1, 2], [3, 4], [5, 6]] and ptr == 6
    _, _, ptr = get_batch(ids, ptr, 2, 3)
    assert ptr == 12
    x, _, ptr = get_batch(ids, 13, 2, 3)  # 13 + 7 >= 20: wraps to 0 (Mainrun's `>=`)
    assert x[0].tolist() == [0, 1] and ptr == 6


def test_schedule_matches_the_published_baseline_log():
    from mainrun.config import GPTConfig
    cfg = RunConfig("baseline", GPTConfig(), TrainConfig())
    batches, max_steps, interval = schedule_of(cfg, 1_102_455)
    assert (batches, max_steps, interval) == (134, 938, 44)
    evals = [s for s in range(1, max_steps + 1) if s == 1 or s % interval == 0 or s == max_steps]
    assert evals == [1] + list(range(44, 925, 44)) + [938]  # the steps of mainrun/logs/baseline.log


def test_optimizers_take_the_configured_lr_weight_decay_and_fused_switch():
    model = torch.nn.Linear(2, 2)
    sgd = make_optimizer(model, TrainConfig(optimizer="sgd", lr=0.1, weight_decay=0.3))
    assert type(sgd) is torch.optim.SGD and (sgd.defaults["lr"], sgd.defaults["weight_decay"]) == (0.1, 0.3)
    for fused in (True, False, "auto"):  # auto is resolved before: unresolved, it is not a yes
        adamw = make_optimizer(model, TrainConfig(optimizer="adamw", lr=0.2, weight_decay=0.4, fused_adamw=fused))
        assert type(adamw) is torch.optim.AdamW
        assert [adamw.defaults[k] for k in ("lr", "weight_decay", "fused")] == [0.2, 0.4, fused is True]


def test_schedules_cosine_over_all_steps_or_restarts_every_so_many_epochs():
    def sched(**kw):
        opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
        return make_scheduler(opt, TrainConfig(**kw), max_steps=10, batches=4)
    cosine = sched(schedule="cosine")
    assert type(cosine) is torch.optim.lr_scheduler.CosineAnnealingLR and cosine.T_max == 10
    restarts = sched(schedule="warm_restarts", restart_epochs=1.5)
    assert type(restarts) is torch.optim.lr_scheduler.CosineAnnealingWarmRestarts and restarts.T_0 == 6
    assert sched(schedule="warm_restarts", restart_epochs=0.1).T_0 == 1  # round(0.4) = 0: at least one step


def test_train_step_is_one_clipped_step_from_fresh_gradients_then_the_schedule_moves():
    from mainrun.config import GPTConfig
    from mainrun.model import GPT
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=4, n_layer=1, n_head=1, d_model=8, dropout=0.0))
    xb, yb = torch.randint(0, 20, (2, 4)), torch.randint(0, 20, (2, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(xb, yb)[1]
    grads = torch.autograd.grad(loss, list(model.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # a stale gradient: the step must not add to it
    got = train_step(model, opt, sched, xb, yb, contextlib.nullcontext, grad_clip=0.01)
    assert got.item() == loss.item() and not got.requires_grad  # detached: no graph kept until it is logged
    for p, p0, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach(), p0 - 0.5 * g * 0.01 / (norm + 1e-6))  # clipped to norm 0.01
    assert sched.last_epoch == 1 and opt.param_groups[0]["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)) / 2)


class FakeLive:
    def __init__(self):
        self.step, self.logged, self.summaries = 0, [], 0

    def log_metric(self, name, value):
        self.logged.append((self.step, name, value))

    def make_summary(self):
        self.summaries += 1


def test_log_losses_logs_each_pending_loss_at_its_step_and_empties_the_list():
    live, pending = FakeLive(), [(3, torch.tensor(1.5)), (4, torch.tensor(0.25))]
    assert log_losses(live, pending, "v") == [(3, 1.5), (4, 0.25)]
    assert live.logged == [(3, "train_loss", 1.5), (4, "train_loss", 0.25)] and pending == []
    assert log_losses(live, pending, "v") == [] and live.logged == [(3, "train_loss", 1.5), (4, "train_loss", 0.25)]
    with pytest.raises(TrainingDiverged, match=r"^variant 'v' diverged at step 5: training loss is nan; "
                                               r"lower its lr or check its settings$"):
        log_losses(live, [(5, torch.tensor(float("nan")))], "v")


def test_log_evaluation_logs_epoch_elapsed_and_throughput_at_the_step():
    live = FakeLive()
    log_evaluation(live, 1.5, Progress(step=8, train_s=2.123, eval_s=0.5), batches=4, tokens_per_step=8)
    assert live.step == 8 and live.summaries == 1
    assert live.logged == [(8, "val_loss", 1.5), (8, "epoch", 2), (8, "elapsed_s", 2.62), (8, "tokens_per_s", 30.1)]
    live = FakeLive()
    log_evaluation(live, 1.5, Progress(step=9, train_s=0.0), batches=4, tokens_per_step=8)  # a new epoch's first
    assert [v for _, name, v in live.logged if name in ("epoch", "tokens_per_s")] == [3, 7.2e10]


def test_restore_gives_back_the_progress_and_random_state_it_saved():
    from mainrun.config import GPTConfig
    from mainrun.model import GPT
    import random
    cpu, model = torch.device("cpu"), GPT(GPTConfig(vocab_size=20, block_size=4, n_layer=1, n_head=1, d_model=8))
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    p = Progress(step=3, ptr=96, train_s=1.5, eval_s=0.25, first_losses=[4.0, 3.9, 3.8])
    state = resume_state(model, opt, sched, p, cpu)
    draws = torch.rand(3), random.random()
    assert restore(state, model, opt, sched, cpu) == p
    assert torch.equal(torch.rand(3), draws[0]) and random.random() == draws[1]
    older = {k: v for k, v in state.items() if k != "first_losses"}  # a checkpoint of code before fingerprints
    assert restore(older, model, opt, sched, cpu).first_losses == [None]
    assert restore({**older, "step": 0}, model, opt, sched, cpu).first_losses == []


def test_timing_rounds_to_a_tenth_of_a_millisecond_and_keeps_none():
    assert timing(1.234567, None, 0.00012345, (100.12345, 200.98765), 2.5) == {
        "startup": 1.2346, "setup": None, "first_step": 0.0001, "save": 2.5, "loop": [100.123, 200.988]}


def _curve(live_dir, name):
    import pandas as pd
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{name}.tsv", sep="\t")


def test_tiny_training_learns_and_writes_everything(tiny_run, tmp_path):
    s = train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    val = _curve(tmp_path / "live", "val_loss")
    assert val["val_loss"].iloc[-1] < val["val_loss"].iloc[0]
    assert val["step"].iloc[0] == 1 and val["step"].iloc[-1] == s["steps"]
    assert len(_curve(tmp_path / "live", "train_loss")) == s["steps"]
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"model.safetensors", "config.json", "run.json"}
    assert not (tmp_path / "ckpt").exists()  # removed once the run is complete
    t = s["timing"]  # where the wall time went besides steps and evaluations
    assert t["startup"] > 0 and t["setup"] >= 0 and t["save"] >= 0
    assert 0 < t["first_step"] <= s["train_seconds"]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["timing"] == t
    assert t["loop"][0] < t["loop"][1]  # when its training loop ran
    n_train, T, B = len(load_ids(tiny_run.data["dir"], "train")), tiny_run.model.block_size, tiny_run.train.batch_size
    batches, steps, _ = schedule_of(tiny_run, n_train)
    resolved = replace(tiny_run, train=tiny_run.train.resolved(False))  # what ran: `auto` made concrete for the CPU
    assert [s[k] for k in ("name", "config_digest", "batches_per_epoch", "steps", "train_tokens_per_epoch")] == [
        "tiny", resolved.digest(), batches, steps, n_train]
    assert s["eval_seconds"] >= 0 and all(s[k] == round(s[k], 2) for k in ("train_seconds", "eval_seconds"))
    assert s["tokens_per_second"] == pytest.approx(steps * T * B / s["train_seconds"], rel=0.05)
    # its fingerprint: the first losses as mainrun.prove replays them, bit for bit
    assert s["fingerprint"] == {"losses": first_steps(tiny_run, FINGERPRINT_STEPS, torch.get_num_threads()), "code": {}}
    assert len(s["fingerprint"]["losses"]) == FINGERPRINT_STEPS < steps
    execution = json.loads((tmp_path / "out" / "run.json").read_text())["execution"]
    assert {"node", "host", "device", "slot", "threads", "checkpoint_every_s"} <= set(execution)  # none overwritten
    assert (execution["slot"], execution["device"]) == ("unslotted", "cpu") and execution["threads"] >= 1
    from mainrun.cost import COST_KEYS
    from mainrun.evaluate import evaluate_run
    from mainrun.tokenized import load_meta
    m = evaluate_run(tiny_run, tmp_path / "out")  # from the saved weights: the model the loop ended with
    assert m["val_loss"] == s["final_val_loss"]  # its last evaluation, to the last digit
    meta, run = load_meta(tiny_run.data["dir"])["val"], json.loads((tmp_path / "out" / "run.json").read_text())
    assert (m["val_characters"], m["val_bytes"], m["val_tokens"]) == (meta["characters"], meta["bytes"], meta["tokens"])
    targets = m["val_tokens"] - 1  # every token but the first, in nats per token and bits per byte
    assert math.isclose(m["val_bpb"], m["val_loss_per_token"] * targets / math.log(2) / m["val_bytes"], rel_tol=1e-9)
    T, B = tiny_run.model.block_size, tiny_run.train.batch_size
    assert m["val_tokens_counted_frac"] == m["val_tokens"] // (T * B + 1) * T * B / m["val_tokens"]
    assert {k: m[k] for k in ("params", "steps", "device")} == {"params": s["parameters"], "steps": s["steps"],
                                                                 "device": "cpu"}
    assert {k: m[k] for k in (*COST_KEYS, "batches_per_epoch", "train_tokens_per_epoch", "train_seconds",
                              "tokens_per_second")} == {k: run[k] for k in (*COST_KEYS, "batches_per_epoch",
                              "train_tokens_per_epoch", "train_seconds", "tokens_per_second")}


def test_same_seed_same_val_loss_to_the_last_digit(tiny_run, tmp_path):
    a = train(tiny_run, tmp_path / "a", tmp_path / "la", tmp_path / "ca", progress=False)
    b = train(tiny_run, tmp_path / "b", tmp_path / "lb", tmp_path / "cb", progress=False)
    other_seed = replace(tiny_run, name="tiny-seed7", train=replace(tiny_run.train, seed=7))
    c = train(other_seed, tmp_path / "c", tmp_path / "lc", tmp_path / "cc", progress=False)
    assert a["final_val_loss"] == b["final_val_loss"]
    assert c["final_val_loss"] != a["final_val_loss"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signal_on_call(monkeypatch, owner, attr, n, signum=signal.SIGINT):
    """Deliver signum to this process inside owner.attr's n-th call, as a Ctrl-C (or a kill) would at that moment."""
    real, calls = getattr(owner, attr), {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapper)


@pytest.fixture(scope="module")
def uninterrupted(tiny_run, tmp_path_factory):
    d = tmp_path_factory.mktemp("full")
    return train(tiny_run, d / "out", d / "live", d / "ckpt", progress=False), d


@pytest.mark.parametrize("where, n, signum", [
    ("clip", 40, signal.SIGINT),  # mid-step, before the weights change
    ("optimizer", 100, signal.SIGTERM),  # mid-step, while the weights change
    ("evaluation", 3, signal.SIGINT),  # during the n-th evaluation
])
def test_stop_at_a_step_then_resume_gives_the_same_weights(tiny_run, uninterrupted, tmp_path, monkeypatch,
                                                          where, n, signum):
    import mainrun.train as t
    full, full_dir = uninterrupted
    interval = schedule_of(tiny_run, len(load_ids(tiny_run.data["dir"], "train")))[2]
    eval_steps = [1] + list(range(interval, full["steps"], interval))
    stop_step = eval_steps[n - 1] if where == "evaluation" else n  # the step in progress completes, then it stops
    owner, attr = {"clip": (t.torch.nn.utils, "clip_grad_norm_"), "optimizer": (torch.optim.AdamW, "step"),
                   "evaluation": (t, "legacy_val_loss")}[where]
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as m:
        signal_on_call(m, owner, attr, n, signum)
        with pytest.raises(Interrupted, match=f"checkpoint saved at step {stop_step}; run dvc repro again"):
            train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # given back
    assert torch.load(tmp_path / "ckpt" / "ckpt.pt", weights_only=True)["step"] == stop_step
    assert not (tmp_path / "out").exists()
    resumed = train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    assert sha256(tmp_path / "out" / "model.safetensors") == sha256(full_dir / "out" / "model.safetensors")
    assert resumed["final_val_loss"] == full["final_val_loss"]
    assert resumed["fingerprint"] == full["fingerprint"]  # its first losses travel in the checkpoint (mainrun.prove)
    assert resumed["timing"]["first_step"] is None  # step 1 ran in the interrupted process
    for curve in ("train_loss", "val_loss", "epoch", "tokens_per_s"):
        assert _curve(tmp_path / "live", curve)["step"].tolist() == _curve(full_dir / "live", curve)["step"].tolist()


def test_a_damaged_checkpoint_is_discarded_with_one_line(tiny_run, uninterrupted, tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        signal_on_call(m, torch.nn.utils, "clip_grad_norm_", 30)
        with pytest.raises(Interrupted):
            train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    ckpt = tmp_path / "ckpt" / "ckpt.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated, as by a full disk
    capsys.readouterr()
    s = train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "damaged" in line] == [f"[tiny] checkpoint {ckpt} is damaged "
                                                           "(RuntimeError); discarded, starting over"]
    assert not any("resuming" in line for line in out)
    assert s["timing"]["first_step"] is not None  # it started over
    full, full_dir = uninterrupted
    assert sha256(tmp_path / "out" / "model.safetensors") == sha256(full_dir / "out" / "model.safetensors")


def test_checkpoint_of_other_params_is_discarded(tmp_path):
    Checkpoint(tmp_path / "ck", tmp_path / "live", "aaaa").save({"step": 3})
    assert Checkpoint(tmp_path / "ck", tmp_path / "live", "aaaa").load()["step"] == 3
    assert Checkpoint(tmp_path / "ck", tmp_path / "live", "bbbb").load() is None
    assert not (tmp_path / "ck").exists()


def test_a_kill_while_saving_leaves_a_whole_checkpoint(tmp_path, monkeypatch):
    ck = Checkpoint(tmp_path / "ck", tmp_path / "live", "aaaa")
    ck.save({"step": 3})
    renames = []
    real = Path.rename

    def killed_at_second_rename(self, target):  # SIGKILL between the two renames of save()
        renames.append(target)
        if len(renames) == 2:
            raise SystemExit
        return real(self, target)

    with monkeypatch.context() as m:
        m.setattr(Path, "rename", killed_at_second_rename)
        with pytest.raises(SystemExit):
            ck.save({"step": 4})
    assert not (tmp_path / "ck").exists()  # the old one was moved aside, the new one not yet in place
    assert Checkpoint(tmp_path / "ck", tmp_path / "live", "aaaa").load()["step"] == 3


def test_cuda_without_a_gpu_is_a_config_error():
    from mainrun.config import ConfigError
    from mainrun.runtime import pick_device
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="set train.device to auto or cpu"):
        pick_device("cuda")


def test_divergence_stops_with_variant_and_step(tiny_run, tmp_path):
    bad = replace(tiny_run, name="exploding", train=replace(tiny_run.train, optimizer="sgd", lr=1e38, grad_clip=1e38))
    with pytest.raises(TrainingDiverged, match=r"'exploding' diverged at step \d+"):
        train(bad, tmp_path / "o", tmp_path / "l", tmp_path / "c", progress=False)


@pytest.mark.parametrize("delta", [
    {"optimizer": "sgd", "lr": 6e-3, "weight_decay": 0.0},
    {"schedule": "warm_restarts", "restart_epochs": 0.5},
    {"model": {"norm": "rmsnorm", "pos": "rope", "attn": "sdpa", "attn_bias": False, "emb_scale": True,
               "mlp": "swiglu", "mlp_bias": False, "parallel_residual": True}},
    {"model": {"n_layer": 2, "d_model": 32, "n_head": 4}},
])
def test_each_variant_kind_trains(tiny_run, tmp_path, delta):
    model_delta = delta.pop("model", {})
    cfg = replace(tiny_run, model=replace(tiny_run.model, **model_delta), train=replace(tiny_run.train, **delta))
    s = train(cfg, tmp_path / "o", tmp_path / "l", tmp_path / "c", progress=False)
    assert math.isfinite(s["final_val_loss"]) and s["parameters"] > 0


def test_ctrl_c_in_the_train_stage_prints_one_line_and_resumes_exactly(tiny_run, tmp_path):
    """A real Ctrl-C (SIGINT to the process group) in `python -m stages.train`, run where dvclive finds a git+DVC
    repo with packed objects (as in a clone): one line on stderr, no traceback, no teardown noise; then it resumes."""
    import subprocess
    import sys

    from conftest import ROOT
    from mainrun.runlog import write_json

    run = replace(tiny_run, train=replace(tiny_run.train, epochs=3))
    full = train(run, tmp_path / "full", tmp_path / "full_live", tmp_path / "full_ckpt", progress=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "commit", "-qm", "init"], ["git", "gc", "-q"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    write_json(repo / "run.json", {**run.to_dict(), "enabled": True, "study": None})
    (repo / "params.yaml").write_text("train: {}\n")
    stage = [sys.executable, "-m", "stages.train", "--config", "run.json", "--out", "out", "--live", "live",
             "--ckpt", "ckpt", "--metrics", "eval.json"]
    p = subprocess.Popen(stage, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    wait_for((repo / "ckpt" / "ckpt.pt").exists, "the checkpoint saved after step 1's evaluation", proc=p)
    os.killpg(p.pid, signal.SIGINT)  # the run has all its other steps left: on a busy machine they slow down too
    _, err = finish(p, "the train stage's exit after Ctrl-C (it stops after the step in progress)")
    assert p.returncode == 130, f"rc {p.returncode} ({'all steps ran before the Ctrl-C' if p.returncode == 0 else err})"
    assert re.fullmatch(r"\[tiny\] interrupted: checkpoint saved at step (\d+); run dvc repro again to resume\n", err)
    stopped_at = int(re.search(r"step (\d+)", err).group(1))
    assert 1 <= stopped_at < full["steps"]
    done = run_to_end(stage, "the resumed train stage's exit", cwd=repo, env=env)
    assert done.returncode == 0 and f"resuming from step {stopped_at}/" in done.stdout, done.stderr
    assert sha256(repo / "out" / "model.safetensors") == sha256(tmp_path / "full" / "model.safetensors")
    assert json.loads((repo / "eval.json").read_text())["val_loss"] > 0  # then evaluated, in the same process


def test_the_curves_never_open_the_dvc_repo(tmp_path, monkeypatch):
    """curves() skips dvclive's DVC set-up (its private Live._init_dvc: 1.5 s a run opening the repo and git). If a
    dvclive release renames it, this says so instead of every run silently paying for it again."""
    import dvclive.live
    from mainrun.train import curves

    assert callable(getattr(dvclive.live.Live, "_init_dvc", None)), "dvclive has no Live._init_dvc: see curves()"
    monkeypatch.setattr(dvclive.live, "get_dvc_repo", lambda *a, **k: pytest.fail("dvclive opened the DVC repo"))
    live = curves(tmp_path / "live", resume=False)
    live.log_metric("val_loss", 1.0)
    live.next_step()
    live.end()
    assert (tmp_path / "live" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()[1].split("\t")[-1] == "1.0"


def test_a_stop_before_the_first_step_says_so(tiny_run, tmp_path, monkeypatch):
    import mainrun.train as t
    signal_on_call(monkeypatch, t, "GPT", 1)  # Ctrl-C while the model is built
    with pytest.raises(Interrupted, match=r"^\[tiny\] interrupted: before its first step; run dvc repro again$"):
        train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=False)


def test_the_progress_bar_names_the_run_counts_its_steps_and_shows_the_last_val_loss(tiny_run, tmp_path, capsys):
    s = train(tiny_run, tmp_path / "out", tmp_path / "live", tmp_path / "ckpt", progress=True)
    bar = capsys.readouterr().err.split("\r")[-1]
    assert bar.startswith("tiny: 100%") and f" {s['steps']}/{s['steps']} " in bar
    assert f"val_loss={s['final_val_loss']:.4f}]" in bar
