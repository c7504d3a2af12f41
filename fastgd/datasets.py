"""Built-in synthetic data for demos, tests and benchmarks.

``make_linear_data`` returns ``(X, y, coef, intercept)``; it was called ``make_regression``, a name it shared
with scikit-learn's ``sklearn.datasets.make_regression`` (another signature and return value). The old name
still works and is the same function.
"""

import numpy as np


def make_linear_data(n_samples=100_000, n_features=20, *, n_outputs=1, noise=0.1, intercept=0.5,
                    dtype=np.float64, random_state=0):
    """Standardized Gaussian features and a linear target with Gaussian noise.

    Returns ``(X, y, coef, intercept)``: X of shape (n_samples, n_features), C-contiguous, of ``dtype``; y of
    shape (n_samples,) (or (n_samples, n_outputs) when n_outputs > 1) in float64; the true ``coef`` of shape
    (n_features,) (or (n_outputs, n_features)) and ``intercept``. Rows are generated in blocks, so making a
    large X needs no temporary float64 copy.
    """
    rng = np.random.default_rng(random_state)
    coef = rng.uniform(-2.0, 2.0, size=(n_outputs, n_features))
    X = np.empty((n_samples, n_features), dtype=dtype)
    y = np.empty((n_samples, n_outputs))
    block = 65_536
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        X[start:stop] = rng.standard_normal((stop - start, n_features))
        y[start:stop] = X[start:stop] @ coef.T + intercept + noise * rng.standard_normal((stop - start, n_outputs))
    if n_outputs == 1:
        return X, y[:, 0], coef[0], float(intercept)
    return X, y, coef, np.full(n_outputs, float(intercept))


make_regression = make_linear_data  # the old name (not scikit-learn's function of that name)
