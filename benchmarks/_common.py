"""Timing helpers shared by the development benchmarks (imported as ``from _common import ...``: a script's
own directory is on sys.path, and tests/test_benchmark_scripts.py adds it). The helpers ``fastgd bench`` needs
too live in ``fastgd.bench``."""

import time


def best_of(fn, repeat):
    """Minimum wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def timed_rounds(fns, rounds):
    """Wall time of every function of ``fns`` (name -> callable), once per round in order, for ``rounds``
    rounds: a list of {name: seconds}, one per round (a burst of load elsewhere hits a round's entries alike)."""
    out = []
    for _ in range(rounds):
        t = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[name] = time.perf_counter() - t0
        out.append(t)
    return out
