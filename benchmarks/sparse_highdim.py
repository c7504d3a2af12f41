"""Sparse, high-dimensional data: CSR with d = 2**20 and 50 non-zeros per row.

Per-epoch time of the defaults (batch_size="auto") and peak RSS growth of a fit, next to SGDRegressor's epoch
on the same data, measured in one run.

    python benchmarks/sparse_highdim.py [--n 20000]
"""

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import SGDRegressor

import fastgd


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=2**20)
    parser.add_argument("--nnz", type=int, default=50)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n, d, nnz = args.n, args.d, args.nnz
    indices = rng.integers(0, d, size=(n, nnz))
    indices.sort(axis=1)
    X = sp.csr_matrix((rng.standard_normal(n * nnz), indices.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    w = np.zeros(d)
    hot = rng.integers(0, d, 2000)
    w[hot] = rng.standard_normal(2000)
    y = X @ w + 0.1 * rng.standard_normal(n)
    print(f"CSR {n:,} x {d:,}, {X.nnz / n:.0f} non-zeros per row ({X.data.nbytes + X.indices.nbytes >> 20} MB)")
    fastgd.LinearRegressor(max_iter=1, tol=None).fit(X[:100], y[:100])
    before = peak_rss_mb()
    t = time.perf_counter()
    model = fastgd.LinearRegressor(max_iter=5, tol=None, random_state=0).fit(X, y)
    per_epoch = (time.perf_counter() - t) / model.n_iter_
    growth = peak_rss_mb() - before
    sgd = SGDRegressor(random_state=0)
    sgd.partial_fit(X, y)
    t = time.perf_counter()
    for _ in range(3):
        sgd.partial_fit(X, y)
    sgd_epoch = (time.perf_counter() - t) / 3
    print(f"fastgd defaults: batch {model.batch_size_}, {per_epoch * 1e3:.1f} ms per epoch (5 epochs, incl. "
          f"statistics and evaluation), peak RSS growth {growth:.0f} MB; SGDRegressor {sgd_epoch * 1e3:.1f} ms per "
          f"epoch: ratio {per_epoch / sgd_epoch:.2f} (goal <= 3)")


if __name__ == "__main__":
    main()
