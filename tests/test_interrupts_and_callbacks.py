"""What ends a fit before its own stopping rule: Ctrl-C (a real SIGINT at any point, or one in the evaluation
pass) leaves a consistent model of completed epochs; only True returned by a callback stops."""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastgd
from fastgd import LinearRegressor
from fastgd.datasets import make_regression

from _helpers import interrupt_first_evaluation, linear_data as _data

BACKENDS = ["numba"] + (["native"] if fastgd._engine.native_available() else [])


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = make_regression(60_000, 20, noise=0.3, random_state=2)
    return X, y


@pytest.mark.parametrize("tol", [None, 1e-6])
def test_ctrl_c_in_the_evaluation_pass_keeps_the_completed_epoch(monkeypatch, tol):
    """The epoch's training pass was complete: its model is kept, not the start."""
    X, y, _ = _data(3000, noise=0.1)
    restore = interrupt_first_evaluation(monkeypatch)
    with pytest.warns(UserWarning, match="interrupted"):
        m = LinearRegressor(batch_size=32, tol=tol, random_state=0).fit(X, y)
    restore()
    ref = LinearRegressor(batch_size=32, tol=None, max_iter=m.n_iter_, random_state=0).fit(X, y)
    assert m.n_iter_ >= 1 and m.t_ == ref.t_
    np.testing.assert_array_equal(m.coef_, ref.coef_)
    assert m.score(X, y) > 0.5  # the start scores 0


@pytest.mark.parametrize("said, stops", [(True, True), (np.True_, True), (False, False), (None, False),
                                         ("no", False), (1, False)])
def test_only_true_from_a_callback_stops(said, stops):
    X, y, _ = _data(300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = LinearRegressor(max_iter=3, tol=None, callbacks=lambda info: said).fit(X, y)
    assert m.n_iter_ == (1 if stops else 3)
    told = [w for w in caught if "only True stops" in str(w.message)]
    assert bool(told) == (said is not None and not isinstance(said, (bool, np.bool_)))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the signal may land in a __del__
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("delay", [0.0, 0.004, 0.02, 0.05, 0.12])
def test_a_real_ctrl_c_at_any_point_leaves_a_consistent_model(data, backend, delay):
    """A real SIGINT from a timer thread, at several points of a fit (training, the validation pass, the gtol
    pass): either KeyboardInterrupt outside the training loop, or a model whose predict agrees with coef_, finite,
    with one loss per completed epoch (never a SystemError from Numba)."""
    X, y = data
    LinearRegressor(backend=backend, max_iter=1, tol=None).fit(X[:500], y[:500])  # compile first
    m = LinearRegressor(backend=backend, early_stopping=True, gtol=1e-12, tol=None, max_iter=40, batch_size=256,
                        random_state=0)
    timer = threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, y)
        timer.join()  # a late signal must land here, not in the next test
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass  # it landed outside the training loop (validation, before or after): allowed
    finally:
        while timer.is_alive():
            try:
                timer.join()
            except KeyboardInterrupt:
                pass
    if hasattr(m, "coef_"):
        np.testing.assert_allclose(m.predict(X[:100]), X[:100] @ m.coef_ + m.intercept_, rtol=1e-10, atol=1e-10)
        assert np.all(np.isfinite(m.coef_)) and len(m.loss_curve_) == m.n_iter_


def test_a_ctrl_c_during_a_compile_is_acted_on_when_the_compile_is_done():
    """A KeyboardInterrupt raised inside Numba's compile can leave LLVM's JIT half-updated, and a later compile
    or call then crashes the process: the SIGINT is held until the compile returns, then raised. The function
    is compiled (once) and runs, and the handler in place before is back."""
    import numba
    from numba.extending import overload

    from fastgd._config import compiles_uninterrupted

    def plus_one(x):
        return x + 1

    @overload(plus_one)
    def _plus_one_typing(x):  # runs inside the compile: the signal arrives there
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # Python would run the handler here, inside the compile
        return lambda x: x + 1

    f = compiles_uninterrupted(numba.njit(lambda x: plus_one(x)))
    # Python's own handler, whatever earlier tests (or libraries they loaded) left in place
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            f(1)
        assert len(f.overloads) == 1 and f(2) == 3
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, outer)


