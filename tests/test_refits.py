"""Refits: warm_start and partial_fit after a change of optimizer, and partial_fit's running statistics merged
across chunks. (A warm start with another number of features: test_bad_input.)"""

import numpy as np
import pytest

import fastgd
from fastgd import LinearRegressor
from fastgd.datasets import make_regression

from _helpers import linear_data as _data

BACKENDS = ["numba"] + (["native"] if fastgd._engine.native_available() else [])


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = make_regression(3000, 8, noise=0.3, random_state=1)
    return X, y


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_partial_fit_merges_a_column_that_is_zero_in_the_first_chunk(fit_intercept):
    """Its running scale is the whole data's, not the chunk's placeholder scale 1 taken for a mean square."""
    X, y, _ = _data(2000, 3)
    X[:1000, 1] = 0.0
    m = LinearRegressor(fit_intercept=fit_intercept, random_state=0)
    m.partial_fit(X[:1000], y[:1000]).partial_fit(X[1000:], y[1000:])
    whole = LinearRegressor(fit_intercept=fit_intercept, max_iter=1, tol=None).fit(X, y)._scaling
    np.testing.assert_allclose(m._scaling.x_scale, whole.x_scale, rtol=1e-12)
    np.testing.assert_allclose(m._scaling.y_scale, whole.y_scale, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_changing_the_optimizer_starts_a_fresh_state(data, backend, how):
    """sgd has no state slots, adam three: the refit gets a fresh state of adam's shape (reusing sgd's 0-row
    state would write out of bounds)."""
    X, y = data
    m = LinearRegressor(optimizer="sgd", warm_start=True, max_iter=3, tol=None, backend=backend, random_state=0)
    if how == "warm_start":
        m.fit(X, y)
        m.set_params(optimizer="adam").fit(X, y)
    else:
        m.partial_fit(X, y)
        m.set_params(optimizer="adam").partial_fit(X, y)
    assert m._ts.state.shape == (3, X.shape[1] + 1)
    assert m.score(X, y) > 0.9 and np.all(np.isfinite(m.coef_))


def test_a_warm_start_at_the_optimum_is_not_told_to_lower_the_rate():
    """Epochs from a converged model cannot improve on it: the start is kept without advice (a lower rate or more
    epochs would not change that), and stop_reason_ says why."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    X, y, _ = _data(600, noise=1.0)
    for kw in [dict(max_iter=3), dict(max_iter=20, learning_rate=1e-4)]:
        m = LinearRegressor(optimizer="lbfgs", random_state=0).fit(X, y)
        coef = m.coef_.copy()
        m.set_params(warm_start=True, optimizer="adam", tol=None, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            m.fit(X, y)
        np.testing.assert_allclose(m.coef_, coef, rtol=1e-12)  # the start, to the rounding of its units
        assert "no epoch improved on the starting point, which is at the optimum" in m.stop_reason_


def test_a_start_short_of_the_optimum_that_epochs_did_not_improve_gets_advice_that_works():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    X, y, _ = _data(600, noise=1.0)
    opt = LinearRegressor(optimizer="lbfgs").fit(X, y)
    start = dict(coef_init=opt.coef_ * 1.05, intercept_init=opt.intercept_)
    with pytest.warns(ConvergenceWarning, match="above the optimum.*Lower the learning rate"):
        m = LinearRegressor(learning_rate=5.0, tol=None, max_iter=3, random_state=0).fit(X, y, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lower = LinearRegressor(learning_rate=0.5, tol=None, max_iter=3, random_state=0).fit(X, y, **start)
    assert lower.score(X, y) > m.score(X, y)
