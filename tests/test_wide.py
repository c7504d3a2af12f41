"""Wide and ill-conditioned dense data: the defaults reach the optimum or say truthfully why not."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge

from fastgd import LinearRegressor, _planning
from fastgd._planning import wide_batch_size


def _gauss(n, d, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = X.astype(np.float64) @ rng.standard_normal(d) + 0.1 * np.sqrt(d) * rng.standard_normal(n)
    return X, y


def _mse(model, X, y):
    return float(np.mean(np.square(model.predict(X) - y)))


def test_wide_batch_size_follows_the_width():
    assert wide_batch_size(32, 10_000, 1000) == 256  # at least d / 4 rows, a power of two
    assert wide_batch_size(2048, 1_000_000, 100) == 2048  # narrow data keeps the n-based choice
    assert wide_batch_size(32, 100, 1000) == 100  # never more than n
    assert wide_batch_size(32, 10**6, 100_000) == 4096  # capped


def test_wide_default_fit_reaches_least_squares():
    """n/d = 5, float32: the default batch of 32 left the averaged model far from the optimum."""
    X, y = _gauss(1500, 300, np.float32)
    best = LinearRegression().fit(X, y).score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y)
    assert model.batch_size_ >= 300 // 4
    assert model.score(X, y) > best - 1e-4


def test_adaptive_rate_shrinks_when_the_averaged_loss_rises():
    """Many updates per epoch with averaging: a rising evaluation used to end the fit (with advice to lower a
    rate the library chose); the adaptive rule now shrinks the rate and resumes from the best model."""
    X, y = _gauss(4000, 300)
    best = LinearRegression().fit(X, y).score(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(batch_size=16, random_state=0).fit(X, y)
    assert not any("learning_rate" in str(w.message) for w in caught)
    assert model.score(X, y) > best - 1e-3


def test_rise_with_a_chosen_rate_names_only_settings_to_change():
    X, y = _gauss(4000, 300)
    with pytest.warns(ConvergenceWarning, match="loss rose") as caught:
        LinearRegressor(batch_size=16, learning_rate=0.05, random_state=0).fit(X, y)
    message = " ".join(str(w.message) for w in caught)
    assert "Lower learning_rate" in message and "standardize=True" not in message


def test_small_dataframe_fit_gives_no_feature_name_warning():
    pd = pytest.importorskip("pandas")
    X, y = _gauss(300, 4)
    df = pd.DataFrame(X, columns=list("abcd"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(random_state=0).fit(df, y)


def _cancer():
    X = load_breast_cancer().data
    return np.delete(X, 0, axis=1), X[:, 0].copy()


def test_ill_conditioned_shortfall_is_judged_in_relative_mse():
    """One column of a real dataset on the others: 1e-4 short in R² but 40 % more residual MSE than least
    squares; the warning names the measured condition number and a fix that works."""
    from fastgd.optimizers import Adam

    X, y = _cancer()
    with pytest.warns(ConvergenceWarning, match=r"condition number \d+.*LinearRegression") as caught:
        model = LinearRegressor(optimizer=Adam(lr=0.01), random_state=0).fit(X, y)  # no L-BFGS finish
    assert "learning_rate" not in str(caught[0].message)
    ratio = _mse(model, X, y) / _mse(LinearRegression().fit(X, y), X, y)
    assert ratio - 1 > 1e-2  # the shortfall the warning reports is real


def test_penalized_fit_is_checked_against_its_own_optimum():
    X, y = _cancer()
    alpha = 1e-3
    with pytest.warns(ConvergenceWarning, match="penalized optimum.*Ridge"):
        model = LinearRegressor(penalty="l2", alpha=alpha, learning_rate=0.01, random_state=0).fit(X, y)
    ridge = Ridge(alpha=len(y) * alpha / 2).fit(X, y)
    objective = lambda m: _mse(m, X, y) + alpha / 2 * float(np.square(m.coef_).sum())  # noqa: E731
    assert objective(model) > 1.01 * objective(ridge)
    with pytest.warns(ConvergenceWarning, match="penalized optimum.*Lasso"):  # l1: no L-BFGS finish
        LinearRegressor(penalty="l1", alpha=alpha, random_state=0).fit(X, y)
    with warnings.catch_warnings():  # l2 under the default rate rule: finished by L-BFGS
        warnings.simplefilter("error")
        model = LinearRegressor(penalty="l2", alpha=alpha, random_state=0).fit(X, y)
    assert objective(model) < 1.001 * objective(ridge)


def test_no_shortfall_warning_at_the_optimum():
    X, y = _gauss(2000, 10)
    for penalty in (None, "l2", "l1"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            LinearRegressor(penalty=penalty, random_state=0).fit(X, y)


def test_max_iter_shortfall_advice_works_when_followed():
    X, y = _gauss(2000, 10)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        LinearRegressor(max_iter=1, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(max_iter=1000, random_state=0).fit(X, y)


def test_small_ill_conditioned_default_fit_is_finished_by_lbfgs():
    """The default rate rule fell 40 % short in MSE (and star98-like data 38 %); full-batch L-BFGS finishes."""
    X, y = _cancer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y)
    assert model.max_iter_ == 1000
    assert _mse(model, X, y) < 1.001 * _mse(LinearRegression().fit(X, y), X, y)


def test_finisher_leaves_a_chosen_optimizer_object_alone():
    from fastgd.optimizers import Adam

    X, y = _cancer()
    with pytest.warns(ConvergenceWarning, match="condition number"):
        LinearRegressor(optimizer=Adam(lr=0.01), random_state=0).fit(X, y)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_reaches_the_optimum(line_search_fn):
    from fastgd.optimizers import LBFGS

    X, y = _cancer()
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    for standardize, penalty in ((True, None), (True, "l2")):
        model = LinearRegressor(optimizer=LBFGS(line_search_fn=line_search_fn), standardize=standardize,
                                penalty=penalty, alpha=1e-3 if penalty else 1e-4, max_iter=500,
                                random_state=0).fit(X, y, sample_weight=w)
        exact = (LinearRegression() if penalty is None else Ridge(alpha=w.sum() * 1e-3 / 2)).fit(X, y, sample_weight=w)
        objective = lambda m: (np.average(np.square(m.predict(X) - y), weights=w)  # noqa: E731
                               + (0 if penalty is None else 1e-3 / 2 * float(np.square(m.coef_).sum())))
        assert objective(model) < objective(exact) * (1 + 1e-4), (standardize, penalty)


def test_lbfgs_step_matches_torch_semantics_on_a_quadratic():
    """torch.optim.LBFGS's first step is -g·min(1, 1/‖g‖₁)·lr; history makes a quadratic exact in d steps."""
    from fastgd.optimizers import LBFGS

    A = np.diag([1.0, 10.0, 100.0])
    b = np.array([1.0, 1.0, 1.0])
    fg = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)  # noqa: E731
    x = np.zeros(3)
    LBFGS(max_iter=1).step(fg, x, {})
    np.testing.assert_allclose(x, b / 3.0)  # g = -b, ‖g‖₁ = 3
    x = np.zeros(3)
    state = {}
    LBFGS(line_search_fn="strong_wolfe", max_iter=50).step(fg, x, state)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-5)
    assert state["func_evals"] <= 50


