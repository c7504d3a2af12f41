"""Choosing the l2 strength of ``penalty="auto"`` on sparse data from the data, as RidgeCV or a grid search would.

A fixed, seeded share of the rows (``HOLD_OUT``, by weight: nothing is copied, the held-out rows get weight 0
in the training objective and the others weight 0 in the score) is held out. Along a path of Ridge strengths
(in Ridge's units, the penalty of the sum of losses: the same constant fits the training rows and all rows),
from strong to weak in steps of ``STEP``, the exact penalized optimum on the training rows is found by the
sparse finish's preconditioned conjugate gradient, warm-started from the previous strength (a strong one
converges in a few passes), and scored on the held-out rows (one pass). The walk stops once ``MISSES``
strengths in a row fail to beat the best by ``GAIN`` of held-out R²; if the first was best it walks the
other way; then half a step from the best towards its better neighbour is tried. The finalists, the best
decade's strength and half a step either side, are then also solved and scored on the other disjoint held-out
shares where X stores at most ``FINALISTS_ALL_VALUES`` values, and the best mean score over the shares wins (one
share's noise between such close strengths decided the half step); where that is the weakest or strongest
finalist, half steps go on beyond it, on every share, while the mean gains. The caller finishes on all rows at
the chosen strength, warm-started from its path solution. Every output counts by its R² (the errors in units of
its spread); one strength is shared by all (the penalty is one term of the objective).

Huber (a smooth loss with no linear system to solve, ``choose_l2`` with ``problem.loss`` set) walks the same
path in the same units: each strength is the squared error's one converted to huber's objective (half of it,
huber being ½r² within epsilon, times the loss's unit over y's scale, ``auto_loss_unit``: so y in any units
gives the same choice), its training optimum found by preconditioned L-BFGS with a strong-Wolfe line search
(at most ``LOSS_PATH_STEPS`` steps of 20 iterations, keeping ``LOSS_PATH_HISTORY`` curvature pairs), and each
is scored by the held-out rows' huber loss relative to that of their mean (1 − loss / constant's loss, as
``validation_scores_`` count for that loss), so that the outliers a robust loss is chosen for do not decide the
strength; with an epsilon of at least
``SCORE_EPSILON`` times y's robust spread (the fit's own where larger), and averaged over ``LOSS_FOLDS``
disjoint held-out shares (each its own path, warm-started along it), and the refinement tries both half steps.
"""

import dataclasses
from types import SimpleNamespace

import numpy as np

from . import _rules, _shortfall, _training
from .optimizers import LBFGS

