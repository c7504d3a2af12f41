"""fastgd.minimize and the worked examples: each example's behaviour is checked, and each plot is drawn."""

import numba
import numpy as np
import pytest

from fastgd import examples, minimize
from fastgd.optimizers import Adam, Momentum
from fastgd.schedules import Exponential


def test_minimize_result_fields_and_gradient_rule():
    res = minimize(examples.bowl, [3.0, -4.0], jac=examples.bowl_grad, optimizer="sgd", learning_rate=0.1, tol=1e-8)
    assert res.success and res.status == 0 and np.linalg.norm(res.jac) < 1e-8
    assert np.allclose(res.x, 0, atol=1e-8) and res.fun == pytest.approx(0, abs=1e-15)
    assert res.path.shape == (res.nit + 1, 2) and res.fvals.shape == (res.nit + 1,)
    assert np.array_equal(res.path[0], [3.0, -4.0])
    # plain gradient descent: x ← (1 − 2γ)x exactly
    assert np.allclose(res.path[1], 0.8 * np.array([3.0, -4.0]))


def test_minimize_uses_the_registry_update_rules():
    """minimize with Adam takes exactly the steps of fastgd.reference.adam."""
    opt = Adam(lr=0.1, amsgrad=True)
    res = minimize(examples.elongated, [1.0, 2.0], jac=examples.elongated_grad, optimizer=opt, max_iter=20, tol=0)
    x = np.array([1.0, 2.0])
    state = opt.state_dict(*opt.init_state(2))
    step = opt.reference_step()
    for _ in range(20):
        state["step"] += 1
        step(x, examples.elongated_grad(x), state)
    np.testing.assert_allclose(res.x, x, rtol=1e-14)


def test_numerical_gradient_when_no_grad_is_given():
    exact = minimize(examples.six_hump_camel, [1.0, 0.5], jac=examples.six_hump_camel_grad, optimizer="sgd",
                     learning_rate=0.02, max_iter=200)
    numeric = minimize(examples.six_hump_camel, [1.0, 0.5], jac=None, optimizer="sgd", learning_rate=0.02,
                       max_iter=200)
    np.testing.assert_allclose(numeric.x, exact.x, atol=1e-7)
    assert numeric.nfev == exact.nfev + 4 * numeric.njev  # 2 evaluations per coordinate per gradient


def test_numba_jitted_callables():
    f = numba.njit(lambda x: (x[0] - 1.0) ** 2 + 10 * (x[1] + 2.0) ** 2)
    g = numba.njit(lambda x: np.array([2 * (x[0] - 1.0), 20 * (x[1] + 2.0)]))
    res = minimize(f, [0.0, 0.0], jac=g, optimizer=Momentum(momentum=0.5), learning_rate=0.02, max_iter=2000,
                   tol=1e-9)
    assert res.success and np.allclose(res.x, [1.0, -2.0], atol=1e-8)


def test_schedule_callback_and_divergence():
    stops = []

    def callback(intermediate_result):  # SciPy's convention: this parameter name gets an OptimizeResult
        stops.append(intermediate_result.nit)
        return intermediate_result.nit == 5

    res = minimize(examples.bowl, [1.0, 1.0], jac=examples.bowl_grad, optimizer="sgd",
                   learning_rate=Exponential(lr=0.1, gamma=0.5), max_iter=100, callback=callback)
    assert res.status == 3 and res.nit == 5 and stops == [1, 2, 3, 4, 5]
    assert res.path[2][0] == pytest.approx(0.8 * (1 - 2 * 0.05))  # second step used 0.1 * 0.5
    bad = minimize(examples.parabola, [1.0], jac=examples.parabola_grad, optimizer="sgd", learning_rate=3.0,
                   max_iter=1000)
    assert not bad.success and bad.status == 2 and "Diverged" in bad.message
    with pytest.raises(ValueError, match="learning_rate"):
        minimize(examples.bowl, [1.0, 1.0], learning_rate=-1.0)
    with pytest.raises(ValueError, match="x0"):
        minimize(examples.bowl, [np.nan, 1.0])
