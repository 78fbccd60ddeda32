"""dvc.yaml against the code and params it describes: stage deps from the imports, plots from published.yaml."""
import re

import pytest
import yaml

from conftest import ROOT
from mainrun.code import project_files
from mainrun.config import resolve_variants
from mainrun.report.load import load_published
from test_report_settings import setting

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PLOTS = {k: v for plot in DVC["plots"] for k, v in plot.items()}


CODE_OUTS = dict(zip(re.findall(r"--module ([\w.]+)", DVC["stages"]["code"]["cmd"]),
                     re.findall(r"--out (\S+)", DVC["stages"]["code"]["cmd"])))  # stage module -> its digests file


def stage_body(stage: dict) -> dict:
    return stage.get("do", stage)


@pytest.mark.parametrize("name", list(DVC["stages"]))
def test_stage_deps_list_every_module_its_command_imports(name):
    stage = stage_body(DVC["stages"][name])
    module = re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)
    deps = [d for d in stage["deps"] if "$" not in d]
    digested = [d for d in deps if d.startswith("data/code/")]
    if module in CODE_OUTS:  # on the digests of exactly the files its command imports (stage code), never on a module
        assert digested == [CODE_OUTS[module]] and not [d for d in deps if d.endswith(".py")], \
            f"stage {name}: depend on {CODE_OUTS.get(module)} (the code stage's digests of {module}) instead of modules"
        deps = DVC["stages"]["code"]["deps"]  # the code stage re-runs on any edit of a file it digests
    if module == "stages.train":
        assert "--code data/code/train.json" in stage["cmd"]
    missing = [f for f in sorted(project_files(module)) if not any(f == d or f.startswith(d.rstrip("/") + "/")
                                                                    for d in deps)]
    assert not missing, f"stage {name}: add to its deps: {', '.join(missing)}"


def test_a_model_flag_reaches_no_data_stage():
    """download and tokenize depend on their own digests, which no model or run-config module is part of: adding a
    model flag never re-downloads or re-builds a tokenizer (issue 35)."""
    assert set(CODE_OUTS) == {"stages.download", "stages.tokenize", "stages.train"}
    assert list(CODE_OUTS.values()) == DVC["stages"]["code"]["outs"]
    for module in ("stages.download", "stages.tokenize"):
        files = project_files(module)
        assert {"mainrun/config.py", "mainrun/model.py", "mainrun/params.py"}.isdisjoint(files), (module, files)
    assert {"mainrun/config.py", "mainrun/model.py"} <= set(project_files("stages.train"))


def test_the_code_digests_change_with_an_imported_file_only(tmp_path):
    from mainrun.code import digests
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "stage.py").write_text("from . import model\nimport os\n\ndef f():\n    from pkg.deep import x\n")
    for name in ("model", "deep", "other"):
        (tmp_path / "pkg" / f"{name}.py").write_text(f"x = '{name}'\n")
    before = digests("pkg.stage", tmp_path)
    assert list(before) == ["pkg/deep.py", "pkg/model.py", "pkg/stage.py"]  # a function-level import too
    (tmp_path / "pkg" / "other.py").write_text("x = 'edited'\n")
    assert digests("pkg.stage", tmp_path) == before
    (tmp_path / "pkg" / "deep.py").write_text("x = 'edited'\n")
    after = digests("pkg.stage", tmp_path)
    assert after["pkg/deep.py"] != before["pkg/deep.py"] and after["pkg/model.py"] == before["pkg/model.py"]


def test_every_default_variant_is_in_a_chart_that_names_its_runs(params):
    """No chart of every run (32 curves in a diff, told apart by dashes): each default variant is in a small one,
    drawn with the template that colours a curve by its run."""
    defaults = [n for n, s in resolve_variants(params).items() if s["study"] is None]
    drawn = {f.split("/")[1] for plot in PLOTS.values() for f in plot["y"]}
    assert not set(defaults) - drawn, (f"dvc.yaml's plots (kept by hand: DVC cannot derive them) draw no "
                                       f"{sorted(set(defaults) - drawn)}: add a chart (docs/extending.md)")
    assert not drawn - set(defaults), f"dvc.yaml's plots draw runs params.yaml has not: {sorted(drawn - set(defaults))}"
    assert max(len(plot["y"]) for plot in PLOTS.values()) <= 5
    template = ROOT / "mainrun" / "plots" / "by_run.json"
    assert {plot["template"] for plot in PLOTS.values()} == {str(template.relative_to(ROOT))}
    spec = template.read_text()
    assert '"color": {"field": "run"' in spec and "/plots/metrics/" in spec


def test_figure_plots_are_the_writeup_figures(params, tmp_path):
    """Each write-up figure in published.yaml is a dvc plot of the runs the report finds for it, same title."""
    figures = load_published()["figures"]
    match = setting(params, tmp_path).match
    assert set(PLOTS) == set(figures) | {"chain_rec4"}
    for key, fig in figures.items():
        assert PLOTS[key]["title"] == fig["title"]
        assert PLOTS[key]["y"] == {f"dvclive/{match[w]}/plots/metrics/val_loss.tsv": "val_loss" for w in fig["final"]}
        assert list(PLOTS[key]["y"]) == [f"dvclive/{match[w]}/plots/metrics/val_loss.tsv" for w in fig["final"]]


def test_tokenize_outputs_are_the_folders_configure_reads():
    """The tokenizer folder name lives in mainrun.configure.tokenized_dir; dvc.yaml must write where configure reads.
    An opt-in tokenizer's folder does not name vocab_size: a path that moved with it had no hash in dvc.lock."""
    from mainrun.configure import tokenized_dir

    stage = stage_body(DVC["stages"]["tokenize"])
    folder = str(tokenized_dir("data/tokenized", "bpe", "${item}"))
    assert stage["outs"][0] == folder and f"--out {folder} " in stage["cmd"]
    stage = stage_body(DVC["stages"]["tokenize_alt"])  # one stage for every opt-in tokenizer: alt/<kind>
    folder = str(tokenized_dir("data/tokenized", "unigram", "${vocab_size}").parent)
    assert stage["outs"][0] == folder and f"--out {folder} " in stage["cmd"] and "vocab_size" not in folder


def test_the_committed_run_list_is_the_committed_params_runs():
    """dvc.yaml makes its train stages from runs.yaml: in git, it lists the runs of the committed params, so a fresh
    clone's first `dvc repro` has every stage it needs (configure rewrites it after any change)."""
    from conftest import committed, committed_params
    from mainrun.configure import runs_on

    assert yaml.safe_load(committed("runs.yaml"))["runs"] == list(runs_on(committed_params()))
