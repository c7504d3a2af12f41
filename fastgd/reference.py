"""Plain-NumPy reference implementation: the readable specification of fastgd's compiled kernels.

Everything here is written for clarity, not speed. Tests check the compiled kernels against it, and the
benchmarks time it next to them.

Objective of a batch (rows i, sample weights s_i, all ones by default)::

    L(w, b) = Σ s_i (x_i·w + b − y_i)² / Σ s_i
    ∂L/∂w   = (2 / Σ s_i) Σ s_i r_i x_i          r_i = x_i·w + b − y_i
    ∂L/∂b   = (2 / Σ s_i) Σ s_i r_i

Other losses (``loss`` with its parameter ``param``, scikit-learn's names and meanings) replace r_i² by
ℓ(r_i) and 2·r_i by ℓ'(r_i) (see :func:`loss_value`): L = Σ s_i ℓ(r_i) / Σ s_i.

With several outputs (``Y`` of shape (n, k)) each output j has its own row ``theta[j] = [w_j, b_j]`` and the
objective is the sum over outputs. Penalties (weights only, never the intercept): ``½·l2·‖w‖²`` adds ``l2·w``
to the gradient; ``l1·‖w‖₁`` is applied by a proximal step after each update,
``w ← sign(w)·max(|w| − η·l1, 0)``, with η the coordinate's effective step size (returned by each optimizer
step below), so exact zeros appear and the fixed point satisfies the lasso optimality conditions.

Optimizer steps follow torch.optim's documented algorithms and defaults. ``theta`` and ``grad`` are flat
float64 arrays, ``state`` a dict named like torch's optimizer state (``"step"`` is the number of updates
done *including* this one; the caller increments it). Each step updates ``theta`` and ``state`` in place and
returns η: the factor by which it moves a coordinate for a steady unit gradient.

Lecture-note forms differ from torch in one place worth knowing: notes often write Adagrad/RMSprop/Adam with
ε *inside* the square root, ``g / sqrt(v + ε)``; torch (and fastgd) add ε *outside*, ``g / (sqrt(v) + ε)``.
"""

import inspect
import math

import numpy as np


def vdot(a, b):
    """Σ a·b over all elements, by NumPy's own loop (einsum), never BLAS: OpenBLAS splits a long dot product
    over its threads, and a limit set on them from a thread other than the main one may not hold, so BLAS's
    sums could depend on which thread runs a fit."""
    return float(np.einsum("i,i->", np.ravel(a), np.ravel(b)))


LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "quantile")


def loss_value(r, loss="squared_error", param=0.0):
    """ℓ(r) elementwise, r = prediction − target; ``param`` is epsilon (huber and the insensitive losses) or
    the quantile:

    * squared_error: r²
    * huber: ½r² for abs(r) ≤ ε, ε·abs(r) − ½ε² beyond (torch.nn.HuberLoss with delta = ε)
    * epsilon_insensitive: max(0, abs(r) − ε);  squared_epsilon_insensitive: max(0, abs(r) − ε)²
    * quantile: the pinball loss of y − prediction, q·max(−r, 0) + (1 − q)·max(r, 0)
    """
    r = np.asarray(r, dtype=np.float64)
    u = np.abs(r)
    if loss == "squared_error":
        return r * r
    if loss == "huber":
        return np.where(u <= param, 0.5 * r * r, param * u - 0.5 * param * param)
    if loss == "epsilon_insensitive":
        return np.maximum(u - param, 0.0)
    if loss == "squared_epsilon_insensitive":
        return np.square(np.maximum(u - param, 0.0))
    if loss == "quantile":
        return np.where(r > 0, (1.0 - param) * r, -param * r)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def loss_derivative(r, loss="squared_error", param=0.0):
    """ℓ'(r) elementwise (at a kink: 0 for the absolute losses' r = 0 and abs(r) = ε, the one-sided value else)."""
    r = np.asarray(r, dtype=np.float64)
    u = np.abs(r)
    if loss == "squared_error":
        return 2.0 * r
    if loss == "huber":
        return np.where(u <= param, r, param * np.sign(r))
    if loss == "epsilon_insensitive":
        return np.where(u > param, np.sign(r), 0.0)
    if loss == "squared_epsilon_insensitive":
        return np.where(u > param, 2.0 * (r - param * np.sign(r)), 0.0)
    if loss == "quantile":
        return np.where(r > 0, 1.0 - param, np.where(r < 0, -param, 0.0))
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def batch_gradient(X, Y, theta, sw=None, loss="squared_error", param=0.0):
    """Gradient of the batch objective at ``theta`` (shape (k, d + 1), intercept last) and the loss.

    Returns ``(grad, loss)`` with ``grad`` of theta's shape. X may be float32; everything is float64.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    s = np.ones(X.shape[0]) if sw is None or len(sw) == 0 else np.asarray(sw, dtype=np.float64)
    W, b = theta[:, :-1], theta[:, -1]
    R = X @ W.T + b - Y  # residuals, (B, k)
    total = s.sum()
    if loss != "squared_error":
        D = s[:, None] * loss_derivative(R, loss, param)
        value = (s[:, None] * loss_value(R, loss, param)).sum() / total
        return np.hstack([D.T @ X / total, D.sum(axis=0)[:, None] / total]), value
    grad_w = (2.0 / total) * (s[:, None] * R).T @ X
    grad_b = (2.0 / total) * (s[:, None] * R).sum(axis=0)
    loss = (s[:, None] * R**2).sum() / total
    return np.hstack([grad_w, grad_b[:, None]]), loss


def column_nonzero_weight(X, sw=None):
    """The weight of the rows where each column of dense X is non-zero (``sw``; None or empty: 1 each; rows
    of weight <= 0 count nothing), float64, added in row order."""
    X = np.asarray(X)
    w = np.ones(len(X)) if sw is None or len(sw) == 0 else np.where(np.asarray(sw) > 0, sw, 0.0)
    out = np.zeros(X.shape[1])
    for i in range(len(X)):  # row order: the kernels' sums to the bit
        out += np.where(X[i] != 0, w[i], 0.0)
    return out


def loss(X, Y, theta, sw=None, loss="squared_error", param=0.0):
    """The objective (without penalty) over all rows of X."""
    return batch_gradient(X, Y, theta, sw, loss, param)[1]


# ----------------------------------------------------------------------------------------------------------
# Optimizer steps (torch.optim algorithms). g ← ∇ + weight_decay·θ unless the decay is decoupled.


def sgd(theta, grad, state, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    """θ ← θ − γ (g + λθ); torch.optim.SGD's other settings are its momentum forms (``momentum``, ``nesterov``)."""
    if maximize:
        raise ValueError("maximize=True is not supported")
    if momentum > 0 or nesterov:
        return _heavy_ball(theta, grad, state, lr, momentum, dampening, weight_decay, nesterov)
    theta -= lr * (grad + weight_decay * theta)
    return np.full_like(theta, lr)


