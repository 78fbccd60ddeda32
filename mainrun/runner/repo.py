"""What every runner does in the repo: DVC calls (in the guard's process group), the stale runs, params overrides
and the upstream stages."""
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config import MainrunError
from ..configure import read_run_list
from .guard import Busy, Guard, claim_repo, dvc_busy, guard_repo

LOG_DIR = Path(".dvc/tmp/mainrun-logs")
children: list[subprocess.Popen] = []  # what dvc() started, for the runner's Ctrl-C
_held: dict = {"guard": None}


def hold_repo() -> Guard:
    """This repo's runner lock and a guard for what the runner starts; one line and exit 1 if the repo is busy."""
    try:
        lock_fd = claim_repo()
    except Busy as e:
        sys.exit(f"error: {e}")
    _held["guard"] = guard_repo(lock_fd)
    return _held["guard"]


def interrupt() -> None:
    """Ctrl-C for what the runner started (it is in the guard's process group), when it holds the repo."""
    if _held["guard"] is not None:
        _held["guard"].interrupt()


def release_repo() -> None:
    if _held["guard"] is not None:
        _held["guard"].close()
        _held["guard"] = None


def spawn(cmd, **kw) -> subprocess.Popen:
    """A child that ends with the runner: in its guard's group when it holds the repo, else in a session of its own."""
    g = _held["guard"]
    return g.spawn(cmd, **kw) if g else subprocess.Popen(cmd, start_new_session=True, **kw)


def dvc(*args, log=None) -> subprocess.CompletedProcess:
    """`dvc --wait-for-lock ARGS`: output captured, or appended to log (then a run waiting for a device slot says
    so on the terminal, named after the last argument, its stage)."""
    cmd = ["dvc", "--wait-for-lock", *args]
    if log is None:
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(p)
        out, err = p.communicate()
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)
    with open(log, "a") as f:
        start = f.tell()
        p = spawn(cmd, stdout=f, stderr=subprocess.STDOUT)
        children.append(p)
        return subprocess.CompletedProcess(cmd, _watch(p, log, start, args[-1]))


def _watch(p: subprocess.Popen, log: Path, start: int, name: str) -> int:
    """Wait for p; a run waiting for a device slot says so on the terminal, not only in its log."""
    told = False
    while True:
        try:
            return p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            if told:
                continue
            with open(log) as f:
                f.seek(start)
                waiting = [line for line in f if "slots are busy" in line]
            if waiting:
                print(f"  {name}: {waiting[0].strip()}", flush=True)
                told = True


def run_names(stage: str) -> str:
    """train@r1_adamw-seed1338 -> r1_adamw-seed1338 (its configs/<run>.json)."""
    return stage.partition("@")[2]


def enabled(stage: str) -> bool:
    try:
        return json.loads(Path("configs", f"{run_names(stage)}.json").read_text()).get("enabled", True)
    except (OSError, ValueError):
        return True


def stale_runs() -> list[str]:
    """The stale train stages (`train@run`; each evaluates its run too), in dvc.yaml's order: runs.yaml's, which
    dvc.yaml makes them from (read here, not asked of `dvc stage list`: a DVC process less, 1.3 s)."""
    names = [f"train@{run}" for run in read_run_list()]
    status = dvc("status", "--json")
    stale = set(re.findall(r'"([^"]+)":', status.stdout)) if status.returncode == 0 else set(names)
    return [n for n in names if n in stale]


def inputs_seen() -> tuple:
    """What could make more runs stale while they train, by size and mtime: params.yaml, dvc.yaml, runs.yaml and the
    code. Unchanged after a round: no second round (the final `dvc repro` takes whatever else is stale)."""
    paths = [Path(p) for p in ("params.yaml", "dvc.yaml", "runs.yaml")]
    paths += [p for folder in ("mainrun", "stages") for p in Path(folder).rglob("*.py")]
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(paths) if p.exists())


GRAMMAR = "key=value changes a key, +key=value adds one, ++key=value sets it either way, ~key deletes it"


def apply_overrides(overrides: list[str], path="params.yaml") -> None:
    """`dvc exp run -S`'s Hydra overrides, applied to path as DVC applies them; a bad one raises MainrunError naming
    it and the fix (DVC's own error buries Hydra's hint in a traceback), and leaves path as it was."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides as apply  # what `dvc exp run -S` uses
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp, Path(path).name)
        shutil.copyfile(path, trial)
        try:
            apply(str(trial), overrides)
        except InvalidArgumentError:  # which one: each on its own, in order
            for override in overrides:
                try:
                    apply(str(trial), [override])
                except InvalidArgumentError as e:
                    raise MainrunError(bad_override(override, e.__cause__ or e)) from None
            raise
        shutil.copyfile(trial, path)


def bad_override(override: str, why: Exception) -> str:
    """One line for an override Hydra rejects: the key, and the fix (a key params.yaml lacks needs `+`)."""
    key = override.split("=", 1)[0]
    if "To append to your config use" in str(why):
        return (f"-S {override}: params.yaml has no key {key}; to add it, write -S +{override} "
                f"(Hydra's grammar: {GRAMMAR})")
    reason = " ".join(str(why).split("\n")[0].split()) or type(why).__name__
    return f"-S {override}: {reason} (Hydra's grammar: {GRAMMAR})"


def busy_in(log: str) -> str | None:
    """DVC's 'X is busy, it is being blocked by: (PID n): cmd' in a log, as one line naming the process."""
    m = re.search(r"'([^']+)' is busy, it is being blocked by:\s*\(PID (\d+)\): ([^\n]*)", log)
    return dvc_busy(m[2], m[3].strip(), m[1]) if m else None


def final_repro(*args) -> list[str]:
    """The runner's last `dvc repro ARGS` (logged to final.log): the stages it ran; one line and exit 1 if it fails."""
    log = LOG_DIR / "final.log"
    log.unlink(missing_ok=True)
    if dvc("repro", *args, log=log).returncode:
        sys.exit(f"error: the final {' '.join(['dvc repro', *args])} failed; see {log}")
    return re.findall(r"Running stage '([^']+)'", log.read_text())


UPSTREAM = ("configure", "code")  # what every train stage reads: the run configs, the train code's digests


def upstream() -> None:
    log = LOG_DIR / "upstream.log"
    log.unlink(missing_ok=True)
    if dvc("repro", *UPSTREAM, log=log).returncode:
        text = log.read_text()
        if busy_in(text):  # another DVC process, not a failing stage
            sys.exit(f"error: {busy_in(text)}")
        print(text[-3000:], file=sys.stderr)
        sys.exit("error: the upstream stages failed (log above)")
