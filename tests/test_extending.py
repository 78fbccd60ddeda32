"""Adding a model flag (docs/extending.md): the template tests a new flag joins by itself, the key list of
docs/params.md, and the guide's example (QK-norm as r4_5_qknorm) applied in a tiny repo, where nothing re-trains.

Copying this for a flag of yours: nothing to copy for the first two tests, they are parametrised over every boolean
and choice field of GPTConfig. Run them before you commit: the first compares your model.py with the committed one.
"""
import re
import subprocess
import time
import types
from dataclasses import fields, replace
from typing import Literal, get_args, get_origin

import pytest
import torch
import yaml

from conftest import ROOT
from mainrun.config import DELTA_KEYS, SAME_FUNCTION_KEYS, GPTConfig

SMALL = GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, d_model=8, dropout=0.0)


def choices(f) -> tuple:
    return (False, True) if f.type is bool else get_args(f.type) if get_origin(f.type) is Literal else ()


FLAGS = [(f.name, v) for f in fields(GPTConfig) for v in choices(f) if v != f.default]  # each flag away from its default


def forward_and_grads(gpt_class, cfg: GPTConfig, spread: bool = False):
    """The model's parameters at init, its loss on a fixed batch and its gradients, from one seed. spread: every
    parameter re-drawn at std 0.5 first (at init's 0.02 the attention is near uniform: RoPE would change nothing)."""
    torch.manual_seed(0)
    model = gpt_class(cfg)
    if spread:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.block_size), generator=torch.Generator().manual_seed(1))
    _, loss = model(idx, idx.roll(-1, 1))
    loss.backward()
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, loss.detach(),
            {n: p.grad for n, p in model.named_parameters()})