def test_lbfgs_without_standardization_is_torchs_on_raw_coordinates():
    X, y = _gauss(500, 5)
    model = LinearRegressor(optimizer="lbfgs", standardize=False).fit(X, y)
    assert model.score(X, y) > LinearRegression().fit(X, y).score(X, y) - 1e-9


def test_lbfgs_goes_on_after_a_step_that_torch_ended_on_its_loss_change():
    """One weak standardized feature: torch's fixed first step -g (‖g‖₁ < 1) lands at twice the optimum, at
    the start's loss, so torch ends that step on tolerance_change; the history it leaves makes the next step
    exact, as a loop over torch's step finds (the fit stopped there at the untrained start)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 1))
    y = 0.3 * X[:, 0] + rng.standard_normal(200) + 5
    exact = LinearRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(optimizer="lbfgs", random_state=0).fit(X, y)
    np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-6)
    assert model.stop_reason_.startswith("a step left the model where it was")


def test_lbfgs_stopped_by_torchs_absolute_tolerances_names_them():
    """Raw columns and a y of 1e-7: torch's absolute tolerances end the first step at the start, which the
    warning names (not tol) with fixes that work."""
    from fastgd.optimizers import LBFGS

    X, y = _gauss(200, 3)
    y = y * 1e-7
    with pytest.warns(ConvergenceWarning, match=r"after 1 step: a step left the model where it was.*"
                                                r"tolerance_grad=1e-07 or tolerance_change=1e-09 ended it\). Set "
                                                r"standardize=True.*or lower the optimizer's tolerance_grad") as w:
        LinearRegressor(optimizer="lbfgs", standardize=False).fit(X, y)
    assert "line_search_fn" not in str(w[0].message)  # a line search stops there too
    best = LinearRegression().fit(X, y).score(X, y)
    for fix in (dict(optimizer="lbfgs"), dict(optimizer=LBFGS(tolerance_grad=0.0, tolerance_change=0.0),
                                              standardize=False)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert LinearRegressor(**fix).fit(X, y).score(X, y) > best - 1e-9


def test_lbfgs_fixed_steps_on_raw_columns_name_the_line_search_and_the_real_budget():
    """torch's fixed steps oscillate on a raw column far from unit scale: the warning names the steps' budget
    (max_iter='auto'), not tol, and the line search and standardization, which each reach the optimum."""
    from fastgd.optimizers import LBFGS

    rng = np.random.default_rng(5)
    X = 700.0 * rng.standard_normal((150, 1)) - 50.0
    y = X[:, 0] / 700.0 + rng.standard_normal(150) * 0.5 + 3.0
    with pytest.warns(ConvergenceWarning, match=r"L-BFGS stopped .* steps \(max_iter='auto'\) done, taking torch's "
                                                r"fixed steps .*Use optimizer=LBFGS\(line_search_fn='strong_wolfe'\)"
                                                r".*or set standardize=True") as w:
        LinearRegressor(optimizer="lbfgs", standardize=False).fit(X, y)
    assert "progress per round" not in str(w[0].message)
    best = LinearRegression().fit(X, y).score(X, y)
    for fix in (dict(optimizer="lbfgs"), dict(optimizer=LBFGS(line_search_fn="strong_wolfe"), standardize=False)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert LinearRegressor(**fix).fit(X, y).score(X, y) > best - 1e-9


def test_lbfgs_refuses_what_it_cannot_do():
    X, y = _gauss(100, 3)
    with pytest.raises(ValueError, match="penalty='l1'"):
        LinearRegressor(optimizer="lbfgs", penalty="l1").fit(X, y)
    with pytest.raises(ValueError, match="partial_fit"):
        LinearRegressor(optimizer="lbfgs").partial_fit(X, y)


def test_csr_input_is_not_finished_by_lbfgs_without_a_penalty():
    """Unpenalized CSR keeps its own defaults: no L-BFGS finish, no 1000-epoch budget; the shortfall is still
    reported."""
    sp = pytest.importorskip("scipy.sparse")
    X, y = _cancer()
    model = LinearRegressor(random_state=0, penalty=None)
    with pytest.warns(ConvergenceWarning, match="condition number"):
        model.fit(sp.csr_matrix(X), y)
    assert model.max_iter_ > 1000


def test_csr_input_with_the_default_penalty_is_finished_exactly_without_a_max_iter_warning():
    """The default on CSR (an l2 penalty of a strength chosen on held-out rows): 2 warm-up epochs, then the
    preconditioned conjugate-gradient finish reaches the penalized optimum of this ill-conditioned data (Ridge's
    of the same strength); the 2-epoch budget is no shortfall to warn of."""
    sp = pytest.importorskip("scipy.sparse")
    X, y = _cancer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(sp.csr_matrix(X), y)
    assert model.max_iter_ == 2 and "conjugate gradient" in model.stop_reason_
    from sklearn.linear_model import Ridge
    ridge = Ridge(alpha=model.alpha_ * len(y) / 2, solver="cholesky").fit(X, y)
    assert model.score(X, y) == pytest.approx(ridge.score(X, y), abs=1e-7)


def test_noisy_wide_fit_beyond_the_exact_check_is_finished():
    """Above the exact check's size, averaged steps plateau at an excess of about loss·(d + 1)/n: with R² 0.8
    and d/n = 0.1 that is far above tol, and the plateau is not the optimum; L-BFGS passes finish it."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2500, 250))
    y = X @ rng.standard_normal(250) + 8.0 * rng.standard_normal(2500)
    best = LinearRegression().fit(X, y).score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y)
    assert model.score(X, y) > best - 1e-6


