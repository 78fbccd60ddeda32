"""The first hour, second pass (issue 25): bad `-S` values stop before any stage with one line naming the key and
the variant; no hash warnings from switched-off tokenizer stages; a second demo records nothing new; reports name
no folder of the machine; charts show what they claim."""
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from mainrun.profile import apply
from test_report import chain_values, make_report
from tiny_repo import make_tiny_repo, sh

pytestmark = pytest.mark.usefixtures("charts_not_rendered")  # conftest.py: charts built, not encoded


def cpu_params(tmp_path, params, *overrides) -> None:
    """params.yaml in tmp_path: the committed one, the CPU profile applied, then `overrides` as `-S` would."""
    from dvc.utils.hydra import apply_overrides
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    apply(ROOT / "profiles" / "cpu.yaml", path)
    if overrides:
        apply_overrides(path, list(overrides))


def check(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.check", "--out", "ok"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


UNDO = r" \(a failed -S stays in params.yaml: see docs/first-hour.md#a-bad-value\)\n"


@pytest.mark.parametrize("override, message", [
    ("vocab_size=abc", "vocab_size must be of type int, got 'abc'"),
    ("variants.r1_adamw.lr=-1", "variant 'r1_adamw': lr must be positive, got -1"),
    ("variants.r3_block256.block_size=0", "variant 'r3_block256': model.block_size must be positive, got 0"),
    ("++variants.adamw_rope.n_head=3", "variant 'adamw_rope': d_model 64 is not divisible by n_head 3"),
    ("train.epochs=0", "variant 'baseline': train.epochs must be positive, got 0"),
    ("model.dropout=1.5", r"variant 'baseline': dropout must be in \[0, 1\), got 1.5"),
    ("variants.r1_adamw.weight_decay=-0.1", "variant 'r1_adamw': weight_decay must not be negative, got -0.1"),
    ("vocab_size=16000", r"vocab_size 16000 is not in vocab_sizes \[250, 500, 1000\]"),
    ("studies.vocab_sweep=maybe", "studies.vocab_sweep must be of type bool, got 'maybe'"),
])
def test_a_bad_value_is_one_line_naming_key_and_variant(tmp_path, params, override, message):
    cpu_params(tmp_path, params, override)
    p = check(tmp_path)
    assert p.returncode == 1 and p.stdout == "", p.stderr
    assert re.fullmatch(f"error: {message}.*{UNDO}", p.stderr), p.stderr
    assert not (tmp_path / "ok").exists()


def test_the_profile_passes_and_the_marker_never_changes(tmp_path, params):
    cpu_params(tmp_path, params)
    assert check(tmp_path).returncode == 0
    first = (tmp_path / "ok").read_bytes()
    cpu_params(tmp_path, params, "variants.r1_adamw.lr=0.002")  # any valid edit: the same bytes, so nothing re-runs
    assert check(tmp_path).returncode == 0 and (tmp_path / "ok").read_bytes() == first


def test_the_check_stage_runs_before_every_other_stage():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert dvc["check"]["params"] == [{"params.yaml": None}]
    assert dvc["check"]["outs"][0] in dvc["download"]["deps"]  # and everything else depends on download


def two_vocab_repo(path):
    """A tiny repo with two BPE sizes, one variant at each (no training is needed by the tests below)."""
    def edit(p):
        p["vocab_sizes"], p["vocab_size"] = [200, 300], 300
        p["variants"] = {"baseline": {"vocab_size": 200, "block_size": 16}, "r2_vocab": {"vocab_size": "@vocab_size"}}
        p["noise"]["variants"] = []
        p["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}
    return make_tiny_repo(path, edit)


@pytest.mark.slow
def test_exp_run_checks_first_and_opt_in_stages_leave_no_hash_warning(tmp_path):
    repo = two_vocab_repo(tmp_path / "repo")
    out = sh(repo, "dvc", "exp", "run", "-S", "vocab_size=abc", check=False)
    assert "usage:" not in out and "Running stage 'tokenize" not in out and "Running stage 'download" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == ["error: vocab_size must be of type int, got 'abc' (a failed -S stays in params.yaml: see "
                      "docs/first-hour.md#a-bad-value)"], out
    (repo / "params.yaml").write_text(sh(repo, "git", "show", "HEAD:params.yaml"))  # the committed values back
    alt = ["tokenize_alt"]
    sh(repo, "dvc", "repro", *alt)  # check, download and the opt-in tokenizers' stage: what `make demo` leaves recorded
    out = sh(repo, "dvc", "exp", "run", "-S", "vocab_size=200", *alt)  # the tokenizers' vocab_size moves
    assert "No file hash info found" not in out, out
    assert "Running stage 'check'" in out and "Running stage 'download'" not in out  # its marker did not change


@pytest.mark.slow
def test_an_experiment_already_recorded_is_not_recorded_again(tmp_path):
    repo = two_vocab_repo(tmp_path / "repo")
    code = "from mainrun.experiments import recorded; print(recorded())"
    run = [sys.executable, "-c", code]
    sh(repo, "dvc", "exp", "run", "--quiet", "check")
    name = sh(repo, *run).strip()
    assert name != "None" and name in sh(repo, "dvc", "exp", "list", "--name-only")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("seed: 1337", "seed: 7"))
    assert sh(repo, *run).strip() == "None"


def test_no_committed_report_names_a_folder_of_its_machine():
    reports = sorted((ROOT / "reports").glob("**/*.md"))
    assert reports
    for report in reports:
        found = re.findall(r"(?<![\w.~])/(?:work|home|root|tmp|Users|mnt|data)/[\w./-]+", report.read_text())
        assert not found, f"{report.relative_to(ROOT)}: {found[:3]}"


def test_an_absolute_source_is_shown_relative_to_the_project(params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = str(tmp_path.parent / "shared" / "titles.csv")
    text, _ = make_report(tmp_path, params, chain_values(), source=source)
    assert str(tmp_path.parent) not in text and "`../shared/titles.csv`" in text


def test_the_report_names_every_setting_and_says_things_once(params, tmp_path):
    text, _ = make_report(tmp_path, params, chain_values())
    assert "more settings" not in text
    named = "vocab 16,000 → 32,000, attn, attn_bias, emb_scale, lr, mlp, mlp_bias, norm, parallel_residual, pos"
    assert named in text
    assert text.count("not the write-up's setting") <= 1 and "published values not drawn" not in text
    assert text.count("The write-up's final value for r1_adamw is 1.330 in Figure 1 and Figure 2; 1.311 in "
                      "Figure 4b: one configuration drawn more than once") == 3


def test_legends_put_the_resolved_setting_beside_the_name(params, tmp_path, monkeypatch):
    from mainrun.report import charts
    drawn = {}
    monkeypatch.setattr(charts, "figure_chart", lambda path, title, curves, *a: drawn.setdefault(path.stem, curves))
    params["variants"]["r3_block256"]["block_size"] = 64  # the CPU profile's stand-in for 256
    make_report(tmp_path, params, chain_values())
    assert list(drawn["fig3_block"]) == ["r2_vocab (block 128)", "r3_block256 (block 64)"]
    assert list(drawn["fig2_vocab"]) == ["r1_adamw (vocab 16,000)", "r2_vocab (vocab 32,000)"]
    assert list(drawn["fig1_adamw"]) == ["baseline", "r1_adamw"]


def test_seed_chart_draws_every_seed_on_a_zoomed_axis(params, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from mainrun.report import charts
    figures = []
    monkeypatch.setattr(charts, "save", lambda fig, path, title: figures.append((path.name, fig)))
    make_report(tmp_path, params, chain_values(noise=0.003))
    fig = dict(figures)["seed_noise.png"]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["r1_adamw", "r4_4_parallel"]
    for ax in panels:
        dots = ax.collections[0].get_offsets()[:, 1]
        assert len(dots) == 3 and ax.get_ylim()[0] > 0  # zoomed, not from zero
        assert ax.get_ylim()[1] - ax.get_ylim()[0] < 0.1 and max(dots) - min(dots) == pytest.approx(0.006)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0].startswith("mean ") and labels[1].startswith("threshold 2·√2·σ = ")
    plt.close("all")


def test_cumulative_chart_is_the_chain_on_val_bpb_in_chain_order(params, tmp_path, monkeypatch):
    from mainrun.report import charts
    drawn = {}
    def chain_chart(path, title, names, values, steps, *args):
        drawn.update(title=title, names=names, values=values, steps=steps)
    monkeypatch.setattr(charts, "chain_chart", chain_chart)
    make_report(tmp_path, params, chain_values())
    chain = ["baseline", "r1_adamw", "r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
             "r4_4_parallel"]
    assert drawn["names"] == chain and drawn["values"] == pytest.approx([1.5 * chain_values()[n] for n in chain])
    order = [drawn["title"].index(s) for s in ("optimizer SGD → AdamW", "vocab 16,000 → 32,000", "block 128 → 256",
                                               "norm", "mlp")]
    assert order == sorted(order) and "val_bpb" in drawn["title"]


def test_readme_says_how_to_read_exp_show():
    readme = (ROOT / "README.md").read_text()
    first = readme.index("dvc exp show")
    assert "--only-changed" in readme[first - 600:first + 600] or "make show" in readme[first - 600:first + 600]


def test_undo_section_exists():
    assert "## A bad value" in (ROOT / "docs" / "first-hour.md").read_text()
