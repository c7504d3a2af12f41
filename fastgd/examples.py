"""Worked examples of gradient descent, computed with fastgd's own optimizers (``fastgd.minimize`` and
``LinearRegressor``), each with a plot. ``fastgd demo NAME`` renders one; ``EXAMPLES`` lists them.

Every example is a function returning its numbers (the tests check them) and a ``plot_*`` twin drawing them.
"""

import time

import numpy as np

from .minimize import minimize
from .optimizers import Adagrad, Adam, Momentum, Nesterov, RMSprop


# ----------------------------------------------------------------------------------------------------------
# functions and their gradients

def parabola(x):
    return float(x[0] ** 2)


def parabola_grad(x):
    return np.array([2.0 * x[0]])


def bowl(x):
    return float(x[0] ** 2 + x[1] ** 2)


def bowl_grad(x):
    return np.array([2.0 * x[0], 2.0 * x[1]])


def elongated(x):
    """0.5·x₁² + 2·x₂² + x₁x₂: Hessian [[1, 1], [1, 4]], eigenvalues 0.70 and 4.30 (condition number 6.2)."""
    return float(0.5 * x[0] ** 2 + 2 * x[1] ** 2 + x[0] * x[1])


def elongated_grad(x):
    return np.array([x[0] + x[1], 4 * x[1] + x[0]])


def saddle(x):
    """x₁² − x₂²: a stationary point at 0 that is not a minimum."""
    return float(x[0] ** 2 - x[1] ** 2)


def saddle_grad(x):
    return np.array([2 * x[0], -2 * x[1]])


