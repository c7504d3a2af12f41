"""fastgd.minimize: gradient descent on any differentiable function, with the registry's optimizers.

The calling convention is ``scipy.optimize.minimize``'s (``fun, x0, args, jac, callback, tol, options``) and
the result is a ``scipy.optimize.OptimizeResult`` with SciPy's field names, so code moves between the two by
changing the import; what differs is the choice of ``optimizer`` (instead of SciPy's ``method``) and the
recorded trajectory.

Each step applies the update rule of the chosen optimizer (plain gradient descent with ``optimizer="sgd"``, or
momentum, Nesterov, Adagrad, RMSprop, Adam and the rest) through ``fastgd._kernels.update``: the Numba
kernels, whose formulas the native backend repeats (it has no per-step entry point), checked against
``fastgd.reference`` in the tests.
"""

import inspect
import math
import warnings

import numpy as np
from scipy.optimize import OptimizeResult

from . import _kernels as K
from .optimizers import OPTIMIZERS, Optimizer, get_optimizer
from ._validation import Boolean, InstanceOf, Interval, Options, check
from .schedules import Constant, Schedule

FINITE_DIFFERENCES = ("3-point", "2-point")
_DEFAULT_MAXITER = 1000
_DEFAULT_GTOL = 1e-6
# return_all=None records the path while it stays below this size (n * (maxiter + 1) float64s)
_AUTO_PATH_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------------------------------------
# declarative validation: each argument's constraint, and one function that checks and names it


# name -> accepted values (fastgd._validation, the constraint tables the estimator, optimizers and schedules use
# too). Numbers may be NumPy scalars (np.float32, np.int64); bools are not numbers (max_iter=True is a
# mistake, not 1).
_CONSTRAINTS = {
    "max_iter": [Interval(0, None, integer=True)],
    "tol": [Interval(0, None, label="a non-negative number"), Options(None)],
    "gtol": [Interval(0, None, label="a non-negative number")],
    "norm": [Interval(1, None, label="a number >= 1"), Options(math.inf, -math.inf)],
    "eps": [Interval(0, None, closed="neither", label="a positive finite number"), Options(None)],
    "disp": [Boolean()],
    "return_all": [Options(True, False, None)],
    "diverge_at": [Interval(0, None, closed="neither", label="a positive number"), Options(math.inf)],
    "learning_rate": [Interval(0, None, closed="neither", label="a positive finite number"),
                      InstanceOf(Schedule, "a schedule"), Options(None)],
}


def _check(name, value, label=None):
    return check(None, label or name, value, _CONSTRAINTS[name])


# ----------------------------------------------------------------------------------------------------------
# what fun and jac return


def _scalar(value, who):
    """``value`` as a float if it is one real number; otherwise a ValueError naming ``who`` and the fix."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # e.g. a ragged sequence
        raise ValueError(f"{who} must return one real number (a float), got {type(value).__name__}") from exc
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        shape = f" of shape {arr.shape}" if arr.ndim else ""
        raise ValueError(f"{who} must return one real number (a float), got {type(value).__name__}{shape} with "
                         f"dtype {arr.dtype}: return a scalar, e.g. float(...)")
    return float(arr.reshape(()))


def _vector(value, n, who):
    """``value`` as a fresh float64 array of shape (n,), or a ValueError naming ``who`` and the fix. A copy,
    so a gradient that aliases x (or a buffer ``who`` reuses) cannot change under the update."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise ValueError(f"{who} must return an array of shape ({n},), got {type(value).__name__}") from exc
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{who} must return real numbers, got an array of dtype {arr.dtype}: return a float "
                         f"array of shape ({n},)")
    if arr.shape != (n,) and not (n == 1 and arr.size == 1 and arr.ndim <= 1):
        raise ValueError(f"{who} must return an array of shape ({n},), the shape of x0, got shape {arr.shape}: "
                         f"return one partial derivative per coordinate of x")
    return np.array(arr, dtype=np.float64).reshape(n)


def _non_finite(value, who, it):
    where = "at x0" if it == 0 else f"after {it} iterations"
    if np.ndim(value) == 0:
        return f"{who} returned {value} {where}"
    bad = np.flatnonzero(~np.isfinite(value))
    verb = "gave" if who.startswith("the update") else "returned"
    more = ", ..." if bad.size > 5 else ""
    return f"{who} {verb} non-finite values {where} (at indices {bad[:5].tolist()}{more})"


