"""Resume state: the checkpoint folder, the RNG states it carries, and the stop flag that ends a run at a step.

A run is stopped only between steps (SIGINT and SIGTERM just set a flag), so a checkpoint always holds a whole step:
resuming from it continues exactly where the run stopped.
"""
import random
import shutil
import signal
import threading
from pathlib import Path

import torch


class StopFlag:
    """While active, SIGINT and SIGTERM only set `requested`; the training loop checks it between steps."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = {s: signal.signal(s, self._request) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _request(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def rng_state(device) -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else torch.empty(0, dtype=torch.uint8)}


def set_rng_state(s: dict, device) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    if device.type == "cuda" and s["cuda"].numel():
        torch.cuda.set_rng_state(s["cuda"])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)


FORMAT = 2  # what a checkpoint holds; one of another format is discarded like one of other settings


class Checkpoint:
    """Resume state in one folder: ckpt.pt plus a snapshot of the dvclive folder at that step.

    A new checkpoint is written beside the old one and swapped in by renames, so a kill at any moment leaves one whole
    checkpoint (the new one, else the old one)."""

    def __init__(self, directory, live_dir, digest: str, name: str = "run"):
        self.dir, self.live_dir, self.digest, self.name = Path(directory), Path(live_dir), digest, name
        self.tmp, self.old = (self.dir.with_name(self.dir.name + s) for s in (".tmp", ".old"))

    def save(self, state: dict) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        torch.save({**state, "digest": self.digest, "format": FORMAT}, self.tmp / "ckpt.pt")
        if self.live_dir.exists():
            shutil.copytree(self.live_dir, self.tmp / "live")
        shutil.rmtree(self.old, ignore_errors=True)
        if self.dir.exists():
            self.dir.rename(self.old)
        self.tmp.rename(self.dir)
        shutil.rmtree(self.old, ignore_errors=True)

    def load(self) -> dict | None:
        """The saved state if it belongs to this exact config (restoring the dvclive folder), else None.
        A checkpoint written for other settings, or one that cannot be read, is discarded: the run starts over."""
        if not self.dir.exists() and self.old.exists():  # killed between the two renames of save()
            self.old.rename(self.dir)
        path = self.dir / "ckpt.pt"
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError("not a checkpoint")
        except Exception as e:  # truncated or otherwise damaged: it must not block the run for good
            print(f"[{self.name}] checkpoint {path} is damaged ({type(e).__name__}); discarded, starting over",
                  flush=True)
            self.clear()
            return None
        if state.get("digest") != self.digest or state.get("format") != FORMAT:
            self.clear()  # written for other params (or by older code): start over
            return None
        shutil.rmtree(self.live_dir, ignore_errors=True)
        if (self.dir / "live").exists():
            shutil.copytree(self.dir / "live", self.live_dir)
        return state

    def clear(self) -> None:
        for d in (self.dir, self.tmp, self.old):
            shutil.rmtree(d, ignore_errors=True)
