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

ELONGATED_HESSIAN = np.array([[1.0, 1.0], [1.0, 4.0]])  # of elongated(): eigenvalues 0.697 and 4.303


def _run(fun, grad, x0, optimizer="sgd", learning_rate=None, max_iter=1000, tol=1e-6, **kw):
    """``fastgd.minimize`` with every argument by keyword (valid both before and after SciPy's convention)."""
    return minimize(fun, x0, grad=grad, optimizer=optimizer, learning_rate=learning_rate, max_iter=max_iter,
                    tol=tol, **kw)


def _values(fun, res):
    """f along the path of a minimize result."""
    return np.array([fun(p) for p in res.path])


def behaviour_1d(x):
    """What a one-dimensional path x₀, x₁, ... does, read off the path itself.

    Returns ``(behaviour, factor)``: behaviour is "converges monotonically", "oscillates and converges",
    "diverges", "oscillates and diverges" or "neither converges nor diverges"; factor is the median ratio
    x_{k+1} / x_k (on x² with rate α it is exactly 1 − 2α)."""
    x = np.asarray(x, dtype=float)
    keep = x[:-1] != 0
    factor = float(np.median(x[1:][keep] / x[:-1][keep]))
    flips = bool(np.all(np.sign(x[1:]) == -np.sign(x[:-1])))
    if np.all(np.abs(x[1:]) < np.abs(x[:-1])):
        return ("oscillates and converges" if flips else "converges monotonically"), factor
    if np.all(np.abs(x[1:]) > np.abs(x[:-1])):
        return ("oscillates and diverges" if flips else "diverges"), factor
    return "neither converges nor diverges", factor


def step_sizes_1d(steps=(0.01, 0.2, 0.9, 1.05), x0=8.7, iters=30):
    """f(x) = x² from x₀ = 8.7: a gradient step maps x to x − α·2x = (1 − 2α)x.

    α = 0.01 converges monotonically but too slowly (factor 0.98: 114 steps per digit), α = 0.2 converges
    monotonically (0.6), α = 0.9 oscillates around the minimum and converges (−0.8), α = 1.05 oscillates
    and diverges (−1.1). Returns ``{α: {"result", "behaviour", "factor"}}``, the behaviour and the factor
    measured on the path (``behaviour_1d``)."""
    out = {}
    for a in steps:
        res = _run(parabola, parabola_grad, [x0], "sgd", a, max_iter=iters, tol=0)
        behaviour, factor = behaviour_1d(res.path[:, 0])
        out[a] = {"result": res, "behaviour": behaviour, "factor": factor}
    return out


def contraction_factors(H, rate):
    """Per-step factors 1 − α·λ of plain gradient descent on a quadratic with Hessian H, along the
    eigenvectors of H (smallest eigenvalue first)."""
    return 1 - rate * np.linalg.eigvalsh(H)


def step_sizes_2d(iters=100):
    """x₁² + x₂² from [8.7, −7.9] with α = 0.1 (factor 0.8 per step) and 0.9 (factor −0.8: it jumps across the
    minimum every step), and the elongated 0.5x₁² + 2x₂² + x₁x₂ (Hessian eigenvalues λ = 0.70 and 4.30).

    On the elongated bowl each eigen-direction shrinks by 1 − αλ per step. With α = 0.2 the steep direction
    (factor 0.14) is gone after a few steps and the path bends into the valley, then creeps along it at
    0.86 per step: the condition number, not the step, sets the pace. With α = 0.45 the steep factor is
    −0.94 and the path zig-zags across the valley.
    """
    x0 = [8.7, -7.9]
    return {
        "bowl, step 0.1": _run(bowl, bowl_grad, x0, "sgd", 0.1, max_iter=iters),
        "bowl, step 0.9": _run(bowl, bowl_grad, x0, "sgd", 0.9, max_iter=iters),
        "elongated, step 0.2": _run(elongated, elongated_grad, x0, "sgd", 0.2, max_iter=iters),
        "elongated, step 0.45": _run(elongated, elongated_grad, x0, "sgd", 0.45, max_iter=iters),
    }


RATES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
MOMENTA = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def settle_step(values, target):
    """The first iteration from which f stays below ``target`` to the end of the run (None: never)."""
    above = np.nonzero(~(np.asarray(values) < target))[0]
    if not len(above):
        return 0
    return int(above[-1]) + 1 if above[-1] + 1 < len(values) else None


