"""dvc.yaml against the code and params it describes: stage deps from the imports, plots from published.yaml."""
import json
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
    files = {"__init__.py": "VERSION = 1\n", "sub/__init__.py": "",  # an empty file has nothing to digest
             "stage.py": "from .model import x\nimport os\nimport pkg.plain as p\nimport pkg.sub.inner\n\n"
                         "def f():\n    from pkg.deep import x\n",  # no import names pkg: it is each one's parent
             "sub/inner/__init__.py": "from . import leaf\n",  # relative to the package itself, naming a module
             "sub/inner/leaf.py": "from ..helper import x\nfrom ...model import x\n",  # two and three levels up
             **{f"{name}.py": f"x = '{name}'\n" for name in ("model", "deep", "plain", "other", "sub/helper")}}
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    before = digests("pkg.stage", tmp_path)
    assert list(before) == [f"pkg/{f}" for f in ("__init__.py", "deep.py", "model.py", "plain.py", "stage.py",
                                                 "sub/helper.py", "sub/inner/__init__.py", "sub/inner/leaf.py")]
    (tmp_path / "pkg" / "other.py").write_text("x = 'edited'\n")
    assert digests("pkg.stage", tmp_path) == before
    (tmp_path / "pkg" / "deep.py").write_text("x = 'edited'\n")
    after = digests("pkg.stage", tmp_path)
    assert after["pkg/deep.py"] != before["pkg/deep.py"] and after["pkg/model.py"] == before["pkg/model.py"]


def test_a_train_run_loads_only_files_in_its_digests(tiny_run, tmp_path, monkeypatch):
    """The check the digests cannot fool: the train stage, run to its end in a fresh interpreter, loads no file of the
    project that the code stage's digests leave out (an edit of it would leave every run cached)."""
    from dataclasses import replace

    from fresh import loaded
    from mainrun.runlog import write_json
    from stages.code import main as code_stage

    run = replace(tiny_run, train=replace(tiny_run.train, epochs=1, evals_per_epoch=1))
    write_json(tmp_path / "run.json", {**run.to_dict(), "enabled": True, "study": None})
    (tmp_path / "params.yaml").write_text("train: {}\n")
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.argv", ["code", "--module", "stages.train", "--out", str(tmp_path / "code.json")])
    code_stage()
    paths = {"config": "run.json", "out": "out", "live": "live", "ckpt": "ckpt", "metrics": "eval.json",
             "params": "params.yaml", "code": "code.json"}
    seen = loaded("import runpy; runpy.run_module('stages.train', run_name='__main__')", tmp_path / "loaded.json",
                  [f"--{k}={tmp_path / v}" for k, v in paths.items()])
    assert (tmp_path / "eval.json").exists()  # it trained and evaluated
    files = {f for f in seen["files"].values() if (ROOT / f).read_text().strip()}  # empty ones have no digest
    assert {"mainrun/train.py", "mainrun/evaluate.py", "mainrun/model.py"} <= files
    digested = json.loads((tmp_path / "code.json").read_text())["files"]
    assert sorted(files - set(digested)) == []


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