def test_a_float_learning_rate_does_not_change_the_users_lbfgs_object():
    """fit trains a copy set to the learning_rate given: the estimator's parameters are not modified by fit."""
    from fastgd.optimizers import LBFGS

    X, y = np.random.default_rng(0).standard_normal((200, 3)), np.random.default_rng(1).standard_normal(200)
    opt = LBFGS(lr=0.7)
    LinearRegressor(optimizer=opt, learning_rate=0.3, max_iter=2, tol=None).fit(X, y)
    assert opt.lr == 0.7


def _factor_data(n=2000, d=130, seed=0):
    """Correlated columns (10 factors plus 5 % noise) in scales from 1e-2 to 1e2, float32, y linear in them: the
    standardized design's curvatures span about 1e5, and the optimum explains all but 1e-4 of var(y)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, 10)) @ rng.standard_normal((10, d)) + 0.05 * rng.standard_normal((n, d))
    X = (W * np.geomspace(1e-2, 1e2, d)).astype(np.float32)
    return X, W @ rng.standard_normal(d) + rng.standard_normal(n)


def _least_squares_mse(X, y):
    """The least-squares optimum's MSE, solved on the standardized columns (LinearRegression on the raw ones
    loses digits when their scales span orders of magnitude)."""
    Z = X.astype(np.float64)
    A = np.c_[(Z - Z.mean(0)) / Z.std(0), np.ones(len(y))]
    return float(np.mean(np.square(A @ np.linalg.lstsq(A, y, rcond=None)[0] - y)))


def test_ill_conditioned_fit_beyond_the_exact_check_reaches_least_squares():
    """Above the exact check's size, torch's L-BFGS tolerances (changes below 1e-9 of var(y)) ended the finish
    0.3 % above the optimum's MSE, silently (up to 3 times it on wider such data); the conjugate-gradient
    finish stops on gains relative to the objective and reaches it."""
    X, y = _factor_data()
    assert X.size > 250_000  # no exact check afterwards
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y)
    assert _mse(model, X, y) < (1 + 1e-4) * _least_squares_mse(X, y)
    assert "conjugate gradient" in model.stop_reason_


def test_unfinished_dense_finish_names_the_measured_condition_and_a_fix_that_works(monkeypatch):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import fastgd.estimator

    X, y = _factor_data()
    monkeypatch.setattr(fastgd.estimator, "FINISH_CG_ITER", 3)
    monkeypatch.setattr(fastgd.estimator, "SOLVE_MAX_COLUMNS", 0)  # no exact solve after it: the warning's case
    with pytest.warns(ConvergenceWarning, match=r"condition number at least [0-9.e+]+, measured") as caught:
        model = LinearRegressor(random_state=0).fit(X, y)
    advised = "make_pipeline(sklearn.preprocessing.StandardScaler(with_mean=False), sklearn.linear_model." \
              "LinearRegression())"
    assert len(caught) == 1 and advised in str(caught[0].message)
    best = _least_squares_mse(X, y)
    assert _mse(model, X, y) > (1 + 1e-3) * best  # it was short
    advice = make_pipeline(StandardScaler(with_mean=False), LinearRegression()).fit(X, y)
    assert _mse(advice, X, y) < (1 + 1e-6) * best


@pytest.mark.parametrize("noise", [0.0, 1.0])
@pytest.mark.parametrize("finish_stops", [True, False])
def test_wide_data_that_the_fit_interpolates_gives_no_shortfall_warning(noise, finish_stops, monkeypatch):
    """n < d beyond the exact check's size: the fit interpolates y (noisy or not) to rounding, an objective no
    model can beat, so the finish stops and no "may be short of the least-squares optimum" (the finish's gains
    relative to an objective at rounding never counted as small, and ran it to its limit or a breakdown). A
    finish that ends otherwise (the gains made relative to the objective alone) at an objective within tol of
    zero is no shortfall either."""
    from fastgd import _training

    if not finish_stops:
        monkeypatch.setattr(_training, "EXACT_FIT", 0.0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4200))  # 252,000 values: no exact check afterwards
    y = X @ rng.standard_normal(4200) + noise * rng.standard_normal(60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y)
    assert _mse(model, X, y) < 1e-20 * np.var(y)
    small_gains = "conjugate gradient: an iteration gained less than" in model.stop_reason_
    if finish_stops:  # on its small gains, or where its tracked objective reached zero (whichever comes first)
        assert small_gains or "the objective as CG tracks it reached zero" in model.stop_reason_
    else:
        assert not small_gains


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_exact_solver_advised_for_small_data_reaches_the_optimum(fit_intercept):
    """The small-data shortfall advice, followed as written, reaches least squares' optimum also where the
    columns' scales differ by six orders (LinearRegression alone: 12 % above it, its SVD cut-off), on dense and
    on sparse X."""
    import re

    import scipy.sparse as sp
    import sklearn.linear_model
    import sklearn.pipeline
    import sklearn.preprocessing

    from fastgd._shortfall import shortfall_fix

    rng = np.random.default_rng(0)
    n, d = 400, 60
    W = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) + 0.05 * rng.standard_normal((n, d))
    X = W * np.geomspace(1e-3, 1e3, d)
    y = W @ rng.standard_normal(d) + rng.standard_normal(n)
    Xs = (X - X.mean(0)) / X.std(0) if fit_intercept else X / np.sqrt(np.mean(X ** 2, axis=0))
    Xs = np.c_[Xs, np.ones(n)] if fit_intercept else Xs
    best = np.mean(np.square(Xs @ np.linalg.lstsq(Xs, y, rcond=None)[0] - y))
    advice = shortfall_fix(LinearRegressor(fit_intercept=fit_intercept, penalty=None), capped=False)
    code = re.search(r"sklearn\.pipeline\.make_pipeline\(.*\)\)", advice).group(0)
    for data, rel in ((X, 1e-9), (sp.csr_matrix(X), 1e-5)):  # sparse: LinearRegression's lsqr, iterative
        model = eval(code, {"sklearn": sklearn}).fit(data, y)
        assert np.mean(np.square(model.predict(data) - y)) <= best * (1 + rel)


def test_a_finish_that_reaches_the_optimum_after_the_epoch_budget_gives_no_max_iter_warning(monkeypatch):
    """Beyond the exact check's size, epochs that use up the "auto" budget on ill-conditioned data are finished
    by conjugate gradient: at the optimum, no "raise max_iter" advice (a max_iter the user sets turns that
    finish off, which the warning then says)."""
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 100)  # the larger data's rules, on small data
    monkeypatch.setattr(_planning, "AUTO_MAX_EPOCHS", 20)
    rng = np.random.default_rng(0)
    n, d = 400, 60
    X = np.sqrt(0.999) * rng.standard_normal((n, 1)) + np.sqrt(0.001) * rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    Xc = np.c_[X, np.ones(n)]
    best = np.mean((Xc @ np.linalg.lstsq(Xc, y, rcond=None)[0] - y) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(random_state=0).fit(X, y)
    assert est.max_iter_ == 20 and est.n_iter_ > 20  # the budget spent, then the finish's iterations
    assert np.mean((est.predict(X) - y) ** 2) <= best * (1 + 1e-9)
    with pytest.warns(ConvergenceWarning, match="(?i)leave max_iter at 'auto'"):
        LinearRegressor(random_state=0, max_iter=20).fit(X, y)


def test_a_users_lbfgs_out_of_steps_on_the_squared_error_is_pointed_to_the_exact_finish(monkeypatch):
    """Beyond the exact check, an L-BFGS fit that used up max_iter is told of the default optimizer's finish,
    which solves the squared error exactly (raising max_iter gains little on ill-conditioned features); since one
    exact step from the fit bounds its excess (0.02 of var(y) here), the warning gives that figure, the default
    optimizer and budget."""
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 100)
    rng = np.random.default_rng(0)
    X = np.sqrt(0.999) * rng.standard_normal((400, 1)) + np.sqrt(0.001) * rng.standard_normal((400, 60))
    y = X @ rng.standard_normal(60) + rng.standard_normal(400)
    with pytest.warns(ConvergenceWarning, match="Leave optimizer at its default .'adam'., and leave max_iter at "
                                                "'auto'") as caught:
        LinearRegressor(optimizer="lbfgs", max_iter=2).fit(X, y)
    assert "raise max_iter" not in str(caught[0].message).lower()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(random_state=0).fit(X, y)


def _wide_correlated(seed=1, rows=375):
    """``rows`` training rows of 1,000 correlated columns (a decaying spectrum), 125 held out; y = X·w + noise."""
    rng = np.random.default_rng(seed)
    n, d = rows + 125, 1000
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) * np.logspace(0, -4, d)) @ Q.T
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.2))
    y = y / y.std() * 2 + rng.standard_normal(n) + 100
    return X[:rows], y[:rows], X[rows:], y[rows:]


def _wine_squares():
    """Wine's alcohol from the other 12 columns' degree-2 products (90 columns, natural units), 124 rows."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import PolynomialFeatures

    X, _ = load_wine(return_X_y=True)
    P = PolynomialFeatures(2, include_bias=False).fit_transform(X[:, 1:])
    idx = np.random.default_rng(0).permutation(len(P))
    return P[idx[:124]], X[idx[:124], 0], P[idx[124:]], X[idx[124:], 0]


