"""The ``fastgd`` command. With no arguments: a demo fit on built-in synthetic data."""

import argparse
import sys
import time

import numpy as np


def demo_fit(n_samples=200_000, n_features=50, optimizer="adam", epochs=5, batch_size=256):
    """Fit on synthetic data and print what was learned, how well and how fast."""
    from . import _engine
    from .datasets import make_regression
    from .optimizers import OPTIMIZERS

    X, y, coef, intercept = make_regression(n_samples, n_features, noise=0.1, random_state=0)
    opt = OPTIMIZERS[optimizer](lr=0.01)
    threads = _engine.resolve_n_threads(None)
    print(f"fastgd demo: {n_samples:,} x {n_features} float64, optimizer={optimizer}, batch_size={batch_size}, "
          f"{threads} threads")
    t0 = time.perf_counter()
    _engine.train(X[:1024], y[:1024], opt, batch_size=batch_size, epochs=1, n_threads=threads)  # compile/load
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    ts, losses = _engine.train(X, y, opt, batch_size=batch_size, epochs=epochs, n_threads=threads)
    t_fit = time.perf_counter() - t0
    w, b = ts.theta[0, :-1], ts.theta[0, -1]
    pred = X @ w + b
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    t0 = time.perf_counter()
    A = np.hstack([X, np.ones((n_samples, 1))])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    t_lstsq = time.perf_counter() - t0
    r2_exact = 1 - np.sum((y - A @ exact) ** 2) / np.sum((y - y.mean()) ** 2)
    print(f"first call (compile or cache load): {t_compile:.2f} s")
    print(f"fit: {epochs} epochs in {t_fit:.3f} s ({t_fit / epochs * 1e3:.1f} ms/epoch), {ts.step} updates")
    print(f"training MSE per epoch: {', '.join(f'{v:.4g}' for v in losses)}")
    print(f"max |coef - true coef|: {np.abs(w - coef).max():.2e}   intercept: {b:.4f} (true {intercept})")
    print(f"R^2: {r2:.6f}   least squares (numpy.linalg.lstsq, {t_lstsq:.2f} s): {r2_exact:.6f}")
    return r2, r2_exact


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastgd", description=__doc__)
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    demo_fit(args.n_samples, args.n_features, args.optimizer, args.epochs, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