def _heavy_ball(theta, grad, state, lr, momentum, dampening, weight_decay, nesterov):
    g = grad + weight_decay * theta
    if state["step"] == 1:
        b = g.copy()
    else:
        b = momentum * state["momentum_buffer"] + (1 - dampening) * g
    state["momentum_buffer"] = b
    theta -= lr * (g + momentum * b if nesterov else b)
    steady = (1 - dampening) / (1 - momentum)
    return np.full_like(theta, lr * (1 + momentum * steady) if nesterov else lr * steady)


def momentum(theta, grad, state, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0):
    """torch SGD with momentum μ: b ← g on the first step, then b ← μb + (1 − τ)g; θ ← θ − γb."""
    return _heavy_ball(theta, grad, state, lr, momentum, dampening, weight_decay, nesterov=False)


def nesterov(theta, grad, state, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0):
    """torch SGD with nesterov=True: b as for momentum, then θ ← θ − γ(g + μb)."""
    return _heavy_ball(theta, grad, state, lr, momentum, dampening, weight_decay, nesterov=True)


def adagrad(theta, grad, state, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
            eps=1e-10):
    """γ̃ = γ / (1 + (t − 1)η); sum ← sum + g²; θ ← θ − γ̃ g / (√sum + ε)."""
    g = grad + weight_decay * theta
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    state["sum"] = state["sum"] + g * g
    den = np.sqrt(state["sum"]) + eps
    theta -= clr * g / den
    return clr / den


def rmsprop(theta, grad, state, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False):
    """v ← αv + (1 − α)g²; centered: ḡ ← αḡ + (1 − α)g, ṽ = v − ḡ²; b ← μb + g/(√ṽ + ε); θ ← θ − γb."""
    g = grad + weight_decay * theta
    state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
    v = state["square_avg"]
    if centered:
        state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
        v = v - state["grad_avg"] ** 2
    avg = np.sqrt(v) + eps
    if momentum > 0:
        state["momentum_buffer"] = momentum * state["momentum_buffer"] + g / avg
        theta -= lr * state["momentum_buffer"]
    else:
        theta -= lr * g / avg
    return lr / (avg * (1 - momentum))


def _decayed(theta, grad, lr, weight_decay, decoupled):
    """The gradient after torch's weight decay: coupled, g + λθ; or decoupled, θ ← θ(1 − γλ) and g as is."""
    if decoupled:
        theta *= 1 - lr * weight_decay
        return grad
    return grad + weight_decay * theta


def _moments(state, g, b1, b2):
    """Adam-style moving averages: m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²."""
    state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
    state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g


def _adam(theta, grad, state, lr, betas, eps, weight_decay, amsgrad, decoupled, bias_correction):
    b1, b2 = betas
    t = state["step"]
    g = _decayed(theta, grad, lr, weight_decay, decoupled)
    _moments(state, g, b1, b2)
    v = state["exp_avg_sq"]
    if amsgrad:  # torch keeps the max of the raw second moment, then bias-corrects it
        state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        v = state["max_exp_avg_sq"]
    c1, c2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
    den = np.sqrt(v) / math.sqrt(c2) + eps
    step = lr / c1
    theta -= step * state["exp_avg"] / den
    return step / den


