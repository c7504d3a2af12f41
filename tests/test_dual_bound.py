"""The certified lower bound of the kinked losses (``fastgd._shortfall.dual_bound``): it brackets the exact
linear-program optimum, its dual point is feasible, and it handles sample weights, several outputs, no
intercept, the l1 penalty, and sparse and float32 X."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning

from fastgd import LinearRegressor, reference
from fastgd._shortfall import dual_bound

LOSSES = [("quantile", 0.8), ("epsilon_insensitive", 0.3)]


def make(n=300, d=4, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.logspace(-1, 1, d)
    Y = X @ rng.uniform(-1, 1, (d, k)) + 2.0 + (1 + np.abs(X[:, :1])) * (rng.exponential(1.0, (n, k)) - 1.0)
    return X, (Y[:, 0] if k == 1 else Y), rng.uniform(0.1, 3.0, n)


def exact_optimum(X, y, w, loss, param, intercept, l1=0.0):
    """The optimum of Σw ℓ(r)/Σw + l1‖β‖₁ solved as one linear program over all rows (HiGHS)."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))]) if intercept else X
    p = A.shape[1]
    c = w / w.sum()
    pen = np.r_[np.full(d, l1), np.zeros(p - d)]
    A, eye = sp.csr_matrix(A), sp.identity(n, format="csr")
    if loss == "quantile":  # y − Aβ = u − v, u, v >= 0
        res = linprog(np.r_[pen, pen, param * c, (1 - param) * c], A_eq=sp.hstack([A, -A, eye, -eye]), b_eq=y,
                      bounds=(0, None), method="highs")
    else:  # t >= |y − Aβ| − ε
        res = linprog(np.r_[pen, pen, c], A_ub=sp.vstack([sp.hstack([A, -A, -eye]), sp.hstack([-A, A, -eye])]),
                      b_ub=np.r_[y + param, param - y], bounds=(0, None), method="highs")
    assert res.status == 0
    exact_optimum.params = res.x[:p] - res.x[p:2 * p]  # the minimizer (weights, then the intercept)
    return res.fun


