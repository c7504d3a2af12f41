"""The passes over X a default fit makes: the column statistics double as the finiteness check, and the
evaluation of a start with no weights (the usual start) reads only y. Counted by wrapping the kernels."""

import functools

import numpy as np
import pytest

from fastgd import LinearRegressor, _engine, _kernels, _training
from fastgd.optimizers import LBFGS

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

    def penalty(self, raw):
        calls.append(1)
        return real(self, raw)

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