@pytest.mark.parametrize("case", ["375 x 1000, correlated", "wine, degree-2 products"])
def test_least_squares_that_fits_the_noise_warns_with_a_penalty_that_predicts_better(case):
    """Dense X with few rows per column, where penalty="auto" adds no penalty: the least-squares model fits the
    rows' noise (held-out R² -0.65 and -2.2 where StandardScaler + RidgeCV gets 0.66 and 0.53), which passed
    silently, and the shortfall warning's advice (LinearRegression) made it worse. An exact leave-one-out check
    now warns with both figures and an l2 penalty on the standardized columns as a pipeline, which, followed as
    written, predicts held-out rows as well as RidgeCV; no ConvergenceWarning advises reaching least squares."""
    import re

    import sklearn.pipeline
    import sklearn.preprocessing
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import fastgd

    Xtr, ytr, Xte, yte = _wide_correlated() if case.startswith("375") else _wine_squares()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(Xtr, ytr)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and issubclass(caught[0].category, UserWarning), messages
    what = r"fits every training row exactly \(it interpolates them\) and predicts" if case.startswith("375") else \
        r"predicts left-out rows with R² -"
    assert re.search(what, messages[0]) and f"with {len(ytr)} rows and {Xtr.shape[1]} columns" in messages[0]
    advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*?\)\))", messages[0]).group(1)
    ours = eval(advice, {"sklearn": sklearn, "fastgd": fastgd}).fit(Xtr, ytr).score(Xte, yte)
    expert = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 4, 33))).fit(Xtr, ytr).score(Xte, yte)
    assert ours > expert - 0.02 and model.score(Xte, yte) < ours - 0.5, (ours, expert, model.score(Xte, yte))
    said = float(re.search(r"standardized columns predicts left-out rows with R² ([-0-9.e]+)", messages[0]).group(1))
    assert abs(said - ours) < 0.1  # the left-out figure foretells the held-out one


