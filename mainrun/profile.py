"""A profile file (profiles/*.yaml) as `dvc exp run` -S overrides: python -m mainrun.profile [--apply] FILE

A profile maps dotted params keys to values. Each becomes `-S ++key=value`: Hydra's `++` sets a key whether or not
params.yaml already holds it, so a profile applies the same way to the committed params and to a workspace it has
already been applied to (`+` fails on a key that exists, a plain `key=` on one that does not).
Without --apply it prints the overrides; with it, it writes them into params.yaml as `dvc exp run -S` would.
"""
import json
import sys

from .config import read_yaml


def overrides(profile: dict) -> list[str]:
    """Hydra overrides (without the -S) that set each key of the profile."""
    return [f"++{key.lstrip('+')}={json.dumps(value, separators=(',', ':'))}" for key, value in profile.items()]


def apply(profile_path, params_path="params.yaml") -> None:
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` uses
    apply_overrides(params_path, overrides(read_yaml(profile_path)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--apply"]:
        apply(sys.argv[2])
    else:
        print(" ".join(f"-S {o}" for o in overrides(read_yaml(sys.argv[1]))))
