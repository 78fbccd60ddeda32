"""Shared by the stage scripts (run as `python -m stages.NAME`): known errors become one clear line."""
import sys

from mainrun.config import ConfigError
from mainrun.data import DataError
from mainrun.train import TrainingDiverged


def run_stage(main):
    try:
        main()
    except (ConfigError, DataError, TrainingDiverged) as e:
        sys.exit(f"error: {e}")
