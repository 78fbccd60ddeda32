"""The mutation benchmark: how many small breaks of the core modules the fast tests catch (docs/testing.md).

    python benchmarks/mutation.py [-j CHILDREN] [MODULE ...]     # e.g. mainrun.code; default: every core module

Each module runs alone against its own fast tests (TESTS below), in its own copy of the project,
mutants/<module>/ (git ignores it): mutmut (pip install -e ".[bench]"; its settings: [tool.mutmut] in
pyproject.toml, with only_mutate and the test selection narrowed to the module) makes every mutant of the module,
runs those tests once to learn which test calls which function, then runs each mutant against those tests only,
stopping at the first failure. The results stay in that copy, so a second call re-tests only the functions that
changed since (delete it to start afresh). Then one line per module: a mutant is caught when a test fails (or it
times out), and the score is caught over the mutants tried (all, unless a run was stopped), less the equivalent
ones in EQUIVALENT, which no test can catch. A mutant no test calls ("no test") counts as not caught.
`cd mutants/<module> && mutmut show NAME` prints a mutant's change.
"""
import argparse
import re
import shutil
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> its own fast tests (a mutant runs against those of them that call the mutated function)
STUDIES = ["tests/test_configure.py", "tests/test_scale.py", "tests/test_attribution.py", "tests/test_lr_sweep.py"]
TESTS = {
    "mainrun.config": ["tests/test_config.py", "tests/test_configure.py", "tests/test_bad_inputs.py"],
    "mainrun.configure": STUDIES,
    "mainrun.params": STUDIES + ["tests/test_config.py", "tests/test_bad_inputs.py"],
    "mainrun.study": STUDIES,
    "mainrun.noise": STUDIES,
    "mainrun.scale": STUDIES,
    "mainrun.attribution": STUDIES,
    "mainrun.lr_sweep": STUDIES,
    "mainrun.code": ["tests/test_imports.py", "tests/test_dvc_yaml.py"],
    "mainrun.train": ["tests/test_train.py"],
    "mainrun.evaluate": ["tests/test_evaluate.py"],
    "mainrun.model": ["tests/test_model.py"],
    "mainrun.report.analyse": ["tests/test_report.py", "tests/test_report_settings.py", "tests/test_attribution.py"],
    "mainrun.report.attribution": ["tests/test_attribution.py", "tests/test_report.py"],
    "mainrun.report.scale": ["tests/test_report_scale.py", "tests/test_report_lr_sweep.py"],
    "mainrun.report.lr_sweep": ["tests/test_report_lr_sweep.py"],
}

