"""Make the virtual environment that `make` installs into: `python3 -m mainrun.bootstrap .venv`.

A system Python may refuse `pip install` (PEP 668: Debian 12, Ubuntu 23.04 and later), so the project installs into
an environment of its own. Debian splits `ensurepip` off into python3-venv; without it the environment is made
without pip, and pip is installed from its wheel on PyPI. Standard library only: nothing else is installed yet.
"""
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path
from urllib.parse import urljoin

PYPI_PIP = "https://pypi.org/pypi/pip/json"


def pip_wheel(into: Path) -> Path:
    """pip's newest wheel from PyPI, its sha256 checked against PyPI's."""
    try:
        with urllib.request.urlopen(PYPI_PIP, timeout=60) as r:
            wheel = next(u for u in json.load(r)["urls"] if u["filename"].endswith("-py3-none-any.whl"))
        with urllib.request.urlopen(urljoin(PYPI_PIP, wheel["url"]), timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise SystemExit(f"error: this Python has no ensurepip and pip's wheel could not be fetched from PyPI ({e}); "
                         "install python3-venv (`apt-get install python3-venv`) or activate a virtual environment")
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"error: {wheel['filename']} from PyPI does not match its sha256")
    path = into / wheel["filename"]
    path.write_bytes(data)
    return path


def make(env: Path) -> None:
    has_ensurepip = importlib.util.find_spec("ensurepip") is not None
    print(f"making a virtual environment in {env} ({sys.executable}, {'with' if has_ensurepip else 'without'} "
          "ensurepip)", flush=True)
    new = not env.exists()
    try:
        venv.create(env, with_pip=has_ensurepip)
        if not has_ensurepip:
            with tempfile.TemporaryDirectory() as tmp:
                wheel = pip_wheel(Path(tmp))  # pip runs from its own wheel to install itself
                subprocess.run([env / "bin" / "python", wheel / "pip", "install", "-q", wheel], check=True)
    except BaseException:
        if new:  # half made, it would pass for made next time
            shutil.rmtree(env, ignore_errors=True)
        raise


if __name__ == "__main__":
    make(Path(sys.argv[1]))
