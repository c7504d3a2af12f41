"""Sparse (CSR) input: column statistics, the scaling the defaults use for it, and fits on realistic sparse data."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

import fastgd
from fastgd import _engine, _training

BACKENDS = ["numba", "native"]


def kern(backend):
    if backend == "native" and not _engine.native_available():
        pytest.skip("native extension not built")
    return _engine.kernels(backend)


def csr_tuple(X):
    return X.data, X.indices, X.indptr, X.shape[1]


def zipf_binary(n, d, nnz, seed=0, noise=0.3):
    """Binary CSR with Zipf-like column popularity (as hashed words): many columns are rare."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, d + 1) ** 1.1
    cols = rng.choice(d, size=(n, nnz), p=p / p.sum())
    X = sp.csr_matrix((np.ones(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1.0
    w = rng.standard_normal(d)
    y = X @ w + 2.0 + noise * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_column_index_past_n_features_is_rejected_by_column_stats(backend):
    X = sp.random(50, 6, density=0.5, format="csr", random_state=0)
    indices = X.indices.copy()
    indices[2] = 6  # scipy's constructor does not check every index
    with pytest.raises(ValueError, match="column index 6 out of range"):
        kern(backend).column_stats((X.data, indices, X.indptr, 6), np.empty(0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_duplicate_entries_mean_their_sum_in_column_stats(backend):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 40, 300)
    cols = rng.integers(0, 5, 300)
    vals = rng.standard_normal(300) + 3.0
    X = sp.csr_matrix((vals, (rows, cols)), shape=(40, 5))  # coo -> csr sums duplicates...
    dup = sp.csr_matrix((vals[np.argsort(rows, kind="stable")], cols[np.argsort(rows, kind="stable")],
                         np.searchsorted(np.sort(rows), np.arange(41))), shape=(40, 5))
    assert not dup.has_canonical_format  # ... this one keeps them, as SciPy allows
    sw = rng.uniform(0.5, 2.0, 40)
    for weights in (np.empty(0), sw):
        got = kern(backend).column_stats(csr_tuple(dup), weights)
        want = kern(backend).column_stats(np.ascontiguousarray(X.toarray()), weights)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_column_stats_do_not_cancel_for_a_large_offset(backend):
    rng = np.random.default_rng(2)
    n = 3000
    A = np.zeros((n, 3))
    A[:, 0] = 1e4 + 1e-2 * rng.standard_normal(n)  # large offset, small spread, stored in every row
    A[rng.random(n) < 0.3, 1] = 1.0
    A[:, 2] = np.where(rng.random(n) < 0.5, 5e3 + rng.standard_normal(n), 0.0)
    mean, var, total = kern(backend).column_stats(csr_tuple(sp.csr_matrix(A)), np.empty(0))
    dmean, dvar, _ = kern(backend).column_stats(A, np.empty(0))
    np.testing.assert_allclose(mean, dmean, rtol=1e-13)
    np.testing.assert_allclose(var, dvar, rtol=1e-7)
    assert total == n


def test_csr_scaling_keeps_rare_columns_bounded_and_uncentred():
    X, y = zipf_binary(2000, 512, 8)
    s = _training.Scaling.from_data(_engine.kernels("numba"), csr_tuple(X), y[:, None], None, True)
    stored = np.diff(X.tocsc().indptr)
    rare = stored < 0.5 * X.shape[0]
    assert rare.sum() > 400
    np.testing.assert_array_equal(s.x_mean[rare], 0.0)  # sparse columns stay sparse
    np.testing.assert_array_equal(s.x_scale[rare & (stored > 0)], 1.0)  # binary: max-abs is 1
    common = ~rare
    assert common.any()
    np.testing.assert_allclose(s.x_mean[common], X[:, common].mean(axis=0).A1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_defaults_on_sparse_zipf_data_reach_least_squares(backend):
    X, y = zipf_binary(6000, 256, 10)
    Xtr, ytr, Xte, yte = X[:5000], y[:5000], X[5000:], y[5000:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        est = fastgd.LinearRegressor(backend=backend, random_state=0).fit(Xtr, ytr)
    ols = LinearRegression().fit(Xtr.toarray(), ytr)
    assert r2_score(yte, est.predict(Xte)) > r2_score(yte, ols.predict(Xte.toarray())) - 0.01


def test_partial_fit_on_csr_keeps_the_sparse_scaling():
    X, y = zipf_binary(3000, 128, 6)
    est = fastgd.LinearRegressor(backend="numba", random_state=0)
    for lo in range(0, 3000, 1000):
        est.partial_fit(X[lo:lo + 1000], y[lo:lo + 1000])
    s = est._scaling
    stored = np.diff(X.tocsc().indptr)
    rare = (stored > 0) & (stored < 0.5 * X.shape[0])
    np.testing.assert_array_equal(s.x_scale[rare], 1.0)
    np.testing.assert_array_equal(s.x_mean[rare], 0.0)
