"""The passes over X a default fit makes: the column statistics double as the finiteness check, and the
evaluation of a start with no weights (the usual start) reads only y. Counted by wrapping the kernels."""

import functools
import warnings

import numpy as np
import pytest

from fastgd import LinearRegressor, _engine, _kernels, _scaling, _training, estimator
from fastgd.optimizers import LBFGS, get_optimizer

native = pytest.mark.skipif(not _engine.native_available(), reason="fastgd._native is not built")
BACKENDS = ["numba", pytest.param("native", marks=native)]


def _module(backend):
    if backend == "native":
        from fastgd import _native
        return _native
    return _kernels


def _counting(monkeypatch, backend, names):
    calls = {name: [] for name in names}
    mod = _module(backend)
    for name in names:
        fn = getattr(mod, name)

        @functools.wraps(fn)
        def wrapped(*args, _fn=fn, _name=name, **kwargs):
            calls[_name].append(args)
            return _fn(*args, **kwargs)
        monkeypatch.setattr(mod, name, wrapped)
    return calls


def _data(n=600, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_standardized_fit_checks_finiteness_in_its_statistics_pass(monkeypatch, backend):
    X, y = _data()
    calls = _counting(monkeypatch, backend, ["all_finite"])
    LinearRegressor(backend=backend, max_iter=3, tol=None).fit(X, y)
    assert calls["all_finite"] == []  # the column statistics are the check: one pass over X, not two
    LinearRegressor(backend=backend, max_iter=3, tol=None, standardize=False).fit(X, y)
    assert len(calls["all_finite"]) == 1  # nothing else reads X before training without standardization


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("weights", ["none", "positive", "zero on that row"])
def test_a_non_finite_value_is_still_named_by_scikit_learns_check(backend, value, weights):
    X, y = _data()
    X[17, 2] = value
    sw = {"none": None, "positive": np.full(len(y), 2.0), "zero on that row": np.ones(len(y))}[weights]
    if weights == "zero on that row":
        sw[17] = 0.0  # leaves no trace in the statistics: the separate check must run
    before = X.copy()
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        LinearRegressor(backend=backend, max_iter=2).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(X, before)


def test_huge_finite_values_still_get_the_overflow_advice():
    X, y = _data()
    X[:, 1] *= 1e200  # finite, but the squares overflow
    with pytest.raises(ValueError, match="too large for float64.*divide X by a constant"):
        LinearRegressor(max_iter=2).fit(X, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_start_is_evaluated_without_reading_x(monkeypatch, backend):
    X, y = _data()
    calls = _counting(monkeypatch, backend, ["batches_loss"])
    est = LinearRegressor(backend=backend, max_iter=4, tol=None).fit(X, y)
    # one evaluation per round; the start (the best constant: no weights) needs only y
    assert len(calls["batches_loss"]) == len(est.eval_loss_curve_) >= 2
    calls["batches_loss"].clear()
    est.set_params(warm_start=True).fit(X, y)  # a start with weights is evaluated on X as before
    assert len(calls["batches_loss"]) == len(est.eval_loss_curve_) + 1


@pytest.mark.parametrize("loss,param", [(None, 0.0), ((1, 0.4), 0.4), ((2, 0.3), 0.3), ((3, 0.3), 0.3),
                                        ((4, 0.7), 0.7)])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_constant_models_objective_equals_the_kernels(loss, param, weighted):
    rng = np.random.default_rng(1)
    n, d, k = 203, 4, 2
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k)) * 3.0 + 1.0
    sw = rng.uniform(0.0, 2.0, n) if weighted else None
    problem = _training.FitData(X, Y, sw, 16, _engine.kernels("numba"), "numba", 1, True, 0.0, 0.0, loss=loss)
    theta = np.zeros((k, d + 1))
    theta[:, d] = [0.7, -1.2]
    ids = np.array([0, 3, 5, 12], dtype=np.int64)  # 12: the short last batch
    got, W = problem.objective(theta, ids)
    _, sums, W_kernel = _kernels.batches_stats(X, Y, np.empty(0) if sw is None else sw, theta, 16, ids, 1,
                                               loss=loss)
    assert W == pytest.approx(W_kernel, rel=1e-14)
    assert got == pytest.approx(sums / W_kernel, rel=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lbfgs_evaluates_each_point_once(monkeypatch, backend):
    """With the line search (the default fit's finish) a step starts where the previous one's search ended, and
    the end point is judged after the last step: both evaluated already, so the passes over X are fewer than
    the objective evaluations L-BFGS counts (torch's count, t_)."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 6)) @ np.diag([1, 1, 1, 1, 30, 0.02])  # a few steps to converge
    y = X @ rng.standard_normal(6) + rng.standard_normal(300)
    calls = _counting(monkeypatch, backend, ["batches_stats", "batches_loss"])
    est = LinearRegressor(backend=backend, optimizer=LBFGS(line_search_fn="strong_wolfe"),
                          standardize=False, tol=1e-12).fit(X, y)
    assert est.n_iter_ >= 2
    passes = len(calls["batches_stats"]) + len(calls["batches_loss"])
    assert passes <= est.t_ - (est.n_iter_ - 1)  # t_: L-BFGS's evaluations


def test_an_evaluated_epoch_computes_the_penalty_once(monkeypatch):
    """The penalty of loss_curve_ and of the evaluation (the same model) is one O(k·d) pass per epoch, not two;
    the evaluation's objective is the same number either way."""
    X, y = _data()
    calls = []
    real = _training.FitData.penalty

    def penalty(self, raw, scratch=None):
        calls.append(1)
        return real(self, raw, scratch)

    est = LinearRegressor(penalty="l2", alpha=0.01, max_iter=4, tol=None, random_state=0).fit(X, y)
    monkeypatch.setattr(_training.FitData, "penalty", penalty)
    again = LinearRegressor(penalty="l2", alpha=0.01, max_iter=4, tol=None, random_state=0).fit(X, y)
    assert len(calls) == len(again.loss_curve_) + 1 and len(again.eval_loss_curve_) >= 2  # and the start's
    assert again.eval_loss_curve_ == est.eval_loss_curve_ and again.loss_curve_ == est.loss_curve_


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_finish_that_confirms_its_start_keeps_it_in_two_passes(monkeypatch, backend):
    """The dense finish run again from its own end (the optimum): one pass for the gradient, one iteration's
    pass, a gain of rounding size, and the start kept bit for bit, with no pass to measure the end."""
    from fastgd import _planning
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 5))
    y = X @ rng.standard_normal(5) + rng.standard_normal(3000)
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 100)  # the finish of larger data, on small data
    real = _training.train_pcg
    again = []

    def twice(problem, ts, **kwargs):
        out = real(problem, ts, **kwargs)
        theta = ts.theta.copy()
        calls = _counting(monkeypatch, backend, ["batches_stats", "batches_loss"])
        second = real(problem, ts, **kwargs)
        again.append((len(calls["batches_stats"]) + len(calls["batches_loss"]), second, theta, ts.theta.copy()))
        return out

    monkeypatch.setattr(_training, "train_pcg", twice)
    LinearRegressor(backend=backend, random_state=0).fit(X, y)
    (passes, second, before, after), = again
    assert second.converged and second.n_iter == 1 and passes == 2
    assert np.array_equal(before, after)


