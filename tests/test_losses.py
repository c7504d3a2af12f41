"""The losses other than the squared error (LinearRegressor(loss=...)): each written once in fastgd._rules
and compiled by both backends, checked against fastgd.reference (dense and CSR X, float32 and float64,
sample weights, several outputs), against torch.nn.HuberLoss / L1Loss (golden trajectories), and for the
objective the default fit reaches on a real dataset."""

import functools
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import QuantileRegressor

from fastgd import LinearRegressor, _engine, _kernels, reference
from fastgd.optimizers import SGD

from _helpers import GOLDEN_DIR, load_golden

native = pytest.mark.skipif(not _engine.native_available(), reason="fastgd._native is not built")
BACKENDS = ["numba", pytest.param("native", marks=native)]
# each loss other than the squared error with a parameter that puts residuals on both sides of its kinks
LOSSES = [("huber", 0.4), ("epsilon_insensitive", 0.3), ("squared_epsilon_insensitive", 0.3), ("quantile", 0.7)]
ALL = [("squared_error", 0.0)] + LOSSES


def code_of(loss, param):
    return reference.LOSSES.index(loss), param


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n, d, k = 150, 6, 2
    X = rng.standard_normal((n, d))
    X[rng.random((n, d)) < 0.5] = 0.0  # sparse enough for a meaningful CSR
    Y = X @ rng.standard_normal((d, k)) + rng.standard_normal((n, k))
    sw = rng.uniform(0.2, 2.0, n)
    theta = 0.3 * rng.standard_normal((k, d + 1))
    return X, Y, sw, theta


def as_kernel_x(X, kind, dtype):
    X = X.astype(dtype)
    if kind == "csr":
        A = sp.csr_matrix(X)
        return (A.data, A.indices, A.indptr, X.shape[1])
    return X


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,param", ALL)
def test_evaluation_sums_match_reference(data, backend, kind, dtype, loss, param):
    """batches_stats: Σ s·slope(r)·[x, 1] and Σ s·loss(r), with weights and two outputs, as the reference."""
    X, Y, sw, theta = data
    kern = _engine.kernels(backend)
    Xk = as_kernel_x(X, kind, dtype)
    G, value, W = kern.batches_stats(Xk, Y, sw, theta, 32, np.arange(5, dtype=np.int64), 1,
                                     loss=None if loss == "squared_error" else code_of(loss, param))
    grad, want = reference.batch_gradient(X.astype(dtype), Y, theta, sw, loss, param)
    np.testing.assert_allclose((2.0 / W) * G.reshape(theta.shape), grad, rtol=1e-12, atol=1e-13)
    assert value / W == pytest.approx(want, rel=1e-13)


