"""The mutation benchmark: how many small breaks of the core modules the fast tests catch (docs/testing.md).

    python benchmarks/mutation.py [-j CHILDREN] [MODULE ...]     # e.g. mainrun.code; default: every core module

mutmut (pip install -e ".[bench]"; its settings: [tool.mutmut] in pyproject.toml) copies the project to mutants/,
makes every mutant of the core modules, runs the fast tests once to learn which tests call which function, then runs
each mutant against those tests only, stopping at the first failure. One module at a time, its mutants in order; the
results stay in mutants/, so a second call re-tests only the functions that changed since (delete mutants/ to start
afresh). Then one line per module: a mutant is caught when a test fails (or it times out), and the score is caught
over all its mutants less the equivalent ones below, which no test can catch.
"""
import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# mutant -> why it changes no behaviour (mutmut's names: `mutmut show NAME` prints the change)
EQUIVALENT = {
    "mainrun.code.x_project_files__mutmut_9": "range(0, ...) adds the empty name, which module_file maps to the root "
                                             "folder itself: no module, as the root is no package",
}

CAUGHT = {1, 3, 36, -24, 24, 152, 255}  # a test failed (3: pytest's internal error), or it ran past its time limit


def core_modules() -> list[str]:
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    return [f.removesuffix(".py").replace("/", ".") for f in files]


def results(module: str) -> dict[str, int | None]:
    """{mutant: mutmut's exit code} of one module."""
    meta = ROOT / "mutants" / (module.replace(".", "/") + ".py.meta")
    return json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}


def score(module: str) -> dict:
    codes = {k: v for k, v in results(module).items() if k not in EQUIVALENT}
    caught = sum(c in CAUGHT for c in codes.values())
    return {"module": module, "mutants": len(codes), "caught": caught,
            "survived": sorted(k for k, c in codes.items() if c == 0),
            "untested": sorted(k for k, c in codes.items() if c in (5, 33)),
            "not_run": sum(c is None for c in codes.values()), "score": caught / len(codes) if codes else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="dotted names, default: every module of [tool.mutmut] only_mutate")
    ap.add_argument("-j", "--children", type=int, default=1, help="mutants tested at once (default 1)")
    ap.add_argument("--scores-only", action="store_true", help="print the scores of the last runs, run nothing")
    args = ap.parse_args()
    modules = args.modules or core_modules()
    unknown = sorted(set(modules) - set(core_modules()))
    if unknown:
        sys.exit(f"error: not a core module: {', '.join(unknown)}; the core is [tool.mutmut] only_mutate")
    for module in modules if not args.scores_only else ():
        t0 = time.time()
        subprocess.run(["mutmut", "run", "--max-children", str(args.children), f"{module}.*"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, check=True)
        print(f"{module}: mutmut ran {time.time() - t0:.0f} s", flush=True)
    for module in modules:
        s = score(module)
        line = (f"{s['score']:6.1%} {module}: {s['caught']} of {s['mutants']} caught, {len(s['survived'])} survived, "
                f"{len(s['untested'])} no test") if s["mutants"] else f"     - {module}: not run"
        print(line + (f", {s['not_run']} not run" if s["not_run"] else ""))
        for name in s["survived"]:
            print(f"         survived: {name}")


if __name__ == "__main__":
    main()