def test_an_epoch_converts_its_model_to_the_data_units_once(monkeypatch):
    """The penalty of loss_curve_, the evaluation and the callback read one conversion of the epoch's model (an
    O(k·d) pass each otherwise), and every callback still gets its own copy."""
    from fastgd import _scaling
    X, y, _ = _data(n=600, d=6)
    real, calls, infos = _scaling.Scaling.to_raw, [], []

    def to_raw(self, theta, out=None):
        calls.append(1)
        return real(self, theta) if out is None else real(self, theta, out)

    def callback(info):
        infos.append((len(calls), info))

    monkeypatch.setattr(_scaling.Scaling, "to_raw", to_raw)
    LinearRegressor(max_iter=4, tol=None, penalty="l2", random_state=0, callbacks=callback).fit(X, y)
    assert np.diff([n for n, _ in infos]).tolist() == [1, 1, 1]
    coefs = [info.coef for _, info in infos]
    assert not any(np.shares_memory(a, b) for i, a in enumerate(coefs) for b in coefs[i + 1:])
    assert not np.array_equal(coefs[0], coefs[-1])


def test_to_raw_into_a_buffer_is_to_raw():
    from fastgd._scaling import Scaling
    rng = np.random.default_rng(0)
    sc = Scaling(rng.standard_normal(5), rng.uniform(0.5, 2, 5), rng.standard_normal(2), rng.uniform(0.5, 2, 2))
    theta = rng.standard_normal((2, 6))
    out = np.full_like(theta, np.nan)
    assert sc.to_raw(theta, out) is out
    np.testing.assert_array_equal(out, sc.to_raw(theta))
    np.testing.assert_allclose(sc.to_std(out), theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sparse", [False, True])
def test_ctrl_c_in_the_exact_finish_keeps_the_completed_epochs_model(monkeypatch, sparse):
    """A Ctrl-C in the conjugate-gradient finish (dense) or the strength path (sparse penalty="auto") keeps the
    model the epochs left, with a warning, as a Ctrl-C in the epochs keeps theirs: not an unfitted estimator."""
    import scipy.sparse as sp

    from fastgd import _planning, _select, _training
    rng = np.random.default_rng(0)
    if sparse:
        X = sp.random(600, 300, density=0.03, random_state=0, format="csr")
        y = X @ rng.standard_normal(300) + 0.1 * rng.standard_normal(600)
        target, name = _select, "choose_l2"
    else:
        monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 100)  # the larger data's finish, on small data
        X = rng.standard_normal((3000, 5))
        y = X @ rng.standard_normal(5) + rng.standard_normal(3000)
        target, name = _training, "train_pcg"
    seen = []

    def interrupted(problem, theta_or_ts, *args, **kwargs):
        theta = getattr(theta_or_ts, "theta", theta_or_ts)
        seen.append(theta.copy())
        theta += 1.0  # a half-done step, which must not be kept
        raise KeyboardInterrupt

    stored = []
    real_store = LinearRegressor._store

    def store(self, *args):
        real_store(self, *args)
        stored.append((self.coef_.copy(), self.intercept_))

    monkeypatch.setattr(LinearRegressor, "_store", store)
    monkeypatch.setattr(target, name, interrupted)
    with pytest.warns(UserWarning, match="interrupted during the exact finish"):
        est = LinearRegressor(random_state=0).fit(X, y)
    assert len(seen) == 1 and len(stored) == 1  # the epochs' model, stored once
    assert np.array_equal(est.coef_, stored[0][0]) and est.intercept_ == stored[0][1]
    np.testing.assert_allclose(est._ts.theta, est._scaling.to_std(est._raw_params(1, X.shape[1])), rtol=0, atol=0)
    assert "interrupted" in est.stop_reason_ and est.n_iter_ >= 1
    assert est.score(X, y) > 0.1  # the epochs made progress (sparse: the warm start of two epochs)


