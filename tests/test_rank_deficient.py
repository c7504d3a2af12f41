"""The conjugate-gradient finish on rank-deficient designs (no more rows than parameters, collinear columns):
floating-point CG reaches directions of the design's null space, whose curvature is rounding; it must stop
there, not step along them, and report it truthfully."""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_linnerud
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import PolynomialFeatures

from fastgd import LinearRegressor, estimator

BACKENDS = ("numba", "native")
FLAT = "curvature fell to rounding level"
ZERO = "reached zero (the model fits the rows exactly"  # CG's tracked objective used up: an exact fit


def _min_norm(X, y, fit_intercept):
    """The minimum-norm least-squares solution in the standardized coordinates the fit works in (coef, intercept)."""
    mu = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    s = X.std(axis=0)
    s[s == 0] = 1.0
    y_mean = y.mean(axis=0) if fit_intercept else np.zeros(y.shape[1:])
    c = np.linalg.lstsq((X - mu) / s, y - y_mean, rcond=None)[0]
    coef = (c.T / s)
    return coef, y_mean - coef @ mu


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an exact fit reached: nothing to warn of
        return LinearRegressor(random_state=0, **params).fit(X, y)


def _square():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 10))
    y = X @ rng.normal(size=10) + rng.normal(size=30)
    return X[:10], y[:10], X[10:]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data", ["gauss", "diabetes"])
