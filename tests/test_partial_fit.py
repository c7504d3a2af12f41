"""partial_fit's defaults on small streams: chunks of any size (one row included, and a first chunk of one
row) converge over passes as SGDRegressor.partial_fit does."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

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


def _sparse_text_like(n=320, d=300, seed=0):
    """Rows of 8 Zipf-popular columns (as hashed text), y = X w + 3 plus noise half the spread of X w."""
    import scipy.sparse as sp
    rng = np.random.RandomState(seed)
    p = 1.0 / np.arange(1, d + 1) ** 1.1
    cols = rng.choice(d, size=(n, 8), p=p / p.sum())
    X = sp.csr_matrix((np.ones(n * 8), cols.ravel(), np.arange(0, n * 8 + 1, 8)), shape=(n, d))
    X.sum_duplicates()
    clean = X @ rng.randn(d) + 3.0
    return X, clean + 0.5 * clean.std() * rng.randn(n), clean


def _dense_scales(n=320, d=6, k=1, seed=0):
    """Columns of scales 0.1 to 10, noise of spread 1 (k outputs)."""
    rng = np.random.RandomState(seed)
    scales = np.logspace(-1, 1, d)
    X = rng.randn(n, d) * scales
    clean = X @ (rng.randn(d, k) / scales[:, None]) + 2.0
    y = clean + rng.randn(n, k)
    return (X, y[:, 0], clean[:, 0]) if k == 1 else (X, y, clean)


@pytest.mark.parametrize("data, params", [
    ("sparse", {}), ("dense", {}), ("dense", {"standardize": False}), ("dense-2", {})])
def test_partial_fit_after_fit_continues_from_the_fitted_model(data, params):
    """Small chunks after a fit keep what the fit learned: held-out R² stays at the fit's or above (the
    running mean restarted after the fit and at every call before the 256th update, so coef_ was the mean of
    one small chunk's iterates: 0.694 fell to 0.649 here on sparse data, 0.995 to 0.946 on dense)."""
    X, y, clean = _sparse_text_like() if data == "sparse" else _dense_scales(k=2 if data == "dense-2" else 1)
    n_fit, chunk = 200, 30
    Xv, cv = X[n_fit + 3 * chunk:], clean[n_fit + 3 * chunk:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0, **params).fit(X[:n_fit], y[:n_fit])
        fitted = m.score(Xv, cv)
        after = []
        for a in range(n_fit, n_fit + 3 * chunk, chunk):
            after.append(m.partial_fit(X[a:a + chunk], y[a:a + chunk]).score(Xv, cv))
    assert min(after) > fitted - 2e-3, (fitted, after)


def test_a_fit_stopped_short_does_not_hold_the_calls_back():
    """A fit that max_iter stopped on its way (it warns) is no summary of its rows: the calls after it average
    their own iterates, as a stream's first calls do (counted as its 200 rows it held R² at 0.37 after three
    chunks)."""
    X, y, clean = _dense_scales()
    Xv, cv = X[290:], clean[290:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0, max_iter=2).fit(X[:200], y[:200])
        fitted = m.score(Xv, cv)
        for a in range(200, 290, 30):
            m.partial_fit(X[a:a + 30], y[a:a + 30])
    assert fitted < 0.3 and m.score(Xv, cv) > 0.7


