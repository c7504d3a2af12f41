"""A row's prediction does not depend on where the row sits in memory or which block it is predicted in.

Vectorized loops may peel a few elements to align their loads, which would split a row's dot product at a
place that depends on the row's address: predictions of the same model on a copy of X, or on a block of it
(dask predicts block by block), would then differ in the last bits.
"""

import numpy as np
import pytest

from fastgd import _engine


def _at_offset(X, off):
    """A copy of X starting ``off`` elements into a fresh buffer (another alignment)."""
    buf = np.empty(X.size + 16, X.dtype)
    out = buf[off: off + X.size].reshape(X.shape)
    out[...] = X
    return out


@pytest.mark.parametrize("backend", ["numba", "native"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prediction_independent_of_address_and_block(backend, dtype):
    predict = _engine.kernels(backend).predict
    rng = np.random.default_rng(0)
    for d in (5, 13, 37):
        X = rng.standard_normal((40, d)).astype(dtype)
        theta = rng.standard_normal((2, d + 1))
        whole = predict(X, theta, 1)
        for off in range(1, 9):
            np.testing.assert_array_equal(predict(_at_offset(X, off), theta, 1), whole)
        blocks = np.concatenate([predict(np.ascontiguousarray(X[s: s + 7]), theta, 1) for s in range(0, 40, 7)])
        np.testing.assert_array_equal(blocks, whole)
        np.testing.assert_array_equal(predict(X, theta, 2), whole)