def committed_model():
    """mainrun/model.py as committed (HEAD), as a module of the package: the model before your edit."""
    try:
        source = subprocess.run(["git", "show", "HEAD:mainrun/model.py"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git HEAD to compare with")
    module = types.ModuleType("mainrun._committed_model")
    module.__package__ = "mainrun"
    exec(compile(source, "HEAD:mainrun/model.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("flag, value", [(None, None)] + FLAGS)
def test_the_edit_leaves_every_existing_model_bit_identical(flag, value):
    """Your working model.py builds each existing configuration (the defaults, each flag on) exactly as the committed
    one: a new flag at its default must change no parameter, no random number drawn, no forward, no gradient."""
    from mainrun.model import GPT
    cfg = SMALL if flag is None else replace(SMALL, **{flag: value})
    old, new = forward_and_grads(committed_model().GPT, cfg), forward_and_grads(GPT, cfg)
    assert list(new[0]) == list(old[0]), f"{flag}={value}: the parameters differ from the committed model's"
    assert all(torch.equal(new[0][k], old[0][k]) for k in old[0]), f"{flag}={value}: another initialisation"
    assert torch.equal(new[1], old[1]), f"{flag}={value}: the forward differs from the committed model's"
    assert all(torch.equal(new[2][k], old[2][k]) for k in old[2]), f"{flag}={value}: the gradients differ"


@pytest.mark.parametrize("flag, value", FLAGS)
def test_the_flag_on_changes_the_forward(flag, value):
    """A flag that changes nothing is a flag the model ignores (a field added, no branch reading it); one marked
    SAME_FUNCTION must compute the same function another way: equal within float tolerance."""
    from mainrun.model import GPT
    _, default, _ = forward_and_grads(GPT, SMALL, spread=True)
    _, on, _ = forward_and_grads(GPT, replace(SMALL, **{flag: value}), spread=True)
    if flag in SAME_FUNCTION_KEYS:
        assert torch.allclose(on, default, atol=1e-5)
    else:
        assert not torch.equal(on, default), f"{flag}={value} leaves the forward unchanged: does model.py read it?"


def test_docs_params_lists_every_key_a_variant_may_set():
    """docs/params.md's key list is kept by hand: this names the key it lacks (a new field joins DELTA_KEYS)."""
    text = (ROOT / "docs" / "params.md").read_text()
    listed = set(re.search(r"Keys a delta may set: `([^`]+)`", text).group(1).split())
    assert not DELTA_KEYS - listed, f"add to docs/params.md's 'Keys a delta may set': {sorted(DELTA_KEYS - listed)}"
    assert not listed - DELTA_KEYS, f"docs/params.md lists keys no variant may set: {sorted(listed - DELTA_KEYS)}"


# --- the guide's example, end to end in a tiny repo ---------------------------------------------------------------

GUIDE = ROOT / "docs" / "extending.md"
EDIT = re.compile(r"```(?:python|yaml)\n# (\S+), after the line: ([^\n]+)\n(.*?)```", re.S)


def guide_edits() -> list[tuple[str, str, str]]:
    """(file, anchor line, lines to insert after it) of each code block of docs/extending.md that edits a file."""
    return [(m[1], m[2].strip(), m[3]) for m in EDIT.finditer(GUIDE.read_text())]


def insert_after(path, anchor: str, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if line.strip() == anchor]
    path.write_text("".join(lines[:at + 1]) + text + "".join(lines[at + 1:]))


def apply_guide(repo) -> str:
    """The guide's edits; params.yaml's variant goes after its anchor's variant. Returns the new variant's name."""
    for file, anchor, text in guide_edits():
        if file != "params.yaml":
            insert_after(repo / file, anchor, text)
            continue
        params = yaml.safe_load((repo / "params.yaml").read_text())
        [(name, delta)] = yaml.safe_load(text).items()
        after = next(iter(yaml.safe_load(anchor)))
        items = list(params["variants"].items())
        at = [n for n, _ in items].index(after) + 1
        params["variants"] = dict(items[:at] + [(name, delta)] + items[at:])
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return name


def test_the_guides_edits_apply_to_this_code(tmp_path):
    """Each block's anchor line is in its file once (the example stays in step with the code it edits)."""
    edits = guide_edits()
    assert [f for f, _, _ in edits] == ["mainrun/config.py", "mainrun/model.py", "mainrun/model.py", "params.yaml"]
    for file, anchor, _ in edits:
        if file != "params.yaml":
            assert [line.strip() for line in (ROOT / file).read_text().splitlines()].count(anchor) == 1, (file, anchor)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.mark.slow
def test_a_new_flag_retrains_nothing_and_a_changed_default_is_caught(tmp_path_factory):
    from tiny_repo import make_tiny_repo, sh

    def two_variants(params):  # the guide's anchor variant and the baseline, on one tokenizer
        params.update(vocab_sizes=[300], vocab_size=300)
        params["variants"] = {"baseline": {"vocab_size": 300, "block_size": 16},
                              "r4_4_parallel": {"optimizer": "adamw", "lr": 3.0e-3, "parallel_residual": True}}
        params["noise"]["variants"] = []
        params["studies"] = {"failed_attempts": False, "scale": False, "attribution": False}  # the switches still used
    repo = make_tiny_repo(tmp_path_factory.mktemp("extend"), two_variants)
    runs = ["baseline", "r4_4_parallel"]
    # the runs and what they need, not the report: the `dvc repro` after the edit makes it, judging the new step
    assert {f"train@{n}" for n in runs} <= ran(sh(repo, "dvc", "repro", "train"))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "trained")

    new = apply_guide(repo)  # the field, the model branch, the variant
    t0 = time.time()
    out = sh(repo, "python", "-m", "mainrun.prove")
    proving_s = time.time() - t0
    assert all(f"{n}: proved unchanged in " in out for n in runs) and "committed 2 run(s)" in out, out
    print("\n" + out.strip())
    out = sh(repo, "dvc", "repro")
    retrained = sorted(s for s in ran(out) if s.startswith("train@"))
    assert retrained == [f"train@{new}"], out  # the new step alone trains
    assert not {s for s in ran(out) if s.startswith(("download", "tokenize"))}  # neither did prove's configure run
    assert new in (repo / "reports" / "report.md").read_text()  # the report judges it
    print(f"\nproving {len(runs)} runs: {proving_s:.1f} s; re-trained after adding the flag: {retrained}")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "qk_norm")

    model = repo / "mainrun" / "model.py"  # another initialisation: a change of the default computation
    model.write_text(model.read_text().replace("std=0.02", "std=0.03"))
    out = sh(repo, "python", "-m", "mainrun.prove")
    assert all(f"{n}: re-train: its training loss at step 1 is" in out for n in runs + [new]), out
    assert "committed 0 run(s)" in out
    assert {f"train@{n}" for n in runs + [new]} <= set(yaml.safe_load(sh(repo, "dvc", "status", "--json")))
    # another default value: tests/test_prove.py::test_what_can_be_proved (no DVC needed to judge it)