def adam(theta, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
         bias_correction=True):
    """m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; m̂ = m/(1 − β₁ᵗ); v̂ = v/(1 − β₂ᵗ); θ ← θ − γm̂/(√v̂ + ε).

    ``bias_correction=False`` (a fastgd extension, for teaching; torch always corrects) uses m and v as is.
    """
    return _adam(theta, grad, state, lr, betas, eps, weight_decay, amsgrad, False, bias_correction)


def adamw(theta, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
          bias_correction=True):
    """Adam with decoupled weight decay: θ ← θ(1 − γλ) first, then the Adam step on the plain gradient."""
    return _adam(theta, grad, state, lr, betas, eps, weight_decay, amsgrad, True, bias_correction)


def adamax(theta, grad, state, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """m ← β₁m + (1 − β₁)g; u ← max(β₂u, abs(g) + ε); θ ← θ − γ m / ((1 − β₁ᵗ) u)."""
    b1, b2 = betas
    g = grad + weight_decay * theta
    state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
    state["exp_inf"] = np.maximum(b2 * state["exp_inf"], np.abs(g) + eps)
    clr = lr / (1 - b1 ** state["step"])
    theta -= clr * state["exp_avg"] / state["exp_inf"]
    return clr / state["exp_inf"]


def nadam(theta, grad, state, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3, decoupled_weight_decay=False):
    """μₜ = β₁(1 − ½·0.96^(tψ)); m̂ = μₜ₊₁m/(1 − Πμ₁..ₜ₊₁) + (1 − μₜ)g/(1 − Πμ₁..ₜ); θ ← θ − γm̂/(√v̂ + ε)."""
    b1, b2 = betas
    t = state["step"]
    g = _decayed(theta, grad, lr, weight_decay, decoupled_weight_decay)
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    state["mu_product"] = state["mu_product"] * mu
    mu_prod = state["mu_product"]
    _moments(state, g, b1, b2)
    den = np.sqrt(state["exp_avg_sq"] / (1 - b2**t)) + eps
    c1 = lr * (1 - mu) / (1 - mu_prod)
    c2 = lr * mu_next / (1 - mu_prod * mu_next)
    theta -= c1 * g / den
    theta -= c2 * state["exp_avg"] / den
    return (c1 + c2) / den


def adadelta(theta, grad, state, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    """v ← ρv + (1 − ρ)g²; Δ = √(u + ε)/√(v + ε)·g; u ← ρu + (1 − ρ)Δ²; θ ← θ − γΔ (v: square_avg, u: acc_delta)."""
    g = grad + weight_decay * theta
    state["square_avg"] = rho * state["square_avg"] + (1 - rho) * g * g
    scale = np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps)
    delta = scale * g
    state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta
    theta -= lr * delta
    return lr * scale


# ----------------------------------------------------------------------------------------------------------
# A whole epoch


def epoch(X, Y, theta, state, step, batch_size, order, sw=None, fit_intercept=True, schedule=None, l1=0.0,
          l2=0.0, loss="squared_error", param=0.0):
    """One epoch of mini-batch training, exactly as the compiled kernel does it.

    ``theta`` (k, d + 1) and ``state`` (a dict, torch's names) are updated in place. ``step`` is the
    optimizer step function (e.g. ``functools.partial(adam, lr=0.01)``), ``order`` the batch indices in the
    order they are visited, ``schedule`` a callable ``(lr, t) -> lr_t`` (None: constant). The step function's
    ``lr`` keyword (or default) is the base learning rate. Returns the mean loss seen during the epoch.
    """
    X = np.asarray(X)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    n, d = X.shape
    base_lr = _base_lr(step)
    seen, total = 0.0, 0.0
    for b in order:
        rows = slice(b * batch_size, min((b + 1) * batch_size, n))
        s = None if sw is None or len(sw) == 0 else sw[rows]
        weight = rows.stop - rows.start if s is None else float(np.sum(s))
        if not weight > 0:
            continue
        grad, batch_loss = batch_gradient(X[rows], Y[rows], theta, s, loss, param)
        seen += batch_loss * weight
        total += weight
        grad[:, :d] += l2 * theta[:, :d]
        if not fit_intercept:
            grad[:, d] = 0.0
        state["step"] += 1
        lr = base_lr if schedule is None else schedule(base_lr, state["step"])
        flat = theta.reshape(-1)  # a view: the step updates theta in place
        eta = step(flat, grad.reshape(-1), state, lr=lr).reshape(theta.shape)
        if l1 > 0:
            w = theta[:, :d]
            w[...] = np.sign(w) * np.maximum(np.abs(w) - eta[:, :d] * l1, 0.0)
    return seen / total if total else math.nan


def _base_lr(step):
    """The ``lr`` a step function was bound to (``functools.partial``), else its signature default."""
    keywords = getattr(step, "keywords", {})
    if "lr" in keywords:
        return keywords["lr"]
    return inspect.signature(getattr(step, "func", step)).parameters["lr"].default
