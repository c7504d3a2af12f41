"""fastgd.minimize and the worked examples: each example's behaviour is checked, and each plot is drawn."""

import numba
import numpy as np
import pytest

from fastgd import examples, minimize
from fastgd.__main__ import main
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


def test_step_sizes_1d():
    res = examples.step_sizes_1d()
    conv, osc, div = res[0.2], res[0.9], res[1.05]
    assert conv.success and np.all(np.diff(conv.path[:, 0]) < 0) and np.all(conv.path[:, 0] > 0)  # monotone
    signs = np.sign(osc.path[:8, 0])
    assert np.all(signs[1:] == -signs[:-1])  # oscillates around the minimum...
    assert abs(osc.path[-1, 0]) < abs(osc.path[0, 0]) * 0.8 ** 25  # ...and converges (factor -0.8)
    assert not div.success and np.all(np.abs(np.diff(np.abs(div.path[:, 0]))) > 0)
    assert abs(div.path[-1, 0]) > 8.7 * 1.1 ** 25  # diverges (factor -1.1)


def test_step_sizes_2d_and_zigzag():
    res = examples.step_sizes_2d()
    assert np.allclose(res["bowl, step 0.1"].path[1], 0.8 * np.array([8.7, -7.9]))
    assert np.allclose(res["bowl, step 0.9"].path[1], -0.8 * np.array([8.7, -7.9]))  # overshoots every step
    bent = res["elongated, step 0.2"]
    errors = np.linalg.norm(bent.path, axis=1)
    assert bent.fun < 1e-10
    # after the steep direction is gone, the error shrinks by 1 - 0.2 * 0.697 = 0.861 per step
    assert errors[40] / errors[39] == pytest.approx(1 - 0.2 * (2.5 - np.sqrt(2.25 + 1)), rel=1e-6)
    zig = np.diff(res["elongated, step 0.45"].path, axis=0)
    steep = np.array([np.sqrt(2.25 + 1) - 1.5, 1.0])  # eigenvector of the large eigenvalue (4.30)
    along = zig[:20] @ steep
    assert np.all(np.sign(along[1:]) == -np.sign(along[:-1]))  # it crosses the valley back and forth


def test_optimizers_compared():
    res = examples.optimizers_compared()
    gd = res["gradient descent (0.2)"]
    for name, r in res.items():
        assert r.fun < 1e-3, name
    assert res["gradient descent (0.2)"].success
    with_bc, without = res["Adam (0.5)"], res["Adam without bias correction (0.5)"]
    # without bias correction the first steps are (1 - beta1) / sqrt(1 - beta2) ~ 3x larger... and different
    assert not np.allclose(with_bc.path[1], without.path[1])
    assert gd.nit > 0


def test_batch_sizes():
    res = examples.batch_sizes(n=4000, d=8, epochs=6)
    for name in ("batch (all rows)", "stochastic (1 row)", "mini-batch (32 rows)"):
        r = res[name]
        assert len(r["loss"]) == 6 and np.all(np.diff(r["seconds"]) > 0)
        assert r["loss"][-1] < res["optimum"] * 1.05, name
    # per epoch, many small steps beat one big one: after one epoch the full-batch run is far behind
    assert res["mini-batch (32 rows)"]["loss"][0] < res["batch (all rows)"]["loss"][0]
    assert res["stochastic (1 row)"]["updates_per_epoch"] == 4000 and res["batch (all rows)"]["updates_per_epoch"] == 1


def test_stationary_points():
    res = examples.stationary_points()
    on_axis, _ = res["saddle"]["start on the axis"]
    r, kind = on_axis, res["saddle"]["start on the axis"][1]
    assert r.success and np.allclose(r.x, 0, atol=1e-6) and kind[0] == "saddle"  # stuck at the saddle
    off_axis, kind_off = res["saddle"]["start 1e-3 off the axis"]
    assert off_axis.status == 2 and kind_off is None  # escapes (x2 grows without bound along -x2^2)
    minima = {tuple(np.round(run["end"], 3)) for run in res["camel"] if run["kind"] == "minimum"}
    assert len(minima) >= 4  # several different local minima, depending on start and optimizer
    assert any(abs(run["f"] + 1.0316) < 1e-3 for run in res["camel"])  # a global minimum among them
    start0 = [run for run in res["camel"] if run["start"] == (0.0, 0.0) and run["optimizer"] == "gradient descent"]
    assert start0[0]["kind"] == "saddle" or np.allclose(start0[0]["end"], 0)  # GD cannot leave x = 0: grad is 0


@pytest.mark.parametrize("name", sorted(examples.EXAMPLES))
def test_every_example_renders(name, tmp_path, monkeypatch):
    if name == "batch-sizes":  # smaller data for the test; the docs build uses the defaults
        original = examples.batch_sizes
        monkeypatch.setattr(examples, "batch_sizes", lambda: original(n=3000, d=5, epochs=4))
    out = tmp_path / f"{name}.png"
    assert main(["demo", name, "--out", str(out)]) == 0
    assert out.stat().st_size > 5000
