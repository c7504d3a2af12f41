"""What ends a fit before its own stopping rule: Ctrl-C (a real SIGINT at any point, or one in the evaluation
pass) leaves a consistent model of completed epochs; only True returned by a callback stops."""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

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
