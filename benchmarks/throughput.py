"""Benchmark (not a test): training tokens/s and peak memory of the baseline and the full stack at Mainrun size.

    python benchmarks/throughput.py [--steps 5] [--device auto|cpu|cuda] [--compile]

Each model runs in its own process so peak memory is its own. Prints one line per model.
"""
import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace

MODELS = {
    "baseline": ({"vocab_size": 16000, "block_size": 128}, {}),
    "full_stack": ({"vocab_size": 32000, "block_size": 256, "norm": "rmsnorm", "pos": "rope", "attn": "sdpa",
                    "attn_bias": False, "emb_scale": True, "mlp": "swiglu", "mlp_bias": False,
                    "parallel_residual": True}, {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01}),
}


def measure(name: str, steps: int, device_name: str, compile_model: bool) -> dict:
    import torch

    from mainrun.config import GPTConfig, TrainConfig
    from mainrun.model import GPT
    from mainrun.train import get_batch, make_optimizer, pick_device

    model_kw, train_kw = MODELS[name]
    cfg, tc = GPTConfig(**model_kw), replace(TrainConfig(**train_kw), device=device_name)
    device = pick_device(tc.device)
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    opt = make_optimizer(model, tc, device)
    fwd = torch.compile(model) if compile_model else model
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    tokens_per_step = cfg.block_size * tc.batch_size
    ids = torch.randint(0, cfg.vocab_size, (tokens_per_step * (steps + 2) + 1,), device=device)
    ptr, elapsed = 0, 0.0
    for step in range(steps + 1):  # the first step warms up (allocations, compilation) and is not timed
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        xb, yb, ptr = get_batch(ids, ptr, cfg.block_size, tc.batch_size)
        with autocast():
            _, loss = fwd(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if step:
            elapsed += time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": name, "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
            "params": model.num_params(), "tokens_per_step": tokens_per_step, "steps": steps,
            "tokens_per_s": round(steps * tokens_per_step / elapsed), "step_ms": round(1000 * elapsed / steps, 1),
            "peak_mem_mib": round(peak), "peak_mem_kind": "GPU allocated" if cuda else "process RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--only", choices=list(MODELS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.steps, args.device, args.compile)))
        return
    for name in MODELS:
        cmd = [sys.executable, __file__, "--only", name, "--steps", str(args.steps), "--device", args.device]
        out = subprocess.run(cmd + (["--compile"] if args.compile else []), capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['model']:>10}: {r['tokens_per_s']:>9,} tokens/s  {r['step_ms']:>8} ms/step  peak {r['peak_mem_mib']:,} MiB "
              f"({r['peak_mem_kind']})  {r['params']:,} params  on {r['device']}")


if __name__ == "__main__":
    main()
