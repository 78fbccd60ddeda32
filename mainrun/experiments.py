"""Whether the workspace is already recorded as an experiment: python -m mainrun.experiments (exit 0: it is).

DVC records every `dvc exp run`, even one with nothing to run, so `make demo` run twice recorded two identical
experiments. An experiment commit holds dvc.lock (every stage's params, deps and output hashes) and params.yaml:
a workspace whose two files equal an experiment's of the current commit is that experiment's result.
"""
import subprocess
import sys

RECORDED = ("dvc.lock", "params.yaml")


def git(*args, cwd=".") -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def recorded(cwd=".") -> str | None:
    """The name of an experiment of HEAD whose dvc.lock and params.yaml are the workspace's, or None."""
    try:
        head = git("rev-parse", "HEAD", cwd=cwd)
        here = git("hash-object", *RECORDED, cwd=cwd).split()
    except (subprocess.CalledProcessError, OSError):
        return None  # not a git checkout, or no dvc.lock yet
    for ref in git("for-each-ref", "--format=%(refname)", f"refs/exps/{head[:2]}/{head[2:]}/", cwd=cwd).split():
        try:
            if git("rev-parse", *(f"{ref}:{f}" for f in RECORDED), cwd=cwd).split() == here:
                return ref.rsplit("/", 1)[1]
        except subprocess.CalledProcessError:
            continue  # an experiment without one of the files
    return None


if __name__ == "__main__":
    name = recorded()
    if name:
        print(f"already recorded as experiment {name}: nothing new to record")
    sys.exit(0 if name else 1)
