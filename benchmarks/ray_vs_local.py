"""Wall time of the CPU profile: `python -m mainrun.parallel -j 2` against `--ray` on a local 2-node cluster.

    python benchmarks/ray_vs_local.py [--profile profiles/cpu.yaml] [--keep DIR]

Both start from fresh clones of this repo's HEAD (pushed to a bare origin, with a local-folder DVC remote). The
cluster is two `ray start` processes on this machine, one CPU each, so each run has one thread in both cases.
Prints each wall time, the cluster's start-up, and the Ray driver's own split (ray.init, the upstream push, the
tasks, the final `dvc repro --pull`).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mainrun.profile import overrides  # noqa: E402
from mainrun.runner.nodes import local_cluster  # noqa: E402


def sh(cwd, *cmd, env=None):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def timed(cwd, *cmd, env=None) -> tuple[float, str]:
    t0 = time.time()
    out = sh(cwd, *cmd, env=env)
    return time.time() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=str(ROOT / "profiles" / "cpu.yaml"))
    ap.add_argument("--keep", help="work here and keep it (default: a temporary folder, removed)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="mainrun-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "MAINRUN_RAY_WORKDIR": str(work / "nodes")}
    sets = [s for o in overrides(yaml.safe_load(Path(args.profile).read_text())) for s in o.split(" ", 1)]
    sh(work, "git", "init", "-q", "--bare", "origin.git")
    sh(work, "git", "clone", "-q", str(ROOT), "src")
    src = work / "src"
    sh(src, "git", "remote", "set-url", "origin", str(work / "origin.git"))
    sh(src, "dvc", "remote", "add", "-d", "shared", str(work / "dvc-remote"), env=env)
    sh(src, "git", "commit", "-qam", "bench: a local-folder DVC remote")
    sh(src, "git", "push", "-q", "origin", "HEAD:main")
    for name in ("local", "driver"):
        sh(work, "git", "clone", "-q", "-b", "main", str(work / "origin.git"), name)

    local_s, local_out = timed(work / "local", sys.executable, "-m", "mainrun.parallel", "-j", "2", *sets, env=env)
    print(f"local -j 2: {local_s:.0f} s\n{local_out.splitlines()[-1]}", flush=True)

    t0 = time.time()
    with local_cluster([{}, {}], env) as address:  # two `ray start` nodes on this machine, one CPU each
        up_s = time.time() - t0
        print(f"2-node cluster up in {up_s:.0f} s", flush=True)
        ray_s, ray_out = timed(work / "driver", sys.executable, "-m", "mainrun.parallel", "--ray", address, *sets,
                               env=env)
        print(f"--ray on 2 nodes: {ray_s:.0f} s (+ {up_s:.0f} s cluster start-up)\n{ray_out}", flush=True)
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
