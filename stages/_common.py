"""Shared by the stage scripts: import the library from the repo and turn known errors into one clear line."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mainrun.config import ConfigError  # noqa: E402
from mainrun.data import DataError  # noqa: E402
from mainrun.train import TrainingDiverged  # noqa: E402


def run_stage(main):
    try:
        main()
    except (ConfigError, DataError, TrainingDiverged) as e:
        sys.exit(f"error: {e}")
