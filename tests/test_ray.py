"""`python -m mainrun.parallel --ray` against local runs, in a network namespace with only loopback: on a one-node
cluster of 2 CPUs (in CI) and on a 2-node one of 1 CPU each (opt-in: MAINRUN_RAY_CLUSTER=1); the faults that need no
cluster, and one task's body run without Ray."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from mainrun.runner.nodes import free_port, local_cluster
from shared_repo import VARIANTS, results, shared_repo
from stage_here import train_here
from tiny_repo import sh
from waiting import HANG_S  # waits are for events; this only turns a hang into a failure

pytestmark = pytest.mark.slow
# Ray's GCS server and raylets listen on every interface whatever --node-ip-address says (ray 2.60), so the cluster
# test runs in a network namespace of its own that has only loopback: nothing it starts is reachable from outside.
IN_LOOPBACK_NAMESPACE = os.environ.get("MAINRUN_RAY_NETNS") == "1"
# Runs that are only ever killed: 200 epochs of the tiny profile could end on their own under a slow test, and a run
# that ended is restored from the remote by the next driver (another epoch count, another run, for the next case).
NEVER_ENDS = 100_000


def in_loopback_namespace(test: str) -> None:
    """Run tests/test_ray.py::test in a network namespace of its own that has only loopback: as root, else in a user
    namespace of its own; skipped where neither can be made (e.g. an unprivileged container)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare and ip (util-linux, iproute2) to keep Ray on loopback")
    inner = (f"ip link set lo up && exec {sys.executable} -m pytest -q -n 0 -p no:cacheprovider "
             f"tests/test_ray.py::{test}")
    for flags in ("-n", "-rn"):
        p = subprocess.run(["unshare", flags, "sh", "-c", inner], cwd=os.path.dirname(os.path.dirname(__file__)),
                           env={**os.environ, "MAINRUN_RAY_NETNS": "1"}, capture_output=True, text=True)
        if not (p.returncode and "unshare failed" in p.stderr):
            break
    else:
        pytest.skip(f"cannot make a network namespace: {p.stderr.strip()}")
    print(p.stdout)
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout[-4000:] + p.stderr[-2000:]


@pytest.mark.skipif(IN_LOOPBACK_NAMESPACE, reason="this is the namespace")
@pytest.mark.skipif(os.environ.get("MAINRUN_RAY_CLUSTER") != "1",
                    reason="the 2-node cluster test takes 3-15 min on 2 cores: MAINRUN_RAY_CLUSTER=1 runs it")
def test_the_cluster_test_runs_where_only_loopback_exists():
    in_loopback_namespace("test_runs_over_two_ray_nodes_equal_a_local_run")


@pytest.mark.skipif(IN_LOOPBACK_NAMESPACE, reason="this is the namespace")
def test_the_one_node_test_runs_where_only_loopback_exists():
    """What CI runs of the --ray path: one node, two runs, a study switch submitted twice (docs/testing.md); skipped,
    saying why, where no network namespace can be made."""
    in_loopback_namespace("test_a_study_switched_on_twice_over_one_ray_node_equals_local_runs")


@pytest.fixture
def cluster(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    # each node its own disk for clones and DVC cache (MAINRUN_RAY_WORKDIR), as on separate machines
    nodes = [{"MAINRUN_RAY_WORKDIR": str(tmp_path / "head")}, {"MAINRUN_RAY_WORKDIR": str(tmp_path / "worker")}]
    with local_cluster(nodes, env, ceiling_s=HANG_S) as address:
        yield address


def until(condition, what: str):
    """Wait for an event (condition() true); only a hang, not load, reaches the ceiling."""
    deadline = time.time() + HANG_S
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"{what}: not after {HANG_S} s")
        time.sleep(0.2)


