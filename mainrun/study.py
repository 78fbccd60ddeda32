"""What a study adds to the runs: each run's settings and its row of configs/runs.json.

The configure stage finds every run in turn (mainrun.configure.STUDIES): the variants, then each study that is on,
reading the runs found before it. A study is a module with `on(params)` and `runs(params, found)`, returning the
runs it adds. Attribution generates runs (the parts of each bundled step); the others are axes, a list in
params.yaml whose every value multiplies a selection of the runs found so far (noise: seeds, scale: sizes,
lr_sweep: learning-rate factors), so an axis multiplies what the studies before it added too.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    settings: dict  # flat model and training settings, with 'study'
    row: dict  # its row of configs/runs.json: name, parent, group, repeat_of, study, enabled, then its study's own
    made_by: str | None = None  # the study that added it ('noise' for a seed repeat); None for a variant
    of: str | None = None  # the run an axis made it from

    @property
    def name(self) -> str:
        return self.row["name"]

    @property
    def trains(self) -> bool:
        """A variant of a study that is on, or a study's run that no other run stands for (same_as)."""
        return self.row["enabled"]


def study_run(name: str, settings: dict, made_by: str, same_as: str | None, of: str | None = None, **row) -> Run:
    """A run a study adds: trained unless same_as names the run that has its settings. row: its own fields."""
    row = {"name": name, "parent": None, "group": None, "repeat_of": None, "study": settings["study"],
           "enabled": same_as is None, **row, "same_as": same_as}
    return Run(settings, row, made_by, of)


def identity(settings: dict) -> tuple:
    """What makes two runs the same run: their settings, whichever study asked for them."""
    return tuple(sorted((k, repr(v)) for k, v in settings.items() if k != "study"))


def trained_as(found: dict[str, Run]) -> dict[tuple, str]:
    """{identity: the first run with it that trains}."""
    known = {}
    for name, run in found.items():
        if run.trains:
            known.setdefault(identity(run.settings), name)
    return known
