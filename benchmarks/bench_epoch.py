"""The core speed goals, measured in one process on the same data; prints ratios, not verdicts.

    python benchmarks/bench_epoch.py [--n 1000000] [--d 100] [--batch 256] [--optimizer adam] [--backend auto]

Ratios reported (goals in brackets):
  epoch / floor              fastgd epoch, all cores / fastest read-only pass over X, all cores   [<= 1.25]
  reference / epoch          plain-NumPy reference epoch / fastgd epoch                          [>= 2.5]
  float32 / float64 epoch                                                                        [<= 0.6]
Each time is the minimum of --repeat runs, timed in interleaved rounds (every method once per round) so that
load from elsewhere on a shared machine disturbs all methods alike.
"""

import argparse

import numba
import numpy as np

from fastgd import _engine
from fastgd import _kernels as K
from fastgd.bench import Threads, best_of, fastgd_epoch, interleaved
from fastgd.datasets import make_regression
from fastgd.optimizers import OPTIMIZERS
from full_bench import reference_epoch


def measure(n, d, batch, optimizer, repeat, threads, backend="auto"):
    X, y, _, _ = make_regression(n, d, random_state=0)
    X32 = X.astype(np.float32)
    Y = _engine.targets_2d(y)
    opt = OPTIMIZERS[optimizer](lr=1e-3)
    for data in (X, X32):  # compile (or load from cache) outside the timings
        for path in (K.PATH_SEQUENTIAL, K.PATH_AUTO):
            fastgd_epoch(data[:4096], Y[:4096], opt, batch, threads, path, backend)()
        with _engine.numba_threads(threads):
            K.read_floor(data[:4096])
    rows = interleaved({
        "floor (read X, all cores)": Threads(lambda: K.read_floor(X), threads),
        "floor (read X, 1 thread)": Threads(lambda: K.read_floor(X), 1),
        "numpy X.sum() (1 thread)": X.sum,
        "floor float32 (all cores)": Threads(lambda: K.read_floor(X32), threads),
        "fastgd epoch float64, all cores": fastgd_epoch(X, Y, opt, batch, threads, backend=backend),
        "fastgd epoch float64, sequential path": fastgd_epoch(X, Y, opt, batch, threads, K.PATH_SEQUENTIAL,
                                                              backend),
        "fastgd epoch float64, 1 thread": fastgd_epoch(X, Y, opt, batch, 1, backend=backend),
        "fastgd epoch float32, all cores": fastgd_epoch(X32, Y, opt, batch, threads, backend=backend),
    }, repeat)
    rows["numpy reference epoch float64"] = best_of(reference_epoch(X, Y, opt, batch), max(1, repeat // 3))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    p.add_argument("--backend", default="auto", choices=_engine.BACKENDS,
                   help="kernels to time (default auto: native when built, as LinearRegressor)")
    a = p.parse_args(argv)
    rows = measure(a.n, a.d, a.batch, a.optimizer, a.repeat, a.threads, a.backend)
    print(f"{a.n:,} x {a.d}, batch {a.batch}, {a.optimizer}, {a.threads} threads, backend {a.backend} "
          f"(numba {numba.__version__}, layer {numba.threading_layer()})")
    for name, t in rows.items():
        print(f"  {name:40s} {t * 1e3:9.2f} ms")
    epoch = rows["fastgd epoch float64, all cores"]
    ratios = {
        "epoch / floor (goal <= 1.25)": epoch / rows["floor (read X, all cores)"],
        "reference / epoch (goal >= 2.5)": rows["numpy reference epoch float64"] / epoch,
        "float32 / float64 epoch (goal <= 0.6)": rows["fastgd epoch float32, all cores"] / epoch,
        "all cores / 1 thread": epoch / rows["fastgd epoch float64, 1 thread"],
        "floor / numpy X.sum()": rows["floor (read X, all cores)"] / rows["numpy X.sum() (1 thread)"],
    }
    for name, r in ratios.items():
        print(f"  {name:40s} {r:9.3f}")
    return rows, ratios


if __name__ == "__main__":
    main()