def _trial(optimizer, rate, iters, target):
    res = _run(elongated, elongated_grad, [8.7, -7.9], optimizer, rate, max_iter=iters, tol=0, diverge_at=1e6)
    values = _values(elongated, res)
    settle = settle_step(values, target) if res.status != 2 else None
    if res.status == 2:
        score = (2, np.inf)
    elif settle is None:
        score = (1, float(values[-20:].max()))
    else:
        score = (0, settle)
    return {"result": res, "values": values, "lr": rate, "settle": settle, "score": score}


def optimizers_compared(iters=200, target=1e-8, rates=RATES, momenta=MOMENTA):
    """The elongated quadratic 0.5x₁² + 2x₂² + x₁x₂ from [8.7, −7.9], every optimizer at its best setting.

    Each optimizer runs with each rate in ``rates`` (and, for momentum and Nesterov, each β in ``momenta``)
    and keeps the setting after which f stays below ``target`` soonest (else the lowest f over the last 20
    iterations). Then momentum runs again with torch's default β = 0.9 at the rate chosen for momentum: on
    a quadratic its error shrinks only by √β ≈ 0.95 per step, so it rings.

    Returns ``{label: {"result", "values", "lr", "momentum", "settle", "score"}}``; ``settle`` is the
    iteration from which f < target for good (None: not within ``iters``)."""
    families = {
        "gradient descent": lambda b: "sgd",
        "momentum": lambda b: Momentum(momentum=b),
        "Nesterov": lambda b: Nesterov(momentum=b),
        "Adagrad": lambda b: Adagrad(),
        "RMSprop": lambda b: RMSprop(),
        "Adam": lambda b: Adam(),
        "Adam without bias correction": lambda b: Adam(bias_correction=False),
    }
    out = {}
    for name, make in families.items():
        best = None
        for beta in (momenta if name in ("momentum", "Nesterov") else (None,)):
            for rate in rates:
                trial = _trial(make(beta), rate, iters, target)
                trial["momentum"] = beta
                if best is None or trial["score"] < best["score"]:
                    best = trial
        out[name] = best
    ring = _trial(Momentum(momentum=0.9), out["momentum"]["lr"], iters, target)
    ring["momentum"] = 0.9
    out["momentum, torch's β = 0.9"] = ring
    return out


