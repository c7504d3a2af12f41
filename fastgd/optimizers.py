"""Optimizers: the one registry that drives the kernels, the tests, the benchmarks and the docs.

Each class is a registry entry: its name, its integer code and the names of its packed hyperparameters in
:mod:`fastgd._rules` (where its compiled step, e.g. ``adam_step``, is written once for both backends), the
names of its per-coordinate state (torch's names), its reference step in :mod:`fastgd.reference`, and its
hyperparameters with torch.optim's defaults as constructor arguments. Instances hold hyperparameters only (like
scikit-learn estimators: ``get_params``/``set_params``, so ``clone`` and ``GridSearchCV`` reach them as
``optimizer__lr``); the training state lives in arrays owned by the caller.

``OPTIMIZERS`` maps each name to its class. Adding an optimizer touches three files: its rule in
``fastgd._rules`` (a code, its ``*_HP`` names, a ``*_step`` function and one branch of ``update``; both compiled
backends use it), its step in ``fastgd.reference``, and its class here (listed in ``OPTIMIZERS``, with a
``variant``). Tests, golden torch trajectories (``tests/golden/make_golden.py``), benchmarks and the docs
pick it up from ``OPTIMIZERS``.

Defaults are torch's, except that ``Momentum`` and ``Nesterov`` default to ``momentum=0.9`` (torch's SGD
defaults to 0, which would make them plain SGD). ``start_lr`` is the estimator's starting rate when the
optimizer is given by name (torch's ``lr`` defaults are tuned for neural networks; 1e-3 makes plain SGD crawl
on standardized least squares).
"""

import functools
import inspect

import numpy as np

from . import _rules as K  # the vector lengths and codes the kernels take
from . import _rules as R
from . import reference
from ._params import Params
from ._validation import Boolean, Interval, Predicate, check_all


POSITIVE = Interval(0, None, closed="neither")
NON_NEGATIVE = Interval(0, None)
UNIT = Interval(0, 1)  # [0, 1]
UNIT_OPEN = Interval(0, 1, closed="left")  # [0, 1)
BETAS = Predicate(lambda b: isinstance(b, (tuple, list)) and len(b) == 2 and all(UNIT_OPEN.accepts(v) for v in b),
                  "a pair (beta1, beta2) of numbers in [0.0, 1.0)")
FLAG = Boolean()


class Optimizer(Params):
    """Base class: hyperparameter handling shared by every optimizer."""

    name = None
    code = None  # the rule's code in fastgd._rules
    hp_names = R.HP_COMMON  # the rule's packed hyperparameters, in order (fastgd._rules.<NAME>_HP)
    slots = ()
    reference = None
    # Non-default settings that exercise every branch of the rule (each class declares its own): the tests
    # and the golden torch trajectories run each optimizer with its defaults and with these.
    variant = None
    # The starting rate LinearRegressor uses when this optimizer is named by a string (its "adaptive" rate
    # then shrinks it as needed). Chosen on standardized data: it reaches within 1e-7 of the least-squares
    # R^2 on a well-conditioned problem and stays stable with strongly correlated features (measured with
    # batch 32). The object's own ``lr`` default is torch's.
    start_lr = None
    _noun = "hyperparameter"

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- validation ---------------------------------------------------------------------------------------
    # Each class lists its hyperparameters' constraints (fastgd._validation); subclasses add to their base's.
    _constraints = {"lr": [POSITIVE], "weight_decay": [NON_NEGATIVE]}

    def validate(self):
        """Raise ``ValueError`` naming the hyperparameter if any is out of range; return self."""
        table = {}
        for cls in reversed(type(self).__mro__):
            table.update(cls.__dict__.get("_constraints", {}))
        check_all(type(self).__name__, self.get_params(), table)
        return self

    # -- what the kernel and the reference need ----------------------------------------------------------
    def _hp_values(self):
        """Every hyperparameter under the name the rule uses: the parameters, with ``betas`` as beta1, beta2."""
        values = self.get_params()
        if "betas" in values:
            values["beta1"], values["beta2"] = values["betas"]
        return values

    def pack(self):
        """The kernel's hyperparameter vector ``hp`` (float64, length ``HP_LEN``), in ``hp_names`` order."""
        values = self._hp_values()
        missing = [n for n in self.hp_names if n not in values]
        if missing or len(self.hp_names) > K.HP_LEN:
            raise TypeError(f"{type(self).__name__}: its rule's hp_names {self.hp_names} need {missing} (it has "
                            f"{sorted(values)}) and at most HP_LEN = {K.HP_LEN} values")
        hp = np.zeros(K.HP_LEN)
        hp[: len(self.hp_names)] = [float(values[n]) for n in self.hp_names]
        return hp

    def init_state(self, n_coords):
        """Fresh optimizer state for ``n_coords`` parameters: ``(state, scalars)`` as the kernel takes them."""
        state = np.zeros((len(self.slots), n_coords))
        scalars = np.zeros(K.N_SCALARS)
        scalars[1] = 1.0  # NAdam's running product of momentum coefficients
        return state, scalars

    def reference_step(self):
        """The plain-NumPy step function of :mod:`fastgd.reference`, bound to these hyperparameters."""
        return functools.partial(self.reference, **self.get_params())

    def state_dict(self, state, scalars):
        """The kernel's state arrays as the reference (and torch) name them."""
        out = {name: state[i].copy() for i, name in enumerate(self.slots)}
        out["step"] = int(scalars[0])
        out["mu_product"] = float(scalars[1])
        return out


