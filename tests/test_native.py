"""The Cython backend (fastgd._native, built by CMakeLists.txt) against the Numba kernels and the reference.

The README's install command builds the extension, so it must be importable here: a failed build is a test
failure, not a skip.
"""

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import _engine, LinearRegressor, _rules, _training
from fastgd import _kernels as K
from fastgd import _native as N
from fastgd.optimizers import OPTIMIZERS

from _helpers import VARIANTS, problem, reference_train, rel_err

TOL = 1e-12  # the chunks and their order are the same; sums inside a chunk may be vectorized differently


def test_built_with_openmp_and_same_codes():
    assert N.OPENMP, "CMake found no OpenMP: the native kernels would run on one thread"
    # every layout constant is declared once, in fastgd._rules (LAYOUT names them): the values native compiled
    # and the ones the Numba kernels read are that module's
    assert set(N.CODES) == set(_rules.LAYOUT)  # a constant added to LAYOUT is listed by the native module
    for name in _rules.LAYOUT:
        assert N.CODES[name] == getattr(_rules, name) == getattr(K, name), name
    for name in ("N_SCALARS", "HP_LEN", "SCHED_LEN"):
        assert getattr(K, name) == getattr(_rules, name), name


def run(backend, X, y, opt, **kw):
    ts, losses = _training.train_epochs(X, y, opt, backend=backend, **kw)
    return ts, losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 7, 256, 300])
@pytest.mark.parametrize("variant", [False, True])
def test_native_matches_numba_and_reference(optimizer_name, dtype, batch_size, variant):
    X, y = problem(n=300, d=5, dtype=dtype)
    opt = OPTIMIZERS[optimizer_name](lr=0.01, **(VARIANTS[optimizer_name] if variant else {}))
    kw = dict(batch_size=batch_size, epochs=3, random_state=3)
    native, nl = run("native", X, y, opt, **kw)
    numba_, ml = run("numba", X, y, opt, **kw)
    theta, _ = reference_train(X, y, opt, **kw)
    assert rel_err(native.theta, numba_.theta) < TOL
    assert rel_err(native.theta, theta) < TOL
    np.testing.assert_allclose(nl, ml, rtol=TOL)
    assert native.step == numba_.step
    np.testing.assert_allclose(native.state, numba_.state, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_multi_output_weights_penalties(optimizer_name, dtype, index_dtype):
    X, Y = problem(n=200, d=6, k=3, dtype=dtype, seed=2)
    X[np.abs(X) < 0.8] = 0
    S = sp.csr_matrix(X)
    Xk = (S.data, S.indices.astype(index_dtype), S.indptr.astype(index_dtype), 6)
    sw = np.random.default_rng(1).integers(0, 3, 200).astype(float)
    opt = OPTIMIZERS[optimizer_name](lr=0.02, **VARIANTS[optimizer_name])
    kw = dict(batch_size=16, epochs=2, sw=sw, fit_intercept=False, l1=0.05, l2=0.1, random_state=1)
    native, _ = run("native", Xk, Y, opt, **kw)
    dense, _ = run("native", X, Y, opt, **kw)
    assert rel_err(native.theta, dense.theta) < TOL
    if dtype is np.float32 and index_dtype is np.int64:
        return  # each CSR type signature is a full Numba compile; scipy gives int64 indices to large matrices
    numba_, _ = run("numba", Xk, Y, opt, **kw)
    assert rel_err(native.theta, numba_.theta) < TOL


def test_predict_and_batch_statistics_match():
    X, Y = problem(n=500, d=7, k=2, seed=5)
    theta = np.random.default_rng(0).standard_normal((2, 8))
    close = lambda a, b: rel_err(a, b) < 1e-14  # norm-wise: entries near 0 cancel differently
    assert close(N.predict(X, theta), K.predict(X, theta))
    S = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0))
    Xk = (S.data, S.indices, S.indptr, 7)
    assert close(N.predict(Xk, theta), K.predict(Xk, theta))
    ids = np.array([3, 0, 5], dtype=np.int64)
    sw = np.linspace(0.5, 2, 500)
    for a, b in zip(N.batches_stats(X, Y, sw, theta, 64, ids), K.batches_stats(X, Y, sw, theta, 64, ids)):
        assert close(a, b)


def test_estimator_backends_agree():
    X, y = problem(n=3000, d=12, seed=9)
    a = LinearRegressor(backend="native", tol=None, max_iter=4, random_state=0).fit(X, y)
    b = LinearRegressor(backend="numba", tol=None, max_iter=4, random_state=0).fit(X, y)
    assert rel_err(a.coef_, b.coef_) < TOL and rel_err(a.predict(X), b.predict(X)) < TOL
    assert LinearRegressor().get_params()["backend"] == "auto"
    with pytest.raises(ValueError, match="backend must be .auto., .numba. or .native., got .cuda."):
        LinearRegressor(backend="cuda").fit(X, y)


def test_native_releases_the_gil_for_concurrent_fits():
    X, y = problem(n=4000, d=30, seed=4)
    kw = dict(backend="native", batch_size=512, tol=None, max_iter=3, random_state=0)
    serial = [LinearRegressor(**kw).fit(X, y).coef_ for _ in range(4)]
    out = [None] * 4

    def work(i):
        out[i] = LinearRegressor(**kw).fit(X, y).coef_

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(out, serial))


def test_missing_extension_is_reported_and_auto_falls_back(monkeypatch):
    import sys

    X, y = problem(n=200, d=3)
    import fastgd

    monkeypatch.setitem(sys.modules, "fastgd._native", None)  # as if the build had produced no extension
    monkeypatch.delattr(fastgd, "_native", raising=False)
    assert not _engine.native_available() and _engine.kernels("auto").__name__ == K.__name__
    with pytest.raises(ImportError, match="backend='native' needs the compiled extension.*pip install"):
        LinearRegressor(backend="native").fit(X, y)
    assert LinearRegressor(backend="auto", max_iter=2, tol=None).fit(X, y).score(X, y) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_agrees_with_numba(dtype):
    """The finiteness check of fit's validation runs on the backend's own kernels (no Numba compilation for
    native fits): both say the same for finite data, a NaN, an infinity, one column (CSR values) and no rows."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9000, 7)).astype(dtype)
    cases = [X, X[:, :1].copy(), X[:0]]
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[8123, 3] = bad
        cases.append(Y)
    for A in cases:
        for nt in (1, 2):
            assert N.all_finite(A, nt) == K.all_finite(A, nt) == bool(np.all(np.isfinite(A)))
