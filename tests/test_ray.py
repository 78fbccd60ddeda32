"""`python -m mainrun.parallel --ray` on a 2-node Ray cluster on loopback (one CPU each), against a local run."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from shared_repo import VARIANTS, results, shared_repo
from tiny_repo import sh

pytestmark = pytest.mark.slow
NODE = ["ray", "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
# Ray's GCS server and raylets listen on every interface whatever --node-ip-address says (ray 2.60), so the cluster
# test runs in a network namespace of its own that has only loopback: nothing it starts is reachable from outside.
IN_LOOPBACK_NAMESPACE = os.environ.get("MAINRUN_RAY_NETNS") == "1"


@pytest.mark.skipif(IN_LOOPBACK_NAMESPACE, reason="this is the namespace")
def test_the_cluster_test_runs_where_only_loopback_exists():
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare and ip (util-linux, iproute2) to keep Ray on loopback")
    inner = (f"ip link set lo up && exec {sys.executable} -m pytest -q -n 0 -p no:cacheprovider "
             "tests/test_ray.py::test_runs_over_two_ray_nodes_equal_a_local_run")
    p = subprocess.run(["unshare", "-n", "sh", "-c", inner], cwd=os.path.dirname(os.path.dirname(__file__)),
                       env={**os.environ, "MAINRUN_RAY_NETNS": "1"}, capture_output=True, text=True)
    if p.returncode and "unshare failed" in p.stderr:  # no right to make a namespace (e.g. an unprivileged container)
        pytest.skip(f"cannot make a network namespace: {p.stderr.strip()}")
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout[-4000:] + p.stderr[-2000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(procs):
    """End the Ray nodes this test started: their process groups, SIGTERM then SIGKILL."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def cluster(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    port, temp = free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    quiet = {"start_new_session": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = []
    try:  # each node its own disk for clones and DVC cache (MAINRUN_RAY_WORKDIR), as on separate machines
        procs.append(subprocess.Popen([*NODE, "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={temp}"], env={**env, "MAINRUN_RAY_WORKDIR": str(tmp_path / "head")},
                                      **quiet))
        procs.append(subprocess.Popen([*NODE, f"--address=127.0.0.1:{port}"],
                                      env={**env, "MAINRUN_RAY_WORKDIR": str(tmp_path / "worker")}, **quiet))
        count = ("import ray; ray.init(address='127.0.0.1:%d', logging_level='ERROR'); "
                 "print(sum(n['Alive'] for n in ray.nodes()))" % port)
        deadline = time.time() + 240
        while time.time() < deadline:
            p = subprocess.run([sys.executable, "-c", count], env=env, capture_output=True, text=True)
            if p.stdout.strip() == "2":
                break
            time.sleep(1)
        else:
            pytest.fail("the 2-node Ray cluster did not come up in 240 s")
        yield f"127.0.0.1:{port}"
    finally:
        stop(procs)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.skipif(not IN_LOOPBACK_NAMESPACE, reason="runs inside a loopback-only network namespace (above)")
def test_runs_over_two_ray_nodes_equal_a_local_run(tmp_path, cluster, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a Ray task with one CPU runs one thread: the local run does too
    local = shared_repo(tmp_path / "local")
    sh(local, "dvc", "repro")

    driver = shared_repo(tmp_path)
    cmd = [sys.executable, "-m", "mainrun.parallel", "--ray", cluster]
    first = sh(driver, *cmd)
    print(first)  # the costs line, for the docs
    lines = [line for line in first.splitlines() if line.strip().startswith(("done:", "restored:", "FAILED"))]
    assert sorted(line.split()[1] for line in lines) == sorted(f"train@{n}" for n in VARIANTS), first
    assert all(line.strip().startswith("done:") for line in lines), first  # each run trained, once
    final = first.rsplit("the final dvc repro ran: ", 1)[1].split(";")[0].split(", ")
    assert not [s for s in final if s.startswith(("train", "evaluate"))], first  # all restored from the remote
    nodes = {json.loads((driver / "models" / n / "run.json").read_text())["execution"]["node"] for n in VARIANTS}
    assert len(nodes) == 2 and None not in nodes, nodes  # both nodes trained
    assert results(driver) == results(local)
    assert (driver / "reports" / "summary.json").exists()
    assert "Data and pipelines are up to date" in sh(driver, "dvc", "status")

    again = sh(driver, *cmd)  # nothing stale: no task, nothing trains
    print(again)
    assert "2/3 0 runs" in again and "the final dvc repro ran: nothing" in again, again

    failed = sh(driver, *cmd, "-S", "variants.r1_adamw.lr=1.5e30", check=False)  # diverges at once
    assert "1 run(s) failed: train@r1_adamw" in failed and "diverged" in failed, failed
    assert "2/3 1 runs" in failed  # only the changed run was submitted

    # Ctrl-C on the driver cancels the tasks: their trainers stop
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    long = subprocess.Popen([*cmd, "-S", "train.epochs=200"], cwd=driver, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 240
    while not trainers(tmp_path) and time.time() < deadline and long.poll() is None:
        time.sleep(0.2)
    assert trainers(tmp_path), long.communicate()[0]
    os.kill(long.pid, signal.SIGINT)
    out = long.communicate(timeout=120)[0]
    assert long.returncode != 0 and "runs cancelled" in out, out
    deadline = time.time() + 60
    while trainers(tmp_path) and time.time() < deadline:
        time.sleep(0.5)
    assert not trainers(tmp_path), "a cancelled run kept training"


def trainers(under) -> list[int]:
    """The train stages running in a node-local clone under this folder."""
    found = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and "stages.train" in open(f"/proc/{d}/cmdline").read() and \
                    os.readlink(f"/proc/{d}/cwd").startswith(str(under)):
                found.append(int(d))
        except OSError:
            pass
    return found


def test_faults_say_what_to_fix_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    repo = shared_repo(tmp_path)
    cmd = [sys.executable, "-m", "mainrun.parallel", "--ray", f"127.0.0.1:{free_port()}"]

    def error(*args):
        p = subprocess.run(cmd + list(args), cwd=repo, capture_output=True, text=True, timeout=300)
        assert p.returncode != 0
        return p.stderr.strip().splitlines()[-1]
    unreachable = error()
    assert "cannot reach the Ray cluster" in unreachable and "ray start --head" in unreachable
    (repo / "README.md").write_text("an edit\n")
    assert "uncommitted changes in README.md" in error()
    sh(repo, "git", "commit", "-qam", "not pushed")
    assert "is not on origin" in error() and "git push origin HEAD" in error()
    sh(repo, "dvc", "remote", "default", "--unset")
    assert "no default DVC remote" in error()
    sh(repo, "git", "checkout", ".dvc/config")
    sh(repo, "git", "remote", "remove", "origin")
    assert "no git remote 'origin'" in error()