def _rows_read(calls, n):
    """Passes over X (rows read / n) of the counted kernel calls: an epoch reads its order's batches, an
    evaluation or a finish's pass its listed batches, the statistics all of X."""
    rows = 0
    for args in calls.get("epoch", []):
        rows += min(len(args[12]) * args[11], n)
    for name in ("batches_stats", "batches_loss"):
        rows += sum(min(len(args[5]) * args[4], n) for args in calls.get(name, []))
    rows += sum(args[0].shape[0] for args in calls.get("column_stats", []) if args[0].shape[1] > 1)
    return rows / n


def _larger_data(monkeypatch, n=24_000, d=10, noise=1.0, seed=4):
    """Noisy data (R² about 0.9) treated as larger data: no exact check, an evaluation set of about 1/8 of the
    rows (as 65,536 of 500,000), so its finish is the noise floor's."""
    from fastgd import _planning
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
    monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal(d) + noise * rng.standard_normal(n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_noisy_epochs_hand_over_to_the_finish_at_their_noise_floor(monkeypatch, backend):
    """When the conjugate-gradient finish follows (the averaged steps' noise floor above tol), the epochs stop
    once their gains show them at that floor (the second round here), not after the tol rule's plateau rounds,
    whose gains are noise: the statistics, two epochs, their evaluations and the finish's three passes (6.25),
    against 10.75 (six epochs) with the plateau rounds. The finish reaches least squares' optimum all the same."""
    X, y = _larger_data(monkeypatch)
    calls = _counting(monkeypatch, backend, ["epoch", "batches_stats", "batches_loss", "column_stats"])
    est = LinearRegressor(backend=backend, random_state=0).fit(X, y)
    assert "noise floor" in est.stop_reason_ and "conjugate gradient" in est.stop_reason_
    assert len(calls["epoch"]) == 2
    assert _rows_read(calls, len(y)) <= 7
    A = np.column_stack([X, np.ones(len(y))])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(est.coef_, exact[:-1], rtol=0, atol=1e-6 * np.abs(exact[:-1]).max())
    r2 = est.score(X, y)
    r2_exact = 1 - np.sum((y - A @ exact) ** 2) / np.sum((y - y.mean()) ** 2)
    assert abs(r2 - r2_exact) < 1e-12


@pytest.mark.parametrize("settings", [dict(noise=0.0), dict(learning_rate=0.01), dict(standardize=False),
                                      dict(tol=None, max_iter=8)])
def test_without_a_noisy_finish_the_epochs_keep_their_rules(monkeypatch, settings):
    """No handover where no finish follows: clean data (a noise floor below tol), a rate or standardization the
    user chose, tol=None; the epochs then stop by their own rules, as before."""
    X, y = _larger_data(monkeypatch, noise=settings.pop("noise", 1.0))
    est = LinearRegressor(random_state=0, **settings).fit(X, y)
    assert "noise floor" not in est.stop_reason_ and "conjugate gradient" not in est.stop_reason_


def test_the_handover_needs_two_rounds_and_a_finish(monkeypatch):
    """The rule itself: the first round's gain (over the start) never hands over; a gain that shrank by a large
    ratio (its extrapolation below the floor), or none, does, when a floor is given; without one, never."""
    X, y = _larger_data(monkeypatch)
    problem = _training.FitData(X, y[:, None], None, 256, _engine.kernels("numba"), "numba", 1, True, 0.0, 0.0)
    ts = _engine.TrainingState.fresh(get_optimizer("adam"), 1, X.shape[1])
    ids = np.arange(problem.n_batches, dtype=np.int64)

    def rules(handover):
        settings = _training.Settings(get_optimizer("adam"), 0.01, None, True, True, 10, tol=1e-6,
                                      handover=handover)
        out = _training.Outcome()
        return _training._StoppingRules(problem, ts, settings, out, ids, True, True, 1, ts.theta), out.start_eval

    r, f0 = rules(lambda f: 1e-3 * f)
    assert not r._hand_over(0.5 * f0)  # the first round: its gain is over the start
    assert not r._hand_over(0.4 * f0)  # shrank by 5x only: 0.02·f0 extrapolated, above the floor
    assert r._hand_over(0.4 * f0 - 1e-6 * f0)  # shrank by 1e5
    r, f0 = rules(lambda f: 1e-3 * f)
    r._hand_over(0.5 * f0)
    assert r._hand_over(0.5 * f0 + 1e-3 * f0)  # a rise: the epochs are at their floor
    r, f0 = rules(None)
    r._hand_over(0.5 * f0)
    assert not r._hand_over(0.5 * f0 + 1e-3 * f0)


def _ill_conditioned(kind, n=24_000, d=10, noise=0.1, seed=0):
    """High-R² data whose columns are ill-conditioned: singular values log-spaced from 1 to 1e-3 in random
    directions ("spectrum"), or one factor shared by all columns plus a near-duplicate column pair
    ("correlated"). The averaged steps' noise floor estimate, f·(d + 1)/n, is far below tol there."""
    rng = np.random.default_rng(seed)
    if kind == "spectrum":
        V = np.linalg.qr(rng.standard_normal((d, d)))[0]
        X = (rng.standard_normal((n, d)) * np.logspace(0, -3, d)) @ V.T
        w = 30 * rng.standard_normal(d)
    else:
        X = rng.standard_normal((n, d)) + 3.0 * rng.standard_normal((n, 1))
        X[:, 1] = X[:, 0] + 0.01 * rng.standard_normal(n)
        w = rng.standard_normal(d)
    return X, X @ w + noise * rng.standard_normal(n)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind,n,d,noise,seed,dtype", [
    ("spectrum", 24_000, 10, 0.1, 0, np.float64), ("correlated", 24_000, 20, 0.1, 0, np.float64),
    ("spectrum", 24_000, 10, 0.1, 0, np.float32), ("correlated", 60_000, 20, 0.1, 1, np.float64)])
