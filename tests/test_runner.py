"""The runners' faults, each on its own, without training anything: the local runner's (issue 18, section 3), and
the Ray driver's and task's that need no cluster (issue 36: Ray stood in for where it is asked)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from mainrun import parallel, slots
from mainrun.runner import guard, local, repo
from waiting import HANG_S  # waits are for events; this only turns a hang into a failure

# a runner in miniature: the repo lock, the guard, and one run whose checkpoint on Ctrl-C lasts until `release` exists.
# The run is started as ./py (a link to this interpreter), so its script's newlines fall inside the guard's 60-character
# cut of its command line, whatever the interpreter's path.
RUNNER = """
import os, sys, time
from mainrun.runner import repo
repo.hold_repo()
os.symlink(sys.executable, "py")
run = repo.spawn(["./py", "-c", "\\nimport os, signal, sys, time\\n"
                  "def stop(*_):\\n    while not os.path.exists('release'): time.sleep(0.05)\\n    sys.exit(3)\\n"
                  "signal.signal(signal.SIGINT, stop)\\nprint('run', flush=True)\\ntime.sleep(600)"])
print(run.pid, flush=True)
time.sleep(600)
"""


def start_runner(repo: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines = [runner.stdout.readline().strip() for _ in range(2)]
    return runner, int(next(x for x in lines if x.isdigit()))


def gone(pid: int, within_s: float = HANG_S) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z":
            return True  # a zombie: it ended, its parent has not reaped it yet
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard reads its process group from /proc")
def test_runs_end_with_a_killed_runner_and_a_new_runner_says_they_are_ending(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner, run = start_runner(tmp_path)
    with pytest.raises(guard.Busy, match=rf"another mainrun.parallel \(pid {runner.pid}\) is already running"):
        guard.claim_repo()
    runner.kill()  # SIGKILL: no handler runs in the runner
    runner.wait()
    told = runner.stderr.readline()  # the guard says what it stops, and when it would kill it, in one line
    assert f"the runner (mainrun.parallel) ended; stopping its 1 processes at a checkpoint (Ctrl-C): {run} " \
           "./py -c  import os, signal, sys, time def stop(*_):" in told
    assert told.endswith("are killed\n")
    with pytest.raises(guard.Busy, match=r"still ending in this repo .* `kill -INT -- -\d+`"):
        guard.claim_repo()  # the run is checkpointing and still holds the repo's lock
    (tmp_path / "release").touch()
    assert gone(run), "the run outlived its runner"
    assert "processes ended" in runner.stderr.readline()
    deadline = time.time() + HANG_S
    while time.time() < deadline:  # the guard leaves once its group is empty
        try:
            os.close(guard.claim_repo())
            break
        except guard.Busy:
            time.sleep(0.1)
    else:
        pytest.fail("the repo stayed locked after the runs ended")


def test_a_dvc_command_working_in_the_repo_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    lock = {"read": {}, "write": {str(tmp_path / "metrics/data.json"): {"pid": os.getpid(), "cmd": "dvc repro -s x"}}}
    (tmp_path / ".dvc/tmp/rwlock").write_text(json.dumps(lock))
    with pytest.raises(guard.Busy, match=rf"pid {os.getpid()} \(dvc repro -s x\).*do not delete"):
        guard.claim_repo()
    lock["write"] = {"x": {"pid": 2 ** 22 + 1, "cmd": "dvc repro"}}  # a dead pid: DVC clears it itself
    (tmp_path / ".dvc/tmp/rwlock").write_text(json.dumps(lock))
    os.close(guard.claim_repo())


def test_a_slot_holder_is_named_in_one_line_whatever_its_arguments(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["-c", "import x\nx.run()\t# a script", "arg"])
    assert slots.holder() == f"pid {os.getpid()} -c import x x.run() # a script arg in {os.getcwd()}"


def test_a_run_waiting_for_a_slot_names_the_holder_on_the_terminal(tmp_path, monkeypatch, capsys):
    env = {**os.environ, slots.SLOT_DIR: str(tmp_path), slots.RUNS_PER_DEVICE: "1", "PYTHONPATH": str(ROOT)}
    claim = "from mainrun import slots; print(slots.claim('cpu', 1, poll_s=0.05).name, flush=True)"
    holder = subprocess.Popen([sys.executable, "-c", claim + "; import sys; sys.stdin.read()"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # holds until killed
    try:
        assert holder.stdout.readline().strip() == "cpu-0"
        log = tmp_path / "run.log"
        with open(log, "w") as f:
            waiter = subprocess.Popen([sys.executable, "-c", claim], env=env, stdout=f, stderr=subprocess.STDOUT)
            deadline = time.time() + HANG_S
            while "busy" not in log.read_text() and time.time() < deadline:
                time.sleep(0.05)
            seen = []

            def free_the_slot_once_told():  # the slot frees up after the runner said so on the terminal
                while not any("busy" in x for x in seen) and time.time() < deadline:
                    seen.append(capsys.readouterr().out)
                    time.sleep(0.05)
                holder.kill()
            threading.Thread(target=free_the_slot_once_told, daemon=True).start()
            assert repo._watch(waiter, log, 0, "train@x") == 0
        holder.wait()
        shown = "".join(seen) + capsys.readouterr().out
        assert f"train@x: all 1 cpu slots are busy (cpu-0: pid {holder.pid} " in shown
        assert "waiting for one to free up" in shown
    finally:
        holder.kill()


def test_restored_runs_say_so_and_switched_off_runs_are_not_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(local, "LOG_DIR", tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/fail_unigram.json").write_text(json.dumps({"name": "fail_unigram", "enabled": False}))
    (tmp_path / "configs/r1_adamw-seed7.json").write_text(json.dumps({"name": "r1_adamw-seed7", "enabled": True}))
    said = {"train@a": "Running stage 'train@a':\n", "train@b": "Stage 'train@b' is cached - skipping run\n"}

    def fake_dvc(*args, log=None):
        with open(log, "a") as f:
            f.write(said.get(args[-1], ""))
        return subprocess.CompletedProcess(args, 0)
    monkeypatch.setattr(local, "dvc", fake_dvc)
    for train in ["train@a", "train@b", "train@fail_unigram"]:
        local.run_one(train)
    out = capsys.readouterr().out
    assert "done: train@a" in out and "restored: train@b" in out and "fail_unigram" not in out
    assert not local.enabled("train@fail_unigram") and local.enabled("train@r1_adamw-seed7")


@pytest.mark.parametrize("edited", [True, False])
def test_params_edited_mid_run_reruns_the_stale_runs_n_at_a_time(tmp_path, monkeypatch, capsys, edited):
    """An edit during the runs: a second round for what is stale again. No edit: no second look (the final dvc repro
    takes anything else)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("lr: 1\n")
    monkeypatch.setattr(local, "LOG_DIR", tmp_path / "logs")
    rounds = [["train@a", "train@b"], ["train@b"], []]
    monkeypatch.setattr(local, "stale_runs", lambda: rounds.pop(0))
    monkeypatch.setattr(local, "upstream", lambda: None)
    monkeypatch.setattr(local, "devices", lambda: 1)
    monkeypatch.setenv(slots.RUNS_PER_DEVICE, "1")  # main() sets it: recorded here so it does not outlive this test, or
    # every later in-process train() on this worker claims a slot it never frees, until one waits forever
    ran = []

    def run_one(train):
        if edited and not ran:
            (tmp_path / "params.yaml").write_text("lr: 2\n")  # the user edits params.yaml during the first run
        ran.append(train)
        return train, 0, 0.0, tmp_path
    monkeypatch.setattr(local, "run_one", run_one)

    def fake_dvc(*args, log=None):
        Path(log).write_text("")
        return subprocess.CompletedProcess(args, 0)
    monkeypatch.setattr(local, "dvc", fake_dvc)
    monkeypatch.setattr(repo, "dvc", fake_dvc)  # the final dvc repro (repo.final_repro)
    monkeypatch.setattr(repo, "LOG_DIR", tmp_path / "logs")
    try:
        assert parallel.main(["-j", "2"]) == 0
    finally:
        repo.release_repo()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out = capsys.readouterr().out
    if edited:
        assert ran == ["train@a", "train@b", "train@b"] and "1 stale again, running them too" in out
    else:
        assert ran == ["train@a", "train@b"] and "stale again" not in out and rounds == [["train@b"], []]
    assert "the final dvc repro ran: nothing" in out


