"""No test depends on the user's workspace: `make demo` (a `dvc exp run -S ...`) rewrites params.yaml and dvc.lock,
and `make test` must pass after it, with the committed params and the code on disk."""
import os
import subprocess
import sys

import yaml

from conftest import ROOT, committed_params
from tiny_repo import make_tiny_repo


def as_committed(params):
    params.clear()
    params.update(committed_params())


def demo_ran(repo):
    """What `make demo` leaves behind: the CPU profile written into params.yaml, a dvc.lock and metrics."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text()).items():
        *sections, leaf = key.lstrip("+").split(".")
        node = params
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "metrics").mkdir()
    (repo / "metrics" / "data.json").write_text("{}")
    return params


def test_fixtures_read_the_committed_params_and_the_code_on_disk(tmp_path):
    src = make_tiny_repo(tmp_path / "src")
    committed = yaml.safe_load((src / "params.yaml").read_text())
    demo = demo_ran(src)
    assert demo != committed
    (src / "mainrun" / "__init__.py").write_text("EDITED = True\n")  # a developer's uncommitted edit
    assert committed_params(src) == committed
    copy = make_tiny_repo(tmp_path / "copy", source=src)
    assert yaml.safe_load((copy / "params.yaml").read_text()) == committed  # TINY again, on the committed file
    assert (copy / "mainrun" / "__init__.py").read_text() == "EDITED = True\n"
    assert not (copy / "dvc.lock").exists() and not (copy / "metrics").exists()


def test_the_suite_passes_after_the_demo(tmp_path):
    """A copy of the repo at its committed params, the demo's changes on top, and a params-reading module run in it."""
    repo = make_tiny_repo(tmp_path / "repo", as_committed)
    demo_ran(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                        "tests/test_config.py"], cwd=repo, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