def test_ill_conditioned_high_r2_data_is_finished_to_least_squares(monkeypatch, backend, kind, n, d, noise, seed,
                                                                   dtype):
    """On ill-conditioned columns the epochs stop on gains below tol (slowly shrinking, or noise at a plateau
    twice the floor estimate) short of least squares, while the floor estimate calls for no finish; a sample of
    rows measures the columns ill-conditioned, so the finish runs, and without its quick exit after a first small
    gain (whose one-iteration spread of 1 says nothing: the excess lies along small curvatures, which the
    gradient hardly shows), so it reaches the optimum (before: R² 1.5e-6 to 3e-5 short, coefficients 0.3 to 0.4
    away relative, silent; with the finish but its quick exit, the last case stayed 0.34 away)."""
    from fastgd import _planning
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
    monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    X, y = _ill_conditioned(kind, n=n, d=d, noise=noise, seed=seed)
    X = X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(backend=backend, random_state=0).fit(X, y)
    assert "conjugate gradient" in est.stop_reason_
    A = np.column_stack([X.astype(np.float64), np.ones(len(y))])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    r2_exact = 1 - np.sum((y - A @ exact) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2_exact - est.score(X, y) < 1e-9  # tol=1e-6 of var(y) is 1e-6 of R²
    assert np.linalg.norm(est.coef_ - exact[:-1]) < 1e-4 * np.linalg.norm(exact[:-1])


@pytest.mark.parametrize("small", [True, False])
def test_coefficients_of_near_duplicate_columns_reach_least_squares_when_the_objective_is_within_tol(monkeypatch,
                                                                                                     small):
    """Column 1 = column 0 + 1e-3·noise, R² 0.99999: the objective was within tol of var(y) of the optimum (an
    excess of 2e-8 of it), yet the coefficients stopped 0.3-0.8 from least squares, where their standard error is
    0.05-0.14, silently. Under the default tol the finish now also runs on small data whose excess is more than a
    tenth of the optimum's statistical precision (best·(d + 1)/n), and on larger data whose conditioning sample
    measured the columns ill-conditioned, whatever the objective."""
    from fastgd import _planning
    n, d = (5000, 2) if small else (24_000, 10)
    if not small:
        monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
        monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    X[:, 1] = X[:, 0] + 1e-3 * rng.standard_normal(n)
    y = X @ np.arange(1.0, d + 1) + 0.01 * rng.standard_normal(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(backend="numba", random_state=0).fit(X, y)
    A = np.column_stack([X, np.ones(n)])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    assert np.abs(est.coef_ - exact[:-1]).max() < 0.02  # standard error of the pair's contrast: 0.09 / 0.05
    # a tol the user chose bounds the excess as before
    loose = LinearRegressor(backend="numba", random_state=0, tol=1e-5).fit(X, y)
    assert "conjugate gradient" not in loose.stop_reason_


@pytest.mark.parametrize("n, outputs", [(3000, 1), (50_000, 2)])
def test_the_finish_of_near_duplicate_columns_does_not_stop_at_its_first_small_gain(n, outputs):
    """Column 1 = column 0 + 7e-4·noise, d = 10. The conjugate-gradient finish ran but stopped after one or two
    iterations on a small gain (the curvature spread of those iterations, 2.1, looked clear) where no row sample had
    been measured: small data's exact check takes none, and on larger data ``_noise_floor`` stops at its first
    reason (a second, unexplained output: the floor above tol). Output 0 was left 0.6 from least squares (2.3
    standard errors) at n = 3,000 and 0.99 (15 standard errors) at 50,000 with 2 outputs, silently, where the same
    output alone at 50,000 was finished to 1e-13. The finish now measures the sample itself."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 10))
    X[:, 1] = X[:, 0] + 7e-4 * rng.normal(size=n)
    y = X @ rng.normal(size=10) + 0.01 * rng.normal(size=n) + 2
    Y = y if outputs == 1 else np.c_[y, y[::-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LinearRegressor(random_state=0).fit(X, Y)
    A = np.column_stack([X, np.ones(n)])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    coef = est.coef_ if outputs == 1 else est.coef_[0]
    assert np.abs(coef - exact[:-1]).max() < 0.02  # the pair's standard error: 0.26 / 0.06


def test_the_finish_of_full_dummy_sets_keeps_its_quick_exit():
    """Dense one-hot, 10 full dummy sets of 4 beside the intercept (exactly collinear), 100,000 rows, noise 1: the
    finish's own row sample is singular to rounding, which is no reason to drop its quick exit (its flat
    directions change no prediction): 4 passes as before, not 13 (R² gap 5e-12 either way)."""
    rng = np.random.default_rng(0)
    n = 100_000
    c = rng.integers(0, 4, size=(n, 10))
    X = np.zeros((n, 40))
    X[np.arange(n)[:, None], c + 4 * np.arange(10)] = 1.0
    y = X @ rng.normal(size=40) + rng.normal(size=n)
    est = LinearRegressor(random_state=0).fit(X, y)
    assert est.n_iter_ < 8


@pytest.mark.parametrize("lowest", [1.0, 0.2])
def test_well_conditioned_high_r2_data_keeps_its_epochs(monkeypatch, lowest):
    """Where a sample of rows shows columns well-conditioned for the epochs' steps (singular values down to
    ``lowest``), the averaged steps stop within their noise floor estimate, far below tol: no finish (its
    passes would be wasted), and the fit within tol of least squares all the same."""
    from fastgd import _planning
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
    monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    rng = np.random.default_rng(0)
    n, d = 24_000, 10
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    X = (rng.standard_normal((n, d)) * np.logspace(0, np.log10(lowest), d)) @ V.T
    y = X @ (30 * rng.standard_normal(d)) + 0.3 * rng.standard_normal(n)
    calls = _counting(monkeypatch, "numba", ["epoch", "batches_stats", "batches_loss", "column_stats"])
    spreads = []
    real = estimator._sampled_spread
    monkeypatch.setattr(estimator, "_sampled_spread", lambda problem: spreads.append(real(problem)) or spreads[-1])
    est = LinearRegressor(backend="numba", random_state=0).fit(X, y)
    assert est.eval_loss_curve_[-1] > est.tol * np.var(y)  # the objective alone proves nothing
    assert spreads and spreads[0] < 100  # measured (4·11 rows: up to 9 times the columns' own spread)
    assert "conjugate gradient" not in est.stop_reason_
    assert _rows_read(calls, n) < 7
    A = np.column_stack([X, np.ones(n)])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    r2_exact = 1 - np.sum((y - A @ exact) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2_exact - est.score(X, y) < 0.01 * est.tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_well_conditioned_epochs_stop_after_one_round_that_settled(monkeypatch, backend):
    """On columns a sample of rows measures close to independent ones, a round that gains less than tol and at
    most half the round before ends the epochs (the excess left is below its gain): one epoch and its evaluation
    fewer than the tol rule's second plateau round (1e6 x 100: 4 -> 3 epochs), and the fit within tol of least squares
    all the same."""
    from fastgd import _planning
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
    monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    rng = np.random.default_rng(3)
    n, d = 24_000, 10
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.01 * rng.standard_normal(n)
    A = np.column_stack([X, np.ones(n)])
    r2_exact = 1 - np.sum((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2) / np.sum((y - y.mean()) ** 2)
    epochs = []
    for ratio in (_training.SETTLED_RATIO, 0.0):  # 0: no round counts as settled (the tol rule's rounds)
        monkeypatch.setattr(_training, "SETTLED_RATIO", ratio)
        calls = _counting(monkeypatch, backend, ["epoch", "batches_stats", "batches_loss", "column_stats"])
        est = LinearRegressor(backend=backend, random_state=0).fit(X, y)
        assert ("well-conditioned" in est.stop_reason_) == (ratio > 0), est.stop_reason_
        assert r2_exact - est.score(X, y) < 0.01 * est.tol
        epochs.append(len(calls["epoch"]))
        monkeypatch.undo()
        monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
        monkeypatch.setattr(_training, "EVAL_ROWS", 3000)
    assert epochs[0] == epochs[1] - 1, epochs
    est = LinearRegressor(backend=backend, random_state=0, n_iter_no_change=3).fit(X, y)  # the user's patience
    assert "well-conditioned" not in est.stop_reason_ and "in 3 rounds" in est.stop_reason_


def test_rows_of_huge_leverage_keep_the_tol_rules_rounds(monkeypatch):
    """Two rows holding 3,000 times the others' values in two columns, which the sample of rows misses (the red
    team's 500,000 x 20: one settled round stopped 2.8e-4 to 1.4e-3 of R² short, against 1.2e-7 to 1.8e-6 with
    two rounds): the columns' scales are those rows', so the sample's spread is far from independent columns'
    and the settled round does not apply."""
    from fastgd import _planning
    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 1000)
    rng = np.random.default_rng(0)
    n, d = 200_000, 10
    X = rng.standard_normal((n, d))
    X[np.ix_([1234, 140321], [0, 1])] *= 3000
    y = X @ (rng.uniform(1, 2, d) / X.std(axis=0)) + 3.0
    y += 1e-3 * y.std() * rng.standard_normal(n)
    spreads = []
    real = estimator._sampled_spread
    monkeypatch.setattr(estimator, "_sampled_spread", lambda problem: spreads.append(real(problem)) or spreads[-1])
    est = LinearRegressor(random_state=0).fit(X, y)
    assert spreads and spreads[0] > 30 and "well-conditioned" not in est.stop_reason_, (spreads, est.stop_reason_)


def test_the_conditioning_sample_reads_a_few_rows_or_none(monkeypatch):
    """The sample is FLOOR_SAMPLE_ROWS·(d + 1) rows; where its Gram matrix would cost more products than a pass
    over X reads values, nothing is measured (None: the columns count as not measured well-conditioned, and the
    finish keeps its quick exit); a constant column has no curvature to measure."""
    rng = np.random.default_rng(0)

    def problem(n, d):
        X = rng.standard_normal((n, d))
        X[:, -1] = 3.0  # constant
        Y, kern = X[:, :1].copy(), _engine.kernels("numba")
        return _training.FitData(X, Y, None, 256, kern, "numba", 1, True, 0.0, 0.0,
                                 scaling=_scaling.Scaling.from_data(kern, X, Y, None, True))
    wide = problem(4 * 11 * 10 - 1, 10)
    assert estimator._sampled_spread(wide) is None and not estimator._well_conditioned(wide)
    assert not estimator._measured_ill(wide)
    tall = problem(4 * 11 * 10, 10)
    spread = estimator._sampled_spread(tall)
    assert 1.0 < spread < 100 and estimator._well_conditioned(tall) and not estimator._measured_ill(tall)
    tall.Xk[:, 1] = tall.Xk[:, 0]  # a duplicate column, after the sample was measured: measured once per problem
    assert estimator._sampled_spread(tall) == spread
    rare = problem(4 * 11 * 10, 10)
    rare.Xk[:, 5:9] = 0.0  # four rare one-hot levels, each on a few rows the evenly spaced sample misses
    rare.Xk[[3, 50, 77, 101], [5, 6, 7, 8]] = 1.0
    rare.scaling = _scaling.Scaling.from_data(rare.kern, rare.Xk, rare.Y, None, True)
    assert estimator._well_conditioned(rare), estimator._sampled_spread(rare)  # measured on the columns that vary