def test_dvc_busy_upstream_names_the_process_not_a_failed_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(repo, "LOG_DIR", tmp_path)
    said = ("ERROR: 'metrics/data.json' is busy, it is being blocked by:\n  (PID 4242): dvc repro --pull\n\n"
            "If there are no processes with such PIDs, you can manually remove '.dvc/tmp/rwlock' and try again.\n")

    def fake_dvc(*args, log=None):
        Path(log).write_text(said)
        return subprocess.CompletedProcess(args, 1)
    monkeypatch.setattr(repo, "dvc", fake_dvc)
    with pytest.raises(SystemExit, match=r"^error: DVC is already working in this repo: pid 4242 \(dvc repro --pull\) "
                                         r"holds metrics/data.json; wait for it, or stop it with `kill -INT 4242`$"):
        repo.upstream()


# the Ray driver in miniature: its lock and guard (cluster.main), then its final `dvc repro --pull`, here a stand-in
# `dvc` on PATH that writes its pid and, on Ctrl-C, stops once the file `release` exists
DRIVER = """
from pathlib import Path
from mainrun.runner import cluster, repo
cluster.drive = lambda *args: repo.dvc("repro", "--pull", log=Path("final.log"))
cluster.main("127.0.0.1:1", 1, [])
"""
FAKE_DVC = """#!{python}
import os, signal, sys, time
def stop(*_):  # a checkpoint that takes until the test has looked
    while not os.path.exists("release"):
        time.sleep(0.05)
    sys.exit(3)
signal.signal(signal.SIGINT, stop)
open("collector.pid", "w").write(str(os.getpid()))
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard reads the process group from /proc")
def test_a_killed_ray_drivers_collector_ends_with_it(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dvc").write_text(FAKE_DVC.format(python=sys.executable))
    (bin_dir / "dvc").chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    pid_file, deadline = tmp_path / "collector.pid", time.time() + HANG_S
    while not (pid_file.exists() and pid_file.read_text()) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, driver.stderr.read()
    collector = int(pid_file.read_text())
    driver.kill()  # SIGKILL, as in the fault trial
    driver.wait()
    assert "stopping its 1 processes" in driver.stderr.readline()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(guard.Busy, match="still ending in this repo"):  # named, in one line, while it stops
        guard.claim_repo()
    (tmp_path / "release").touch()
    assert gone(collector), "the collector outlived its driver"


def test_the_ray_drivers_device_choice_stays_out_of_params_yaml(tmp_path, monkeypatch):
    from mainrun import configure
    from mainrun.runner import cluster
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cluster, "LOG_DIR", tmp_path / "logs")
    (tmp_path / "params.yaml").write_text("train:\n  device: auto\n  lr: 0.1\n")
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "params.yaml"], [*who, "commit", "-qm", "p"]):
        subprocess.run(["git", *cmd], check=True)

    class Cluster:  # what auto_device asks of Ray
        def __init__(self, gpus):
            self.gpus = gpus

        def cluster_resources(self):
            return {"CPU": 4, "GPU": self.gpus} if self.gpus else {"CPU": 4}
    assert cluster.auto_device(Cluster(2), []) == "cuda" and cluster.auto_device(Cluster(0), []) == "cpu"
    assert cluster.auto_device(Cluster(2), ["train.device=cpu"]) is None  # the user chose
    written = cluster.params_with(["train.lr=0.2"])  # the commit's params.yaml with the user's overrides only
    assert "device: auto" in written and "lr: 0.2" in written
    monkeypatch.setenv(configure.AUTO_DEVICE, "cuda")  # what the driver sets for configure
    assert configure.cuda_visible()
    monkeypatch.setenv(configure.AUTO_DEVICE, "cpu")
    assert not configure.cuda_visible()


def test_configure_says_what_torch_says_of_cuda_and_imports_torch_only_where_a_gpu_driver_is():
    asked = ("import sys, json; from mainrun import configure; seen = configure.cuda_visible(); "
             "print(json.dumps([seen, configure.gpu_driver(), 'torch' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k != "MAINRUN_AUTO_DEVICE"}
    out = subprocess.run([sys.executable, "-c", asked], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    seen, driver, imported = json.loads(out.stdout)
    import torch  # imported here already (conftest): what torch says, without a process importing it again
    assert seen == torch.cuda.is_available()
    assert imported == driver or sys.platform != "linux"


def test_a_retried_runs_line_says_so():
    from mainrun.runner.cluster import line
    r = {"train": "train@a", "rc": 0, "ran": True, "node": "bbbbbbbbbbbb", "times": {"run": 30.0}, "error": ""}
    assert line(r, ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]).strip() == \
        "done: train@a on node bbbbbbbb, try 2: the earlier on node aaaaaaaa lost its worker (30 s: run 30)"
    assert "try" not in line(r, ["bbbbbbbbbbbb"])


def test_a_cancel_lost_between_two_tries_is_sent_again(monkeypatch, capsys):
    """Ctrl-C under Ray: a run whose first cancel reached nothing (its task between two tries) still stops."""
    from mainrun.runner import cluster
    monkeypatch.setattr(cluster, "RECANCEL_S", 0)

    class Ray:  # the retry of "b" only hears the second cancel sent to it
        cancels = {"a": 0, "b": 0}

        def cancel(self, ref, force=False):
            assert not force
            self.cancels[ref] += 1

        waits = 0

        def wait(self, refs, num_returns, timeout):
            self.waits += 1
            assert self.waits < 100, "the lost cancel was never sent again: the driver would wait forever"
            return [r for r in refs if self.cancels[r] >= {"a": 1, "b": 2}[r]][:num_returns], []
    ray = Ray()
    cluster.cancel(ray, {"a": "train@a", "b": "train@b"})
    out = capsys.readouterr().out
    assert "stopped: train@a" in out and "stopped: train@b" in out and ray.cancels["b"] >= 2


def test_a_stopping_task_ignores_repeated_cancels():
    """ray.cancel raises KeyboardInterrupt in the task through _thread.interrupt_main: while a cancelled task stops
    its run, the driver's repeats must not cut the stop short."""
    import _thread
    from mainrun.runner.task import interrupts_ignored
    before = signal.getsignal(signal.SIGINT)
    with interrupts_ignored():
        _thread.interrupt_main()  # what a repeated ray.cancel does
        for _ in range(1000):  # bytecode boundaries, where a pending interrupt would be raised
            pass
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):  # outside, a cancel still lands
        _thread.interrupt_main()
        for _ in range(1000):
            pass


