"""A Ray cluster of `ray start` processes on this machine, on 127.0.0.1, one CPU per node unless told: what
tests/test_ray.py and benchmarks/ray_vs_local.py run the runner against."""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NODE = ["ray", "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(address: str, env: dict) -> int:
    count = (f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    out = subprocess.run([sys.executable, "-c", count], env=env, capture_output=True, text=True).stdout.strip()
    return int(out) if out.isdigit() else 0


def stop(procs) -> None:
    """End the nodes' process groups: SIGTERM, then SIGKILL for a node still there after 15 s."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@contextlib.contextmanager
def local_cluster(node_envs: list[dict], env: dict, ceiling_s: float = 600.0, cpus: int = 1):
    """Yield the address of a cluster with one node per entry of node_envs (the first is the head; each entry adds
    to env, e.g. MAINRUN_RAY_WORKDIR, a disk of its own); all nodes are alive when it yields. Raises RuntimeError
    when a node exits while starting, or (a hang, not load: nodes start in seconds to a minute) after ceiling_s."""
    port, temp = free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    quiet = {"start_new_session": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    address, procs = f"127.0.0.1:{port}", []
    try:
        for i, extra in enumerate(node_envs):
            role = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"] if i == 0 \
                else [f"--address={address}"]
            procs.append(subprocess.Popen([*NODE, f"--num-cpus={cpus}", *role], env={**env, **extra}, **quiet))
        t0 = time.time()
        while alive(address, env) < len(node_envs):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a `ray start` node exited (rc {[p.poll() for p in procs]}) before the cluster "
                                   "was up")
            if time.time() - t0 > ceiling_s:
                raise RuntimeError(f"the {len(node_envs)}-node Ray cluster was not up after {ceiling_s:.0f} s")
            time.sleep(1)
        yield address
    finally:
        stop(procs)
        shutil.rmtree(temp, ignore_errors=True)
