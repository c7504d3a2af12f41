"""The compiled epoch kernel against the plain-NumPy reference (fastgd.reference), trajectory by trajectory."""

import numpy as np
import pytest

from fastgd import _training, schedules
from fastgd import _kernels as K
from fastgd.optimizers import OPTIMIZERS

from _helpers import VARIANTS, problem, reference_train, rel_err

N = 300  # batch sizes below include N and sizes that leave a last partial batch (300 % 7, 300 % 256)
# Both dtypes are held to the float64 tolerance: float32 values convert to float64 exactly and the kernel
# accumulates in float64, so the kernel and the reference do the same float64 arithmetic on the same numbers
# and differ only in summation order (BLAS blocking vs fixed chunks), about 1e-16 per operation.
TOL = 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 7, 256, N])
@pytest.mark.parametrize("variant", ["defaults", "variant"])
def test_trajectory_matches_reference(optimizer_name, dtype, batch_size, variant):
    X, y = problem(n=N, d=5, dtype=dtype)
    kwargs = dict(lr=0.01, **(VARIANTS[optimizer_name] if variant == "variant" else {}))
    opt = OPTIMIZERS[optimizer_name](**kwargs)
    epochs = 3
    ts, losses = _training.train_epochs(X, y, opt, batch_size=batch_size, epochs=epochs, random_state=3)
    theta, ref_losses, ref_state = reference_train(X, y, opt, batch_size=batch_size, epochs=epochs,
                                                   random_state=3, return_state=True)
    assert ts.step == ref_state["step"] == epochs * -(-N // batch_size)
    assert rel_err(ts.theta, theta) < TOL
    np.testing.assert_allclose(losses, ref_losses, rtol=TOL)
    # the optimizer state (moments, accumulators, NAdam's momentum product) follows the reference too
    state = opt.state_dict(ts.state, ts.scalars)
    for i, name in enumerate(opt.slots):  # slots an option leaves unused stay zero on both sides
        assert rel_err(ts.state[i], ref_state[name]) < 1e-10, name
    assert state["mu_product"] == pytest.approx(ref_state["mu_product"], rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multi_output_weights_no_intercept_penalties(optimizer_name, dtype):
    """k = 3 outputs, sample weights (with zeros), no intercept, l1 + l2 penalties, shuffled batches."""
    X, Y = problem(n=200, d=4, k=3, dtype=dtype, seed=1)
    sw = np.random.default_rng(2).integers(0, 4, size=200).astype(np.float64)
    opt = OPTIMIZERS[optimizer_name](lr=0.02, **VARIANTS[optimizer_name])
    kw = dict(batch_size=16, epochs=3, random_state=5, sw=sw, fit_intercept=False, l1=0.05, l2=0.1)
    ts, losses = _training.train_epochs(X, Y, opt, **kw)
    theta, ref_losses = reference_train(X, Y, opt, **kw)
    assert np.all(ts.theta[:, -1] == 0.0)
    assert rel_err(ts.theta, theta) < TOL
    np.testing.assert_allclose(losses, ref_losses, rtol=TOL)


@pytest.mark.parametrize("schedule", [
    schedules.InverseScaling(power_t=0.5), schedules.Exponential(gamma=0.99), schedules.Step(step_size=20, gamma=0.5),
    schedules.Cosine(lr=0.05, T_max=60, eta_min=1e-3), schedules.Warmup(steps=25, then=schedules.Step(step_size=10))])
def test_schedules_match_reference(schedule):
    X, y = problem(n=N, d=5)
    opt = OPTIMIZERS["adam"](lr=0.02)
    lr, sched = schedule.pack(opt.lr)
    opt.set_params(lr=lr)
    ts, _ = _training.train_epochs(X, y, opt, batch_size=7, epochs=3, random_state=1, sched=sched)
    theta, _ = reference_train(X, y, opt, batch_size=7, epochs=3, random_state=1, schedule=schedule)
    assert rel_err(ts.theta, theta) < TOL


def test_adam_without_bias_correction_matches_reference():
    X, y = problem(n=N, d=5)
    opt = OPTIMIZERS["adam"](lr=0.01, **VARIANTS["adam_no_bias_correction"])
    ts, _ = _training.train_epochs(X, y, opt, batch_size=7, epochs=2)
    theta, _ = reference_train(X, y, opt, batch_size=7, epochs=2)
    assert rel_err(ts.theta, theta) < TOL
    with_correction, _ = _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=7, epochs=2)
    assert rel_err(ts.theta, with_correction.theta) > 1e-6


def test_l1_gives_exact_zeros():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 10))
    y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.01 * rng.standard_normal(400)
    ts, _ = _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=32, epochs=40, l1=0.1)
    w = ts.theta[0, :-1]
    assert np.all(w[3:] == 0.0) and np.all(w[:3] != 0.0)


