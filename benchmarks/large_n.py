"""Large N from the defaults: ``LinearRegressor().fit(X, y)`` next to Ridge(solver="cholesky").

Measured in one run, interleaved (fit, closed form, floor per round; median of the per-round ratios):
the fit's time as a multiple of the closed form's and of one all-core read of X, its R² gap to the
least-squares R², the epochs and the batch size the defaults chose.

    python benchmarks/large_n.py                 # 1e6 x 100 float64, 3 rounds
    python benchmarks/large_n.py --n 10000000 --dtype float32 --rounds 1
"""

import argparse
import statistics
import time

import numpy as np
from sklearn.linear_model import Ridge

import fastgd
from fastgd import _engine
from fastgd.datasets import make_regression


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.5)
    args = parser.parse_args(argv)
    X, y, _, _ = make_regression(args.n, args.d, noise=args.noise, dtype=np.dtype(args.dtype), random_state=0)
    kern = _engine.kernels("auto")
    fastgd.LinearRegressor(random_state=0).fit(X[:20_000], y[:20_000])  # load or compile every kernel first
    floor_fn = fastgd._kernels.read_floor
    floor_fn(X[:10_000])
    rows = []
    for r in range(args.rounds):
        t = time.perf_counter()
        model = fastgd.LinearRegressor(random_state=r).fit(X, y)
        t_fit = time.perf_counter() - t
        t = time.perf_counter()
        ridge = Ridge(solver="cholesky", alpha=1e-10).fit(X, y)
        t_ridge = time.perf_counter() - t
        floors = []
        for _ in range(3):
            t = time.perf_counter()
            floor_fn(X)
            floors.append(time.perf_counter() - t)
        t_floor = min(floors)
        gap = ridge.score(X, y) - model.score(X, y)
        rows.append((t_fit, t_ridge, t_floor, gap, model.n_iter_, model.batch_size_))
        print(f"round {r}: fit {t_fit:.3f} s ({model.n_iter_} epochs, batch {model.batch_size_}), "
              f"Ridge(cholesky) {t_ridge:.3f} s, floor {t_floor * 1e3:.1f} ms, R² gap {gap:.2e}", flush=True)
    ratio = statistics.median(r[0] / r[1] for r in rows)
    floors = statistics.median(r[0] / r[2] for r in rows)
    print(f"{args.n:,} x {args.d} {args.dtype}, backend {kern.__name__.rsplit('.', 1)[-1]}, "
          f"{_engine.resolve_n_threads(None)} threads: fit / Ridge(cholesky) = {ratio:.3f} (goal <= 0.4), "
          f"fit / one all-core read of X = {floors:.1f}, worst R² gap {max(r[3] for r in rows):.2e} (goal <= 1e-6)")


if __name__ == "__main__":
    main()