# mutant -> why it changes no behaviour (mutmut's names: `mutmut show NAME` prints the change)
_FOUR_D = "the attention's q, k, v are always 4-D (B, nh, T, hs): dimension +2 is dimension -2"
EQUIVALENT = {
    "mainrun.code.x_imports__mutmut_18": "`node.module or 'XXXX'`: only a relative `from . import x` has no module, "
                                         "and its base is then the parent package, whatever this gave",
    "mainrun.code.x_imports__mutmut_21": "the level test `or True`: at level 1, rsplit('.', 0)[0] is the package "
                                         "itself, the else branch's value",
    "mainrun.code.x_imports__mutmut_31": "`node.level >= 1`: the same rsplit('.', 0) at level 1",
    "mainrun.code.x_project_files__mutmut_13": "range(1, len(parts) + 2): the extra name is the module's whole "
                                               "name again, already in files",
    "mainrun.evaluate.x_evaluate_run__mutmut_14": "model.to(None): on the CPU, where the tests run, the model is "
                                                  "already on its device (a GPU run would catch it)",
    "mainrun.evaluate.x_evaluate_run__mutmut_22": "ids_tensor(..., None): a CPU tensor, the device the tests run on",
    "mainrun.evaluate.x_evaluate_run__mutmut_41": "token_nats without autocast: the default, a null context, is "
                                                  "what fp32 runs use (a bf16 run would catch it: slow tests only)",
    "mainrun.evaluate.x_evaluate_run__mutmut_61": "legacy_val_loss without autocast: the same, for the legacy figure",
    "mainrun.scale.x_on__mutmut_3": "`.get('scale', None)`: bool(None) is False, the default it replaces",
    "mainrun.scale.x_on__mutmut_5": "`.get('scale')`: the same None",
    "mainrun.scale.x_runs__mutmut_52": "made_by 'XXscaleXX': made_by is only ever compared with None, 'noise' and "
                                       "'attribution', so any other name for the scale study reads the same",
    "mainrun.scale.x_runs__mutmut_53": "made_by 'SCALE': the same",
    "mainrun.scale.x_sized__mutmut_9": "the third list's 'noise' renamed: the seed repeats, already in the second "
                                       "list, come again; the same names give the same runs, in the same order",
    "mainrun.scale.x_sized__mutmut_10": "the same, 'XXnoiseXX'",
    "mainrun.noise.x_runs__mutmut_48": "a seed repeat's `of` None: `of` is read only for runs not made by noise "
                                       "(mainrun.lr_sweep.swept), as seed repeats are never swept",
    "mainrun.noise.x_runs__mutmut_52": "the same, `of` left out (None)",
    "mainrun.noise.x_runs__mutmut_51": "made_by the variant's name, `of` None: scale then finds the repeats in its "
                                       "third list instead of its second, at the same place (noise is the first "
                                       "study), and lr_sweep skips them either way",
    "mainrun.lr_sweep.x_swept__mutmut_5": "`.get('parts', None)`: None is as false as the default False",
    "mainrun.lr_sweep.x_swept__mutmut_7": "`.get('parts')`: the same None",
    "mainrun.lr_sweep.x_runs__mutmut_60": "a sweep run's made_by None: made_by and `of` are read only by the studies "
                                          "after the one that made a run, and the sweep is the last "
                                          "(mainrun.configure.STUDIES)",
    "mainrun.lr_sweep.x_runs__mutmut_62": "a sweep run's `of` None: the same",
    "mainrun.lr_sweep.x_runs__mutmut_70": "a sweep run's `of` left out: the same",
    "mainrun.lr_sweep.x_runs__mutmut_74": "made_by 'XXlr_sweepXX': the same",
    "mainrun.lr_sweep.x_runs__mutmut_75": "made_by 'LR_SWEEP': the same",
    "mainrun.attribution.x_on__mutmut_3": "`.get('attribution', None)`: bool(None) is False, the default",
    "mainrun.attribution.x_on__mutmut_5": "`.get('attribution')`: the same None",
    "mainrun.lr_sweep.x_on__mutmut_3": "`.get('lr_sweep', None)`: bool(None) is False, the default",
    "mainrun.lr_sweep.x_on__mutmut_5": "`.get('lr_sweep')`: the same None",
    "mainrun.config.xǁGPTConfigǁ__post_init____mutmut_30": "(d_model / n_head) % 2 for //: the divisibility check "
                                                            "just above makes the quotient whole, of the same parity",
    "mainrun.configure.x_all_runs__mutmut_11": "partition('.') for rpartition('.') in a study's name: each study is "
                                               "a module mainrun.<study> (STUDIES), with one dot",
    "mainrun.model.xǁCausalSelfAttentionǁ__init____mutmut_39": "the RoPE cos table's persistent=None: register_buffer "
                                                               "tests its truth only, so None is False",
    "mainrun.model.xǁCausalSelfAttentionǁ__init____mutmut_48": "the same for the sin table",
    "mainrun.model.xǁGPTǁ__init____mutmut_37": "the head's bias=None: nn.Linear tests its truth only, so no bias, as False",
    "mainrun.model.xǁGPTǁ_init_weights__mutmut_5": "normal_ without mean=0.0: 0.0 is its default",
    "mainrun.code.x_project_files__mutmut_9": "range(0, ...) adds the empty name, which module_file maps to the root "
                                             "folder itself: no module, as the root is no package",
    "mainrun.model.x_rope_tables__mutmut_3": "`head_dim / 2`: RoPE needs an even head size (GPTConfig refuses an odd "
                                            "one), and arange(4.0) / 4.0 is arange(4).float() / 4",
    "mainrun.model.x_apply_rope__mutmut_3": "`x.size(+2)`: " + _FOUR_D,
    "mainrun.model.xǁCausalSelfAttentionǁforward__mutmut_103": "`k.transpose(+2, -1)`: " + _FOUR_D,
    "mainrun.model.xǁCausalSelfAttentionǁforward__mutmut_119": 'float("-INF") is float("-inf")',
    "mainrun.model.xǁCausalSelfAttentionǁ__init____mutmut_58": "the mask's persistent=None: register_buffer reads it "
                                                               "as a truth value, and None is as false as False",
}

SAME_VARIANTS = ("every size holds the same variants and repeats (configure puts each at every size), so the names "
                 "read from another size's rows are the same")
EQUIVALENT |= {
    "mainrun.report.scale.x_read_scale__mutmut_24": "the chain read at rows[1]'s size, not rows[0]'s: rows[1] is at "
                                                    "the first size but for a one-variant chain; then " + SAME_VARIANTS,
    "mainrun.report.scale.x_steps__mutmut_9": "the first size read at rows[1]: the same size but for a one-variant "
                                              "chain, which has no step at any size",
}
HAS_ROW = ("every name load_runs reads is a row's name or variant, and each has its own row in configs/runs.json "
           "(a variant's, a scale or part run's), which always holds 'enabled' (mainrun.study.Run.row, "
           "mainrun.configure.variant_runs)")
EQUIVALENT |= {f"mainrun.report.lr_sweep.x_load_runs__mutmut_{n}": HAS_ROW for n in (16, 18, 22, 24, 27)}
EQUIVALENT["mainrun.report.lr_sweep.x_study__mutmut_14"] = (
    "one more pass of resolve: a same_as chain is at most len(alias) long, so the name is already one with no alias")