def one_row_terms(backend, loss, param, r, dtype=np.float64):
    """(slope, loss) the kernels give each residual in r: one row per batch, x = 0, theta = 0, y = −r, so the
    batch's intercept sum is the row's slope and its loss sum the row's loss (X of ``dtype``: the native
    float32 row loop is compiled once per loss)."""
    n = len(r)
    G, value = np.empty(n), np.empty(n)
    for i in range(n):
        g, value[i], _ = _engine.kernels(backend).batches_stats(
            np.zeros((1, 1), dtype), np.array([[-r[i]]]), _engine.EMPTY, np.zeros((1, 2)), 1, np.zeros(1, np.int64), 1,
            loss=None if loss == "squared_error" else code_of(loss, param))
        G[i] = g[-1]
    return G, value


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,param", ALL + [("huber", 0.0), ("epsilon_insensitive", 0.0)])
def test_loss_rule_is_the_reference_at_and_around_every_kink(backend, dtype, loss, param):
    """The compiled rule (branch-free: min, max and comparisons as numbers) gives the reference's slope and
    loss at each kink, on both sides of it, at ±0 and far out, in both backends."""
    tiny = np.nextafter(0.0, 1.0)
    kinks = [0.0, param, -param]
    r = np.array(sorted({x + dx for x in kinks for dx in (-1.0, -1e-9, -tiny, 0.0, tiny, 1e-9, 1.0)}
                        | {-0.0, 3.0, -7.5, 1e150, -1e150}))
    slope, value = one_row_terms(backend, loss, param, r, dtype)
    np.testing.assert_array_equal(slope, 0.5 * reference.loss_derivative(r, loss, param))
    np.testing.assert_allclose(value, reference.loss_value(r, loss, param), rtol=1e-15, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,param", ALL)
def test_a_nan_residual_poisons_every_loss(backend, dtype, loss, param):
    """A NaN prediction (a diverged fit) makes the loss NaN for every loss, so the divergence is reported:
    the insensitive losses once gave it 0 (NaN compared as "inside the tube")."""
    _, value = one_row_terms(backend, loss, param, [np.nan], dtype)
    assert np.isnan(value[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("loss,param", LOSSES)
def test_epoch_matches_reference(data, backend, kind, loss, param):
    """Whole epochs of SGD with an l2 penalty (torch's mean per batch, no standardization) follow the
    reference step for step, on the sequential and the parallel gradient path."""
    X, Y, sw, theta0 = data
    opt = SGD(lr=0.05)
    order = np.array([2, 0, 4, 1, 3], dtype=np.int64)
    want = theta0.copy()
    for _ in range(3):
        reference.epoch(X, Y, want, {"step": 0}, functools.partial(reference.sgd, lr=0.05), 32, order, sw=sw,
                        l2=0.01, loss=loss, param=param)
    for path in (_kernels.PATH_SEQUENTIAL, _kernels.PATH_PARALLEL):
        ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1], theta0.copy())
        for _ in range(3):
            _engine.run_epoch(as_kernel_x(X, kind, np.float64), Y, ts, opt.code, opt.pack(), 32, order, sw=sw,
                              l2=0.01, n_threads=2, path=path, backend=backend, loss=code_of(loss, param))
        np.testing.assert_allclose(ts.theta, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_squared_error_is_the_default_loss_bit_for_bit(data, backend):
    """pen = [l1, l2, batch_weight] (the squared error by omission) and an explicit squared-error code give
    the same bits: old callers keep their results."""
    X, Y, sw, theta0 = data
    opt = SGD(lr=0.05)
    order = np.arange(5, dtype=np.int64)
    out = []
    for loss in (None, (0, 0.0)):
        ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1], theta0.copy())
        _engine.run_epoch(X, Y, ts, opt.code, opt.pack(), 32, order, sw=sw, backend=backend, loss=loss)
        out.append(ts.theta)
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,param", LOSSES)
def test_estimator_dense_and_sparse_agree(data, backend, loss, param):
    """The CSR kernels compute each loss as the dense ones (without standardization: CSR columns stored in few
    rows are scaled by their largest value, dense ones by their spread, so the standardized paths differ; no
    penalty: "auto" gives sparse X an l2 penalty and dense X none)."""
    X, Y, sw, _ = data
    kw = dict(quantile=param) if loss == "quantile" else dict(epsilon=param)
    fits = [LinearRegressor(loss=loss, backend=backend, random_state=0, max_iter=30, tol=None, standardize=False,
                            penalty=None, **kw).fit(
        A, Y, sample_weight=sw) for A in (X, sp.csr_matrix(X))]
    np.testing.assert_allclose(fits[0].coef_, fits[1].coef_, rtol=1e-9, atol=1e-12)
    assert fits[0].loss_curve_[-1] == pytest.approx(fits[1].loss_curve_[-1], rel=1e-9)


@pytest.mark.parametrize("kwargs,name", [
    (dict(loss="absolute_error"), "loss"), (dict(loss="huber", epsilon=-0.1), "epsilon"),
    (dict(loss="quantile", quantile=0.0), "quantile"), (dict(loss="quantile", quantile=1.0), "quantile")])
def test_bad_loss_parameters_name_the_parameter(kwargs, name):
    X, y = np.ones((10, 2)), np.arange(10.0)
    with pytest.raises(ValueError, match=name) as info:
        LinearRegressor(**kwargs).fit(X, y)
    if name == "loss":
        assert all(loss in str(info.value) for loss in reference.LOSSES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pen_tail", [[7.0, 0.1], [4.0, 1.0], [1.0, -0.5]])
def test_kernels_reject_a_bad_loss(data, backend, pen_tail):
    X, Y, sw, theta = data
    opt = SGD()
    ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1])
    with pytest.raises(ValueError, match="loss"):
        _engine.kernels(backend).epoch(X, Y, sw, ts.theta, ts.state, ts.scalars, opt.code, opt.pack(),
                                       _engine.no_schedule(), np.array([0.0, 0.0, 0.0] + pen_tail), True, 32,
                                       np.arange(2, dtype=np.int64), 1, _kernels.PATH_SEQUENTIAL, _engine.EMPTY,
                                       _engine.EMPTY, _engine.EMPTY)
    with pytest.raises(ValueError, match="loss"):
        _engine.kernels(backend).batches_stats(X, Y, sw, theta, 32, np.arange(2, dtype=np.int64), 1,
                                               loss=(int(pen_tail[0]), pen_tail[1]))


def pinball(y, pred, q):
    return float(np.mean(reference.loss_value(pred - y, "quantile", q)))


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_default_quantile_fit_reaches_the_linear_program_optimum(q):
    """On a real dataset (diabetes, 442 x 10, ill-conditioned) the default fit's pinball loss is within 1e-4
    of the exact minimizer (scikit-learn's QuantileRegressor with the HiGHS LP solver, no penalty)."""
    X, y = load_diabetes(return_X_y=True)
    exact = QuantileRegressor(quantile=q, alpha=0.0, solver="highs").fit(X, y)
    best = pinball(y, exact.predict(X), q)
    got = LinearRegressor(loss="quantile", quantile=q, random_state=0).fit(X, y)
    assert pinball(y, got.predict(X), q) <= best * (1 + 1e-4)
    assert got.loss_curve_[-1] == pytest.approx(pinball(y, got.predict(X), q), rel=0.05)  # the loss's own units