def six_hump_camel(x):
    """(4 − 2.1x₁² + x₁⁴/3)x₁² + x₁x₂ + (−4 + 4x₂²)x₂²: six local minima, two of them global (−1.0316)."""
    a, b = x[0], x[1]
    return float((4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2)


def six_hump_camel_grad(x):
    a, b = x[0], x[1]
    return np.array([8 * a - 8.4 * a**3 + 2 * a**5 + b, a - 8 * b + 16 * b**3])


def hessian(grad, x, h=1e-5):
    """Numerical Hessian (central differences of the gradient), symmetrized."""
    x = np.asarray(x, dtype=float)
    H = np.empty((x.size, x.size))
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        H[:, i] = (grad(x + e) - grad(x - e)) / (2 * h)
    return (H + H.T) / 2


def classify(grad, x):
    """'minimum', 'maximum' or 'saddle' from the signs of the Hessian's eigenvalues at a stationary point."""
    eig = np.linalg.eigvalsh(hessian(grad, x))
    if np.all(eig > 0):
        return "minimum", eig
    if np.all(eig < 0):
        return "maximum", eig
    return "saddle", eig


# ----------------------------------------------------------------------------------------------------------
# the examples


def step_sizes_1d(steps=(0.2, 0.9, 1.05), x0=8.7, iters=60):
    """f(x) = x² from 8.7: x ← x − γ·2x = (1 − 2γ)x. γ = 0.2 converges monotonically, γ = 0.9 oscillates
    (factor −0.8) but converges, γ = 1.05 diverges (factor −1.1)."""
    return {g: minimize(parabola, [x0], parabola_grad, "sgd", learning_rate=g, max_iter=iters, tol=1e-12)
            for g in steps}


def step_sizes_2d(iters=100):
    """x₁² + x₂² from [8.7, −7.9] with γ = 0.1 (factor 0.8 per step) and 0.9 (factor −0.8: it jumps across the
    minimum every step), and the elongated 0.5x₁² + 2x₂² + x₁x₂ (Hessian eigenvalues λ = 0.70 and 4.30).

    On the elongated bowl each eigen-direction shrinks by 1 − γλ per step. With γ = 0.2 the steep direction
    (factor 0.14) is gone after a few steps and the path bends into the valley, then creeps along it at
    0.86 per step: the condition number, not the step, sets the pace. With γ = 0.45 the steep factor is
    −0.94 and the path zig-zags across the valley.
    """
    x0 = [8.7, -7.9]
    return {
        "bowl, step 0.1": minimize(bowl, x0, bowl_grad, "sgd", learning_rate=0.1, max_iter=iters),
        "bowl, step 0.9": minimize(bowl, x0, bowl_grad, "sgd", learning_rate=0.9, max_iter=iters),
        "elongated, step 0.2": minimize(elongated, x0, elongated_grad, "sgd", learning_rate=0.2, max_iter=iters),
        "elongated, step 0.45": minimize(elongated, x0, elongated_grad, "sgd", learning_rate=0.45,
                                         max_iter=iters),
    }


def optimizers_compared(iters=200):
    """The elongated quadratic with gradient descent, momentum, Nesterov, Adagrad, RMSprop and Adam (with and
    without bias correction), all from [8.7, −7.9]."""
    x0 = [8.7, -7.9]
    runs = {
        "gradient descent (0.2)": ("sgd", 0.2),
        "momentum 0.9 (0.05)": (Momentum(momentum=0.9), 0.05),
        "Nesterov 0.9 (0.05)": (Nesterov(momentum=0.9), 0.05),
        "Adagrad (2.0)": (Adagrad(), 2.0),
        "RMSprop (0.1)": (RMSprop(), 0.1),
        "Adam (0.5)": (Adam(), 0.5),
        "Adam without bias correction (0.5)": (Adam(bias_correction=False), 0.5),
    }
    return {name: minimize(elongated, x0, elongated_grad, opt, learning_rate=lr, max_iter=iters, tol=1e-8)
            for name, (opt, lr) in runs.items()}


def batch_sizes(n=20_000, d=20, epochs=15, random_state=0):
    """Batch (all rows), stochastic (1 row) and mini-batch (32 rows) gradient descent on one linear regression:
    the training loss after every epoch, and the wall time spent so far."""
    from .datasets import make_regression
    from .estimator import LinearRegressor

    X, y, _, _ = make_regression(n, d, noise=0.5, random_state=random_state)
    A = np.hstack([X, np.ones((n, 1))])
    best = float(np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2))
    out = {"optimum": best}
    for label, bs, lr in (("batch (all rows)", None, 0.3), ("stochastic (1 row)", 1, 0.002),
                          ("mini-batch (32 rows)", 32, 0.02)):
        model = LinearRegressor(optimizer="sgd", learning_rate=lr, batch_size=bs, random_state=random_state)
        model.partial_fit(X[:64], y[:64])  # compile outside the timings
        model = LinearRegressor(optimizer="sgd", learning_rate=lr, batch_size=bs, random_state=random_state)
        losses, seconds, spent = [], [], 0.0
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.partial_fit(X, y)
            spent += time.perf_counter() - t0
            losses.append(float(np.mean((model.predict(X) - y) ** 2)))
            seconds.append(spent)
        out[label] = {"loss": losses, "seconds": seconds, "updates_per_epoch": -(-n // (bs or n))}
    return out


def stationary_points(iters=3000):
    """Where plain gradient descent stops: on x₁² − x₂² it reaches the saddle from a start exactly on the
    x₁-axis and escapes from a start 1e-3 off it; on the six-hump camel function different starting points
    and optimizers end in different local minima. Each end point is classified by its Hessian."""
    out = {"saddle": {}, "camel": []}
    for label, x0 in (("start on the axis", [1.0, 0.0]), ("start 1e-3 off the axis", [1.0, 1e-3])):
        res = minimize(saddle, x0, saddle_grad, "sgd", learning_rate=0.1, max_iter=200, diverge_at=1e3)
        out["saddle"][label] = (res, classify(saddle_grad, res.x) if res.status == 0 else None)
    starts = [(-1.5, 1.0), (1.5, -1.0), (-1.0, -0.5), (1.0, 0.5), (-1.8, -0.8), (1.8, 0.8), (0.0, 0.0)]
    for opt, lr in (("sgd", 0.02), (Adam(), 0.05)):
        for x0 in starts:
            res = minimize(six_hump_camel, x0, six_hump_camel_grad, opt, learning_rate=lr, max_iter=iters,
                           tol=1e-7)
            kind, eig = classify(six_hump_camel_grad, res.x)
            out["camel"].append({"optimizer": "gradient descent" if opt == "sgd" else "Adam", "start": x0,
                                 "end": res.x, "f": res.fun, "kind": kind, "eigenvalues": eig,
                                 "result": res})
    return out


# ----------------------------------------------------------------------------------------------------------
# plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def _contours(ax, fun, lim, levels=30):
    xs = np.linspace(-lim[0], lim[0], 200)
    ys = np.linspace(-lim[1], lim[1], 200)
    Z = np.array([[fun(np.array([a, b])) for a in xs] for b in ys])
    ax.contour(xs, ys, Z, levels=levels, cmap="viridis", linewidths=0.6)


def _path(ax, res, label, **kw):
    p = res.path
    ax.plot(p[:, 0], p[:, 1], marker=".", ms=3, lw=1, label=f"{label}: {res.nit} steps", **kw)


def plot_step_sizes_1d(path):
    plt = _plt()
    res = step_sizes_1d()
    fig, ax = plt.subplots(figsize=(7, 4))
    for g, r in res.items():
        ax.plot(r.path[:, 0], marker="o", ms=3, label=f"γ = {g}: {r.message.split(':')[0].split('.')[0]}")
    ax.set_yscale("symlog")
    ax.set_xlabel("iteration")
    ax.set_ylabel("x")
    ax.set_title("f(x) = x² from x₀ = 8.7")
    ax.legend()
    _save(fig, path)


def plot_step_sizes_2d(path):
    plt = _plt()
    res = step_sizes_2d()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    for ax, (name, r) in zip(axes, res.items()):
        _contours(ax, elongated if "elongated" in name else bowl, (10, 10))
        _path(ax, r, name, color="tab:red")
        ax.set_title(name)
        ax.set_aspect("equal")
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def plot_optimizers(path):
    plt = _plt()
    res = optimizers_compared()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    _contours(ax, elongated, (10, 10))
    for name, r in res.items():
        _path(ax, r, name)
        ax2.semilogy(np.maximum(r.fvals, 1e-16), label=name)
    ax.set_aspect("equal")
    ax.set_title("0.5x₁² + 2x₂² + x₁x₂ from [8.7, −7.9]")
    ax.legend(fontsize=7, loc="lower left")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("f(x)")
    ax2.legend(fontsize=7)
    _save(fig, path)


def plot_batch_sizes(path):
    plt = _plt()
    res = batch_sizes()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in res.items():
        if name == "optimum":
            continue
        gap = np.maximum(np.array(r["loss"]) - res["optimum"], 1e-12)
        ax.semilogy(range(1, len(gap) + 1), gap, marker="o", ms=3, label=name)
        ax2.loglog(r["seconds"], gap, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax2.set_xlabel("wall time (s)")
    for a in (ax, ax2):
        a.set_ylabel("training MSE − optimum")
        a.legend()
    fig.suptitle("Batch vs stochastic vs mini-batch gradient descent (linear regression)")
    _save(fig, path)


def plot_stationary_points(path):
    plt = _plt()
    res = stationary_points()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    _contours(ax, saddle, (1.2, 1.2), levels=20)
    for label, (r, _) in res["saddle"].items():
        _path(ax, r, label)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    ax.set_title("x₁² − x₂²: the saddle at 0")
    ax.legend(fontsize=8)
    xs, ys = np.linspace(-2, 2, 200), np.linspace(-1.1, 1.1, 200)
    Z = np.array([[six_hump_camel(np.array([a, b])) for a in xs] for b in ys])
    ax2.contour(xs, ys, Z, levels=np.linspace(-1.1, 3, 40), cmap="viridis", linewidths=0.6)
    for run in res["camel"]:
        p = run["result"].path
        style = "-" if run["optimizer"] == "gradient descent" else "--"
        ax2.plot(p[:, 0], p[:, 1], style, lw=1)
        ax2.plot(*run["end"], "k*" if run["kind"] == "minimum" else "rx", ms=8)
    ax2.set_title("Six-hump camel: end points by start and optimizer (— GD, -- Adam)")
    _save(fig, path)


EXAMPLES = {
    "step-sizes-1d": (step_sizes_1d, plot_step_sizes_1d),
    "step-sizes-2d": (step_sizes_2d, plot_step_sizes_2d),
    "optimizers": (optimizers_compared, plot_optimizers),
    "batch-sizes": (batch_sizes, plot_batch_sizes),
    "stationary-points": (stationary_points, plot_stationary_points),
}


def render(name, path=None):
    """Draw example ``name`` to a PNG (default ``NAME.png`` in the current directory); returns the path."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {sorted(EXAMPLES)}")
    path = path or f"{name}.png"
    EXAMPLES[name][1](path)
    return path
