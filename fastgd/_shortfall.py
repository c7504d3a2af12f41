"""The least-squares diagnostic: how far a fit on small data stopped from the exact optimum of its own
objective, and why (the condition number, the sample weights, the epoch budget), worded as a warning; for the
losses with a kink, a lower bound on the optimum at any size, certified by a dual point (``dual_bound``).
"""

import contextlib
import os
import threading
import typing
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from . import _planning, _scaling, _training, reference

SHORTFALL_WARN = 1e-3  # ... more than this fraction of the variance of y above the optimum, or ...
SHORTFALL_REL = 1e-2  # ... more than this fraction of the optimum's objective (the relative excess MSE)
# ... and more than this fraction of the variance of y in any case (tol=0 included): a smaller excess is rounding in
# the kernels, the residuals and the optimum's solve (an exact fit's optimum is 0 and the fit's objective rounding
# above it). One ulp was too tight: linnerud's PolynomialFeatures(4) (20 x 34, values to 4e9), an exact fit with
# tol=0, ended 2.2e-15 of var(y) above it (9.7 ulps; NumPy 1.24 and Numba 0.59 on an AVX-512 Xeon; 0 elsewhere)
# and was told it stopped short on ill-conditioned features
SHORTFALL_ROUNDING = 64 * np.finfo(np.float64).eps
# under the default tol, the library's own finish of small data is also due when the excess is more than this
# share of the optimum's statistical precision, the excess MSE of a least-squares fit to fresh noise,
# best·(d + 1)/n: tol of var(y) alone let data whose optimum explains nearly all of y keep coefficients many
# standard errors from it (two columns correlated to 1 - 5e-7, R² 0.99999, n 5,000-50,000: 0.3-0.8 off where
# their standard error is 0.05-0.14, an excess of 2e-8 of var(y))
SHORTFALL_STAT = 0.1
ILL_CONDITIONED = 100  # a condition number of the standardized design above this is named as the cause
# ... and the l2 penalty's curvature (on the raw weights: l2 / scale² per standardized column) where it makes the
# objective's condition number this many times the design's and above ILL_CONDITIONED: breast cancer's area from
# the other columns (scales 0.0026 to 597), elastic net with optimizer='sgd', 7.67 above the optimum, was said to
# stall on ill-conditioned features (334), which the same fit on StandardScaler'd columns crosses in 64 epochs
PENALTY_CONDITIONS = 10.0
# with standardize=False chosen, features whose standard deviations span more than this factor are named as
# the cause: one step size cannot suit weights whose curvatures differ by its square
SCALE_SPREAD = 100
# a loss with a kink on data this small (n·d·k values, no l2 penalty): the fit is checked against its linear
# program (HiGHS: milliseconds at this size)
LP_CHECK_MAX_VALUES = 20_000
# larger data (or sparse), no penalty, training settings the user chose, at most this many parameters per output:
# the fit's gap is certified by dual_bound (a pass over X and a program over a few thousand rows: 20-40 % of such
# a fit's time; with more parameters the program costs as much as the fit), its program allowed CERTIFY_GROWTH
# times its first number of rows
CERTIFY_MAX_PARAMS = 32
CERTIFY_GROWTH = 8
# a fit that ran out of epochs (max_iter, or the "auto" budget) is certified with up to this many parameters per
# output: otherwise its max_iter warning would say more epochs help where they may not (docs/design.md: its program
# takes 0.1-0.3 s at 65 parameters, 0.7-2.2 s at 128)
CAPPED_CERTIFY_MAX_PARAMS = 128
# an optimum below this fraction of the reference objective fits y exactly: its relative excess would divide by
# that error, so the warning gives the excess as a share of the reference only
EXACT_FIT = _training.EXACT_FIT


_BLAS = []


def blas_controller():
    """One threadpoolctl controller for the process (building one scans the loaded libraries)."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0]


class _OneBlas:
    """one_blas_thread's users and limiter, shared by the process's threads."""
    lock = threading.Lock()
    users = 0
    limiter = None


def _forget_users():  # a forked child has none of its parent's other threads: their count would never drop
    _OneBlas.lock = threading.Lock()
    _OneBlas.users = 0
    _OneBlas.limiter = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_users)


@contextlib.contextmanager
def one_blas_thread():
    """BLAS limited to one thread while any of the process's fits is inside (for speed: no result depends on
    BLAS, see reference.vdot). threadpoolctl's limits hold for the whole process: with a context per fit, the
    first of two concurrent fits to leave restored BLAS's threads under the other. The limit is set by the
    first user and restored by the last."""
    with _OneBlas.lock:
        if _OneBlas.users == 0:
            _OneBlas.limiter = blas_controller().limit(limits=1, user_api="blas")
        _OneBlas.users += 1
    try:
        yield
    finally:
        with _OneBlas.lock:
            _OneBlas.users -= 1
            if _OneBlas.users == 0 and _OneBlas.limiter is not None:
                _OneBlas.limiter.restore_original_limits()
                _OneBlas.limiter = None


def standardized_design(Z, w, W, center, weighted):
    """The fit's standardized coordinates of the dense float64 ``Z`` (a private copy, centred and scaled in place):
    its columns less their weighted means (``center``; else as they are) over their weighted standard deviations
    (root mean squares without centring; constant columns: 1), with weights ``w`` summing to ``W``. Returns
    (mu, s, Zw, G): the means and scales, the rows times their weights (``Z`` itself unless ``weighted``) and the
    second moments G = ZwᵀZ / W."""
    mu = (w @ Z) / W if center else np.zeros(Z.shape[1])
    Z -= mu
    s = np.sqrt(w @ np.square(Z) / W)
    s[~(s > 0)] = 1.0
    Z /= s
    Zw = Z * w[:, None] if weighted else Z
    return mu, s, Zw, Zw.T @ Z / W


def hessian_eigen(G, s, l2):
    """The squared error's Hessian in those coordinates, 2G + l2·diag(1/s²) (an l2 penalty on the raw weights),
    decomposed: (lam, Q, keep), its eigenvalues, eigenvectors and the eigenvalues above rounding."""
    lam, Q = np.linalg.eigh(2.0 * G + l2 * np.diag(1.0 / np.square(s)))
    return lam, Q, lam > max(lam[-1], 0.0) * G.shape[0] * np.finfo(np.float64).eps


def condition_number(lam, keep, G, l2):
    """The standardized design's condition number: the square root of its largest over its smallest curvature
    above rounding (``hessian_eigen``'s, or with a penalty G's own); inf where there is none."""
    d = G.shape[0]
    g = lam[keep] / 2.0 if l2 == 0.0 else np.linalg.eigvalsh(G)
    return float(np.sqrt(g[-1] / g[g > g[-1] * d * np.finfo(np.float64).eps][0])) if g.size else np.inf


def shortfall(est, X, Y, sw, out, n, d, k, within_tol=False):
    """The warning to give (None: the fit is close enough to the optimum, or data in units where the check's
    own arithmetic (squares of the coefficients, an eigensolver) fails: a diagnostic never fails a fit).
    ``within_tol``: the excess is counted against ``tol`` alone, not the warning's looser limit (whether the
    default's finish is due: it owes the user tol; the message is then what the excess would be warned as)."""
    try:
        with np.errstate(all="ignore"):
            return _shortfall(est, X, Y, sw, out, n, d, k, within_tol)
    except np.linalg.LinAlgError:
        return None


def _shortfall(est, X, Y, sw, out, n, d, k, within_tol=False):
    w = np.ones(n) if sw is None else sw / sw.max()  # weights count by their ratios (no overflow)
    W = float(w.sum())
    A = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    raw = est._raw_params(k, d)
    R = A @ raw[:, :d].T + raw[:, d] - Y  # residuals (n, k), in the data's units
    rbar = (w @ R) / W if est.fit_intercept else np.zeros(k)
    top = np.abs(A).max(axis=0) if n else np.zeros(d)
    tiny = np.finfo(np.float64).tiny ** 0.5
    small = (top > 0) & (top < tiny)  # standardize=False (else Scaling raised): values whose squares underflow
    if small.any():
        return (f"X has values too small for float64 arithmetic (largest |value| {top[small].max():.3g}): their "
                f"squares underflow, so the fit and this check cannot measure them. Multiply X by a constant "
                f"(such as {10.0 ** min(np.ceil(-np.log10(top[small].max())), 300.0):.0e}) first.")
    Z = A.copy()
    _, s, Zw, G = standardized_design(Z, w, W, est.fit_intercept, sw is not None)
    l1, l2 = _planning.penalty_parts(est)
    V = raw[:, :d] * s  # the weights in the standardized coordinates
    grad = 2.0 * Zw.T @ R / W + l2 * (V / np.square(s)).T  # (d, k): the smooth part's gradient
    lam, Q, keep = hessian_eigen(G, s, l2)
    got = float((w @ np.square(R)).sum()) / W + _penalty_value(est, raw[:, :d])
    if l1 > 0.0:
        best = _penalized_optimum(est, Z, Y, w, s, l1, l2)
    else:
        proj = Q[:, keep].T @ grad
        best = got - 0.5 * float((np.square(proj) / lam[keep, None]).sum()) - float(np.square(rbar).sum())
    mean = (w @ Y) / W if est.fit_intercept else np.zeros(k)
    var = float((w @ np.square(Y - mean)).sum()) / W
    excess = got - best
    # the optimum in closed form from the same residuals: an excess below SHORTFALL_ROUNDING is their rounding
    if within_tol:
        limit = (est.tol or 0.0) * var
        if est.tol == _planning.DEFAULT_TOL:  # the user's own tol is theirs to bound the excess by
            limit = min(limit, SHORTFALL_STAT * max(best, 0.0) * (d + 1) / (W * W / float(w @ w)))
        limit = max(limit, SHORTFALL_ROUNDING * var)
    else:
        limit = warn_limit(best, var, est.tol, floor=SHORTFALL_ROUNDING)
    if not (var > 0 and excess > limit):
        return None
    cond = condition_number(lam, keep, G, l2)
    # the objective's own (the penalty's curvature included), as condition_number counts: the root of the ratio
    whole = float(np.sqrt(lam[keep][-1] / lam[keep][0])) if l2 > 0.0 and np.any(keep) else cond
    what = "least-squares" if _planning.used_penalty(est)[0] is None else "penalized"
    capped = out.n_iter >= est.max_iter_ and not out.converged  # the epochs' count (a finish adds to n_iter_)
    unscaled = scale_cause(est, s)
    gtol = gtol_cause(est, out)
    lbfgs = lbfgs_cause(est, out)
    if lbfgs:  # the user's L-BFGS: its own stop and the settings that reach the optimum
        return (f"L-BFGS stopped {excess_words(excess, best, var, 'the variance of y')} above the {what} optimum "
                f"after {out.n_iter} step{'s' if out.n_iter != 1 else ''}: {lbfgs[0]}. {lbfgs[1]}, or use a "
                f"closed-form or coordinate-descent solver, which this small data set allows: {exact_solver(est)}.")
    cause = (gtol if gtol else
             f"training reached max_iter={est.max_iter_} epochs" if capped and est.max_iter != "auto" else
             unscaled if unscaled else
             f"the l2 part of the penalty is on the weights in the data's units, so on the standardized columns "
             f"(scales {s.min():.3g} to {s.max():.3g}) its curvature is l2 / scale², which makes the objective "
             f"ill-conditioned (condition number {whole:.3g}, the standardized features alone {cond:.3g}), so "
             f"progress along its weakest directions is slow" if whole > max(PENALTY_CONDITIONS * cond,
                                                                          ILL_CONDITIONED) else
             f"the standardized features are ill-conditioned (condition number {cond:.3g}), so progress "
             f"along their weakest directions is slow" if cond > ILL_CONDITIONED else
             f"the sample weights span {w.max() / w[w > 0].min():.3g} times, which makes the weighted problem "
             f"ill-conditioned" if sw is not None and w.max() > 1e6 * w[w > 0].min() else
             "the progress per round fell below tol before the optimum")
    if not (capped and est.max_iter != "auto") and not gtol:  # the user's budget, not the steps, cut it short
        cause += chosen_cause(est)
    return (f"Gradient descent stopped {excess_words(excess, best, var, 'the variance of y')} above the {what} "
            f"optimum {after_epochs(est, out)}: "
            f"{cause}. {shortfall_fix(est, capped, unscaled, gtol is not None)}")