HOLD_OUT = 0.2  # share of the rows held out to score the strengths
MIN_ROWS = 10  # fewer rows held out (or left to train on): leave-one-out instead (``choose_l2_loo``)
# leave-one-out's strengths: Ridge alphas from LOO_BELOW times the smallest non-zero eigenvalue of the rows'
# weighted centred Gram matrix (at least LOO_RANK times the largest: rounding below) to LOO_ABOVE times the largest,
# LOO_PER_DECADE a decade (at least LOO_GRID in all): every strength from least squares' to the constant model's,
# whatever the columns' units (a grid from the mean row norm, which one column in large units sets, started far
# above what the others needed: one-hot columns beside an income in 1e4s, 30 rows, held-out R² 0.222 against
# RidgeCV's 0.956)
LOO_GRID = 41
LOO_PER_DECADE = 4
LOO_BELOW, LOO_ABOVE, LOO_RANK = 1e-2, 1e2, 1e-12
LOO_MIN_ROWS = 3  # rows of positive weight leave-one-out needs (two to train on with an intercept)
STEP = 10.0  # the path's ratio between strengths; the refinement is half a step (sqrt(STEP))
MISSES = 1  # strengths in a row without a gain that end the walk
# ... except, walking weaker, where every strength so far explained less than this of the held-out rows' variance
# and this one no less than the best: the penalty still shrinks the model to the mean (the first strength is
# the median column's, which one column in large units can make strong for every other), so no signal yet is
# no evidence against weaker strengths (a falling score, fitting noise, still ends the walk)
NO_SIGNAL = 0.01
GAIN = 1e-4  # held-out R² a weaker (or stronger) strength must gain to count as better
PATH_TOL = 3e-6  # the path's conjugate-gradient tolerance (of the variance of y; see docs/design.md)
PATH_ITER = 300  # iterations per strength at most (the best point reached is scored)
MAX_POINTS = 12  # strengths on the walk at most, besides those with no signal yet (NO_SIGNAL) ...
MAX_FLAT_POINTS = 36  # ... and in all
FIRST = 1.0  # the first strength, times the median varying column's Σ s·x² (Ridge's units)
LOSS_PATH_STEPS = 10  # huber's path: L-BFGS steps (of up to 20 iterations each) per strength at most
LOSS_PATH_HISTORY = 5  # ... keeping this many curvature pairs (as the finish, estimator.FINISH_HISTORY)
# huber's path scores each strength on this many folds (each a HOLD_OUT share of the rows, the first the squared
# error's held-out rows; the other rows train), its score their mean: the held-out huber score of one fifth of
# the rows swung the choice over four decades with random_state (700 weighted rows: alpha 6e-4 to 1.94, 2 of 8
# seeds held-out R² 0.000)
LOSS_FOLDS = 3
# the squared error's finalists (the best decade's strength and half a step either side) are scored on every
# disjoint HOLD_OUT share (1 / HOLD_OUT: the finalists' cross-validation), the first the walk's, and judged by their
# mean, where X stores at most FINALISTS_ALL_VALUES values: one share's noise chose a weak half step on 2 of 20
# seeds of hashed docstrings (held-out R² 0.272 against 0.338) and on 4 of 30 draws of uniform counts with 1,000
# training rows (0.03 to 0.07 short of the best Ridge; two shares: 3, five: none). Larger X: on SQUARED_FOLDS
# shares (1: the walk's alone). There a share holds tens of thousands of rows: two shares chose as one on 14 of 14
# fits (Zipf tf-idf and uniform counts at 50,000 rows, 6 seeds each; 100,000 × 2^20, 2 seeds) and cost a
# 100,000 × 2^20 default fit 1.7 times its time (path 74 to 164 passes). Five shares cost hashed text of 17,330
# rows and 355,000 values 4 to 5 times its fit's time (1.2-1.3 s to 4.9-6.0 s; Ridge 0.4-0.6 s) for held-out R²
# 0.4200 to 0.4253 and 0.3081 to 0.3062, so the bound is 2^18 (hashed docstrings, 6,662 rows: 144,000 values)
SQUARED_FOLDS = 1
# ... and where the mean is best at the weakest or strongest finalist, half steps beyond it on every share, until
# the mean gains less than GAIN, at most this many
FINALISTS_EXTEND = 8
FINALISTS_ALL_VALUES = 2**18
# huber's strengths are scored by huber with an epsilon of at least this times the targets' robust spread
# (``_score_loss``): with a small epsilon the held-out loss is nearly the absolute error, which on integer
# targets rewards a near-constant model at the median (exact hits): np.round(y) chose 0.0169, held-out R² 0.0096
SCORE_EPSILON = 1.345


