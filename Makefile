# `make demo`: install what is missing, then run the whole DAG offline on the CPU profile (synthetic corpus).
# `make test`: install what is missing, then run the test suite (what .ci/run calls).
# `make show`: the experiments' headline metrics (dvc exp show with a few columns).
# Where everything is installed: the active virtual environment, else .venv here, made by PYTHON on first use (a
# system Python may refuse pip: PEP 668). Its bin/ comes first on PATH, so pip, python and dvc, here and in the
# stages and tests, are its own.
PYTHON ?= python3
VENV ?= $(or $(VIRTUAL_ENV),$(CURDIR)/.venv)
PY = $(VENV)/bin/python
DVC = $(VENV)/bin/dvc
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
PLOTS_TEMPLATE = .dvc/plots/offline.html

.PHONY: install demo test bench show

$(PY):
	$(PYTHON) -m mainrun.bootstrap $(VENV)

HAS = $(PY) -c "import sys; from importlib.util import find_spec; sys.exit(not all(map(find_spec, sys.argv[1:])))"
install: $(PY)  # found, not imported: importing them all took 5 s of every make demo and make test
	@$(HAS) torch || $(PY) -m pip install torch==2.13.0
	@$(PY) -m pip show -q mainrun >/dev/null 2>&1 && $(HAS) dvc dvclive datasets tokenizers pytest xdist vl_convert ray \
		|| $(PY) -m pip install -e ".[test,plots]"
	@test -f $(PLOTS_TEMPLATE) || $(PY) -m mainrun.plots_template $(PLOTS_TEMPLATE)

# The profile is written into params.yaml first (idempotent), then the DAG runs, then `dvc exp run` records it as
# an experiment with nothing left to run, unless an experiment of this commit already holds the same dvc.lock and
# params.yaml (mainrun.experiments). A first `dvc exp run` in a fresh clone would start by restoring the outputs
# HEAD records: HEAD records none (no dvc.lock is committed), and DVC warns once per output.
J ?= 2  # two runs at once (mainrun.parallel): faster than one on 2 cores (README, Measured); J=1: plain dvc repro
PROFILE ?= profiles/cpu.yaml
demo: install  # PROFILE=profiles/mine.yaml: another profile
	$(PY) -m mainrun.profile --apply $(PROFILE)
ifeq ($(J),1)
	$(DVC) repro
else  # the runner asks DVC four times what is stale: `dvc status` once, when nothing is, keeps a second demo short
	$(DVC) status --quiet || $(PY) -m mainrun.parallel -j $(J)
endif
	$(PY) -m mainrun.experiments || $(DVC) exp run --quiet
	@echo "recorded as an experiment: make show (or dvc exp show); the report is reports/report.md"
	@echo "DVC's 'git add ... dvc.lock' hint above: do not commit. dvc.lock and params.yaml now hold this profile's runs,"
	@echo "which the experiment keeps (dvc exp apply NAME brings them back); the committed params.yaml is the real run's."

SHOW ?= ^val_bpb\.(baseline|r1_adamw|r2_vocab|r3_block256|r4_4_parallel)$$
show:  # SHOW: a regex of the metric and param columns to keep
	$(DVC) exp show --md --drop '.*' --keep '^Experiment$$|$(SHOW)'

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/throughput.py