class _ByMomentum:
    """A registry attribute of ``SGD`` (its class value for the registry) that, on an instance, is the rule its
    ``momentum`` and ``nesterov`` select: plain SGD, ``Momentum``'s or ``Nesterov``'s (torch.optim.SGD is one
    class with these three algorithms; fastgd writes each rule once)."""

    def __set_name__(self, owner, name):
        self.name = "_" + name

    def __get__(self, obj, cls):
        if obj is None:
            return getattr(cls, self.name)
        rule = obj._rule_class()
        return getattr(cls, self.name) if rule is cls else getattr(rule, self.name[1:])


class SGD(Optimizer):
    """torch.optim.SGD: θ ← θ − γ(g + λθ); with momentum μ (and dampening τ) b ← μb + (1 − τ)g, θ ← θ − γb
    (``nesterov=True``: θ ← θ − γ(g + μb)).

    The signature is torch's. With ``momentum > 0`` the update is exactly ``Momentum``'s (``nesterov=True``:
    ``Nesterov``'s), the same compiled rule. ``maximize=True`` (torch's sign flip of the gradient) is not
    supported: a linear regression minimizes its squared error, and for ``fastgd.minimize`` pass the negated
    function and gradient instead.
    """

    name, _code, _hp_names, reference = "sgd", R.SGD, R.SGD_HP, staticmethod(reference.sgd)
    _slots = ()
    code, hp_names, slots = _ByMomentum(), _ByMomentum(), _ByMomentum()
    variant = dict(weight_decay=0.1)
    start_lr = 0.01

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.maximize = maximize

    _constraints = {"momentum": [UNIT_OPEN], "dampening": [UNIT], "nesterov": [FLAG], "maximize": [FLAG]}

    def _rule_class(self):
        if self.nesterov:
            return Nesterov
        return Momentum if self.momentum > 0 else SGD

    def validate(self):
        super().validate()
        if self.maximize:
            raise ValueError("SGD: maximize=True is not supported (fastgd minimizes). LinearRegressor minimizes the "
                             "squared error; for fastgd.minimize pass the negated function and gradient "
                             "(fun=lambda x: -f(x), jac=lambda x: -g(x)) with maximize=False")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov=True requires a momentum > 0 and zero dampening (as in torch), got "
                             f"momentum={self.momentum!r}, dampening={self.dampening!r}")
        return self


class Momentum(Optimizer):
    """Heavy-ball momentum (torch.optim.SGD(momentum=μ, dampening=τ)): b ← μb + (1 − τ)g; θ ← θ − γb."""

    name, code, hp_names, reference = "momentum", R.MOMENTUM, R.MOMENTUM_HP, staticmethod(reference.momentum)
    variant = dict(dampening=0.3, weight_decay=0.1)
    start_lr = 3e-3
    slots = ("momentum_buffer",)

    def __init__(self, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0):
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay

    _constraints = {"momentum": [UNIT_OPEN], "dampening": [UNIT]}


class Nesterov(Optimizer):
    """Nesterov momentum (torch.optim.SGD(momentum=μ, nesterov=True)): b ← μb + g; θ ← θ − γ(g + μb)."""

    name, code, hp_names, reference = "nesterov", R.NESTEROV, R.NESTEROV_HP, staticmethod(reference.nesterov)
    variant = dict(momentum=0.5, weight_decay=0.1)
    start_lr = 3e-3
    slots = ("momentum_buffer",)

    def __init__(self, lr=1e-3, momentum=0.9, weight_decay=0.0):
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay

    _constraints = {"momentum": [Interval(0, 1, closed="neither")]}