def _interrupt_snapshot(monkeypatch, call, poison=False):
    """Make the ``call``-th copy of a state slot by the epochs' snapshots raise KeyboardInterrupt midway (Adam:
    epoch 2 copies its two slots in calls 1 and 2, epoch 3 in 3 and 4; ``poison``: after writing a NaN into the
    slot, as an epoch whose state overflowed)."""
    from fastgd import _training
    real, calls = _training._copy_finite, []

    def copy_finite(dst, src):
        calls.append(1)
        if len(calls) == call:
            if poison:
                src[0] = np.nan
            dst[: src.size // 2] = src[: src.size // 2]
            raise KeyboardInterrupt
        return real(dst, src)

    monkeypatch.setattr(_training, "_copy_finite", copy_finite)
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_while_the_snapshot_is_copied_keeps_the_completed_epoch(monkeypatch, backend):
    """The snapshot's buffers are half overwritten, the epoch (the third) is whole and finite: the fit keeps
    it, as a fit of three epochs would."""
    X, y, _ = _data(3000, noise=0.1)
    calls = _interrupt_snapshot(monkeypatch, 3)
    with pytest.warns(UserWarning, match="interrupted"):
        m = LinearRegressor(batch_size=32, tol=None, max_iter=10, random_state=0, backend=backend).fit(X, y)
    monkeypatch.undo()
    assert len(calls) == 3
    ref = LinearRegressor(batch_size=32, tol=None, max_iter=3, random_state=0, backend=backend).fit(X, y)
    assert m.t_ == ref.t_
    np.testing.assert_array_equal(m.coef_, ref.coef_)
    np.testing.assert_array_equal(m.intercept_, ref.intercept_)


def test_ctrl_c_while_the_snapshot_of_a_non_finite_state_is_copied_reports_divergence(monkeypatch):
    """The epoch's state is checked as the snapshot copies it: a Ctrl-C midway must not keep an epoch whose
    state is not finite (the earlier epoch's snapshot is half overwritten): divergence, the start restored."""
    X, y, _ = _data(3000, noise=0.1)
    _interrupt_snapshot(monkeypatch, 3, poison=True)
    with pytest.raises(ValueError, match="diverged in epoch 3: the weights or the optimizer state"):
        LinearRegressor(batch_size=32, tol=None, max_iter=10, random_state=0).fit(X, y)


def test_the_kept_best_mean_is_the_best_evaluated_epochs_model():
    """The best round's running mean is kept as it is (its buffer handed over, the next round's mean in
    another): the fit returns exactly the model of its best evaluated epoch, not a later one."""
    X, y, _ = _data(2000, noise=0.5)
    seen = []
    m = LinearRegressor(learning_rate=0.05, batch_size=8, tol=1e-12, n_iter_no_change=50, max_iter=12,
                        random_state=0, callbacks=lambda info: seen.append((info.eval_loss, info.coef, info.intercept)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y)
    best = int(np.argmin([s[0] for s in seen]))
    assert 0 < best < len(seen) - 1  # the best epoch is neither the first nor the last
    np.testing.assert_array_equal(m.coef_, seen[best][1][0])
    np.testing.assert_array_equal(m.intercept_, seen[best][2][0])


def _interrupt_epoch(monkeypatch, call, after=False):
    """Make the ``call``-th epoch pass raise KeyboardInterrupt (``after``: once the kernel has updated the model,
    as a signal landing at the end of the compiled pass); returns the list of calls."""
    real, calls = fastgd._engine.Epochs.run, []

    def run(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            if after:
                real(self, *args, **kwargs)
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(fastgd._engine.Epochs, "run", run)
    return calls


def _fitted_state(m):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(m).items()
            if k in ("coef_", "intercept_", "n_iter_", "t_", "loss_curve_", "stop_reason_")}


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("after", [False, True])
def test_ctrl_c_in_the_first_epoch_of_a_refit_keeps_the_previous_model(monkeypatch, sparse, after):
    """No epoch of the refit completed: there is no model of it to keep, so KeyboardInterrupt goes on and the
    previous fit stays whole (never the untrained start)."""
    import scipy.sparse as sp
    X, y, _ = _data(2000, noise=0.1)
    X = sp.csr_matrix(X) if sparse else X
    m = LinearRegressor(random_state=0, max_iter=5, tol=None).fit(X, y)
    before, ts_before = _fitted_state(m), m._ts.theta.copy()
    _interrupt_epoch(monkeypatch, 1, after)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y)
    monkeypatch.undo()
    after_state = _fitted_state(m)
    assert after_state.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after_state[key], value)
    np.testing.assert_array_equal(m._ts.theta, ts_before)
    assert m.score(X, y) > 0.9


