"""The l1 penalty's exact zeros in an averaged fit: one full proximal gradient step from the returned model.

The mean of proximal iterates has no exact zeros (a coordinate the prox sets to zero in most steps but not all
averages to a tiny non-zero), and a last mini-batch iterate keeps some that its batch's noise pushed past the
threshold. One proximal gradient step on all rows from the mean, w⁺ = soft(w − η·D⁻²∇f(w), η·l1·D⁻²) with D
the columns' scales (a scalar step in the standardized coordinates), sets to exactly zero each coordinate
whose full gradient is inside the lasso's ±l1 and whose mean is within η·(l1 − |∇_j f|)/D_j² of zero. At the
optimum w* it returns w* for any η (the lasso optimality conditions are its fixed-point equations), so the
fit's fixed point is unchanged; η starts at ½ (exact for uncorrelated standardized columns under the squared
error) and is halved until the objective does not rise, so the returned model is never worse than the mean.
The intercept moves with the weights as in the centred coordinates the fit trains in (the model's value at
the columns' means is kept). Costs a pass over X for the gradient, one for the mean's objective and one per
step size tried (usually one or two).
"""

import math

import numpy as np

from . import _scaling, _training

MAX_HALVINGS = 40  # η = ½·2⁻⁴⁰: beyond any λmax of a correlation matrix the fit could hold


def polish_l1(problem, theta, scaling=None):
    """The proximal gradient step from standardized ``theta`` (k, d + 1) over all rows of ``problem``: the
    new standardized parameters, or None when no step lowered the objective (or there is nothing to do).
    ``scaling``: the column scales to use where ``problem`` has none (standardize=False)."""
    if problem.l1 <= 0.0:
        return None
    scaling = problem.scaling or scaling
    if scaling is None:
        scaling = _scaling.Scaling.from_data(problem.kern, problem.Xk, problem.Y, problem.sw, problem.fit_intercept,
                                             problem.n_threads)
    whole = problem.whole()
    ids = np.arange(whole.n_batches, dtype=np.int64)
    raw = np.array(problem.raw(theta), dtype=np.float64, order="C")  # a copy: k·(d + 1) values
    k, d = raw.shape[0], raw.shape[1] - 1
    G, _, W = problem.kern.batches_stats(whole.Xk, whole.Y, _training._sw(problem.sw), raw, whole.batch_size,
                                             ids, problem.n_threads, loss=problem.loss)
    if not W > 0:
        return None
    f0 = whole.objective(theta, ids, raw=raw)[0]  # as the candidates are evaluated (not the sums above)
    grad = (2.0 / W) * np.asarray(G).reshape(k, d + 1)
    g = grad[:, :d] + problem.l2 * raw[:, :d]
    centre = np.asarray(scaling.x_mean, dtype=np.float64)  # the centres (zero for columns not centred)
    if problem.fit_intercept:  # the gradient with the model's value at the centre fixed
        g -= np.outer(grad[:, d], centre)
    inv_metric = 1.0 / np.square(np.asarray(scaling.x_scale, dtype=np.float64))
    w = raw[:, :d]
    eta = 0.5
    for _ in range(min(MAX_HALVINGS, 4 + math.ceil(math.log2(d + 1)))):  # λmax(C) <= d: η = 1/(2d) descends
        step = eta * inv_metric
        u = w - step * g
        new = np.empty_like(raw)
        np.multiply(np.sign(u), np.maximum(np.abs(u) - step * problem.l1, 0.0), out=new[:, :d])
        new[:, d] = raw[:, d] - (new[:, :d] - w) @ centre if problem.fit_intercept else raw[:, d]
        f = whole.objective(theta, ids, raw=new)[0]
        if f <= f0:
            return new if problem.scaling is None else problem.scaling.to_std(new)
        eta /= 2.0
    return None