# dense data, squared error, penalty="auto" (least squares): with few rows per column the least-squares model fits
# the rows' noise. After a fit whose exact leave-one-out check (an SVD of the standardized rows: at most
# OVERFIT_MAX_FLOPS, min(n, d)²·max(n, d)) finds that an l2 penalty on the standardized columns predicts left-out
# rows better by more than OVERFIT_GAIN of R², a warning gives both figures and that penalty as a pipeline
OVERFIT_MAX_FLOPS = 3e8  # 0.05-0.09 s (375 x 1000, 600 x 800); 2e9 let it cost 0.54 s on a 14 ms fit (2000 x 1000)
# ... or more after a fit that made many passes over X: the SVD costs about min(n, d) passes (min(n, d)·n·d), and
# it runs where that is at most OVERFIT_FIT_SHARE times the passes the fit made (n_iter_), with X of at most
# OVERFIT_MAX_VALUES values (the check copies it): digits' degree-2 products (1257 x 2144), 1,050 passes, held-out
# R² -1.29 with only the finish's ConvergenceWarning, whose advice (LinearRegression) gave -2.97; 700 x 1000
# correlated columns, 1,034 passes: -3.22, silent
OVERFIT_FIT_SHARE = 2.0
OVERFIT_MAX_VALUES = 1e7
OVERFIT_ROWS_PER_COLUMN = 20  # more rows per column than this: least squares' excess error is too small to check
OVERFIT_GAIN = 0.05
# ... and where it cannot run, with at least this many weights per row (least squares' left-out error is then at
# least 1 / (1 - 0.75) = 4 times the noise, from 2 at half): the training error's generalized cross-validation
# estimate warns. With fewer weights per row whether a penalty gains depends on how the signal lies along the
# design's directions, which only the exact check measures: 2,000-4,000 x 1,000 with the signal in every
# direction had gaps of 0.11-0.16 between the training R² and the estimate where RidgeCV gained 0.004-0.018; so
# there the estimate's gap buys the exact check, whatever its cost, where X holds at most OVERFIT_MAX_VALUES
# (1,400 x 1,000 factor data, noise as large as the signal: held-out R² -0.65 against RidgeCV's 0.52, silent
# before, 488 passes paying for 0.98 of the SVD; warned now, the fit 0.4 -> 1.0 s)
OVERFIT_GCV_SHARE = 0.75
# ... or this much where least squares interpolates the rows: its left-out figure is then the minimum-norm
# interpolant's, which the fit's optimizer need not reach (Adam on 300 x 600: 9 % larger coefficients, held-out
# R² 0.124 against the minimum-norm one's 0.252), so the check's figure for it is optimistic
OVERFIT_GAIN_INTERPOLATING = 0.02
OVERFIT_GRID = np.logspace(-8.0, 2.0, 31)  # the penalties tried, times the largest squared singular value
LEVERAGE_ONE = 1e-12  # 1 - h at or below this (rounding of 1 - Σ of squares): the row's leverage is 1


def overfit_applies(est, X):
    """Whether ``overfit`` checks a fit of ``est`` on X, its cost aside: dense X, the squared error, least
    squares (penalty="auto" with no penalty), no early stopping, 10 to OVERFIT_ROWS_PER_COLUMN rows per column."""
    n, d = X.shape
    return not (sp.issparse(X) or est.loss != "squared_error" or est.penalty != "auto"
                or _planning.used_penalty(est)[0] is not None or est.early_stopping or n < 10
                or n > OVERFIT_ROWS_PER_COLUMN * d)


def overfit_cost(X):
    """The overfit check's operations on X: its thin SVD, min(n, d)²·max(n, d)."""
    n, d = X.shape
    return float(min(n, d)) ** 2 * max(n, d)


def overfit_budget(est, n, d):
    """The most operations (``overfit_cost``) the overfit check spends after ``est``'s fit of n x d X, given the
    passes over X it has made so far (``n_iter_``: its epochs, and its finish's iterations once they ran)."""
    passes = float(getattr(est, "n_iter_", 0) or 0)
    share = OVERFIT_FIT_SHARE * passes * n * d if n * d <= OVERFIT_MAX_VALUES else 0.0
    return max(OVERFIT_MAX_FLOPS, share)


def overfit_after_finish(est, X):
    """Whether ``overfit`` is to be tried again after the fit's finish (``_check_shortfall``): it applies, but
    before the finish its passes did not pay for its cost, and they might after it."""
    n, d = X.shape
    return overfit_applies(est, X) and overfit_cost(X) > overfit_budget(est, n, d) and n * d <= OVERFIT_MAX_VALUES


def unchecked_overfit(est, X, Y, sw):
    """The warning for a least-squares fit that ``overfit`` applies to but did not check (its cost), or None.
    Where X has at least as many columns as rows (counting the intercept's), least squares has a weight per row
    or more and can fit every row exactly, noise included, which only the check could have measured. With more
    rows, the fit's training error tells: generalized cross-validation estimates the left-out error of least
    squares with p weights on n rows as the training error over (1 - p/n)² (the hat matrix's mean leverage is
    p/n; a pass over X to predict, where the check's SVD costs min(n, d) of them). Where p is at least
    OVERFIT_GCV_SHARE of n and that estimate is below the training R² by more than twice OVERFIT_GAIN, the rows'
    noise is a large part of what the fit learned (2,500 x 2,000 factor data: training R² 0.993, estimated 0.829,
    held-out 0.824, RidgeCV 0.963, silently before)."""
    n, d = X.shape
    w = None if sw is None else np.asarray(sw, dtype=np.float64)
    rows = n if w is None else int(np.count_nonzero(w > 0))
    if not overfit_applies(est, X) or overfit_cost(X) <= overfit_budget(est, n, d):
        return None
    weights = d + (1 if est.fit_intercept else 0)
    scaler = "" if est.fit_intercept else "with_mean=False"
    not_run = (f"The check that compares it with an l2 penalty on left-out rows did not run (its SVD, "
               f"{overfit_cost(X):.2g} operations, costs more than this fit's passes paid for)")
    advice = (f"If the rows hold noise, penalize: sklearn.pipeline.make_pipeline(sklearn.preprocessing."
              f"StandardScaler({scaler}), sklearn.linear_model.RidgeCV(alphas=numpy.logspace(-3, 3, 13)"
              f"{'' if est.fit_intercept else ', fit_intercept=False'})) chooses the strength on left-out rows.")
    if rows <= weights:
        return (f"This least-squares fit (penalty='auto' adds no penalty on dense X) has at least as many weights "
                f"as rows ({rows} rows of positive weight, {d} columns), so it can fit every row exactly, their "
                f"noise included, and may predict new rows poorly. {not_run}. {advice}")
    if weights < OVERFIT_GCV_SHARE * rows and n * d > OVERFIT_MAX_VALUES:
        return None
    Yd = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    resid = np.asarray(est.predict(X), dtype=np.float64).reshape(n, -1) - Yd
    ww = np.ones(n) if w is None else w
    W = float(ww.sum())
    # scikit-learn's R² (about y's mean, also without an intercept: about 0 a mean of 20 hid a gap of 1.4)
    var = float(ww @ np.square(Yd - (ww @ Yd) / W).sum(axis=1))
    if not (W > 0 and var > 0):
        return None
    train = 1.0 - float(ww @ np.square(resid).sum(axis=1)) / var
    estimate = 1.0 - (1.0 - train) / (1.0 - weights / rows) ** 2
    # the gap counts the noise twice (fitted into the training rows, missing on the left-out ones); a penalty can
    # at most remove the second, so a gap of twice OVERFIT_GAIN is where the exact check's test might pass
    if not (np.isfinite(estimate) and train - estimate > 2.0 * OVERFIT_GAIN):
        return None
    if weights < OVERFIT_GCV_SHARE * rows:
        # fewer weights per row: whether a penalty gains depends on where the signal lies, which the estimate
        # cannot tell, so it buys the exact check, whatever its cost, where X is small enough to copy (above)
        return overfit(est, X, Y, sw, budget=False)
    return (f"This least-squares fit (penalty='auto' adds no penalty on dense X) has {weights} weights for {rows} "
            f"rows of positive weight: it scores R² {train:.3g} on them, and its estimated R² on left-out rows is "
            f"{estimate:.3g} (generalized cross-validation: the training error over (1 - weights/rows)²), so part "
            f"of what it learned is the rows' noise. {not_run}. {advice}")


def ridge_hat(U, Yc, base):
    """What exact leave-one-out of ridge (``ridge_left_out``) needs from the rows' thin SVD Z = U S Vᵀ (the rows
    scaled by √w and centred on their weighted means where ``base``, the intercept's leverage w / Σw, is not 0)
    and the targets ``Yc`` (centred and scaled alike): c = Uᵀ Yc, U², 1 - h of least squares (without
    cancellation) and least squares' residuals, what no penalty can fit (out of U's span)."""
    c = U.T @ Yc
    U2 = np.square(U)
    out_of_span = np.maximum(1.0 - base - U2.sum(axis=1), 0.0)
    return c, U2, out_of_span, Yc - U @ c


def ridge_left_out(U, S, c, U2, out_of_span, fitted_out, lam):
    """Each row's leave-one-out residual r / (1 - h) (rows x outputs, in the √w units of ``ridge_hat``'s parts)
    of ridge at the penalty lam > 0, whose hat matrix is q qᵀ + U diag(S²/(S² + λ)) Uᵀ (q: the intercept's
    direction); None where a row with a residual has leverage 1 (a column stored in that row alone)."""
    frac = lam / (np.square(S) + lam)  # 1 - S²/(S² + λ): the share each direction keeps out of the fit
    res = U @ (frac[:, None] * c) + fitted_out
    gap = out_of_span + U2 @ frac
    if np.any(gap[np.any(res != 0, axis=1)] <= LEVERAGE_ONE):
        return None
    return res / np.maximum(gap, 1e-300)[:, None]