def choose_l2_loo(problem, k, fit_intercept):
    """The squared error's strength where too few rows are there to hold out a share (``choose_l2``):
    leave-one-out over the rows of positive weight, as RidgeCV scores (exactly: each row's residual over 1 - its
    leverage, the hat matrix from the weighted centred Gram matrix's eigendecomposition), in the data's units
    (the objective's l2 acts on the raw weights). Returns a ``Choice`` (``shares``: the rows left out;
    ``theta`` is not moved), or None where fewer than LOO_MIN_ROWS rows have a positive weight or the targets
    do not vary. One pass over X (its Gram matrix, n x n) and one eigendecomposition of it."""
    import scipy.sparse as sp

    n = problem.n
    base_all = np.ones(n) if problem.sw is None else np.asarray(problem.sw, dtype=np.float64)
    rows = np.flatnonzero(base_all > 0)
    m = rows.size
    if m < LOO_MIN_ROWS or problem.Y is None:
        return None
    Xk = problem.Xk
    if isinstance(Xk, tuple):
        data, indices, indptr, d = Xk
        X = sp.csr_matrix((np.asarray(data, dtype=np.float64), indices, indptr), shape=(n, int(d)))[rows]
        K = np.asarray((X @ X.T).todense(), dtype=np.float64)
    else:
        Xd = np.asarray(Xk, dtype=np.float64)[rows]
        K = Xd @ Xd.T
    w = base_all[rows]
    W = float(w.sum())
    Y = np.asarray(problem.Y, dtype=np.float64)[rows].reshape(m, -1)
    # each output that varies counts by its R²: its LOO errors over its weighted variance about the mean (all
    # rows); a constant one has no R² to compare strengths by (its model is its mean at any strength)
    ybar = (w @ Y) / W
    var = w @ np.square(Y - ybar)
    varies = var > 0
    if not np.any(varies):
        return None
    Y, ybar, var = Y[:, varies], ybar[varies], var[varies]
    # the rows' weighted centred Gram matrix Z Zᵀ (Z: the rows scaled by √w, centred on their weighted means for
    # the intercept): its eigenvectors and eigenvalues are the left singular vectors and squared singular values
    # of Z, all that exact leave-one-out needs (``_shortfall.ridge_left_out``, the overfit check's), one
    # eigendecomposition of m x m, with no copy of X
    r = np.sqrt(w)
    Kc = K
    if fit_intercept:
        mk = (K @ w) / W
        Kc = K - mk[:, None] - mk[None, :] + (mk @ w) / W
    lam, Q = np.linalg.eigh(r[:, None] * Kc * r[None, :])
    top = float(lam[-1]) if lam.size else 0.0
    if not (top > 0 and np.isfinite(top)):
        return None
    keep = lam > top * LOO_RANK
    U, S = Q[:, keep], np.sqrt(lam[keep])
    # the grid (weights of any common scale scale the eigenvalues, and the strengths, alike: the objective's l2
    # is the same)
    low = float(S[0]) ** 2
    decades = np.log10(top * LOO_ABOVE) - np.log10(low * LOO_BELOW)
    alphas = np.logspace(np.log10(low * LOO_BELOW), np.log10(top * LOO_ABOVE),
                         max(LOO_GRID, int(np.ceil(decades * LOO_PER_DECADE)) + 1))
    base = w / W if fit_intercept else np.zeros(m)  # the intercept's leverage
    Yc = r[:, None] * ((Y - ybar) if fit_intercept else Y)
    parts = _shortfall.ridge_hat(U, Yc, base)
    err = np.empty((len(alphas), Y.shape[1]))
    for a, alpha in enumerate(alphas):
        res = _shortfall.ridge_left_out(U, S, *parts, alpha)
        err[a] = np.inf if res is None else np.square(res).sum(axis=0)
    r2 = 1.0 - np.mean(err / var, axis=1)
    # the strongest within rounding of the best (flat scores: the data does not tell them apart)
    best_r2 = float(np.max(r2))
    best = int(np.flatnonzero(r2 >= best_r2 - 1e-12 * max(1.0, abs(best_r2)))[-1])
    l2 = [2.0 * float(a) / W for a in alphas]  # Ridge's alpha -> the objective's l2 (per unit of weight)
    return Choice(l2[best], [(l2[a], float(r2[a])) for a in range(len(alphas))], 1, m, loo=True)


@dataclasses.dataclass
class Choice:
    """The outcome: ``l2`` (the objective's alpha for all rows), the path (alpha for all rows, held-out R²) in
    the order tried (the squared error's finalists last, each with its mean over the folds), and the passes
    over X."""

    l2: float
    path: list
    passes: int
    shares: int = 1  # the held-out shares the chosen strength was scored on (its score their mean)
    loo: bool = False  # chosen by leave-one-out (``choose_l2_loo``; shares: the rows left out)


def _first(scaling, fit_intercept):
    """The path's first strength per unit of weight: the median over the columns that vary of their variance
    (second moment without an intercept), in the data's units; None when no column varies. The median, not the
    mean: one row holding 1e4 in 15 of 80 U(0, 1) columns made the mean so strong for every other column that
    the walk stopped about R² 0 (held-out R² 0.0 against least squares' 0.92, silently, for some seeds)."""
    raw_mean, var = scaling.column_moments()
    m2 = var if fit_intercept else var + np.square(raw_mean)
    spread = m2[m2 > 0]
    return float(np.median(spread)) * FIRST if spread.size else None


