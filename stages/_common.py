"""Shared by the stage scripts (run as `python -m stages.NAME`): known errors become one clear line."""
import sys

from mainrun.config import MainrunError


def run_stage(main):
    try:
        main()
    except MainrunError as e:
        sys.exit(f"error: {e}")