def overfit(est, X, Y, sw, budget=True):
    """The warning for a least-squares fit (dense X, squared error, penalty="auto") that an l2 penalty would beat
    on left-out rows, or None (``budget``: None also where its cost exceeds ``overfit_budget``). Exact
    leave-one-out, as RidgeCV's: the standardized columns (StandardScaler's scales; the rows' weighted means,
    which the unpenalized intercept absorbs), their thin SVD Z = U S Vᵀ, and for each penalty λ the residuals r
    and leverages h of the hat matrix q qᵀ + U diag(S²/(S² + λ)) Uᵀ (q: the intercept's direction), whose
    left-out residuals are r / (1 - h). Least squares (λ = 0) is scored as the limit of
    a vanishing penalty, the minimum-norm model fitted without the row: where a row's leverage is 1 (a column
    stored in that row alone, or every row of a fit that interpolates them) r / (1 - h) is 0 / 0, and that
    limit is what a refit without the row predicts (LinearRegression's lstsq, or this fit, which leaves a
    column with no values where it starts). The
    scales are those StandardScaler finds on all of X (the advised pipeline's; rows of weight 0 included), and
    the R² figures are scikit-learn's (errors over the spread about y's weighted mean). No warning where the
    best penalty is the weakest tried (that is least squares) or predicts no better than the mean."""
    n, d = X.shape
    k = Y.shape[1]
    if not overfit_applies(est, X) or (budget and overfit_cost(X) > overfit_budget(est, n, d)):
        return None
    w = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    rows = w > 0
    if np.count_nonzero(rows) < 10:
        return None
    A = np.asarray(X, dtype=np.float64)
    # StandardScaler's scales (of all rows, unweighted, as in the advised pipeline), so its alpha is the pipeline's
    scale = A.std(axis=0)
    scale[~(scale > 0)] = 1.0
    A = A[rows]
    Yr, w = np.asarray(Y, dtype=np.float64)[rows], w[rows]
    W = float(w.sum())
    root = np.sqrt(w)
    center = est.fit_intercept
    if center:
        A = A - (w @ A) / W
        # and again: a column whose mean is m times its spread keeps a mean of about m·eps of its spread after one
        # pass, a direction the SVD finds (relative singular value 3e-10 at m = 1e6, above the cut below) and whose
        # leverage, added to the intercept's, made 300 x 600 rows' left-out R² 0.327 at m = 1e4 (0.907 at m = 100)
        A -= (w @ A) / W
        Yc = Yr - (w @ Yr) / W
    else:
        Yc = Yr
    A /= scale
    A *= root[:, None]
    Yc = Yc * root[:, None]
    try:
        U, S, _ = np.linalg.svd(A, full_matrices=False)
    except np.linalg.LinAlgError:
        return None
    del A
    if not (S.size and S[0] > 0 and np.all(np.isfinite(S))):
        return None
    keep = S > S[0] * 1e-10
    U, S = U[:, keep], S[keep]
    base = w / W if center else np.zeros(len(w))  # the intercept's leverage
    c, U2, out_of_span, fitted_out = ridge_hat(U, Yc, base)
    var = float((w[:, None] * np.square(Yr - (w @ Yr) / W)).sum()) / W  # R²'s spread: about the mean, as sklearn's
    if not var > 0:
        return None

    def least_squares_left_out():
        """left_out(λ) as λ -> 0: r / (1 - h) where the leverage h is below 1; where it is 1 both vanish with λ
        (as λ·Σ_j U_ij c_j / S_j² and λ·Σ_j U_ij² / S_j²), so their ratio's limit, which needs no penalty."""
        res = fitted_out.copy()
        gap = out_of_span.copy()
        one = gap <= LEVERAGE_ONE
        gap[one] = 1.0
        res /= gap[:, None]
        if np.any(one):
            inv = 1.0 / np.square(S)
            res[one] = (U[one] @ (inv[:, None] * c)) / (U2[one] @ inv)[:, None]
        return float(np.square(res).sum()) / W

    def left_out(lam):
        res = ridge_left_out(U, S, c, U2, out_of_span, fitted_out, lam)
        return np.inf if res is None else float(np.square(res).sum()) / W

    interpolates = float(np.square(fitted_out).sum()) <= 1e-20 * var * W
    exact = least_squares_left_out()
    grid = OVERFIT_GRID * S[0] ** 2
    errors = [left_out(lam) for lam in grid]
    best = int(np.argmin(errors))
    r2_best = 1.0 - errors[best] / var
    r2_ls = 1.0 - exact / var
    gain = OVERFIT_GAIN_INTERPOLATING if interpolates else OVERFIT_GAIN
    if not (best > 0 and r2_best > 0.0 and r2_best - r2_ls > gain and np.isfinite(r2_ls)):
        return None
    alpha = 2.0 * grid[best] / W  # the objective's alpha: mean loss + (alpha / 2)·|w|², Ridge's alpha = alpha·W / 2
    ls = f"predicts left-out rows with R² {r2_ls:.3g} (exact leave-one-out)"
    if interpolates:
        ls = f"fits every training row exactly (it interpolates them) and {ls}"
    args = "" if est.fit_intercept else ", fit_intercept=False"
    scaler = "" if est.fit_intercept else "with_mean=False"  # no intercept: nothing may shift y's level
    return (f"This least-squares fit (penalty='auto' adds no penalty on dense X) {ls}: with {n} rows and {d} "
            f"columns it fits their noise. An l2 penalty on the standardized columns predicts left-out rows with R² "
            f"{r2_best:.3g}: sklearn.pipeline.make_pipeline(sklearn.preprocessing.StandardScaler({scaler}), "
            f"fastgd.LinearRegressor(penalty='l2', alpha={alpha:.3g}{args})), or scikit-learn's RidgeCV on "
            f"standardized columns.")


def after_epochs(est, out):
    """"after N epochs" of a fit whose epochs' outcome is ``out``, and the iterations of its full-batch finish
    when one ran (``n_iter_`` counts both: each is a pass over X)."""
    finish = est.n_iter_ - out.n_iter
    return f"after {out.n_iter} epochs" + (f" and {finish} iterations of the full-batch finish" if finish > 0 else "")


def warn_limit(best, f_ref, tol, floor=0.0):
    """The excess of a fit's objective above the optimum ``best`` beyond which it is worth a warning: more than
    ``tol`` (None: 0) of ``f_ref`` (the variance of y, or the loss of its constant mean) allows, and more than the
    smaller of ``SHORTFALL_REL`` of the optimum and ``SHORTFALL_WARN`` of ``f_ref``. ``floor``: the least fraction
    of ``f_ref`` that counts, in place of a smaller tol."""
    return max(max(tol or 0.0, floor) * f_ref, min(SHORTFALL_REL * max(best, 0.0), SHORTFALL_WARN * f_ref))


def excess_words(excess, best, ref, ref_name):
    """How far above the optimum a fit stopped: the relative excess and the share of the reference objective
    (the variance of y, or the loss of its constant mean), or the share alone when the optimum fits y exactly."""
    share = f"{excess / ref:.3g} of {ref_name}"
    if best > EXACT_FIT * ref:
        return f"{excess / best:.3g} (relative excess of the objective; {share})"
    return f"{share} (the optimum fits y exactly)"


def scale_cause(est, s):
    """The cause to name when the user turned standardization off and the features' standard deviations
    (``s``, those of constant columns set to 1) span more than ``SCALE_SPREAD`` times; else None."""
    if "standardize" not in _planning.user_chose(est) or s.size < 2:
        return None
    spread = float(s.max() / s.min())
    return (f"standardize=False with features whose scales span {spread:.3g} times, so one step size cannot "
            f"suit every weight") if spread > SCALE_SPREAD else None


def gtol_cause(est, out):
    """The user's gtol when it ended the epochs (its norm is in the data's units, so a value that suits one
    data set stops another at once): the cause to name, or None."""
    if est.gtol is None or not getattr(out, "by_gtol", False):
        return None
    return f"gtol={est.gtol:g} ended the epochs (the training gradient's norm, in the data's units, fell below it)"


def _chosen_rate(est):
    """(name, value, default) of the rate and optimizer the user chose (the adaptive rate named is the default's)."""
    return [(name, value, default) for name, value, default in (
        ("learning_rate", est.learning_rate, "adaptive"), ("optimizer", est.optimizer, "adam"))
        if name in _planning.user_chose(est) and not (name == "learning_rate" and value == "adaptive")]


def _chosen_batch(est):
    """(name, value, default) of the batch size and averaging where they differ from the defaults."""
    return [(name, value, default) for name, value, default in (
        ("batch_size", est.batch_size, "auto"), ("average", est.average, True)) if value != default]


def _with_this_fits(chosen):
    """" with this fit's <settings> (the default <defaults> may reach it)" for ``chosen`` (name, value, default)."""
    if not chosen:
        return ""
    return (" with this fit's " + " and ".join(f"{n}={v!r}" for n, v, _ in chosen) + " (the default "
            + " and ".join(f"{n}={d!r}" for n, _, d in chosen) + " may reach it)")


def chosen_cause(est):
    """A rate or optimizer the user chose may be what made the steps too small: name it, and the default."""
    return _with_this_fits(_chosen_rate(est))


def column_scales(A, w, center):
    """The weighted standard deviation (``center``; else root mean square) of each column of the dense ``A``
    (constant columns, Scaling's rule ``_scaling.constant_floor``: 1)."""
    W = float(w.sum())
    mu = (w @ A) / W if center else np.zeros(A.shape[1])
    s = np.sqrt(w @ np.square(A - mu) / W)
    s[~(s > _scaling.constant_floor(mu))] = 1.0
    return s


def least_squares_solver(est):
    """The scikit-learn estimator, as code, that reaches this fit's least-squares optimum: LinearRegression on
    standardized features. Alone, on raw columns whose scales differ by many orders, it drops their small
    singular values (its SVD cut-off) and stops short of the same optimum; with_mean=False: the same optimum
    (LinearRegression fits the intercept), and it takes sparse X too."""
    args = "" if est.fit_intercept else "fit_intercept=False"
    return ("sklearn.pipeline.make_pipeline(sklearn.preprocessing.StandardScaler(with_mean=False), "
            f"sklearn.linear_model.LinearRegression({args}))")


def lbfgs_cause(est, out):
    """A fit with the user's L-BFGS: (what stopped its steps, the settings that reach the optimum), or None.
    torch's default takes fixed steps of lr without a line search, which can oscillate or stall away from the
    optimum (on raw columns in other units above all); its strong-Wolfe line search and standardize=True
    (which leaves a step of 1 the right size) reach it."""
    if not _planning.is_lbfgs(est):
        return None
    opt = est.optimizer if not isinstance(est.optimizer, str) else None
    tolerances = getattr(out, "by_torch_tol", False)  # then no line search moves on either: they are the cause
    search = getattr(opt, "line_search_fn", None) is not None or tolerances
    raw = not est.standardize
    reason = out.stop_reason.replace("(max_iter)", "(max_iter='auto')") if est.max_iter == "auto" else out.stop_reason
    cause = reason + ("" if search else f", taking torch's fixed steps of lr without a line search (line_search_fn="
                                        f"None, its default){' on the raw columns (standardize=False)' if raw else ''}")
    fixes = ([] if search else ["use optimizer=LBFGS(line_search_fn='strong_wolfe') (fastgd.optimizers.LBFGS)"]) \
        + (["set standardize=True (the default)"] if raw else [])
    if tolerances:
        fixes.append("lower the optimizer's tolerance_grad and tolerance_change (absolute, in the objective's units)")
    if not out.converged and est.max_iter != "auto" and out.n_iter >= est.max_iter_:
        fixes.append(f"raise max_iter (it is {est.max_iter})")
    if not fixes:
        fixes = ["use the default optimizer"]
    return cause, _training.sentence(", or ".join(fixes))


