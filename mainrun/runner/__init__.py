"""The runner behind `python -m mainrun.parallel` (docs/parallel.md, docs/cluster.md), in two floors:

    guard.py  the repo lock (one runner per repo) and the guard: the runs end with whoever started them
    repo.py   DVC calls, which runs are stale, params overrides, the upstream stages
    --------
    local.py  N runs at once on this machine          cluster.py + task.py  the runs over a Ray cluster
    nodes.py  a local Ray cluster of `ray start` processes (the test's and the benchmark's)

The upper modules import the lower ones, never each other or back (tests/test_imports.py).
"""
