"""Titles in, Mainrun's train/validation split out.

Mainrun: load_dataset(...).shuffle(seed), first num_titles rows, strip, first int(n * (1 - val_frac)) train.
"""
import json
import os
from pathlib import Path

from .config import MainrunError
from .synthetic import synthetic_titles

HF_PREFIX = "hf:"
LOCAL_LOADERS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".json": "json", ".txt": "text"}


class DataError(MainrunError, ValueError):
    """Bad data input: the message names the fix."""


def load_titles(source: str, num_titles: int, seed: int) -> list[str]:
    """The first num_titles stripped titles of the source after Mainrun's seeded shuffle."""
    if source == "synthetic":
        titles = synthetic_titles(num_titles, seed)
    else:
        ds = _load_hf(source[len(HF_PREFIX):]) if source.startswith(HF_PREFIX) else _load_local(source)
        if "title" not in ds.column_names:
            raise DataError(f"{source} has no 'title' column (columns: {', '.join(ds.column_names)}); "
                            "rename the column holding the titles to 'title'")
        if len(ds) < num_titles:
            raise DataError(f"{source} has {len(ds)} rows, fewer than data.num_titles={num_titles}; "
                            f"lower data.num_titles to at most {len(ds)}")
        ds = ds.shuffle(seed=seed).select(range(num_titles)).flatten_indices()
        titles = [(t or "").strip() for t in ds["title"]]
    empty = sum(1 for t in titles if not t)
    if empty:
        raise DataError(f"{empty} of the {num_titles} selected titles are empty after strip(); "
                        "drop empty rows from the source file")
    return titles


def _load_hf(name: str):
    from datasets import load_dataset
    try:
        return load_dataset(name, split="train")
    except (ConnectionError, OSError) as e:  # offline: ConnectionError; HF_HUB_OFFLINE=1: a missing-cache error
        raise DataError(f"cannot load '{name}' from the Hugging Face hub ({type(e).__name__}); offline, set "
                        "data.source to a local .csv/.parquet/.jsonl/.txt file or 'synthetic', or pre-fill "
                        "HF_DATASETS_CACHE on a machine with network and copy it here") from None


def _load_local(path: str):
    from datasets import load_dataset
    suffix = Path(path).suffix.lower()
    if suffix not in LOCAL_LOADERS:
        raise DataError(f"data.source '{path}': unknown kind; use hf:<name>, 'synthetic', or a file ending in "
                        f"{', '.join(LOCAL_LOADERS)}")
    if not os.path.isfile(path):
        raise DataError(f"data.source file '{path}' does not exist; fix the path in params.yaml (data.source)")
    kind = LOCAL_LOADERS[suffix]
    extra = {"keep_default_na": False} if kind == "csv" else {}  # a title "NA" or "null" stays a title
    ds = load_dataset(kind, data_files=os.path.abspath(path), split="train", **extra)
    if suffix == ".txt":
        ds = ds.rename_column("text", "title")
    return ds


def split_titles(titles: list[str], val_frac: float) -> tuple[list[str], list[str]]:
    n = int(len(titles) * (1 - val_frac))
    if n == 0 or n == len(titles):
        raise DataError(f"val_frac={val_frac} of {len(titles)} titles leaves an empty split; raise data.num_titles")
    return titles[:n], titles[n:]


def split_stats(titles: list[str]) -> dict:
    """Counts the legacy metric and bits-per-byte need. Bytes: UTF-8 of the titles plus one per end-of-title."""
    return {"titles": len(titles), "characters": sum(map(len, titles)),
            "bytes": sum(len(t.encode("utf-8")) for t in titles) + len(titles)}


def write_split(titles: list[str], path) -> None:
    """A JSON list, so titles round-trip exactly (inner newlines and all)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(titles, f, ensure_ascii=False, indent=0)


def read_split(path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def download(source: str, num_titles: int, val_frac: float, seed: int, out_dir) -> dict:
    if num_titles < 2:
        raise DataError(f"data.num_titles must be at least 2, got {num_titles}")
    if not 0 < val_frac < 1:
        raise DataError(f"data.val_frac must be strictly between 0 and 1, got {val_frac}")
    train, val = split_titles(load_titles(source, num_titles, seed), val_frac)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_split(train, out / "train.json")
    write_split(val, out / "val.json")
    stats = {"source": source, "seed": seed, "train": split_stats(train), "val": split_stats(val)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
