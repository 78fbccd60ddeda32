"""The runs over a Ray cluster: `python -m mainrun.parallel --ray ADDRESS [-j N] [-S key=value ...]`.

The driver brings the upstream stages up to date here and pushes them to the DVC remote; then each stale run is
one Ray task, which clones the driver's commit from `origin` into a node-local folder, applies the same -S
overrides, restores what the run needs with `dvc repro --pull`, trains and evaluates, and pushes the outputs and
their run-cache entries. At the end the driver restores every run with `dvc repro --pull`: its workspace, dvc.lock
and report look as after a local `dvc repro`, and only the driver writes dvc.lock. Ray places the tasks and gives
each its GPU share (num_gpus=1/N); the file-lock slots are off under Ray.
"""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import guard as guard_module, repo, task as task_module
from .repo import LOG_DIR, UPSTREAM, apply_overrides, dvc, enabled, stale_runs, upstream
from .task import AUTO_DEVICE, Attempts, run_task

# what a submission itself changes in the workspace: -S edits params.yaml, configure rewrites runs.yaml from it (a
# study switched on adds runs), and the final repro writes dvc.lock. The workers make each from the commit themselves.
DERIVED = ("params.yaml", "runs.yaml", "dvc.lock")
RECANCEL_S = 5  # Ctrl-C: the cancel is sent again this often until each run has stopped


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
    others = [f for f in changed if f not in DERIVED]
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
        apply_overrides(overrides, str(Path(tmp, "params.yaml")))
        wanted = Path(tmp, "params.yaml").read_text()
    last = LOG_DIR / "ray-params.yaml"  # what the last submission wrote: its overrides may be replaced
    if Path("params.yaml").read_text() not in (head, wanted, last.exists() and last.read_text()):
        raise Fault("params.yaml has uncommitted edits: commit and push them, or pass them as -S key=value")
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(wanted)
    return wanted


def connect(address: str):
    try:
        with without_ip_probe_warning():
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
        with without_ip_probe_warning():
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as e:  # ConnectionError, or a timeout, by version
        raise Fault(f"cannot reach the Ray cluster at {address} ({type(e).__name__}): {fix}") from None
    without_raylet_messages(ray)
    return ray


def without_raylet_messages(ray) -> None:
    """log_to_driver=False keeps the workers' output away, but not the errors the cluster publishes to every driver:
    Ray's `ray_listen_error_messages` thread prints them to stdout as `(raylet) ...`, several lines each when a
    node dies. The runner says what happened in its own line (`try 2: ...`), so they are turned off with the switch
    Ray's own debugger (ray.util.rpdb) uses to mute that printing; they stay in the nodes' logs."""
    ray._private.worker._worker_logs_enabled = False


@contextlib.contextmanager
def without_ip_probe_warning():
    """Ray's core finds this machine's address by opening a UDP socket towards 8.8.8.8; where no route leads out
    (a private or loopback-only network) it warns `Failed to determine local IP via external connectivity`, then
    resolves the hostname, which is what a cluster node declares anyway. That warning is dropped; the rest of what
    Ray writes to stderr meanwhile is passed on."""
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if "Failed to determine local IP via external connectivity" not in line:
                    sys.stderr.write(line)


def auto_device(ray, overrides: list[str]) -> str | None:
    """What `train.device: auto` means for this submission: the cluster's device (configure resolves it here, on
    the driver, for the workers). None when the commit or an override names the device. It is not written into
    params.yaml: the runner's own choice stays out of the user's files (MAINRUN_AUTO_DEVICE tells configure)."""
    train = (yaml.safe_load(git("show", "HEAD:params.yaml", check=True).stdout) or {}).get("train") or {}
    named = any(o.split("=", 1)[0].lstrip("+") == "train.device" for o in overrides)
    if named or train.get("device", "auto") != "auto":
        return None
    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def main(address: str, per_device: int, overrides: list[str]) -> int:
    repo.hold_repo()  # the repo lock, and a guard: what the driver starts (the final dvc repro --pull) ends with it
    try:
        return drive(address, per_device, overrides)
    except Fault as e:
        sys.exit(f"error: {e}")


