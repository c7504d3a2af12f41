"""Where an epoch's time goes above the memory floor: the parts, measured with the product's kernels.

    python benchmarks/floor_breakdown.py [--n 1000000] [--d 100] [--rounds 5] [--backend native]

Every round times, in the same order: the all-core and one-thread reads of X (the faster of Numba's and the
native C loop), then Adam epochs of the chosen backend:

* one batch of all n rows, 1 and 2 threads: the fused row loop streaming X with no per-batch cost at all
  (one update, one synchronization, each thread one contiguous half);
* 1 thread, batch B/2, batches in order and shuffled: in order the row stream never breaks; shuffled it
  restarts at a new place every B/2 rows, as each of two threads' streams does at batch B. The difference
  divided by the number of batches is what one restart of a stream costs;
* 2 threads, batch B, in order and shuffled: the real epoch (shuffled is what a fit runs).

Printed: medians over rounds of each time divided by the round's all-core floor, and the derived costs in
microseconds. What the parts show on the 2-core VM is in docs/design.md ("Where the time
goes"). Never a test: tests/test_floor_ratios_bench.py runs it on tiny sizes.
"""

import argparse
import statistics
import sys
import time


from fastgd import _engine
from fastgd.bench import fastgd_epoch, floor_of, floor_reads
from fastgd.datasets import make_regression
from fastgd.optimizers import OPTIMIZERS


def epoch_fn(X, Y, batch, n_threads, shuffle, backend):
    return fastgd_epoch(X, Y, OPTIMIZERS["adam"](lr=1e-3), batch, n_threads, backend=backend, shuffle=shuffle)


def measure(n, d, rounds, backend, batches=(256, 4096), threads=2):
    X, y, _, _ = make_regression(n, d, random_state=0)
    Y = _engine.targets_2d(y)
    reads = {**floor_reads(X, threads, "read"), **floor_reads(X, 1, "read 1t")}
    fns = dict(reads)
    fns["one batch, 1 thread"] = epoch_fn(X, Y, n, 1, False, backend)
    fns[f"one batch, {threads} threads"] = epoch_fn(X, Y, n, threads, False, backend)
    for b in batches:
        half = max(b // threads, 1)
        fns[f"1 thread, B={half}, in order"] = epoch_fn(X, Y, half, 1, False, backend)
        fns[f"1 thread, B={half}, shuffled"] = epoch_fn(X, Y, half, 1, True, backend)
        fns[f"{threads} threads, B={b}, in order"] = epoch_fn(X, Y, b, threads, False, backend)
        fns[f"{threads} threads, B={b}, shuffled"] = epoch_fn(X, Y, b, threads, True, backend)
    for fn in fns.values():  # compile or load, touch every page
        fn()
    times = {name: [] for name in fns}
    floor, floor1 = [], []
    for _ in range(rounds):
        t = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[name] = time.perf_counter() - t0
            times[name].append(t[name])
        floor.append(floor_of(t, "read"))
        floor1.append(floor_of(t, "read 1t"))
    ratio = {name: statistics.median(t / f for t, f in zip(ts, floor)) for name, ts in times.items()
             if not name.startswith("read")}
    med = {name: statistics.median(ts) for name, ts in times.items()}
    derived = {
        "floor ms": statistics.median(floor) * 1e3,
        "1-thread read ms": statistics.median(floor1) * 1e3,
        "row loop / read, 1 thread": statistics.median(
            t / f for t, f in zip(times["one batch, 1 thread"], floor1)),
        f"row loop / read, {threads} threads": ratio[f"one batch, {threads} threads"],
    }
    for b in batches:
        half = max(b // threads, 1)
        nb = -(-n // half)
        derived[f"us per stream restart (every {half} rows)"] = (
            med[f"1 thread, B={half}, shuffled"] - med[f"1 thread, B={half}, in order"]) / nb * 1e6
        nb2 = -(-n // b)
        derived[f"us per batch above one batch, B={b} shuffled, {threads} threads"] = (
            med[f"{threads} threads, B={b}, shuffled"] - med[f"one batch, {threads} threads"]) / nb2 * 1e6
    return {"config": {"n": n, "d": d, "rounds": rounds, "backend": backend, "threads": threads},
            "ratios": ratio, "derived": derived}


def report(res, out=sys.stdout):
    c = res["config"]
    print(f"{c['n']:,} x {c['d']} float64, Adam, backend {c['backend']}, {c['rounds']} interleaved rounds; "
          "times / the round's all-core read of X (median)", file=out)
    for name, r in res["ratios"].items():
        print(f"  {name:40s} {r:7.3f}", file=out)
    for name, v in res["derived"].items():
        print(f"  {name:60s} {v:8.3f}", file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backend", default=None, choices=("native", "numba"),
                   help="default: native when built, else numba")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error(f"--rounds must be >= 1, got {a.rounds}")
    backend = a.backend or ("native" if _engine.native_available() else "numba")
    res = measure(a.n, a.d, a.rounds, backend)
    report(res)
    return res


if __name__ == "__main__":
    main()
