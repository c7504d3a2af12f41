"""Which constant rates keep a plain gradient step (SGD, momentum, Nesterov) stable on a fit's problem.

A step's rate γ times the curvature h it meets must stay below a limit: 2 for SGD, 2(1 + μ) for heavy-ball
momentum (γ(1 − τ)h with dampening τ), 2(1 + μ)/(1 + 2μ) for Nesterov's (torch.optim's forms). Two curvatures
are known before training, in the standardized coordinates the steps take:

* the penalty's (deterministic): its l2 part over a column's squared scale, largest for the column in the
  smallest units;
* the mini-batch's noise: with b of n rows, the rows' mean curvature T = 2·E‖x̃‖² (the trace of the squared
  error's Hessian) weighted by (n − b)/(b(n − 1)) (b-nice sampling's expected smoothness; zero for one full
  batch). Momentum carries a step's noise γ/(1 − μ) far, so its noise limit is SGD's at that effective rate.

The penalty's strength in those coordinates is the kernels' (``_rules.unit_l2``: a loss whose standardized
objective has another unit multiplies it, ``unit_gain``: y_scale / epsilon for huber with epsilon below y's
scale, y_scale for the absolute losses). The data's and the noise's curvatures stay the squared error's for
huber: its slope is bounded, so its steeper quadratic zone (y_scale / epsilon times) makes a step that is too
long oscillate within a bounded range, not diverge, and counting it lowered the default rate of large-scale
targets 20-fold (make_regression, y·100: R² 0.992 -> 0.608 in 300 epochs) and named rates 500 times too small.

The data's own top curvature (the largest eigenvalue of the design's Hessian) is not known without passes over
X; the fit's own rate recovers from a divergence it causes (``_training._StoppingRules``).

``STABLE_STEP``: the fit's own start rate keeps γ times these curvatures (each with its optimizer's gain) at
most 1, half of SGD's limit: the default rate is lowered only where it would be near or past the limit.
"""

import numpy as np

from . import _rules

STABLE_STEP = 1.0
GRADIENT_STEPS = ("sgd", "momentum", "nesterov")  # the optimizers whose step is γ times the gradient's size
# the losses with a bounded slope (no curvature) that scale as |y|
ABSOLUTE_LOSSES = (_rules.EPSILON_INSENSITIVE, _rules.QUANTILE)


def step_gains(opt):
    """``(noise, steady)``: how much further than plain SGD at the same rate the optimizer carries a gradient's
    noise, and how much less curvature it can follow (2 over its limit); None for an adaptive optimizer (its
    steps are normalized: no curvature makes them diverge)."""
    if getattr(opt, "name", None) not in GRADIENT_STEPS:
        return None
    mu = float(getattr(opt, "momentum", 0.0) or 0.0)
    tau = float(getattr(opt, "dampening", 0.0) or 0.0)
    if mu <= 0.0:
        return 1.0, 1.0
    if opt.name == "nesterov" or getattr(opt, "nesterov", False):
        return 1.0 / (1.0 - mu), (1.0 + 2.0 * mu) / (1.0 + mu)
    return (1.0 - tau) / (1.0 - mu), (1.0 - tau) / (1.0 + mu)


def unit_gain(problem):
    """How many times the squared error's the l2 strength is in the standardized coordinates, the most over the
    outputs: y_scale over the loss's unit (``_rules.unit_l2``, the kernels' rule): 1 for the squared losses,
    y_scale / min(y_scale, epsilon) for huber, y_scale for the absolute losses; 1 without standardization."""
    s, loss = problem.scaling, getattr(problem, "loss", None)
    if s is None or loss is None:
        return 1.0
    ys = np.atleast_1d(np.asarray(s.y_scale, dtype=np.float64))
    return max(_rules.unit_l2(1.0, _rules.loss_unit(int(loss[0]), float(loss[1]), float(y)), float(y)) for y in ys)


def row_curvature(problem):
    """T: the rows' mean curvature of the squared error, 2·E‖x̃‖² over the standardized rows (the intercept's
    constant 1 included); None without standardization or the columns' statistics."""
    s = problem.scaling
    if s is None or getattr(s, "x_var", None) is None or getattr(s, "x_raw_mean", None) is None:
        return None
    mean, var = s.column_moments()
    second = (var + np.square(mean - s.x_mean)) / np.square(s.x_scale)  # about the centring point
    return 2.0 * (float(np.sum(second)) + (1.0 if problem.fit_intercept else 0.0))


def noise_curvature(problem):
    """The mini-batch's curvature noise, T·(n − b)/(b(n − 1)) (None: unknown); 0 for one full batch and for a
    loss with a bounded slope (no curvature)."""
    loss = getattr(problem, "loss", None)
    if loss is not None and int(loss[0]) in ABSOLUTE_LOSSES:
        return 0.0
    T = row_curvature(problem)
    n, b = problem.n, min(problem.batch_size, problem.n)
    if T is None:
        return None
    return T * (n - b) / (b * (n - 1)) if n > 1 else 0.0


def penalty_curvature(problem, l2=None, opt=None):
    """The largest curvature of the l2 penalty (``l2``: the problem's) in the coordinates of the steps: over the
    smallest column scale squared with standardization, times ``unit_gain`` (the kernels' strength per output,
    ``_rules.unit_l2``), plus the optimizer's own weight decay, which acts on those coordinates."""
    l2 = problem.l2 if l2 is None else l2
    wd = float(getattr(opt, "weight_decay", 0.0) or 0.0)
    s = problem.scaling
    if s is None or not l2 > 0.0:
        return l2 + wd
    return l2 * unit_gain(problem) / float(np.min(np.square(s.x_scale))) + wd


def step_parts(opt, problem):
    """``(noise, steady)``: the curvatures per unit of rate that a step meets, each times its optimizer's gain
    (a rate γ is stable by this measure when γ·(noise + steady) <= STABLE_STEP); None where unknown (an
    adaptive optimizer, no standardization or statistics)."""
    gains = step_gains(opt)
    noise = None if gains is None else noise_curvature(problem)
    if noise is None:
        return None
    return gains[0] * noise, gains[1] * penalty_curvature(problem, opt=opt)


def stable_rate(opt, problem):
    """The largest rate that keeps the step stable by ``step_parts``' measure; None: no bound known."""
    parts = step_parts(opt, problem)
    if parts is None or not sum(parts) > 0.0:
        return None
    return STABLE_STEP / sum(parts)
