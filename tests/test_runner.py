"""The local runner's faults (issue 18, section 3), each on its own, without training anything."""
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
    assert not local.enabled("train@fail_unigram") and local.enabled("train_seed@r1_adamw-7")


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
    torch_says = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                                capture_output=True, text=True, check=True).stdout.strip()
    assert seen == (torch_says == "True")
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
