"""partial_fit's defaults on small streams: chunks of any size (one row included, and a first chunk of one
row) converge over passes as SGDRegressor.partial_fit does."""

import warnings

import numpy as np
import pytest

from fastgd import LinearRegressor


def _stream(n=200, d=5, seed=3):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    w = np.arange(1, d + 1.0)
    return X, X @ w + 0.1 * rng.randn(n), X @ w


def _passes(model, X, y, size, passes, first=None):
    for p in range(passes):
        i = 0
        while i < len(X):
            s = first if (p == 0 and i == 0 and first) else size
            model.partial_fit(X[i:i + s], y[i:i + s])
            i += s
    return model


@pytest.mark.parametrize("backend", ["numba", "native"])
@pytest.mark.parametrize("size, first", [(1, None), (7, None), (100, None), (199, 1)])
def test_default_partial_fit_converges_over_passes_on_small_chunks(backend, size, first):
    """Ten passes over 200 rows reach the noise-free R² to 1e-4 on every chunking (SGDRegressor.partial_fit
    reaches 0.9995; this reached 0.53 to 0.9965): a call on a small chunk takes more than n / 32 steps, and
    the mean of the iterates leaves out the first updates, not just the first call, whose iterates still
    travel to the optimum."""
    X, y, clean = _stream()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = _passes(LinearRegressor(backend=backend, random_state=0), X, y, size, 10, first)
    assert m.score(X, clean) > 0.9999


def test_a_first_chunk_of_one_row_is_caught_up_within_a_pass():
    """A first chunk of one row (every column 'constant', the intercept at that row's target) is behind by
    one pass at most: the next full pass of 200 rows takes enough steps to get close (it reached -0.35)."""
    X, y, clean = _stream()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0, average=False).partial_fit(X[:1], y[:1])
        m.partial_fit(X, y)
        assert m.score(X, clean) > 0.8
        for _ in range(4):
            m.partial_fit(X, y)
    assert m.score(X, clean) > 0.999


def test_a_small_chunk_gets_many_updates():
    """batch_size="auto" on a partial_fit chunk: up to AUTO_UPDATES updates, as fit on large data takes."""
    X, y, _ = _stream(n=512, d=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0).partial_fit(X, y)
    assert m.t_ >= 128
