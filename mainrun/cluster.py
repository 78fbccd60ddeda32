"""The runs over a Ray cluster: `python -m mainrun.parallel --ray ADDRESS [-j N] [-S key=value ...]`.

The driver brings the upstream stages up to date here and pushes them to the DVC remote; then each stale run is
one Ray task, which clones the driver's commit from `origin` into a node-local folder, applies the same -S
overrides, restores what the run needs with `dvc repro --pull`, trains and evaluates, and pushes the outputs and
their run-cache entries. At the end the driver restores every run with `dvc repro --pull`: its workspace, dvc.lock
and report look as after a local `dvc repro`, and only the driver writes dvc.lock. Ray places the tasks and gives
each its GPU share (num_gpus=1/N); the file-lock slots are off under Ray.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from .parallel import LOG_DIR, Busy, apply_overrides, claim_repo, dvc, enabled, stale_runs, upstream

WORKDIR = "MAINRUN_RAY_WORKDIR"  # where a node keeps its clones and its shared DVC cache (default: the temp dir)


class Fault(Exception):
    """A precondition the command cannot meet; the message names the fix."""


def git(*args, check=False) -> subprocess.CompletedProcess:
    p = subprocess.run(["git", *args], capture_output=True, text=True)
    if check and p.returncode:
        raise Fault(f"git {' '.join(args)} failed: {p.stderr.strip()}")
    return p


def origin_and_commit() -> tuple[str, str]:
    """(origin url, HEAD commit) the workers clone; raises Fault with the fix."""
    url = git("remote", "get-url", "origin").stdout.strip()
    if not url:
        raise Fault("no git remote 'origin' for the workers to clone: add one (git remote add origin URL) and push")
    if os.path.isdir(url):
        url = os.path.abspath(url)
    commit = git("rev-parse", "HEAD", check=True).stdout.strip()
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").stdout.splitlines()]
    others = [f for f in changed if f not in ("params.yaml", "dvc.lock")]
    if others:
        raise Fault(f"uncommitted changes in {', '.join(others[:5])}: the workers check out commits only; commit "
                    "and push them (params edits can also go in -S key=value)")
    fetched = git("fetch", "-q", "origin")
    if fetched.returncode:
        raise Fault(f"cannot fetch from origin ({url}): {fetched.stderr.strip()[-200:]}; fix the remote or its access")
    if not git("branch", "-r", "--contains", commit).stdout.strip():
        raise Fault(f"commit {commit[:10]} is not on origin, so the workers cannot check it out: git push origin HEAD")
    return url, commit


def params_with(overrides: list[str]) -> str:
    """params.yaml as the workers make it: the commit's, with the overrides; raises Fault on other edits."""
    head = git("show", "HEAD:params.yaml", check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "params.yaml").write_text(head)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            apply_overrides(overrides)
        finally:
            os.chdir(cwd)
        wanted = Path(tmp, "params.yaml").read_text()
    last = LOG_DIR / "ray-params.yaml"  # what the last submission wrote: its overrides may be replaced
    if Path("params.yaml").read_text() not in (head, wanted, last.exists() and last.read_text()):
        raise Fault("params.yaml has uncommitted edits: commit and push them, or pass them as -S key=value")
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(wanted)
    return wanted


def connect(address: str):
    try:
        import ray
    except ImportError:
        raise Fault("Ray is not installed: pip install -e '.[cluster]'") from None
    fix = "start one with `ray start --head`, or pass the address it printed"
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:  # ray.init waits minutes for a GCS that is not there
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as e:
            raise Fault(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): {fix}") from None
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as e:  # ConnectionError, or a timeout, by version
        raise Fault(f"cannot reach the Ray cluster at {address} ({type(e).__name__}): {fix}") from None
    return ray


def device_override(ray, overrides: list[str]) -> list[str]:
    """The device the workers have, made explicit: configure then resolves `auto` for them, not for the driver."""
    train = (yaml.safe_load(git("show", "HEAD:params.yaml", check=True).stdout) or {}).get("train") or {}
    if any(o.split("=", 1)[0].lstrip("+") == "train.device" for o in overrides) or train.get("device", "auto") != "auto":
        return overrides
    return [*overrides, f"train.device={'cuda' if ray.cluster_resources().get('GPU', 0) > 0 else 'cpu'}"]


def run_task(origin: str, commit: str, overrides: list[str], train: str, evaluate: str | None) -> dict:
    """One run on a Ray worker: clone, restore, train and evaluate, push. Imports only the standard library and Ray,
    so a node needs git, DVC and the project's dependencies, not this module."""
    import ray
    node = ray.get_runtime_context().get_node_id()
    root = Path(os.environ.get(WORKDIR) or tempfile.gettempdir()) / "mainrun-ray"
    work = root / f"{commit[:10]}-{train.replace('@', '-')}-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in ("MAINRUN_RUNS_PER_DEVICE", "MAINRUN_SLOT_DIR")}
    env.update(MAINRUN_NODE=node, DVC_NO_ANALYTICS="1")
    root.mkdir(parents=True, exist_ok=True)
    log, times, procs = root / f"{work.name}.log", {}, []

    def step(name, *cmd, cwd=work):
        t0 = time.time()
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            start = f.tell()
            p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(p)
            while p.poll() is None:  # not a blocking wait: ray.cancel's KeyboardInterrupt lands between sleeps
                time.sleep(0.2)
        times[name] = times.get(name, 0.0) + time.time() - t0
        if p.returncode:
            raise RuntimeError(f"{' '.join(cmd[:4])} failed (rc {p.returncode})")
        with open(log) as f:
            f.seek(start)
            return f.read()

    ran, rc = False, 0
    try:
        step("clone", "git", "clone", "-q", "--no-checkout", origin, str(work), cwd=root)
        step("clone", "git", "checkout", "-q", commit)
        step("clone", "dvc", "config", "--local", "cache.dir", str(root / "dvc-cache"))  # shared by the node's runs
        if overrides:
            step("clone", sys.executable, "-c", "import sys; from dvc.utils.hydra import apply_overrides; "
                 "apply_overrides('params.yaml', sys.argv[1:])", *overrides)
        target = evaluate or train
        out = step("run", "dvc", "repro", "--pull", target)  # upstream restored from the run-cache, then the run
        ran = f"Running stage '{train}'" in out
        step("push", "dvc", "push", "--run-cache", *[s for s in (train, evaluate) if s])
    except KeyboardInterrupt:  # ray.cancel: stop the run at a checkpoint, as Ctrl-C does locally
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                p.wait()
        raise
    except (RuntimeError, OSError) as e:
        with open(log, "a") as f:
            f.write(f"{e}\n")
        rc = 1
    tail = log.read_text()[-4000:] if log.exists() else ""
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
        log.unlink(missing_ok=True)
    return {"train": train, "rc": rc, "node": node, "ran": ran, "times": times, "log": tail, "folder": str(work)}