class Adagrad(Optimizer):
    """torch.optim.Adagrad: sum ← sum + g²; θ ← θ − γ/(1 + (t − 1)η) · g/(√sum + ε)."""

    name, code, hp_names, reference = "adagrad", R.ADAGRAD, R.ADAGRAD_HP, staticmethod(reference.adagrad)
    variant = dict(lr_decay=0.1, initial_accumulator_value=0.2, weight_decay=0.1)
    start_lr = 0.1
    slots = ("sum",)

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        self.lr = lr
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps

    _constraints = {"lr_decay": [NON_NEGATIVE], "initial_accumulator_value": [NON_NEGATIVE], "eps": [NON_NEGATIVE]}

    def init_state(self, n_coords):
        state, scalars = super().init_state(n_coords)
        state[0] = self.initial_accumulator_value
        return state, scalars


class RMSprop(Optimizer):
    """torch.optim.RMSprop: v ← αv + (1 − α)g²; θ ← θ − γ g/(√v + ε) (optionally centered, with momentum)."""

    name, code, hp_names, reference = "rmsprop", R.RMSPROP, R.RMSPROP_HP, staticmethod(reference.rmsprop)
    variant = dict(centered=True, momentum=0.5, weight_decay=0.1)
    start_lr = 3e-3
    slots = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = centered

    # alpha = 1 would freeze the square average at 0 and divide every step by eps (loss 7e242): rejected
    _constraints = {"alpha": [UNIT_OPEN], "eps": [NON_NEGATIVE], "momentum": [UNIT_OPEN], "centered": [FLAG]}


