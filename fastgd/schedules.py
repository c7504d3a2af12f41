"""Learning-rate schedules: functions of the step count t (the number of updates, t = 1 for the first).

A schedule is data (hyperparameters); the compiled kernel evaluates it at every step from an integer code and
a few numbers (``pack``), and calling the object, ``schedule(lr, t)``, gives the same value in plain Python (the
reference). ``lr`` is the base rate: the schedule's own ``lr`` when given, else the optimizer's ``lr``.
A schedule's own parameters come in torch.optim.lr_scheduler's order (without the optimizer), so
``Exponential(0.99)`` is ``gamma=0.99`` as in ``ExponentialLR(opt, 0.99)``; ``lr`` is keyword-only
(``Cosine(1000, lr=0.05)``), so a positional number never silently becomes the base rate.

===========================  ===========================================================================
schedule                     rate at update t (t = 1, 2, ...)
===========================  ===========================================================================
``Constant()``               lr
``InverseScaling(power_t)``  lr / t ** power_t (scikit-learn's "invscaling")
``Exponential(gamma)``       lr * gamma ** (t - 1) (torch's ExponentialLR, stepped per update)
``Step(step_size, gamma)``   lr * gamma ** floor((t - 1) / step_size) (torch's StepLR, per update)
``Cosine(T_max, eta_min)``   eta_min + (lr - eta_min) (1 + cos(pi min(t - 1, T_max) / T_max)) / 2
``Warmup(steps, then)``      lr * t / steps for t <= steps, then ``then`` counted from the warm-up's end
===========================  ===========================================================================
"""

import math

import numpy as np

from . import _rules as K  # the vector length and schedule codes the kernels take
from ._params import Params
from ._validation import Interval, check


class Schedule(Params):
    """Base class: sklearn-style parameters, packing for the kernel, evaluation in Python."""

    code = None

    def __init__(self, *args, lr=None):
        if args:  # Constant(0.1): the old positional base rate, which is keyword-only now
            raise TypeError(f"{type(self).__name__}() takes no positional arguments, got {args[0]!r}: its base "
                            f"rate is keyword-only, {type(self).__name__}(lr={args[0]!r}) (or leave lr out to use "
                            f"the optimizer's lr)")
        self.lr = lr

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def validate(self):
        if self.lr is not None:
            check(type(self).__name__, "lr", self.lr, [Interval(0, None, closed="neither")])
        self._validate_own()
        return self

    def _validate_own(self):
        pass

    def _values(self):
        """Schedule-specific numbers for sched[2:]."""
        return ()

    def pack(self, default_lr):
        """``(lr, sched)``: the base learning rate and the kernel's schedule vector."""
        sched = np.zeros(K.SCHED_LEN)
        sched[0] = self.code
        values = self._values()
        sched[2: 2 + len(values)] = values
        return (default_lr if self.lr is None else self.lr), sched

    def factor(self, lr, u):
        """The rate at u updates after warm-up (u >= 1), from base rate lr."""
        raise NotImplementedError

    def __call__(self, lr, t):
        return self.factor(lr, t)


class Constant(Schedule):
    """The same rate ``lr`` at every update (``lr=None``: the optimizer's)."""

    code = K.CONSTANT

    def factor(self, lr, u):
        return lr


class InverseScaling(Schedule):
    """lr / t ** power_t at update t (scikit-learn's "invscaling"; power_t=0.5 is the classic 1/√t)."""

    code = K.INVSCALING

    def __init__(self, power_t=0.25, *, lr=None):
        self.lr = lr
        self.power_t = power_t

    def _validate_own(self):
        check(type(self).__name__, "power_t", self.power_t, [Interval(0.0, None)])

    def _values(self):
        return (self.power_t,)

    def factor(self, lr, u):
        return lr / u**self.power_t


class Exponential(Schedule):
    """lr · gamma ** (t − 1): torch's ExponentialLR stepped after every update (not every epoch)."""

    code = K.EXPONENTIAL

    def __init__(self, gamma=0.999, *, lr=None):
        self.lr = lr
        self.gamma = gamma

    def _validate_own(self):
        check(type(self).__name__, "gamma", self.gamma, [Interval(0, 1, closed="right")])

    def _values(self):
        return (self.gamma,)

    def factor(self, lr, u):
        return lr * self.gamma ** (u - 1)


class Step(Schedule):
    """lr · gamma ** floor((t − 1) / step_size): torch's StepLR counted in updates."""

    code = K.STEP

    def __init__(self, step_size=1000, gamma=0.5, *, lr=None):
        self.lr = lr
        self.step_size = step_size
        self.gamma = gamma

    def _validate_own(self):
        check(type(self).__name__, "step_size", self.step_size, [Interval(1, None)])
        check(type(self).__name__, "gamma", self.gamma, [Interval(0, 1, closed="right")])

    def _values(self):
        return (self.gamma, self.step_size)

    def factor(self, lr, u):
        return lr * self.gamma ** math.floor((u - 1) / self.step_size)


class Cosine(Schedule):
    """Cosine annealing from lr to ``eta_min`` over ``T_max`` updates, then ``eta_min`` (torch's
    CosineAnnealingLR without restarts, counted in updates)."""

    code = K.COSINE

    def __init__(self, T_max=10_000, eta_min=0.0, *, lr=None):
        self.lr = lr
        self.T_max = T_max
        self.eta_min = eta_min

    def _validate_own(self):
        check(type(self).__name__, "T_max", self.T_max, [Interval(1, None)])
        check(type(self).__name__, "eta_min", self.eta_min, [Interval(0.0, None)])

    def _values(self):
        return (self.T_max, self.eta_min)

    def factor(self, lr, u):
        v = min(u - 1, self.T_max)
        return self.eta_min + (lr - self.eta_min) * (1 + math.cos(math.pi * v / self.T_max)) / 2


class Warmup(Schedule):
    """Linear warm-up over ``steps`` updates (lr·t/steps), then the schedule ``then`` (its lr is the base)."""

    def __init__(self, steps=100, then=None):
        self.steps = steps
        self.then = then

    @property
    def lr(self):
        return None if self.then is None else self.then.lr

    def _after(self):
        return Constant() if self.then is None else self.then

    def _validate_own(self):
        check(type(self).__name__, "steps", self.steps, [Interval(1, None)])
        if isinstance(self._after(), Warmup) or not isinstance(self._after(), Schedule):
            raise ValueError(f"Warmup: then must be a schedule other than Warmup, got {self.then!r}")
        self._after().validate()

    def validate(self):
        self._validate_own()
        return self

    def pack(self, default_lr):
        lr, sched = self._after().pack(default_lr)
        sched[1] = self.steps
        return lr, sched

    def __call__(self, lr, t):
        if t <= self.steps:
            return lr * t / self.steps
        return self._after().factor(lr, t - self.steps)


SCHEDULES = {cls.__name__: cls for cls in (Constant, InverseScaling, Exponential, Step, Cosine, Warmup)}