def batch_sizes(n=20_000, d=20, epochs=15, random_state=0):
    """Full-batch, stochastic (1 row) and mini-batch (32 rows) gradient descent on one linear regression:
    the training loss after every epoch, and the wall time spent so far.

    With a constant rate the stochastic runs win the first epoch (hundreds of updates against one) and then
    stop improving at a noise floor proportional to the rate (the mini-batch run is repeated at half the
    rate); full batch keeps converging. The last run is the mini-batch run whose rate is multiplied by 0.7
    after every epoch (``Step(step_size=updates per epoch, gamma=0.7)``): it keeps its head start and goes
    on below the floor. Returns ``{"optimum": least-squares MSE, label: {"loss", "gap", "seconds",
    "updates_per_epoch", "floor"}}``; gap is loss − optimum, floor its mean over the second half of the
    epochs."""
    from .datasets import make_regression
    from .estimator import LinearRegressor
    from .schedules import Step

    X, y, _, _ = make_regression(n, d, noise=0.5, random_state=random_state)
    A = np.hstack([X, np.ones((n, 1))])
    best = float(np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2))
    out = {"optimum": best}
    per_epoch_32 = -(-n // 32)
    runs = (("full batch, rate 0.3", None, 0.3),
            ("stochastic (1 row), rate 0.002", 1, 0.002),
            ("mini-batch (32 rows), rate 0.02", 32, 0.02),
            ("mini-batch, rate 0.01", 32, 0.01),
            ("mini-batch, rate 0.02 × 0.7 every epoch", 32, Step(lr=0.02, step_size=per_epoch_32, gamma=0.7)))
    # plain steps on the raw data: no implicit standardization and no averaging of the iterates, where the
    # estimator has them (averaging would hide the noise floor this example is about)
    plain = {k: False for k in ("standardize", "average") if k in LinearRegressor().get_params()}
    for label, bs, lr in runs:
        # one thread: the wall times compare the algorithms, not the parallel kernel's start-up on a busy machine
        def make(bs=bs, lr=lr):
            return LinearRegressor(optimizer="sgd", learning_rate=lr, batch_size=bs, n_jobs=1,
                                   random_state=random_state, **plain)

        make().partial_fit(X[:64], y[:64])  # compile outside the timings
        model = make()
        losses, seconds, spent = [], [], 0.0
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.partial_fit(X, y)
            spent += time.perf_counter() - t0
            losses.append(float(np.mean((model.predict(X) - y) ** 2)))
            seconds.append(spent)
        gap = np.array(losses) - best
        out[label] = {"loss": losses, "gap": gap, "seconds": seconds, "updates_per_epoch": -(-n // (bs or n)),
                      "floor": float(np.mean(gap[epochs // 2:]))}
    return out


def stationary_points(iters=3000):
    """Where plain gradient descent stops: on x₁² − x₂² it reaches the saddle from a start exactly on the
    x₁-axis and escapes from a start 1e-3 off it; on the six-hump camel function different starting points
    and optimizers end in different local minima, and the start (0, 0), itself a saddle (gradient zero),
    never moves. Each end point is classified by the signs of its Hessian's eigenvalues.

    Returns ``{"saddle": {label: (result, classification or None)}, "camel": [one dict per run],
    "ends": [one dict per distinct end point: "end", "f", "kind", "eigenvalues", "runs"]}``."""
    out = {"saddle": {}, "camel": []}
    for label, x0 in (("start on the axis", [1.0, 0.0]), ("start 1e-3 off the axis", [1.0, 1e-3])):
        res = _run(saddle, saddle_grad, x0, "sgd", 0.1, max_iter=200, diverge_at=1e3)
        out["saddle"][label] = (res, classify(saddle_grad, res.x) if res.status == 0 else None)
    starts = [(-1.5, 1.0), (1.5, -1.0), (-1.0, -0.5), (1.0, 0.5), (-1.8, -0.8), (1.8, 0.8), (0.0, 0.0)]
    for opt, lr in (("sgd", 0.02), (Adam(), 0.05)):
        for x0 in starts:
            res = _run(six_hump_camel, six_hump_camel_grad, x0, opt, lr, max_iter=iters, tol=1e-7)
            kind, eig = classify(six_hump_camel_grad, res.x)
            out["camel"].append({"optimizer": "gradient descent" if opt == "sgd" else "Adam", "start": x0,
                                 "end": res.x, "f": res.fun, "kind": kind, "eigenvalues": eig,
                                 "result": res})
    ends = []
    for run in out["camel"]:
        same = [e for e in ends if np.allclose(e["end"], run["end"], atol=1e-3)]
        if same:
            same[0]["runs"].append(run)
        else:
            ends.append({"end": run["end"], "f": run["f"], "kind": run["kind"], "eigenvalues": run["eigenvalues"],
                         "runs": [run]})
    out["ends"] = sorted(ends, key=lambda e: (e["f"], e["end"][0]))
    return out


# ----------------------------------------------------------------------------------------------------------
# plots: drawn at 100 dpi and at most 9 inches wide, so a figure shows at its own size (text as drawn, no
# smaller than 10 pt) in the documentation's 960 px text column

STYLE = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.dpi": 100, "savefig.dpi": 100}
MAX_WIDTH = 9.0  # inches


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _styled(plot):
    """Run a plot function under STYLE (without changing the caller's matplotlib settings)."""
    import functools

    @functools.wraps(plot)
    def wrapper(path):
        with _plt().rc_context(STYLE):
            return plot(path)

    return wrapper


def _save(fig, path, rect=None):
    if fig.get_figwidth() > MAX_WIDTH:
        raise ValueError(f"figure {path} is {fig.get_figwidth()} in wide; at most {MAX_WIDTH} in fit the docs")
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def _contours(ax, fun, lim, levels=30):
    xs = np.linspace(-lim[0], lim[0], 200)
    ys = np.linspace(-lim[1], lim[1], 200)
    Z = np.array([[fun(np.array([a, b])) for a in xs] for b in ys])
    ax.contour(xs, ys, Z, levels=levels, cmap="viridis", linewidths=0.6, alpha=0.8)


@_styled
def plot_step_sizes_1d(path):
    plt = _plt()
    res = step_sizes_1d()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 5.4))
    for (a, r), color in zip(res.items(), ("tab:gray", "tab:green", "tab:blue", "tab:red")):
        x = r["result"].path[:, 0]
        q = abs(r["factor"])
        digit = np.log(0.1) / np.log(q) if q < 1 else None
        pace = (f"{digit:.0f} steps per digit" + (": too small" if digit > 50 else "") if q < 1
                else f"|x| grows ×{q:g} per step: too large")
        label = f"α = {a:g}: {r['behaviour']}, |1 − 2α| = {abs(1 - 2 * a):.2g} ({pace})"
        ax.plot(x, marker="o", ms=3, lw=1.2, color=color, label=label)
        ax2.semilogy(np.abs(x), marker="o", ms=3, lw=1.2, color=color)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylim(-12, 12)
    ax.set_xlim(-0.5, 15.5)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("$x_k$")
    ax.set_title("$x_k$: a sign change each step is an overshoot")
    ax2.set_xlabel("iteration k")
    ax2.set_ylabel("$|x_k|$ (log scale)")
    ax2.set_title("$|x_k| = |1 − 2α|^k · 8.7$: straight lines")
    fig.suptitle("f(x) = x² from $x_0$ = 8.7, gradient descent with rate α: $x_{k+1} = (1 − 2α)\\,x_k$")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=1, frameon=False)
    _save(fig, path, rect=(0, 0.2, 1, 1))


@_styled
def plot_step_sizes_2d(path):
    plt = _plt()
    res = step_sizes_2d()
    fig, axes = plt.subplots(2, 2, figsize=(9, 8.6))
    for ax, (name, r) in zip(axes.ravel(), res.items()):
        long = "elongated" in name
        rate = float(name.rsplit(" ", 1)[1])
        H = ELONGATED_HESSIAN if long else 2 * np.eye(2)
        _contours(ax, elongated if long else bowl, (10, 10))
        p = r.path
        f_end = (elongated if long else bowl)(p[-1])
        ax.plot(p[:, 0], p[:, 1], "-o", color="tab:red", ms=3, lw=1.2,
                label=f"path: {r.nit} steps, f = {f_end:.1e} at the end")
        ax.plot(*p[0], "ks", ms=6, label="start (8.7, −7.9)")
        factors = ", ".join(f"{q:.2f}" for q in contraction_factors(H, rate))
        what = "0.5x₁² + 2x₂² + x₁x₂" if long else "x₁² + x₂²"
        ax.set_title(f"{what}, α = {rate:g}\nfactors 1 − αλ per step: {factors}")
        ax.set_aspect("equal")
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        ax.set_xticks([-10, -5, 0, 5, 10])
        ax.set_yticks([-10, -5, 0, 5, 10])
        ax.legend(loc="upper left", framealpha=0.9)
    _save(fig, path)


@_styled
def plot_optimizers(path):
    plt = _plt()
    res = optimizers_compared()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 6.6), gridspec_kw={"width_ratios": [1, 1.15]})
    _contours(ax, elongated, (10, 10))
    colors = ("k", "tab:blue", "tab:cyan", "tab:green", "tab:purple", "tab:red", "tab:orange", "tab:blue")
    for (name, r), color in zip(res.items(), colors):
        ring = "0.9" in name
        setting = f"α = {r['lr']:g}" + (f", β = {r['momentum']:g}" if r["momentum"] is not None else "")
        when = (f"below 1e-8 from step {r['settle']}" if r["settle"] is not None
                else "not below 1e-8 for good in 200 steps")
        style = {"color": color, "lw": 1.1, "ls": ":" if ring else "-"}
        p = r["result"].path
        ax.plot(p[:, 0], p[:, 1], **style)
        ax2.semilogy(np.maximum(r["values"], 1e-18), label=f"{name} ({setting}): {when}", **style)
    ax.plot(8.7, -7.9, "ks", ms=6)
    ax.set_aspect("equal")
    ax.set_xlim(-10, 10)
    ax.set_ylim(-10, 10)
    ax.set_title("paths from (8.7, −7.9) on\n0.5x₁² + 2x₂² + x₁x₂ (λ = 0.70, 4.30)")
    ax.set_xticks([-10, -5, 0, 5, 10])
    ax.set_yticks([-10, -5, 0, 5, 10])
    ax2.axhline(1e-8, color="0.5", lw=0.8, ls="--")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("f(x) (log scale)")
    ax2.set_ylim(1e-18, 1e3)
    ax2.set_title("f along the path; dashed: 1e-8")
    fig.legend(*ax2.get_legend_handles_labels(), loc="lower center", ncol=1, frameon=False,
               title="each at its best rate α (and β) from one grid; dotted: torch's default β = 0.9")
    _save(fig, path, rect=(0, 0.33, 1, 1))


@_styled
def plot_batch_sizes(path):
    plt = _plt()
    res = batch_sizes()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 5.6))
    colors = ("k", "tab:orange", "tab:blue", "tab:cyan", "tab:green")
    for (name, r), color in zip(((k, v) for k, v in res.items() if k != "optimum"), colors):
        gap = np.maximum(r["gap"], 1e-12)
        style = {"marker": "o", "ms": 3, "lw": 1.2, "color": color}
        updates = r["updates_per_epoch"]
        ax.semilogy(range(1, len(gap) + 1), gap, **style,
                    label=f"{name}: {updates:,} update{'s' if updates > 1 else ''} per epoch")
        ax2.loglog(r["seconds"], gap, **style)
    ax.set_xlabel("epoch")
    ax2.set_xlabel("wall time (s)")
    ax.set_title("per epoch: small batches win the first epoch,\nthen stall at a floor ∝ rate")
    ax2.set_title("per second (one thread, this machine)")
    for a in (ax, ax2):
        a.set_ylabel("training MSE − optimum")
    fig.suptitle("Full batch, stochastic and mini-batch gradient descent on one linear regression")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=1, frameon=False)
    _save(fig, path, rect=(0, 0.22, 1, 1))