def test_a_chunk_whose_weights_are_all_zero_is_refused_and_leaves_the_model_as_it_was():
    """scikit-learn's SGDRegressor.partial_fit (and fit) refuse sample weights that are all zero: so does this,
    naming sample_weight and the fix, and the model is as before the call (its steps, its running mean and the
    column statistics included), so the stream goes on as if the chunk had been skipped. A first call refused
    so leaves the estimator unfitted and usable."""
    import pickle

    from sklearn.exceptions import NotFittedError

    X, y, _ = _stream()
    m = LinearRegressor(random_state=0).partial_fit(X[:100], y[:100])
    before = pickle.dumps(m)
    with pytest.raises(ValueError, match=r"sample_weight is zero on every row.*give at least one row a positive "
                                         r"weight; or skip this chunk"):
        m.partial_fit(X[100:], y[100:], sample_weight=np.zeros(100))
    assert pickle.dumps(m) == before
    skipped = pickle.loads(before).partial_fit(X[100:], y[100:])
    np.testing.assert_array_equal(m.partial_fit(X[100:], y[100:]).coef_, skipped.coef_)

    fresh = LinearRegressor(random_state=0)
    with pytest.raises(ValueError, match=r"sample_weight is zero on every row"):
        fresh.partial_fit(X[:100], y[:100], sample_weight=np.zeros(100))
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    np.testing.assert_array_equal(fresh.partial_fit(X[:100], y[:100]).coef_,
                                  LinearRegressor(random_state=0).partial_fit(X[:100], y[:100]).coef_)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_sparse_calls_keep_their_lazy_workspace_out_of_pickles_and_fits(backend):
    """partial_fit on CSR chunks holds the lazy epoch's workspace from call to call (a new one per call had its
    pages faulted in and zeroed each time) and reuses it; it is scratch: a pickled (or deep-copied) model
    leaves it out and continues bit for bit as the original, a fit drops it, and a workspace too small for the
    model is not adopted (the epoch makes one of the right size)."""
    import copy
    import pickle

    X = sp.random(600, 400, density=0.02, format="csr", random_state=0)
    y = X @ np.random.default_rng(0).standard_normal(400) + 1.0
    m = LinearRegressor(random_state=0, backend=backend).partial_fit(X[:200], y[:200])
    held = m._work
    assert held is not None and held.size >= 4 * 401
    clone = pickle.loads(pickle.dumps(m))
    assert "_work" not in clone.__dict__ and "_work" not in copy.deepcopy(m).__dict__ and "_work" in m.__dict__
    for a in (200, 400):
        m.partial_fit(X[a:a + 200], y[a:a + 200])
        clone.partial_fit(X[a:a + 200], y[a:a + 200])
    assert m._work is held
    np.testing.assert_array_equal(m.coef_, clone.coef_)
    assert m.intercept_ == clone.intercept_
    assert "_work" not in m.fit(X, y).__dict__
    # a workspace too small for the model is not adopted (the epoch makes one of the right size)
    from fastgd import _engine
    from fastgd.optimizers import Adam

    adam = Adam()
    ts = _engine.TrainingState.fresh(adam, 2, 400)
    Xk = (X.data, X.indices, X.indptr, X.shape[1])
    epochs = _engine.Epochs(_engine.kernels(backend), Xk, np.zeros((600, 2)), adam.code, adam.pack(), 32)
    epochs.adopt(held, ts)
    work = epochs.workspace(ts)
    assert work is not held and work.size >= 4 * 2 * 401 > held.size
    epochs.release()
    epochs.adopt(work, ts)
    assert epochs.workspace(ts) is work


