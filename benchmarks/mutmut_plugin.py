"""pytest plugin of the mutation benchmark ([tool.mutmut] pytest_add_cli_args loads it; benchmarks/mutation.py).

While mutmut learns which tests call which function (its mutant name 'stats'), the processes a test starts (a stage
in a temporary repo) run the plain code: mutmut's recorder there would read its settings from a pyproject.toml in
their working directory, and fail. This process still records (mutmut keeps the name in-process too); a started
process cannot report back anyway. Under a mutant, they inherit it: a stage run by a test runs the mutant.
"""
import os


def pytest_configure(config):
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]
