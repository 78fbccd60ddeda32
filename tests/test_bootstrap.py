"""Where `make` installs and what it runs: the active virtual environment, else .venv in the project, made on first
use (a system Python may refuse pip, PEP 668)."""
import importlib.util
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

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


def fake_pip_wheel(into: Path) -> Path:
    """A wheel whose `pip` records how it was run (by which interpreter, with what) instead of installing itself."""
    wheel = into / "pip-99.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pip/__main__.py", "import json, sys\nfrom pathlib import Path\nran = [sys.prefix, sys.base_prefix, "
                   "sys.argv[1:]]\nPath(sys.prefix, 'pip-ran.json').write_text(json.dumps(ran))\n")
    return wheel


def test_a_real_environment_is_made_and_pip_installed_into_it_from_its_wheel(tmp_path, monkeypatch):
    """Debian without python3-venv: a real virtual environment (no ensurepip), then pip run from its wheel by the
    environment's own python; only the wheel is a stand-in (no network in tests)."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(bootstrap, "pip_wheel", fake_pip_wheel)
    env = tmp_path / "env"
    bootstrap.make(env)
    assert "home = " in (env / "pyvenv.cfg").read_text()
    prefix, base, argv = json.loads((env / "pip-ran.json").read_text())
    assert Path(prefix) == env and prefix != base  # run inside the environment, not by the system's python
    assert argv[:2] == ["install", "-q"] and argv[2].endswith("pip-99.0-py3-none-any.whl")


def test_an_environment_left_half_made_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # as on Debian without python3-venv
    made = []

    def offline(into):
        made.append((tmp_path / "env" / "pyvenv.cfg").is_file())  # the environment exists by now
        raise SystemExit("error: pip's wheel could not be fetched from PyPI")
    monkeypatch.setattr(bootstrap, "pip_wheel", offline)
    with pytest.raises(SystemExit, match="could not be fetched"):
        bootstrap.make(tmp_path / "env")
    assert made == [True]
    assert not (tmp_path / "env").exists()  # the next make makes it again, instead of finding no pip in it


def test_a_folder_that_was_there_before_a_failure_is_kept(tmp_path, monkeypatch):
    """make's clean-up removes only what it made: never a folder (an environment, or anything) the user had."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    def offline(into):
        raise SystemExit("error: pip's wheel could not be fetched from PyPI")
    monkeypatch.setattr(bootstrap, "pip_wheel", offline)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "mine.txt").write_text("the user's")
    with pytest.raises(SystemExit, match="could not be fetched"):
        bootstrap.make(tmp_path / "env")
    assert (tmp_path / "env" / "mine.txt").read_text() == "the user's"