def test_partial_fit_after_a_wide_fit_keeps_the_fit_s_level():
    """On wide dense data (300 columns, a 360-row fit, then 10-row chunks) the calls continue the rate the fit's
    adaptive rule ended with, as its optimizer state: restarted at the starting rate, each update moved every
    coordinate by about that rate, a sixth of a typical standardized coefficient here, and held-out R² fell
    from 0.980 to 0.960 over ten chunks."""
    rng = np.random.default_rng(1)
    d, n_fit, chunk = 300, 360, 10
    X = rng.standard_normal((n_fit + 10 * chunk + 1000, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(len(X))
    Xv, yv = X[-1000:], y[-1000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0).fit(X[:n_fit], y[:n_fit])
        fitted = m.score(Xv, yv)
        after = [m.partial_fit(X[a:a + chunk], y[a:a + chunk]).score(Xv, yv)
                 for a in range(n_fit, n_fit + 10 * chunk, chunk)]
    assert fitted > 0.97 and min(after) > fitted - 1e-3, (fitted, after)


def test_the_calls_after_a_small_sparse_fit_continue_its_optimizer_state():
    """The sparse finish keeps a small optimizer state (the warm-up epochs' step count and moments), which the
    calls after the fit continue: released, the calls restarted Adam, whose first steps move every coordinate
    they touch by about the rate."""
    X, y, _ = _sparse_text_like()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegressor(random_state=0).fit(X[:200], y[:200])
        fitted = m.t_
        m.partial_fit(X[200:230], y[200:230])
    assert fitted > 0 and m.t_ > fitted


def test_a_change_of_units_mid_stream_is_documented_with_its_fix():
    """Chunks whose units change mid-stream: a slow recovery (and a warning naming the change: see
    test_a_change_of_units_mid_stream_warns_with_that_cause). partial_fit's docstring and the user guide say so
    with the figures this code gives, and the fix they give (a scaler fitted beforehand) works."""
    from pathlib import Path

    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    model = LinearRegressor(random_state=0).partial_fit(X, y)
    scores = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(30):
            model.partial_fit(X * 1000, y)
            scores.append(model.score(X * 1000, y))
    assert sum("changed units" in str(w.message) for w in seen) == 1
    guide = (Path(__file__).resolve().parents[1] / "docs" / "user-guide.md").read_text()
    doc = " ".join(LinearRegressor.partial_fit.__doc__.split())
    for v in (scores[0], scores[-1]):
        figure = f"{v:.1e}".replace("e+0", "e")  # -4.6e5
        assert figure in doc and figure in " ".join(guide.split()), figure
    assert "StandardScaler" in doc and "StandardScaler" in guide
    scaler = StandardScaler().fit(X * 1000)
    fixed = LinearRegressor(random_state=0)
    for _ in range(30):
        fixed.partial_fit(scaler.transform(X * 1000), y)
    assert fixed.score(scaler.transform(X * 1000), y) > 0.5


@pytest.mark.parametrize("backend", ["numba", "native"])
def test_a_partial_fit_whose_loss_explodes_but_stays_finite_raises_and_keeps_the_model(backend):
    """SGD with a rate and an l2 penalty the user chose, five columns in units 1e-2 of the others: the penalty's
    curvature outgrew the steps and the training loss reached 9.6e302, finite, so partial_fit (no evaluation set)
    returned R² -3.8e299 without a word. An epoch whose training loss exceeds a million times the loss of the
    best constant on its rows now raises as a divergence (the model as before the call), with advice that works."""
    rng = np.random.default_rng(0)
    n, d = 2000, 50
    X = rng.uniform(0, 1, (n, d)) * (rng.uniform(size=(n, d)) < 0.2)
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    X[:, :5] *= 0.01
    kw = dict(optimizer="sgd", penalty="l2", random_state=0, backend=backend)
    est = LinearRegressor(learning_rate=0.01, alpha=0.01, **kw)
    with pytest.raises(ValueError, match=r"training loss rose to .*more than 1e\+06 times the loss of the best "
                                         r"constant") as info:
        est.partial_fit(X[:400], y[:400])
    assert not hasattr(est, "coef_")  # the first call: nothing fitted
    lr = float(re.search(r"Lower the learning rate \(now 0.01\) to ([0-9.e+-]+) ", str(info.value)).group(1))
    ok = LinearRegressor(learning_rate=lr, alpha=0.01, **kw)
    for i in range(5):
        ok.partial_fit(X[i * 400:(i + 1) * 400], y[i * 400:(i + 1) * 400])
    assert np.all(np.isfinite(ok.coef_)) and ok.score(X, y) > 0
    fitted = LinearRegressor(learning_rate=1e-4, alpha=0.01, **kw).partial_fit(X[:400], y[:400])
    before = fitted.coef_.copy()
    fitted.set_params(learning_rate=0.01)
    with pytest.raises(ValueError, match="training loss rose"):
        fitted.partial_fit(X[400:800], y[400:800])
    np.testing.assert_array_equal(fitted.coef_, before)


def test_one_row_weighted_chunks_are_not_taken_for_a_divergence():
    """One weighted row's weighted mean differs from its target in the last bit, so its "best constant" had a
    loss of 4.9e-32 and any real loss was a million times that: a stream of one-row weighted chunks raised
    "Training diverged" at its 12th call (CSR 500 x 60, adam and sgd alike), advising an adaptive optimizer
    already in use. Targets that are one value to rounding now give no scale; with running statistics the
    stream's target variance is the scale, so a real explosion still raises, and says what it was measured on."""
    rng = np.random.default_rng(5)
    X = sp.random(500, 60, density=0.1, random_state=5, format="csr")
    y = X @ rng.normal(size=60) + 0.05 * rng.normal(size=500)
    w = np.random.default_rng(0).uniform(0.1, 3, 500)
    for kw in ({}, {"optimizer": "sgd", "standardize": False}):
        est = LinearRegressor(random_state=0, **kw)
        for i in range(40):
            est.partial_fit(X[i:i + 1], y[i:i + 1], sample_weight=w[i:i + 1])
        assert np.all(np.isfinite(est.coef_))
    est = LinearRegressor(random_state=0, optimizer="sgd", learning_rate=1e4)
    with pytest.raises(ValueError, match=r"training loss rose to .* times the loss of the best constant on every "
                                         r"target seen so far \(the running statistics\)"):
        for i in range(40):
            est.partial_fit(X[i:i + 1], y[i:i + 1], sample_weight=w[i:i + 1])


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
@pytest.mark.parametrize("value", [0.1, -29.637, 1 / 3, 100 * np.pi, 1e-3, 1234.5])
def test_a_stream_of_one_target_value_predicts_it(value, optimizer):
    """Fifty rows of y = 0.1 (red teams' finds): y's mean was the plain sum over the count, 0.1 plus rounding,
    so every row's residual was that rounding, which an adaptive optimizer's normalized steps turn into steps of
    its full rate (partial_fit has no finish to undo them: 1e-3 in chunks of 10 was predicted 87 times off); and
    the running variance of y was that rounding squared (7.7e-34; 1234.5, exact in binary, gave 0), a million
    times which was the limit of a "diverged" loss, so the first call raised "Training diverged ... please report
    it". The mean is now the first value plus the mean of the differences (exact for one value), and a variance
    of rounding next to the mean is no scale: the calls predict the value."""
    X = np.random.default_rng(0).normal(size=(50, 3)) + 100
    est = LinearRegressor(random_state=0, optimizer=optimizer)
    for shift in (0.0, 1.0):
        est.partial_fit(X + shift, np.full(50, value))
        np.testing.assert_allclose(est.predict(X), value, rtol=1e-12)


def test_rows_of_zero_weight_leave_the_targets_statistics_alone():
    """The exact mean of one value starts from a value of the data: the first row's, where a red team put a row of
    weight 0 with y = 1e100 (R² -2.7e148 where dropping the row gives 0.83) or 5.0 beside fifty rows of 0.1 (a
    stream then 10 % off). It is the first value of positive weight."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    y = 1000 + X @ [1.0, 2.0] + rng.normal(size=100)
    y[0] = 1e100
    sw = np.ones(100)
    sw[0] = 0.0
    with_row = LinearRegressor(random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(with_row.coef_, LinearRegressor(random_state=0).fit(X[1:], y[1:]).coef_, rtol=1e-9)
    y = np.full(60, 0.1)
    y[0] = 5.0
    est = LinearRegressor(random_state=0).partial_fit(X[:60], y, sample_weight=sw[:60])
    np.testing.assert_allclose(est.predict(X[1:60]), 0.1, rtol=1e-12)


def test_a_divergence_beside_a_row_of_negligible_weight_is_caught():
    """A row of weight 1e-300 with y = 1e10 beside diabetes does not count for the rule that a stream's targets
    are one value (weights below float64's epsilon times the largest are below every weighted sum's rounding; a
    weight 1e300 times the others makes its row the only one), nor does it hide a divergence (a red team found a
    first rule, the unweighted spread, let SGD at 0.21 run to coefficients of 4e6 without a word)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    Xa, ya = np.vstack([X, X[:1]]), np.append(y, 1e10)
    sw = np.append(np.ones(len(y)), 1e-300)
    est = LinearRegressor(optimizer="sgd", learning_rate=0.21, random_state=0)
    with pytest.raises(ValueError,
                       match=r"training loss rose to .* the loss of the best constant on these rows \(5\.9"):
        for _ in range(10):
            est.partial_fit(Xa, ya, sample_weight=sw)


def _mostly_zero(n=2000, d=300, seed=0):
    """2 % non-zeros (uniform values), y = X·w + noise: column 3's only value in the first 100 rows is 6.3e-4."""
    X = sp.random(n, d, density=0.02, random_state=seed).toarray()
    rng = np.random.default_rng(seed)
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("backend", ["numba", "native"])
def test_dense_chunks_with_mostly_zero_columns_do_not_trust_a_column_seen_in_a_few_rows(backend):
    """Dense 100-row chunks of a 2000 x 300 matrix with 2 % non-zeros: the running standard deviation scaled
    column 3 (one value, 6.3e-4, in the first chunk) by about 6e-5 and the first call's standardized steps gave
    it a raw coefficient of 215, which later chunks (its values up to 1) turned into R² -159 after one pass and
    -88 after 20, without a word. A mostly-zero column's scale is now at least the median scale of the columns
    shown in 10 rows or more until 10 rows have shown its values (the same stream as CSR: 0.048 after a pass)."""
    X, y = _mostly_zero()
    dense = LinearRegressor(random_state=0, backend=backend)
    csr = LinearRegressor(random_state=0, backend=backend)
    for s in range(0, len(X), 100):
        dense.partial_fit(X[s:s + 100], y[s:s + 100])
        csr.partial_fit(sp.csr_matrix(X[s:s + 100]), y[s:s + 100])
        if s == 0:
            assert np.max(np.abs(dense.coef_)) < 5  # 215 before
    assert dense.score(X, y) > 0.8  # -159 before (0.90 now; standardize=False: 0.16)
    assert csr.score(X, y) > 0.4  # 0.048 before (0.60 now)


def test_the_bound_leaves_columns_non_zero_in_most_rows_and_fit_alone():
    """The running scale of a column non-zero in most rows is its standard deviation, however few rows; a
    mostly-zero column's rises to the trusted columns' median until 10 rows have shown its values, then is its
    own again; fit keeps every column's standard deviation."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    X[:, 3] = 0.0
    X[[5, 250, 300, 350, 400, 450, 500, 510, 520, 530, 540], 3] = 1e-3 * rng.uniform(1, 2, 11)
    y = X[:, :3] @ np.arange(1.0, 4.0)
    stream = LinearRegressor(random_state=0)
    stream.partial_fit(X[:6], y[:6])  # 6 rows: columns 0-2 not trusted yet, but non-zero in every row
    np.testing.assert_allclose(stream._scaling.x_scale[:3], X[:6, :3].std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stream._scaling.x_scale[3], np.median(X[:6].std(axis=0)), rtol=1e-12)  # of all
    stream.partial_fit(X[6:500], y[6:500])  # 6 of column 3's values: still bounded, by columns 0-2
    np.testing.assert_allclose(stream._scaling.x_scale[3], np.median(X[:500, :3].std(axis=0)), rtol=1e-12)
    stream.partial_fit(X[500:], y[500:])  # all 11: its own standard deviation
    np.testing.assert_allclose(stream._scaling.x_scale[3], X[:, 3].std(), rtol=1e-12)
    fitted = LinearRegressor(random_state=0).fit(X, y)
    np.testing.assert_allclose(fitted._scaling.x_scale, X.std(axis=0), rtol=1e-12)


def test_the_non_zero_counts_of_dense_chunks_are_weighted_and_read_only_where_needed():
    """``dense_counts``: the weight of each column's non-zero rows and their number (rows of weight 0 not
    counted), for all columns or the listed ones; partial_fit counts only the columns below TRUSTED_VALUES."""
    from fastgd import _scaling

    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 6)) * (rng.random((50, 6)) < 0.3)
    sw = rng.uniform(0, 2, 50)
    sw[:5] = 0.0
    stored, count = _scaling.dense_counts(X, sw)
    np.testing.assert_allclose(stored, sw @ (X != 0))
    np.testing.assert_array_equal(count, (sw > 0).astype(float) @ (X != 0))  # (bool @ bool: any, not a count)
    stored, count = _scaling.dense_counts(X, None, np.array([1, 4]))
    np.testing.assert_array_equal(count, np.where(np.isin(np.arange(6), [1, 4]), (X != 0).sum(axis=0), 0))
    np.testing.assert_array_equal(stored, count)
    est = LinearRegressor(random_state=0).partial_fit(X, X[:, 0])
    np.testing.assert_array_equal(est._scaling.x_count, np.minimum((X != 0).sum(axis=0), _scaling.TRUSTED_VALUES))
    np.testing.assert_allclose(est._scaling.x_stored, (X != 0).sum(axis=0))
    # CSR statistics keep their stored weights in x_sparse: no second d-vector (a fit held one for nothing, and
    # the default sparse fit's peak memory grew by it: tests/test_memory.py)
    S = sp.csr_matrix(X)
    for est in (LinearRegressor(random_state=0).fit(S, X[:, 0]),
                LinearRegressor(random_state=0).partial_fit(S, X[:, 0]), LinearRegressor(random_state=0).fit(X, X[:, 0])):
        assert est._scaling.x_stored is None


def _one_hot(n=6000, ncat=6, levels=300, seed=0):
    """One-hot codes of ``ncat`` categories of ``levels`` levels each, Zipf-like popularity (most levels in a
    handful of rows), as CSR; y = the levels' effects + noise."""
    rng = np.random.default_rng(seed)
    codes = np.minimum(rng.integers(0, levels, size=(n, ncat)), (rng.zipf(1.3, size=(n, ncat)) - 1) % levels)
    cols = (codes + levels * np.arange(ncat)).ravel()
    X = sp.csr_matrix((np.ones(n * ncat), (np.repeat(np.arange(n), ncat), cols)), shape=(n, ncat * levels))
    return X, X @ rng.normal(size=ncat * levels) + 0.5 * rng.normal(size=n)


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_dense_one_hot_chunks_bound_the_standardized_values_of_rare_levels(optimizer):
    """One-hot categories passed as dense chunks: a level seen in a few rows of thousands has a tiny standard
    deviation, so its standardized values were huge (45 for one row in 2,000), and the Adam family, which steps
    every coordinate by about the rate, moved its rows' predictions by that many times the rate: held-out R²
    0.84 (adam) and 0.47 (adagrad) after 3 passes of 400-row chunks, where the same chunks as CSR (rare columns
    scaled by their largest |value|) gave 0.91; 8 categories of 500 levels in 1000-row chunks: -0.39 after 5
    passes, without a word. With such an optimizer a dense stream's mostly-zero columns are now scaled by at
    least a tenth of the root mean square of their non-zero values: 0.92 and 0.91 here."""
    from fastgd import _scaling

    X, y = _one_hot()
    dense, m = X.toarray(), 4800
    model = LinearRegressor(optimizer=optimizer, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the stream's check of itself is not what this tests)
        for _ in range(3):
            for s in range(0, m, 400):
                model.partial_fit(dense[s:s + 400], y[s:s + 400])
    assert model.score(dense[m:], y[m:]) > 0.87  # 0.84 / 0.47 before, 0.92 / 0.91 now (CSR chunks: 0.91)
    sc = model._scaling
    seen = dense[:m]
    share = (seen != 0).mean(axis=0)
    np.testing.assert_array_equal(sc.x_nonzero, (seen != 0).sum(axis=0) * 3.0)  # 3 passes: each row 3 times
    rare = (share > 0) & (share < 0.5)
    typical = np.sqrt((seen[:, rare] ** 2).mean(axis=0) / share[rare])  # the non-zero values' RMS (here 1)
    assert np.all(typical / sc.x_scale[rare] <= _scaling.STREAM_SPREAD_CAP * (1 + 1e-12))
    assert np.max(typical / seen.std(axis=0)[rare]) > 40  # the bound had work to do


def test_the_rare_column_bound_leaves_sgd_fit_outliers_and_light_rows_alone():
    """SGD's steps follow the gradient (small on a rare column already): its stream keeps the running standard
    deviations, and so does fit. The bound reads weighted second moments of columns non-zero in few rows: a
    column non-zero in most rows keeps its standard deviation whatever its outliers (a bound on the largest
    deviation froze an N(0, 1) column with one value of 1000: held-out R² 0.99 -> 0.92 after 5 passes; one row
    of weight 1e-9 holding 1e6: 0.999 -> 0.002), and a light row counts by its weight."""
    from fastgd import _scaling

    X, y = _one_hot(n=2000, ncat=3, levels=100)
    dense = X.toarray()
    sgd = LinearRegressor(optimizer="sgd", random_state=0)
    for s in range(0, 2000, 500):
        sgd.partial_fit(dense[s:s + 500], y[s:s + 500])
    assert sgd._scaling.x_nonzero is None
    counted = sgd._scaling.x_count >= _scaling.TRUSTED_VALUES  # (the others: the untrusted columns' bound)
    np.testing.assert_allclose(sgd._scaling.x_scale[counted], dense.std(axis=0)[counted], rtol=1e-10)
    fitted = LinearRegressor(random_state=0).fit(dense, y)
    varying = dense.std(axis=0) > 0
    np.testing.assert_allclose(fitted._scaling.x_scale[varying], dense.std(axis=0)[varying], rtol=1e-10)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2000, 3))
    A[5, 1] = 1000.0  # a glitch in a column non-zero in every row
    A[::2, 2] = 0.0
    A[9, 2], sw = 1e6, np.ones(2000)
    sw[9] = 1e-9  # a light row holding a huge value in a column non-zero in half the rows
    for backend in ("numba", "native"):
        adam = LinearRegressor(random_state=0, backend=backend)
        for s in range(0, 2000, 500):
            adam.partial_fit(A[s:s + 500], A[s:s + 500, 0], sample_weight=sw[s:s + 500])
        mean = np.average(A, axis=0, weights=sw)
        std = np.sqrt(np.average((A - mean) ** 2, axis=0, weights=sw))
        np.testing.assert_allclose(adam._scaling.x_scale, std, rtol=1e-9)
        np.testing.assert_allclose(adam._scaling.x_nonzero, sw @ (A != 0), rtol=1e-12)