def default_remote() -> str:
    p = dvc("remote", "default", "--project")
    if p.returncode or not p.stdout.strip():  # "No default remote set"
        raise Fault("no default DVC remote in .dvc/config for the workers to push to: dvc remote add -d NAME URL "
                    "(a bucket, SSH or a shared folder every node reaches), commit and push")
    return p.stdout.strip()


def verifies(remote: str) -> bool:
    return dvc("config", f"remote.{remote}.verify").stdout.strip().lower() in ("true", "1", "yes")


def attempts_actor(ray):
    """The Attempts actor the tasks report to, pinned to the driver's own node: a lost worker node cannot take it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0, scheduling_strategy=here)(Attempts).remote()


def ask(ray, attempts, method: str, *args, default):
    """A call to the Attempts actor, or default if it is gone (killed, or its node lost): the lines say less, the
    runs go on."""
    try:
        return ray.get(getattr(attempts, method).remote(*args))
    except Exception:  # RayActorError and its kin, by version
        return default


def report_removed(ray, attempts, shown: list) -> None:
    """Each abandoned clone a task removed, in one line, once (the task tells the actor as it starts)."""
    if attempts is None:
        return
    for node, clone, size in ask(ray, attempts, "removed", default=[])[len(shown):]:
        print(f"  removed an abandoned clone on node {node[:8]}: {clone} ({size / 1e6:.1f} MB)", flush=True)
        shown.append(clone)


def cancel(ray, pending: dict, attempts=None, shown=None) -> None:
    """Ctrl-C: each running task gets Ctrl-C and stops its run at a checkpoint; the driver waits for each to end,
    saying so (a second Ctrl-C kills them at once: their guards still stop the trainers)."""
    shown = [] if shown is None else shown
    print(f"interrupted: cancelling {len(pending)} runs; each stops at a checkpoint (Ctrl-C again: kill them now)",
          flush=True)
    force = False
    for ref in pending:
        ray.cancel(ref)
    t0 = sent = time.time()
    while pending:
        try:
            if not force and time.time() - sent > RECANCEL_S:  # a cancel that reached a run between two tries is
                for ref in pending:  # lost; a task that is already stopping ignores the repeats
                    ray.cancel(ref)
                sent = time.time()
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        except KeyboardInterrupt:
            if force:
                continue
            force = True
            print("  killing them now", flush=True)
            for ref in pending:
                ray.cancel(ref, force=True)
            continue
        for ref in done:
            print(f"  stopped: {pending.pop(ref)} ({time.time() - t0:.0f} s)", flush=True)
        report_removed(ray, attempts, shown)


def line(r: dict, tries: list[str]) -> str:
    state = "FAILED" if r["rc"] else "done" if r["ran"] else "restored"
    retried = (f", try {len(tries)}: the earlier on node {', '.join(n[:8] for n in tries[:-1])} lost its worker"
               if len(tries) > 1 else "")
    why = f": {r['error']}" if r.get("error") else ""
    return (f"  {state}: {r['train']} on node {r['node'][:8]}{retried} ({sum(r['times'].values()):.0f} s: "
            + ", ".join(f"{k} {v:.0f}" for k, v in r["times"].items()) + f"){why}")


def collect(ray, pending: dict, attempts) -> tuple[list[dict], set[str]]:
    """Each task's result as it ends, printed in one line; with the nodes each run started on. Ctrl-C cancels the
    rest."""
    results, seen, shown = [], set(), []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            if not done:
                continue
            name = pending.pop(done[0])
            try:
                r = ray.get(done[0])
            except Exception as e:  # the task itself died (node lost past its retries, out of memory, ...)
                r = {"train": name, "rc": 1, "error": f"the Ray task died: {type(e).__name__}", "node": "?",
                     "ran": False, "times": {}, "log": str(e)[-2000:], "folder": "?", "cleared": []}
            results.append(r)
            tries = ask(ray, attempts, "of", name, default=[r["node"]]) or [r["node"]]
            seen.update(tries)
            print(line(r, tries), flush=True)
            report_removed(ray, attempts, shown)
    except KeyboardInterrupt:
        cancel(ray, pending, attempts, shown)
        sys.exit("interrupted: the cancelled runs stopped; the finished ones are on the remote, and the same command "
                 "submits the rest")
    report_removed(ray, attempts, shown)  # a task does not wait for the actor: a late report
    return results, seen


def drive(address: str, per_device: int, overrides: list[str]) -> int:
    t0, costs = time.time(), {}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where the parent ignored it
    remote = default_remote()
    origin, commit = origin_and_commit()
    params = params_with(overrides)  # a bad -S stops here, before the cluster is asked anything
    ray = connect(address)
    costs["ray.init"] = time.time() - t0
    device = auto_device(ray, overrides)
    if device:  # configure resolves `auto` for the workers, not for this machine
        os.environ[AUTO_DEVICE] = device
    Path("params.yaml").write_text(params)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    chosen = f"; train.device auto means {device} here (the cluster's), not written to params.yaml" if device else ""
    print(f"1/3 upstream stages: dvc repro {' '.join(UPSTREAM)}, then dvc push (commit {commit[:10]}"
          f"{', ' + ' '.join(overrides) if overrides else ''}{chosen})", flush=True)
    if not verifies(remote):
        print(f"note: the DVC remote '{remote}' does not verify downloads, so this machine would take a damaged "
              f"object for a result; the nodes do verify: dvc remote modify {remote} verify true (docs/sharing.md)",
              flush=True)
    upstream()
    t = time.time()
    pushed = dvc("push", "--run-cache", "--with-deps", *UPSTREAM)
    if pushed.returncode:
        raise Fault(f"push to the DVC remote '{remote}' failed: {task_module.cause(pushed.stderr + pushed.stdout)}")
    costs["driver push"] = time.time() - t
    runs = [train for train in stale_runs() if enabled(train)]  # switched-off studies: the final repro marks them
    gpus = ray.cluster_resources().get("GPU", 0)
    cpus = [n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"]] or [1]
    resources = {"num_gpus": 1 / per_device, "num_cpus": 1} if gpus else {"num_cpus": max(1, min(cpus) // per_device)}
    print(f"2/3 {len(runs)} runs on the Ray cluster at {address} ({'GPU' if gpus else 'CPU'} cluster, "
          f"{resources} each)", flush=True)
    for module in (guard_module, task_module):  # the nodes need not have this version installed
        ray.cloudpickle.register_pickle_by_value(module)
    task = ray.remote(max_retries=2, **resources)(run_task)
    attempts = attempts_actor(ray)
    pending = {task.remote(origin, commit, overrides, train, remote, device or "", attempts): train for train in runs}
    t = time.time()
    results, seen = collect(ray, pending, attempts)
    costs["tasks"] = time.time() - t
    failed = [r for r in results if r["rc"]]
    for r in failed:
        print(f"--- {r['train']} on node {r['node']} (its clone is kept there: {r['folder']}) ---\n{r['log']}",
              file=sys.stderr)
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: " + "; ".join(f"{r['train']} ({r['error'] or 'see its log'})"
                                                                  for r in failed)
                 + "; their logs are above, the other runs are on the remote; fix and run this command again")
    print("3/3 dvc repro --pull (every run restored from the remote, then the report)", flush=True)
    t = time.time()
    ran = repo.final_repro("--pull")
    costs["final repro --pull"] = time.time() - t
    retrained = [s for s in ran if s in {r["train"] for r in results}]
    if retrained:
        print(f"note: {', '.join(retrained)} did not restore from the remote (an object missing or damaged) and "
              "trained here; see docs/sharing.md", flush=True)
    nodes = sorted(n[:8] for n in seen | {r["node"] for r in results})  # every node a run started on
    print(f"finished in {time.time() - t0:.0f} s on {len(nodes)} node(s) {' '.join(nodes)}; "
          f"the final dvc repro ran: {', '.join(ran) or 'nothing'}; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in costs.items()))
    return 0
