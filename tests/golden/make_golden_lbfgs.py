"""Write tests/golden/lbfgs.npz: torch.optim.LBFGS's own trajectories, for tests/test_golden_lbfgs.py (which
checks fastgd.optimizers.LBFGS and LinearRegressor(optimizer=LBFGS(...)) against them without torch).

The problem: the golden problem of make_golden.py (problem.npz: 200 x 5 float64 features, an intercept, one
output, from its non-zero start theta0), full batch: torch trains ``nn.Linear(5, 1)`` in float64 with
``F.mse_loss`` over all rows, calling ``LBFGS.step(closure)`` STEPS times, for each case of ``CASES``: both
line searches (None and "strong_wolfe"), each with torch's defaults and with a variant (lr, a history shorter
than the 6 parameters, few iterations per step), and a strong-Wolfe case whose line search is cut short by
max_eval; plus one step on f(x) = 2 cosh(x) (``cosh_*``: ``COSH``). Regenerate with::

    python tests/golden/make_golden_lbfgs.py

The file holds, per case ``<case>``: ``<case>_params`` (STEPS + 1, 6): [w_1..w_5, b] before the first step and
after each step; ``<case>_loss`` (STEPS,): what ``step`` returned (the loss at the step's start);
``<case>_func_evals`` and ``<case>_n_iter`` (STEPS,): torch's state counters after each step; and as metadata
the keyword arguments (``<case>_kwargs_json``, the same for torch and fastgd), torch's full param group
(``<case>_torch_param_group_json``: the test checks fastgd's defaults against the default cases'), the
versions and a fingerprint of problem.npz (``problem_digest``).
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: _helpers

from _helpers import problem_digest  # noqa: E402

STEPS = 6
VARIANT = dict(lr=0.5, history_size=5, max_iter=7)
CASES = {
    "none-default": dict(),
    "none-variant": dict(VARIANT),
    "wolfe-default": dict(line_search_fn="strong_wolfe"),
    "wolfe-variant": dict(VARIANT, line_search_fn="strong_wolfe"),
    # small first trials: the line search extrapolates over several evaluations, so the evaluations left in
    # the step (max_eval) cut it short
    "wolfe-short": dict(lr=0.01, max_iter=7, line_search_fn="strong_wolfe"),
}


def _jsonable(value):
    return value.item() if hasattr(value, "item") else value


def generate(torch, problem, kwargs):
    X, y, theta0 = problem["X"], problem["y"], problem["theta0"]
    d = X.shape[1]
    model = torch.nn.Linear(d, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(theta0[None, :d]))
        model.bias.copy_(torch.tensor(theta0[d:]))
    opt = torch.optim.LBFGS(model.parameters(), **kwargs)
    Xt, yt = torch.tensor(X), torch.tensor(y[:, None])

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(Xt), yt)
        loss.backward()
        return loss

    def flat():
        return np.concatenate([model.weight.detach().numpy().reshape(-1), model.bias.detach().numpy()])

    params, losses, evals, iters = [flat()], [], [], []
    for _ in range(STEPS):
        losses.append(opt.step(closure).item())
        params.append(flat())
        state = opt.state[model.weight]
        evals.append(state["func_evals"])
        iters.append(state["n_iter"])
    group = {k: _jsonable(v) for k, v in opt.param_groups[0].items() if k != "params"}
    return dict(params=np.array(params), loss=np.array(losses), func_evals=np.array(evals, dtype=np.int64),
                n_iter=np.array(iters, dtype=np.int64), kwargs_json=np.array(json.dumps(kwargs, sort_keys=True)),
                torch_param_group_json=np.array(json.dumps(group, sort_keys=True)))


# torch's strong-Wolfe search keeps its own tolerance_change (1e-9), not the optimizer's: on f(x) = 2 cosh(x)
# from x = 5 the first trial (t = 0.1) overshoots into a bracket narrower than this tolerance_change, which
# the search still zooms into.
COSH = dict(lr=14.84, tolerance_change=20.0, max_iter=4, line_search_fn="strong_wolfe")
COSH_X0 = 5.0


def generate_cosh(torch):
    x = torch.tensor([COSH_X0], requires_grad=True)
    opt = torch.optim.LBFGS([x], **COSH)

    def closure():
        opt.zero_grad()
        loss = 2.0 * torch.cosh(x).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return {"cosh_kwargs_json": np.array(json.dumps(COSH, sort_keys=True)), "cosh_x0": np.array(COSH_X0),
            "cosh_x": np.array(x.item()), "cosh_func_evals": np.array(opt.state[x]["func_evals"])}


def main():
    import torch

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    with np.load(HERE / "problem.npz") as f:
        problem = {k: f[k] for k in f.files}
    out = {}
    for case, kwargs in CASES.items():
        g = generate(torch, problem, kwargs)
        out.update({f"{case}_{k}": v for k, v in g.items()})
        print(f"{case:14s} loss {g['loss'][0]:.6g} -> {g['loss'][-1]:.6g}  func_evals {g['func_evals'].tolist()}  "
              f"n_iter {g['n_iter'].tolist()}")
    out.update(generate_cosh(torch))
    print(f"cosh           x {COSH_X0} -> {out['cosh_x']!r}  func_evals {out['cosh_func_evals']}")
    out.update(steps=np.array(STEPS), torch_version=np.array(torch.__version__),
               numpy_version=np.array(np.__version__), python_version=np.array(platform.python_version()),
               problem_digest=np.array(problem_digest(problem["X"], problem["y"], problem["theta0"])),
               generated_by=np.array("tests/golden/make_golden_lbfgs.py"))
    np.savez_compressed(HERE / "lbfgs.npz", **out)
    print(f"torch {torch.__version__}; wrote {HERE / 'lbfgs.npz'}")


if __name__ == "__main__":
    main()
