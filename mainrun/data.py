"""Titles in, Mainrun's train/validation split out.

Mainrun: load_dataset(...).shuffle(seed), first num_titles rows, strip, first int(n * (1 - val_frac)) train.
A bad source (not UTF-8, empty, no text titles, a "title" of megabytes, more than memory holds) stops here
with one line naming the fix, before any stage spends time on it.
"""
import codecs
import json
import os
from pathlib import Path

from .common import MainrunError
from .synthetic import synthetic_titles

HF_PREFIX = "hf:"
HF_ENDPOINT = "https://huggingface.co"  # or $HF_ENDPOINT, as the hub client reads it
PROBE_TIMEOUT_S = 2  # an answer from the hub within this time means there is a network
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
LOCAL_LOADERS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".json": "json", ".txt": "text"}
MAX_TITLE_CHARS = 2000  # 25x Hacker News's 80-character cap: anything longer is not a title (a document, a bad file)
# Memory per title of the hungriest stage, tokenize (the batch encoder holds every title's Encoding at once):
# measured 2.5 kB for 41-character titles and 5.9 kB for 124 (300k titles, vocab 500)
BYTES_PER_TITLE, BYTES_PER_CHAR = 1000, 40
SYNTHETIC_CHARS = 41  # the synthetic titles' mean length


class DataError(MainrunError, ValueError):
    """Bad data input: the message names the fix."""


def load_titles(source: str, num_titles: int, seed: int) -> list[str]:
    """The first num_titles stripped titles of the source after Mainrun's seeded shuffle."""
    if source == "synthetic":
        check_memory(num_titles, SYNTHETIC_CHARS)
        return synthetic_titles(num_titles, seed)
    ds = _load_hf(source[len(HF_PREFIX):]) if source.startswith(HF_PREFIX) else _load_local(source)
    _check_title_column(ds, source)
    if len(ds) < num_titles:
        raise DataError(f"{source} has {len(ds)} rows, fewer than data.num_titles={num_titles}; "
                        f"lower data.num_titles to at most {len(ds)}")
    check_memory(num_titles, _mean_chars(ds))
    raw = ds.shuffle(seed=seed).select(range(num_titles)).flatten_indices()["title"]
    titles = [(t or "").strip() for t in raw]
    empty = [i for i, t in enumerate(titles) if not t]
    if empty:
        raise DataError(f"{len(empty)} of the {num_titles} selected titles are empty after strip(), the first at "
                        f"{_where(ds, raw[empty[0]])} of {source}; drop empty rows from the source file")
    long = next((i for i, t in enumerate(titles) if len(t) > MAX_TITLE_CHARS), None)
    if long is not None:
        raise DataError(f"the title at {_where(ds, raw[long])} of {source} is {len(titles[long])} characters long; "
                        f"a title is one line of text of at most {MAX_TITLE_CHARS} characters (Hacker News allows "
                        f"80): fix or drop that row")
    return titles


def _check_title_column(ds, source: str) -> None:
    if "title" not in ds.column_names:
        raise DataError(f"{source} has no 'title' column (columns: {', '.join(ds.column_names)}); "
                        "rename the column holding the titles to 'title'")
    kind = getattr(ds.features["title"], "dtype", type(ds.features["title"]).__name__)
    if kind not in ("string", "large_string"):
        raise DataError(f"{source}: column 'title' holds {kind} values, not text; store the titles as strings "
                        "(or as a .csv, whose titles are always read as text)")


def _mean_chars(ds) -> float:
    import pyarrow.compute as pc
    mean = pc.mean(pc.utf8_length(ds.data.column("title"))).as_py()
    return mean or 0.0


def _where(ds, value) -> str:
    """'row N' (and its id) of the first source row holding value, counting rows from 1 as a reader does."""
    import pyarrow.compute as pc
    column = ds.data.column("title")
    i = pc.index(pc.is_null(column) if value is None else pc.equal(column, value), True).as_py()
    if "id" in ds.column_names and i >= 0:
        return f"row {i + 1} (id {ds[i]['id']})"
    return f"row {i + 1}"


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, or the cgroup's limit if lower; None if unknown."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free or int(limit), int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def check_memory(num_titles: int, chars_per_title: float) -> None:
    """Refuse, before allocating anything, a corpus the tokenize stage could not hold in memory."""
    per_title = BYTES_PER_TITLE + BYTES_PER_CHAR * chars_per_title
    free = available_memory()
    if free is not None and num_titles * per_title > free:
        raise DataError(f"data.num_titles={num_titles} needs about {num_titles * per_title / 2**30:,.1f} GiB of "
                        f"memory to tokenize ({per_title / 1e3:.1f} kB per title) but {free / 2**30:.1f} GiB is "
                        f"available; lower data.num_titles to at most {int(free // per_title)}")


