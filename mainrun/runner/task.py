"""One run on a Ray node: clone the driver's commit, restore, train and evaluate, push (mainrun/runner/cluster.py).

Shipped to the nodes by value with mainrun/runner/guard.py: a node needs git, DVC and the project's dependencies,
not this version of mainrun. The processes a task starts end with it, even when Ray kills its worker (node lost,
driver killed): a guard started one step removed (Ray kills a dead worker's children, not their children) leads
their process group.
"""
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .guard import Guard

WORKDIR = "MAINRUN_RAY_WORKDIR"  # where a node keeps its clones and its shared DVC cache (default: the temp dir)
AUTO_DEVICE = "MAINRUN_AUTO_DEVICE"  # what `train.device: auto` means to configure (mainrun/configure.py)


class Attempts:
    """What the tasks report as they start (a Ray actor on the driver's node): the nodes each run started on, so a
    retried run's line says so, and the abandoned clones each task removed, so the driver reports them even when the
    task that removed them is cancelled or dies."""

    def __init__(self):
        self.nodes: dict[str, list[str]] = {}
        self.cleared: list[tuple[str, str, int]] = []  # (node, clone, bytes)

    def start(self, run: str, node: str, cleared=()) -> int:
        self.nodes.setdefault(run, []).append(node)
        self.cleared += [(node, clone, size) for clone, size in cleared]
        return len(self.nodes[run])

    def of(self, run: str) -> list[str]:
        return self.nodes.get(run, [])

    def removed(self) -> list[tuple[str, str, int]]:
        return self.cleared


def node_root() -> Path:
    return Path(os.environ.get(WORKDIR) or tempfile.gettempdir()) / "mainrun-ray"


