"""fastgd.reference against torch.optim itself: the specification is torch's algorithms.

torch is an optional, heavy dependency (not in the test extra); these tests are skipped when it is not
installed. torch keeps some scalar state (NAdam's mu_product) in the default dtype, so the comparison runs
with float64 as the default.
"""

import numpy as np
import pytest

from fastgd.optimizers import OPTIMIZERS

from conftest import VARIANTS

torch = pytest.importorskip("torch")


def make_torch(name, params, opt):
    hp = opt.get_params()
    hp.pop("bias_correction", None)  # fastgd's teaching extension of Adam; True (the default) is torch's Adam
    if name == "sgd":
        return torch.optim.SGD(params, **hp)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, nesterov=name == "nesterov", **hp)
    cls = {"adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax",
           "nadam": "NAdam"}[name]
    return getattr(torch.optim, cls)(params, **hp)


@pytest.mark.parametrize("variant", [False, True])
def test_reference_steps_match_torch(optimizer_name, variant):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = OPTIMIZERS[optimizer_name](lr=0.05, **(VARIANTS[optimizer_name] if variant else {}))
        rng = np.random.default_rng(0)
        B = rng.standard_normal((6, 6))
        A = B @ B.T / 6 + 0.1 * np.eye(6)  # gradient of a convex quadratic
        theta = rng.standard_normal(6)
        p = torch.tensor(theta.copy(), requires_grad=True)
        topt = make_torch(optimizer_name, [p], opt)
        state = opt.state_dict(*opt.init_state(6))
        step = opt.reference_step()
        for _ in range(50):
            state["step"] += 1
            step(theta, A @ theta, state)
            p.grad = torch.tensor(A) @ p.detach()
            topt.step()
        assert np.abs(theta - p.detach().numpy()).max() <= 1e-13 * np.abs(theta).max()
    finally:
        torch.set_default_dtype(previous)