def test_least_squares_on_narrow_data_gives_no_overfit_warning():
    """Diabetes (300 x 10): least squares predicts left-out rows as well as any l2 penalty, so no warning."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor(random_state=0).fit(X[:300], y[:300])


def test_the_overfit_check_too_costly_for_the_epochs_runs_after_a_long_finish():
    """700 x 1,000 correlated columns: the check's SVD (4.9e8 operations) exceeded its fixed budget, so the
    default fit, interpolating the rows after its finish's 1,000 iterations, was silent at held-out R² -1.28.
    After a finish of many passes the check may cost up to twice their operations: it warns (no
    ConvergenceWarning besides), and its advice, followed as written, predicts the held-out rows."""
    import re

    import sklearn.pipeline
    import sklearn.preprocessing

    import fastgd
    from fastgd import _shortfall

    Xtr, ytr, Xte, yte = _wide_correlated(rows=700)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(Xtr, ytr)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and issubclass(caught[0].category, UserWarning), messages
    assert _shortfall.overfit_cost(Xtr) > _shortfall.OVERFIT_MAX_FLOPS  # not paid for by the epochs alone
    assert "fits their noise" in messages[0] and model.n_iter_ > 500
    advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*?\)\))", messages[0]).group(1)
    ours = eval(advice, {"sklearn": sklearn, "fastgd": fastgd}).fit(Xtr, ytr).score(Xte, yte)
    assert ours > 0.5 and model.score(Xte, yte) < 0.0, (ours, model.score(Xte, yte))


def test_wide_least_squares_the_check_cannot_afford_says_it_may_fit_the_noise(monkeypatch):
    """Where the overfit check cannot run (here: X above the values it may copy) and X has at least as many
    columns as rows, the default least-squares fit says it can fit every row exactly and that the check did not
    run, and names a penalty chosen on left-out rows; with more rows than columns it says nothing of the kind."""
    import re

    import numpy
    import sklearn.linear_model
    import sklearn.pipeline
    import sklearn.preprocessing

    from fastgd import _shortfall

    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_VALUES", 0, raising=False)
    for rows, says in ((700, True), (1200, False)):
        Xtr, ytr, Xte, yte = _wide_correlated(rows=rows)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = LinearRegressor(random_state=0).fit(Xtr, ytr)
        notes = [str(w.message) for w in caught if "can fit every row exactly" in str(w.message)]
        assert len(notes) == int(says), [str(w.message) for w in caught]
        if says:
            assert f"({rows} rows of positive weight, 1000 columns)" in notes[0] and "did not run" in notes[0]
            advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*\)\))", notes[0]).group(1)
            pipe = eval(advice, {"sklearn": sklearn, "numpy": numpy}).fit(Xtr, ytr)
            assert pipe.score(Xte, yte) > 0.5 > model.score(Xte, yte)


@pytest.mark.parametrize("noise", [1.0, 0.01])
def test_least_squares_the_check_cannot_afford_estimates_its_left_out_r2_from_the_training_error(noise,
                                                                                                 monkeypatch):
    """Where the overfit check cannot run (its SVD's cost; forced here) and X has more rows than columns, the
    default least-squares fit said nothing: 2,500 x 2,000 factor data scored held-out R² 0.824 (training 0.993)
    where StandardScaler + RidgeCV got 0.963. Generalized cross-validation (the training error over
    (1 - weights/rows)²) estimates the left-out R² from one pass; a warning gives it where it is more than
    twice OVERFIT_GAIN below the training R², with a penalty chosen on left-out rows; none on nearly noiseless rows."""
    import re

    import numpy
    import sklearn.linear_model
    import sklearn.pipeline
    import sklearn.preprocessing

    from fastgd import _shortfall

    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_VALUES", 0)
    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_FLOPS", 0)
    rng = np.random.default_rng(5)
    n, d = 400, 300
    X = rng.standard_normal((2 * n, 30)) @ rng.standard_normal((30, d)) + 0.3 * rng.standard_normal((2 * n, d))
    y = X @ (rng.standard_normal(d) / np.sqrt(d)) + noise * rng.standard_normal(2 * n)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(Xtr, ytr)
    notes = [str(w.message) for w in caught if "estimated R² on left-out rows" in str(w.message)]
    if noise < 0.1:
        assert not notes, notes
        return
    assert len(notes) == 1, [str(w.message) for w in caught]
    assert f"has {d + 1} weights for {n} rows" in notes[0] and "did not run" in notes[0]
    estimate = float(re.search(r"left-out rows is (\S+) \(", notes[0]).group(1))
    assert abs(estimate - model.score(Xte, yte)) < 0.05  # 0.796 against 0.824
    advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*\)\))", notes[0]).group(1)
    pipe = eval(advice, {"sklearn": sklearn, "numpy": numpy}).fit(Xtr, ytr)
    assert pipe.score(Xte, yte) > model.score(Xte, yte) + 0.05


def test_least_squares_with_signal_in_every_direction_the_check_cannot_afford_says_nothing(monkeypatch):
    """With more than 4/3 rows per weight the training error's estimate of the left-out R² does not tell whether a
    penalty gains: isotropic columns with signal in every direction, 1,000 x 250 (the exact check forced off),
    training R² 0.85 against an estimate 0.75, where RidgeCV gains under 0.02. No warning (the estimate's first
    rule warned at such gaps: 4,000 x 1,000 gained 0.011)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastgd import _shortfall

    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_VALUES", 0)
    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_FLOPS", 0)
    rng = np.random.default_rng(100)
    n, d = 1000, 250
    X = rng.standard_normal((2 * n, d))
    f = X @ rng.standard_normal(d)
    y = np.sqrt(0.8) * f / f.std() + np.sqrt(0.2) * rng.standard_normal(2 * n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(X[:n], y[:n])
    assert not [str(w.message) for w in caught if "left-out rows" in str(w.message)]
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))).fit(X[:n], y[:n])
    assert ridge.score(X[n:], y[n:]) < model.score(X[n:], y[n:]) + 0.02


