import numpy as np
import pytest

from fastgd import _engine, reference
from fastgd.optimizers import OPTIMIZERS

# Non-default settings that exercise every branch of each optimizer's update: each registry entry's own
# ``variant`` (each also checked against torch.optim in test_torch_parity.py when torch is installed, and in
# the golden trajectories), plus fastgd's extension Adam(bias_correction=False).
_no_variant = [name for name, cls in OPTIMIZERS.items() if not cls.__dict__.get("variant")]
assert not _no_variant, f"registry entries {_no_variant} declare no `variant` (fastgd.optimizers): add one"
VARIANTS = {name: cls.variant for name, cls in OPTIMIZERS.items()}
VARIANTS["adam_no_bias_correction"] = dict(bias_correction=False)


def problem(n=300, d=5, k=1, dtype=np.float64, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.uniform(-2, 2, size=(d, k))
    y = X.astype(np.float64) @ W + 0.5 + noise * rng.standard_normal((n, k))
    return X, (y[:, 0] if k == 1 else y)


def reference_train(X, y, opt, *, batch_size, epochs, shuffle=True, random_state=0, sw=None,
                    fit_intercept=True, schedule=None, l1=0.0, l2=0.0, return_state=False):
    """The same training run as fastgd._training.train_epochs, with fastgd.reference doing all the arithmetic.

    Returns ``(theta, losses)``, and the optimizer state dict too with ``return_state=True``."""
    Y = _engine.targets_2d(y)
    theta = np.zeros((Y.shape[1], X.shape[1] + 1))
    st, sc = opt.init_state(theta.size)
    state = opt.state_dict(st, sc)
    rng = np.random.default_rng(random_state)
    losses = []
    for _ in range(epochs):
        order = _engine.batch_order(X.shape[0], batch_size, shuffle, rng)
        losses.append(reference.epoch(X, Y, theta, state, opt.reference_step(), batch_size, order, sw=sw,
                                      fit_intercept=fit_intercept, schedule=schedule, l1=l1, l2=l2))
    return (theta, losses, state) if return_state else (theta, losses)


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300)


@pytest.fixture(params=sorted(OPTIMIZERS))
def optimizer_name(request):
    return request.param
