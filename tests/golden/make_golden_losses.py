"""Write tests/golden/losses.npz: torch's own SGD trajectories with torch.nn.HuberLoss and torch.nn.L1Loss,
for tests/test_losses.py (which checks fastgd's loss="huber" and loss="quantile" against them without torch).

The problem: 120 x 4 float64 features, one output with a few gross outliers (so both sides of Huber's kink
are visited), an intercept, batches of 40 rows visited in a fixed shuffled order for 4 epochs, plain SGD
(lr 0.05), from a fixed non-zero start; torch trains ``nn.Linear(4, 1)`` in float64 with the mean loss per
batch. Files hold X, y, theta0, order, batch_size, lr, delta, and ``params_huber`` / ``params_l1``
(steps + 1, 5): [w_1..w_4, b] before the first step and after each step. Regenerate with::

    python tests/golden/make_golden_losses.py
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def problem():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 4)) * np.array([1.0, 2.0, 0.5, 3.0])
    y = X @ np.array([0.5, -1.0, 2.0, 0.3]) + 1.5 + 0.3 * rng.standard_normal(120)
    y[rng.choice(120, 6, replace=False)] += 8.0
    theta0 = np.array([[0.1, -0.2, 0.3, 0.0, -0.5]])
    order = np.concatenate([rng.permutation(3) for _ in range(4)]).astype(np.int64)
    return dict(X=X, y=y, theta0=theta0, order=order, batch_size=40, lr=0.05, delta=0.5)


def trajectories():
    import torch

    p = problem()
    out = dict(p)
    for case, loss_fn in (("huber", torch.nn.HuberLoss(delta=p["delta"])), ("l1", torch.nn.L1Loss())):
        model = torch.nn.Linear(4, 1).double()
        with torch.no_grad():
            model.weight.copy_(torch.tensor(p["theta0"][:, :4]))
            model.bias.copy_(torch.tensor(p["theta0"][:, 4]))
        opt = torch.optim.SGD(model.parameters(), lr=p["lr"])
        X, y = torch.tensor(p["X"]), torch.tensor(p["y"])
        params = [np.r_[model.weight.detach().numpy().ravel(), model.bias.detach().numpy()]]
        bs = p["batch_size"]
        for b in p["order"]:
            rows = slice(b * bs, (b + 1) * bs)
            opt.zero_grad()
            loss_fn(model(X[rows])[:, 0], y[rows]).backward()
            opt.step()
            params.append(np.r_[model.weight.detach().numpy().ravel(), model.bias.detach().numpy()])
        out[f"params_{case}"] = np.array(params)
    out["torch_version"] = np.array(torch.__version__)
    return out


if __name__ == "__main__":
    np.savez(HERE / "losses.npz", **trajectories())