def exact_solver(est):
    """The closed-form or coordinate-descent solver of this fit's objective, as code."""
    penalty = _planning.used_penalty(est)[0]
    if penalty is None:
        return least_squares_solver(est)
    return "sklearn.linear_model." + {"l2": "Ridge", "l1": "Lasso", "elasticnet": "ElasticNet"}[penalty] \
        + ("" if est.fit_intercept else "(fit_intercept=False)")


def shortfall_fix(est, capped, unscaled=None, gtol=False):
    """Advice that works when followed for this fit: a lower gtol when the user's gtol ended it (``gtol``); more
    epochs when the user's max_iter cut it short; standardization when the user's unscaled features are the
    cause (``unscaled``); else an exact solver (the data is small enough)."""
    exact = exact_solver(est)
    more = ("Lower gtol (or leave it None, the default), or use" if gtol else
            f"Raise max_iter (it is {est.max_iter}), or use" if capped and est.max_iter != "auto" else
            "Set standardize=True (the default), or use" if unscaled else "Use")
    return f"{more} a closed-form or coordinate-descent solver, which this small data set allows: {exact}."


def _penalty_value(est, coef):
    l1, l2 = _planning.penalty_parts(est)
    with np.errstate(over="ignore"):
        return l1 * float(np.abs(coef).sum()) + _training.half_l2(l2, coef, float(np.square(coef).sum()))


