"""fastgd against torch.optim's own numbers, without torch: the golden trajectories in tests/golden/.

tests/golden/make_golden.py trained a 200 x 5 linear regression with torch.optim (every optimizer of
fastgd.optimizers.OPTIMIZERS, with its defaults and with the non-default variant of tests/_helpers.py) and
recorded the parameters after every one of 51 mini-batch steps and the optimizer state at the end. Here the
same run goes through fastgd's compiled kernels (Numba and native, sequential and parallel gradient paths,
via fastgd._engine) and through fastgd.reference, and every step must agree with torch to a relative error of
TOL. Regenerate the files with that script when a default or a variant changes.
"""

import json

import numba
import numpy as np
import pytest

from fastgd import _engine, _kernels, reference, _training
from fastgd.optimizers import OPTIMIZERS

from _helpers import GOLDEN_DIR, golden_name, load_golden, load_make_golden, problem_digest

# Relative error allowed against torch (round-off: autograd and fastgd sum in different orders). Measured worst
# over all files and steps: parameters 5.4e-16 (Numba), 3.9e-16 (native), 4.0e-16 (reference); final state
# 2.4e-14 (Adamax's exp_avg near the optimum, where the gradient is a difference of larger numbers).
TOL = 1e-12

CASES = [(name, variant) for name in sorted(OPTIMIZERS) for variant in ("default", "variant")]

native = pytest.mark.skipif(not _engine.native_available(), reason="fastgd._native is not built")
# (backend, n_threads, gradient path): the parallel path splits a 72-row batch into two chunks.
TWO = min(2, numba.config.NUMBA_NUM_THREADS)
ENGINES = {
    "numba": ("numba", 1, _kernels.PATH_SEQUENTIAL),
    "numba-parallel": ("numba", TWO, _kernels.PATH_PARALLEL),
    "native": ("native", 1, _kernels.PATH_SEQUENTIAL),
    "native-parallel": ("native", TWO, _kernels.PATH_PARALLEL),
}


@pytest.fixture(scope="module")
def problem():
    p = load_golden(GOLDEN_DIR / "problem.npz")
    p["Y"] = _engine.targets_2d(p["y"])
    return p


def golden(name, variant, problem):
    path = GOLDEN_DIR / golden_name(name, variant)
    assert path.exists(), f"{path.name} is missing: run tests/golden/make_golden.py (needs torch)"
    g = load_golden(path)
    assert g["problem_digest"] == problem_digest(problem["X"], problem["y"], problem["theta0"]), (
        f"{path.name} was made for another problem.npz: rerun tests/golden/make_golden.py")
    np.testing.assert_array_equal(g["batch"], problem["orders"].reshape(-1))
    return g