def test_a_submission_over_ray_may_leave_the_files_it_derives_uncommitted(tmp_path, monkeypatch):
    """Issue 36, fault 1: a study switched on over --ray rewrites runs.yaml (configure), as -S does params.yaml and the
    final repro dvc.lock; the next --ray call must not take them for the user's edits."""
    from mainrun.runner import cluster
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for name in ("params.yaml", "runs.yaml", "dvc.lock", "README.md"):
        Path(name).write_text("committed\n")
    for cmd in (["init", "-q"], ["add", "-A"], [*who, "commit", "-qm", "c"],
                ["remote", "add", "origin", "../origin.git"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *cmd], check=True)
    for name in cluster.DERIVED:
        Path(name).write_text("what the last submission made of it\n")
    url, commit = cluster.origin_and_commit()
    assert url == str(tmp_path / "origin.git") and len(commit) == 40
    Path("README.md").write_text("an edit\n")  # the user's own edit still stops it
    with pytest.raises(cluster.Fault, match="uncommitted changes in README.md"):
        cluster.origin_and_commit()


@pytest.mark.parametrize("override, named", [
    ("variants.r1_adamw.epochs=3", "params.yaml has no key variants.r1_adamw.epochs; to add it, write "
                                   "-S +variants.r1_adamw.epochs=3"),
    ("~train.nokey", "-S ~train.nokey: Could not delete from config. 'train.nokey' does not exist."),
    ("train.lr=[1", "-S train.lr=[1: no viable alternative at input '[1'")])
