"""fastgd.reference against torch.optim itself: the specification is torch's algorithms.

torch is an optional, heavy dependency (not in the test extra); these tests are skipped when it is not
installed. Every run still compares fastgd with torch's numbers through the golden trajectories
(tests/test_golden_torch.py); the last test here checks that those files are what the installed torch
gives. torch keeps some scalar state (NAdam's mu_product) in the default dtype, so the comparisons run with
float64 as the default.
"""

import numpy as np
import pytest

from fastgd.optimizers import OPTIMIZERS

from _helpers import GOLDEN_DIR, golden_name, load_golden, load_make_golden, torch_optimizer_args
from _helpers import VARIANTS

torch = pytest.importorskip("torch")


def make_torch(params, opt):
    cls_name, kwargs = torch_optimizer_args(opt)
    return getattr(torch.optim, cls_name)(params, **kwargs)


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
        topt = make_torch([p], opt)
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


def test_golden_files_are_what_torch_gives():
    """tests/golden/*.npz (compared with fastgd in every run by test_golden_torch.py) are reproduced by the
    installed torch running tests/golden/make_golden.py: the files are torch's numbers and are not stale."""
    make_golden = load_make_golden()
    problem = load_golden(GOLDEN_DIR / "problem.npz")
    for key, value in make_golden.make_problem().items():
        np.testing.assert_array_equal(value, problem[key], err_msg=f"problem.npz: {key}")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for name, variant in make_golden.cases():
            fresh = make_golden.generate(torch, problem, name, variant)
            stored = dict(np.load(GOLDEN_DIR / golden_name(name, variant), allow_pickle=False))
            assert set(fresh) == set(stored), (name, variant)
            for key, value in fresh.items():
                if key.endswith("version") or key == "torch_param_group_json":
                    continue  # may differ with another torch; the numbers must not
                if value.dtype.kind == "U":
                    assert str(value) == str(stored[key]), (name, variant, key)
                else:
                    err = np.abs(value - stored[key]).max() / max(np.abs(stored[key]).max(), 1e-300)
                    assert err <= 1e-12, f"{golden_name(name, variant)}: {key} differs by {err:.3g} relative"
    finally:
        torch.set_default_dtype(previous)
