"""Where `make` installs and what it runs: the active virtual environment, else .venv in the project, made on first
use (a system Python may refuse pip, PEP 668)."""
import importlib.util
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from mainrun import bootstrap


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
@pytest.mark.parametrize("active", [False, True])
def test_make_runs_pip_python_and_dvc_from_one_environment(tmp_path, active):
    shutil.copy(ROOT / "Makefile", tmp_path)
    env = tmp_path / "mine" if active else tmp_path / ".venv"
    system_only = {"PATH": "/usr/bin:/bin", **({"VIRTUAL_ENV": str(env)} if active else {})}
    out = subprocess.run(["make", "-n", "demo", "test"], cwd=tmp_path, env=system_only, capture_output=True,
                         text=True, check=True).stdout  # what it would run
    assert out.startswith(f"python3 -m mainrun.bootstrap {env}\n")  # made first: it is missing
    lines = out.split("\n", 1)[1].replace("\\\n", " ")  # a recipe's continued lines joined
    commands = re.findall(r"(?:^|\|\||&&)\s*(\S+)", lines, re.M)
    assert set(commands) == {f"{env}/bin/python", f"{env}/bin/dvc", "test", "echo"}, out
    assert f"{env}/bin/python -m pip install -e" in out and f"{env}/bin/python -m mainrun.parallel -j 2" in out
    one = subprocess.run(["make", "-n", "demo", "J=1"], cwd=tmp_path, env=system_only, capture_output=True, text=True,
                         check=True).stdout
    assert f"{env}/bin/dvc repro" in one and "mainrun.parallel" not in one


def test_an_environment_left_half_made_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # as on Debian without python3-venv

    def offline(into):
        raise SystemExit("error: pip's wheel could not be fetched from PyPI")
    monkeypatch.setattr(bootstrap, "pip_wheel", offline)
    with pytest.raises(SystemExit, match="could not be fetched"):
        bootstrap.make(tmp_path / "env")
    assert not (tmp_path / "env").exists()  # the next make makes it again, instead of finding no pip in it
