"""Declarative parameter validation: constraint tables checked in one place, with one style of message.

As scikit-learn's ``_parameter_constraints``: each public object lists, per parameter, the kinds of value it
accepts; :func:`check` tests a value against them and raises ``ValueError`` naming the parameter, what it
accepts and what it got. Numbers are accepted as Python or NumPy scalars (``np.float32(1e-3)`` is a float);
``bool`` is never a number; integers too large for a float are rejected with the same message, not a
TypeError.
"""

import math
import numbers

import numpy as np


class Interval:
    """A real (or integer, ``integer=True``) number in [low, high], each end open or closed or absent."""

    def __init__(self, low=None, high=None, *, closed="both", integer=False, label=None):
        self.low, self.high, self.closed, self.integer, self.label = low, high, closed, integer, label

    def accepts(self, v):
        if isinstance(v, (bool, np.bool_)):
            return False
        if self.integer:
            if not isinstance(v, numbers.Integral):
                return False
        elif not isinstance(v, numbers.Real):
            return False
        try:
            f = float(v)
        except (OverflowError, TypeError, ValueError):
            return False
        if not math.isfinite(f):
            return False
        lo_closed = self.closed in ("both", "left")
        hi_closed = self.closed in ("both", "right")
        if self.low is not None and (f < self.low or (f == self.low and not lo_closed)):
            return False
        if self.high is not None and (f > self.high or (f == self.high and not hi_closed)):
            return False
        return True

    def words(self):
        if self.label:
            return [self.label]
        lo_closed = self.closed in ("both", "left")
        hi_closed = self.closed in ("both", "right")
        if self.integer:
            if self.high is None and self.low == 1 and lo_closed:
                return ["a positive int"]
            if self.high is None and self.low == 0 and lo_closed:
                return ["a non-negative int"]
            if self.low is None and self.high == -1 and hi_closed:
                return ["a negative int"]
        kind = "an int" if self.integer else "a finite number"
        num = (lambda v: f"{v}") if self.integer else (lambda v: f"{float(v)}")
        if self.low is None and self.high is None:
            return [kind]
        if self.high is None:
            return [f"{kind} {'>=' if lo_closed else '>'} {num(self.low)}"]
        if self.low is None:
            return [f"{kind} {'<=' if hi_closed else '<'} {num(self.high)}"]
        return [f"{kind} in {'[' if lo_closed else '('}{num(self.low)}, {num(self.high)}{']' if hi_closed else ')'}"]


class Options:
    """One of a fixed set of values (strings, None, True/False), compared by equality and type."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, v):
        for o in self.values:
            if v is o:
                return True
            if isinstance(o, (str, float)) and not isinstance(v, (bool, np.bool_)):
                try:
                    if isinstance(v, type(o)) and v == o:
                        return True
                except (TypeError, ValueError):
                    pass
        return False

    def words(self):
        return [repr(o) for o in self.values]


class Boolean(Options):
    def __init__(self):
        super().__init__(True, False)

    def accepts(self, v):
        return isinstance(v, (bool, np.bool_))


class Predicate:
    """Any value for which ``test(value)`` is true, described by ``label``."""

    def __init__(self, test, label):
        self.test, self.label = test, label

    def accepts(self, v):
        try:
            return bool(self.test(v))
        except (TypeError, ValueError, OverflowError):
            return False

    def words(self):
        return [self.label]


class InstanceOf:
    def __init__(self, cls, label):
        self.cls, self.label = cls, label

    def accepts(self, v):
        return isinstance(v, self.cls)

    def words(self):
        return [self.label]


def check(owner, name, value, constraints):
    """Raise ValueError unless ``value`` satisfies one of ``constraints``; message names ``owner: name``."""
    if any(c.accepts(value) for c in constraints):
        return value
    label = f"{owner}: {name}" if owner else name
    words = [w for c in constraints for w in c.words()]
    accepted = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    raise ValueError(f"{label} must be {accepted}, got {value!r}")


def check_all(owner, params, table):
    """Check every parameter listed in ``table`` (name -> list of constraints) against ``params``."""
    for name, constraints in table.items():
        check(owner, name, params[name], constraints)