def _heavy_tailed(n=2000, d=300):
    """benchmarks/partial_fit_passes.py --mostly-zero, second part: 2 % non-zeros with lognormal(0, 2) values."""
    rng = np.random.default_rng(7)
    X = sp.random(n, d, density=0.02, random_state=1, data_rvs=lambda k: rng.lognormal(0.0, 2.0, k)).toarray()
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


def _stream_warnings(model, X, y, size, passes=1, sample_weight=None):
    """The texts of partial_fit's warnings that the stream is failing, over the passes."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(passes):
            for s in range(0, X.shape[0], size):
                model.partial_fit(X[s:s + size], y[s:s + size],
                                  sample_weight=None if sample_weight is None else sample_weight[s:s + size])
    return [str(w.message) for w in seen if "worse than a constant" in str(w.message)]


@pytest.mark.parametrize("backend", ["numba", "native"])
def test_a_stream_worse_than_a_constant_warns_once_with_a_fix_that_works(backend):
    """The heavy-tailed stream's R² was -6.4 after a pass without a word. The progressive loss (each batch's
    before its update) is now compared with the mean of the targets seen before: one warning, in the first pass,
    naming the figure, the mostly-zero columns with Adam, and optimizer='sgd', which reaches R² 0.97 in 5 passes."""
    X, y = _heavy_tailed()
    model = LinearRegressor(random_state=0, backend=backend)
    got = _stream_warnings(model, X, y, 100, passes=2)
    assert len(got) == 1  # once per stream, not per call
    assert re.search(r"progressive R² of -\d", got[0]) and "optimizer='sgd'" in got[0]
    assert model.score(X, y) < -1  # the failure warned about
    fixed = LinearRegressor(random_state=0, optimizer="sgd", backend=backend)
    assert _stream_warnings(fixed, X, y, 100, passes=5) == []
    assert fixed.score(X, y) > 0.9  # 0.968


def test_a_failing_stream_of_one_row_chunks_is_not_told_to_use_sgd():
    """Digits in 1-row chunks with optimizer='adagrad' (held-out R² -1.5 after a pass): the warning named the
    chunk's mostly-zero columns (every zero of its one row) and advised optimizer='sgd', which diverged on the same
    stream (row 1,248). A chunk of under STREAM_RARE_ROWS rows shows nothing of how often a column is zero: the
    warning gives its general fix, fitting on all the rows, which reaches LinearRegression's R²."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X.astype(np.float64), y.astype(np.float64), test_size=0.3, random_state=0)
    got = _stream_warnings(LinearRegressor(random_state=0, optimizer="adagrad"), X, y, 1)
    assert len(got) == 1 and "optimizer='sgd'" not in got[0] and "fit on all of them" in got[0], got
    fitted = LinearRegressor(random_state=0, optimizer="adagrad").fit(X, y)
    assert fitted.score(X, y) > LinearRegression().fit(X, y).score(X, y) - 1e-3