def auto_unit(scaling, fit_intercept):
    """The unit of penalty="auto"'s fixed strength where none is chosen: ``Ridge(alpha=1)`` on X in units of its
    median varying column's largest |value| (sparse standardization's own column unit), i.e. Ridge's alpha
    times that value squared, so that X times any constant gives the same model, and binary or unit-valued
    columns keep Ridge(alpha=1) itself; the median, so that one column in large units does not make it strong
    for every other. 1.0 without a sparse standardization's statistics or where no column varies."""
    if scaling is None or scaling.x_var is None or scaling.x_sparse is None:
        return 1.0
    raw_mean, var = scaling.column_moments()
    m2 = var if fit_intercept else var + np.square(raw_mean)
    top = scaling.column_maxabs()[m2 > 0]
    unit = float(np.median(top)) ** 2 if top.size else 1.0
    return unit if 0.0 < unit < np.inf else 1.0


def auto_loss_unit(scaling, loss_code):
    """The factor on "auto"'s fixed strength for a loss other than the squared error (``loss_code``: the
    kernels' (code, param), None for the squared error: 1.0): its loss scales with y as y_scale·loss_unit
    (fastgd._rules.loss_unit: y_scale for the squared losses, 1 for the absolute ones, min(y_scale, epsilon) for
    huber) and the penalty with y_scale², so alpha times loss_unit / y_scale (the mean over outputs) gives y
    times any constant the same model (with y·1e10, huber's default epsilon and alpha = 1e-4 the penalty was
    1e10 times the loss's and the fit stayed near zero). 1.0 without the statistics."""
    if loss_code is None or scaling is None or scaling.y_scale is None:
        return 1.0
    ys = np.asarray(scaling.y_scale, dtype=np.float64)
    ys = ys[(ys > 0) & np.isfinite(ys)]
    if not ys.size:
        return 1.0
    unit = float(np.mean([_rules.loss_unit(loss_code[0], loss_code[1], float(s)) / float(s) for s in ys]))
    return unit if 0.0 < unit < np.inf else 1.0


def strongest(scaling, fit_intercept):
    """The strongest l2 (the objective's alpha) the path can try, or None (no column varies, or no
    statistics): the warm-up before the path needs no stronger penalty (in X's tiny units, Ridge(alpha=1)'s
    strength is so strong that its curvature overflows the mini-batch optimizer's state)."""
    if scaling is None or scaling.x_var is None:
        return None
    first = _first(scaling, fit_intercept)
    return None if first is None else 2.0 * first * STEP ** MAX_POINTS


def loss_l2_unit(scaling, loss_code):
    """The factor from the squared error's l2 strength to the same strength for ``loss_code`` (None: the
    squared error, 1.0): half (huber is ½r² within epsilon, the squared error r²) times the loss's unit over y's
    scale (``auto_loss_unit``: epsilon / s for an epsilon below y's spread s, where huber is epsilon·|r| for most
    residuals), so that the path walks the same strengths, relative to the data, in either objective."""
    return 1.0 if loss_code is None else 0.5 * auto_loss_unit(scaling, loss_code)


def _score_loss(loss, cols, base):
    """The loss that scores huber's strengths: huber with epsilon at least SCORE_EPSILON times the targets'
    robust spread (1.4826 times the median absolute deviation of the rows of positive weight; the largest over
    outputs), else the fit's own."""
    if loss is None or int(loss[0]) != _rules.HUBER or SCORE_EPSILON <= 0:
        return loss
    rows = base > 0
    spread = 0.0
    for Yj in cols:
        yj = np.asarray(Yj).reshape(-1)[rows]
        spread = max(spread, 1.4826 * float(np.median(np.abs(yj - np.median(yj))))) if yj.size else spread
    eps = SCORE_EPSILON * spread
    return (loss[0], eps) if np.isfinite(eps) and eps > float(loss[1]) else loss