def fit(loss, param, X, y, sw=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LinearRegressor(loss=loss, quantile=param if loss == "quantile" else 0.5,
                               epsilon=param if loss != "quantile" else 0.1, random_state=0, **kw).fit(
            X, y, sample_weight=sw)


def check_certificate(est, X, Y, sw, bound, l1=0.0):
    """The dual point is in its boxes and meets the constraints; the bound is its dual objective; the objective
    is the fitted model's."""
    n = X.shape[0]
    Y = Y.reshape(n, -1)
    w = np.ones(n) if sw is None else sw
    c = (w / w.sum())[:, None]
    q = est.quantile
    lo, hi = (q - 1.0, q) if est.loss == "quantile" else (-1.0, 1.0)
    a = bound.duals
    assert a.shape == Y.shape
    tiny = 1e-12 * c.max()
    assert np.all(a >= c * lo - tiny) and np.all(a <= c * hi + tiny)
    g = X.T @ a
    scale = np.abs(X).T @ np.abs(a)
    assert np.all(np.abs(g) <= l1 + 1e-9 * scale)
    if est.fit_intercept:
        np.testing.assert_allclose(a.sum(axis=0), 0.0, atol=1e-12)
    eps = 0.0 if est.loss == "quantile" else est.epsilon
    np.testing.assert_allclose(bound.lower_per_output, (a * Y).sum(axis=0) - eps * np.abs(a).sum(axis=0),
                               rtol=1e-12)
    R = est.predict(X).reshape(n, -1) - Y
    got = (c * reference.loss_value(R, est.loss, est.quantile if est.loss == "quantile" else eps)).sum(axis=0)
    got += l1 * np.abs(np.asarray(est.coef_).reshape(Y.shape[1], -1)).sum(axis=1)
    np.testing.assert_allclose(bound.objective_per_output, got, rtol=1e-12)
    assert bound.lower == pytest.approx(bound.lower_per_output.sum(), rel=1e-14)
    assert bound.gap == pytest.approx(bound.objective - bound.lower, rel=1e-12, abs=1e-15)
    assert bound.violation < 1e-9


@pytest.mark.parametrize("loss,param", LOSSES)
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("epochs", [2, "auto"])
def test_bound_brackets_the_linear_program_optimum(loss, param, intercept, weighted, epochs):
    """bound <= exact optimum <= the fit's objective, for a fit stopped early (the program then needs many
    free rows) and a default one (its bound is tight), with and without sample weights and intercept."""
    X, y, sw = make(n=600)
    sw = sw if weighted else None
    est = fit(loss, param, X, y, sw, fit_intercept=intercept, max_iter=epochs)
    bound = dual_bound(est, X, y, sw)
    best = exact_optimum(X, y, np.ones(len(y)) if sw is None else sw, loss, param, intercept)
    assert bound.lower <= best + 1e-12 * abs(best)
    assert best <= bound.objective + 1e-12 * abs(best)
    check_certificate(est, X, y, sw, bound)
    if epochs == "auto":  # the default fit is certified close to its optimum
        assert bound.gap <= 1e-4 * best
    else:  # far from it: the certificate still holds, and says the fit is short
        assert bound.gap > 1e-3 * best


@pytest.mark.parametrize("loss,param", LOSSES)
def test_bound_is_the_optimum_when_every_row_is_free(loss, param):
    """A poor fit (one epoch at a tiny rate) on data smaller than the program's first set of rows: the program
    is the whole dual, so the bound is the exact optimum."""
    X, y, sw = make(n=200)
    est = fit(loss, param, X, y, sw, max_iter=1, learning_rate=1e-4)
    bound = dual_bound(est, X, y, sw)
    assert bound.free_rows == len(y)
    assert bound.lower == pytest.approx(exact_optimum(X, y, sw, loss, param, True), rel=1e-9)
    assert bound.gap > 0.1 * bound.lower


@pytest.mark.parametrize("loss,param", LOSSES)
def test_dependent_and_badly_scaled_columns(loss, param):
    """A repeated column, a constant one (the intercept's) and copies of columns scaled by 1e-8 and 1e8 span the
    same models as the plain columns: every row free, the bound is their exact optimum (the program's constraints
    are scaled, HiGHS' tolerances being absolute) and its certificate holds."""
    X, y, sw = make(n=400)
    wide = np.hstack([X, X[:, :1], np.full((len(y), 1), 3.0), X[:, 1:2] * 1e-8, X[:, 2:3] * 1e8])
    est = fit(loss, param, wide, y, sw, max_iter=1, learning_rate=1e-4)
    bound = dual_bound(est, wide, y, sw)
    assert bound.lower == pytest.approx(exact_optimum(X, y, sw, loss, param, True), rel=1e-9)
    check_certificate(est, wide, y, sw, bound)


@pytest.mark.parametrize("loss,param", LOSSES)
def test_one_bound_per_output(loss, param):
    """Two outputs: each output's bound brackets its own optimum; the objective and the bound are their sums."""
    X, Y, sw = make(n=400, k=2, seed=1)
    est = fit(loss, param, X, Y, sw, max_iter=3)
    bound = dual_bound(est, X, Y, sw)
    best = np.array([exact_optimum(X, Y[:, j], sw, loss, param, True) for j in range(2)])
    assert np.all(bound.lower_per_output <= best + 1e-12 * best) and np.all(best <= bound.objective_per_output)
    check_certificate(est, X, Y, sw, bound)


@pytest.mark.parametrize("loss,param", LOSSES)
def test_l1_penalty(loss, param):
    """With penalty="l1" the dual constraints are |Σa_i x_ij| <= l1: still a bracket of the exact optimum."""
    X, y, _ = make(n=300)
    est = fit(loss, param, X, y, penalty="l1", alpha=0.05, max_iter=3)
    bound = dual_bound(est, X, y)
    best = exact_optimum(X, y, np.ones(len(y)), loss, param, True, l1=0.05)
    assert bound.lower <= best + 1e-12 * best <= bound.objective + 2e-12 * best
    check_certificate(est, X, y, None, bound, l1=0.05)


def test_sparse_and_float32_x_give_the_dense_bound():
    """X is read in blocks: CSR and float32 give the bound of the same values as dense float64."""
    X, y, sw = make(n=700)
    X[np.abs(X) < 0.5] = 0.0
    X = X.astype(np.float32)
    est = fit("quantile", 0.8, X, y, sw, max_iter=3)
    dense = dual_bound(est, X.astype(np.float64), y, sw)
    for other in (X, sp.csr_matrix(X)):
        got = dual_bound(est, other, y, sw)
        assert got.lower == pytest.approx(dense.lower, rel=1e-12)
        assert got.objective == pytest.approx(dense.objective, rel=1e-12)


@pytest.mark.parametrize("kw,match", [(dict(loss="huber"), "loss='quantile' or 'epsilon_insensitive'"),
                                      (dict(loss="quantile", penalty="l2"), "penalty=None or 'l1'")])
def test_refuses_what_it_cannot_bound(kw, match):
    X, y, _ = make(n=50)
    est = fit(kw.pop("loss"), 0.8, X, y, max_iter=1, **kw)
    with pytest.raises(ValueError, match=match):
        dual_bound(est, X, y)


@pytest.mark.parametrize("loss,param", LOSSES)
@pytest.mark.parametrize("intercept", [True, False])
def test_the_programs_model_is_its_primal(loss, param, intercept):
    """With every row free the program's model is an exact minimizer: its objective is the bound; on a larger
    sample with few rows free (a model near the optimum) it is a model whose objective, scored on all rows, lies
    just above the bound."""
    from fastgd._shortfall import objective_of

    X, y, sw = make(n=200)
    est = fit(loss, param, X, y, sw, max_iter=1, learning_rate=1e-4, fit_intercept=intercept)
    bound = dual_bound(est, X, y, sw)
    assert objective_of(est, X, y, sw, bound.model).sum() == pytest.approx(bound.lower, rel=1e-7)
    if not intercept:
        np.testing.assert_array_equal(bound.model[:, -1], 0.0)
    X, y, sw = make(n=3000, seed=2)  # a model near the optimum (the exact one, moved by 1e-3)
    exact_optimum(X, y, sw, loss, param, intercept)
    near = exact_optimum.params + 1e-3 * np.random.default_rng(0).standard_normal(exact_optimum.params.size)
    est.coef_, est.intercept_ = near[:X.shape[1]], (near[-1] if intercept else 0.0)
    bound = dual_bound(est, X, y, sw)
    assert bound.free_rows < len(y)
    got = objective_of(est, X, y, sw, bound.model).sum()
    assert bound.lower * (1 - 1e-12) <= got <= bound.lower * (1 + 1e-4)  # (the optimum, up to rounding)


def shortfall_data():
    rng = np.random.default_rng(0)
    n, d = 5000, 5  # 25,000 values: past the whole linear program's check
    X = rng.standard_normal((n, d)) * np.logspace(-1, 1, d)
    return X, X @ rng.uniform(-1, 1, d) + 2 + (1 + np.abs(X[:, 0])) * (rng.exponential(1.0, n) - 1.0)


@pytest.mark.parametrize("loss,param,epochs", [("quantile", 0.9, 40), ("epsilon_insensitive", 0.3, 20)])
def test_a_larger_fit_short_of_its_optimum_warns_with_a_true_range(loss, param, epochs):
    """Past the tiny data the whole linear program checks, a fit the user cut short is certified: the warning
    gives the excess's range (a model the program found proves the low end, the dual bound the high end), the
    true excess lies in it, and it replaces the bare max_iter warning. Sparse X gets the same warning."""
    import re

    X, y = shortfall_data()
    with pytest.warns(ConvergenceWarning, match=rf"above the optimum of the {loss} objective after {epochs} epochs "
                                                rf"\(a linear program .*\)\. Raise max_iter \(it is {epochs}\)\."
                      ) as record:
        est = LinearRegressor(loss=loss, quantile=param, epsilon=param, max_iter=epochs, random_state=0,
                              penalty=None).fit(X, y)
    assert len(record) == 1
    low, high = map(float, re.search(r"at least (\S+) and at most (\S+) ", str(record[0].message)).groups())
    best = exact_optimum(X, y, np.ones(len(y)), loss, param, True)
    got = float(np.mean(reference.loss_value(est.predict(X) - y, loss, param)))
    assert low * 0.999 <= got / best - 1 <= high * 1.001  # the printed range (3 digits) holds the true excess
    with pytest.warns(ConvergenceWarning) as sparse_record:
        LinearRegressor(loss=loss, quantile=param, epsilon=param, max_iter=epochs, random_state=0,
                        penalty=None).fit(sp.csr_matrix(X), y)  # "auto" gives sparse X (only) an l2 penalty
    assert [str(w.message) for w in sparse_record] == [str(record[0].message)]


def test_a_larger_fit_certified_close_is_silent(monkeypatch):
    """A setting the user chose that still reaches the optimum: the certificate is computed and shows the fit
    close enough, so no warning."""
    from fastgd import _shortfall

    calls = []
    monkeypatch.setattr(_shortfall, "dual_bound", lambda *a, **k: calls.append(1) or dual_bound(*a, **k))
    X, y = shortfall_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(loss="quantile", quantile=0.9, batch_size=1024, random_state=0).fit(X, y)
    assert calls == [1]


def test_a_larger_fit_out_of_epochs_is_certified_before_a_max_iter_warning(monkeypatch):
    """A fit that ran out of its epochs (tol=1e-12 is never met) with more parameters than the certificate takes
    under chosen settings: it is certified anyway, and close enough to the optimum that more epochs gain nothing
    that matters, so no warning to raise max_iter."""
    from fastgd import _shortfall

    calls = []
    monkeypatch.setattr(_shortfall, "dual_bound", lambda *a, **k: calls.append(1) or dual_bound(*a, **k))
    rng = np.random.default_rng(0)
    n, d = 600, 40  # 24,000 values and 41 parameters: past the whole program's check and CERTIFY_MAX_PARAMS
    X = rng.standard_normal((n, d))
    y = X @ rng.uniform(-1, 1, d) + 2 + (1 + np.abs(X[:, 0])) * (rng.exponential(1.0, n) - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(loss="quantile", quantile=0.9, tol=1e-12, max_iter=300, random_state=0).fit(X, y)
    assert est.n_iter_ == 300 and calls == [1]


def test_a_sparse_fit_on_unscaled_features_names_standardize():
    """Sparse X (which the whole linear program does not check) with standardize=False (chosen) on features
    whose scales span 1e8 times: the certified warning names that cause and standardize=True."""
    X, y = shortfall_data()
    X = sp.csr_matrix(X[:600] * np.logspace(-3, 3, X.shape[1]))
    with pytest.warns(ConvergenceWarning, match=r"at least .* epochs \(a linear program .*\): standardize=False "
                                                r"with features whose scales span .* Set standardize=True"):
        LinearRegressor(loss="quantile", quantile=0.9, standardize=False, penalty=None, random_state=0).fit(
            X, y[:600])  # unpenalized: "auto"'s l2 on sparse X has no certificate (the bare max_iter warning)


def test_a_chosen_batch_size_or_averaging_is_named_with_its_default():
    """The certified warning's cause names the user's batch size and averaging (the least-squares check's names
    only the rate and optimizer), each with the default; the defaults are not named."""
    from fastgd._shortfall import _batch_cause

    assert _batch_cause(LinearRegressor(batch_size=64, average=False)) == (
        " with this fit's batch_size=64 and average=False (the default batch_size='auto' and average=True may "
        "reach it)")
    assert _batch_cause(LinearRegressor(average=False)) == (
        " with this fit's average=False (the default average=True may reach it)")
    assert _batch_cause(LinearRegressor(learning_rate=0.1)) == ""


@pytest.mark.parametrize("center", [True, False])
def test_blocked_column_scales_are_the_dense_ones(center):
    """The certified warning's column scales, read in blocks (sparse too), are the dense diagnostic's, also for
    a column whose mean is 1e9 times its spread."""
    from fastgd._shortfall import BOUND_BLOCK_ROWS, _blocked_column_scales, column_scales

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2 * BOUND_BLOCK_ROWS + 7, 4)) * [1, 1e3, 1e-3, 1] + [0, 0, 0, 1e9]
    w = rng.uniform(0.0, 2.0, len(X))
    want = column_scales(X, w / w.max(), center)
    for other in (X, sp.csr_matrix(X)):
        np.testing.assert_allclose(_blocked_column_scales(other, w, center), want, rtol=1e-9)