def main(address: str, per_device: int, overrides: list[str]) -> int:
    try:
        lock_fd = claim_repo()
    except Busy as e:
        sys.exit(f"error: {e}")
    try:
        return drive(address, per_device, overrides)
    except Fault as e:
        sys.exit(f"error: {e}")
    finally:
        os.close(lock_fd)


def drive(address: str, per_device: int, overrides: list[str]) -> int:
    t0, costs = time.time(), {}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where the parent ignored it
    if dvc("remote", "default", "--project").returncode:  # "No default remote set"
        raise Fault("no default DVC remote in .dvc/config for the workers to push to: dvc remote add -d NAME URL "
                    "(a bucket, SSH or a shared folder every node reaches), commit and push")
    origin, commit = origin_and_commit()
    ray = connect(address)
    costs["ray.init"] = time.time() - t0
    overrides = device_override(ray, overrides)
    Path("params.yaml").write_text(params_with(overrides))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    print(f"1/3 upstream stages: dvc repro configure, then dvc push (commit {commit[:10]}, {' '.join(overrides)})",
          flush=True)
    upstream()
    t = time.time()
    pushed = dvc("push", "--run-cache", "--with-deps", "configure")
    if pushed.returncode:
        raise Fault(f"dvc push to the default remote failed: {(pushed.stderr or pushed.stdout).strip()[-300:]}")
    costs["driver push"] = time.time() - t
    runs = [pair for pair in stale_runs() if enabled(pair[0])]  # switched-off studies: the final repro marks them
    gpus = ray.cluster_resources().get("GPU", 0)
    cpus = [n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"]] or [1]
    resources = {"num_gpus": 1 / per_device, "num_cpus": 1} if gpus else {"num_cpus": max(1, min(cpus) // per_device)}
    print(f"2/3 {len(runs)} runs on the Ray cluster at {address} ({'GPU' if gpus else 'CPU'} cluster, "
          f"{resources} each)", flush=True)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the nodes need not have this version installed
    task = ray.remote(max_retries=2, **resources)(run_task)
    pending = {task.remote(origin, commit, overrides, *pair): pair[0] for pair in runs}
    results, t = [], time.time()
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(done[0])
            try:
                r = ray.get(done[0])
            except Exception as e:  # the task itself died (node lost past its retries, out of memory, ...)
                r = {"train": name, "rc": 1, "node": "?", "ran": False, "times": {}, "log": str(e)[-2000:],
                     "folder": "?"}
            results.append(r)
            state = "FAILED" if r["rc"] else "done" if r["ran"] else "restored"
            print(f"  {state}: {name} on node {r['node'][:8]} ({sum(r['times'].values()):.0f} s: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in r["times"].items()) + ")", flush=True)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # a KeyboardInterrupt in the task: it stops its run at a checkpoint
        ray.wait(list(pending), num_returns=len(pending), timeout=120)  # let them stop before the job ends
        sys.exit(f"interrupted: {len(pending)} runs cancelled; the finished ones are on the remote, and the "
                 "same command submits the rest")
    costs["tasks"] = time.time() - t
    failed = [r for r in results if r["rc"]]
    for r in failed:
        print(f"--- {r['train']} on node {r['node']} (its clone is kept there: {r['folder']}) ---\n{r['log']}",
              file=sys.stderr)
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {', '.join(r['train'] for r in failed)}; their logs are above, "
                 "the other runs are on the remote; fix and run this command again")
    print("3/3 dvc repro --pull (every run restored from the remote, then the report)", flush=True)
    t = time.time()
    (LOG_DIR / "final.log").unlink(missing_ok=True)
    last = dvc("repro", "--pull", log=LOG_DIR / "final.log")
    costs["final repro --pull"] = time.time() - t
    ran = re.findall(r"Running stage '([^']+)'", (LOG_DIR / "final.log").read_text())
    if last.returncode:
        sys.exit(f"error: the final dvc repro --pull failed; see {LOG_DIR / 'final.log'}")
    nodes = sorted({r["node"][:8] for r in results})
    print(f"finished in {time.time() - t0:.0f} s on {len(nodes)} node(s) {' '.join(nodes)}; the final dvc repro ran: "
          f"{', '.join(ran) or 'nothing'}; " + ", ".join(f"{k} {v:.1f} s" for k, v in costs.items()))
    return 0