@pytest.mark.parametrize("case", ["factor data with noise", "signal in every direction"])
def test_least_squares_the_budget_cannot_afford_is_checked_where_its_training_error_suggests_noise(case,
                                                                                                  monkeypatch):
    """With fewer than 4/3 rows per weight the training error's estimate cannot tell whether a penalty gains,
    and where the check's SVD cost more than the fit's passes paid for, the fit said nothing: 1,400 x 1,000
    factor data (noise as large as the signal) scored held-out R² -0.65 where StandardScaler + RidgeCV got 0.52,
    silently (488 passes paid for 0.98 of the check's cost). Where that estimate is more than twice OVERFIT_GAIN
    below the training R², the exact check runs whatever its cost (X small enough to copy) and decides: a warning
    with its figures and a penalty that works on the factor data; none where the signal lies in every direction
    and a penalty gains little (the budget forced to nothing here, so smaller data stand for it)."""
    import re

    import sklearn.pipeline
    import sklearn.preprocessing
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import fastgd
    from fastgd import _shortfall

    monkeypatch.setattr(_shortfall, "OVERFIT_MAX_FLOPS", 0)
    monkeypatch.setattr(_shortfall, "OVERFIT_FIT_SHARE", 0.0)
    if case == "factor data with noise":
        rng = np.random.default_rng(0)
        n, d = 560, 400
        X = rng.standard_normal((2 * n, 10)) @ rng.standard_normal((10, d)) + 0.1 * rng.standard_normal((2 * n, d))
        y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.2))
        y += y.std() * rng.standard_normal(2 * n)
    else:  # as test_least_squares_with_signal_in_every_direction_the_check_cannot_afford_says_nothing
        rng = np.random.default_rng(100)
        n, d = 1000, 250
        X = rng.standard_normal((2 * n, d))
        f = X @ rng.standard_normal(d)
        y = np.sqrt(0.8) * f / f.std() + np.sqrt(0.2) * rng.standard_normal(2 * n)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(Xtr, ytr)
    notes = [str(w.message) for w in caught if "left-out rows" in str(w.message)]
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15))).fit(Xtr, ytr).score(Xte, yte)
    if case == "signal in every direction":
        assert not notes, notes
        assert ridge < model.score(Xte, yte) + 0.02
        return
    assert len(notes) == 1 and "(exact leave-one-out)" in notes[0], [str(w.message) for w in caught]
    advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*?\)\))", notes[0]).group(1)
    ours = eval(advice, {"sklearn": sklearn, "fastgd": fastgd}).fit(Xtr, ytr).score(Xte, yte)
    assert ours > ridge - 0.02 and ours > model.score(Xte, yte) + 0.2, (ours, ridge, model.score(Xte, yte))


