"""Load what ran: the configure stage's resolved settings, the train stages' evaluations, the dvclive curves.

These files are the report's only source of what ran and with which settings; params.yaml is not read again.
"""
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

import pandas as pd
import yaml

from ..config import RunConfig
from ..runlog import read_json

CURVES = ("val_loss", "train_loss")


@dataclass(frozen=True)
class Run:
    name: str
    settings: dict  # flat model + training settings; vocab_size is the one asked for
    parent: str | None = None  # the variant this one is a delta on
    group: int | None = None  # its chain: params.yaml starts one at every `from:`
    study: str | None = None
    repeat_of: str | None = None  # a seed run: the variant it repeats
    data: dict = field(default_factory=dict)  # the tokenized data it read: fingerprint, vocab_size reached, tokens
    metrics: dict | None = None
    curves: dict = field(default_factory=dict)  # {"val_loss": (steps, values), "train_loss": ...}

    @property
    def vocab(self) -> int:
        """The vocabulary the tokenizer reached (the one asked for where no tokenizer was built)."""
        return self.data.get("vocab_size", self.settings.get("vocab_size"))

    @property
    def unreached(self) -> bool:
        return self.vocab < self.settings["vocab_size"]


def flat_settings(config: dict) -> dict:
    """configs/<run>.json -> one flat dict; vocab_size is the one asked for (params.yaml's), not the model's actual
    one (the size its tokenizer reached)."""
    full = RunConfig.from_dict(config).full_dict()  # the file holds only what differs from the defaults
    train = dict(full["train"])
    requested = train.pop("vocab_size_requested")
    return {**full["model"], **train, "vocab_size": requested}


def read_configs(configs_dir) -> dict[str, Run]:
    """Every run that is switched on, in params.yaml's order (configs/runs.json), with its resolved settings."""
    runs = {}
    for row in read_json(Path(configs_dir) / "runs.json")["runs"]:
        if row["enabled"] and "size" not in row and "step" not in row and "lr_factor" not in row:  # the scale,
            # attribution and lr-sweep studies' runs: mainrun/report/scale.py, attribution.py and lr_sweep.py
            config = read_json(Path(configs_dir) / f"{row['name']}.json")
            runs[row["name"]] = Run(row["name"], flat_settings(config), row["parent"], row["group"], row["study"],
                                    row["repeat_of"], config["data"])
    return runs


def read_curve(live_dir, run: str, curve: str) -> tuple[list, list]:
    tsv = Path(live_dir) / run / "plots" / "metrics" / f"{curve}.tsv"
    df = pd.read_csv(tsv, sep="\t") if tsv.exists() else pd.DataFrame({"step": [], curve: []})
    return df["step"].tolist(), df[curve].tolist()


def load_runs(configs: dict[str, Run], metrics_dir, live_dir) -> dict[str, Run]:
    """The configured runs that finished, each with its metrics and curves."""
    runs = {}
    for name, run in configs.items():
        path = Path(metrics_dir) / f"{name}.json"
        if path.exists():
            curves = {c: read_curve(live_dir, name, c) for c in CURVES}
            runs[name] = replace(run, metrics=read_json(path), curves=curves)
    return runs


def load_published() -> dict:
    """published.yaml, with the write-up's repeat gap: one configuration (Rec. 1) drawn twice, this far apart."""
    published = yaml.safe_load(files("mainrun.report").joinpath("published.yaml").read_text())
    a, b = published["rec1_repeat"]
    return {**published, "repeat_gap": round(abs(a - b), 6)}
