import json

import numpy as np
import pandas as pd
import pytest

from mainrun.data import DataError, download, load_titles, read_split, split_titles
from mainrun.synthetic import synthetic_titles


@pytest.fixture
def csv_source(tmp_path):
    titles = [f"  Title number {i} about Rust  " for i in range(50)]
    path = tmp_path / "titles.csv"
    pd.DataFrame({"id": range(50), "title": titles}).to_csv(path, index=False)
    return path, titles


def test_local_csv_split_matches_mainrun_formula(tmp_path, csv_source):
    path, titles = csv_source
    stats = download(str(path), num_titles=40, val_frac=0.1, seed=1337, out_dir=tmp_path / "raw")
    order = np.random.default_rng(1337).permutation(50)[:40]  # Dataset.shuffle(seed) is this permutation
    expected = [titles[i].strip() for i in order]
    n = int(40 * (1 - 0.1))
    assert read_split(tmp_path / "raw" / "train.json") == expected[:n]
    assert read_split(tmp_path / "raw" / "val.json") == expected[n:]
    assert stats["train"]["titles"] == 36 and stats["val"]["titles"] == 4
    assert stats["val"]["characters"] == sum(map(len, expected[n:]))


@pytest.mark.parametrize("val_frac", [0.1, 0.25, 0.07])
def test_synthetic_split_matches_formula(val_frac):
    titles = load_titles("synthetic", 333, 1337)
    train, val = split_titles(titles, val_frac)
    assert len(train) == int(333 * (1 - val_frac)) and train + val == titles


def test_other_local_formats(tmp_path):
    titles = [f"Show HN: thing {i}" for i in range(20)]
    (tmp_path / "t.txt").write_text("\n".join(titles) + "\n")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"title": t}) + "\n" for t in titles))
    pd.DataFrame({"title": titles}).to_parquet(tmp_path / "t.parquet")
    got = [sorted(load_titles(str(tmp_path / f"t.{ext}"), 20, 1)) for ext in ("txt", "jsonl", "parquet")]
    assert got[0] == got[1] == got[2] == sorted(titles)


def test_csv_titles_that_look_like_missing_values_stay_titles(tmp_path):
    pd.DataFrame({"id": [1, 2, 3], "title": ["NA", "null", "NaN"]}).to_csv(tmp_path / "t.csv", index=False)
    assert sorted(load_titles(str(tmp_path / "t.csv"), 3, 1)) == ["NA", "NaN", "null"]


def test_same_seed_gives_byte_identical_splits(tmp_path):
    for d in ("a", "b"):
        download("synthetic", 500, 0.1, 1337, tmp_path / d)
    for f in ("train.json", "val.json", "stats.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    download("synthetic", 500, 0.1, 1338, tmp_path / "c")
    assert (tmp_path / "a" / "train.json").read_bytes() != (tmp_path / "c" / "train.json").read_bytes()


def test_synthetic_titles_look_like_hacker_news():
    titles = synthetic_titles(2000, 1337)
    assert all(t and t == t.strip() and "\n" not in t for t in titles)
    assert any(t.startswith("Show HN:") for t in titles) and any(t.startswith("Ask HN:") for t in titles)
    assert any("[pdf]" in t for t in titles) and any("(20" in t or "(19" in t for t in titles)
    assert len(set(titles)) > 1000


def test_hub_unreachable_names_the_offline_fixes(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="local .csv.*synthetic.*HF_DATASETS_CACHE"):
        load_titles("hf:julien040/hacker-news-posts", 100, 1337)


@pytest.mark.parametrize("make, kwargs, message", [
    (None, {"source": "missing.csv"}, "does not exist"),
    (None, {"source": "titles.xlsx"}, "unknown kind"),
    (lambda p: pd.DataFrame({"name": ["a", "b", "c"]}).to_csv(p, index=False), {}, "no 'title' column"),
    (lambda p: pd.DataFrame({"title": ["a", "b", "c"]}).to_csv(p, index=False), {"num_titles": 10},
     "fewer than data.num_titles=10"),
    (lambda p: pd.DataFrame({"id": [1, 2, 3], "title": ["a", "  ", "c"]}).to_csv(p, index=False), {},
     "empty after strip"),
    (lambda p: pd.DataFrame({"title": ["a", "b", "c"]}).to_csv(p, index=False), {"val_frac": 1.0},
     "strictly between 0 and 1"),
    (lambda p: pd.DataFrame({"title": ["a", "b", "c"]}).to_csv(p, index=False), {"val_frac": 0.0},
     "strictly between 0 and 1"),
])
def test_bad_input_fails_with_one_clear_line(tmp_path, make, kwargs, message):
    path = tmp_path / "titles.csv"
    if make:
        make(path)
    args = {"source": str(path), "num_titles": 3, "val_frac": 0.34, "seed": 1, "out_dir": tmp_path / "raw", **kwargs}
    with pytest.raises(DataError, match=message) as err:
        download(**args)
    assert "\n" not in str(err.value)