def test_batch_gradient_matches_finite_differences():
    """The kernel's batch gradient against central differences of the objective."""
    from fastgd import reference

    for dtype in (np.float32, np.float64):
        X, Y = problem(n=50, d=4, k=2, dtype=dtype, seed=4)
        sw = np.random.default_rng(1).uniform(0.5, 2.0, size=50)
        theta = np.random.default_rng(2).standard_normal((2, 5))
        for weights in (np.empty(0), sw):
            for parallel in (False, True):
                G, loss = K.batch_gradient(X, Y, weights, theta, 3, 47, parallel)
                f = lambda th: reference.loss(X[3:47], Y[3:47], th, weights[3:47] if weights.size else None)
                num = np.zeros(theta.size)
                h = 1e-6
                for q in range(theta.size):
                    e = np.zeros(theta.size)
                    e[q] = h
                    num[q] = (f(theta + e.reshape(theta.shape)) - f(theta - e.reshape(theta.shape))) / (2 * h)
                assert rel_err(G, num) < 1e-8
                assert loss == pytest.approx(f(theta), rel=1e-12)


@pytest.mark.parametrize("batch_size", [None, 32])
def test_converges_to_least_squares(optimizer_name, batch_size):
    """Every optimizer, from sensible step sizes, reaches the least-squares solution of a well-conditioned
    problem: full-batch runs to 1e-6 of lstsq, mini-batch runs (with a decaying step) to 4e-3."""
    X, y = problem(n=2000, d=8, seed=7, noise=0.5)
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    # AdamW's default decoupled weight decay solves a regularized problem; here it is switched off.
    opt = OPTIMIZERS[optimizer_name](lr=0.5 if optimizer_name in ("adagrad", "adadelta") else 0.2)
    if optimizer_name == "adamw":
        opt.set_params(weight_decay=0.0)
    if batch_size is None:
        sched = np.zeros(K.SCHED_LEN)
        if optimizer_name != "adadelta":  # Adadelta scales its own steps; a shrinking rate stalls it (0.3 off)
            sched[0], sched[2] = K.EXPONENTIAL, 0.995  # a slowly shrinking step lets the adaptive methods settle
        ts, _ = _training.train_epochs(X, y, opt, batch_size=X.shape[0], epochs=3000, sched=sched)
        tol = 1e-6
    else:
        # lr / sqrt(t) decay; Adagrad already decays its steps, so it keeps a constant base rate
        sched = np.zeros(K.SCHED_LEN)
        sched[0], sched[2] = (K.CONSTANT, 0.0) if optimizer_name in ("adagrad", "adadelta") else (K.INVSCALING, 0.5)
        opt.set_params(lr={"adagrad": 0.1, "adamax": 0.1, "adadelta": 0.5}.get(optimizer_name, 0.03))
        ts, _ = _training.train_epochs(X, y, opt, batch_size=batch_size, epochs=60, sched=sched)
        tol = 4e-3  # the statistical floor of 60 epochs of batch-32 steps here is about 1.3e-3
    assert rel_err(ts.theta[0], exact) < tol
