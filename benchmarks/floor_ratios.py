"""The epoch goals: fastgd epochs divided by the all-core memory floor, measured in interleaved rounds.

    python benchmarks/floor_ratios.py [--n 1000000] [--d 100] [--rounds 7] [--threads 2]
                                      [--backends native numba] [--optimizer adam] [--json out.json]

Every round times, once each and in the same order: the all-core read of X (``fastgd._kernels.read_floor``),
the same read on one thread, the native backend's all-core read (``fastgd._native.read_floor``, a C loop),
NumPy's ``X.sum()``, the all-core read of float32 X, and, per backend, the
float64 epoch at B = 256, B = 4096 and the batch LinearRegressor's default (batch_size="auto") picks, the
float32 epoch at B = 256 and B = 4096, and the one-thread epoch at B = 256 and B = 4096. The floor of a round
is its fastest read of X (the faster all-core read, unless a busy memory bus made the one-thread read or
``X.sum()`` faster). Each ratio is formed within one round (the memory system of a shared VM moves between
rounds: the floor was seen anywhere between 13 and 80 ms) and the table prints its median over the rounds,
with its range and the median reads themselves, and the load average before and after (others' work on the
machine shows there). Goals, float64, d = 100, 1e6 rows, Adam, all cores:

  epoch / floor at B = 256              <= 1.25
  epoch / floor at B = 4096             <= 1.10
  epoch / floor at the default batch    <= 1.60
  float32 epoch / float64 epoch         <= 0.60   (its floor is 0.5)

2-thread / 1-thread epoch has no goal; it is printed because it shows whether the parallel path pays.
This is a benchmark, never a test: tests/test_floor_ratios_bench.py only runs it on tiny sizes.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from fastgd import _engine
from fastgd import _kernels as K
from fastgd.bench import Threads, default_batch_size, fastgd_epoch, floor_of, floor_reads
from fastgd.datasets import make_regression
from fastgd.optimizers import OPTIMIZERS

GOALS = {  # ratio name -> upper bound
    "epoch/floor B=256": 1.25,
    "epoch/floor B=4096": 1.10,
    "epoch/floor default B": 1.60,
    "f32/f64 B=256": 0.60,
    "f32/f64 B=4096": 0.60,
}


def loadavg():
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (float("nan"),) * 3


def timers(X, X32, Y, backends, threads, optimizer, batches):
    """name -> callable; the epochs continue from one fresh state each (timing, not convergence)."""
    fns = {
        **floor_reads(X, threads, "floor"),
        "floor 1t": Threads(lambda: K.read_floor(X), 1),
        "numpy X.sum": X.sum,
        **floor_reads(X32, threads, "floor f32"),
    }
    for be in backends:
        for b in batches:
            opt = OPTIMIZERS[optimizer](lr=1e-3)
            fns[f"{be} f64 B={b}"] = fastgd_epoch(X, Y, opt, b, threads, backend=be)
        for b in sorted({256, 4096} & set(batches)):
            opt = OPTIMIZERS[optimizer](lr=1e-3)
            fns[f"{be} f32 B={b}"] = fastgd_epoch(X32, Y, opt, b, threads, backend=be)
            fns[f"{be} f64 B={b} 1t"] = fastgd_epoch(X, Y, opt, b, 1, backend=be)
    return fns


def ratios_of(t, backends, default_b, threads):
    """Per-round ratios from one round's times ``t``. The floor is the round's fastest read-only pass over X:
    the faster all-core read (Numba's or the native C loop) unless NumPy's ``X.sum()`` or the one-thread read beat it (on a busy host, when
    other tenants hold the memory bus, the second core adds nothing and the all-core read can lose)."""
    read = floor_of(t, "floor")
    fl = min(read, t["floor 1t"], t["numpy X.sum"])
    r = {"all-core read/numpy X.sum": read / t["numpy X.sum"], "1-thread read/all-core read":
         t["floor 1t"] / read, "all-core read f32/f64": floor_of(t, "floor f32") / read}
    for be in backends:
        r[f"{be} epoch/floor B=256"] = t[f"{be} f64 B=256"] / fl
        r[f"{be} epoch/floor B=4096"] = t[f"{be} f64 B=4096"] / fl
        r[f"{be} epoch/floor default B"] = t[f"{be} f64 B={default_b}"] / fl
        r[f"{be} f32/f64 B=256"] = t[f"{be} f32 B=256"] / t[f"{be} f64 B=256"]
        r[f"{be} f32/f64 B=4096"] = t[f"{be} f32 B=4096"] / t[f"{be} f64 B=4096"]
        r[f"{be} {threads}t/1t B=256"] = t[f"{be} f64 B=256"] / t[f"{be} f64 B=256 1t"]
        r[f"{be} {threads}t/1t B=4096"] = t[f"{be} f64 B=4096"] / t[f"{be} f64 B=4096 1t"]
    return r


def measure(n, d, rounds, threads, backends, optimizer):
    X, y, _, _ = make_regression(n, d, random_state=0)
    X32 = X.astype(np.float32)
    Y = _engine.targets_2d(y)
    default_b = default_batch_size(n, d)
    batches = sorted({256, 4096, default_b})
    fns = timers(X, X32, Y, backends, threads, optimizer, batches)
    for fn in fns.values():  # compile (or load from the cache) and touch every page outside the timings
        fn()
    load_before = loadavg()
    times = {name: [] for name in fns}
    per_round = []
    for _ in range(rounds):
        t = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[name] = time.perf_counter() - t0
            times[name].append(t[name])
        per_round.append(ratios_of(t, backends, default_b, threads))
    return {
        "config": {"n": n, "d": d, "rounds": rounds, "threads": threads, "backends": list(backends),
                   "optimizer": optimizer, "default_batch": default_b},
        "load_before": load_before, "load_after": loadavg(),
        "times_ms": {name: [v * 1e3 for v in ts] for name, ts in times.items()},
        "median_ms": {name: statistics.median(ts) * 1e3 for name, ts in times.items()},
        "ratios": {name: [r[name] for r in per_round] for name in per_round[0]},
    }


def report(res, out=sys.stdout):
    c = res["config"]
    med = res["median_ms"]
    print(f"{c['n']:,} x {c['d']}, {c['optimizer']}, {c['threads']} threads, {c['rounds']} interleaved rounds, "
          f"default batch {c['default_batch']}", file=out)
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *res["load_before"], *res["load_after"]), file=out)
    all_core = ", ".join(f"{key[len('floor ['):-1]} loop {v:.1f} ms" for key, v in med.items()
                         if key.startswith("floor ["))
    print(f"reads of X: all cores ({all_core}), 1 thread {med['floor 1t']:.1f} ms, float32 all cores "
          f"{floor_of(med, 'floor f32'):.1f} ms, numpy X.sum() {med['numpy X.sum']:.1f} ms (medians); floor = the "
          "fastest read of each round", file=out)
    print(f"  {'ratio (median of per-round ratios)':38s} {'median':>7s} {'min':>7s} {'max':>7s}  goal", file=out)
    for name, vals in res["ratios"].items():
        goal = next((g for key, g in GOALS.items() if name.endswith(key)), None)
        verdict = "" if goal is None else (f"<= {goal:.2f} " + ("met" if statistics.median(vals) <= goal else
                                                                 "NOT met"))
        print(f"  {name:38s} {statistics.median(vals):7.3f} {min(vals):7.3f} {max(vals):7.3f}  {verdict}", file=out)
    print("  epoch times (median ms):", file=out)
    for name, v in med.items():
        if not name.startswith(("floor", "numpy")):
            print(f"    {name:30s} {v:8.2f}", file=out)
    if statistics.median(res["ratios"]["all-core read/numpy X.sum"]) > 1.0:
        print("NOTE: the all-core read was slower than NumPy's X.sum() (a busy memory bus); the floor is then "
              "the faster read", file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", nargs="+", default=None, choices=("native", "numba"),
                   help="default: native (when built) and numba")
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))
    p.add_argument("--json", default=None, help="also write every time and per-round ratio here")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error(f"--rounds must be >= 1, got {a.rounds}")
    backends = a.backends or (["native", "numba"] if _engine.native_available() else ["numba"])
    res = measure(a.n, a.d, a.rounds, a.threads, backends, a.optimizer)
    report(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
