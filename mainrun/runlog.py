"""What every run records beside its outputs: code version, library versions, hardware."""
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "absent"


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def seconds_since_process_start() -> float | None:
    """Wall time since this process started (Linux; None elsewhere): its start-up, imports included."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def run_info(device) -> dict:
    import torch
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": device.type, "device_name": name, "torch_threads": torch.get_num_threads(),
            "git_revision": git_revision(), "python": platform.python_version(),
            "execution": {"node": os.environ.get("MAINRUN_NODE"), "host": platform.node(), "device": device.type},
            "versions": {p: _version(p) for p in ("torch", "tokenizers", "datasets", "dvc", "dvclive")}}


def write_json(path, obj) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)