def _penalized_optimum(est, Z, Y, w, s, l1, l2):
    """The optimum of the elastic-net objective on small data (scikit-learn's coordinate descent)."""
    from sklearn.linear_model import ElasticNet

    n, d = Z.shape
    W = float(w.sum())
    best = 0.0
    Araw = Z * s  # the centred columns in the data's units: the penalty is on the raw weights
    for j in range(Y.shape[1]):
        y = Y[:, j]
        # ours: Σw r²/W + l1‖c‖₁ + ½l2‖c‖² = 2·[Σw r²/(2W) + (l1/2)‖c‖₁ + (l2/4)‖c‖²] (scikit-learn's form)
        a = (l1 + l2) / 2.0
        model = ElasticNet(alpha=a, l1_ratio=l1 / (l1 + l2), fit_intercept=est.fit_intercept, tol=1e-12,
                           max_iter=100_000, selection="cyclic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Araw, y, sample_weight=w * (n / W))
        r = Araw @ model.coef_ + model.intercept_ - y
        best += float(w @ np.square(r)) / W + l1 * float(np.abs(model.coef_).sum()) \
            + 0.5 * l2 * float(np.square(model.coef_).sum())
    return best


def linear_program_shortfall(est, X, Y, sw, out, problem, values):
    """The shortfall check of a loss with a kink (epsilon_insensitive, quantile) on data of at most
    ``LP_CHECK_MAX_VALUES`` values, without an l2 penalty: its exact optimum is a linear program (HiGHS,
    milliseconds at that size); a fit short of it warns, naming the exact solver. Larger or sparse data:
    ``certified_shortfall`` (the whole program's cost grows faster than the fit's). Returns (measured, the warning
    to give): measured with no warning, the fit is close enough to the optimum that more epochs cannot gain what
    matters, so a max_iter warning would not be true either."""
    if problem is None or problem.l2 > 0.0 or out.stopped:
        return False, None
    if sp.issparse(X) or values > LP_CHECK_MAX_VALUES:
        return certified_shortfall(est, X, Y, sw, out, problem)
    from scipy.optimize import linprog

    n, d = X.shape
    w = np.ones(n) if sw is None else sw / sw.max()
    W = float(w.sum())
    A = np.hstack([np.asarray(X, dtype=np.float64), np.ones((n, 1))]) if est.fit_intercept else \
        np.asarray(X, dtype=np.float64)
    p = A.shape[1]
    param = float(est.quantile if est.loss == "quantile" else est.epsilon)
    l1 = problem.l1
    raw = est._raw_params(Y.shape[1], d)
    got = best = 0.0
    for j in range(Y.shape[1]):
        # the program in units of y's spread (its optimum is c times that of y / c and epsilon / c): HiGHS'
        # tolerances are absolute, and y in units far from one (y·1e-10) made its optimum a false one
        y = Y[:, j]
        c = float(np.std(y)) or float(np.max(np.abs(y))) or 1.0
        yc = y / c
        # variables: β = β⁺ − β⁻ (the l1 penalty on the weights only), then per row u, v >= 0 with
        # u − v = y − Aβ (quantile: q·u + (1 − q)·v), or t >= |y − Aβ| − ε (epsilon-insensitive)
        pen = np.r_[np.full(d, l1), np.zeros(p - d)]
        As, eye = sp.csr_matrix(A), sp.identity(n, format="csr")
        if est.loss == "quantile":
            cost = np.r_[pen, pen, param * w / W, (1.0 - param) * w / W]
            res = linprog(cost, A_eq=sp.hstack([As, -As, eye, -eye]), b_eq=yc, bounds=(0, None), method="highs")
        else:
            cost = np.r_[pen, pen, w / W]
            A_ub = sp.vstack([sp.hstack([As, -As, -eye]), sp.hstack([-As, As, -eye])])
            res = linprog(cost, A_ub=A_ub, b_ub=np.r_[yc + param / c, param / c - yc], bounds=(0, None),
                          method="highs")
        if res.status != 0:
            return False, None
        best += float(res.fun) * c
        r = A @ (raw[j, :p] if est.fit_intercept else raw[j, :d]) - y
        got += float(w @ reference.loss_value(r, est.loss, param)) / W + l1 * float(np.abs(raw[j, :d]).sum())
    f_ref = problem.target_variance(np.arange(problem.n_batches, dtype=np.int64))
    excess = got - best
    if not (f_ref > 0 and excess > warn_limit(best, f_ref, est.tol)):
        return f_ref > 0, None
    capped = est.n_iter_ >= est.max_iter_ and not out.converged and est.max_iter != "auto"
    exact = ("sklearn.linear_model.QuantileRegressor(solver='highs')" if est.loss == "quantile" else
             "a linear-programming solver (scipy.optimize.linprog)")
    # the causes as the least-squares check names them: the user's epoch budget (its fix says so), their
    # unscaled features, or their rate or optimizer; each with the fix of the setting the user chose
    unscaled = None if capped else scale_cause(est, column_scales(A[:, :d], w, est.fit_intercept))
    chosen = "" if capped else chosen_cause(est)
    gtol = gtol_cause(est, out)
    cause = f": {gtol}" if gtol else f": {unscaled}{chosen}" if unscaled else \
        f": the steps fell short{chosen}" if chosen else ""
    fix = ("Lower gtol (or leave it None, the default), or use" if gtol else
           f"Raise max_iter (it is {est.max_iter}), or use" if capped else
           "Set standardize=True (the default), or use" if unscaled else "Use")
    return True, (f"Gradient descent stopped {excess_words(excess, best, f_ref, 'the loss of the constant mean of y')} "
                  f"above the optimum of the {est.loss} objective (its linear program) {after_epochs(est, out)}"
                  f"{cause}. {fix} an exact solver, which this small data set allows: {exact}.")


class DualBound(typing.NamedTuple):
    """A certified lower bound on the optimum of a kinked loss's objective (see ``dual_bound``)."""
    lower: float  # the bound on the optimum (the sum over outputs, as the objective)
    objective: float  # the fitted model's objective on the same data
    gap: float  # objective − lower: at least the fit's excess over the optimum
    lower_per_output: np.ndarray  # (k,): the objective is their sum, as the bound
    objective_per_output: np.ndarray  # (k,)
    duals: np.ndarray  # (n, k): the dual point a (in the objective's units: each row's box scaled by s_i/Σs)
    violation: float  # the dual constraints' largest violation relative to the terms that cancel in them
    free_rows: int  # the most rows solved as a linear program for one output
    # (k, d + 1): per output the weights and intercept minimizing the objective with the rows outside the program
    # linearized at the fit (the program's dual: HiGHS' multipliers), a model to score; None with an l1 penalty
    model: typing.Optional[np.ndarray]


# rows blocked by dual_bound's pass (a float32 or sparse block is made float64 one block at a time)
BOUND_BLOCK_ROWS = 16_384
# the linear program starts with this many rows nearest the kink per parameter (at least BOUND_MIN_ROWS)
BOUND_ROWS_PER_PARAM = 20
BOUND_MIN_ROWS = 500
# a program with more rows per parameter than this is solved by HiGHS' interior point method (then crossover to a
# vertex), faster there than its dual simplex
BOUND_IPM_ROWS_PER_PARAM = 50


def dual_bound(est, X, y, sample_weight=None, max_free_rows=None):
    """A lower bound on the optimum of the fitted ``est``'s own objective on (X, y), certified by weak linear
    programming duality, for the kinked losses ``quantile`` and ``epsilon_insensitive`` with ``penalty`` None
    or ``"l1"`` (an l2 part makes the dual a quadratic program: ValueError).

    Per output, with c_i = s_i/Σs and u_i = y_i − prediction_i, the objective Σc_i ℓ(−u_i) + l1‖β‖₁ is
    ``max`` over a_i in a box of Σa_i u_i − ε|a_i| + l1‖β‖₁ (quantile: a_i ∈ c_i·[q − 1, q], ε = 0;
    epsilon_insensitive: a_i ∈ c_i·[−1, 1]); for any such a with Σa_i = 0 (with an intercept) and
    |Σa_i x_ij| ≤ l1 for every feature j, the minimum over β of that expression is Σa_i y_i − εΣ|a_i|, a lower
    bound on the optimum. The dual point is built from the fit: every row is at its subgradient's value except
    the rows nearest a kink, whose values are the solution of the linear program (HiGHS) that maximizes the
    bound under the constraints; infeasible, the program takes twice as many rows, up to
    ``max_free_rows`` (default: all rows, when the program is the whole problem's dual). One pass over X
    (blocked: float32, memmapped and sparse X are read in place) and one small linear program.

    Returns a ``DualBound``; ``gap`` bounds the fit's excess over the optimum. The sums are float64: the
    certificate holds up to their rounding, whose size ``violation`` shows.
    """
    from scipy.optimize import linprog

    if est.loss not in ("quantile", "epsilon_insensitive"):
        raise ValueError(f"dual_bound needs loss='quantile' or 'epsilon_insensitive', got loss={est.loss!r}")
    l1, l2 = _planning.penalty_parts(est)
    if l2 > 0.0:
        raise ValueError(f"dual_bound needs penalty=None or 'l1' (an l2 part makes the dual a quadratic "
                         f"program), got penalty={est.penalty!r}")
    quantile = est.loss == "quantile"
    param = float(est.quantile if quantile else est.epsilon)
    if sp.issparse(X) and X.format != "csr":
        X = X.tocsr()  # read by row blocks
    n, d = X.shape
    Y = np.asarray(y, dtype=np.float64).reshape(n, -1)
    k = Y.shape[1]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.max()  # weights count by their ratios (no overflow)
    W = float(w.sum())
    raw = est._raw_params(k, d)
    coef, b = raw[:, :d], raw[:, d] if est.fit_intercept else np.zeros(k)
    # the dual in units of the sample weights (boxes of width w_i, not w_i/W: HiGHS' tolerances are absolute)
    lo, hi = (param - 1.0, param) if quantile else (-1.0, 1.0)
    R = np.empty((n, k))  # residuals, prediction − target
    A = np.empty((n, k))  # the subgradient's dual point
    G = np.zeros((d, k))  # Xᵀa
    for s in range(0, n, BOUND_BLOCK_ROWS):
        e = min(s + BOUND_BLOCK_ROWS, n)
        Xb = X[s:e]
        Xb = Xb.toarray() if sp.issparse(Xb) else np.asarray(Xb, dtype=np.float64)
        Rb = R[s:e] = Xb @ coef.T + b - Y[s:e]
        if quantile:
            A[s:e] = w[s:e, None] * np.where(Rb > 0, lo, hi)
        else:
            A[s:e] = w[s:e, None] * np.where(Rb > param, -1.0, np.where(Rb < -param, 1.0, 0.0))
        G += Xb.T @ A[s:e]
    got = w @ reference.loss_value(R, est.loss, param) / W + l1 * np.abs(coef).sum(axis=1)
    lower = np.empty(k)
    model = np.zeros((k, d + 1)) if l1 == 0.0 else None
    worst = 0.0
    free = 0
    for j in range(k):
        dist = np.abs(R[:, j]) if quantile else np.abs(np.abs(R[:, j]) - param)
        dist[w <= 0] = np.inf  # a row of weight 0 has no freedom
        cap = int(np.count_nonzero(w > 0)) if max_free_rows is None else min(int(max_free_rows), n)
        m = min(cap, max(BOUND_MIN_ROWS, BOUND_ROWS_PER_PARAM * (d + 1)))
        while True:
            rows = np.sort(np.argpartition(dist, m - 1)[:m]) if m < n else np.arange(n)
            XA = X[rows]
            XA = XA.toarray() if sp.issparse(XA) else np.asarray(XA, dtype=np.float64)
            a0 = A[rows, j]
            gN = G[:, j] - XA.T @ a0  # the fixed rows' part of the constraints
            sN = A[:, j].sum() - a0.sum()
            wA, yA = w[rows], Y[rows, j]
            # one variable a per row; epsilon_insensitive: on the side of zero of its residual's sign σ (the side
            # of its subgradient: any point of the box is dual-feasible), where −ε|a| = −εσa is linear; with every
            # row free, the whole box as a = a⁺ − a⁻ (the program is then the whole dual)
            split = not quantile and m >= cap
            if quantile:
                boxA, cost = np.c_[wA * lo, wA * hi], -yA
            elif split:
                boxA, cost = np.c_[-wA, wA], np.r_[-yA + param, yA + param]
            else:
                up = R[rows, j] < 0  # the prediction below the target: a >= 0
                boxA = np.c_[np.where(up, 0.0, -wA), np.where(up, wA, 0.0)]
                cost = -(yA - param * np.where(up, 1.0, -1.0))
            # each constraint divided by its largest coefficient (HiGHS' tolerances are absolute)
            unit = np.abs(XA).max(axis=0, initial=0.0)
            unit[~(unit > 0)] = 1.0
            M, bounds, gU = XA.T / unit[:, None], boxA, gN / unit
            if split:
                M, bounds = np.hstack([M, -M]), np.c_[np.zeros(2 * m), np.r_[wA, wA]]
            ones = np.ones((1, m)) if not split else np.r_[np.ones(m), -np.ones(m)][None, :]
            eq_A, eq_b = (ones, np.array([-sN])) if est.fit_intercept else (np.zeros((0, M.shape[1])), np.zeros(0))
            if l1 == 0.0:
                eq_A, eq_b, ub_A, ub_b = np.vstack([eq_A, M]), np.r_[eq_b, -gU], None, None
            else:
                ub_A, ub_b = np.vstack([M, -M]), np.r_[l1 * W / unit - gU, l1 * W / unit + gU]
            res = linprog(cost, A_ub=ub_A, b_ub=ub_b, A_eq=eq_A if eq_A.shape[0] else None,
                          b_eq=eq_b if eq_A.shape[0] else None, bounds=bounds,
                          method="highs-ipm" if m > BOUND_IPM_ROWS_PER_PARAM * (d + 1) else "highs")
            if res.status == 0 or m >= cap:
                break
            m = min(cap, 2 * m)
        if res.status != 0:
            raise RuntimeError(f"the dual linear program of output {j} failed on {m} rows: {res.message}")
        aA = res.x[:m] - res.x[m:] if split else res.x
        aA = _polish(aA, XA, gN, sN, boxA[:, 0], boxA[:, 1], est.fit_intercept, l1 == 0.0)
        A[rows, j] = aA
        if model is not None:  # the objective's derivative in the right-hand side −Σ_N a_i x_i is −β
            beta = -np.asarray(res.eqlin.marginals)
            beta[-d:] /= unit  # the multipliers of the scaled constraints
            model[j, :d] = beta[1:] if est.fit_intercept else beta
            model[j, d] = beta[0] if est.fit_intercept else 0.0
        g = gN + XA.T @ aA
        scale = np.abs(XA).T @ np.abs(aA) + np.abs(gN)
        viol = np.maximum(np.abs(g) - l1 * W, 0.0)
        parts = [viol / np.maximum(scale, 1e-300)]
        if est.fit_intercept:
            parts.append(np.array([abs(sN + aA.sum()) / max(np.abs(A[:, j]).sum(), 1e-300)]))
        worst = max(worst, float(np.concatenate(parts).max()))
        lower[j] = (float(A[:, j] @ Y[:, j]) - param * (0.0 if quantile else float(np.abs(A[:, j]).sum()))) / W
        free = max(free, m)
    A /= W
    return DualBound(float(lower.sum()), float(got.sum()), float(got.sum() - lower.sum()), lower, got, A, worst,
                     free, model)


def objective_of(est, X, Y, sample_weight, params):
    """Per output, the objective Σs_i ℓ(r_i)/Σs (no penalty) of the (k, d + 1) ``params`` (weights, intercept)
    on (X, Y), in one blocked pass over X."""
    n, d = X.shape
    Y = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.max()
    param = float(est.quantile if est.loss == "quantile" else est.epsilon)
    total = np.zeros(Y.shape[1])
    for s in range(0, n, BOUND_BLOCK_ROWS):
        Xb = X[s:s + BOUND_BLOCK_ROWS]
        Xb = Xb.toarray() if sp.issparse(Xb) else np.asarray(Xb, dtype=np.float64)
        R = Xb @ params[:, :d].T + params[:, d] - Y[s:s + BOUND_BLOCK_ROWS]
        total += w[s:s + BOUND_BLOCK_ROWS] @ reference.loss_value(R, est.loss, param)
    return total / float(w.sum())


def _polish(a, XA, gN, sN, lo, hi, intercept, equality):
    """Move the program's solution ``a`` (HiGHS meets its constraints to about 1e-7 absolutely) onto the
    equality constraints to rounding, through its rows strictly inside their box (the basic ones): the least
    change that does it, kept when it leaves them inside. An l1 penalty's inequalities are left as solved."""
    if not equality:
        return a
    Xt = np.hstack([XA, np.ones((XA.shape[0], 1))]) if intercept else XA
    target = np.r_[-gN, -sN] if intercept else -gN
    width = hi - lo
    inside = np.flatnonzero((a - lo > 1e-9 * width) & (hi - a > 1e-9 * width))
    if inside.size == 0:
        return a
    B = Xt[inside]
    delta = np.linalg.lstsq(B.T, target - Xt.T @ a, rcond=None)[0]
    out = a.copy()
    out[inside] += delta
    return out if np.all(out[inside] >= lo[inside]) and np.all(out[inside] <= hi[inside]) else a


def certified_shortfall(est, X, Y, sw, out, problem):
    """The shortfall check of a kinked loss on data too large for its whole linear program (or sparse), without
    a penalty, with at most ``CERTIFY_MAX_PARAMS`` parameters per output, and training settings the user chose
    (the defaults' gap is measured small: benchmarks/quantile_scale.py): ``dual_bound`` bounds the fit's
    excess; when the bound cannot show it small enough, the program's own model is scored on all rows and a fit
    worse than it by more than the threshold warns, with both ends of the excess (proven, certified). A fit that
    ran out of epochs is checked so under any settings, with up to ``CAPPED_CERTIFY_MAX_PARAMS`` parameters per
    output. Returns (measured, the warning to give), as ``linear_program_shortfall``: not measured when the
    program failed or a looser bound proves nothing."""
    n, d = X.shape
    chosen = _planning.user_chose(est) or est.max_iter != "auto" or est.batch_size != "auto" or not est.average
    out_of_epochs = est.n_iter_ >= est.max_iter_ and not out.converged
    if problem.l1 > 0.0 or not (chosen and d + 1 <= CERTIFY_MAX_PARAMS
                                or out_of_epochs and d + 1 <= CAPPED_CERTIFY_MAX_PARAMS):
        return False, None
    first = max(BOUND_MIN_ROWS, BOUND_ROWS_PER_PARAM * (d + 1))
    try:
        bound = dual_bound(est, X, Y, sw, max_free_rows=CERTIFY_GROWTH * first)
    except RuntimeError:  # no feasible program within its rows: no certificate, and nothing proven
        return False, None
    f_ref = problem.target_variance(np.arange(problem.n_batches, dtype=np.int64))
    limit = warn_limit(bound.lower, f_ref, est.tol)
    if not (f_ref > 0 and bound.gap > limit):
        return f_ref > 0, None
    better = float(objective_of(est, X, Y, sw, bound.model).sum())
    proven = bound.objective - better
    if not proven > limit:
        return False, None
    capped = est.n_iter_ >= est.max_iter_ and not out.converged and est.max_iter != "auto"
    unscaled = None if capped else scale_cause(est, _blocked_column_scales(X, sw, est.fit_intercept))
    chosen = "" if capped else chosen_cause(est) + _batch_cause(est)
    gtol = gtol_cause(est, out)
    cause = f": {gtol}" if gtol else f": {unscaled}{chosen}" if unscaled else \
        f": the steps fell short{chosen}" if chosen else ""
    fix = ("Lower gtol (or leave it None, the default). " if gtol else
           f"Raise max_iter (it is {est.max_iter}). " if capped else
           "Set standardize=True (the default). " if unscaled else "")
    exact = ("sklearn.linear_model.QuantileRegressor(solver='highs')" if est.loss == "quantile" else
             "a linear-programming solver (scipy.optimize.linprog)")
    return True, (f"Gradient descent stopped at least {proven / max(better, 1e-300):.3g} and at most "
                  f"{bound.gap / max(bound.lower, 1e-300):.3g} (relative excess of the objective; at least "
                  f"{proven / f_ref:.3g} of the loss of the constant mean of y) above the optimum of the {est.loss} "
                  f"objective {after_epochs(est, out)} (a linear program over the {bound.free_rows} rows nearest its "
                  f"kink found a model that much better; its dual bounds the excess){cause}. {fix}An exact solver, "
                  f"{exact}, reaches the optimum in a time growing faster than the number of rows.")


# a fit with the user's training settings and no finish, past the exact check's size: besides the constant model,
# the best model in a span of three directions from the fitted one (the standardized gradient's step, the intercept,
# the weights' own scale), found exactly on the quadratic objective in two passes over X, bounds the excess from
# below, for certain: sparse X with stable steps at a user's rate of 3.4e-7 stopped by tol after 2 epochs at
# training R² 0.0000 (one such step: R² 0.93), silently. Eigenvalues of the span's normalized Gram matrix below
# this share of its largest are rounding (their directions are dropped: a smaller bound, never a false one)
STEP_EIG_FLOOR = 1e-10
STEP_BLOCK_VALUES = 1 << 18  # values of X per dense block (2 MB in float64: read twice, the second from cache)
# dense X: the columns' moments (the step's preconditioner only) from evenly spaced rows, at least this many and
# STEP_SAMPLE_PER_PARAM per column; the bound is first taken on those rows' own objective, and the passes over all
# of X follow only where it is above STEP_SAMPLE_SHARE of the warning's limit (at the optimum a sample's gain is
# its noise, about (d + 1)/(2·rows) of the objective: 0.25 % at 200 rows per column, against a limit of at least
# the smaller of 1 % of the objective and 1e-3 of var(y)); where the sample would be over a quarter of the rows,
# all of them
STEP_SAMPLE_ROWS = 1 << 15
STEP_SAMPLE_PER_PARAM = 200
STEP_SAMPLE_SHARE = 0.5
STEP_SAMPLE_COPY = 1 << 22  # values: a sample this small is copied once for its passes (else read in blocks)


def _float64_csr(A):
    """Sparse ``A`` as float64 CSR without duplicates: itself where it is one, else a copy (the squares of
    duplicates, unsummed, would not be the squares of their sums)."""
    if A.format == "csr" and A.dtype == np.float64 and A.has_canonical_format:
        return A
    A = sp.csr_matrix(A, dtype=np.float64, copy=True)
    A.sum_duplicates()
    return A


def _step_blocks(X, w, rows=None):
    """(first position, weights, float64 rows) of X (or of its ``rows``, an increasing index array) in blocks of
    about STEP_BLOCK_VALUES values, each a view or a copy of that block only (sparse X: one block,
    ``_float64_csr``)."""
    n, d = X.shape
    if sp.issparse(X):
        yield 0, w if rows is None else w[rows], _float64_csr(X if rows is None else X[rows])
        return
    block = max(1, STEP_BLOCK_VALUES // max(d, 1))
    for s in range(0, n if rows is None else len(rows), block):
        if rows is None:
            yield s, w[s:s + block], np.asarray(X[s:s + block], dtype=np.float64)
        else:
            ids = rows[s:s + block]
            yield s, w[ids], np.asarray(X[ids], dtype=np.float64)


def _sample(X, w, any_size=False):
    """The evenly spaced rows of dense X that the step's preconditioner and first bound use (None: all rows; also
    where they would be over a quarter of the rows, unless ``any_size``, and where every one of them weighs 0,
    which measures nothing)."""
    n, d = X.shape
    m = max(STEP_SAMPLE_ROWS, STEP_SAMPLE_PER_PARAM * (d + 1))
    if sp.issparse(X) or (4 * m > n and not any_size) or m >= n:
        return None
    rows = np.unique(np.linspace(0, n - 1, m).astype(np.int64))
    return rows if (w[rows] > 0).any() else None


def _column_moments(X, w, rows=None):
    """The columns' weighted Σw·x and Σw·x² over Σw (the step's preconditioner), over ``rows`` of X (None: all),
    in blocks (sparse X: O(nnz)). A sample serves: the preconditioner need not be exact, and a column constant on
    it gets no step, which leaves the bound smaller, never wrong."""
    d = X.shape[1]
    mx, mxx, W = np.zeros(d), np.zeros(d), 0.0
    for _, wb, Xb in _step_blocks(X, w, rows):
        mx += np.asarray(Xb.T @ wb).ravel()
        mxx += np.asarray((Xb.multiply(Xb) if sp.issparse(Xb) else np.square(Xb)).T @ wb).ravel()
        W += float(wb.sum())
    return mx / W, mxx / W


def step_excess(est, X, Yd, w, raw, moments=None, rows=None):
    """(the squared-error objective of the (k, d + 1) ``raw`` with its l2 penalty, a lower bound on its excess over
    the optimum): the gain of the best model in the span of three directions from ``raw`` per output (the step of
    the gradient in the weighted-standardized columns, the intercept moving to keep them centred; the intercept;
    the weights scaled), exact on the quadratic. The span holds the constant model (weights scaled to 0, the
    intercept at the mean), so the bound is at least the fit's excess over it. Two passes over X: the residuals
    and the gradient; then the step's products. ``moments``: the columns' (Σw·x, Σw·x²)/Σw for the step's
    preconditioner (default ``_column_moments``). ``rows``: the objective of those rows of X alone (an
    increasing index array; None: all). None with an l1 part (no quadratic objective)."""
    l1, l2 = _planning.penalty_parts(est)
    if l1 > 0.0:
        return None
    d = X.shape[1]
    if rows is not None:
        Yd = Yd[rows]
    n, k = Yd.shape
    W = float(w.sum() if rows is None else w[rows].sum())
    if not W > 0.0:  # rows of weight 0 only (a sample of them): no objective to bound
        return None
    theta, b = raw[:, :d], raw[:, d]
    XT = np.empty((n, k))  # X·θ, kept for the second pass
    sq, G, sr = np.zeros(k), np.zeros((d, k)), np.zeros(k)
    for s, wb, Xb in _step_blocks(X, w, rows):  # pass 1
        V = XT[s:s + Xb.shape[0]]
        V[:] = Xb @ theta.T
        R = V + b - Yd[s:s + Xb.shape[0]]
        wR = wb[:, None] * R
        sq += wb @ np.square(R)
        G += np.asarray(Xb.T @ wR)
        sr += wR.sum(axis=0)
    center = bool(est.fit_intercept)
    mx, mxx = _column_moments(X, w, rows) if moments is None else moments
    mu = mx if center else np.zeros(d)
    var = mxx - np.square(mu) if center else mxx
    D = np.zeros(d)
    moved = var > 1e-12 * mxx  # constant (or empty) columns: no step along them
    D[moved] = 1.0 / var[moved]
    gb = 2.0 / W * sr if center else np.zeros(k)
    grad = 2.0 / W * G.T + l2 * theta  # (k, d)
    P = D * (grad - gb[:, None] * mu)  # the standardized gradient's step in the data's units
    pb = -(P @ mu)  # ... with the intercept keeping the columns centred
    S11, S1, S13, S3, S33 = (np.zeros(k) for _ in range(5))
    for s, wb, Xb in _step_blocks(X, w, rows):  # pass 2
        U1 = np.asarray(Xb @ P.T) + pb
        U3 = XT[s:s + Xb.shape[0]]
        S11 += wb @ np.square(U1)
        S1 += wb @ U1
        S13 += wb @ (U1 * U3)
        S3 += wb @ U3
        S33 += wb @ np.square(U3)
    got = sq / W + 0.5 * l2 * np.square(theta).sum(axis=1)
    gain = 0.0
    for j in range(k):
        c = np.array([grad[j] @ P[j] + gb[j] * pb[j], gb[j], grad[j] @ theta[j]])
        M = 2.0 / W * np.array([[S11[j], S1[j], S13[j]], [S1[j], W, S3[j]], [S13[j], S3[j], S33[j]]])
        M += l2 * np.array([[P[j] @ P[j], 0.0, P[j] @ theta[j]], [0.0, 0.0, 0.0],
                            [P[j] @ theta[j], 0.0, theta[j] @ theta[j]]])
        use = np.diag(M) > 0.0
        if not center:
            use[1] = False
        if not use.any():
            continue
        Mu, cu = M[np.ix_(use, use)], c[use]
        unit = 1.0 / np.sqrt(np.diag(Mu))
        lam, Q = np.linalg.eigh(Mu * unit[:, None] * unit[None, :])
        keep = lam > STEP_EIG_FLOOR * lam[-1]
        proj = Q[:, keep].T @ (cu * unit)
        gain += 0.5 * float((np.square(proj) / lam[keep]).sum())
    return float(got.sum()), gain


# dense X whose Gram matrix costs at most this many products (n·(d + 1)², in blocks on one thread: about 0.05 s) is
# measured exactly past the exact check's size too: the step's bound is small where the excess lies along the weak
# directions of ill-conditioned columns (20,000 x 30, pairs of columns correlated to 1 - 5e-7, condition number
# 2.1e3: sgd at 0.01 ended at R² 0.505 against 0.9995, its bound a sliver of the excess, silent)
GRAM_MAX_PRODUCTS = 4e8
GRAM_MAX_COLUMNS = 2000


def gram_excess(est, X, Yd, w, raw, shift):
    """(the objective of the (k, d + 1) ``raw`` with its l2 penalty, its excess over the optimum, the standardized
    columns' condition number) of dense X, exactly as the small data's check (``_shortfall``) but in one blocked
    pass: the weighted Gram matrix of the columns less ``shift`` (near their means: no cancellation), the
    residuals and the gradient, then the eigenvalues of the standardized Hessian. None with an l1 part."""
    l1, l2 = _planning.penalty_parts(est)
    if l1 > 0.0:
        return None
    d, k = X.shape[1], Yd.shape[1]
    center = bool(est.fit_intercept)
    mu0 = shift if center else np.zeros(d)
    theta, b = raw[:, :d], raw[:, d]
    S, sz, gr, sr, sq, W = np.zeros((d, d)), np.zeros(d), np.zeros((d, k)), np.zeros(k), np.zeros(k), 0.0
    for s0, wb, Xb in _step_blocks(X, w):
        R = Xb @ theta.T + b - Yd[s0:s0 + Xb.shape[0]]
        Zb = Xb - mu0
        Zw = Zb * wb[:, None]
        S += Zw.T @ Zb
        sz += Zw.sum(axis=0)
        gr += Zw.T @ R
        wR = wb @ R
        sr += wR
        sq += wb @ np.square(R)
        W += float(wb.sum())
    if not W > 0.0:
        return None
    m = sz / W if center else np.zeros(d)  # the weighted means less the shift
    C = S / W - np.outer(m, m)  # the centred (or raw) second moments
    sc = np.sqrt(np.maximum(np.diag(C), 0.0))
    # a rounding-level spread is a constant column: by Scaling's rule, or a variance at the rounding of the shifted
    # second moments it came from (their square root, 7e-9 for a constant 3.0 shifted by 0.1, was taken for a
    # scale, and its penalty's curvature l2/scale² set every other eigenvalue below the rounding cut-off)
    rounding = np.diag(C) <= 64 * np.finfo(np.float64).eps * np.diag(S) / W
    sc[~(sc > _scaling.constant_floor(mu0 + m)) | rounding] = 1.0
    rbar = sr / W if center else np.zeros(k)
    g = (2.0 / W * (gr - np.outer(m, sr)) + l2 * theta.T) / sc[:, None]  # (d, k), standardized coordinates
    G = C / np.outer(sc, sc)
    lam, Q, keep = hessian_eigen(G, sc, l2)
    proj = Q[:, keep].T @ g
    got = float(sq.sum()) / W + 0.5 * l2 * float(np.square(theta).sum())
    excess = 0.5 * float((np.square(proj) / lam[keep, None]).sum()) + float(np.square(rbar).sum())
    return got, excess, condition_number(lam, keep, G, l2)


def _settings_cause(est, X, sw, out):
    """(the cause, the fix as a sentence) of a squared-error fit under the user's training settings that stopped
    short for certain: the unscaled columns of standardize=False, the user's rate, optimizer or batch, the epochs
    (the user's max_iter, the exact finish that setting it turns off, or the budget of 'auto'), gtol; every
    setting the cause names goes back to its default."""
    capped = out.n_iter >= est.max_iter_ and not out.converged
    # unscaled columns first: more epochs do not mend them (max_iter=300 -> 3,334 epochs: R² -7.1e9 -> -1.1e9); on
    # CSR too (30,000 x 2^15 counts, y in units of 1e6: 'auto''s 1,000 epochs ended at training R² -0.36, and the
    # advice was a lower tol, which changed nothing; standardize=True reaches 0.71 held out)
    unscaled = None
    if "standardize" in _planning.user_chose(est) and not est.standardize:
        # named whatever the columns' spread: y in units of 1e6 with an offset of 1e4 over count columns of one
        # scale stopped at training R² -3.7 after 100 epochs and after 'auto''s 1,000 (more epochs, the advice
        # then, gained nothing); standardize=True with the other settings at their defaults is the library's
        # own fit, which reaches the optimum (R² 0.85)
        unscaled = (scale_cause(est, _blocked_column_scales(X, sw, est.fit_intercept))
                    or "standardize=False, which leaves the steps in the units of X and y")
    chosen = _with_this_fits(_chosen_rate(est) + _chosen_batch(est))
    gtol = gtol_cause(est, out)
    # the default budget ends with an exact finish where the epochs stop short (on their noise floor, which a lower
    # tol does not move: CSR, max_iter=20 with tol 1e-6, 1e-8 or 1e-9 stopped after the same 11 epochs)
    finish_off = (est.max_iter != "auto" and est.standardize and not chosen and not gtol
                  and _planning.finishes_with_lbfgs(est, any_max_iter=True))
    budget = (f"training reached max_iter={est.max_iter_} epochs" if est.max_iter != "auto" else
              f"training used the {est.max_iter_} epochs that max_iter='auto' planned")
    cause = (gtol if gtol else f"{unscaled}{',' if chosen else ''}{chosen}" if unscaled else
             f"{budget}{chosen}" if capped else
             f"the steps fell short{chosen}" if chosen else
             "the epochs' progress per round fell below tol (setting max_iter turns off the default budget's "
             "exact finish)" if finish_off else
             "the progress per round fell below tol before the optimum")
    # every setting of the user's that the cause names goes back to its default (standardize=True alone, with
    # learning_rate=1.0 kept, rose and kept the start: R² 0); more epochs only where nothing else is named
    user_max_iter = est.max_iter != "auto"
    steps = [] if gtol else (
        (["set standardize=True (the default), which fits the steps to the features' scales"] if unscaled else [])
        + [f"leave {name} at its default ({default!r})" for name, _, default in _chosen_rate(est) + _chosen_batch(est)]
        + (["leave max_iter at 'auto' (the default), whose budget ends with an exact finish where the epochs stop "
            "short"] if finish_off else
           (["leave max_iter at 'auto' (the default)"] if user_max_iter else []) if (unscaled or chosen) and capped
           else [f"raise max_iter (it is {est.max_iter})" if user_max_iter else
                 f"raise max_iter above the {est.max_iter_} epochs that 'auto' planned for these rows"] if capped
           else []))
    fix = _training.sentence("Lower gtol (or leave it None, the default)" if gtol else
                             ", ".join(steps[:-1]) + (", and " if len(steps) > 1 else "") + steps[-1] if steps else
                             "Lower tol")
    return cause, fix


def certain_shortfall(est, X, Y, sw, out):
    """The warning for a squared-error fit that is short of its optimum for certain, or None: its training error
    (its objective without the penalty) above that of the constant model (no weights, the intercept at y's
    weighted mean: the variance of y, no penalty), or its objective above the best model in a span of directions
    from it (``step_excess``) by more than the warning's limit. For fits the exact check is too large for and no
    finish followed: one pass over X, and two more where the bound on a sample of rows is near the limit (O(nnz)
    on CSR, always). 1,500 x 300 columns in units 1e7 apart with an offset of 50, standardize=False and
    max_iter=5000: training R² -1.1e4, stopped on tol with the rate at its smallest, silently."""
    if est.loss != "squared_error":
        return None
    n, d = X.shape
    w = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64) / np.max(sw)
    W = float(w.sum())
    Yd = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    raw = est._raw_params(Yd.shape[1], d)
    var = float(w @ np.square(Yd - (w @ Yd) / W).sum(axis=1)) / W if est.fit_intercept else 0.0
    if sp.issparse(X):  # O(nnz): no dense blocks (at d = 2^18 a block of rows was GBs)
        X = _float64_csr(X)  # once, for every pass below
        err = float(w @ np.square(X @ raw[:, :d].T + raw[:, d] - Yd).sum(axis=1)) / W
    else:
        err = float(objective_of(est, X, Y, sw, raw).sum())
    what = "least-squares" if _planning.used_penalty(est)[0] is None else "penalized"
    solver = least_squares_solver(est) if what == "least-squares" else exact_solver(est)
    if var > 0 and np.isfinite(err) and err - var > warn_limit(0.0, var, est.tol, floor=SHORTFALL_ROUNDING):
        cause, fix = _settings_cause(est, X, sw, out)
        return (f"Gradient descent stopped {after_epochs(est, out)} with a training error {err / var:.3g} times "
                f"that of predicting the mean of y (training R² {1.0 - err / var:.3g}), so at least "
                f"{(err - var) / var:.3g} of the variance of y above the {what} optimum, which is no worse than "
                f"that constant: {cause}. {fix}, or use {solver}.")
    ref = var if var > 0 else float(w @ np.square(Yd).sum(axis=1)) / W  # no intercept: the zero model's
    if not sp.issparse(X) and d <= GRAM_MAX_COLUMNS and n * (d + 1) ** 2 <= GRAM_MAX_PRODUCTS:
        exact = gram_excess(est, X, Yd, w, raw, _column_moments(X, w, _sample(X, w, any_size=True))[0])
        if exact is not None and ref > 0 and np.isfinite(exact[0]) and np.isfinite(exact[1]):
            got, excess, cond = exact
            best = got - excess
            if not excess > warn_limit(best, ref, est.tol, floor=SHORTFALL_ROUNDING):
                return None
            cause, fix = _settings_cause(est, X, sw, out)
            ill = (f"; the standardized features' condition number is {cond:.3g}, so progress along their "
                   f"weakest directions is slow" if cond > ILL_CONDITIONED else "")
            ref_name = "the variance of y" if var > 0 else "the mean square of y"
            return (f"Gradient descent stopped {after_epochs(est, out)} "
                    f"{excess_words(excess, best, ref, ref_name)} above the {what} optimum (measured exactly in "
                    f"one pass over X{ill}): {cause}. {fix}, or use {solver}.")
    moments, rows = None, _sample(X, w)
    if rows is not None:
        # dense X with many rows per column: the same bound on a sample's own objective first, and the two passes
        # over X only where it is near the limit (about 0.1 s at 1e6 x 100 on one thread, where a fit at its
        # optimum is the usual case)
        if len(rows) * d <= STEP_SAMPLE_COPY:  # one copy of the sample for its three passes
            Xs, ws = np.asarray(X[rows], dtype=np.float64), w[rows]
            moments = _column_moments(Xs, ws)
            step = step_excess(est, Xs, Yd[rows], ws, raw, moments)
        else:
            moments = _column_moments(X, w, rows)
            step = step_excess(est, X, Yd, w, raw, moments, rows)
        if step is None or not step[1] > STEP_SAMPLE_SHARE * warn_limit(step[0] - step[1], ref, est.tol,
                                                                       floor=SHORTFALL_ROUNDING):
            return None
    step = step_excess(est, X, Yd, w, raw, moments)
    if step is None or not (ref > 0 and np.isfinite(step[0]) and np.isfinite(step[1])):
        return None
    got, gain = step
    best = got - gain  # the optimum is no higher
    if not gain > warn_limit(best, ref, est.tol, floor=SHORTFALL_ROUNDING):
        return None
    cause, fix = _settings_cause(est, X, sw, out)
    ref_name = "the variance of y" if var > 0 else "the mean square of y"
    return (f"Gradient descent stopped {after_epochs(est, out)} at least {excess_words(gain, best, ref, ref_name)} "
            f"above the {what} optimum (one exact step from the fitted model along its gradient in standardized "
            f"columns lowers the objective that much): {cause}. {fix}, or use {solver}.")


def _batch_cause(est):
    """The batch size or averaging the user chose, named with the default (which may reach the optimum)."""
    return _with_this_fits(_chosen_batch(est))


def _blocked_column_scales(X, sw, center):
    """``column_scales`` of any X (dense, memmapped, sparse) in blocks: the means, then the centred squares (no
    cancellation when a column's mean dwarfs its spread); sparse X in O(nnz) (its stored values' centred
    squares, and the mean's square for each row that stores none). A rounding-level spread counts as constant,
    scale 1 (``_scaling.constant_floor``): a constant column of 0.1 had 2.8e-17, and 'scales span 3.9e+16
    times' named standardize=False as the cause of columns of one scale."""
    n, d = X.shape
    w = np.ones(n) if sw is None else sw / sw.max()
    W = float(w.sum())
    if sp.issparse(X):
        A = sp.csr_matrix(X, dtype=np.float64)  # float64 values (a copy), duplicates summed
        A.sum_duplicates()
        rows = np.repeat(w, np.diff(A.indptr))  # each stored value's row weight
        mu = np.bincount(A.indices, weights=rows * A.data, minlength=d) / W if center else np.zeros(d)
        held = np.bincount(A.indices, weights=rows, minlength=d)
        # the weight of the rows that store no value (each an implicit zero, mu away from the mean): none where
        # every row of positive weight stores one, counted exactly (W - held is rounding there, and times mu²
        # of a column with a large mean it swamped the spread: a mean of 1e9, spread 1, came out constant)
        positive = np.bincount(A.indices, weights=(rows > 0).astype(np.float64), minlength=d)
        everywhere = positive == np.count_nonzero(w > 0)
        missing = np.where(everywhere, 0.0, np.maximum(W - held, 0.0))
        dev = np.bincount(A.indices, weights=rows * np.square(A.data - mu[A.indices]), minlength=d)
        out = np.sqrt((dev + missing * np.square(mu)) / W)
        out[~(out > _scaling.constant_floor(mu))] = 1.0
        return out

    def blocks():
        for s in range(0, n, BOUND_BLOCK_ROWS):
            Xb = X[s:s + BOUND_BLOCK_ROWS]
            yield w[s:s + BOUND_BLOCK_ROWS], Xb.toarray() if sp.issparse(Xb) else np.asarray(Xb, dtype=np.float64)

    mu = sum(wb @ Xb for wb, Xb in blocks()) / W if center else np.zeros(d)
    out = np.sqrt(sum(wb @ np.square(Xb - mu) for wb, Xb in blocks()) / W)
    out[~(out > _scaling.constant_floor(mu))] = 1.0
    return out


# early stopping's kept model is short when the training rows' exact optimum predicts the held-out rows better by
# more than this fraction of their variance (a validation R² this much higher; see early_stopping_shortfall)
EARLY_STOP_SHORT = 0.02
# a training row whose standardized value exceeds this many standard deviations in some column is named as the
# likely cause (a row far from the others sets its columns' scales)
FAR_ROW = 10.0
# ... and by more than this many standard errors of the paired difference of the two models' losses on those rows
PAIRED_Z = 4.0


def early_stopping_shortfall(est, X, Y, sw, out, problem, train_ids, eval_ids):
    """Early stopping's check on small data (at most CHECK_EXACT_MAX_VALUES values, the squared error without
    l1): the exact optimum of the training rows' objective (least squares, or Ridge with an l2 penalty; the
    limit of the epochs the rule cut short), measured on the held-out rows. Where it predicts them better than
    the kept model by more than ``EARLY_STOP_SHORT`` of their variance and the shortfall check's own limit, the
    rule stopped on a curve that had not yet reached what training on would give (not overfitting, which early
    stopping exists to avoid): the warning to give, with the measured figures, the cause and a fix; else None.
    Only where the stopping rule ended the fit: ``max_iter`` epochs (or tol=None) are the user's budget, which the
    max_iter warning covers.
    Where the held-out rows' mean loss cannot tell (one held-out row dominates it), the optimum closer on most of
    them by a clear margin also counts. One row far from the others is the typical cause: among the training rows,
    its columns' scales are its own and the other rows' signal lies along directions with a few millionths of the
    largest curvature (x 1e4 times the others' in 2,000 rows: condition number 549), where the epochs make little
    headway before the held-out loss stops improving; among the held-out rows, its loss sets theirs."""
    n, d = X.shape
    k = Y.shape[1]
    if (est.loss != "squared_error" or problem.l1 > 0.0 or n * d * k > _planning.CHECK_EXACT_MAX_VALUES
            or not out.eval_losses or out.interrupted or out.stopped or not np.isfinite(out.best_eval)
            or not out.converged or est.tol is None):  # only where the stopping rule, not the user's budget, ended it
        return None
    f_ref = problem.target_variance(eval_ids)
    rows = problem.batch_rows(train_ids)
    Z = X[rows]  # a copy (at most CHECK_EXACT_MAX_VALUES values), centred and scaled in place
    Z = Z.toarray() if sp.issparse(Z) else np.asarray(Z, dtype=np.float64)
    Yt = Y[rows]
    w = np.ones(len(rows)) if sw is None else sw[rows] / sw[rows].max()
    W = float(w.sum())
    if not (f_ref > 0 and W > 0):
        return None
    ybar = (w @ Yt) / W if est.fit_intercept else np.zeros(k)
    mu, s, Zw, G = standardized_design(Z, w, W, est.fit_intercept, sw is not None)
    # Σw r²/W + ½·l2·‖c‖² with c = v / s: (2G + l2·diag(1/s²)) v = 2 Zᵀw(y - ȳ)/W
    b = 2.0 * Zw.T @ (Yt - ybar) / W
    lam, Q, keep = hessian_eigen(G, s, problem.l2)
    V = Q[:, keep] @ ((Q[:, keep].T @ b) / lam[keep, None])  # (d, k)
    coef = (V / s[:, None]).T
    raw = np.concatenate([coef, (ybar - coef @ mu)[:, None]], axis=1)
    # both models on the held-out rows, row by row: the kept model's loss less the optimum's, and its noise
    ev = problem.batch_rows(eval_ids)
    B = X[ev]
    B = B.toarray() if sp.issparse(B) else np.asarray(B, dtype=np.float64)
    we = np.ones(len(ev)) if sw is None else sw[ev] / sw[ev].max()
    We = float(we.sum())
    kept = est._raw_params(k, d)
    loss_kept = np.square(B @ kept[:, :d].T + kept[:, d] - Y[ev]).sum(axis=1)
    loss_best = np.square(B @ coef.T + raw[:, d] - Y[ev]).sum(axis=1)
    diff = loss_kept - loss_best
    excess = float(we @ diff) / We
    mean_kept = float(we @ loss_kept) / We
    best = mean_kept - excess
    # the standard error of that paired mean (the optimum does not depend on the held-out rows; the kept model was
    # chosen on them, which only lowers its loss there)
    se = np.sqrt(float(we @ np.square(diff - excess)) / We / (We * We / float(we @ we)))
    by_mean = np.isfinite(excess) and excess > max(EARLY_STOP_SHORT * f_ref, warn_limit(best, f_ref, est.tol),
                                                   PAIRED_Z * se)
    # robustly: the optimum closer on most held-out rows (a sign test) and by a clear margin of their median squared
    # error, where one held-out row far from the others sets the mean (its loss dwarfs every other row's: the
    # held-out curve follows it and the rule keeps an early model that fits the others poorly)
    closer = int((diff[we > 0] > 0).sum())
    m = int((we > 0).sum())
    if m == 0:
        return None
    err_kept = np.median(loss_kept[we > 0])
    err_best = np.median(loss_best[we > 0])
    spread = np.median(np.square(Y[ev] - np.median(Y[ev], axis=0)).sum(axis=1)[we > 0])
    by_rows = (m > 0 and (2 * closer - m) > PAIRED_Z * np.sqrt(m)
               and err_kept - err_best > EARLY_STOP_SHORT * spread and err_kept > 2.0 * err_best)
    if not (by_mean or by_rows):
        return None
    cond = condition_number(lam, keep, G, problem.l2)
    far = np.abs(Z).max(axis=1)
    row = int(np.argmax(far))
    cause = (f"the standardized training columns are ill-conditioned (condition number {cond:.3g}), so the epochs "
             f"progress slowly along their weakest directions and the held-out loss stopped improving long before")
    if far[row] > FAR_ROW:
        cause += (f"; row {int(rows[row])} lies {far[row]:.3g} standard deviations from the training rows' mean in "
                  f"some column: one row far from the others sets its columns' scales, and the other rows' signal "
                  f"is left along the weak directions")
    words = "least-squares" if problem.l2 == 0.0 else "penalized"
    blocking = finish_blockers(est, X)
    fix = (f"Use a closed-form solver, which this small data set allows: {exact_solver(est)}" if blocking is None else
           "Set early_stopping=False" + (f" and {' and '.join(blocking)} (the default{'s' if len(blocking) > 1 else ''})"
                                         if blocking else "")
           + ": the fit then ends with an exact finish that reaches the optimum of all rows")
    if by_mean:
        measured = (f"its validation R² is {1.0 - mean_kept / f_ref:.3g}, while the exact {words} optimum of the "
                    f"training rows scores {1.0 - best / f_ref:.3g} on the same held-out rows")
    else:
        dom = int(np.argmax(loss_kept * (we > 0)))  # the held-out row that sets the held-out loss
        far_x = float(np.abs((B[dom] - mu) / s).max())
        miss = float(loss_best[dom])  # the optimum's error on it
        off_y = miss > FAR_ROW ** 2 * max(err_best, np.finfo(np.float64).tiny)
        where = (f"its target is {np.sqrt(miss):.3g} from what the training rows' optimum predicts (a typical "
                 f"held-out row: {np.sqrt(err_best):.3g})" if off_y else
                 f"{far_x:.3g} standard deviations from the training rows' mean in some column")
        share = float(we[dom] * loss_kept[dom] / (we @ loss_kept)) if we @ loss_kept > 0 else 0.0
        measured = (f"the exact {words} optimum of the training rows predicts {closer} of the {m} held-out rows "
                    f"better (median squared error {err_best:.3g} against the kept model's {err_kept:.3g}); the "
                    f"held-out loss that chose the model (validation R² {1.0 - mean_kept / f_ref:.3g}; the optimum's "
                    f"{1.0 - best / f_ref:.3g}) is {share:.0%} held-out row {int(ev[dom])}'s: {where}")
        cause = ("a few held-out rows set the held-out loss, so the rule followed them rather than the others"
                 if share < 0.5 else "one held-out row sets the held-out loss, so the rule followed that row alone")
        if off_y:  # training on that row would pull the fit too: early_stopping=False is no fix; a robust loss is
            fix = ("Use a loss that is robust to such rows, such as loss='huber', or remove the row (early_stopping="
                   "False would train on it too)")
    if fix.startswith("Set early_stopping=False"):  # the row fits the others: any exact fit of all rows is right
        fix += f"; or use a closed-form solver, which this small data set allows: {exact_solver(est)}"
    return (f"Early stopping kept a model short of what training on gives: {measured}. Cause: {cause}. {fix}; or "
            f"look for rows far from the others.")


def finish_blockers(est, X=None):
    """The settings of this fit, as their defaults, that keep a fit with early_stopping=False from its exact finish
    (``_planning.finishes_with_lbfgs``, and a tol no looser than the default's: a looser one of the user's bounds
    the excess the finish removes, and on sparse ``X`` standardization, which its preconditioned finish needs):
    empty where early_stopping=False alone gets it; None where no such setting gets it without changing the
    objective (a penalty other than l2, or sparse X without one: ``_planning.finish_follows``)."""
    sparse = X is not None and sp.issparse(X)
    if est.penalty not in (None, "l2", "auto") or (sparse and est.penalty is None):
        return None
    return ((["learning_rate='adaptive'"] if est.learning_rate != "adaptive" else [])
            + (["optimizer='adam'"] if not isinstance(est.optimizer, str) or est.optimizer == "lbfgs" else [])
            + (["max_iter='auto'"] if est.max_iter != "auto" else [])
            + (["standardize=True"] if sparse and not est.standardize else [])
            + (["tol=1e-6"] if est.tol is None or est.tol > _planning.DEFAULT_TOL else []))
