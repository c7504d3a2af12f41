"""Data and shapes for the pytest-benchmark suite: each fastgd kernel next to its plain-NumPy reference.

In the ordinary test run (``pytest``, see pyproject's addopts) benchmarking is disabled and the shapes are tiny:
every benchmark runs once, so none can rot. For real measurements:

    FASTGD_BENCH_SHAPES=full pytest benchmarks --benchmark-enable --benchmark-save=NAME
    FASTGD_BENCH_SHAPES=full pytest benchmarks --benchmark-enable --benchmark-compare=NAME
    pytest-benchmark compare --group-by=group

Groups are named ``kernel|shape`` so the comparison tables put fastgd and NumPy side by side.
"""

import os

import numpy as np

from fastgd.datasets import make_regression

FULL = os.environ.get("FASTGD_BENCH_SHAPES", "smoke") == "full"
NS = [10_000, 1_000_000] if FULL else [2_000]
DS = [10, 100, 1000] if FULL else [10]
BATCHES = [1, 32, 256, 4096] if FULL else [1, 256]
# the plain-NumPy epoch costs ~20 us per batch in Python: beyond this many batches a round takes too long
MAX_REFERENCE_BATCHES = 40_000

_cache = {}


def data(n, d, dtype):
    """X (n, d) of dtype and Y (n, 1), keeping only the most recent shape in memory (1e6 x 1000 is 8 GB)."""
    key = (n, d, np.dtype(dtype).name)
    if key not in _cache:
        _cache.clear()
        X, y, _, _ = make_regression(n, d, dtype=dtype, random_state=0)
        _cache[key] = (X, np.ascontiguousarray(y[:, None]))
    return _cache[key]


def shapes():
    """(n, d, batch) in an order that keeps one data set in memory at a time."""
    return [(n, d, b) for n in NS for d in DS for b in BATCHES if b <= n]
