"""fastgd.minimize next to scipy.optimize.minimize: the same calling convention, the same result fields, the
same answers on textbook functions; and what fun and jac return is checked before it reaches the kernel."""

import importlib
import numbers

import numba
import numpy as np
import pytest
from scipy import optimize as so

from fastgd import examples, minimize
from fastgd.optimizers import LBFGS, Adam, Momentum
from fastgd.schedules import Exponential

fm = importlib.import_module("fastgd.minimize")  # the module (fastgd.minimize is the function)
SCIPY_FIELDS = {"x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message"}
OUR_FIELDS = SCIPY_FIELDS | {"path", "fvals", "optimizer"}


def quadratic(x, A, b):
    return 0.5 * x @ A @ x - b @ x


def quadratic_grad(x, A, b):
    return A @ x - b


def rosen_with_grad(x):
    return so.rosen(x), so.rosen_der(x)


def booth(x):  # minimum 0 at (1, 3)
    return (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2


A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
B = np.array([1.0, -2.0, 0.5])

# name: (fun, x0, scipy/fastgd keyword arguments in common, fastgd's optimizer and rate)
CASES = {
    "quadratic, args": (quadratic, [2.0, -1.0, 4.0], dict(args=(A, B), jac=quadratic_grad), ("sgd", 0.3)),
    "rosenbrock 2-d": (so.rosen, [-1.2, 1.0], dict(jac=so.rosen_der), (Momentum(momentum=0.9), 1e-3)),
    "rosenbrock 5-d, jac=True": (rosen_with_grad, [1.3, 0.7, 0.8, 1.9, 1.2], dict(jac=True), (Adam(), 0.01)),
    "booth, finite differences": (booth, [0.0, 0.0], dict(jac=None), ("sgd", 0.05)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_fields_and_answer_as_scipy(name):
    fun, x0, common, (optimizer, lr) = CASES[name]
    ref = so.minimize(fun, np.array(x0), method="BFGS", **common)
    res = minimize(fun, x0, **common, tol=1e-7, options={"maxiter": 20_000}, optimizer=optimizer,
                   learning_rate=lr)
    assert ref.success and res.success, res.message
    assert SCIPY_FIELDS <= set(ref) and set(res) == OUR_FIELDS
    for key in SCIPY_FIELDS:
        assert kind(res[key]) == kind(ref[key]), key
    assert res.x.shape == ref.x.shape == res.jac.shape
    np.testing.assert_allclose(res.x, ref.x, atol=2e-5)
    assert res.fun == pytest.approx(ref.fun, abs=1e-9)
    assert np.linalg.norm(res.jac) < 1e-7
    assert res.path.shape == (res.nit + 1, len(x0)) and res.fvals.shape == (res.nit + 1,)
    np.testing.assert_array_equal(res.path[-1], res.x)
    assert res.fvals[-1] == res.fun and res.fvals[0] == pytest.approx(ref_fun0(fun, x0, common))


def kind(value):
    for k in ((bool, np.bool_), numbers.Integral, numbers.Real, str, np.ndarray):
        if isinstance(value, k):
            return k
    return type(value)


def ref_fun0(fun, x0, common):
    out = fun(np.array(x0, dtype=float), *common.get("args", ()))
    return out[0] if common.get("jac") is True else out


def test_evaluation_counts():
    """nfev counts every call of fun (finite differences included), njev every gradient, as in SciPy."""
    x0 = [2.0, -1.0, 4.0]
    exact = minimize(quadratic, x0, (A, B), quadratic_grad, max_iter=7, tol=0)
    assert (exact.nit, exact.nfev, exact.njev) == (7, 8, 8)
    central = minimize(quadratic, x0, (A, B), "3-point", max_iter=7, tol=0)
    forward = minimize(quadratic, x0, (A, B), "2-point", max_iter=7, tol=0)
    assert central.nfev == 8 * (1 + 2 * 3) and forward.nfev == 8 * (1 + 3)
    np.testing.assert_allclose(central.x, exact.x, rtol=1e-8)
    np.testing.assert_allclose(forward.x, exact.x, rtol=1e-5)
    both = minimize(lambda x: (quadratic(x, A, B), quadratic_grad(x, A, B)), x0, jac=True, max_iter=7, tol=0)
    np.testing.assert_array_equal(both.x, exact.x)
    assert both.nfev == both.njev == 8


def test_grad_keyword_and_old_positional_form_still_work():
    new = minimize(quadratic, [1.0, 1.0, 1.0], (A, B), jac=quadratic_grad, optimizer="adam", max_iter=30)
    alias = minimize(lambda x: quadratic(x, A, B), [1.0, 1.0, 1.0], grad=lambda x: quadratic_grad(x, A, B),
                     optimizer="adam", max_iter=30)
    with pytest.warns(DeprecationWarning, match="jac=grad"):
        old = minimize(lambda x: quadratic(x, A, B), [1.0, 1.0, 1.0], lambda x: quadratic_grad(x, A, B), "adam",
                       max_iter=30)
    np.testing.assert_array_equal(alias.x, new.x)
    np.testing.assert_array_equal(old.x, new.x)
    with pytest.raises(ValueError, match="give only jac"):
        minimize(booth, [0.0, 0.0], jac=lambda x: x, grad=lambda x: x, optimizer="sgd")


def test_callback_conventions():
    seen = []
    minimize(booth, [0.0, 0.0], callback=lambda xk: seen.append(xk), max_iter=3, learning_rate=0.01)
    assert len(seen) == 3 and all(isinstance(x, np.ndarray) and x.shape == (2,) for x in seen)
    assert not np.array_equal(seen[0], seen[1])  # copies, not one array mutated in place

    def stop_at_2(intermediate_result):
        if intermediate_result.nit == 2:
            raise StopIteration

    res = minimize(booth, [0.0, 0.0], callback=stop_at_2, max_iter=100, learning_rate=0.01)
    assert (res.status, res.nit, res.success) == (3, 2, False)


def test_options_and_disp(capsys):
    res = minimize(booth, [0.0, 0.0], options={"maxiter": 5, "disp": True, "return_all": False})
    assert res.nit == 5 and res.status == 1 and res.path is None and res.fvals.shape == (6,)
    out = capsys.readouterr().out
    assert "Maximum number of iterations" in out and "Iterations: 5" in out
    loose = minimize(booth, [0.0, 0.0], tol=1e-3, options={"gtol": 1e-1, "norm": np.inf}, learning_rate=0.05)
    strict = minimize(booth, [0.0, 0.0], tol=1e-3, learning_rate=0.05)
    assert np.abs(loose.jac).max() < 1e-1 <= np.abs(loose.fvals[0])  # options["gtol"] wins over tol, as in SciPy
    assert strict.nit > loose.nit and np.linalg.norm(strict.jac) < 1e-3


def test_the_path_is_not_recorded_when_it_would_be_huge(monkeypatch):
    monkeypatch.setattr(fm, "_AUTO_PATH_BYTES", 1000)
    assert minimize(booth, [0.0, 0.0], max_iter=100).path is None
    assert minimize(booth, [0.0, 0.0], max_iter=10).path.shape[1] == 2


def test_numpy_scalars_accepted_bools_rejected():
    res = minimize(booth, np.float32(0.0) + np.zeros(2), learning_rate=np.float32(0.05), tol=np.float32(1e-6),
                   max_iter=np.int64(5000), diverge_at=np.float64(1e50))
    assert res.success
    for kwargs, name in [(dict(max_iter=True), "max_iter"), (dict(options={"maxiter": False}), "maxiter"),
                         (dict(learning_rate=True), "learning_rate"), (dict(tol=True), "tol"),
                         (dict(max_iter=2.0), "max_iter"), (dict(learning_rate=np.inf), "learning_rate"),
                         (dict(tol=-1.0), "tol"), (dict(options={"gtol": np.nan}), "gtol"),
                         (dict(options={"disp": 1}), "disp"), (dict(options={"xtol": 1.0}), "xtol"),
                         (dict(options=[("maxiter", 3)]), "options"),
                         (dict(max_iter=3, options={"maxiter": 4}), "max_iter"),
                         (dict(jac="BFGS"), "optimizer="), (dict(callback=3), "callback")]:
        with pytest.raises(ValueError, match=name):
            minimize(booth, [0.0, 0.0], **kwargs)


@pytest.mark.parametrize("n", [1, 5, 1000])
@pytest.mark.parametrize("wrong", [-1, +3])
def test_a_gradient_of_the_wrong_length_is_an_error_naming_jac(n, wrong):
    """A gradient shorter or longer than x is an error naming jac (a short one must never reach the update
    kernel, which would read past its end)."""
    with pytest.raises(ValueError, match=rf"jac must return an array of shape \({n},\).*got shape \({n + wrong},\)"):
        minimize(lambda x: float(x @ x), np.ones(n), jac=lambda x: np.ones(max(n + wrong, 0)), max_iter=3)


@pytest.mark.parametrize("bad_grad, match", [
    (lambda x: np.ones((2, 1)), r"shape \(2,\).*got shape \(2, 1\)"),
    (lambda x: np.ones(2, dtype=complex), "real numbers.*complex"),
    (lambda x: ["a", "b"], "real numbers"),
    (lambda x: np.array([np.nan, 1.0]), r"jac returned non-finite values at x0 \(at indices \[0\]\)"),
    (lambda x: None, "jac must return"),
])
def test_what_jac_returns_is_checked(bad_grad, match):
    with pytest.raises(ValueError, match=match):
        minimize(booth, [0.0, 0.0], jac=bad_grad)


@pytest.mark.parametrize("bad_fun, jac, match", [
    (lambda x: np.array([1.0, 2.0]), None, r"fun must return one real number.*shape \(2,\)"),
    (lambda x: 1j, None, "fun must return one real number.*complex"),
    (lambda x: np.inf, None, "fun returned inf at x0"),
    (lambda x: 1.0, True, r"jac=True, fun must return a pair \(f, gradient\)"),
    (lambda x: (1.0, np.ones(3)), True, r"gradient, jac=True\) must return an array of shape \(2,\)"),
])
def test_what_fun_returns_is_checked(bad_fun, jac, match):
    with pytest.raises(ValueError, match=match):
        minimize(bad_fun, [0.0, 0.0], jac=jac)


def test_x0_and_divergence_messages():
    with pytest.raises(ValueError, match=r"x0 must be a non-empty 1-D array.*shape \(2, 2\).*ravel"):
        minimize(booth, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x0"):
        minimize(booth, [])
    for complex_x0 in ([1j, 0], np.array([1j, 0])):
        with pytest.raises(ValueError, match="x0 must be an array of real numbers"):
            minimize(booth, complex_x0)
    scalar = minimize(lambda x: (x[0] - 2) ** 2, 5.0, jac=lambda x: 2 * (x[0] - 2), learning_rate=0.25)
    assert scalar.success and scalar.x == pytest.approx([2.0])
    # a gradient that becomes NaN after some steps: reported as divergence, naming what went wrong
    res = minimize(lambda x: float(x @ x), [1.0, 2.0], jac=lambda x: 2 * x if x[0] > 0.5 else np.array([np.nan, 0]),
                   learning_rate=0.1, max_iter=50)
    assert res.status == 2 and not res.success
    assert "the gradient returned non-finite values after 4 iterations (at indices [0])" in res.message


def test_a_start_beyond_diverge_at_names_diverge_at_not_the_learning_rate():
    """abs(f(x0)) or ‖x0‖ above diverge_at: no step was taken and no rate helps; the error names the setting,
    the start's value and a value that works."""
    fun = lambda x: float(1e120 * np.sum(np.square(x - 3.0)))  # noqa: E731
    with pytest.raises(ValueError, match=r"diverge_at=1e\+100 is below abs\(fun\(x0\)\) = 2.7e\+121.*set "
                                         r"diverge_at above it \(diverge_at=3e\+127 or math.inf\)"):
        minimize(fun, np.zeros(3), optimizer="adam", learning_rate=1e-12)
    with pytest.raises(ValueError, match=r"options\['diverge_at'\]=10 is below the norm of x0 = 20"):
        minimize(lambda x: float((x[1] - 20.0) ** 2), [0.0, 20.0], options={"diverge_at": 10.0})
    res = minimize(fun, np.zeros(3), optimizer="adam", learning_rate=0.1, options={"diverge_at": 3e127})
    assert res.success and res.x == pytest.approx([3.0, 3.0, 3.0])


@pytest.mark.parametrize("name, value, fix", [
    ("method", "BFGS", "optimizer="), ("bounds", [(0, 1), (0, 1)], "L-BFGS-B"),
    ("constraints", {"type": "eq", "fun": lambda x: x[0]}, "SLSQP"), ("hess", lambda x: np.eye(2), "Newton"),
    ("hessp", lambda x, p: p, "Newton-CG")])
def test_scipy_only_arguments_are_named_with_what_to_use(name, value, fix):
    with pytest.raises(ValueError, match=f"{name}= .*not supported.*{fix}"):
        minimize(lambda x: float(x @ x), [1.0, 2.0], **{name: value})


def test_nan_from_fun_mid_run_is_reported_where_not_as_a_step_size_problem():
    def fun(x):  # defined for x[0] < 0.5 only
        return float(x @ x) if x[0] >= 0.5 else np.nan

    res = minimize(fun, [1.0, 2.0], jac=lambda x: 2 * x, learning_rate=0.1, max_iter=50)
    assert res.status == 2 and not res.success
    assert "fun returned nan after 4 iterations" in res.message and "x = [0.4096, 0.8192]" in res.message
    assert "learning rate" not in res.message


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


@pytest.mark.parametrize("optimizer", ["lbfgs", LBFGS()])
def test_lbfgs_is_refused_with_the_scipy_method_that_runs_it(optimizer):
    """minimize runs the step-by-step optimizers; L-BFGS, by name or as fastgd.optimizers.LBFGS (an object from
    that module, which the generic message would wrongly invite), is named with scipy's method instead."""
    with pytest.raises(ValueError, match=r"full-batch method.*method='L-BFGS-B'"):
        minimize(lambda x: float(x @ x), np.ones(3), jac=lambda x: 2 * x, optimizer=optimizer)
