"""Print a profile file (profiles/*.yaml) as `dvc exp run` -S overrides: python -m mainrun.profile FILE."""
import json
import sys

import yaml


def overrides(profile: dict) -> list[str]:
    return [f"-S {key}={json.dumps(value, separators=(',', ':'))}" for key, value in profile.items()]


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(" ".join(overrides(yaml.safe_load(f))))
