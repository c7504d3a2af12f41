"""The optimizer objects' signatures: torch.optim.SGD's arguments select the same compiled rules."""

import numpy as np
import pytest

import fastgd
from fastgd import _training
from fastgd.optimizers import SGD, Momentum, Nesterov

@pytest.mark.parametrize("backend", ["numba", "native"])
@pytest.mark.parametrize("torch_style, rule", [
    (SGD(lr=0.01, momentum=0.9), Momentum(lr=0.01, momentum=0.9)),
    (SGD(0.01, 0.5, 0.3, 0.1), Momentum(lr=0.01, momentum=0.5, dampening=0.3, weight_decay=0.1)),
    (SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1), Nesterov(lr=0.01, momentum=0.9, weight_decay=0.1)),
])
def test_sgd_with_momentum_is_torchs_momentum_rule(torch_style, rule, backend):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    ts_a, _ = _training.train_epochs(X, y, torch_style, batch_size=8, epochs=3, backend=backend)
    ts_b, _ = _training.train_epochs(X, y, rule, batch_size=8, epochs=3, backend=backend)
    assert np.array_equal(ts_a.theta, ts_b.theta) and np.array_equal(ts_a.state, ts_b.state)
    # the plain-NumPy specification takes the same arguments and agrees
    theta, grad = np.ones(4), np.arange(4.0)
    state_a, state_b = {"step": 1}, {"step": 1}
    ta, tb = theta.copy(), theta.copy()
    torch_style.reference_step()(ta, grad, state_a)
    rule.reference_step()(tb, grad, state_b)
    assert np.array_equal(ta, tb)

def test_sgd_without_momentum_is_plain_sgd_and_estimator_takes_momentum():
    assert SGD().code == SGD.code and SGD().slots == () and SGD(momentum=0.9).code == Momentum.code
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1
    model = fastgd.LinearRegressor(optimizer=SGD(lr=0.01, momentum=0.9), random_state=0).fit(X, y)
    assert model.score(X, y) > 0.999
    # set_params switches the rule (GridSearchCV over optimizer__momentum)
    model.set_params(optimizer__momentum=0.0)
    assert model.optimizer.code == SGD.code

@pytest.mark.parametrize("kwargs, match", [
    (dict(maximize=True), "maximize=True is not supported.*negated function"),
    (dict(nesterov=True), "nesterov=True requires a momentum > 0 and zero dampening"),
    (dict(momentum=0.5, dampening=0.2, nesterov=True), "zero dampening"),
    (dict(momentum=1.0), "momentum"),
])
def test_sgd_torch_arguments_rejected_with_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastgd.LinearRegressor(optimizer=SGD(**kwargs)).fit(np.ones((8, 1)), np.ones(8))


def _fma(a, b, c):
    """a * b + c rounded once (exact rational arithmetic, then one rounding to float64)."""
    from fractions import Fraction
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@pytest.mark.parametrize("rule", [Momentum(lr=0.01, momentum=0.9), Momentum(lr=0.01, momentum=0.9, dampening=0.3),
                                  Nesterov(lr=0.01, momentum=0.9)])
def test_heavy_ball_buffer_is_one_fma_whatever_the_compiled_context(rule):
    """b ← fma(μ, b, (1 − τ)g), bit for bit, in the rule alone (Numba's update) and inside both backends'
    epochs. Written μb + (1 − τ)g, the fastmath flag "contract" let LLVM fuse either product: the momentum
    epoch compiled in the process rounded other than the same epoch loaded from Numba's cache (1e-16 in the
    coefficients, 2e-15 in the buffer after one epoch), and the update alone fused the other product."""
    from fastgd import _engine
    from fastgd import _kernels as K

    rng = np.random.default_rng(0)
    d = 257
    th0, S0, wd = rng.standard_normal(d), rng.standard_normal(d), 0.1
    hp = rule.pack()
    mu, damp = hp[2], (hp[3] if rule.name == "momentum" else 0.0)
    # the rule alone, on a gradient G
    G = rng.standard_normal(d)
    S = S0.copy().reshape(1, d)
    K.update(rule.code, th0.copy(), G, S, np.array([2.0, 1.0]), hp, 0.01, np.empty(0))
    assert np.array_equal(S[0], [_fma(mu, s, (1.0 - damp) * g) for s, g in zip(S0, G)])
    # inside an epoch: X all zeros and no intercept, so the gradient is the weight decay's, wd·θ
    hp[1] = wd
    X, y = np.zeros((8, d)), rng.standard_normal(8)
    for backend in ["numba", "native"] if _engine.native_available() else ["numba"]:
        ts = _engine.TrainingState.fresh(rule, 1, d, theta=np.append(th0, 0.0)[None, :])
        ts.state[0, :d] = S0
        ts.scalars[0] = 3.0
        _engine.run_epoch(X, _engine.targets_2d(y), ts, rule.code, hp, 8, np.zeros(1, dtype=np.int64),
                          fit_intercept=False, backend=backend)
        want = [_fma(mu, s, (1.0 - damp) * (wd * t)) for s, t in zip(S0, th0)]
        assert np.array_equal(ts.state[0, :d], want), backend