def numerical_gradient(fun, x, f_evals=None, args=(), eps=None):
    """Central differences, h_i = ε^(1/3)·max(1, |x_i|) (``eps`` given: h_i = eps): 2·n evaluations of ``fun``
    per gradient, with an error of order h² (about 1e-10 relative for smooth functions). SciPy's
    ``jac="3-point"``. ``f_evals``, a one-element list, is incremented by the number of evaluations."""
    x = np.asarray(x, dtype=np.float64)
    g = np.empty_like(x)
    for i in range(x.size):
        h = np.finfo(float).eps ** (1 / 3) * max(1.0, abs(x[i])) if eps is None else eps
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (_scalar(fun(xp, *args), "fun") - _scalar(fun(xm, *args), "fun")) / (2 * h)
    if f_evals is not None:
        f_evals[0] += 2 * x.size
    return g


def forward_gradient(fun, x, fx, f_evals=None, args=(), eps=None):
    """Forward differences from the known value ``fx = fun(x)``, h_i = √ε·max(1, |x_i|) (or ``eps``): n
    evaluations, error of order h (about 1e-8 relative). SciPy's ``jac="2-point"``."""
    x = np.asarray(x, dtype=np.float64)
    g = np.empty_like(x)
    for i in range(x.size):
        h = np.sqrt(np.finfo(float).eps) * max(1.0, abs(x[i])) if eps is None else eps
        xp = x.copy()
        xp[i] += h
        g[i] = (_scalar(fun(xp, *args), "fun") - fx) / h
    if f_evals is not None:
        f_evals[0] += x.size
    return g


# ----------------------------------------------------------------------------------------------------------


def _legacy_positional(args, jac, grad):
    """Before 0.2 the signature was ``minimize(fun, x0, grad, optimizer, ...)``; recognise that form (the 4th
    positional argument is an optimizer, or the 3rd a function) and map it onto ``jac`` / ``optimizer``."""
    optimizer_in_jac = isinstance(jac, Optimizer) or (isinstance(jac, str) and jac in OPTIMIZERS)
    if not (optimizer_in_jac or callable(args)):
        return args, jac, grad, None
    if grad is not None:
        raise ValueError("grad= given together with a gradient in the third positional place: pass the gradient "
                         "once, as jac=")
    warnings.warn("minimize(fun, x0, grad, optimizer) is deprecated: pass minimize(fun, x0, jac=grad, "
                  "optimizer=...) (SciPy's convention; the third positional argument is args)",
                  DeprecationWarning, stacklevel=3)
    return (), (jac if not optimizer_in_jac else None), args, (jac if optimizer_in_jac else None)


def _wants_result(callback):
    """SciPy's rule: a callback whose only parameter is named ``intermediate_result`` gets an OptimizeResult;
    any other gets a copy of x."""
    try:
        params = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # builtins, some compiled callables
        return False
    return set(params) == {"intermediate_result"}


# SciPy's arguments that gradient descent has no counterpart for: what to use instead
_SCIPY_ONLY = {
    "method": "fastgd.minimize is first-order gradient descent: choose its update rule with optimizer= ('sgd', "
              "'momentum', 'adam', ...); for SciPy's methods call scipy.optimize.minimize",
    "hess": "gradient descent uses first derivatives only (jac=); for a Newton method with a Hessian call "
            "scipy.optimize.minimize(method='trust-exact' or 'Newton-CG', hess=...)",
    "hessp": "gradient descent uses first derivatives only (jac=); for Hessian-vector products call "
             "scipy.optimize.minimize(method='Newton-CG' or 'trust-krylov', hessp=...)",
    "bounds": "fastgd.minimize is unconstrained: call scipy.optimize.minimize(method='L-BFGS-B', bounds=...), or "
              "reparametrize (e.g. x = lo + (hi - lo) / (1 + exp(-z)), minimized over z)",
    "constraints": "fastgd.minimize is unconstrained: call scipy.optimize.minimize(method='SLSQP' or "
                   "'trust-constr', constraints=...), or add a penalty for the constraint to fun",
}


