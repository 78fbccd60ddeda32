import copy
import os
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from mainrun.config import GPTConfig, RunConfig, TrainConfig
from mainrun.tokenizer import build

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["DVC_NO_ANALYTICS"] = "1"  # else every dvc call starts an analytics daemon
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # no pool of compile workers, each importing torch
# the stages write __pycache__ into the folders they depend on, as a user's do (.dvcignore keeps it out of their hash)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def committed(path: str, root: Path = ROOT) -> str:
    """A file as committed at HEAD, else (outside a git checkout, or not committed yet) as it is on disk.

    Tests read params.yaml this way: `dvc exp run -S ...` (the demo) rewrites the workspace's copy, and no test may
    depend on what the user last ran. Commit an edit of params.yaml to test it."""
    try:
        p = subprocess.run(["git", "show", f"HEAD:./{path}"], cwd=root, capture_output=True, text=True)
    except OSError:  # no git
        p = None
    return p.stdout if p and p.returncode == 0 else (root / path).read_text()


def committed_params(root: Path = ROOT) -> dict:
    return yaml.safe_load(committed("params.yaml", root))


_PARAMS = committed_params()


def pytest_configure(config):
    """Under pytest-xdist each worker (and the stages it starts) gets its share of the cores: OpenMP threads beyond
    the cores spin against each other and made the suite three times slower."""
    if hasattr(config.option, "loadscopereorder"):  # else pytest-xdist >= 3.8 puts the modules with most tests first
        config.option.loadscopereorder = False  # and the slow ones last (see pytest_collection_modifyitems)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from mainrun.slots import cpu_cores

        threads = max(1, cpu_cores() // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Slow tests first: under `--dist loadfile` each worker takes whole modules in this order, so the longest
    modules start at once instead of one of them starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def slots_released():
    """A slot a test takes in this worker process ends with the test: a later test's in-process run would else take
    it (and its thread count) while the stage it compares with runs unslotted."""
    from mainrun import slots

    held = len(slots._held)
    yield
    for f in slots._held[held:]:
        f.close()
    del slots._held[held:]
    slots._mine.clear()


@pytest.fixture
def params() -> dict:
    """The committed params.yaml (never the workspace's), a fresh copy per test."""
    return copy.deepcopy(_PARAMS)


@pytest.fixture(scope="session")
def tiny_tokenized(tmp_path_factory):
    """A small synthetic corpus tokenized with BPE at vocab 300."""
    from mainrun.synthetic import synthetic_titles

    titles = synthetic_titles(600, seed=7)
    out = tmp_path_factory.mktemp("tok") / "bpe-300"
    build(titles[:540], titles[540:], 300, out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_tokenized):
    """A run config of a tiny model over the tiny corpus; tests replace fields to make variants."""
    from mainrun.tokenized import load_meta

    meta = load_meta(tiny_tokenized)
    model = GPTConfig(vocab_size=meta["vocab_size"], block_size=16, n_layer=1, n_head=2, d_model=16)
    train = TrainConfig(vocab_size_requested=300, batch_size=4, epochs=1, evals_per_epoch=2, optimizer="adamw", lr=3e-3,
                        weight_decay=0.01)
    return RunConfig("tiny", model, train, {"dir": str(tiny_tokenized), "fingerprint": meta["fingerprint"]})


@pytest.fixture
def charts_not_rendered(monkeypatch):
    """For the report's unit tests, which read its text and what each chart is given: every chart is still built
    (each plot call runs) and its file named, but not laid out and encoded (0.4 s a chart, 80% of a report's time).
    The module-scoped reports, and the report stage in the DVC-level tests, render theirs for real."""
    from mainrun.report import charts, cost_charts

    def save(fig, path, title):
        charts.plt.close(fig)
        Path(path).touch()
    monkeypatch.setattr(charts, "save", save)
    monkeypatch.setattr(cost_charts, "save", save)