@_styled
def plot_stationary_points(path):
    plt = _plt()
    res = stationary_points()
    fig = plt.figure(figsize=(9, 9.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 0.48], width_ratios=[1, 1.45])
    ax, ax2, tab = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    _contours(ax, saddle, (1.2, 1.2), levels=20)
    for (label, (r, kind)), color, lw in zip(res["saddle"].items(), ("tab:red", "tab:blue"), (4, 1.2)):
        ends = "ends at the saddle" if kind else "escapes along x₂"
        ax.plot(r.path[:, 0], r.path[:, 1], "-", lw=lw, color=color, alpha=0.8, label=f"{label}: {ends}")
    ax.plot(0, 0, "rx", ms=10, mew=2)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    ax.set_aspect("equal")
    ax.set_title("x₁² − x₂²: saddle at 0,\nHessian eigenvalues 2 and −2")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), fontsize=10, frameon=False)
    xs, ys = np.linspace(-2, 2, 200), np.linspace(-1.1, 1.1, 200)
    Z = np.array([[six_hump_camel(np.array([a, b])) for a in xs] for b in ys])
    ax2.contour(xs, ys, Z, levels=np.linspace(-1.1, 3, 40), cmap="viridis", linewidths=0.6, alpha=0.8)
    for run in res["camel"]:
        p = run["result"].path
        ax2.plot(p[:, 0], p[:, 1], "-" if run["optimizer"] == "gradient descent" else "--", color="0.35", lw=1)
    from matplotlib.lines import Line2D

    for i, e in enumerate(res["ends"], 1):
        ax2.plot(*e["end"], "*" if e["kind"] == "minimum" else "x", color="k" if e["kind"] == "minimum" else "r",
                 ms=12 if e["kind"] == "minimum" else 10, mew=2)
        ax2.annotate(str(i), e["end"], xytext=(6, 4), textcoords="offset points", fontsize=10, weight="bold")
    ax2.set_title("six-hump camel: 7 starts × (gradient descent, Adam)")
    ax2.legend(handles=[Line2D([], [], color="0.35", label="gradient descent"),
                        Line2D([], [], color="0.35", ls="--", label="Adam"),
                        Line2D([], [], marker="*", color="k", ls="", ms=12, label="minimum (eigenvalues > 0)"),
                        Line2D([], [], marker="x", color="r", ls="", ms=10, mew=2,
                               label="saddle (eigenvalues ±)")],
               loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=10, frameon=False)
    tab.axis("off")
    rows = []
    for i, e in enumerate(res["ends"], 1):
        starts = sorted({f"({r['start'][0]:g}, {r['start'][1]:g})" for r in e["runs"]})
        rows.append([str(i), f"({e['end'][0]:.3f}, {e['end'][1]:.3f})", f"{e['f']:.4f}",
                     ", ".join(f"{v:.2f}" for v in e["eigenvalues"]), e["kind"], " ".join(starts)])
    table = tab.table(cellText=rows, colLabels=["", "end point", "f", "Hessian eigenvalues", "kind",
                                                "reached from"], loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.auto_set_column_width(list(range(6)))
    table.scale(1, 1.35)
    tab.set_title("Each end point classified by the signs of its Hessian's eigenvalues", fontsize=11)
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