def hold(path: Path):
    """An flock a live task holds on its clone: the kernel frees it when the task ends or its worker dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def clear_abandoned(root: Path) -> list[tuple[str, int]]:
    """Remove the clones of tasks that were killed (their lock is free): (name, bytes) of each. Failed runs' clones
    drop their lock file and stay, for their logs."""
    removed = []
    for lock in root.glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live task
        finally:
            os.close(fd)
        clone = root / lock.stem
        size = sum(f.stat().st_size for f in clone.rglob("*") if f.is_file() and not f.is_symlink()) \
            if clone.exists() else 0
        shutil.rmtree(clone, ignore_errors=True)
        for leftover in (lock, root / f"{lock.stem}.log"):
            leftover.unlink(missing_ok=True)
        removed.append((lock.stem, size))
    return removed


def cause(output: str) -> str:
    """The reason in a failed command's output: an OS error's text, a stage's own `error:` line, or DVC's last."""
    lines = output.splitlines()
    for line in lines:
        m = re.search(r"\[Errno \d+\] ([^:'\n]+)", line)
        if m and line.startswith("ERROR"):
            return m[1].strip()
    own = [line[7:] for line in lines if line.startswith("error: ")]
    dvcs = [line[7:] for line in lines if line.startswith("ERROR: ")]
    return (own or dvcs or [lines[-1] if lines else "no output"])[-1].strip()[:300]


def run_task(origin: str, commit: str, overrides: list[str], train: str, remote: str, device: str, attempts=None,
             node: str | None = None) -> dict:
    """Clone, restore, train and evaluate, push; returns what the driver prints. node: the Ray node's id (asked
    of Ray when None)."""
    # a Ray worker blocks SIGINT (its raylet does, and the mask is inherited), and so would every process this task
    # starts: a run's Ctrl-C would stay pending and it would train on. Unblocked while the task runs.
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        return _run(origin, commit, overrides, train, remote, device, attempts, node)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _run(origin, commit, overrides, train, remote, device, attempts, node) -> dict:
    if node is None:
        import ray
        node = ray.get_runtime_context().get_node_id()
    root = node_root()
    root.mkdir(parents=True, exist_ok=True)
    cleared = clear_abandoned(root)
    if attempts is not None:  # told now: a cancelled task returns nothing. Not awaited: a task blocked in ray.get
        attempts.start.remote(train, node, cleared)  # gives up its CPUs, and the node would start another run
    clone = Clone(root, f"{commit[:10]}-{train.replace('@', '-')}", remote, node, device)
    ran, error = False, ""
    try:
        clone.make(origin, commit, overrides, train)
        ran = clone.run(train)
        clone.push(train)
    except KeyboardInterrupt:  # ray.cancel: stop the run at a checkpoint, as Ctrl-C does locally
        clone.cancel()
        raise
    except (RuntimeError, OSError) as e:
        error = str(e) or type(e).__name__
        clone.note(error)
    finally:
        clone.let_go()
    tail = clone.close(keep=bool(error))
    return {"train": train, "rc": int(bool(error)), "error": error, "node": node, "ran": ran, "times": clone.times,
            "log": tail, "folder": str(clone.dir), "cleared": cleared}


class Clone:
    """One run's clone of the driver's commit on this node: its folder, its log, the steps it runs in it (each
    timed under its name: clone, run, push) and the guard whose process group they join."""

    def __init__(self, root: Path, name: str, remote: str, node: str, device: str):
        self.root, self.remote = root, remote
        self.dir = root / f"{name}-{uuid.uuid4().hex[:6]}"
        self.log, self.lock_path = root / f"{self.dir.name}.log", root / f"{self.dir.name}.lock"
        self.env = {k: v for k, v in os.environ.items() if k not in ("MAINRUN_RUNS_PER_DEVICE", "MAINRUN_SLOT_DIR")}
        self.env.update({"MAINRUN_NODE": node, "DVC_NO_ANALYTICS": "1", AUTO_DEVICE: device})
        self.times, self.procs, self.guard, self.lock = {}, [], None, None

    def make(self, origin: str, commit: str, overrides: list[str], train: str) -> None:
        """The clone at the commit, on the node's shared DVC cache, with the driver's overrides applied."""
        self.lock = hold(self.lock_path)
        self.step("clone", "git", "clone", "-q", "--no-checkout", origin, str(self.dir), cwd=self.root)
        self.step("clone", "git", "checkout", "-q", commit)
        with open(self.log, "a") as f:
            self.guard = Guard(f"the Ray task for {train}", detach=True, cwd=self.dir, stderr=f)
        self.step("clone", "dvc", "config", "--local", "cache.dir", str(self.root / "dvc-cache"))  # shared on the node
        self.step("clone", "dvc", "remote", "modify", "--local", self.remote, "verify", "true")  # a bad object re-runs
        if overrides:
            self.step("clone", sys.executable, "-c", "import sys; from dvc.utils.hydra import apply_overrides; "
                      "apply_overrides('params.yaml', sys.argv[1:])", *overrides)
        # the runs of these params, as the configure stage lists them: dvc.yaml makes a stage for each, this one's too
        self.step("clone", sys.executable, "-c", "from mainrun.configure import runs_on, write_run_list; "
                  "from mainrun.params import load_params; write_run_list(list(runs_on(load_params())), 'runs.yaml')")

    def run(self, train: str) -> bool:
        """Upstream from the run-cache, then the run; whether the train stage ran here (else it was restored)."""
        return f"Running stage '{train}'" in self.step("run", "dvc", "repro", "--pull", train)

    def push(self, train: str) -> None:
        self.step("push", "dvc", "push", "--run-cache", train)

    def step(self, name: str, *cmd, cwd=None) -> str:
        """One command, its output appended to the log and returned; a failure raises with its cause."""
        t0 = time.time()
        with open(self.log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            start = f.tell()
            kw = {"cwd": cwd or self.dir, "env": self.env, "stdout": f, "stderr": subprocess.STDOUT}
            p = self.guard.spawn(cmd, **kw) if self.guard else subprocess.Popen(cmd, start_new_session=True, **kw)
            self.procs.append(p)
            while p.poll() is None:  # not a blocking wait: ray.cancel's KeyboardInterrupt lands between sleeps
                time.sleep(0.2)
        self.times[name] = self.times.get(name, 0.0) + time.time() - t0
        with open(self.log) as f:
            f.seek(start)
            out = f.read()
        if p.returncode:
            what = f"push to the DVC remote '{self.remote}'" if name == "push" else " ".join(cmd[:4])
            raise RuntimeError(f"{what} failed: {cause(out)}")
        return out

    def note(self, line: str) -> None:
        with open(self.log, "a") as f:
            f.write(f"{line}\n")

    def cancel(self) -> None:
        """Ctrl-C for every step still running (a train stage saves a checkpoint), wait for them, then remove the
        clone: a cancelled run's checkpoint is never reused."""
        with interrupts_ignored():  # the driver repeats its cancel until the task ends: no repeat cuts this short
            self.note(f"cancelled at {time.strftime('%H:%M:%S')}: stopping {len(self.procs)} steps")
            if self.guard:
                self.guard.interrupt()
            for p in self.procs:
                if p.poll() is None:
                    if not self.guard:
                        os.killpg(p.pid, signal.SIGINT)
                    p.wait()
            self.let_go()
            if self.lock is not None:
                os.close(self.lock)
                self.lock = None
            clear_abandoned(self.root)

    def let_go(self) -> None:
        """The guard leaves, after stopping what is left of its group."""
        if self.guard:
            self.guard.close()

    def close(self, keep: bool) -> str:
        """Release the clone: removed with its log unless keep (a failed run's, for its log); its log's tail."""
        tail = self.log.read_text()[-4000:] if self.log.exists() else ""
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.log.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        if self.lock is not None:
            os.close(self.lock)
        return tail


@contextlib.contextmanager
def interrupts_ignored():
    """SIGINT ignored inside: ray.cancel's KeyboardInterrupt (interrupt_main) then does nothing."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: Ray runs tasks there, so only a test gets here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
