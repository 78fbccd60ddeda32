"""One runner per repo, and runs that end with whoever started them, however it ends.

A guard process leads the runs' process group. It waits for end-of-file on its stdin, a pipe whose write end only
its starter holds: the kernel closes that end when the starter exits or dies (SIGKILL, a Ray worker killed with its
node), so the guard then Ctrl-Cs what is left in its group (a train stage saves a checkpoint) and kills what is
still there after the grace period, saying so on its stderr. The runner and each Ray task start one.
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUNNER_LOCK = Path(".dvc/tmp/mainrun-runner.lock")  # held by the runner, its guard and its runs
GRACE_S = 60.0  # what a run gets to checkpoint after its starter died, before SIGKILL
# a Ray worker's children die with it (SIGKILL): a guard for a Ray task is started one step removed
DETACH = ("import os, subprocess, sys; print(subprocess.Popen(sys.argv[1:], preexec_fn=os.setpgrp, "
          "stdout=subprocess.DEVNULL).pid, flush=True)")


class Busy(Exception):
    """Something else is working in this repo; the message says what and how to stop it."""


class Guard:
    """A guard process and its process group, which the processes started by spawn() join."""

    def __init__(self, label: str, pass_fds=(), detach=False, cwd=None, stderr=None):
        read, self._write = os.pipe()
        env = dict(os.environ)
        if cwd is None:  # this very mainrun; a Ray task's guard runs its clone's (cwd: python -m looks there)
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        cmd = [sys.executable, "-m", "mainrun.runner.guard", label]
        if detach:
            p = subprocess.Popen([sys.executable, "-c", DETACH, *cmd], stdin=read, stdout=subprocess.PIPE, env=env,
                                 cwd=cwd, stderr=stderr, pass_fds=pass_fds, text=True)
            self.pgid, self.proc = int(p.stdout.readline()), None
            p.wait()
        else:
            join = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
            self.proc = subprocess.Popen(cmd, stdin=read, env=env, cwd=cwd, stderr=stderr, pass_fds=pass_fds, **join)
            self.pgid = self.proc.pid
        os.close(read)
        self.fds = tuple(pass_fds)

    def spawn(self, cmd, **kw) -> subprocess.Popen:
        """A child in the guard's process group (interrupt() and the guard reach it), holding the runner lock."""
        join = {"process_group": self.pgid} if sys.version_info >= (3, 11) else \
            {"preexec_fn": lambda: os.setpgid(0, self.pgid)}
        return subprocess.Popen(cmd, pass_fds=self.fds, **join, **kw)

    def interrupt(self) -> None:
        """Ctrl-C for every process of the group (the guard ignores it): a train stage stops at a checkpoint."""
        try:
            os.killpg(self.pgid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Let the guard go: it stops what is left of the group, then leaves (and with it the lock it holds)."""
        if self._write is not None:
            os.close(self._write)
            self._write = None
        if self.proc is not None:
            self.proc.wait()


def group_members(pgid: int) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    found.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def name(pid: int) -> str:
    """A process's command line, cut short, on one line: its arguments may hold newlines or other control bytes."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return "".join(" " if c < " " or c == "\x7f" else c for c in raw.decode(errors="replace"))[:60].strip()


def watch(label: str, grace_s: float = GRACE_S) -> None:
    """The guard: wait for its starter to go, then stop what is left of its group, saying what and when."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the runs is not for the guard
    sys.stdin.buffer.read()  # end-of-file: the starter closed the pipe, or died
    left = group_members(os.getpid())
    if not left:
        return
    kill_at = time.strftime("%H:%M:%S", time.localtime(time.time() + grace_s))
    print(f"mainrun guard: {label} ended; stopping its {len(left)} processes at a checkpoint (Ctrl-C): "
          f"{', '.join(f'{pid} {name(pid)}' for pid in left[:4])}; any left at {kill_at} ({grace_s:.0f} s) are "
          "killed", file=sys.stderr, flush=True)
    os.killpg(os.getpid(), signal.SIGINT)
    deadline = time.time() + grace_s
    while group_members(os.getpid()) and time.time() < deadline:
        time.sleep(0.2)
    left = group_members(os.getpid())
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    print(f"mainrun guard: {label}'s processes ended" + (f" ({len(left)} killed)" if left else ""), file=sys.stderr,
          flush=True)


def dvc_busy(pid, cmd: str, path: str) -> str:
    """One line for a DVC process that holds a path of this repo: what it is, and how to wait or stop it."""
    return f"DVC is already working in this repo: pid {pid} ({cmd}) holds {path}; wait for it, or stop it with " \
           f"`kill -INT {pid}`"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _rwlock() -> dict:
    try:
        return json.loads(Path(".dvc/tmp/rwlock").read_text())
    except (OSError, ValueError):
        return {}


def claim_repo() -> int:
    """Take this repo's runner lock (an open fd the runs inherit), or raise Busy naming what holds it."""
    RUNNER_LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUNNER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        pid, pgid = holder.get("pid"), holder.get("pgid")
        if pid and _alive(pid):
            raise Busy(f"another mainrun.parallel (pid {pid}) is already running in this repo; wait for it, or stop "
                       f"it with `kill -INT {pid}`") from None
        raise Busy(f"the runs of an earlier mainrun.parallel (pid {pid}, gone) are still ending in this repo and hold "
                   f"its locks; wait for them, or stop them with `kill -INT -- -{pgid}`") from None
    for mode, entries in _rwlock().items():  # a plain `dvc repro`, or runs orphaned by an older runner
        for path, infos in entries.items():
            for info in infos if isinstance(infos, list) else [infos]:
                if _alive(info["pid"]):
                    os.close(fd)
                    raise Busy(dvc_busy(info["pid"], info["cmd"], path)
                               + " (do not delete .dvc/tmp/rwlock while it runs)")
    return fd


def guard_repo(lock_fd: int) -> Guard:
    """The runner's guard, holding the repo lock with the runs; its pid is written into the lock for claim_repo."""
    g = Guard("the runner (mainrun.parallel)", pass_fds=(lock_fd,))
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, json.dumps({"pid": os.getpid(), "pgid": g.pgid}).encode(), 0)
    return g


if __name__ == "__main__":
    watch(" ".join(sys.argv[1:]) or "its starter")