def _one_row_flags():
    """Diabetes' first 200 rows and two flags, each set in one row (leverage 1: a refit without the row has an
    all-zero column)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    flags = np.zeros((200, 2))
    flags[7, 0], flags[11, 1] = 1.0, 3.0
    return np.hstack([X[:200], flags]), y[:200]


@pytest.mark.parametrize("case", ["one-row flags", "digits' pixels", "interpolating 40 x 60"])
def test_the_overfit_checks_least_squares_figure_is_the_refits(case, monkeypatch):
    """The check's least-squares figure is the leave-one-out R² of refits without each row (LinearRegression on
    the columns StandardScaler scales, as the check's). Rows of leverage 1 (a column stored in one row alone:
    diabetes with a one-row flag, digits' rarely inked pixels) were scored as unpredictable, and the fit warned
    that least squares "cannot predict some rows when they are left out" with an l2 penalty 0.008 (flags) and
    0.002 (digits' first 1,200 rows) better on left-out rows, where the refits predict them; now no warning."""
    import re

    from sklearn.datasets import load_digits
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    from fastgd import _shortfall

    if case == "one-row flags":
        X, y = _one_row_flags()
    elif case.startswith("digits"):
        X, y = load_digits(return_X_y=True)
        X, y = X[:300].astype(np.float64), y[:300].astype(np.float64)
    else:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 60))
        y = X[:, :5].sum(axis=1) + rng.standard_normal(40)
    assert case != "one-row flags" or np.count_nonzero(X[:, -1]) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0).fit(X, y)
    said = [str(c.message) for c in caught if "fits their noise" in str(c.message)]
    if case != "interpolating 40 x 60":
        assert not said, said
    monkeypatch.setattr(_shortfall, "OVERFIT_GAIN", -np.inf)  # the message, with the figure, whatever the gain
    monkeypatch.setattr(_shortfall, "OVERFIT_GAIN_INTERPOLATING", -np.inf)
    message = _shortfall.overfit(model, X, y.reshape(-1, 1), None)
    figure = float(re.search(r"predicts left-out rows with R² ([-0-9.e]+) \(exact", message).group(1))
    scale = X.std(axis=0)
    scale[~(scale > 0)] = 1.0
    refits = cross_val_predict(LinearRegression(), X / scale, y, cv=LeaveOneOut())
    assert figure == pytest.approx(r2_score(y, refits), abs=2e-3), (figure, r2_score(y, refits))