def optimizer_of(g):
    kwargs = dict(g["fastgd_kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return OPTIMIZERS[g["optimizer"]](**kwargs).validate()


def rel(a, b):
    """Relative error of ``a`` against torch's ``b`` (max norm, scaled by b's largest entry)."""
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


def assert_trajectory(params, g, label):
    """Every step's parameters within TOL of torch's; the message names the first step that is not."""
    assert params.shape == g["params"].shape, label
    errs = np.array([rel(p, q) for p, q in zip(params, g["params"])])
    bad = np.flatnonzero(~(errs <= TOL))
    assert bad.size == 0, (
        f"{label}: step {bad[0]} of {len(errs) - 1} (batch {g['batch'][max(bad[0] - 1, 0)]}) is off torch's by "
        f"{errs[bad[0]]:.3g} relative (tolerance {TOL:g}); worst {np.nanmax(errs):.3g}\n"
        f"fastgd {params[bad[0]]}\ntorch  {g['params'][bad[0]]}")


def assert_state(slots, step, mu_product, g, label):
    """The optimizer state at the end: every slot torch keeps (same names), the step count, NAdam's mu product."""
    torch_slots = {k[len("state_"):]: v for k, v in g.items() if k.startswith("state_")}
    for key, value in torch_slots.items():
        assert key in slots, f"{label}: torch keeps state {key!r}, fastgd has slots {sorted(slots)}"
        assert rel(slots[key], value) <= TOL, f"{label}: state {key!r} differs: {slots[key]} vs torch {value}"
    assert step == len(g["batch"]), f"{label}: step count {step}, expected {len(g['batch'])}"
    if "step" in g:
        assert step == g["step"]
    if "mu_product" in g:
        assert rel(mu_product, g["mu_product"]) <= TOL, f"{label}: mu_product {mu_product} vs {g['mu_product']}"


def check_kernels(name, variant, problem, engine):
    """One call of _engine.run_epoch per step (an order of one batch), so every step's parameters are seen."""
    backend, n_threads, path = ENGINES[engine]
    g = golden(name, variant, problem)
    opt = optimizer_of(g)
    X, Y, B = problem["X"], problem["Y"], int(problem["batch_size"])
    ts = _engine.TrainingState.fresh(opt, 1, X.shape[1], theta=problem["theta0"][None, :].copy())
    hp = opt.pack()
    params, losses = [ts.theta.reshape(-1).copy()], []
    for b in g["batch"]:
        loss, finite = _engine.run_epoch(X, Y, ts, opt.code, hp, B, np.array([b], dtype=np.int64),
                                         n_threads=n_threads, path=path, backend=backend)
        assert finite
        params.append(ts.theta.reshape(-1).copy())
        losses.append(loss)
    label = f"{golden_name(name, variant)} {engine}"
    assert_trajectory(np.array(params), g, label)
    assert rel(losses, g["loss"]) <= TOL, f"{label}: batch losses differ from torch's"
    slots = opt.state_dict(ts.state, ts.scalars)
    assert_state(slots, slots["step"], ts.scalars[1], g, label)


@pytest.mark.parametrize("name, variant", CASES)
@pytest.mark.parametrize("engine", ["numba", "numba-parallel"])
def test_numba_kernels_follow_torch_step_by_step(name, variant, problem, engine):
    check_kernels(name, variant, problem, engine)


@native
@pytest.mark.parametrize("name, variant", CASES)
@pytest.mark.parametrize("engine", ["native", "native-parallel"])
def test_native_kernels_follow_torch_step_by_step(name, variant, problem, engine):
    check_kernels(name, variant, problem, engine)


@pytest.mark.parametrize("name, variant", CASES)
def test_reference_follows_torch_step_by_step(name, variant, problem):
    g = golden(name, variant, problem)
    opt = optimizer_of(g)
    X, Y, B = problem["X"], problem["Y"], int(problem["batch_size"])
    theta = problem["theta0"][None, :].copy()
    state = opt.state_dict(*opt.init_state(theta.size))
    step = opt.reference_step()
    params, losses = [theta.reshape(-1).copy()], []
    for b in g["batch"]:
        losses.append(reference.epoch(X, Y, theta, state, step, B, [b]))
        params.append(theta.reshape(-1).copy())
    label = f"{golden_name(name, variant)} reference"
    assert_trajectory(np.array(params), g, label)
    assert rel(losses, g["loss"]) <= TOL, f"{label}: batch losses differ from torch's"
    assert_state(state, state["step"], state["mu_product"], g, label)


@pytest.mark.parametrize("backend", ["numba", pytest.param("native", marks=native)])
@pytest.mark.parametrize("name, variant", CASES)
def test_train_matches_torch_epoch_by_epoch(name, variant, problem, backend):
    """_training.train_epochs (the one loop) (whole epochs, its own shuffling with the recorded seed) lands on torch's
    parameters at the end and reports torch's mean loss for each epoch."""
    g = golden(name, variant, problem)
    opt = optimizer_of(g)
    X, B, epochs = problem["X"], int(problem["batch_size"]), int(problem["epochs"])
    rng = np.random.default_rng(int(problem["seed"]))
    orders = [_engine.batch_order(X.shape[0], B, True, rng) for _ in range(epochs)]
    np.testing.assert_array_equal(
        orders, problem["orders"],
        err_msg="fastgd's batch shuffling changed: rerun tests/golden/make_golden.py to record the new orders")
    ts = _engine.TrainingState.fresh(opt, 1, X.shape[1], theta=problem["theta0"][None, :].copy())
    ts, losses = _training.train_epochs(X, problem["y"], opt, batch_size=B, epochs=epochs, shuffle=True,
                               random_state=int(problem["seed"]), ts=ts, backend=backend)
    nb = problem["orders"].shape[1]
    assert rel(ts.theta.reshape(-1), g["params"][-1]) <= TOL
    rows = np.minimum((problem["orders"] + 1) * B, X.shape[0]) - problem["orders"] * B  # rows of each batch
    torch_epoch_loss = (g["loss"].reshape(epochs, nb) * rows).sum(axis=1) / rows.sum(axis=1)
    assert rel(losses, torch_epoch_loss) <= TOL


def test_every_optimizer_has_golden_files():
    """A new optimizer (or a lost file) is noticed: every registry entry has both golden trajectories."""
    missing = [golden_name(n, v) for n, v in CASES if not (GOLDEN_DIR / golden_name(n, v)).exists()]
    assert not missing, f"missing golden files {missing}: run tests/golden/make_golden.py (needs torch)"
    total = sum(p.stat().st_size for p in GOLDEN_DIR.glob("*.npz"))
    assert total < 500_000, f"tests/golden/*.npz take {total} bytes; keep them small"


def test_golden_files_are_up_to_date_with_the_variants():
    """The files were made for today's settings: each file's fastgd arguments are what make_golden.py would
    use now (it takes the variants from tests/_helpers.py), so editing a variant without regenerating fails."""
    make_golden = load_make_golden()
    stale = {}
    for name, variant in CASES:
        recorded = load_golden(GOLDEN_DIR / golden_name(name, variant))["fastgd_kwargs"]
        wanted = json.loads(json.dumps(make_golden.fastgd_kwargs(name, variant)))  # tuples as lists, like the file
        if recorded != wanted:
            stale[golden_name(name, variant)] = (recorded, wanted)
    assert not stale, f"golden files made with other settings (file, now): {stale}; run tests/golden/make_golden.py"
