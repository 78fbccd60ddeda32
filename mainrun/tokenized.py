"""The tokenize stage's on-disk format: <dir>/{train,val}.npy (token ids) and meta.json (counts, fingerprint)."""
import json
from pathlib import Path

import numpy as np


def load_ids(tokenized_dir, split: str) -> np.ndarray:
    return np.load(Path(tokenized_dir) / f"{split}.npy")


def load_meta(tokenized_dir) -> dict:
    return json.loads((Path(tokenized_dir) / "meta.json").read_text())