def test_a_change_of_units_mid_stream_warns_with_that_cause():
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegressor(random_state=0)
    assert _stream_warnings(model, X, y, 30) == []
    got = _stream_warnings(model, X * 1000, y, 30)
    assert len(got) == 1 and "changed units" in got[0] and "optimizer='sgd'" not in got[0]
    fitted = LinearRegressor(random_state=0).fit(X, y)  # the scales the stream starts from are the fit's
    got = _stream_warnings(fitted, X * 1000, y, 30)
    assert len(got) == 1 and "changed units" in got[0]


@pytest.mark.parametrize("case", ["diabetes", "diabetes rows", "weighted", "gaussian", "csr", "one-hot", "drift",
                                  "multi-output", "noise", "tiny first", "after fit", "standardize=False"])
def test_ordinary_streams_do_not_warn(case):
    from sklearn.datasets import load_diabetes
    rng = np.random.default_rng(0)
    kw, size, sw = {}, 100, None
    if case.startswith("diabetes") or case == "weighted":
        X, y = load_diabetes(return_X_y=True)
        size = 1 if case == "diabetes rows" else 30
        sw = rng.uniform(0.1, 3, len(y)) if case == "weighted" else None
    elif case == "csr":
        X = sp.random(2000, 500, density=0.01, random_state=3, format="csr")
        y = X @ rng.normal(size=500) + 0.1 * rng.normal(size=2000)
    elif case == "one-hot":
        cats = rng.integers(0, 50, size=(2000, 4)) + 50 * np.arange(4)
        X = sp.csr_matrix((np.ones(8000), (np.repeat(np.arange(2000), 4), cats.ravel())), shape=(2000, 200))
        y = X @ rng.normal(size=200) + 0.3 * rng.normal(size=2000)
    else:
        X = rng.normal(size=(2000, 20))
        y = X @ rng.normal(size=(20, 3) if case == "multi-output" else 20)
        y = y + {"drift": np.linspace(0, 30, 2000), "noise": 10 * rng.normal(size=2000),
                 "standardize=False": 50.0}.get(case, 0.0)
        kw = dict(standardize=False) if case == "standardize=False" else {}
    model = LinearRegressor(random_state=0, **kw)
    if case == "after fit":
        model.fit(X[:1000], y[:1000])
    if case == "tiny first":
        model.partial_fit(X[:1], y[:1])
    assert _stream_warnings(model, X, y, size, passes=2, sample_weight=sw) == []


