"""The ``fastgd`` command. With no arguments: a demo fit on built-in synthetic data."""

import argparse
import sys
import time

import numpy as np


def demo_fit(n_samples=200_000, n_features=50, optimizer="adam", batch_size=256):
    """Fit LinearRegressor on synthetic data and print what was learned, how well and how fast."""
    from sklearn.linear_model import LinearRegression

    from . import LinearRegressor
    from .datasets import make_regression

    X, y, coef, intercept = make_regression(n_samples, n_features, noise=0.1, random_state=0)
    model = LinearRegressor(optimizer=optimizer, batch_size=batch_size, random_state=0)
    print(f"fastgd demo: LinearRegressor(optimizer={optimizer!r}, batch_size={batch_size}) on "
          f"{n_samples:,} x {n_features} float64 synthetic data")
    t0 = time.perf_counter()
    LinearRegressor(optimizer=optimizer, batch_size=batch_size, max_iter=1, tol=None).fit(X[:2048], y[:2048])
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(X, y)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = LinearRegression().fit(X, y)
    t_exact = time.perf_counter() - t0
    from ._engine import kernels

    backend = "native (compiled at install)" if kernels("auto").__name__.endswith("_native") else \
        "numba (compiled on first use, then loaded from its cache)"
    print(f"first call, backend {backend}: {t_first:.2f} s")
    print(f"fit: {model.n_iter_} epochs, {model.t_:,} updates in {t_fit:.2f} s "
          f"({t_fit / model.n_iter_ * 1e3:.1f} ms per epoch)")
    print(f"training loss: first epoch {model.loss_curve_[0]:.4g}, last {model.loss_curve_[-1]:.6g}")
    print(f"max |coef_ - true coef|: {np.abs(model.coef_ - coef).max():.2e}   "
          f"intercept_: {model.intercept_:.4f} (true {intercept})")
    print(f"R^2: {model.score(X, y):.8f}   sklearn LinearRegression ({t_exact:.2f} s): {exact.score(X, y):.8f}")
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastgd", description="With no command: a demo fit on built-in synthetic data.", allow_abbrev=False)
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--batch-size", type=int, default=256)
    commands = parser.add_subparsers(dest="command")
    from . import bench

    bench.add_arguments(commands.add_parser("bench", help="fastgd next to its peers and the hardware floor",
                                            description=bench.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    demo = commands.add_parser("demo", help="render a worked example of gradient descent to a PNG")
    from .examples import EXAMPLES, render

    demo.add_argument("name", choices=sorted(EXAMPLES))
    demo.add_argument("--out", help="PNG path (default NAME.png)")
    args = parser.parse_args(argv)
    if args.command == "bench":
        bench.main_from_args(args)
    elif args.command == "demo":
        print(f"wrote {render(args.name, args.out)}")
    else:
        demo_fit(args.n_samples, args.n_features, args.optimizer, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
