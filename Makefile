# `make demo`: install what is missing, then run the whole DAG offline on the CPU profile (synthetic corpus).
# `make test`: install what is missing, then run the test suite (what .ci/run calls).
PY ?= python3

.PHONY: install demo test bench

install:
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install torch==2.13.0
	@$(PY) -m pip show -q mainrun >/dev/null 2>&1 && $(PY) -c "import dvc, dvclive, datasets, tokenizers, pytest, xdist, ray" 2>/dev/null \
		|| $(PY) -m pip install -e ".[test]"

J ?= 1
demo: install  # J=2: two runs at once through mainrun.parallel
ifeq ($(J),1)
	dvc exp run $$($(PY) -m mainrun.profile profiles/cpu.yaml)
else
	$(PY) -m mainrun.parallel -j $(J) $$($(PY) -m mainrun.profile profiles/cpu.yaml)
endif

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/throughput.py
