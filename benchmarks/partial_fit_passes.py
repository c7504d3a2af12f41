"""partial_fit over passes: the user guide's streaming loop, next to SGDRegressor.partial_fit.

    python benchmarks/partial_fit_passes.py [--n 200000] [--d 20] [--chunks 10] [--passes 5]
    python benchmarks/partial_fit_passes.py --small

``--small``: a small stream (200 rows x 5 features, y = X w + 0.1 noise) in chunks of 1, 7 and 100 rows and
in chunks of 200 after a first chunk of one row; R² on the noise-free target after passes 1, 10 and 60 of
the defaults of both fastgd backends next to SGDRegressor.partial_fit (under a minute).

Synthetic least squares (``fastgd.datasets.make_linear_data``, noise 1) is fed in ``--chunks`` contiguous
chunks per pass, ``--passes`` times, to each estimator's ``partial_fit``. After every pass it prints each
model's training R² shortfall from the least-squares optimum (``LinearRegression``): 0 is the exact answer.
Deterministic (fixed seeds): the figures repeat exactly on any machine up to floating-point rounding.
"""

import argparse
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression, SGDRegressor

import fastgd
from fastgd.datasets import make_linear_data
from fastgd.schedules import InverseScaling


def small(passes=(1, 10, 60)):
    rng = np.random.RandomState(3)
    X = rng.randn(200, 5)
    w = np.arange(1, 6.0)
    print("200 x 5 stream; R² (noise-free target) after passes " + ", ".join(map(str, passes)))
    for size, first in ((1, 1), (7, 7), (100, 100), (200, 1)):
        label = f"chunks of {size}" + (" after a first chunk of 1" if first != size else "")
        for name, model in (("fastgd numba", fastgd.LinearRegressor(backend="numba", random_state=0)),
                            ("fastgd native", fastgd.LinearRegressor(backend="native", random_state=0)),
                            ("SGDRegressor", SGDRegressor(random_state=0, penalty=None))):
            noise, out = np.random.RandomState(1), []
            for p in range(1, max(passes) + 1):
                i = 0
                while i < len(X):
                    s = first if (p == 1 and i == 0) else size
                    chunk = X[i:i + s]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model.partial_fit(chunk, chunk @ w + 0.1 * noise.randn(len(chunk)))
                    i += s
                if p in passes:
                    out.append(f"{model.score(X, X @ w):.5f}")
            print(f"{label:>40}  {name:>14}  " + "  ".join(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="the small-stream comparison instead")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args(argv)
    if args.small:
        return small()
    X, y, _, _ = make_linear_data(args.n, args.d, noise=1.0, random_state=0)
    X = X * np.logspace(-1, 2, args.d)  # natural units: column scales 0.1 to 100
    best = LinearRegression().fit(X, y).score(X, y)
    models = {
        "LinearRegressor()": fastgd.LinearRegressor(random_state=0),
        "LinearRegressor(average=False)": fastgd.LinearRegressor(average=False, random_state=0),
        "... + InverseScaling(0.5)": fastgd.LinearRegressor(average=False, random_state=0,
                                                             learning_rate=InverseScaling(power_t=0.5)),
        "SGDRegressor() (scaled X)": SGDRegressor(random_state=0),
    }
    mu, sd = X.mean(axis=0), X.std(axis=0)  # SGDRegressor needs scaled features (fastgd scales implicitly)
    bounds = np.linspace(0, args.n, args.chunks + 1).astype(int)
    print(f"{args.n:,} x {args.d}, {args.chunks} chunks per pass; R² shortfall from least squares "
          f"(LinearRegression R² {best:.6f}) after each pass")
    print("pass  " + "  ".join(f"{name:>30}" for name in models))
    for p in range(1, args.passes + 1):
        for a, b in zip(bounds[:-1], bounds[1:]):
            for name, m in models.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if isinstance(m, SGDRegressor):
                        m.partial_fit((X[a:b] - mu) / sd, y[a:b])
                    else:
                        m.partial_fit(X[a:b], y[a:b])
        gaps = [best - (m.score((X - mu) / sd, y) if isinstance(m, SGDRegressor) else m.score(X, y))
                for m in models.values()]
        print(f"{p:4}  " + "  ".join(f"{g:30.2e}" for g in gaps))


if __name__ == "__main__":
    main()