def minimize(fun, x0, args=(), jac=None, callback=None, tol=None, options=None, *, optimizer="sgd",
             learning_rate=None, grad=None, max_iter=None, diverge_at=1e100, method=None, hess=None, hessp=None,
             bounds=None, constraints=None):
    """Minimize ``fun`` from ``x0`` by gradient descent with one of fastgd's optimizers.

    Called as ``scipy.optimize.minimize`` (without ``method``; ``jac``, ``callback``, ``tol`` and ``options``
    are best passed by keyword, since SciPy's positions for them differ). Each example below converges
    (``success`` is True: the gradient norm fell below ``gtol`` within ``maxiter`` iterations; the tests run
    them). The rate and ``maxiter`` matter: Adam at 0.01 needs 5452 iterations on Rosenbrock's function, more
    than 5000.

    >>> import numpy as np, scipy.optimize, fastgd
    >>> res = fastgd.minimize(lambda x: float((x[0] - 3.0) ** 2), [0.0],
    ...                       jac=lambda x: 2 * (x - 3.0), optimizer="adam", learning_rate=0.1)
    >>> res.success, np.round(res.x, 6)
    (True, array([3.]))
    >>> res = fastgd.minimize(scipy.optimize.rosen, [-1.2, 1.0], jac=scipy.optimize.rosen_der,
    ...                       optimizer="adam", learning_rate=0.02, options={"maxiter": 10_000})
    >>> res.success, np.round(res.x, 5)
    (True, array([1., 1.]))

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` for a 1-D float64 array x of x0's size (plain Python or Numba-jitted). It
        receives a copy of x. With ``jac=True`` it returns the pair ``(f, gradient)``.
    x0 : array_like of shape (n,)
        The starting point, finite (a scalar is taken as n = 1).
    args : tuple, default ()
        Extra arguments passed to ``fun`` and ``jac``. (The old form ``minimize(fun, x0, grad, optimizer)``,
        recognised by a callable here or an optimizer in the place of ``jac``, still works with a
        DeprecationWarning.)
    jac : callable, True, "3-point", "2-point" or None, default None
        A callable ``jac(x, *args)`` returns the gradient, an array of shape (n,). True: ``fun`` returns
        ``(f, gradient)``. None or "3-point": central differences (``numerical_gradient``, 2·n evaluations of
        ``fun`` per iteration; SciPy's default is "2-point"). "2-point": forward differences
        (``forward_gradient``, n evaluations).
    callback : callable or None, default None
        Called after every update. As in SciPy, a callable whose only parameter is named
        ``intermediate_result`` receives an OptimizeResult with ``x``, ``fun``, ``jac`` and ``nit``; any other
        receives a copy of x. Raising ``StopIteration`` or returning True stops.
    tol : float or None, default None
        The gradient-norm tolerance: stop when ‖∇f(x)‖ < tol. ``options["gtol"]`` takes precedence (as in
        SciPy); if neither is given, 1e-6.
    options : dict or None, default None
        Any of ``maxiter`` (int, default 1000), ``gtol`` (float), ``norm`` (the order of the gradient norm,
        default 2; SciPy's BFGS uses np.inf), ``eps`` (an absolute finite-difference step; default: relative
        steps as above), ``disp`` (bool: print the outcome), ``return_all`` (bool or None: record the path;
        None records it unless it would take more than 256 MB) and ``diverge_at``. Unknown keys raise
        ValueError.
    optimizer : str or fastgd.optimizers.Optimizer, default "sgd"
        A registry name or an optimizer object; "sgd" is plain gradient descent, x ← x − γ∇f.
    learning_rate : float, fastgd.schedules.Schedule or None, default None
        None: the optimizer object's ``lr``, or for a name the registry's ``start_lr``. A schedule is a
        function of the iteration count.
    grad : callable or None, default None
        The same as ``jac`` (its name before SciPy's convention was adopted); give one of them.
    max_iter : int or None, default None
        The same as ``options["maxiter"]``: the most updates to make (default 1000).
    diverge_at : float, default 1e100
        Declare divergence when abs(f) or ‖x‖ exceeds it (or anything becomes non-finite); a start beyond it
        raises ValueError.
    method, hess, hessp, bounds, constraints
        SciPy's, not supported: giving one raises ValueError naming what to use instead.

    Returns
    -------
    scipy.optimize.OptimizeResult
        SciPy's fields ``x``, ``fun``, ``jac`` (the gradient at x), ``nit``, ``nfev`` (calls of ``fun``,
        finite differences included), ``njev`` (gradient evaluations), ``status``, ``success`` (status == 0)
        and ``message``, plus ``path`` (an (nit + 1, n) array of the iterates x0, x1, ..., or None when not
        recorded), ``fvals`` (an (nit + 1,) array of f along the path) and ``optimizer`` (the optimizer
        object used). ``status``: 0 converged (gradient norm below gtol), 1 maxiter reached, 2 diverged or
        ``fun``/the gradient returned a non-finite value (``x`` is then the last iterate, which may be
        non-finite; ``message`` says which and where), 3 stopped by the callback (it returned True, the bool,
        or raised StopIteration).

    Raises
    ------
    ValueError
        Naming the argument, for invalid arguments, and when ``fun`` or ``jac`` return something other than
        a real scalar / a real array of x0's shape, or non-finite values at x0, or when abs(f) or ‖x‖ at x0
        already exceeds ``diverge_at``.
    """
    given = {"method": method, "hess": hess, "hessp": hessp, "bounds": bounds, "constraints": constraints}
    for name, value in given.items():
        if value is not None and not (name == "constraints" and isinstance(value, (tuple, list)) and not value):
            raise ValueError(f"{name}= (scipy.optimize.minimize's) is not supported: {_SCIPY_ONLY[name]}")
    args, jac, grad, legacy_optimizer = _legacy_positional(args, jac, grad)
    if legacy_optimizer is not None:
        optimizer = legacy_optimizer
    if grad is not None:
        if jac is not None:
            raise ValueError("jac and grad are the same argument (grad is its old name): give only jac")
        jac = grad
    if not callable(fun):
        raise ValueError(f"fun must be a callable fun(x, *args) -> float, got {fun!r}")
    if not isinstance(args, tuple):
        args = (args,)  # as SciPy does
    if not (jac is None or jac is True or callable(jac) or (isinstance(jac, str) and jac in FINITE_DIFFERENCES)):
        hint = (" (fastgd has no method argument: choose the algorithm with optimizer=)"
                if isinstance(jac, str) else "")
        raise ValueError(f"jac must be a callable jac(x, *args) -> array, True (fun returns (f, gradient)), "
                         f"'3-point', '2-point' or None (finite differences), got {jac!r}{hint}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {callback!r}")

    options = {} if options is None else options
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict or None, got {options!r}")
    known = ("maxiter", "gtol", "norm", "eps", "disp", "return_all", "diverge_at")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"options has unknown keys {unknown}; fastgd.minimize understands {list(known)}")
    if max_iter is not None and "maxiter" in options and options["maxiter"] != max_iter:
        raise ValueError(f"max_iter={max_iter!r} and options['maxiter']={options['maxiter']!r} disagree: give one")
    maxiter = _check("max_iter", options.get("maxiter", _DEFAULT_MAXITER if max_iter is None else max_iter),
                     "max_iter" if "maxiter" not in options else "options['maxiter']")
    _check("tol", tol)
    gtol = float(_check("gtol", options.get("gtol", _DEFAULT_GTOL if tol is None else tol),
                        "options['gtol']" if "gtol" in options else "tol"))
    norm = float(_check("norm", options.get("norm", 2), "options['norm']"))
    eps = _check("eps", options.get("eps"), "options['eps']")
    disp = bool(_check("disp", options.get("disp", False), "options['disp']"))
    diverge_name = "options['diverge_at']" if "diverge_at" in options else "diverge_at"
    diverge_at = float(_check("diverge_at", options.get("diverge_at", diverge_at), diverge_name))
    return_all = _check("return_all", options.get("return_all"), "options['return_all']")
    _check("learning_rate", learning_rate)

    opt = get_optimizer(optimizer)
    if isinstance(optimizer, str):
        opt.set_params(lr=type(opt).start_lr)
    if learning_rate is None:
        base, sched = Constant().pack(opt.lr)
    elif isinstance(learning_rate, Schedule):
        base, sched = learning_rate.validate().pack(opt.lr)
    else:
        base, sched = Constant().pack(float(learning_rate))

    try:
        x = np.atleast_1d(np.asarray(x0))
        if x.dtype.kind not in "iuf":
            raise TypeError
        x = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x0 must be an array of real numbers, got {x0!r}") from exc
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x0 must be a non-empty 1-D array of finite numbers, got shape {x.shape}"
                         + (" with non-finite values" if x.size and not np.all(np.isfinite(x)) else "")
                         + (": pass x0.ravel() and reshape inside fun" if x.ndim > 1 else ""))
    n = x.size
    if return_all is None:
        return_all = n * (maxiter + 1) * 8 <= _AUTO_PATH_BYTES
    counts = [0, 0]  # function and gradient evaluations

    def f_and_g(z):
        """f(z) and the gradient at z, validated (shapes, dtypes); finiteness is the caller's to judge."""
        counts[1] += 1
        if jac is True:
            counts[0] += 1
            out = fun(z.copy(), *args)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise ValueError(f"with jac=True, fun must return a pair (f, gradient), got {type(out).__name__}")
            return _scalar(out[0], "fun (its first return value, jac=True)"), \
                _vector(out[1], n, "fun (its second return value, the gradient, jac=True)")
        counts[0] += 1
        fz = _scalar(fun(z.copy(), *args), "fun")
        if callable(jac):
            return fz, _vector(jac(z.copy(), *args), n, "jac")
        fe = [0]
        if jac == "2-point":
            gz = forward_gradient(fun, z, fz, fe, args, eps) if math.isfinite(fz) else np.full(n, np.nan)
        else:
            gz = numerical_gradient(fun, z, fe, args, eps)
        counts[0] += fe[0]
        return fz, gz

    hp = opt.pack()
    state, scalars = opt.init_state(n)
    eta = np.empty(0)
    fx, g = f_and_g(x)
    if not math.isfinite(fx):
        raise ValueError(_non_finite(fx, "fun", 0) + ": start from a point where fun is finite")
    if not np.all(np.isfinite(g)):
        raise ValueError(_non_finite(g, "jac" if callable(jac) else "the gradient", 0)
                         + ": start from a point where the gradient is finite")
    _check_start_below(diverge_at, diverge_name, fx, x)
    path, values = ([x.copy()] if return_all else None), [fx]
    pass_result = callback is not None and _wants_result(callback)
    status, message = 1, "Maximum number of iterations reached."
    it = 0
    while True:
        bad = [_non_finite(v, who, it) for v, who in ((x, "the update (x)"), (fx, "fun"), (g, "the gradient"))
               if not np.all(np.isfinite(v))]
        if bad and np.all(np.isfinite(x)) and np.linalg.norm(x) <= diverge_at:
            # the steps stayed finite and bounded: fun (or its gradient) itself is not finite there
            shown = np.array2string(x[:5], precision=6, separator=", ")[:-1] + (", ...]" if n > 5 else "]")
            status, message = 2, (f"Stopped after {it} iterations: {bad[0]}, at the finite point x = {shown} "
                                  f"(result.x){f', where f was {values[-2]:.6g} one step before' if it else ''}. "
                                  f"Make fun and its gradient finite wherever the steps may go (e.g. guard a "
                                  f"log, square root or division), or start from another x0.")
            break
        if bad or abs(fx) > diverge_at or np.linalg.norm(x) > diverge_at:
            status, message = 2, (f"Diverged after {it} iterations: "
                                  + (bad[0] if bad else f"f or x exceeded diverge_at={diverge_at:g}")
                                  + "; lower the learning rate.")
            break
        if np.linalg.norm(g, ord=norm) < gtol:
            status, message = 0, f"Converged: gradient norm below gtol={gtol:g} after {it} iterations."
            break
        if it == maxiter:
            break
        it += 1
        scalars[0] += 1.0
        K.update(opt.code, x, g, state, scalars, hp, K.lr_at(base, sched, scalars[0]), eta)
        if return_all:
            path.append(x.copy())
        fx, g = f_and_g(x)
        values.append(fx)
        if callback is not None:
            try:
                stop = callback(OptimizeResult(x=x.copy(), fun=fx, jac=g.copy(), nit=it) if pass_result
                                else x.copy())
            except StopIteration:
                stop = True
            if isinstance(stop, (bool, np.bool_)) and stop:
                status, message = 3, "Stopped by the callback."
                break
    if disp:
        print(f"{message}\n         Current function value: {fx:.6g}\n         Iterations: {it}\n"
              f"         Function evaluations: {counts[0]}\n         Gradient evaluations: {counts[1]}")
    return OptimizeResult(x=x, fun=fx, jac=g, nit=it, nfev=counts[0], njev=counts[1], status=status,
                          success=status == 0, message=message,
                          path=np.array(path) if return_all else None, fvals=np.array(values), optimizer=opt)


def _check_start_below(diverge_at, name, fx, x):
    """A start whose abs(f) or ‖x‖ already exceeds ``diverge_at`` would count as diverged before any step (and
    no learning rate changes that): a ValueError naming the setting, the start's value and one that works."""
    size = float(np.linalg.norm(x))
    if not (abs(fx) > diverge_at or size > diverge_at):
        return
    what, value = ("abs(fun(x0))", abs(fx)) if abs(fx) > diverge_at else ("the norm of x0", size)
    room = value * 1e6 if value < 1e300 else math.inf  # room for the steps to overshoot before they count
    raise ValueError(f"{name}={diverge_at:g} is below {what} = {value:.3g}, so the start would count as diverged "
                     f"before any step: set {name} above it ({name}={room:.0e} or math.inf), or rescale fun "
                     f"or x")


__all__ = ["minimize", "numerical_gradient", "forward_gradient"]