@pytest.mark.parametrize("weighted", [False, True])
def test_a_dense_finish_that_stops_short_solves_the_normal_equations(weighted):
    """3000 x 200 at condition number 1e4: the conjugate-gradient finish used its 1,000 iterations and stayed
    1.3e-3 of var(y) above least squares (warned truly). With at most SOLVE_MAX_COLUMNS columns the normal
    equations are then solved exactly (one pass over X): least squares' objective to rounding, no warning."""
    rng = np.random.default_rng(1)
    n, d = 3000, 200
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) * np.logspace(0, -4, d)) @ Q.T
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.2))
    y = y / y.std() * 2 + rng.standard_normal(n) + 100
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearRegressor(random_state=0).fit(X, y, sample_weight=w)
    assert "the normal equations solved exactly" in model.stop_reason_
    best = LinearRegression().fit(X, y, sample_weight=w)
    ww = np.ones(n) if w is None else w
    mse = lambda m: float(ww @ np.square(m.predict(X) - y)) / ww.sum()
    assert mse(model) <= mse(best) * (1 + 1e-9)


@pytest.mark.parametrize("case", ["no intercept", "rows of weight 0"])
def test_the_overfit_warning_is_true_without_an_intercept_and_with_rows_of_weight_0(case):
    """fit_intercept=False: the least-squares figure is scikit-learn's leave-one-out R² (errors over the spread
    about y's mean; it was 1 - SSE/Σy², 0.629 for 0.448) and the advised scaler keeps X's level
    (StandardScaler(with_mean=False): centring left the model no way to reach y's level, held-out -0.27 against
    least squares' 0.22). Rows of weight 0 with larger X: the advised alpha is for the scales StandardScaler
    finds on all rows, as the pipeline fits them (it was for the others': held-out -0.06 against 0.28). The
    advice, followed as written, beats least squares on held-out rows."""
    import re

    import sklearn.pipeline
    import sklearn.preprocessing
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    import fastgd

    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 1.0, size=(2060, 40))
    y = X @ rng.normal(0.2, 1.0, size=40) + 3.0 * rng.normal(size=2060)
    Xt, yt, Xv, yv = X[:60], y[:60], X[60:], y[60:]
    kw, w = {}, None
    if case == "no intercept":
        kw = {"fit_intercept": False}
    else:
        Xt, yt = np.vstack([Xt, 100.0 * X[60:80]]), np.r_[yt, y[60:80]]
        w = np.r_[np.ones(60), np.zeros(20)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(random_state=0, **kw).fit(Xt, yt, sample_weight=w)
    message = [str(c.message) for c in caught if "fits their noise" in str(c.message)]
    assert len(message) == 1, [str(c.message) for c in caught]
    if case == "no intercept":
        loo = cross_val_predict(LinearRegression(fit_intercept=False), Xt, yt, cv=LeaveOneOut())
        said = float(re.search(r"predicts left-out rows with R² ([-0-9.e]+) \(exact", message[0]).group(1))
        assert said == pytest.approx(1 - np.sum((yt - loo) ** 2) / np.sum((yt - yt.mean()) ** 2), abs=1e-3)
        assert "StandardScaler(with_mean=False)" in message[0]
    advice = re.search(r"(sklearn\.pipeline\.make_pipeline\(.*?\)\))", message[0]).group(1)
    pipe = eval(advice, {"sklearn": sklearn, "fastgd": fastgd})
    pipe.fit(Xt, yt, **({} if w is None else {"linearregressor__sample_weight": w}))
    assert pipe.score(Xv, yv) > model.score(Xv, yv) + 0.1, (pipe.score(Xv, yv), model.score(Xv, yv))