def test_a_bad_override_names_itself_and_the_fix_and_changes_nothing(tmp_path, override, named):
    """Issue 36, fault 2: the runner's -S fails as one line (DVC's InvalidArgumentError buries Hydra's hint)."""
    params = tmp_path / "params.yaml"
    params.write_text("variants:\n  r1_adamw:\n    lr: 1\ntrain:\n  lr: 2\n")
    before = params.read_text()
    with pytest.raises(parallel.MainrunError) as e:
        repo.apply_overrides(["train.lr=5", override], str(params))  # the good one before it is not applied either
    assert named in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert params.read_text() == before
    repo.apply_overrides(["train.lr=5", "+variants.r1_adamw.epochs=3"], str(params))
    assert "lr: 5" in params.read_text() and "epochs: 3" in params.read_text()


def test_the_local_runner_says_a_bad_override_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("variants:\n  r1_adamw:\n    lr: 1\n")
    p = subprocess.run([sys.executable, "-m", "mainrun.parallel", "-S", "variants.r1_adamw.epochs=3"], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "", p.stdout
    assert p.stderr == "error: -S variants.r1_adamw.epochs=3: params.yaml has no key variants.r1_adamw.epochs; to " \
                       f"add it, write -S +variants.r1_adamw.epochs=3 (Hydra's grammar: {repo.GRAMMAR})\n", p.stderr


def test_the_clusters_raylet_messages_stay_out_of_the_drivers_output(capsys, monkeypatch):
    """Issue 36, fault 3: what Ray's error listener prints on the driver when a node dies, `(raylet) ...`."""
    import ray
    from mainrun.runner import cluster
    published = {"lines": ["A worker died or was killed while executing a task"], "pid": "raylet", "is_err": False}
    saved = ray._private.worker._worker_logs_enabled
    monkeypatch.setattr(ray, "init", lambda **kw: None)  # connected
    try:
        ray._private.worker.print_to_stdstream(published, ignore_prefix=False)
        assert "(raylet)" in capsys.readouterr().out  # what leaked: the listener thread prints this way
        cluster.connect("auto")
        published["lines"] = ["The node with node id: 1c2d has been marked dead"]  # another: Ray drops repeats
        ray._private.worker.print_to_stdstream(published, ignore_prefix=False)
        assert capsys.readouterr() == ("", "")
    finally:
        ray._private.worker._worker_logs_enabled = saved


class Actor:
    """A Ray actor handle on a plain object: handle.method.remote(*args) is the call, Ray.get runs it."""

    def __init__(self, obj, dead=False):
        self.obj, self.dead = obj, dead

    def __getattr__(self, method):
        return type("Method", (), {"remote": lambda _, *args: (self, method, args)})()


class Ray:
    """What collect() and cancel() ask of Ray, for tasks that have ended (results by ref)."""

    def __init__(self, results):
        self.results = results

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if isinstance(ref, tuple):
            actor, method, args = ref
            if actor.dead:
                raise RuntimeError("ActorDiedError: the actor died unexpectedly")  # what Ray raises, by version
            return getattr(actor.obj, method)(*args)
        return self.results[ref]

    def cancel(self, ref, force=False):
        pass


def result(train, node="node-bbbbbbbb"):
    return {"train": train, "rc": 0, "error": "", "node": node, "ran": True, "times": {"run": 3.0}, "log": "",
            "folder": "/x", "cleared": []}


def test_a_removed_clone_is_reported_when_the_task_that_removed_it_is_cancelled(capsys):
    """Issue 36, fault 4: the task tells the Attempts actor what it removed as it starts; a cancelled task returns
    nothing, so the driver reads it there."""
    from mainrun.runner import cluster
    from mainrun.runner.task import Attempts
    attempts = Attempts()
    attempts.start("train@a", "node-aaaaaaaa", [("c0ffee-train-a-123abc", 3_300_000)])
    cluster.cancel(Ray({}), {"ref-a": "train@a"}, Actor(attempts))
    out = capsys.readouterr().out
    assert "stopped: train@a" in out
    assert "removed an abandoned clone on node node-aaa: c0ffee-train-a-123abc (3.3 MB)" in out, out
    attempts.start("train@b", "node-bbbbbbbb", [("old-clone", 1_000_000)])  # a finished task: said once, not twice
    cluster.collect(Ray({"ref-b": result("train@b")}), {"ref-b": "train@b"}, Actor(attempts))
    out = capsys.readouterr().out
    assert out.count("removed an abandoned clone") == 2 and "old-clone (1.0 MB)" in out, out


def test_a_task_tells_the_driver_what_it_removed_before_it_can_be_cancelled(tmp_path, monkeypatch):
    from mainrun.runner import task
    monkeypatch.setenv(task.WORKDIR, str(tmp_path))
    root = tmp_path / "mainrun-ray"
    (root / "old-clone").mkdir(parents=True)
    (root / "old-clone" / "model").write_bytes(b"x" * 1000)
    (root / "old-clone.lock").touch()  # its task was killed: nobody holds the lock
    told = []

    class Told(Actor):  # the task does not wait for the actor: it would give up its CPUs meanwhile (Ray's rule)
        def __getattr__(self, method):
            return type("Method", (), {"remote": lambda _, *args: told.append((self, method, args))})()

    def cancelled(*_):  # ray.cancel lands while the clone is made
        raise KeyboardInterrupt
    monkeypatch.setattr(task.Clone, "make", cancelled)
    attempts = task.Attempts()
    with pytest.raises(KeyboardInterrupt):
        task.run_task("origin", "c0ffee" * 7, [], "train@a", "shared", "", Told(attempts), "node-a")
    for call in told:
        Ray({}).get(call)
    assert attempts.removed() == [("node-a", "old-clone", 1000)] and not (root / "old-clone").exists()


def test_the_drivers_lines_survive_a_dead_attempts_actor(capsys):
    """Issue 36, fault 5: the actor's node lost (it lives on the driver's; killed, say): the runs' lines still come,
    each on its own node, and no traceback."""
    from mainrun.runner import cluster
    from mainrun.runner.task import Attempts
    results, seen = cluster.collect(Ray({"ref-a": result("train@a")}), {"ref-a": "train@a"},
                                    Actor(Attempts(), dead=True))
    assert [r["train"] for r in results] == ["train@a"] and seen == {"node-bbbbbbbb"}
    assert "done: train@a on node node-bbb (3 s: run 3)" in capsys.readouterr().out


def test_the_attempts_actor_is_pinned_to_the_drivers_node():
    from mainrun.runner import cluster

    class Ray:
        def get_runtime_context(self):
            return type("Context", (), {"get_node_id": lambda _: "d1" * 28})()

        def remote(self, **options):
            self.options = options
            return lambda cls: type("Class", (), {"remote": lambda _: cls()})()
    ray = Ray()
    assert isinstance(cluster.attempts_actor(ray), cluster.Attempts)
    placed = ray.options["scheduling_strategy"]
    assert placed.node_id == "d1" * 28 and placed.soft is False and ray.options["num_cpus"] == 0