def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub answers one HEAD request within timeout seconds (any HTTP status counts; proxies from the
    environment apply). Run in a thread so a hanging name lookup cannot outlast the timeout."""
    import threading
    import urllib.error
    import urllib.request
    answered = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:  # an answer all the same
            answered.append(True)
        except Exception:  # refused, unresolvable, timed out, not HTTP: no hub here
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(answered)


def _go_offline() -> None:
    """HF_HUB_OFFLINE=1 for this process: the datasets library then reads its cache and fails at once without it."""
    import sys
    os.environ.update(dict.fromkeys(OFFLINE_VARS, "1"))
    for module in ("huggingface_hub.constants", "datasets.config"):  # already imported: they read it at import
        if module in sys.modules:
            sys.modules[module].HF_HUB_OFFLINE = True


def _load_hf(name: str):
    offline = any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in OFFLINE_VARS)
    if not offline and not hub_reachable(os.environ.get("HF_ENDPOINT", HF_ENDPOINT)):
        _go_offline()  # no network: one quick probe instead of the hub client's retries (about 25 s)
    from datasets import load_dataset
    try:
        return load_dataset(name, split="train")
    except (ConnectionError, OSError) as e:  # offline: ConnectionError; HF_HUB_OFFLINE=1: a missing-cache error
        raise DataError(f"cannot load '{name}' from the Hugging Face hub ({type(e).__name__}); offline, set "
                        "data.source to a local .csv/.parquet/.jsonl/.txt file or 'synthetic', or pre-fill "
                        "HF_DATASETS_CACHE on a machine with network and copy it here") from None


def _load_local(path: str):
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError
    suffix = Path(path).suffix.lower()
    if suffix not in LOCAL_LOADERS:
        raise DataError(f"data.source '{path}': unknown kind; use hf:<name>, 'synthetic', or a file ending in "
                        f"{', '.join(LOCAL_LOADERS)}")
    if not os.path.isfile(path):
        raise DataError(f"data.source file '{path}' does not exist; fix the path in params.yaml (data.source)")
    if os.path.getsize(path) == 0:
        raise DataError(f"data.source file '{path}' is empty; point data.source at a file of titles")
    kind = LOCAL_LOADERS[suffix]
    if kind != "parquet":
        _check_utf8(path)
    extra = {  # csv: a title "NA" or "null" stays a title, and "42", "007" or "1e3" stay text exactly as written
        "csv": {"keep_default_na": False, "converters": {"title": str}},
        "text": {"encoding": "utf-8-sig"},  # a byte-order mark (Windows editors) is not part of the first title
    }.get(kind, {})
    try:
        ds = load_dataset(kind, data_files=os.path.abspath(path), split="train", **extra)
    except (DatasetGenerationError, ValueError) as e:
        raise DataError(_unreadable(path, kind, e)) from None
    if suffix == ".txt":
        ds = ds.rename_column("text", "title")
    return ds


def _check_utf8(path: str) -> None:
    """Stop at the first line that is not UTF-8, naming the conversion."""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                line += chunk.count(b"\n", 0, max(e.start - pending, 0))
                break
            line += chunk.count(b"\n")
        else:
            try:
                decoder.decode(b"", final=True)
                return
            except UnicodeDecodeError:
                pass
    p = Path(path)
    raise DataError(f"data.source file '{path}' is not UTF-8 (line {line} is the first that is not); convert it, "
                    f"e.g. from Latin-1: iconv -f latin1 -t utf-8 '{path}' > '{p.with_name(p.stem + '-utf8' + p.suffix)}'")


def _unreadable(path: str, kind: str, e: Exception) -> str:
    """One line for a file the loader could not parse: its innermost cause, without the traceback."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if type(e).__name__ == "EmptyDataError" or "corresponds to no data" in text:
        return f"data.source file '{path}' holds no rows; point data.source at a file of titles"
    return f"data.source file '{path}' is not a readable {kind} file ({text}); fix or re-export it"


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