def _share(u, base, f):
    """The weights (held out, trained on) of the ``f``-th disjoint held-out share: the rows whose draw ``u`` is in
    [f, f + 1)·HOLD_OUT; None where either side has fewer than MIN_ROWS rows of positive weight."""
    held = np.where((u >= f * HOLD_OUT) & (u < (f + 1) * HOLD_OUT), base, 0.0)
    train = base - held
    if min(np.count_nonzero(held), np.count_nonzero(train)) < MIN_ROWS or not (train.sum() > 0 < held.sum()):
        return None
    return held, train


def choose_l2(problem, theta, k, fit_intercept, rng):
    """The ``Choice`` for ``problem`` (a sparse ``FitData`` with a ``Scaling``) starting from the standardized
    ``theta``, which ends at the chosen strength's path solution (the path works in it, and holds one more
    such vector: the best so far); or, ``theta`` unchanged, why no strength can be chosen (a str: too few rows
    to hold out, constant held-out targets, no column that varies): the caller keeps its strength. With
    ``problem.loss`` (huber): L-BFGS solves and held-out loss scores (see the module's docstring)."""
    n = problem.n
    base = np.ones(n) if problem.sw is None else problem.sw
    u = rng.random_sample(n)
    held = u < HOLD_OUT
    w_val = np.where(held, base, 0.0)
    w_tr = np.where(held, 0.0, base)
    W, W_tr, W_val = float(base.sum()), float(w_tr.sum()), float(w_val.sum())
    loss = problem.loss
    if min(np.count_nonzero(w_val), np.count_nonzero(w_tr)) < MIN_ROWS or not (W_tr > 0 and W_val > 0):
        loo = choose_l2_loo(problem, k, fit_intercept) if loss is None else None
        if loo is not None:
            return loo
        return (f"too few rows to hold out {HOLD_OUT:.0%} of them (at least {MIN_ROWS} held out and trained on, "
                f"of positive weight)")
    if loss is None:
        # every output counts by its R² (its errors in units of its spread), whatever its scale
        ys = problem.scaling.y_scale if k > 1 else np.ones(1)  # one output: its unit cancels (no copy of y)
        Ys = np.ascontiguousarray(problem.Y / ys) if k > 1 else problem.Y
        var_val = _training.constant_loss(Ys, w_val, None)
        constant = var_val > 0
    else:
        # every output counts by its held-out loss relative to that of the held-out mean (unit-free)
        cols = [problem.Y if k == 1 else np.ascontiguousarray(problem.Y[:, j:j + 1]) for j in range(k)]
        score_loss = _score_loss(loss, cols, base)
        base_val = [_training.constant_loss(Yj, w_val, score_loss) for Yj in cols]
        constant = all(v > 0 for v in base_val)
        # the folds: the first the held-out rows above, the others the next shares of u; a fold with too few rows
        # (held out or trained on) or constant held-out targets is left out
        folds = []
        for f in range(LOSS_FOLDS):
            share = _share(u, base, f)
            if share is None:
                continue
            wv_f, wt_f = (w_val, share[1]) if f == 0 else share
            bv = [_training.constant_loss(Yj, wv_f, score_loss) for Yj in cols]
            if all(v > 0 for v in bv):
                folds.append((wv_f, wt_f, bv, theta.copy() if f else theta))
    if not constant:
        return "the held-out rows' targets are constant (no R² to compare strengths by)"
    finals = []  # the squared error's other folds, for the finalists: (held-out weights, training weights, variance)
    if loss is None:
        stored = problem.Xk[0].size if isinstance(problem.Xk, tuple) else problem.Xk.size
        shares = SQUARED_FOLDS if stored > FINALISTS_ALL_VALUES else int(round(1.0 / HOLD_OUT))
        for f in range(1, shares):
            share = _share(u, base, f)
            if share is None:
                continue
            wv_f, wt_f = share
            var_f = _training.constant_loss(Ys, wv_f, None)
            if var_f > 0:
                finals.append((wv_f, wt_f, var_f))
    if problem.scaling.curvature(0.0, fit_intercept, k) is None:
        return "the columns' statistics are not at hand"
    # the start: the strength that matches the average column's curvature (the mean over the columns that
    # vary of Σ s·x², with an intercept of the centred columns) in Ridge's units
    first = _first(problem.scaling, fit_intercept)  # per unit of weight: the strength is 2·first·STEP**e
    if first is None:
        return "no column of X varies (nothing for the strength to act on)"
    unit = loss_l2_unit(problem.scaling, loss)  # the squared error's strengths in this loss's objective
    train = dataclasses.replace(problem.whole(), sw=w_tr)
    ids = np.arange(train.n_batches, dtype=np.int64)
    scores, passes = {}, [0]

    def squared(e, th, wt, wv_, var_, score=True):
        """``th`` moved to the path solution at ``first·STEP**e`` on the rows of weights ``wt``; the held-out R²
        of the rows of weights ``wv_`` (their weighted variance ``var_``; ``score=False``: no score, None)."""
        sq = 2.0 * first * STEP ** e * (W / float(wt.sum()))  # the same Ridge alpha on the training rows' weight
        fin = _training.train_pcg(dataclasses.replace(train, sw=wt, l2=sq), SimpleNamespace(theta=th), train_ids=ids,
                                  steps=PATH_ITER, tol=PATH_TOL,
                                  precondition=problem.scaling.curvature(sq, fit_intercept, k))
        passes[0] += fin.n_iter + 2 + score  # the iterations, the start and end of the solve, the score
        if not score:
            return None
        raw = problem.raw(th)
        raw /= ys[:, None]
        sse, wv = problem.kern.batches_loss(problem.Xk, Ys, wv_, raw, train.batch_size, ids, problem.n_threads)
        return 1.0 - float(sse) / float(wv) / var_ if wv > 0 else -np.inf

    def solve(e):
        """``theta`` moved to the path solution at the strength ``first·STEP**e``; its held-out R² in ``scores``."""
        if loss is None:
            score = squared(e, theta, w_tr, w_val, var_val)
        else:
            score = 0.0
            for wv_f, wt_f, bv, th in folds:  # each fold's solution warm-started from its last strength's
                sq_f = 2.0 * first * STEP ** e * (W / float(wt_f.sum()))
                st = SimpleNamespace(theta=th, scalars=np.zeros(1))
                _training.train_lbfgs(dataclasses.replace(train, sw=wt_f, l2=sq_f * unit), st,
                                      LBFGS(line_search_fn="strong_wolfe", history_size=LOSS_PATH_HISTORY),
                                      train_ids=ids, steps=LOSS_PATH_STEPS, tol=PATH_TOL,
                                      precondition=problem.scaling.curvature(sq_f, fit_intercept, k))
                passes[0] += int(st.scalars[0]) + 1 + k  # the evaluations, the end point, the score per output
                raw = problem.raw(th)
                for j, Yj in enumerate(cols):
                    lj, wv = problem.kern.batches_loss(problem.Xk, Yj, wv_f, np.ascontiguousarray(raw[j:j + 1]),
                                                       train.batch_size, ids, problem.n_threads, loss=score_loss)
                    score += 1.0 - float(lj) / float(wv) / bv[j] if wv > 0 else -np.inf
            score /= k * len(folds)
        scores[e] = score if np.isfinite(score) else -np.inf

    def tried(e):
        """Keep ``theta`` (just solved at ``e``) as the best when it beats it by GAIN; return whether it did."""
        if scores[e] > scores[best[0]] + GAIN:
            best[0] = e
            for b, th in zip(best_theta, moved):
                np.copyto(b, th)
            return True
        return False

    solve(0.0)  # exponents of STEP from the first strength
    moved = [theta] if loss is None else [f[3] for f in folds]  # what the path moves (theta: the first fold's)
    best, best_theta = [0.0], [th.copy() for th in moved]

    def back():
        for b, th in zip(best_theta, moved):
            np.copyto(th, b)

    for direction in (-1.0, 1.0):  # weaker first; stronger only if the first strength stayed the best
        if direction > 0 and best[0] != 0.0:
            break
        if direction > 0:
            back()  # the walk up starts from the first strength's solution
        e, misses, flats = 0.0, 0, 0
        while misses < MISSES and len(scores) < min(MAX_POINTS + flats, MAX_FLAT_POINTS):
            e += direction
            solve(e)  # warm-started from the last strength's solution
            flat = direction < 0 and scores[best[0]] <= NO_SIGNAL and scores[e] >= scores[best[0]] - GAIN
            flats += flat  # strong strengths converge in a few passes: they do not use up the walk's points
            misses = 0 if tried(e) or flat else misses + 1
    # half a step towards the better neighbour (the score is about a parabola in log(strength) near its peak)
    # ... and for huber the other half step too (one more strength): its score can peak within a decade on the
    # side of the worse neighbour (np.round(y), five folds, the fit's epsilon: 1.7e-4 0.010, 5e-4 0.034, 1.7e-3
    # 0.024, 1.7e-2 0.016 with fully converged fits)
    half = 0.5 if scores.get(best[0] + 1.0, -np.inf) > scores.get(best[0] - 1.0, -np.inf) else -0.5
    centre = best[0]
    for h in ((half,) if loss is None else (half, -half)):
        back()
        solve(centre + h)
        tried(centre + h)
    back()
    if finals:
        # the finalists: the best decade's strength and half a step either side of it, each scored on the other
        # folds too and judged by its mean score (one fifth's noise between neighbours had decided the half step:
        # hashed docstrings, 2 of 20 random_states at alpha 3.8e-5, held-out R² 0.272 where the others' 1.2e-4 and
        # 3.8e-4 gave 0.338 and 0.342). Each fold walks its own path, in theta (the best is held in best_theta, and
        # theta gets it back after): from zero (no model that saw the fold's held-out rows: warm-started from the
        # first fold's best, which trained on them, the path's solves stopped before forgetting them, and at weak
        # strengths 125 Zipf rows scored 0.84 where exact Ridge fits score 0.17) at the first strength, or the
        # strongest finalist if stronger, down in steps of STEP to the finalists, strong to weak
        points = [centre + 0.5, centre, centre - 0.5]
        for e in points:
            if e not in scores:
                solve(e)
                back()
        total = {e: scores.pop(e) for e in points}  # re-inserted last: the finalists end the path

        def other_shares(strengths):
            """The sum over the other shares of their scores at ``strengths`` (strong to weak), each share from
            zero down its own path (no model that saw its held-out rows), in ``theta``, which then holds the
            first share's best again."""
            sums = dict.fromkeys(strengths, 0.0)
            descent = np.arange(max(0.0, strengths[0] + 0.5), strengths[0], -1.0)  # decades above the first
            for wv_f, wt_f, var_f in finals:
                theta[...] = 0.0
                for e in descent:
                    squared(float(e), theta, wt_f, wv_f, var_f, score=False)
                for e in strengths:
                    sums[e] += squared(e, theta, wt_f, wv_f, var_f)
            back()
            return sums

        for e, v in other_shares(points).items():
            total[e] += v
        gain = GAIN * (1 + len(finals))  # (the walk's rule, on the sums)

        def strongest_best():
            """The strongest of the points within GAIN of the best mean (a weaker one must gain GAIN, as on the
            walk: where weak strengths interpolate, their scores agree to rounding)."""
            top = max(total[e] for e in points)
            return next(e for e in points if total[e] >= top - gain)

        pick = strongest_best()
        # a mean still rising at the weak or strong end: the first share's walk had stopped in another decade
        # (150 Zipf rows on which it scored below 0 at every strength climbed three decades; test R² 0.147
        # where its first strength's 0.318): half steps on that side, on every share, until the mean gains less
        # than GAIN
        while pick in (points[0], points[-1]) and len(points) < 3 + FINALISTS_EXTEND:
            new = pick + 0.5 if pick == points[0] else pick - 0.5
            if new not in scores:  # (a decade the walk scored keeps its first share's score)
                solve(new)  # the first share from its best (other_shares left theta at it)
            total[new] = scores.pop(new) + other_shares([new])[new]
            points = sorted(points + [new], reverse=True)
            if strongest_best() != new:
                break
            pick = new
        for e in points:
            scores[e] = total[e] / (1 + len(finals))
        if pick != best[0]:
            best[0] = pick
            sc = scores[pick]
            solve(pick)  # theta from the first fold's best to the pick's path solution
            scores[pick] = sc
    # no division by the weights' total: the same strengths (bits) for any common scale of the weights
    return Choice(2.0 * first * STEP ** best[0] * unit,
                  [(2.0 * first * STEP ** e * unit, score) for e, score in scores.items()], passes[0],
                  1 + len(finals) if loss is None else len(folds))
