"""fastgd.optimizers.LBFGS against torch.optim.LBFGS's own numbers, without torch: tests/golden/lbfgs.npz.

tests/golden/make_golden_lbfgs.py ran torch's LBFGS full batch on the golden problem (mean squared error of
``nn.Linear``, float64) for both line searches, with torch's defaults and with a variant, and recorded the
parameters, the returned loss and torch's counters after every ``step``. Here the bare ``LBFGS.step`` on a
NumPy closure and a ``LinearRegressor(standardize=False)`` fit (one ``step`` per max_iter) must follow them.
"""

import json
import warnings

import numpy as np
import pytest

from fastgd import LinearRegressor, _engine
from fastgd.optimizers import LBFGS

from _helpers import GOLDEN_DIR, load_golden, problem_digest

# Relative error allowed against torch (round-off only: autograd sums in another order).
TOL = 1e-12
CASES = ["none-default", "none-variant", "wolfe-default", "wolfe-variant", "wolfe-short"]


@pytest.fixture(scope="module")
def golden():
    path = GOLDEN_DIR / "lbfgs.npz"
    assert path.exists(), f"{path.name} is missing: run tests/golden/make_golden_lbfgs.py (needs torch)"
    g = load_golden(path)
    p = load_golden(GOLDEN_DIR / "problem.npz")
    assert g["problem_digest"] == problem_digest(p["X"], p["y"], p["theta0"]), (
        "lbfgs.npz was made for another problem.npz: rerun tests/golden/make_golden_lbfgs.py")
    g["problem"] = p
    return g


def case(g, name):
    return {k[len(name) + 1:]: v for k, v in g.items() if k.startswith(name + "_")}


def rel(a, b):
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


def assert_trajectory(params, c, label):
    errs = np.array([rel(p, q) for p, q in zip(params, c["params"])])
    bad = np.flatnonzero(~(errs <= TOL))
    assert bad.size == 0, (f"{label}: after step {bad[0]} the parameters are off torch's by {errs[bad[0]]:.3g} "
                           f"relative (tolerance {TOL:g}); worst {np.nanmax(errs):.3g}\n"
                           f"fastgd {params[bad[0]]}\ntorch  {c['params'][bad[0]]}")


def mse(X, y):
    n = X.shape[0]

    def fg(x):
        r = X @ x[:-1] + x[-1] - y
        return float(r @ r) / n, (2.0 / n) * np.r_[X.T @ r, r.sum()]

    return fg


@pytest.mark.parametrize("name", [n for n in CASES if n.endswith("default")])
def test_defaults_are_torchs(golden, name):
    """fastgd's LBFGS() has torch's defaults (max_eval None is torch's max_iter * 5 // 4)."""
    c = case(golden, name)
    ours = LBFGS(**c["kwargs"]).get_params()
    ours["max_eval"] = ours["max_iter"] * 5 // 4
    theirs = c["torch_param_group"]
    assert theirs.pop("maximize") is False
    assert ours == theirs


@pytest.mark.parametrize("name", CASES)
def test_step_follows_torch(golden, name):
    c = case(golden, name)
    p = golden["problem"]
    opt = LBFGS(**c["kwargs"]).validate()
    fg = mse(p["X"], p["y"])
    x = p["theta0"].copy()
    state = {}
    params, losses, evals, iters = [x.copy()], [], [], []
    for _ in range(int(golden["steps"])):
        losses.append(opt.step(fg, x, state))
        params.append(x.copy())
        evals.append(state["func_evals"])
        iters.append(state["n_iter"])
    assert_trajectory(params, c, f"LBFGS({json.dumps(c['kwargs'])}).step")
    assert rel(losses, c["loss"]) <= TOL, f"{name}: returned losses {losses} vs torch's {c['loss']}"
    assert evals == c["func_evals"].tolist(), f"{name}: func_evals {evals} vs torch's {c['func_evals']}"
    assert iters == c["n_iter"].tolist(), f"{name}: n_iter {iters} vs torch's {c['n_iter']}"


def test_line_search_keeps_torchs_own_tolerance(golden):
    """torch's strong-Wolfe search zooms into a bracket narrower than the optimizer's tolerance_change (it
    keeps its own 1e-9): one step on 2 cosh(x) from 5, whose first trial overshoots, lands where torch's did."""
    x = np.array([float(golden["cosh_x0"])])
    state = {}
    LBFGS(**golden["cosh_kwargs"]).validate().step(lambda v: (2.0 * np.cosh(v).sum(), 2.0 * np.sinh(v)), x, state)
    assert rel(x[0], golden["cosh_x"]) <= TOL, f"x {x[0]!r}, torch's {golden['cosh_x']!r}"
    assert state["func_evals"] == golden["cosh_func_evals"]


def steps_of_fit(c, max_iter):
    """Steps a fit of ``max_iter`` takes: it also stops after a step that left the parameters where they were
    (torch's tolerances then end every later step at once); a step torch ended early that moved them is
    followed by the next, as in torch's own loop over ``step``."""
    still = np.flatnonzero(np.all(c["params"][1:] == c["params"][:-1], axis=1))
    return min(max_iter, still[0] + 1) if still.size else max_iter


native = pytest.mark.skipif(not _engine.native_available(), reason="fastgd._native is not built")


@pytest.mark.parametrize("backend", ["numba", pytest.param("native", marks=native)])
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("max_iter", [1, 3])
def test_fit_follows_torch(golden, name, max_iter, backend):
    """LinearRegressor(optimizer=LBFGS(...), standardize=False) is torch's run: one step per max_iter, from
    coef_init/intercept_init, loss_curve_ the losses step returned."""
    c = case(golden, name)
    p = golden["problem"]
    model = LinearRegressor(optimizer=LBFGS(**c["kwargs"]), standardize=False, max_iter=max_iter, tol=None,
                            backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        model.fit(p["X"], p["y"], coef_init=p["theta0"][:-1], intercept_init=p["theta0"][-1])
    n = steps_of_fit(c, max_iter)
    assert model.n_iter_ == n
    assert_trajectory([np.r_[model.coef_, model.intercept_]], {"params": c["params"][n:n + 1]},
                      f"LinearRegressor(optimizer=LBFGS({json.dumps(c['kwargs'])}), max_iter={max_iter})")
    assert rel(model.loss_curve_, c["loss"][:n]) <= TOL


def test_golden_file_is_up_to_date_with_the_generator(golden):
    """lbfgs.npz holds the cases make_golden_lbfgs.py would record now, so editing a case without
    regenerating fails."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden_lbfgs", GOLDEN_DIR / "make_golden_lbfgs.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    assert list(make.CASES) == CASES
    recorded = {name: case(golden, name)["kwargs"] for name in CASES}
    assert recorded == make.CASES, "lbfgs.npz was made with other settings: run tests/golden/make_golden_lbfgs.py"
    assert golden["cosh_kwargs"] == make.COSH and float(golden["cosh_x0"]) == make.COSH_X0
    assert int(golden["steps"]) == make.STEPS