def test_rows_equal_columns_with_intercept_stays_near_min_norm(backend, data):
    """10 rows, 10 columns and an intercept: the centred design has a null space; tol=0 runs CG until it
    stops on its own. It stepped along a null direction (α = rᵀz / pᵀAp with pᵀAp at rounding level): coef_
    of 1e13 (1e16 on diabetes), held-out R² -1e25."""
    if data == "gauss":
        X, y, X_new = _square()
    else:
        Xd, yd = load_diabetes(return_X_y=True)
        X, y, X_new = Xd[:10], yd[:10], Xd[10:]
    model = _fit(X, y, backend=backend, tol=0.0)
    coef, intercept = _min_norm(X, y, True)
    assert np.all(np.isfinite(model.coef_))
    assert np.linalg.norm(model.coef_) < 2 * np.linalg.norm(coef)
    assert model.score(X, y) > 1 - 1e-9
    # another interpolant than the minimum-norm one, but of the same scale on new rows
    spread = np.std(X_new @ coef + intercept)
    assert np.std(model.predict(X_new) - (X_new @ coef + intercept)) < spread
    assert any(reason in model.stop_reason_ for reason in (FLAT, ZERO, "residual vanished"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_equal_columns_without_intercept_warns_of_no_rounding_excess(backend):
    """A full-rank square design without intercept, tol=0: the fit is exact to rounding; the exact check's excess
    (1e-30 of the variance of y) was reported as a shortfall."""
    X, y, _ = _square()
    model = _fit(X, y, backend=backend, tol=0.0, fit_intercept=False)
    coef, _ = _min_norm(X, y, False)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fewer_rows_than_columns_reaches_an_exact_fit(backend, fit_intercept):
    """linnerud, PolynomialFeatures(4): 20 rows, 34 columns, an exact fit exists. With tol=0 CG left the fit it
    had reached for the null space: R² 0.66 with an intercept, -0.03 without, and a shortfall warning."""
    X, Y = load_linnerud(return_X_y=True)
    P = PolynomialFeatures(4, include_bias=False).fit_transform(X)
    for tol in (0.0, 1e-6):
        model = _fit(P, Y, backend=backend, tol=tol, fit_intercept=fit_intercept)
        coef, _ = _min_norm(P, Y, fit_intercept)
        assert model.score(P, Y) > 1 - 1e-6
        assert np.linalg.norm(model.coef_) < 2 * np.linalg.norm(coef)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fewer_rows_than_columns_whose_means_dwarf_their_spread_reach_the_minimum_norm_fit(backend):
    """60 rows, 120 correlated columns, every fifth with a mean 1e6 times its spread (a timestamp, a year in
    seconds). The kernels centre implicitly, so their Hessian products carry rounding of about 1e-10 of the
    product; once CG's gains had used up the objective it went on stepping along that noise in the design's
    null space: coefficients 13 times the minimum-norm ones, held-out R² -36 where StandardScaler +
    LinearRegression get 0.846, silently (the left-out check's SVD, after one centring pass, also kept the
    columns' residual mean as a direction and gave no figure). Now CG stops where its objective reaches zero,
    the fit is the same as with means 100 times the spread, and so is the check's figure."""
    rng = np.random.default_rng(0)
    n, d = 60, 120
    X = rng.standard_normal((2 * n, 10)) @ rng.standard_normal((10, d)) + 0.3 * rng.standard_normal((2 * n, d))
    y = X @ (rng.standard_normal(d) / np.sqrt(d)) + rng.standard_normal(2 * n)
    spread = X[:, ::5].std(axis=0)
    figures = []
    for ratio in (1e2, 1e6):
        Xr = X.copy()
        Xr[:, ::5] += ratio * spread
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = LinearRegressor(random_state=0, backend=backend).fit(Xr[:n], y[:n])
        coef, intercept = _min_norm(Xr[:n], y[:n, None], True)
        ref = 1.0 - np.mean((Xr[n:] @ coef[0] + intercept[0] - y[n:]) ** 2) / np.var(y[n:])
        assert model.score(Xr[n:], y[n:]) > ref - 0.01, ratio
        assert np.linalg.norm(model.coef_ * Xr[:n].std(axis=0)) < 1.1 * np.linalg.norm(coef * Xr[:n].std(axis=0))
        left_out = [re.search(r"left-out rows with R² (\S+) \(exact", str(w.message)) for w in caught]
        figures.append([m.group(1) for m in left_out if m])
    assert figures[0] and figures[0] == figures[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_collinear_columns_on_larger_data_keep_bounded_coefficients(backend):
    """More rows than columns, three columns copies or sums of others (past the exact check's size): with tol=0
    CG stepped along the null direction, coef_ of norm 1e10 for the same training R²."""
    rng = np.random.default_rng(0)
    B = rng.normal(size=(20_000, 27))
    X = np.hstack([B, B[:, :2], B[:, :1] + B[:, 1:2]])
    y = X @ rng.normal(size=30) + 0.1 * rng.normal(size=20_000)
    coef, _ = _min_norm(X, y, True)
    model = _fit(X, y, backend=backend, tol=0.0)
    assert np.linalg.norm(model.coef_) < 2 * np.linalg.norm(coef)
    assert model.score(X, y) > 0.999
    assert FLAT in model.stop_reason_


def test_shortfall_counts_epochs_and_finish_iterations_apart(monkeypatch):
    """n_iter_ counts the epochs and the finish's iterations (a pass over X each); the shortfall warning called
    them all epochs ("after 2000 epochs" for 1000 epochs and 1000 conjugate-gradient iterations)."""
    monkeypatch.setattr(estimator, "FINISH_CG_ITER", 3)  # the finish stops short: the exact check warns
    monkeypatch.setattr(estimator, "SOLVE_MAX_COLUMNS", 0)  # (no exact solve after it)
    X, y = load_diabetes(return_X_y=True)
    X = np.hstack([X, X[:, :3] + 1e-3 * np.random.default_rng(0).normal(size=(len(y), 3))])
    with pytest.warns(ConvergenceWarning, match="iterations of the full-batch finish") as rec:
        model = LinearRegressor(random_state=0).fit(X, y)
    said = [re.search(r"after (\d+) epochs and 3 iterations of the full-batch finish", str(r.message)) for r in rec]
    assert [int(m.group(1)) for m in said if m] == [model.n_iter_ - 3]
    assert "its limit of 3 iterations reached" in model.stop_reason_