def trainers(under) -> list[int]:
    """The train stages' Python processes (not a shell or a pyenv shim on the way) in a clone under this folder."""
    found = []
    for d in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{d}/cmdline").read().split("\0") if d.isdigit() else []
            if os.path.basename(argv[0]).startswith("python") and "stages.train" in argv[1:3] and \
                    os.readlink(f"/proc/{d}/cwd").startswith(str(under)) and \
                    open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(d))
        except (OSError, IndexError):
            pass
    return found


def training(under) -> list[int]:
    """trainers(under) that got as far as their training loop (their dvclive folder exists)."""
    found = []
    for pid in trainers(under):
        try:
            if list(Path(os.readlink(f"/proc/{pid}/cwd")).glob("dvclive/*")):
                found.append(pid)
        except OSError:  # it just ended
            pass
    return found


def parent(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def ray_worker_of(pid: int) -> int:
    """The Ray worker process a trainer descends from (trainer <- sh <- dvc repro <- worker)."""
    while pid > 1:
        pid = parent(pid)
        if open(f"/proc/{pid}/cmdline").read().startswith("ray::"):
            return pid
    raise AssertionError("no Ray worker above the trainer")


@pytest.mark.skipif(not IN_LOOPBACK_NAMESPACE, reason="runs inside a loopback-only network namespace (above)")
def test_runs_over_two_ray_nodes_equal_a_local_run(tmp_path, cluster, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a Ray task with one CPU runs one thread: the local run does too
    local = shared_repo(tmp_path / "local")
    sh(local, "dvc", "repro")

    driver = shared_repo(tmp_path)
    committed = (driver / "params.yaml").read_text()
    cmd = [sys.executable, "-m", "mainrun.parallel", "--ray", cluster]
    first = sh(driver, *cmd)
    print(first)  # the costs line, for the docs
    lines = [line for line in first.splitlines() if line.strip().startswith(("done:", "restored:", "FAILED"))]
    assert sorted(line.split()[1] for line in lines) == sorted(f"train@{n}" for n in VARIANTS), first
    assert all(line.strip().startswith("done:") for line in lines), first  # each run trained, once
    final = first.rsplit("the final dvc repro ran: ", 1)[1].split(";")[0].split(", ")
    assert not [s for s in final if s.startswith("train@")], first  # all restored from the remote
    nodes = {json.loads((driver / "models" / n / "run.json").read_text())["execution"]["node"] for n in VARIANTS}
    assert len(nodes) == 2 and None not in nodes, nodes  # both nodes trained
    assert results(driver) == results(local)
    assert (driver / "reports" / "summary.json").exists()
    assert "Data and pipelines are up to date" in sh(driver, "dvc", "status")
    assert (driver / "params.yaml").read_text() == committed  # the device the runner chose is not written there
    assert "train.device auto means cpu here" in first and "8.8.8.8" not in first, first

    again = sh(driver, *cmd)  # nothing stale: no task, nothing trains
    print(again)
    assert "2/3 0 runs" in again and "the final dvc repro ran: nothing" in again, again

    failed = sh(driver, *cmd, "-S", "variants.r1_adamw.lr=1.5e30", check=False)  # diverges at once
    assert "1 run(s) failed: train@r1_adamw (dvc repro --pull train@r1_adamw failed: variant 'r1_adamw' " \
           "diverged" in failed, failed
    assert "2/3 1 runs" in failed  # only the changed run was submitted

    # a task's worker killed (a node lost): its trainer stops; Ray retries the run elsewhere and the line says so
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    long = subprocess.Popen([*cmd, "-S", f"train.epochs={NEVER_ENDS}"], cwd=driver, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    until(lambda: len(training(tmp_path)) == 2 or long.poll() is not None, "both runs training")
    assert long.poll() is None, long.communicate()[0]
    orphan = training(tmp_path)[0]
    os.kill(ray_worker_of(orphan), signal.SIGKILL)
    until(lambda: orphan not in trainers(tmp_path), "the killed task's trainer stops")
    until(lambda: len(trainers(tmp_path)) == 2 or long.poll() is not None, "the retry training")

    # Ctrl-C on the driver cancels the tasks: their trainers stop, the driver says so and ends
    os.kill(long.pid, signal.SIGINT)
    until(lambda: long.poll() is not None, "the driver ends after Ctrl-C")
    out = long.communicate()[0]
    assert long.returncode != 0 and "cancelling 2 runs" in out and "the cancelled runs stopped" in out, out
    assert "(raylet)" not in out, out  # Ray's own lines on the killed worker, muted (issue 36, fault 3)
    until(lambda: not trainers(tmp_path), "the cancelled runs' trainers stop")

    # the driver SIGKILLed: Ray ends its tasks, their guards their trainers
    long = subprocess.Popen([*cmd, "-S", f"train.epochs={NEVER_ENDS + 1}"], cwd=driver, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    until(lambda: training(tmp_path) or long.poll() is not None, "a run training")
    assert long.poll() is None, long.communicate()[0]
    os.killpg(long.pid, signal.SIGKILL)
    long.communicate()
    until(lambda: not trainers(tmp_path), "the killed driver's trainers stop")


def with_a_study_run(params):
    """One variant and one run of an opt-in study: two runs, the least a --ray comparison and a switch need."""
    params["variants"] = {"baseline": VARIANTS["baseline"],
                          "fail_adamw": {"from": "baseline", "study": "failed_attempts", **VARIANTS["r1_adamw"]}}
    params["alt_tokenizers"] = {}  # the study's tokenizers: not what is tested here


@pytest.mark.skipif(not IN_LOOPBACK_NAMESPACE, reason="runs inside a loopback-only network namespace (above)")
def test_a_study_switched_on_twice_over_one_ray_node_equals_local_runs(tmp_path, monkeypatch):
    """The --ray path end to end on one node: a study switched on with -S trains both runs over Ray; the same
    command again, with runs.yaml and dvc.lock rewritten and nothing committed between, submits nothing (issue 36,
    fault 1); the runs re-trained here, one thread each as on the node, equal them bit for bit (the train stage's
    main() in this process, tests/stage_here.py: the same code on the same configs as `dvc repro -f -s`)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a Ray task with one CPU runs one thread: the local runs do too
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    runs = ["baseline", "fail_adamw"]
    driver = shared_repo(tmp_path, edit=with_a_study_run)
    t0 = time.time()
    with local_cluster([{"MAINRUN_RAY_WORKDIR": str(tmp_path / "node")}], env, HANG_S, cpus=2) as address:
        print(f"cluster up in {time.time() - t0:.1f} s")  # -j 2: both runs at once, one CPU each
        cmd = [sys.executable, "-m", "mainrun.parallel", "--ray", address, "-j", "2", "-S",
               "studies.failed_attempts=true"]
        first = sh(driver, *cmd)
        print(first)
        assert "2/3 2 runs" in first and all(f"done: train@{n}" in first for n in runs), first
        changed = sh(driver, "git", "status", "--porcelain", "--untracked-files=no")
        assert "runs.yaml" in changed, changed  # what fault 1 took for the user's edit
        again = sh(driver, *cmd)
        print(again)
        assert "2/3 0 runs" in again and "the final dvc repro ran: nothing" in again, again
    for n in runs:  # trained on the node, not here
        assert json.loads((driver / "models" / n / "run.json").read_text())["execution"]["node"], n
    over_ray = results(driver, runs)
    t0 = time.time()
    train_here(driver, runs, tmp_path / "here")  # one thread, as on the node (OMP_NUM_THREADS above)
    print(f"local re-training {time.time() - t0:.1f} s")
    assert results(tmp_path / "here", runs) == over_ray


def test_faults_say_what_to_fix_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    repo = shared_repo(tmp_path)
    cmd = [sys.executable, "-m", "mainrun.parallel", "--ray", f"127.0.0.1:{free_port()}"]

    def error(*args):
        p = subprocess.run(cmd + list(args), cwd=repo, capture_output=True, text=True)
        assert p.returncode != 0
        return p.stderr.strip().splitlines()[-1]
    unreachable = error()
    assert "cannot reach the Ray cluster" in unreachable and "ray start --head" in unreachable
    bad = subprocess.run(cmd + ["-S", "variants.r1_adamw.epochs=3"], cwd=repo, capture_output=True, text=True)
    said = "error: -S variants.r1_adamw.epochs=3: params.yaml has no key variants.r1_adamw.epochs; to add it, write -S "
    assert bad.returncode == 1 and bad.stderr.startswith(said + "+variants.r1_adamw.epochs=3"), bad.stderr
    assert bad.stderr.count("\n") == 1, bad.stderr  # one line
    assert "r1_adamw:\n    optimizer" in (repo / "params.yaml").read_text()  # untouched, and before any cluster
    assert not sh(repo, "git", "status", "--porcelain", "--untracked-files=no")
    (repo / "README.md").write_text("an edit\n")
    assert "uncommitted changes in README.md" in error()
    sh(repo, "git", "commit", "-qam", "not pushed")
    not_pushed = error()
    assert "is not on origin" in not_pushed and "git push origin HEAD" in not_pushed
    sh(repo, "dvc", "remote", "default", "--unset")
    assert "no default DVC remote" in error()
    sh(repo, "git", "checkout", ".dvc/config")
    sh(repo, "git", "remote", "remove", "origin")
    assert "no git remote 'origin'" in error()


# one Ray task's body, without Ray: it is a plain function of its arguments
TASK = """
import json, sys
from mainrun.runner.task import run_task
print(json.dumps(run_task(*json.loads(sys.argv[1]))), flush=True)
"""


def test_a_task_ends_its_trainer_when_killed_and_names_a_failed_push(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    repo = shared_repo(tmp_path)
    sh(repo, "dvc", "repro", "configure", "code")  # what the driver does before it submits
    sh(repo, "dvc", "push", "--run-cache", "--with-deps", "configure", "code")
    origin, commit = str(tmp_path / "origin.git"), sh(repo, "git", "rev-parse", "HEAD").strip()
    node = tmp_path / "node"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAINRUN_RAY_WORKDIR": str(node), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}

    def task(overrides, train):
        args = json.dumps([origin, commit, overrides, train, "shared", "", None, "node-a"])
        return subprocess.Popen([sys.executable, "-c", TASK, args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                text=True, start_new_session=True)

    # killed mid-run (as Ray kills a worker: SIGKILL, and its children): nothing of the run is left training
    p = task([f"train.epochs={NEVER_ENDS}"], "train@baseline")
    until(lambda: training(node) or p.poll() is not None, "the task's trainer starts")
    assert p.poll() is None, p.communicate()[0]
    [trainer] = training(node)
    os.killpg(p.pid, signal.SIGKILL)  # the task and what Ray would kill with it (its dvc repro: another group)
    until(lambda: trainer not in trainers(node), "the killed task's trainer stops")
    [log] = (node / "mainrun-ray").glob("*.log")
    assert "mainrun guard: the Ray task for train@baseline ended; stopping its" in log.read_text()
    killed = log.stem

    # a push that fails names its cause in one line; the next task on the node removes the killed one's clone
    shutil.rmtree(tmp_path / "dvc-remote" / "files")
    (tmp_path / "dvc-remote" / "files").write_text("not a directory")
    out = task(["data.num_titles=590"], "configure").communicate()[0]
    r = json.loads(out.strip().splitlines()[-1])
    assert r["rc"] == 1 and r["error"] == "push to the DVC remote 'shared' failed: Not a directory", r
    assert [name for name, _ in r["cleared"]] == [killed] and not (node / "mainrun-ray" / killed).exists()
    assert Path(r["folder"]).is_dir()  # the failed run's clone stays, for its log
