"""Write the golden trajectories in this folder: torch.optim's own numbers, for tests/test_golden_torch.py.

Every CI run compares fastgd (both compiled backends and fastgd.reference) with these files, so fastgd is
checked against torch without installing torch. Regenerate after changing an optimizer's defaults, the
variants in tests/_helpers.py, or the problem below; in an environment with torch and fastgd's dependencies::

    pip install torch==2.13.0          # the version the committed files were made with
    python tests/golden/make_golden.py [name ...]   # all optimizers, or only the named ones (e.g. a new one)

The problem: linear regression with an intercept, 200 x 5 float64 features (columns of different scales),
one output, mean squared error, mini-batches of 72 rows (72, 72 and a last one of 56) visited in the order
fastgd's engine shuffles them with seed 0, 17 epochs = 51 steps, from a fixed non-zero start. torch trains
``nn.Linear(5, 1)`` with ``F.mse_loss`` and autograd, in float64 throughout (``torch.set_default_dtype``:
NAdam keeps its momentum product in the default dtype).

Files: ``problem.npz`` (X, y, theta0, batch_size, epochs, seed, orders) and one ``<optimizer>-<variant>.npz``
per optimizer in fastgd.optimizers.OPTIMIZERS and variant:

* ``default``: the fastgd optimizer's defaults (torch's defaults; Momentum and Nesterov add momentum=0.9);
  the script checks that torch's own defaults are these values.
* ``variant``: the non-default settings of ``VARIANTS`` in tests/_helpers.py (each registry entry's
  ``variant``), with lr = 0.1 so the run
  gets near the optimum within 51 steps (there AMSGrad's running maximum starts to bind).

Each trajectory file holds ``params`` (steps + 1, 6): [w_1..w_5, b] before the first step and after each
step; ``loss`` (steps,): torch's batch loss before each step; ``batch`` (steps,): the batch index of each
step; ``state_<name>`` (6,): torch's optimizer state at the end in the same layout (names as torch's, which
are fastgd's slot names), ``step`` and, for NAdam, ``mu_product``; and as metadata the fastgd keyword
arguments (``fastgd_kwargs_json``), the torch class and its full param group (``torch_param_group_json``),
the torch/NumPy/Python versions and a fingerprint of problem.npz (``problem_digest``).
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: _helpers

from _helpers import VARIANTS, golden_name, problem_digest, torch_optimizer_args  # noqa: E402

from fastgd import _engine  # noqa: E402
from fastgd.optimizers import OPTIMIZERS  # noqa: E402

N, D = 200, 5
BATCH_SIZE = 72
EPOCHS = 17
SEED = 0
VARIANT_LR = 0.1


def make_problem():
    rng = np.random.default_rng(20261123)
    X = rng.standard_normal((N, D)) * np.array([1.0, 0.5, 2.0, 1.0, 1.5])
    w = np.array([1.5, -2.0, 0.5, 1.0, -0.7])
    y = X @ w + 0.5 + 0.1 * rng.standard_normal(N)
    theta0 = np.array([0.3, -0.2, 0.1, 0.0, 0.25, -0.4])  # [w, b]: weight decay acts from the first step
    order_rng = np.random.default_rng(SEED)  # exactly the orders _training.train_epochs(shuffle=True, random_state=SEED) uses
    orders = np.array([_engine.batch_order(N, BATCH_SIZE, True, order_rng) for _ in range(EPOCHS)])
    return dict(X=X, y=y, theta0=theta0, batch_size=np.array(BATCH_SIZE), epochs=np.array(EPOCHS),
                seed=np.array(SEED), orders=orders)


def fastgd_kwargs(name, variant):
    return {} if variant == "default" else {**VARIANTS[name], "lr": VARIANT_LR}


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # a 0-d tensor or NumPy scalar
        return value.item()
    return value


def check_torch_defaults(torch, name, cls_name, kwargs):
    """The ``default`` variant must be torch's defaults: build torch's optimizer from its own defaults (plus
    SGD's momentum for Momentum/Nesterov) and compare every hyperparameter fastgd passes."""
    own = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}}.get(name, {})
    p = torch.zeros(1, requires_grad=True)
    group = getattr(torch.optim, cls_name)([p], **own).param_groups[0]
    differ = {k: (v, group[k]) for k, v in kwargs.items() if _jsonable(group[k]) != _jsonable(v)}
    if differ:
        raise SystemExit(f"{name}: fastgd's defaults differ from torch.optim.{cls_name}'s: "
                         f"{{name: (fastgd, torch)}} = {differ}")


