"""fastgd.minimize: gradient descent on any differentiable function, with the registry's optimizers.

The update rules are the compiled ones LinearRegressor uses (``fastgd._kernels.update``), applied to the
gradient of ``fun``: plain gradient descent with ``optimizer="sgd"``, or momentum, Nesterov, Adagrad,
RMSprop, Adam and the rest. The result records the whole trajectory for plotting.
"""

import math

import numpy as np
from scipy.optimize import OptimizeResult

from . import _kernels as K
from .optimizers import get_optimizer
from .schedules import Constant, Schedule


def numerical_gradient(fun, x, f_evals=None):
    """Central differences, h_i = ε^(1/3)·max(1, |x_i|): 2·n evaluations of ``fun`` per gradient, with an
    error of order h² (about 1e-10 relative for smooth functions)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.empty_like(x)
    for i in range(x.size):
        h = np.finfo(float).eps ** (1 / 3) * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (float(fun(xp)) - float(fun(xm))) / (2 * h)
    if f_evals is not None:
        f_evals[0] += 2 * x.size
    return g


def minimize(fun, x0, grad=None, optimizer="sgd", learning_rate=None, max_iter=1000, tol=1e-6, callback=None,
             diverge_at=1e100):
    """Minimize ``fun`` from ``x0`` by gradient descent with one of fastgd's optimizers.

    Parameters
    ----------
    fun : callable ``fun(x) -> float`` for a 1-D float64 array x (plain Python or Numba-jitted).
    x0 : array_like, the starting point.
    grad : callable ``grad(x) -> array`` or None. None: central differences (``numerical_gradient``), which
        cost 2·len(x) evaluations of ``fun`` per iteration.
    optimizer : name or fastgd.optimizers.Optimizer, default "sgd" (plain gradient descent, x ← x − γ∇f).
    learning_rate : float, fastgd.schedules.Schedule or None. None: the optimizer object's ``lr``, or for a
        name the registry's ``start_lr``. A schedule is a function of the iteration count.
    max_iter : int, the most updates to make.
    tol : float, stop when ‖∇f(x)‖ < tol (the gradient norm rule).
    callback : callable ``callback(intermediate_result)`` called after every update with an OptimizeResult
        holding ``x``, ``fun`` and ``nit``; returning True stops early.
    diverge_at : float, declare divergence when abs(f) or ‖x‖ exceeds it (or anything becomes non-finite).

    Returns
    -------
    scipy.optimize.OptimizeResult with ``x``, ``fun``, ``jac`` (the last gradient), ``nit``, ``nfev``,
    ``njev``, ``success``, ``message``, ``status`` (0 converged, 1 max_iter reached, 2 diverged, 3 stopped by
    the callback), and the trajectory: ``path`` (nit + 1, n) iterates and ``values`` (nit + 1,) of f.
    """
    opt = get_optimizer(optimizer)
    if isinstance(optimizer, str):
        opt.set_params(lr=type(opt).start_lr)
    if learning_rate is None:
        base, sched = Constant().pack(opt.lr)
    elif isinstance(learning_rate, Schedule):
        base, sched = learning_rate.validate().pack(opt.lr)
    elif isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool) and learning_rate > 0:
        base, sched = Constant().pack(float(learning_rate))
    else:
        raise ValueError(f"learning_rate must be a positive float, a schedule or None, got {learning_rate!r}")
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 0):
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    x = np.array(x0, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x0 must be a non-empty array of finite numbers, got {x0!r}")
    counts = [0, 0]  # function and gradient evaluations

    def f(z):
        counts[0] += 1
        return float(fun(z))

    def g(z):
        counts[1] += 1
        if grad is None:
            fe = [0]
            out = numerical_gradient(fun, z, fe)
            counts[0] += fe[0]
            return out
        return np.asarray(grad(z), dtype=np.float64).ravel()

    hp = opt.pack()
    state, scalars = opt.init_state(x.size)
    eta = np.empty(0)
    path, values = [x.copy()], [f(x)]
    jac = g(x)
    status, message = 1, "Maximum number of iterations reached."
    for it in range(max_iter + 1):
        if not (np.all(np.isfinite(x)) and math.isfinite(values[-1]) and np.all(np.isfinite(jac))) \
                or abs(values[-1]) > diverge_at or np.linalg.norm(x) > diverge_at:
            status, message = 2, (f"Diverged after {it} iterations: f or x became non-finite or exceeded "
                                  f"{diverge_at:g}; lower the learning rate.")
            break
        if np.linalg.norm(jac) < tol:
            status, message = 0, f"Converged: gradient norm below tol={tol:g} after {it} iterations."
            break
        if it == max_iter:
            break
        scalars[0] += 1.0
        K.update(opt.code, x, jac, state, scalars, hp, K.lr_at(base, sched, scalars[0]), eta)
        path.append(x.copy())
        values.append(f(x))
        jac = g(x)
        if callback is not None and callback(OptimizeResult(x=x.copy(), fun=values[-1], nit=it + 1)):
            status, message = 3, "Stopped by the callback."
            break
    return OptimizeResult(x=x, fun=values[-1], jac=jac, nit=len(path) - 1, nfev=counts[0], njev=counts[1],
                          success=status == 0, status=status, message=message, path=np.array(path),
                          fvals=np.array(values), optimizer=opt)


__all__ = ["minimize", "numerical_gradient"]