class Adam(Optimizer):
    """torch.optim.Adam: bias-corrected first and second moments; θ ← θ − γ m̂/(√v̂ + ε); optional AMSGrad.

    ``bias_correction=False`` is a fastgd extension for teaching (torch always corrects); leave it True to
    match torch.
    """

    name, code, hp_names, reference = "adam", R.ADAM, R.ADAM_HP, staticmethod(reference.adam)
    variant = dict(amsgrad=True, weight_decay=0.1)
    start_lr = 0.01
    slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 bias_correction=True):
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self.bias_correction = bias_correction

    _constraints = {"betas": [BETAS], "eps": [NON_NEGATIVE], "amsgrad": [FLAG], "bias_correction": [FLAG]}


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay θ ← θ(1 − γλ) before the step."""

    name, code, hp_names, reference = "adamw", R.ADAMW, R.ADAMW_HP, staticmethod(reference.adamw)
    variant = dict(amsgrad=True, weight_decay=0.05)
    start_lr = 0.01

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 bias_correction=True):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         bias_correction=bias_correction)


class Adamax(Optimizer):
    """torch.optim.Adamax: infinity-norm Adam, u ← max(β₂u, abs(g) + ε); θ ← θ − γ m/((1 − β₁ᵗ)u)."""

    name, code, hp_names, reference = "adamax", R.ADAMAX, R.ADAMAX_HP, staticmethod(reference.adamax)
    variant = dict(weight_decay=0.1, betas=(0.8, 0.99))
    start_lr = 0.02
    slots = ("exp_avg", "exp_inf")

    def __init__(self, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay

    _constraints = {"betas": [BETAS], "eps": [NON_NEGATIVE]}


class NAdam(Optimizer):
    """torch.optim.NAdam: Adam with Nesterov momentum and momentum decay ψ."""

    name, code, hp_names, reference = "nadam", R.NADAM, R.NADAM_HP, staticmethod(reference.nadam)
    variant = dict(weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=1e-2)
    start_lr = 6e-3
    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False):
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum_decay = momentum_decay
        self.decoupled_weight_decay = decoupled_weight_decay

    _constraints = {"betas": [BETAS], "eps": [NON_NEGATIVE], "momentum_decay": [NON_NEGATIVE],
                    "decoupled_weight_decay": [FLAG]}


class Adadelta(Optimizer):
    """torch.optim.Adadelta: v ← ρv + (1 − ρ)g²; Δ = √(u + ε)/√(v + ε)·g; u ← ρu + (1 − ρ)Δ²; θ ← θ − γΔ."""

    name, code, hp_names, reference = "adadelta", R.ADADELTA, R.ADADELTA_HP, staticmethod(reference.adadelta)
    variant = dict(rho=0.8, eps=1e-4, weight_decay=0.1)
    start_lr = 1.0
    slots = ("square_avg", "acc_delta")

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        self.lr = lr
        self.rho = rho
        self.eps = eps
        self.weight_decay = weight_decay

    _constraints = {"rho": [UNIT], "eps": [NON_NEGATIVE]}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW, Adamax, NAdam,
                                        Adadelta)}


def get_optimizer(optimizer, full_batch=False):
    """An optimizer object from a registry name or an optimizer object (returned as is); validated.
    ``full_batch``: ``"lbfgs"``/``LBFGS`` are accepted too (LinearRegressor.fit)."""
    if isinstance(optimizer, Optimizer) or (full_batch and isinstance(optimizer, LBFGS)):
        return optimizer.validate()
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]().validate()
    if full_batch and optimizer == "lbfgs":
        return LBFGS().validate()
    names = sorted(OPTIMIZERS) + (["lbfgs"] if full_batch else [])
    if not full_batch and (optimizer == "lbfgs" or isinstance(optimizer, LBFGS)):
        raise ValueError(f"optimizer={optimizer!r} is a full-batch method, which fastgd.minimize does not run (it "
                         f"runs the step-by-step optimizers: one of {names} or such an object from "
                         f"fastgd.optimizers); for L-BFGS on a function use scipy.optimize.minimize(fun, x0, "
                         f"jac=..., method='L-BFGS-B'), with the same calling convention")
    kinds = " (one of its step-by-step optimizers)" if not full_batch else ""
    raise ValueError(f"optimizer must be one of {names} or an object from fastgd.optimizers{kinds}, got {optimizer!r}")


class LBFGS(Params):
    """torch.optim.LBFGS for full-batch fits: the same arguments, defaults and algorithm (two-loop recursion over
    the last ``history_size`` curvature pairs, a first step of ``min(1, 1/‖g‖₁)·lr``, and either fixed steps
    of ``lr`` or torch's strong-Wolfe line search with cubic interpolation).

    Not a mini-batch rule and not in ``OPTIMIZERS``: it runs in NumPy, and each evaluation of the objective
    and its gradient is one pass of the kernels over the data. ``step(fg, x, state)`` is one call of torch's
    ``step(closure)``: up to ``max_iter`` iterations and ``max_eval`` evaluations, updating ``x`` in place.
    """

    name = "lbfgs"
    code = -2  # no kernel rule
    slots = ()
    start_lr = 1.0
    _noun = "hyperparameter"

    def init_state(self, n_coords):
        """No per-coordinate state in the kernels' form (the history lives in ``step``'s dict)."""
        scalars = np.zeros(K.N_SCALARS)
        return np.zeros((0, n_coords)), scalars

    def __init__(self, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        self.lr = lr
        self.max_iter = max_iter
        self.max_eval = max_eval
        self.tolerance_grad = tolerance_grad
        self.tolerance_change = tolerance_change
        self.history_size = history_size
        self.line_search_fn = line_search_fn

    _constraints = {"lr": [POSITIVE], "max_iter": [Interval(1, None, integer=True)],
                    "max_eval": [Interval(1, None, integer=True), Predicate(lambda v: v is None, "None")],
                    "tolerance_grad": [NON_NEGATIVE], "tolerance_change": [NON_NEGATIVE],
                    "history_size": [Interval(1, None, integer=True)],
                    "line_search_fn": [Predicate(lambda v: v in (None, "strong_wolfe"), "None or 'strong_wolfe'")]}

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def validate(self):
        check_all(type(self).__name__, self.get_params(), self._constraints)
        return self

    def step(self, fg, x, state):
        """One ``torch.optim.LBFGS.step``: ``fg(x) -> (loss, gradient)`` (float, 1-D array like ``x``); ``x`` is
        updated in place; ``state`` (a dict, empty at first) carries the history between calls. Returns the
        loss at ``x`` on entry."""
        max_eval = self.max_eval if self.max_eval is not None else self.max_iter * 5 // 4
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        loss, g = fg(x)
        first_loss = loss
        evals = 1
        state["func_evals"] += 1
        if np.max(np.abs(g)) <= self.tolerance_grad:
            return first_loss
        d, t = state.get("d"), state.get("t")
        dirs, steps, rho = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, g_prev, loss_prev = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        it = 0
        while it < self.max_iter:
            it += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -g
                dirs, steps, rho, h_diag = [], [], [], 1.0
            else:
                yv = g - g_prev
                sv = d * t
                ys = reference.vdot(yv, sv)
                if ys > 1e-10:  # keep only pairs with positive curvature (torch's rule)
                    if len(dirs) == self.history_size:
                        dirs.pop(0), steps.pop(0), rho.pop(0)
                    dirs.append(yv), steps.append(sv), rho.append(1.0 / ys)
                    h_diag = ys / reference.vdot(yv, yv)
                # in place, with one temporary (the same arithmetic as q - a·y and d + c·s: a large d
                # otherwise allocates, and faults in, two fresh vectors per pair)
                alpha = [0.0] * len(dirs)
                q = np.negative(g)
                tmp = np.empty_like(q)
                for i in range(len(dirs) - 1, -1, -1):
                    alpha[i] = reference.vdot(steps[i], q) * rho[i]
                    q -= np.multiply(alpha[i], dirs[i], out=tmp)
                d = np.multiply(q, h_diag, out=q)
                for i in range(len(dirs)):
                    beta = reference.vdot(dirs[i], d) * rho[i]
                    d += np.multiply(alpha[i] - beta, steps[i], out=tmp)
                del tmp
            g_prev = g.copy()
            loss_prev = loss
            t = min(1.0, 1.0 / float(np.abs(g).sum())) * self.lr if state["n_iter"] == 1 else self.lr
            gtd = reference.vdot(g, d)
            if gtd > -self.tolerance_change:
                break
            if self.line_search_fn == "strong_wolfe":
                # torch bounds the search by the evaluations left in this step, and gives it its own
                # tolerance_change (the default 1e-9), not the optimizer's
                loss, g, t, n_ls = _strong_wolfe(fg, x, t, d, loss, g, gtd, max_ls=max_eval - evals)
                x += t * d
                converged = np.max(np.abs(g)) <= self.tolerance_grad
            else:
                x += t * d
                n_ls = 0
                converged = False
                if it != self.max_iter:  # torch re-evaluates except after the last iteration
                    loss, g = fg(x)
                    converged = np.max(np.abs(g)) <= self.tolerance_grad
                    n_ls = 1
            evals += n_ls
            state["func_evals"] += n_ls
            if it == self.max_iter or evals >= max_eval or converged:
                break
            if np.max(np.abs(d * t)) <= self.tolerance_change or abs(loss - loss_prev) < self.tolerance_change:
                break
        state.update(d=d, t=t, old_dirs=dirs, old_stps=steps, ro=rho, H_diag=h_diag, prev_flat_grad=g_prev,
                     prev_loss=loss_prev)
        return first_loss


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to ``bounds`` (default: the two
    points); the middle of the bounds when the cubic has no minimum (torch's ``_cubic_interpolate``)."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = np.sqrt(disc)
    if x1 <= x2:
        pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
    else:
        pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
    return min(max(pos, lo), hi)


def _strong_wolfe(fg, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """torch's strong-Wolfe line search along ``d`` from ``x`` (``x`` unchanged): (loss, gradient, step,
    evaluations); at most ``max_ls`` evaluations after the first."""
    d_norm = float(np.max(np.abs(d)))

    point = np.empty_like(x)

    def at(step):
        fn, gn = fg(np.add(x, np.multiply(step, d, out=point), out=point))  # x + step·d, in one buffer
        return fn, gn, reference.vdot(gn, d)

    f_new, g_new, gtd_new = at(t)
    evals = 1
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls = 0
    while ls < max_ls:
        if f_new > f + c1 * t * gtd or (ls > 1 and f_new >= f_prev):
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g, br_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        step = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = step
        f_new, g_new, gtd_new = at(t)
        evals += 1
        ls += 1
    if ls == max_ls:
        br, br_f, br_g, br_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    stuck = False
    while not done and ls < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = _cubic_min(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        span = 0.1 * (max(br) - min(br))
        if min(max(br) - t, t - min(br)) < span:  # too close to an end: move inside unless the last try was fine
            if stuck or t >= max(br) or t <= min(br):
                t = max(br) - span if abs(t - max(br)) < abs(t - min(br)) else min(br) + span
                stuck = False
            else:
                stuck = True
        else:
            stuck = False
        f_new, g_new, gtd_new = at(t)
        evals += 1
        ls += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[low]:
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new, gtd_new
    return br_f[low], br_g[low], br[low], evals