def generate(torch, problem, name, variant):
    """Train with torch.optim; return the trajectory file's arrays (see the module docstring)."""
    X, y, theta0 = problem["X"], problem["y"], problem["theta0"]
    B = int(problem["batch_size"])
    kwargs = fastgd_kwargs(name, variant)
    cls_name, torch_kwargs = torch_optimizer_args(OPTIMIZERS[name](**kwargs))
    if variant == "default":
        check_torch_defaults(torch, name, cls_name, torch_kwargs)

    model = torch.nn.Linear(D, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(theta0[None, :D]))
        model.bias.copy_(torch.tensor(theta0[D:]))
    opt = getattr(torch.optim, cls_name)(model.parameters(), **torch_kwargs)
    Xt, yt = torch.tensor(X), torch.tensor(y[:, None])

    def flat(w, b):
        return np.concatenate([w.detach().numpy().reshape(-1), b.detach().numpy().reshape(-1)])

    params, losses, batches = [flat(model.weight, model.bias)], [], []
    for b in problem["orders"].reshape(-1):
        rows = slice(b * B, min((b + 1) * B, N))
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(Xt[rows]), yt[rows])
        loss.backward()
        opt.step()
        params.append(flat(model.weight, model.bias))
        losses.append(loss.item())
        batches.append(b)

    out = dict(params=np.array(params), loss=np.array(losses), batch=np.array(batches, dtype=np.int64))
    sw, sb = opt.state[model.weight], opt.state[model.bias]
    for key in sorted(sw):
        if sw[key] is None:  # SGD without momentum keeps momentum_buffer = None
            continue
        if key in ("step", "mu_product"):
            assert float(sw[key]) == float(sb[key]), key
            out[key] = np.array(float(sw[key]))
        else:
            out[f"state_{key}"] = flat(sw[key], sb[key])
    group = {k: _jsonable(v) for k, v in opt.param_groups[0].items() if k != "params"}
    out.update(
        optimizer=np.array(name), variant=np.array(variant), torch_class=np.array(cls_name),
        fastgd_kwargs_json=np.array(json.dumps(_jsonable(kwargs), sort_keys=True)),
        torch_param_group_json=np.array(json.dumps(group, sort_keys=True)),
        torch_version=np.array(torch.__version__), numpy_version=np.array(np.__version__),
        python_version=np.array(platform.python_version()),
        problem_digest=np.array(problem_digest(X, y, theta0)),
        generated_by=np.array("tests/golden/make_golden.py"))
    return out


def cases(names=None):
    unknown = sorted(set(names or ()) - set(OPTIMIZERS))
    if unknown:
        raise SystemExit(f"unknown optimizers {unknown}; the registry has {sorted(OPTIMIZERS)}")
    return [(name, variant) for name in sorted(names or OPTIMIZERS) for variant in ("default", "variant")]


def main(names=None):
    import torch

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    problem = make_problem()
    np.savez_compressed(HERE / "problem.npz", **problem)
    for name, variant in cases(names):
        out = generate(torch, problem, name, variant)
        np.savez_compressed(HERE / golden_name(name, variant), **out)
        print(f"{golden_name(name, variant):22s} loss {out['loss'][0]:9.4f} -> {out['loss'][-1]:9.4f}  "
              f"state {sorted(k for k in out if k.startswith('state_') or k in ('step', 'mu_product'))}")
    print(f"torch {torch.__version__}; files in {HERE}")


if __name__ == "__main__":
    main(sys.argv[1:])