@pytest.mark.parametrize("loss,param", [("huber", 20.0), ("epsilon_insensitive", 5.0)])
def test_default_fit_reaches_the_optimum_with_outliers(loss, param):
    """Diabetes with 5 % of the targets moved by 10 standard deviations: within 1e-4 of the exact optimum of
    the same objective (huber: L-BFGS on the smooth objective; epsilon-insensitive: its linear program)."""
    from scipy.optimize import linprog, minimize

    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    out = rng.choice(len(y), len(y) // 20, replace=False)
    y = y.copy()
    y[out] += rng.choice([-1, 1], len(out)) * 10 * y.std()
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    if loss == "huber":
        Z = np.hstack([(X - X.mean(0)) / X.std(0), np.ones((n, 1))])

        def f(t):
            r = Z @ t - y
            return reference.loss_value(r, loss, param).mean(), Z.T @ reference.loss_derivative(r, loss, param) / n
        best = minimize(f, np.linalg.lstsq(Z, y, rcond=None)[0], jac=True, method="L-BFGS-B",
                        options=dict(maxiter=10000, gtol=1e-12, ftol=1e-16)).fun
    else:
        I = np.eye(n)
        A_ub = np.vstack([np.hstack([A, -I]), np.hstack([-A, -I])])  # t_i >= |r_i| - epsilon, t_i >= 0
        best = linprog(np.r_[np.zeros(d + 1), np.ones(n) / n], A_ub=A_ub, b_ub=np.r_[y + param, -y + param],
                       bounds=[(None, None)] * (d + 1) + [(0, None)] * n, method="highs").fun
    got = LinearRegressor(loss=loss, epsilon=param, random_state=0).fit(X, y)
    assert reference.loss_value(got.predict(X) - y, loss, param).mean() <= best * (1 + 1e-4)


def _smooth_optimum(X, Y, loss, param):
    """The exact minimum of mean-over-rows, summed-over-outputs loss(XW + b − Y) of a smooth loss: scipy's
    L-BFGS-B on each output (standardized columns, for its conditioning), tolerances at rounding level."""
    from scipy.optimize import minimize

    n = X.shape[0]
    Z = np.hstack([(X - X.mean(0)) / X.std(0), np.ones((n, 1))])
    total = 0.0
    for y in Y.T:
        def f(t):
            r = Z @ t - y
            return reference.loss_value(r, loss, param).mean(), Z.T @ reference.loss_derivative(r, loss, param) / n
        total += minimize(f, np.linalg.lstsq(Z, y, rcond=None)[0], jac=True, method="L-BFGS-B",
                          options=dict(maxiter=10000, gtol=1e-12, ftol=1e-16)).fun
    return total


def _objective(est, X, Y, loss, param):
    P = est.predict(X).reshape(Y.shape)
    return float(reference.loss_value(P - Y, loss, param).sum(axis=1).mean())


def _diabetes_with_outliers():
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    out = rng.choice(len(y), len(y) // 20, replace=False)
    y = y.copy()
    y[out] += rng.choice([-1, 1], len(out)) * 10 * y.std()
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,param", [("huber", 20.0), ("squared_epsilon_insensitive", 10.0)])
def test_lbfgs_minimizes_the_smooth_losses(backend, loss, param):
    """optimizer='lbfgs' with a smooth loss: the exact optimum, also for outputs of different scales (each
    output's epsilon is in the units of y)."""
    X, y = _diabetes_with_outliers()
    Y = np.c_[y, 0.01 * y[::-1] + 3.0]
    best = _smooth_optimum(X, Y, loss, param)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = LinearRegressor(loss=loss, epsilon=param, optimizer="lbfgs", backend=backend).fit(X, Y)
    assert _objective(got, X, Y, loss, param) == pytest.approx(best, rel=1e-7)
    # the second output (spread 8.9) lies inside epsilon=10 of its mean: said, and true (its loss is zero there)
    assert [str(w.message)[:51] for w in record] == (
        ["epsilon=10 is wider than every residual of output 1"] if loss == "squared_epsilon_insensitive" else [])


@pytest.mark.parametrize("loss", ["quantile", "epsilon_insensitive"])
def test_lbfgs_refuses_a_loss_with_a_kink_and_says_what_works(loss):
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match=rf"optimizer='lbfgs' needs a smooth objective, and loss='{loss}' has a "
                                         rf"kink.*'huber'.*default 'adam'"):
        LinearRegressor(loss=loss, optimizer="lbfgs").fit(X, y)


@pytest.mark.parametrize("loss,param", [("huber", 20.0), ("squared_epsilon_insensitive", 10.0)])
def test_default_fit_of_a_smooth_loss_finishes_at_its_optimum(loss, param):
    """Small data, default settings: the mini-batch fit is finished by full-batch L-BFGS (as the squared
    error's), so it ends at the optimum, not at the averaged steps' noise floor."""
    X, y = _diabetes_with_outliers()
    best = _smooth_optimum(X, y[:, None], loss, param)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no max_iter warning: the finish reached the optimum
        got = LinearRegressor(loss=loss, epsilon=param, random_state=0).fit(X, y)
    assert "L-BFGS" in got.stop_reason_
    assert _objective(got, X, y[:, None], loss, param) == pytest.approx(best, rel=1e-5)


def _collinear_with_outliers(seed=2, n=120, d=30, spread=(2, 6)):
    """n x d columns that are one column plus noise of 10^-spread, in units from 0.1 to 100 (120 x 30: condition
    number about 3e5 standardized), targets with 5 % outliers: L-BFGS's gain rule stops a huber or
    squared_epsilon_insensitive fit at epsilon 0.1 short of the optimum there."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1)) + 10.0 ** -rng.uniform(*spread) * rng.standard_normal((n, d))
    X = X * rng.uniform(0.1, 100, d)
    y = X @ rng.standard_normal(d) / d + rng.standard_normal(n) * rng.uniform(0.1, 3)
    y[rng.choice(n, n // 20)] += 20
    return X, y


def _standardized_gradient(est, X, y, loss, param):
    """The objective's gradient at the fitted model, in standardized coordinates (columns and intercept), over
    its value at the constant mean of y: 0 at the optimum of these smooth losses."""
    Z = np.hstack([(X - X.mean(0)) / X.std(0), np.ones((len(y), 1))])

    def grad(r):
        return Z.T @ reference.loss_derivative(r, loss, param) / len(y)
    return np.linalg.norm(grad(est.predict(X) - y)) / np.linalg.norm(grad(np.mean(y) - y))


@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive"])
@pytest.mark.parametrize("shape", ["small", "larger"])
def test_default_fit_of_a_smooth_loss_on_ill_conditioned_columns_reaches_its_optimum(loss, shape):
    """Its L-BFGS finish stopped by its gain rule 2.4 % (huber) and 1.4 % above the optimum on 120 x 30 (0.04 %
    and 0.13 % on 20,000 x 20, past the exact check), silently; the semi-smooth Newton method after it reaches
    the optimum: the gradient vanishes to rounding and the objective is at most scipy's L-BFGS-B's from least
    squares."""
    X, y = _collinear_with_outliers() if shape == "small" else _collinear_with_outliers(0, 20000, 20, (2, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(loss=loss, epsilon=0.1, random_state=0).fit(X, y)
    assert "semi-smooth Newton" in est.stop_reason_ and "budget" not in est.stop_reason_
    assert _standardized_gradient(est, X, y, loss, 0.1) < 1e-6
    assert _objective(est, X, y[:, None], loss, 0.1) <= _smooth_optimum(X, y[:, None], loss, 0.1) * (1 + 1e-9)


def test_a_smooth_loss_fit_that_lbfgs_cannot_finish_warns_with_advice_that_works():
    """Chosen settings (max_iter=1000) stop 13 % above the optimum, where L-BFGS from the fit stalls short of it
    too (so the check measured no shortfall worth a warning, and advised L-BFGS before): the semi-smooth
    Newton method measures it, the warning names it, and its advice (the defaults) reaches the optimum."""
    X, y = _collinear_with_outliers()
    with pytest.warns(ConvergenceWarning, match=r"above the optimum of the huber objective \(found by the "
                                                 r"semi-smooth Newton method; full-batch L-BFGS.*stalls.*Use the "
                                                 r"defaults instead of max_iter=1000"):
        chosen = LinearRegressor(loss="huber", epsilon=0.1, max_iter=1000, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = LinearRegressor(loss="huber", epsilon=0.1, random_state=0).fit(X, y)
    assert _objective(default, X, y[:, None], "huber", 0.1) < 0.9 * _objective(chosen, X, y[:, None], "huber", 0.1)


def test_newton_steps_that_run_out_of_budget_warn_without_advising_lbfgs(monkeypatch):
    """Where the Newton steps after the finish are still gaining when their budget runs out, the fit warns with
    that figure (L-BFGS's own gain rule, which stopped far short, is no evidence), and does not advise the L-BFGS
    refit that stalls there too; under chosen settings the excess is a lower bound ("at least")."""
    import fastgd.estimator as E
    X, y = _collinear_with_outliers()
    monkeypatch.setattr(E, "NEWTON_MAX_FLOPS", 10 * E._training.newton_work(*X.shape))  # about ten iterations
    with pytest.warns(ConvergenceWarning, match=r"then \d+ iterations of the semi-smooth Newton method, their "
                                                 r"budget.*still lowered the objective") as record:
        est = LinearRegressor(loss="huber", epsilon=0.1, random_state=0).fit(X, y)
    assert not any("tolerance_grad" in str(w.message) for w in record)
    assert "its budget spent" in est.stop_reason_
    with pytest.warns(ConvergenceWarning, match=r"stopped at least .* above the optimum.*still gaining when its "
                                                 r"budget ran out.*warns where it stops short"):
        LinearRegressor(loss="huber", epsilon=0.1, max_iter=1000, random_state=0).fit(X, y)


def test_a_line_search_lbfgs_that_newton_cannot_check_keeps_its_max_iter_warning():
    """A user's strong-Wolfe L-BFGS on data too wide for the Newton check (600 x 400): nothing measures it, so its
    own max_iter warning stands (the check had returned "measured" without measuring)."""
    from fastgd.optimizers import LBFGS
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 400))
    y = X @ rng.normal(size=400) + rng.normal(size=600)
    with pytest.warns(ConvergenceWarning, match=r"Maximum number of epochs \(2\) reached"):
        LinearRegressor(loss="huber", optimizer=LBFGS(line_search_fn="strong_wolfe"), max_iter=2).fit(X, y)


def test_a_smooth_loss_fit_short_of_its_optimum_under_chosen_settings_warns():
    """Settings the user chose (a small constant rate, few epochs): no finish, but the shortfall is measured
    against L-BFGS and named, with advice that names only those settings; the model stays the fit's own."""
    X, y = _diabetes_with_outliers()
    est = LinearRegressor(loss="huber", epsilon=20.0, learning_rate=1e-3, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"above the optimum of the huber objective.*Raise max_iter \(it is "
                                                 r"3\), or use optimizer='lbfgs'.*learning_rate=0.001 and max_iter=3"):
        est.fit(X, y)
    assert "L-BFGS" not in est.stop_reason_ and est.n_iter_ == 3
    plain = LinearRegressor(loss="huber", epsilon=20.0, learning_rate=1e-3, max_iter=3, random_state=0, tol=None)
    np.testing.assert_array_equal(plain.fit(X, y).coef_, est.coef_)  # tol=None: no check, the same model


@pytest.mark.parametrize("loss,kw,solver", [
    ("quantile", dict(quantile=0.9), r"QuantileRegressor\(solver='highs'\)"),
    ("quantile", dict(quantile=0.3, penalty="l1", alpha=0.05), r"QuantileRegressor\(solver='highs'\)"),
    ("epsilon_insensitive", dict(epsilon=5.0), r"scipy.optimize.linprog")])
def test_a_kinked_loss_fit_short_of_its_linear_program_warns(loss, kw, solver):
    """Tiny data: a fit of a loss with a kink is checked against its linear program (with the l1 penalty too);
    a shortfall names the exact solver; the defaults reach it and stay silent."""
    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match=rf"above the optimum of the {loss} objective \(its linear program\) "
                                                rf"after 5 epochs. Raise max_iter \(it is 5\), or use an exact "
                                                rf"solver.*{solver}"):
        LinearRegressor(loss=loss, learning_rate=1e-3, max_iter=5, random_state=0, **kw).fit(X, y)
    if "penalty" not in kw:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            LinearRegressor(loss=loss, random_state=0, **kw).fit(X, y)


@pytest.mark.parametrize("loss,max_iter", [("squared_error", 20), ("huber", 300), ("quantile", 1500)])
def test_a_fit_out_of_epochs_but_measured_at_its_optimum_gives_no_max_iter_warning(loss, max_iter):
    """tol=1e-12 is never met, so the fit runs out of epochs; the small-data check (the closed form, L-BFGS, the
    linear program) measures it within the shortfall thresholds of its optimum, where more epochs gain nothing
    that matters: advice to raise max_iter would not be true, so no warning."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ rng.uniform(-1, 1, 4) + 2 + (1 + np.abs(X[:, 0])) * (rng.exponential(1.0, 300) - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(loss=loss, quantile=0.9, tol=1e-12, max_iter=max_iter, random_state=0).fit(X, y)
    assert est.n_iter_ == max_iter and est.stop_reason_.startswith(f"max_iter={max_iter} epochs reached")
    if loss == "quantile":
        exact = QuantileRegressor(quantile=0.9, alpha=0.0, solver="highs").fit(X, y)
        best = np.mean(reference.loss_value(exact.predict(X) - y, loss, 0.9))
        assert np.mean(reference.loss_value(est.predict(X) - y, loss, 0.9)) == pytest.approx(best, rel=1e-3)


@pytest.mark.parametrize("loss", ["quantile", "epsilon_insensitive"])
def test_a_kinked_loss_fit_on_unscaled_features_names_standardize(loss):
    """standardize=False (the user's choice) on features whose scales span 1e6 times leaves the fit far from
    its linear program's optimum: the warning names that cause and standardize=True, which reaches it."""
    X, y = load_diabetes(return_X_y=True)
    X = X[:150] * np.logspace(-2, 4, X.shape[1])
    y = y[:150]
    with pytest.warns(ConvergenceWarning, match=r"\(its linear program\) after \d+ epochs: standardize=False "
                                                r"with features whose scales span 1\.\d+e\+06 times.*Set "
                                                r"standardize=True \(the default\), or use an exact solver"):
        LinearRegressor(loss=loss, standardize=False, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(loss=loss, random_state=0).fit(X, y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,param", [("quantile", 0.8), ("epsilon_insensitive", 0.05)])
def test_absolute_losses_mean_the_same_in_any_unit_of_y(loss, param, backend):
    """Standardization divides an absolute loss by y's scale (not its square), and epsilon is in y's units:
    plain SGD fits y and 1000·y (epsilon 1000 times larger) to the same model, up to the factor."""
    X, y = load_diabetes(return_X_y=True)
    y = y / y.std()
    kw = (lambda c: dict(quantile=param)) if loss == "quantile" else (lambda c: dict(epsilon=param * c))
    fits = [LinearRegressor(loss=loss, optimizer="sgd", random_state=0, batch_size=64, max_iter=200, tol=None,
                            backend=backend, **kw(c)).fit(X, c * y) for c in (1.0, 1000.0)]
    np.testing.assert_allclose(fits[1].coef_, 1000.0 * fits[0].coef_, rtol=1e-6)
    best = QuantileRegressor(quantile=param, alpha=0.0, solver="highs").fit(X, y) if loss == "quantile" else None
    if best is not None:  # and near the optimum (with y_scale² the steps would be 1000 times too short on 1000·y)
        assert pinball(y, fits[0].predict(X), param) <= pinball(y, best.predict(X), param) * 1.05


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_huber_with_an_epsilon_far_below_the_scale_of_y_reaches_its_optimum(sparse, backend):
    """epsilon is in y's units: with y·1e10 or y·1e150 and the default epsilon=0.1, huber is the absolute error
    (times epsilon) in effect. Standardized over y_scale² its slope was epsilon / y_scale, below Adam's eps and
    L-BFGS's tolerance_grad, and the fit stayed near the constant (R² 0.006 and 0.0) without a message; over
    y_scale·epsilon it reaches the optimum, that of least absolute deviations (QuantileRegressor(0.5)). CSR X
    without a penalty: penalty="auto" chooses an l2 strength for huber on sparse X (on these narrow rows one that
    leaves the mean |r| 0.4 % above the unpenalized LAD optimum, as the squared error's choice leaves its MSE
    0.1 % above least squares'), whose optimum is not LAD's."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5) + 0.3 * rng.standard_t(3, 300)
    lad = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
    best = np.mean(np.abs(lad.predict(X) - y))
    for c in (1e10, 1e150):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est = LinearRegressor(loss="huber", random_state=0, backend=backend,
                                  **({"penalty": None} if sparse else {})).fit(sp.csr_matrix(X) if sparse else X, c * y)
        got = np.mean(np.abs(est.predict(X) / c - y))  # within epsilon²/2 of the huber objective over epsilon·c
        assert got <= best * (1 + 1e-5), (c, got, best)
        assert est.score(X, c * y) == pytest.approx(lad.score(X, y), abs=1e-3)


@pytest.mark.parametrize("loss", ["epsilon_insensitive", "quantile"])
def test_the_linear_program_check_holds_in_any_unit_of_y(loss):
    """The exact check of a kinked loss on small dense data solves its linear program in units of y's spread:
    in y's units HiGHS' absolute tolerances made the optimum of y·1e-10 a false one, and a fit as good as at
    unit scale warned that it stopped 0.04 of the constant's loss above it."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(300)
    scores = []
    for c in (1.0, 1e-10, 1e10, 1e150):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est = LinearRegressor(loss=loss, epsilon=0.1 * c, random_state=0).fit(X, c * y)
        scores.append(est.score(X, c * y))
    np.testing.assert_allclose(scores, scores[0], atol=1e-3)


@pytest.mark.parametrize("loss", ["epsilon_insensitive", "squared_epsilon_insensitive"])
def test_an_epsilon_wider_than_y_warns_with_one_that_works(loss):
    """epsilon is in y's units: with y·1e-10 and the default epsilon=0.1 every residual of the constant mean lies
    inside the insensitive zone, the loss is zero there and the fit stayed at R² 0 without a message; it warns,
    naming an epsilon below y's spread, with which the fit is as at unit scale."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = 1e-10 * (X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(300))
    with pytest.warns(UserWarning, match=r"epsilon=0.1 is wider than every residual.*e\.g\. epsilon=") as record:
        LinearRegressor(loss=loss, random_state=0).fit(X, y)
    epsilon = float(re.search(r"e\.g\. epsilon=([0-9.e+-]+) ", str(record[0].message)).group(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(loss=loss, epsilon=epsilon, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.99


# ----------------------------------------------------------------------------------------------------------
# torch parity: golden trajectories written by tests/golden/make_golden_losses.py


GOLDEN_LOSSES = GOLDEN_DIR / "losses.npz"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["huber", "l1"])
def test_torch_loss_trajectories(backend, case):
    """torch.nn.HuberLoss(delta=ε) is loss="huber" with epsilon=ε; torch.nn.L1Loss is twice the pinball loss
    at quantile 0.5, so SGD on it with rate γ is SGD on loss="quantile" with rate 2γ."""
    g = load_golden(GOLDEN_LOSSES)
    X, y, theta0, order = g["X"], g["y"], g["theta0"], g["order"]
    lr = float(g["lr"]) * (2.0 if case == "l1" else 1.0)
    loss = code_of("huber", float(g["delta"])) if case == "huber" else code_of("quantile", 0.5)
    opt = SGD(lr=lr)
    ts = _engine.TrainingState.fresh(opt, 1, X.shape[1], theta0.copy())
    traj = [ts.theta.ravel().copy()]
    bs = int(g["batch_size"])
    for b in order:
        _engine.run_epoch(X, y[:, None], ts, opt.code, opt.pack(), bs, np.array([b], dtype=np.int64),
                          backend=backend, loss=loss)
        traj.append(ts.theta.ravel().copy())
    np.testing.assert_allclose(np.array(traj), g[f"params_{case}"], rtol=1e-12, atol=1e-14)


def test_torch_trajectories_are_current():
    """With torch installed, torch's own run still gives the recorded trajectories."""
    pytest.importorskip("torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden_losses", GOLDEN_DIR / "make_golden_losses.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    g = load_golden(GOLDEN_LOSSES)
    fresh = module.trajectories()
    for case in ("huber", "l1"):
        np.testing.assert_allclose(fresh[f"params_{case}"], g[f"params_{case}"], rtol=1e-13, atol=1e-15)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_dask_exact_fit_equals_the_local_fit_with_a_loss(monkeypatch, tmp_path):
    """The loss travels to the workers (epochs and evaluation sums): the exact mode's model is the local
    fit's on the same blocks."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from fastgd import _training

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, 5))
    y = X @ rng.normal(size=5) + rng.standard_t(2, size=4096) + 7
    monkeypatch.setattr(_training, "BLOCK_BYTES", 1024 * 5 * 8)
    np.save(tmp_path / "X.npy", X)
    kw = dict(loss="quantile", quantile=0.8, batch_size=256, random_state=0, max_iter=6)
    ref = LinearRegressor(**kw).fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster):
        est = LinearRegressor(**kw).fit(da.from_array(X, chunks=(1024, 5)), da.from_array(y, chunks=1024))
    assert est.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-12)


def test_a_smooth_loss_short_of_its_optimum_without_standardization_names_it():
    """Huber with standardize=False on columns of very different scales runs out of its epochs far from the
    optimum: the max_iter warning names the user's standardize=False first (standardize=True reaches it)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X * np.logspace(-2, 4, 10)
    with pytest.warns(ConvergenceWarning, match=r"set standardize=True \(the default\).*or raise max_iter"):
        LinearRegressor(loss="huber", standardize=False, max_iter=50).fit(X, y)


def test_a_stalled_lbfgs_on_huber_is_named_with_a_line_search_that_works():
    """optimizer="lbfgs" is torch's L-BFGS, without a line search by default: on heavy-tailed targets its fixed
    steps stall on the huber objective (3 times the optimum); small data is checked against L-BFGS with a
    strong-Wolfe line search, the warning says so, and following its advice reaches the optimum without a
    warning."""
    from fastgd.optimizers import LBFGS
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 30))
    y = 10 * (X @ rng.standard_normal(30) + rng.standard_t(1.5, 500))
    with pytest.warns(ConvergenceWarning, match=r"line_search_fn='strong_wolfe'"):
        stalled = LinearRegressor(loss="huber", epsilon=1.35, optimizer="lbfgs").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = LinearRegressor(loss="huber", epsilon=1.35, optimizer=LBFGS(line_search_fn="strong_wolfe")).fit(X, y)

    def objective(est):
        r = np.abs(est.predict(X) - y)
        return np.mean(np.where(r <= est.epsilon, 0.5 * r * r, est.epsilon * r - 0.5 * est.epsilon ** 2))
    assert objective(fixed) < 0.8 * objective(stalled)


def test_a_stalled_lbfgs_on_huber_beyond_the_exact_check_is_named_with_a_line_search_that_works():
    """Past the exact check's size, torch's L-BFGS without a line search stalled on heavy-tailed targets (2.3
    times the optimum, 3 steps from its start) without a warning: a few strong-Wolfe iterations from the fit now
    prove the stall, the warning gives that lower bound, and its advice, followed, reaches the optimum (scipy's
    L-BFGS-B on the same objective) without a warning."""
    from scipy.optimize import minimize

    from fastgd.optimizers import LBFGS
    rng = np.random.default_rng(0)
    n, d = 20_000, 20  # 400,000 values: past the exact check
    X = rng.standard_normal((n, d))
    y = 10 * (X @ rng.standard_normal(d) + rng.standard_t(1.5, n))

    def objective(theta):
        r = X @ theta[:d] + theta[d] - y
        a = np.abs(r)
        return np.mean(np.where(a <= 1.35, 0.5 * r * r, 1.35 * (a - 0.675))), \
            np.r_[X.T @ np.clip(r, -1.35, 1.35), np.clip(r, -1.35, 1.35).sum()] / n

    best = minimize(objective, np.r_[np.zeros(d), np.median(y)], jac=True, method="L-BFGS-B",
                    options=dict(maxiter=10_000, ftol=1e-15, gtol=1e-12)).fun
    with pytest.warns(ConvergenceWarning, match=r"L-BFGS stopped at least [0-9.]+ \(relative excess.*strong-Wolfe "
                                                r".*Use optimizer=LBFGS\(line_search_fn='strong_wolfe'\)") as record:
        stalled = LinearRegressor(loss="huber", optimizer="lbfgs").fit(X, y)
    assert len(record) == 1
    assert objective(np.r_[stalled.coef_, stalled.intercept_])[0] > 1.5 * best
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = LinearRegressor(loss="huber", optimizer=LBFGS(line_search_fn="strong_wolfe")).fit(X, y)
    assert objective(np.r_[fixed.coef_, fixed.intercept_])[0] == pytest.approx(best, rel=1e-4)


def test_the_stop_reason_names_the_unit_of_tol_the_loss_used():
    """tol counts in the variance of y for the squared error and in the constant mean's loss for another loss
    (as the warnings and the user guide say): the stop reason says which."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 5))  # beyond the exact check: the epochs' stopping rule ends the fit
    y = X @ rng.standard_normal(5) + rng.standard_normal(60_000)
    for loss, unit in (("squared_error", "variance of y"), ("huber", "loss of the constant mean of y")):
        est = LinearRegressor(loss=loss, random_state=0).fit(X, y)
        assert f"(times the {unit})" in est.stop_reason_, est.stop_reason_


def _huber_objective(model, X, y, epsilon=0.1):
    r = np.abs(model.predict(X) - y)
    return float(np.mean(np.where(r <= epsilon, 0.5 * r * r, epsilon * r - 0.5 * epsilon ** 2)))


@pytest.mark.parametrize("case", ["small: wine's degree-2 products", "larger: 2100 x 500",
                                  "small: diabetes' degree-2 products, epsilon far below y's spread"])
def test_huber_default_fit_that_reaches_its_optimum_gives_no_max_iter_warning(case):
    """A dense huber default fit whose epochs use up "auto"'s budget is finished by full-batch L-BFGS. It
    warned "raise max_iter" also where the finish reached the optimum (larger data), or after 50 iterations short
    of it (small data, where 79 reach it), though raising max_iter turns the finish off and left the objective
    higher. Now the small finish may take SMALL_FINISH_STEPS, without torch's tolerances (on diabetes' products,
    where huber is nearly 0.1·|r|, torch's 1e-7 and 1e-9 stopped it 4.3e-4 of the constant's loss short, silently),
    and the finish's outcome is the news: the optimum (strong-Wolfe L-BFGS's without those tolerances, run to
    tol=1e-10), and no warning."""
    from fastgd.optimizers import LBFGS

    if case.startswith("small: diabetes"):
        from sklearn.preprocessing import PolynomialFeatures

        X, y = load_diabetes(return_X_y=True)
        X = np.ascontiguousarray(PolynomialFeatures(2).fit_transform(X))
    elif case.startswith("small"):
        from sklearn.datasets import load_wine
        from sklearn.preprocessing import PolynomialFeatures

        data = load_wine().data
        X = np.ascontiguousarray(PolynomialFeatures(2, include_bias=False).fit_transform(data[:, 1:]))[:124]
        y = data[:124, 0]
    else:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2100, 500))
        X[:, 1::2] = X[:, 0::2] + 0.05 * rng.standard_normal((2100, 250))
        y = X @ (0.1 * rng.standard_normal(500)) + rng.standard_normal(2100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LinearRegressor(loss="huber", random_state=0).fit(X, y)
    assert "then full-batch L-BFGS" in model.stop_reason_
    best = LinearRegressor(loss="huber", optimizer=LBFGS(line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                                         tolerance_change=0.0), max_iter=3000, tol=1e-10,
                           random_state=0).fit(X, y)
    assert _huber_objective(model, X, y) <= _huber_objective(best, X, y) * (1 + 1e-5)
