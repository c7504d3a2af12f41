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

from . import _kernels as K
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


def get_optimizer(optimizer):
    """An optimizer object from a registry name or an optimizer object (returned as is); validated."""
    if isinstance(optimizer, Optimizer):
        return optimizer.validate()
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]().validate()
    raise ValueError(
        f"optimizer must be one of {sorted(OPTIMIZERS)} or an object from fastgd.optimizers, got {optimizer!r}")