def test_ctrl_c_in_the_first_epoch_of_a_first_fit_leaves_it_unfitted(monkeypatch):
    X, y, _ = _data(600)
    _interrupt_epoch(monkeypatch, 1)
    m = LinearRegressor(random_state=0)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y)
    assert not hasattr(m, "coef_")


def test_a_callback_stop_keeps_the_completed_epochs_model():
    """A callback stop between the rounds' evaluations judges its last epoch's model with the evaluated ones
    (as a Ctrl-C there does), not the start, and the only explanation is the callback (no shortfall warning
    blaming tol)."""
    X, y, _ = _data(600, noise=3.0)  # 19 batches of 32: a round is 3 epochs, so epoch 2 ends no round
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = LinearRegressor(random_state=0, callbacks=lambda info: info.epoch >= 2).fit(X, y)
    assert m.n_iter_ == 2 and m.stop_reason_ == "a callback returned True after epoch 2"
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)
                or "tol" in str(w.message)]
    ref = LinearRegressor(random_state=0, max_iter=2, tol=None).fit(X, y)  # the same two epochs, kept as the last
    np.testing.assert_array_equal(m.coef_, ref.coef_)
    assert m.score(X, y) > 0.2  # the start scores 0


@pytest.mark.parametrize("kw", [{}, {"tol": None}, {"early_stopping": True}])
def test_a_callback_stop_before_any_gain_names_the_callback(kw):
    """Epochs from the optimum cannot beat it: a callback stop there keeps the start and says the callback ended
    training (not tol, the rate or the held-out rows)."""
    X, y, _ = _data(600, noise=1.0)
    # seeded: early stopping's held-out rows are drawn, and on some draws one epoch on the other rows does beat
    # the optimum of all rows there
    m = LinearRegressor(optimizer="lbfgs", random_state=0).fit(X, y)
    coef = m.coef_.copy()
    m.set_params(warm_start=True, optimizer="adam", callbacks=lambda info: True, **kw)
    with pytest.warns(ConvergenceWarning) as caught:
        m.fit(X, y)
    assert [str(w.message)[:57] for w in caught] == ["A callback stopped training after 1 epoch(s), before any "]
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-12)


@pytest.mark.parametrize("calls", [1, 2, 3])
def test_a_ctrl_c_while_an_epoch_is_reported_keeps_its_count_and_loss_together(monkeypatch, calls):
    """A Ctrl-C in the per-epoch work after an epoch completed (the model in the data's units for gtol and the
    penalty's value): the epoch was counted before its loss was recorded, so loss_curve_ came out one short of
    n_iter_ (a real SIGINT in CI: 24 losses for 25 epochs). The epoch is kept with its loss."""
    import sys

    from fastgd import _training

    X, y = make_regression(3000, 8, noise=1.0, random_state=0)[:2]
    real = _training.FitData.raw
    seen = []

    def raw(self, theta, out=None):
        if sys._getframe(1).f_code.co_name == "train":  # the epoch loop's call, after an epoch completed
            seen.append(1)
            if len(seen) == calls:
                raise KeyboardInterrupt
        return real(self, theta, out)
    monkeypatch.setattr(_training.FitData, "raw", raw)
    with pytest.warns(UserWarning, match="Training interrupted"):
        m = LinearRegressor(penalty="l2", alpha=1e-3, gtol=1e-12, tol=None, max_iter=20, random_state=0).fit(X, y)
    assert m.n_iter_ >= 1 and len(m.loss_curve_) == m.n_iter_
    assert np.all(np.isfinite(m.loss_curve_)) and np.all(np.isfinite(m.coef_))