EQUIVALENT |= {
    "mainrun.report.analyse.x_judge__mutmut_12": "`delta <= 0` for `< 0`: a Δ of 0 is within noise at any threshold "
                                                 "(σ >= 0), so it never reaches the better/worse line",
    "mainrun.report.attribution.x_defects__mutmut_5": "'XX, XX' joining a same-function part's keys: SAME_FUNCTION_KEYS "
                                                      "is attn alone, so such a part has one key, joined by nothing",
    "mainrun.report.attribution.x_steps_at__mutmut_40": "next() without its None: configure writes an alone and a drop "
                                                        "row for every part (mainrun.attribution.attribution_runs), so "
                                                        "a part's drop row is always there",
}

CAUGHT = {1, 3, 36, -24, 24, 152, 255}  # a test failed (3: pytest's internal error), or it ran past its time limit


def core_modules() -> list[str]:
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    return [f.removesuffix(".py").replace("/", ".") for f in files]


def workdir(module: str) -> Path:
    return ROOT / "mutants" / module


def prepare(module: str) -> Path:
    """A copy of the project (what git tracks or would track) whose mutmut settings name this module alone."""
    work = workdir(module)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    settings = (ROOT / "pyproject.toml").read_text()
    settings = re.sub(r"only_mutate = \[.*?\]", f'only_mutate = ["{module.replace(".", "/")}.py"]', settings,
                      flags=re.S)
    settings = re.sub(r"pytest_add_cli_args_test_selection = \[.*?\]",
                      f"pytest_add_cli_args_test_selection = {json.dumps(TESTS[module])}", settings, flags=re.S)
    (work / "pyproject.toml").write_text(settings)
    return work


def results(module: str) -> dict[str, int | None]:
    """{mutant: mutmut's exit code} of one module: its last full run, with the survivors re-tested since."""
    kept = workdir(module) / "results.json"
    return json.loads(kept.read_text()) if kept.exists() else {}


def record(module: str, names: list[str] | None) -> None:
    """Keep mutmut's verdicts (all of them after a full run, else those of `names`): a re-test of the survivors
    makes mutmut forget the rest, as the tests changed."""
    meta = workdir(module) / "mutants" / (module.replace(".", "/") + ".py.meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    kept = results(module) if names else {}
    (workdir(module) / "results.json").write_text(json.dumps(
        {**kept, **({n: codes[n] for n in names} if names else codes)}, indent=0, sort_keys=True))


def score(module: str) -> dict:
    codes = {k: v for k, v in results(module).items() if k not in EQUIVALENT}
    caught, tried = sum(c in CAUGHT for c in codes.values()), sum(c is not None for c in codes.values())
    return {"module": module, "mutants": len(codes), "tried": tried, "caught": caught,
            "survived": sorted(k for k, c in codes.items() if c == 0),
            "untested": sorted(k for k, c in codes.items() if c in (5, 33)),
            "timeouts": sorted(k for k, c in codes.items() if c in (36, -24, 24, 152, 255)),
            "score": caught / tried if tried else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="dotted names, default: every module of [tool.mutmut] only_mutate")
    ap.add_argument("-j", "--children", type=int, default=1, help="mutants tested at once (default 1)")
    ap.add_argument("--scores-only", action="store_true", help="print the scores of the last runs, run nothing")
    ap.add_argument("--markdown", action="store_true", help="with --scores-only: one table row per module")
    ap.add_argument("--survivors", action="store_true",
                    help="re-test only the last run's survivors (and time-outs, which a busy machine may cause), "
                         "against the tests as they are now")
    args = ap.parse_args()
    modules = args.modules or core_modules()
    unknown = sorted(set(modules) - set(core_modules()))
    if unknown:
        sys.exit(f"error: not a core module: {', '.join(unknown)}; the core is [tool.mutmut] only_mutate")
    for module in modules if not args.scores_only else ():
        t0 = time.time()
        last = score(module)
        names = last["survived"] + last["timeouts"] if args.survivors else None
        if names == []:
            continue
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.children), *(names or ())],
                       cwd=prepare(module), stdout=subprocess.DEVNULL, check=True)
        record(module, names)
        print(f"{module}: mutmut ran {time.time() - t0:.0f} s", flush=True)
    for module in modules if args.markdown else ():
        s = score(module)
        equivalent = sum(k.startswith(module + ".x") for k in EQUIVALENT)
        print(f"| `{module}` | {s['mutants'] + equivalent} | {equivalent} | {s['tried']} | {s['caught']} "
              f"({len(s['timeouts'])}) | {len(s['survived'])} | {len(s['untested'])} | **{s['score']:.1%}** |"
              if s["tried"] else f"| `{module}` | | | 0 | | | | not run |")
    for module in modules if not args.markdown else ():
        s = score(module)
        line = (f"{s['score']:6.1%} {module}: {s['caught']} of {s['tried']} caught ({len(s['timeouts'])} timed out), "
                f"{len(s['survived'])} survived, {len(s['untested'])} no test") if s["tried"] else f"     - {module}: not run"
        untried = s["mutants"] - s["tried"]
        print(line + (f"; {untried} of its {s['mutants']} mutants not run (stopped)" if untried and s["tried"] else ""))
        for name in s["survived"]:
            print(f"         survived: {name}")


if __name__ == "__main__":
    main()
