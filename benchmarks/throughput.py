"""Benchmark (not a test): training tokens/s and peak memory of the baseline and the full stack at Mainrun size.

    python benchmarks/throughput.py [--steps 5] [--device auto|cpu|cuda] [--compile] [--bf16 auto|on|off] [--tiny]

Each model runs in its own process so peak memory is its own. Prints one line per model.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

MODELS = {
    "baseline": ({"vocab_size": 16000, "block_size": 128}, {}),
    "full_stack": ({"vocab_size": 32000, "block_size": 256, "norm": "rmsnorm", "pos": "rope", "attn": "sdpa",
                    "attn_bias": False, "emb_scale": True, "mlp": "swiglu", "mlp_bias": False,
                    "parallel_residual": True}, {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01}),
}


# --tiny: the test suite's tiny profile sizes (a smoke test of the script, not a measurement)
TINY = ({"vocab_size": 300, "block_size": 16, "n_layer": 1, "n_head": 2, "d_model": 16}, {"batch_size": 4})
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, per the vendors' sheets


def flops_per_token(cfg, params: int) -> float:
    """Training FLOPs per token: 6 x parameters plus attention scores (PaLM's appendix B estimate)."""
    return 6 * params + 12 * cfg.n_layer * cfg.d_model * cfg.block_size


def measure(name: str, steps: int, device_name: str, compile_model: bool, bf16: str, tiny=False) -> dict:
    """Times mainrun.train.train_step, the real step, over `steps` steps with one host sync at the end."""
    import torch

    from mainrun.config import GPTConfig, TrainConfig
    from mainrun.model import GPT
    from mainrun.runtime import setup
    from mainrun.train import get_batch, make_optimizer, make_scheduler, train_step

    model_kw, train_kw = MODELS[name]
    if tiny:
        model_kw, train_kw = {**model_kw, **TINY[0]}, {**train_kw, **TINY[1]}
    bf16_setting = {"auto": "auto", "on": True, "off": False}[bf16]
    cfg = GPTConfig(**model_kw)
    tc = TrainConfig(**train_kw, device=device_name, compile=compile_model, bf16=bf16_setting)
    device, tc, autocast, _ = setup(tc)
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    opt = make_optimizer(model, tc)
    sched = make_scheduler(opt, tc, 10 * steps, steps)
    fwd = torch.compile(model) if tc.compile else model
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tokens_per_step = cfg.block_size * tc.batch_size
    ids = torch.randint(0, cfg.vocab_size, (tokens_per_step * (steps + 4) + 1,), device=device)
    ptr, t_start = 0, time.perf_counter()
    for _ in range(3):  # warm-up (allocations, compilation): not timed
        xb, yb, ptr = get_batch(ids, ptr, cfg.block_size, tc.batch_size)
        loss = train_step(fwd, opt, sched, xb, yb, autocast, tc.grad_clip)
    loss.item()
    sync()
    warmup_s = time.perf_counter() - t_start
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb, ptr = get_batch(ids, ptr, cfg.block_size, tc.batch_size)
        loss = train_step(fwd, opt, sched, xb, yb, autocast, tc.grad_clip)
    loss.item()  # the only sync: the device finished every step
    elapsed = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens_per_s = steps * tokens_per_step / elapsed
    achieved = tokens_per_s * flops_per_token(cfg, model.num_params()) / 1e12
    gpu = torch.cuda.get_device_name() if cuda else ""
    peak_tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    return {"model": name, "device": gpu or f"cpu ({torch.get_num_threads()} threads)", "bf16": tc.bf16,
            "compile": tc.compile, "params": model.num_params(), "tokens_per_step": tokens_per_step, "steps": steps,
            "tokens_per_s": round(tokens_per_s), "step_ms": round(1000 * elapsed / steps, 1),
            "warmup_s": round(warmup_s, 1), "tflops": round(achieved, 2),
            "mfu": None if peak_tflops is None else round(achieved / peak_tflops, 3),
            "peak_mem_mib": round(peak), "peak_mem_kind": "GPU allocated" if cuda else "process RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--bf16", default="auto", choices=["auto", "on", "off"], help="auto: on CUDA only")
    ap.add_argument("--tiny", action="store_true", help="tiny models (the test suite's smoke test)")
    ap.add_argument("--only", choices=list(MODELS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.steps, args.device, args.compile, args.bf16, args.tiny)))
        return
    for name in MODELS:
        cmd = [sys.executable, __file__, "--only", name, "--steps", str(args.steps), "--device", args.device,
               "--bf16", args.bf16] + (["--compile"] if args.compile else []) + (["--tiny"] if args.tiny else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        mfu = "—" if r["mfu"] is None else f"{r['mfu']:.1%}"
        print(f"{r['model']:>10}: {r['tokens_per_s']:>9,} tokens/s  {r['step_ms']:>8} ms/step  {r['tflops']} TFLOP/s "
              f"(MFU {mfu})  peak {r['peak_mem_mib']:,} MiB ({r['peak_mem_kind']})  bf16 {r['bf16']}  compile "
              f"{r['compile']}  warm-up {r['warmup_s']} s  {r['params']:,} params  on {r['device']}")


if __name__ == "__main__":
    main()