def test_partial_fit_ignores_early_stopping():
    """early_stopping is fit's (as SGDRegressor's): partial_fit holds nothing out, so the calls' model is the one
    without it, bit for bit. Its batch-size cap for the held-out batches made diabetes in 20-row chunks differ
    from the first call on (by 65.5), silently."""
    from sklearn.datasets import load_diabetes

    import fastgd

    X, y = load_diabetes(return_X_y=True)
    models = [fastgd.LinearRegressor(random_state=0, early_stopping=es) for es in (False, True)]
    for start in range(0, 400, 20):
        for model in models:
            model.partial_fit(X[start:start + 20], y[start:start + 20])
        assert np.array_equal(models[0].coef_, models[1].coef_) and models[0].intercept_ == models[1].intercept_


def _unit_spread_stream():
    """4,000 rows of 10 columns whose scales span 1e4 (offsets 1e6 and 2000 on two), y linear in the standardized
    columns: standardize=False steps every weight alike, which suits none."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 10)) * [1, 10, 100, 1e3, 1e4, 1, 1, 1, 1, 1] + [0, 0, 1e6, 0, 2000, 0, 0, 0, 0, 0]
    y = (X - X.mean(0)) / X.std(0) @ rng.normal(size=10) + 1
    return X, y


def test_a_failing_unscaled_stream_names_the_unscaled_columns_and_its_advice_works():
    """A stream with standardize=False over columns whose scales span 1e4 was told it was worse than a constant
    with the advice to fit on all rows (R² 0.855 there, with fit's own warning naming standardization) or that
    the units changed; now the warning names standardize=False and the spread, and the advice reaches R² 1."""
    X, y = _unit_spread_stream()
    model = LinearRegressor(random_state=0, standardize=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            for i in range(0, 3000, 300):
                model.partial_fit(X[i:i + 300], y[i:i + 300])
    notes = [str(w.message) for w in caught if "worse than a constant" in str(w.message)]
    assert len(notes) == 1 and "standardize=False with features whose scales span" in notes[0], notes
    assert "changed units" not in notes[0] and "fit on all of them" not in notes[0]
    fixed = eval(re.search(r"(sklearn\.base\.clone\(model\)\.set_params\(standardize=True\))", notes[0]).group(1),
                 {"sklearn": __import__("sklearn.base"), "model": model})
    assert fixed.standardize and not hasattr(fixed, "coef_")
    for _ in range(3):
        for i in range(0, 3000, 300):
            fixed.partial_fit(X[i:i + 300], y[i:i + 300])
    assert fixed.score(X[3000:], y[3000:]) > 0.99  # the advised stream


@pytest.mark.parametrize("name", ["fit_intercept", "standardize"])
@pytest.mark.parametrize("start", ["fit", "partial_fit"])
def test_the_intercept_and_scaling_cannot_change_mid_stream(name, start):
    """set_params(fit_intercept=False) between calls left an intercept_ of -13565 on a model that says it has
    none; standardize=False mid-stream took R² from 0.999 to -2240 in one call, blamed on changed units. A call
    with either changed raises, naming it and the fix, the model unchanged; set back, the stream goes on."""
    X, y = _unit_spread_stream()
    model = LinearRegressor(random_state=0)
    getattr(model, start)(X[:300], y[:300])
    before = (model.coef_.copy(), model.intercept_, model.n_iter_)
    model.set_params(**{name: False})
    with pytest.raises(ValueError, match=rf"{name}=False \(the model was fitted with True\) cannot change "
                                         r"mid-stream.*sklearn\.base\.clone\(model\)"):
        model.partial_fit(X[300:600], y[300:600])
    assert np.array_equal(model.coef_, before[0]) and model.intercept_ == before[1] and model.n_iter_ == before[2]
    model.set_params(**{name: True})
    model.partial_fit(X[300:600], y[300:600])
    assert model.n_iter_ == before[2] + 1


def test_a_chunk_with_other_outputs_names_the_fix():
    X, y = _unit_spread_stream()
    model = LinearRegressor(random_state=0).partial_fit(X[:300], np.c_[y[:300], -y[:300]])
    with pytest.raises(ValueError, match=r"y has 1 outputs but the model was fitted with 2: pass y with 2 "
                                         r"column\(s\), or start a new model.*clone\(model\)"):
        model.partial_fit(X[300:600], y[300:600])


@pytest.mark.parametrize("optimizer", ["adagrad", "rmsprop", "sgd"])
def test_sparse_stream_batches_do_not_grow_with_the_chunk(optimizer):
    """A partial_fit call on sparse X with batch_size="auto" takes batches of at most STREAM_SPARSE_BATCH rows
    (one row for 'sgd', whose lazy steps are the rate times the gradient, as SGDRegressor's): the batch rule's
    growth with the chunk's rows (and, where the epoch updates every coordinate, its d / non-zeros floor) gave
    a 4,500-row call of Zipf columns 2,730-row batches, two updates a pass: held-out R² after 2 passes 'adagrad'
    0.23, 'rmsprop' 0.25, 'sgd' (16 rows) 0.35, where 'adam' reached 0.58; now 0.58, 0.48 and 0.55."""
    from fastgd import _planning

    from test_sparse import zipf_binary

    X, y = zipf_binary(6000, 2**16, 30, seed=3)
    model = LinearRegressor(optimizer=optimizer, random_state=0)
    for _ in range(2):
        model.partial_fit(X[:4500], y[:4500])
    want = _planning.STREAM_SPARSE_PLAIN_BATCH if optimizer == "sgd" else _planning.STREAM_SPARSE_BATCH
    assert model.batch_size_ == want
    assert model.score(X[4500:], y[4500:]) > 0.45


def test_sgd_sparse_streams_take_one_row_batches_where_the_dense_update_would_be_as_cheap():
    """The one-row rule asks whether the kernels update lazily (they do for 'sgd' at any batch size), not whether
    laziness pays at the uncapped batch: 10,000-row calls on 256 columns got 64-row batches (review)."""
    X = sp.random(10000, 256, density=0.1, format="csr", random_state=0)
    y = X @ np.random.default_rng(0).standard_normal(256)
    assert LinearRegressor(optimizer="sgd", random_state=0).partial_fit(X, y).batch_size_ == 1


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_constant_column_is_no_scale_in_the_unscaled_streams_warning(sparse, dtype):
    """_stream_failing's spread of a constant column (0.1, 3.7) was rounding (sqrt(E[x²] - mean²): 1e-9 to 2e-6)
    and made "scales span 1.5e+08 times" of columns of one scale (review); about the mean, it is none."""
    from fastgd._planning import named_optimizer

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal((100, 3)), np.full(100, 0.1), np.full(100, 3.7)]).astype(dtype)
    X = sp.csr_matrix(X) if sparse else X
    model = LinearRegressor(standardize=False, random_state=0).partial_fit(X, rng.standard_normal(100))
    state = dict(model._progress, loss=10.0, const=1.0, rows=300.0)
    message = model._stream_failing(state, X, named_optimizer("adam"))
    assert "scales span" not in message, message
    X10 = X.multiply(np.r_[1, 1, 1e4, 1, 1]).tocsr() if sparse else X * np.r_[1, 1, 1e4, 1, 1].astype(dtype)
    assert "scales span" in model._stream_failing(state, X10, named_optimizer("adam"))  # a real spread still is


def test_an_estimator_subclass_need_not_be_hashable():
    """The training calls' lock is kept by id(): a subclass defining __eq__ alone (unhashable) still fits."""
    class Compared(LinearRegressor):
        def __eq__(self, other):
            return self is other

    X, y = _unit_spread_stream()
    assert np.all(np.isfinite(Compared(random_state=0).fit(X[:300], y[:300]).coef_))
    assert np.all(np.isfinite(Compared(random_state=0).partial_fit(X[:300], y[:300]).coef_))
