"""Reproduce the pipeline with N runs at once, on DVC's own per-stage locking (dvc repro has no --jobs, dvc#755).

    python -m mainrun.parallel -j N [-S key=value ...]
    python -m mainrun.parallel --ray ADDRESS [-j N] [-S key=value ...]   (over a Ray cluster: docs/cluster.md)

1. `dvc repro configure code`: download, the tokenizers, the run configs and the train code's digests;
2. every train stage that `dvc status` says is stale (each evaluates its run too), N at a time, each as
   `dvc repro -s`; each run takes a device slot (mainrun/slots.py): N spread over the visible GPUs, or the CPU's
   cores split N ways; if params.yaml or the code changed meanwhile, 1 and 2 again for what is stale now;
3. a plain `dvc repro`: the report, and anything still stale.
-S applies params overrides as `dvc exp run -S` does (DVC's own Hydra grammar). A failed run fails the command
with its stage named and its log kept; the others' results stay cached. Ctrl-C stops every run at a checkpoint.
Every process the runner starts ends with it, however it ends: a guard process leads their process group and
stops them when the runner is gone, saying so. One runner per repo: a second one, or one started while an earlier
runner's runs are still ending, says so and stops. The code: mainrun/runner/.
"""
import argparse
import sys

from .config import MainrunError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=None,
                    help="runs at once (locally: default 1, all share the visible devices; with --ray: runs per GPU)")
    ap.add_argument("-S", "--set-param", action="append", default=[], help="a params override, as in dvc exp run")
    ap.add_argument("--ray", metavar="ADDRESS", help="run on this Ray cluster (what ray.init(address=...) takes)")
    args = ap.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        sys.exit("error: -j must be at least 1")
    try:
        if args.ray:
            from .runner.cluster import main as on_ray
            return on_ray(args.ray, args.jobs or 1, args.set_param)
        from .runner.local import main as here
        return here(args.jobs or 1, args.set_param)
    except MainrunError as e:  # a bad -S: one line naming it and the fix
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    from .runner import repo
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        repo.interrupt()  # Ctrl-C reaches the runner's group; what it started is in the guard's
        for p in repo.children:
            p.wait()
        sys.exit("interrupted: each run saved a checkpoint; run the same command again to resume")
    finally:
        repo.release_repo()
