"""LinearRegressor: a scikit-learn estimator trained like torch.optim, by fastgd's compiled kernels."""

import copy
import dataclasses
import functools
import os
import re
import threading
import warnings
import weakref

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import (_assert_all_finite, _check_sample_weight, check_array, check_is_fitted,
                                      validate_data)

from . import _dask, _engine, _planning, _prox, _rules, _scaling, _select, _shortfall, _training
from ._rules import LOSSES
from ._validation import Boolean, InstanceOf, Interval, Options, Predicate, check_all
from .optimizers import LBFGS, get_optimizer
from .schedules import Schedule

# such a shortfall under the default rate rule is finished by full-batch L-BFGS: at most FINISH_STEPS steps
# (20 iterations each), until a step gains less than FINISH_TOL of the variance of y
FINISH_STEPS = 50
SMALL_FINISH_STEPS = 200  # ... on small dense data (a smooth loss other than the squared error): its passes are cheap
# huber's sparse finish (penalty="auto"): with epsilon far below y's spread its objective is nearly |r|, whose
# kinks slow L-BFGS (sparse 300 x 300, y·1e10: 8.6 % above the optimum after 50 steps, converged in fewer than 500)
HUBER_FINISH_STEPS = 500
FINISH_TOL = 1e-9
# the preconditioned finish (sparse data) keeps this many curvature pairs: 2·FINISH_HISTORY·(k·(d + 1)) floats
FINISH_HISTORY = 5
# the squared-error finishes (conjugate gradient, one pass over X an iteration; sparse, and dense under the
# default rate rule) run at most this many
FINISH_CG_ITER = 1000
# ... and stops once this many iterations in a row gained less than FINISH_TOL (CG's gains have plateaus on a
# weakly penalized problem with d > n: two in a row stopped one 1e-6 of the variance of y short)
FINISH_CG_PATIENCE = 10
# a dense finish that ends short of its tolerance, on at most this many columns, then solves the normal equations
# exactly (one pass, O(n·d²) operations: at most what its FINISH_CG_ITER iterations cost, 2·n·d each)
SOLVE_MAX_COLUMNS = 2048
# dense data with huber or squared_epsilon_insensitive: after its L-BFGS finish, the semi-smooth Newton method
# (_newton_dense) runs where NEWTON_MIN_ITER of its iterations per output fit in NEWTON_MAX_FLOPS (all outputs
# together, _training.newton_work's units: about 0.5 s at most; d up to about 200 on small data)
NEWTON_MAX_FLOPS = 1e9
NEWTON_MIN_ITER = 10
# ... and stops its steps on changes below this (torch's 1e-9 left the weights of columns stored in a few rows,
# which the objective barely determines, visibly short of the optimum; 1e-12 doubled the passes)
FINISH_TOLERANCE_CHANGE = 1e-10
# the squared-error finishes (conjugate gradient, dense and sparse) count a gain as small only when it is also
# below this fraction of the objective: FINISH_TOL of the variance of y says nothing of the relative excess of a
# fit that explains almost all of it (sparse: one row holding 1e4 in 15 columns made the variance of y so large
# that the finish stopped at held-out R² 0.68-0.87 against least squares' 0.92-0.95)
FINISH_REL = 1e-6
# ... and stops at the first small gain while the curvature spread its iterations measured has settled at most
# this and twice that of independent columns (``_clear_spread``; the gains then shrink geometrically); else after
# FINISH_CG_PATIENCE small gains in a row, and as many as the iterations before them
FINISH_CLEAR_SPREAD = 100.0
# a user's L-BFGS without a line search on data past the exact check is checked by at most this many strong-Wolfe
# iterations from its fit (a pass over X each, besides the line search's): a gain above the shortfall threshold
# proves a stall
STALL_CHECK_ITER = 10
# larger dense data is finished when the averaged steps' noise floor, a relative excess of about (d + 1)/n,
# exceeds this (or, in units of the variance of y, tol)
FINISH_FLOOR_REL = 1e-3
# ... an estimate that holds for well-conditioned columns only: it is trusted when the standardized Gram matrix of
# this many evenly spaced rows per column is measured well-conditioned (``_well_conditioned``)
FLOOR_SAMPLE_ROWS = 4
# ... a spread of such a sample wider than this is exact collinearity to rounding (``_measured_ill``)
RANK_DEFICIENT_SPREAD = 1e12
# the sparse finish keeps the epochs' optimizer state for the partial_fit calls after the fit up to this many values
# (1 MiB); a larger state is released, so the finish's vectors take its place (its peak memory, tests/test_memory.py)
FINISH_KEEP_STATE_VALUES = 1 << 17
# a DataFrame of several dtypes is gathered into rows this many values at a time (its temporary: 512 KiB of float64)
FRAME_BLOCK_VALUES = 1 << 16
# partial_fit's check of the stream (LinearRegressor._check_stream): each call's progressive loss (each batch's
# before its update, which the epoch computes anyway) against that of the mean of the targets seen before the
# chunk, both summed with a decay of half per PROGRESS_HALF_ROWS rows (at least per PROGRESS_HALF_CALLS calls), each
# call's loss capped at PROGRESS_CAP times the constant's; one warning when their ratio exceeds PROGRESS_RATIO (a
# progressive R² below -1) over at least PROGRESS_MIN_ROWS rows and PROGRESS_MIN_CALLS calls, counted from the
# second call (a stream that starts from zero, without standardize=True and an intercept, is measured against the
# larger of the mean's loss and zero's: the start's)
PROGRESS_HALF_ROWS = 500
PROGRESS_HALF_CALLS = 3
PROGRESS_RATIO = 2.0
PROGRESS_CAP = 5.0  # a call counts for at most this multiple of the constant's loss: one odd chunk does not warn
PROGRESS_MIN_ROWS = 300
PROGRESS_MIN_CALLS = 3
# partial_fit's warning names a change of units when the running scales (their median over the columns, or over
# the targets) moved this many times from those of the stream's first call (measured: 100 to 750 after diabetes's
# columns were multiplied by 1,000; at most 4 on streams of heavy-tailed mostly-zero columns)
UNITS_CHANGE = 10.0
# ... and mostly-zero columns (with an adaptive optimizer) only from a chunk of at least this many rows: fewer show
# nothing of how often a column is zero (a 1-row chunk: every zero of its row)
STREAM_RARE_ROWS = 20


def _clear_spread(n, p):
    """The dense finish's ``clear_spread`` for n rows and p = d + 1 parameters per output: FINISH_CLEAR_SPREAD, and
    at most twice the curvature spread of n rows of p independent standardized columns (Marchenko-Pastur,
    ((1 + √(p/n)) / (1 - √(p/n)))²): a wider one means correlated columns, whose small curvatures the
    residual the epochs leave may not show CG for many iterations."""
    r = np.sqrt(min(p / max(n, 1), 0.25))
    return min(FINISH_CLEAR_SPREAD, 2.0 * ((1.0 + r) / (1.0 - r)) ** 2)


def _sampled_spread(problem):
    """The curvature spread (largest over smallest eigenvalue) of the Gram matrix of FLOOR_SAMPLE_ROWS·(d + 1)
    evenly spaced rows of dense ``problem``'s standardized columns (weighted, as the fit; inf where it is
    singular), or None where that sample would cost more products than a pass over X reads values (nothing is
    measured then). Only the sample's rows are read and copied, not X (``FitData.sample_rows``: on dask blocks
    those rows alone travel to the client). Measured once per problem."""
    if hasattr(problem, "_sampled_spread"):
        return problem._sampled_spread
    n, d = problem.n, problem.scaling.x_scale.shape[0]
    m = FLOOR_SAMPLE_ROWS * (d + 1)
    spread = None
    if m * d <= n:
        rows = np.linspace(0, n - 1, m).astype(np.int64)
        sc = problem.scaling
        # constant columns have no curvature to measure (the fit leaves them at zero)
        cols = slice(None) if sc.x_var is None else np.flatnonzero(sc.x_var > 0)
        Z, w = problem.sample_rows(rows)  # on dask blocks: gathered from the workers (4·(d + 1) rows)
        Z = Z[:, cols]
        Z -= sc.x_mean[cols]
        Z /= sc.x_scale[cols]
        if w is not None:
            Z *= np.sqrt(w)[:, None]
        # a column the sample holds one value of (a rare one-hot level, say) says nothing of its curvature, and
        # two such made the sample singular (a finish for nothing): only columns that vary in it are measured
        Z = Z[:, np.ptp(Z, axis=0) > 0]
        try:
            with _shortfall.one_blas_thread(), np.errstate(all="ignore"):
                ev = np.linalg.eigvalsh(Z.T @ Z) if Z.shape[1] else np.ones(1)
        except np.linalg.LinAlgError:  # products that overflow: no spread measured, taken as the widest
            ev = np.zeros(1)
        spread = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf  # a NaN fails ev[0] > 0 too
    problem._sampled_spread = spread
    return spread


def _nearly_independent(problem):
    """Whether the sample of rows (``_sampled_spread``) measures the standardized columns as close to independent
    ones: a spread within ``_clear_spread`` of as many independent columns (about 18 for 4·(d + 1) rows), where
    one settled round may end the epochs (``_training.Settings.settled``). Stricter than ``_well_conditioned``
    (up to the batches of an epoch): two rows of 500,000 holding 3,000 times the others' values in two columns,
    missed by the sample, left it a spread of 338 (the columns' scales are theirs), and the epochs' progress on
    the coefficients those rows set comes in jumps, not geometric steps: stopped after one settled round, the
    fit ended up to 1.4e-3 of R² short (two rounds: 1.8e-6)."""
    spread = _sampled_spread(problem)
    d = problem.scaling.x_scale.shape[0]
    return spread is not None and spread <= _clear_spread(FLOOR_SAMPLE_ROWS * (d + 1), d)


def _well_conditioned(problem):
    """Whether the standardized columns of dense ``problem`` are measured well-conditioned enough for the averaged
    steps to stop at their noise floor estimate: the sample's spread (``_sampled_spread``) no wider than the steps
    of an epoch reach (at a rate that suits the largest curvature, an epoch's averaged steps reach curvatures down
    to about the largest over their number), or than ``_clear_spread`` of as many independent columns (a sample
    of so few rows spreads even independent columns' eigenvalues about 9-fold). False where nothing is measured
    or the spread is wider."""
    spread = _sampled_spread(problem)
    return _nearly_independent(problem) or (spread is not None and spread <= problem.n_batches)


def _measured_ill(problem):
    """Whether a sample of rows, measured now if no decision before the finish did (``_noise_floor`` stops at its
    first reason, and small data's exact check takes none), shows the columns ill-conditioned
    (``_well_conditioned`` False on a measurement, not for want of one). A sample measured here for the finish
    alone counts only below RANK_DEFICIENT_SPREAD: wider is exact collinearity to rounding (full dummy sets beside
    the intercept), whose flat directions change no prediction, and CG's patience rule cost 13 passes instead of
    4 there (dense one-hot 100,000 x 40) for an R² gap of 5e-12."""
    measured = hasattr(problem, "_sampled_spread")
    ill = _sampled_spread(problem) is not None and not _well_conditioned(problem)
    return ill and (measured or problem._sampled_spread < RANK_DEFICIENT_SPREAD)


def _fitted_attributes(est):
    """The estimator's attributes other than its parameters (a shallow copy: the fitted state's objects)."""
    params = set(est._get_param_names())
    return {key: value for key, value in est.__dict__.items() if key not in params}


def _put_back(est, saved):
    """The attributes other than the parameters set to ``saved`` (``_fitted_attributes``'), none added since."""
    for key in _fitted_attributes(est):
        del est.__dict__[key]
    est.__dict__.update(saved)


# one lock per estimator, held by its fit and partial_fit calls (_atomic): two threads training one estimator
# take turns, as the calls would one after the other (at the same time, two native CSR partial_fit calls shared
# one epoch's workspace and raised a false divergence error on 4 calls of 10, the model off by up to 1.95). Kept
# beside the estimator, not in it: pickles, copies and clones carry no lock. Keyed by id(), dropped when the
# estimator goes (weakref.finalize), so a subclass need not be hashable (one defining __eq__ alone is not)
_CALL_LOCKS = {}
_CALL_LOCKS_GUARD = threading.Lock()


def _call_lock(est):
    """The reentrant lock of ``est``'s training calls (made at its first; an estimator that takes no weak
    reference gets a lock of its own per call: no turns, as before locks)."""
    with _CALL_LOCKS_GUARD:
        key = id(est)
        lock = _CALL_LOCKS.get(key)
        if lock is None:
            lock = threading.RLock()
            try:
                weakref.finalize(est, _CALL_LOCKS.pop, key, None)
            except TypeError:
                return lock
            _CALL_LOCKS[key] = lock
        return lock


def _new_call_locks():
    """In a forked child: fresh locks (a thread of the parent's that held one does not exist there)."""
    global _CALL_LOCKS_GUARD
    _CALL_LOCKS.clear()
    _CALL_LOCKS_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_call_locks)


def _atomic(method):
    """A fit that raises (or is stopped by a second Ctrl-C) leaves every fitted attribute as it was, the
    optimizer state and the random generator included: the previous model stays usable. Calls on one estimator
    from several threads take turns (``_call_lock``)."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        with _call_lock(self):
            saved = _fitted_attributes(self)
            ts, rng = saved.get("_ts"), saved.get("_rng")
            ts_snap = ts.snapshot() if ts is not None else None
            rng_state = rng.get_state() if isinstance(rng, np.random.RandomState) else None
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                _put_back(self, saved)
                if ts_snap is not None:
                    ts.restore(ts_snap)
                if rng_state is not None:
                    rng.set_state(rng_state)
                raise
    return guarded


def _lbfgs_gap(problem, ts, tol, max_iter=None):
    """The objective over all rows at ``ts`` and after full-batch L-BFGS with a strong-Wolfe line search from a
    copy of it (``ts`` is left as it is): up to FINISH_STEPS steps until a step gains less than ``tol``, or, with
    ``max_iter``, one step of at most that many iterations (a stall check: each iteration is a pass over X)."""
    every = np.arange(problem.n_batches, dtype=np.int64)
    got = problem.objective(ts.theta, every)[0]
    trial = copy.deepcopy(ts)
    with _shortfall.one_blas_thread():
        _training.train_lbfgs(problem, trial, LBFGS(line_search_fn="strong_wolfe", **(
            {} if max_iter is None else {"max_iter": max_iter})), train_ids=every,
                              steps=FINISH_STEPS if max_iter is None else 1, tol=tol)
    return got, problem.objective(trial.theta, every)[0]


class LinearRegressor(RegressorMixin, BaseEstimator):
    """Linear regression trained by mini-batch gradient descent with torch.optim's optimizers.

    Objective, minimized over weights ``W`` (k × d) and intercepts ``b`` (k), with sample weights ``s``
    (ones by default; only their ratios matter, and they are rescaled exactly, by a power of two, so that no
    sum of them overflows)::

        Σ_i s_i ‖W x_i + b − y_i‖² / Σ_i s_i  +  alpha · (l1_ratio · ‖W‖₁ + (1 − l1_ratio) / 2 · ‖W‖²)

    that is the (weighted) mean squared error, summed over outputs (with another ``loss``: the mean of that
    loss of each residual, see ``loss``), plus the penalty, which never touches
    the intercept: ``penalty="l2"`` is ``l1_ratio = 0`` (matches ``Ridge(alpha=n·alpha/2)`` on unweighted
    data), ``"l1"`` is ``l1_ratio = 1`` (matches ``Lasso(alpha=alpha/2)``), ``"elasticnet"`` uses
    ``l1_ratio``. Each mini-batch step uses the gradient of the batch's own weighted mean. The l1 part is
    applied by a proximal step (soft-thresholding) after each update, scaled by each coordinate's effective
    step size for the chosen optimizer, so exact zeros appear and the fixed point satisfies the lasso
    optimality conditions. The mean of such iterates (``average``) has no exact zeros, so with an l1 part
    ``fit`` returns one full proximal gradient step on all rows from the mean (``stop_reason_`` says so): a
    coordinate whose full gradient is inside the lasso's ±l1 becomes exactly zero, the lasso solution is its
    fixed point, and it is kept only when the objective does not rise (a pass over X for the gradient and
    one or two for the objective; see ``fastgd._prox``). On diabetes and on make_regression with few
    informative features it gives Lasso's support exactly, 1e-9 to 6e-7 of the objective above Lasso's.
    An optimizer's own ``weight_decay`` behaves as in torch (on every parameter, the
    intercept included); prefer ``penalty``.

    Standardization (``standardize=True``, the default): the fit works in the coordinates of centred,
    unit-variance columns and targets, so its steps mean the same on data in any units (dollars, counts,
    1e-6 or 1e6). Standardizing copies nothing: the means and scales are computed in one pass and applied inside the
    kernels as O(k·d) corrections per batch. ``coef_``/``intercept_`` and the penalty are in the data's own
    units. ``standardize=False`` trains on the raw values; then every update is exactly torch.optim's.

    Precision: the returned model is the mean of the iterates over the last round of updates (``average``;
    Polyak-Ruppert averaging, which removes the noise of a constant step on least squares), evaluated on a
    fixed set of batches after each round; training stops when that evaluation improves by less than ``tol``
    (in units of the variance of y, i.e. of R²) for ``n_iter_no_change`` rounds; under the default rate rule
    on dense columns that a sample of rows measures close to independent ones, one such round ends training
    when it gained at most half of the round before (the excess left is then below its gain). Measured: within 1e-7
    of the least-squares R² on 1e6 x 100 in 3 epochs. Full-batch gradient descent (``batch_size=None``) has
    no noise to average: it shrinks the rate instead ("adaptive").

    Parameters
    ----------
    optimizer : str or fastgd.optimizers.Optimizer, default="adam"
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
        ``"adamax"``, ``"nadam"``, ``"adadelta"``: torch.optim's hyperparameter defaults, starting from the registry's
        ``start_lr`` for standardized data (e.g. 0.01 for Adam and SGD) rather than torch's ``lr``; or an
        optimizer object carrying every hyperparameter, ``lr`` included, e.g. ``Adam(lr=0.01, amsgrad=True)``
        (reachable as ``optimizer__lr`` in ``set_params``/GridSearchCV, also when given by name).
        ``"lbfgs"`` (or ``LBFGS(...)``): torch.optim.LBFGS, full-batch (each evaluation one pass over the
        data; an epoch is one call of its ``step``, up to 20 iterations; ``max_iter="auto"`` allows 100): the
        fastest to the exact optimum on small or ill-conditioned dense data; penalty None or "l2" only, no
        ``partial_fit``, no dask.
    learning_rate : "adaptive", float or fastgd.schedules.Schedule, default="adaptive"
        ``"adaptive"``: start from the optimizer's ``lr``; when progress stalls and averaging cannot remove
        the step noise (fewer than 100 updates per epoch), or when the evaluated loss rises above its best
        (step noise that averaging cannot remove), divide the rate by 5, down to 1e-4 of its start (after a
        rise, training resumes from the best model). With an optimizer given by name, "sgd", "momentum" and
        "nesterov" start lower where the l2 penalty's curvature or small batches' noise would make their
        steps diverge at ``start_lr`` (momentum carries a step's noise 1/(1 − momentum) times as far), and an
        epoch that diverges under this rule's rate is undone: training resumes from the best model at a rate
        5 times lower (within the same floor) instead of raising.
        A float: that constant rate (overrides the optimizer's ``lr``). A schedule: evaluated at every update
        inside the kernel (its ``lr``, or else the optimizer's, is the base rate).
    batch_size : "auto", int or None, default="auto"
        Rows per update. "auto": about 256 updates per epoch, a power of two between 32 and 4096 (large data
        then uses the parallel kernel on every core), at least d / 4 on dense data (wide data: smaller batches
        are so noisy that no constant rate gets near the optimum); on sparse data whose updates are not lazy
        (see ``standardize``), at least (d + 1) / (non-zeros per row) so the update of every coordinate never
        costs more than the batch's gradient. 1 is plain stochastic gradient descent, None full-batch gradient
        descent. The size used is ``batch_size_``.
    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the data). "auto": 1000, or on small data enough epochs to
        visit 2,000,000 rows (at most 100,000 epochs): ill-conditioned small problems need many cheap epochs.
        The number used is ``max_iter_``. On small dense data (n·d·k ≤ 250,000; not CSR) with the default
        rate rule, a named optimizer and no l1 penalty, "auto" is 1000: after the fit, its distance from the
        exact optimum is measured, and a fit more than ``tol`` of the variance of y short (the averaged steps'
        noise floor, ill-conditioned data) or out of epochs is finished by full-batch conjugate gradient (the
        squared error's objective is quadratic; another smooth loss: L-BFGS; ``n_iter_`` then counts its
        iterations too); what remains past 1 % of the optimum's objective (or 1e-3 of the variance of y) is
        warned about with the measured condition number. On larger dense data the same
        finish runs when the averaged steps' noise floor, about (loss)·(d + 1)/n, exceeds ``tol`` of the
        variance of y or 1e-3 of the loss itself (d + 1 > n / 1000), and stops on gains relative to the
        objective; one that stops short warns with the condition number its iterations measured. The epochs
        of the squared error, small data or larger, then end as soon as their gains show them at that floor
        (usually after 2), not after ``tol``'s rounds of noise: the finish's result does not depend on where
        it starts. On sparse
        X with an l2 penalty, which the default ``penalty``
        gives it, "auto" is 2 epochs, the warm start of the exact conjugate-gradient finish.
    tol : float or None, default=1e-6
        Improvement of the evaluated objective (with ``early_stopping``: of the validation R²), relative to
        the variance of y, that counts as progress. None: train exactly ``max_iter`` epochs (unless ``gtol``
        stops earlier) and keep the last model.
    n_iter_no_change : int, default=2
        Rounds without progress before the rate is divided or training stops. The rounds are judged by an
        exact evaluation of the averaged model, not by a noisy running loss, so 2 suffices (scikit-learn's
        SGD uses 5 for its running loss); one, at this default under the default rate rule on dense columns
        measured close to independent ones, where its gain is at most half the round before's (see Precision
        above).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the batches (chosen at random among those with positive sample
        weight, full batches when there are enough; rows are never copied), judge progress by their R², and
        keep the best model (a warning says when that is the starting one). On small data (n·d·outputs at most
        250,000, the squared error without l1) the kept model is checked against the training rows' exact
        optimum on the held-out rows: where that predicts them clearly better (the rule stopped on a curve that
        training on would still improve, e.g. one row far from the others), a warning gives both figures, the
        cause and a fix. ``fit`` only: ``partial_fit`` holds nothing out and ignores it (as SGDRegressor does).
    validation_fraction : float, default=0.1
        With ``early_stopping``: the share of the batches held out (rounded to whole batches, at least one
        held out and one left to train on; ``batch_size="auto"`` makes the batches small enough for that,
        down to two rows).
    shuffle : bool, default=True
        Visit the batches in a new random order each epoch (the rows themselves stay in place).
    random_state : int, RandomState or None, default=None
        Seeds the batch order, the held-out batches of ``early_stopping`` and the evaluation set on large
        data. An int gives the same model on every run (and for any ``n_jobs``); None draws a new seed.
    fit_intercept : bool, default=True
        Fit the intercepts ``intercept_`` (never penalized). False: the model passes through the origin (with
        ``standardize=True`` the columns are then scaled by their root mean square, not centred).
    standardize : bool, default=True
        Train on implicitly centred and scaled columns and targets (see above). Sparse (CSR) X: columns
        stored in fewer than half of the rows are not centred and are scaled by their largest absolute
        value (as MaxAbsScaler), so rare features stay bounded and batches stay sparse. On CSR X, a batch
        updates only the coordinates it touches (lazy updates, on both backends), caught up in closed form
        when next touched: the same mathematics as updating every coordinate for sgd (also with an l2
        penalty or weight decay), momentum, nesterov, adagrad, adadelta and rmsprop (momentum, l2 and weight
        decay at a constant rate only); for adam, adamw, adamax and nadam (with ``standardize=True``, without
        coupled weight decay, with the squared error) the LazyAdam approximation of torch's SparseAdam and
        TensorFlow's LazyAdam: an untouched coordinate and its moments stay as they are (decoupled weight
        decay, AdamW's, shrinks a coordinate in the updates that touch it, as TensorFlow Addons' LazyAdam
        with decoupled weight decay), and an l2 penalty's gradient reaches a coordinate only in the batches that
        touch it, frequency-weighted (LazyAdam with a frequency-weighted penalty): l2·w_j·nb/nb_j for a
        column that nb_j of an epoch's nb batches store (counted once per fit or partial_fit call), so each
        coordinate gets an epoch's worth of penalty per epoch and the fixed point is, in expectation, the
        penalized objective's (LazyAdam's own penalty would penalize a rare column less). The exact rules
        serve every loss. The rest (l1, l2 with another optimizer, the Adam family with another loss) keep
        updating every coordinate.
    average : bool, default=True
        Return the mean of the iterates over the last round rather than the last iterate. With an l1 part
        in the penalty, ``fit`` (without ``early_stopping``) then returns the proximal gradient step from
        that mean that gives its exact zeros (see the objective above); ``average=False``'s last iterate
        has zeros, but a mini-batch's noise may leave small non-zeros the lasso would not have.
    penalty : {"auto", None, "l2", "l1", "elasticnet"}, default="auto"
        The penalty on the weights (never on the intercept); see the objective above. "auto": no penalty on
        dense X (plain least squares, as torch.optim trains it; with few rows per column, where least squares
        fits the rows' noise, a warning gives its exact leave-one-out R² next to an l2 penalty's on the
        standardized columns, with that penalty as a pipeline: see the user guide); on sparse X "l2" (with
        ``loss="huber"`` chosen as below, each strength converted to huber's objective, scored by the held-out huber
        loss at an epsilon of at least 1.345 times y's robust spread, averaged over three disjoint held-out 20 %
        shares, and preconditioned L-BFGS finishes; ``"epsilon_insensitive"`` and ``"quantile"`` chosen by
        huber's path standing in for them; with squared_epsilon_insensitive, or several outputs of a loss other
        than the squared error, SGDRegressor's default strength, alpha = 1e-4, in the units below and y's), because
        sparse data with as many columns as rows or more has no unique least-squares answer and the penalized
        one generalizes. Its strength is chosen from the data, as RidgeCV or a grid search would (with
        ``standardize=True``; where settings you chose leave out the exact finish, before the epochs): a seeded
        20 % of the rows (``random_state``; by weight, nothing is copied) is held out, the penalized optimum on the
        other rows is found for Ridge strengths from strong to weak in steps of 10, each warm-started from the last,
        until one fails to improve the held-out R², then half a step towards the better neighbour of the best; where
        X stores at most 2^18 values, the best decade's strength and half a step either side are then also scored
        on the four other disjoint held-out 20 % shares, and the best mean wins (past an edge finalist, half steps
        on while the mean gains); with too few rows to hold out 20 % (fewer than 10 held out or left, about 50
        rows), by leave-one-out over the rows of positive weight instead (exact, as RidgeCV's: Ridge strengths
        from 1e-2 times the smallest non-zero eigenvalue of the rows' weighted centred Gram matrix to 1e2 times
        the largest, four a decade, the best leave-one-out R²); the fit
        then finishes on all rows at that strength (the same Ridge alpha, in units of the sum of losses). ``alpha_`` is
        the strength used, ``alpha_path_`` the strengths tried with their held-out R² (the finalists last,
        with their mean), ``stop_reason_`` says what was chosen and the passes over X it took. The choice is the
        same for any ``n_jobs`` and backend; one strength is shared by all outputs (as RidgeCV's default),
        judged by their held-out errors each in units of its spread (about their mean R²). Without the
        finish (another setting above, or ``partial_fit``, whose calls see one chunk at a time) or a choice (fewer
        than 3 rows; huber's path: too few to hold out; or nothing to judge by) the strength is that of
        ``Ridge(alpha=1)`` on unweighted
        rows with X in units of its median varying column's largest absolute value m (binary or unit-valued
        columns: Ridge(alpha=1) itself; X times any constant gives the same model; standardize=False: m = 1):
        alpha = 2·m² / n, with sample weights n is (Σw)²/Σw² (their effective number of rows: n for equal
        weights; only the weights' ratios matter); for ``partial_fit`` n counts the rows of all calls so far
        and of the fit before them, whose strength, chosen or not, the calls keep (m: that of the first call's
        X). On sparse X with an l2 penalty, the default ``learning_rate`` and ``max_iter`` and the squared
        error, the mini-batch epochs (2) are a warm start and conjugate gradient, preconditioned by the
        columns' curvature, finishes at the exact penalized optimum.
    alpha : float, default=1e-4
        Penalty strength (see the objective above). Used only with an explicit penalty: setting it with
        ``penalty=None`` or ``"auto"`` warns (UserWarning) and changes nothing.
    l1_ratio : float, default=0.15
        l1 share of the elastic-net penalty. Used only with ``penalty="elasticnet"`` (else a changed value
        warns).
    gtol : float or None, default=None
        Also stop when the norm of the full training gradient (of the smooth part of the objective, in the
        data's units) falls below ``gtol`` (the ‖∇f‖ < ε rule). Costs one extra pass over the data per epoch.
    warm_start : bool, default=False
        Start ``fit`` from ``coef_`` and ``intercept_`` and keep the optimizer state (moments, step count)
        when the optimizer and the shapes are unchanged (else the state starts afresh).
    n_jobs : int or None, default=None
        Threads for the parallel kernel, during the fit only (None or -1: all). Results do not depend on it.
    verbose : int, default=0
        Print one line per epoch (loss, evaluation loss, rate, elapsed time) and, at the end, when and why
        training stopped (``stop_reason_``).
    backend : {"auto", "numba", "native"}, default="auto"
        The kernels: Numba (compiled on first use, cached on disk) or the ahead-of-time compiled Cython twin
        built at install time. "auto" uses the native kernels when they are built (they measured as fast or
        faster in every case tried and need no JIT warm-up; see ``fastgd._engine.kernels``), else Numba.
        Both give the same epochs to about 1e-15 (summation order within a chunk may differ); a full-batch
        finish (L-BFGS or conjugate gradient) of an ill-conditioned problem amplifies that, so the two may
        then differ by about the condition number times 1e-15 (seen: 4e-11 on sparse data with d > n).
    callbacks : callable, list of callables or None, default=None
        Called after every epoch with a ``fastgd.EpochInfo`` (epoch, loss, eval_loss, learning_rate, step,
        elapsed, coef, intercept); a callback returning True (the bool, e.g. ``info.elapsed > 60``) stops
        training there (the stopping rules then pick the model as usual, that epoch's included; ``stop_reason_``
        names the epoch); any other return value continues (None and False silently, others with a warning).
        With ``verbose`` and tqdm installed, a fit over more than about 32 MB of X also shows one progress bar
        for the whole fit (rows trained, rate; the time left when the number of epochs is fixed, ``tol=None``).
    loss : {"squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "quantile"}, \
            default="squared_error"
        The loss of a residual r = prediction − target, with scikit-learn's names and meanings: ``"huber"``
        ½r² up to ``epsilon``, linear beyond (``torch.nn.HuberLoss(delta=epsilon)``; robust to outliers);
        ``"epsilon_insensitive"`` max(0, abs(r) − ε) and ``"squared_epsilon_insensitive"`` its square (as
        SGDRegressor's); ``"quantile"`` the pinball loss of ``quantile`` (``QuantileRegressor``'s objective,
        without its penalty). ``score`` stays R²; ``loss_curve_`` is in the loss's own units. With a loss other
        than the squared error, ``batch_size="auto"`` takes at least 4096 rows (all of them on smaller data)
        and ``learning_rate="adaptive"`` also divides the rate on a plateau when the iterates are averaged:
        a loss with a kink needs the averaged iterate with a decaying rate (a small batch's subgradient noise
        stalls the fit short of the optimum); ``tol`` then counts in units of the loss of the constant mean of
        y, and ``validation_scores_`` are 1 − loss / that loss.
    epsilon : float, default=0.1
        Where ``"huber"`` turns linear, and the width of the insensitive zone of the epsilon-insensitive losses,
        in the units of y (also with ``standardize=True``); >= 0.
    quantile : float, default=0.5
        The quantile ``loss="quantile"`` estimates, in (0, 1).
    distributed : {"exact", "parallel"}, default="exact"
        How ``fit`` trains on a dask array or DataFrame (``pip install "fastgd[dask]"``; a distributed
        Client must be running). "exact": the model state (a few KB) travels to the worker holding each
        block and the compiled epoch runs there, block after block, in the order a local fit with the same
        blocks would use (a memmapped file): the same model as that fit, but for the exact finish a local fit may
        add after its epochs (see the user guide). "parallel": every worker trains on its
        own blocks at the same time and the parameters, optimizer state and averages are averaged after
        every epoch (local SGD). X is never gathered to the client. See the user guide ("Data larger than
        memory").

    A fit never returns a model worse (on its evaluation set) than where it started: it warns and keeps the
    start instead (without a warning where that start measures at the optimum, on small data: ``stop_reason_``
    says so); when the weights stop being finite or the loss explodes it raises ``ValueError`` with the
    cause and leaves the previous model in place. Ctrl-C (KeyboardInterrupt) in ``fit`` ends training with a
    UserWarning and keeps the best evaluated model of the completed epochs (the last completed epoch's with
    ``tol=None``); before the first epoch completed there is no such model: it raises KeyboardInterrupt and
    leaves the estimator as it was (the previous model, or none). In ``partial_fit`` (one epoch per call) a
    Ctrl-C always raises and leaves the estimator as it was before the call, so a loop over the calls stops.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        The weights, in the data's units.
    intercept_ : float or ndarray of shape (n_outputs,)
    n_iter_ : int
        Epochs run (counting every ``partial_fit`` call).
    max_iter_ : int
        The most epochs ``fit`` allowed (``max_iter``, or what ``"auto"`` chose).
    batch_size_ : int
        The batch size used.
    t_ : int
        Optimizer updates performed (the optimizer's step count).
    loss_curve_ : list of float
        Per epoch, the training objective seen during the epoch, in the loss's own units: the mean loss of the batches at the
        iterates that stepped on them, plus the penalty. It is not the returned model's loss: with a constant
        rate the iterates jitter, and the mean of the iterates (``average``) is better than any of them, so
        this curve may rise while the model improves. See ``eval_loss_curve_``.
    eval_loss_curve_ : list of float
        Per round (the fewest whole epochs with at least 50 updates), the objective of the round's model (the mean
        of its iterates with ``average``) on the evaluation set: what the stopping rule judged, and the model
        ``fit`` keeps is the best of them (with ``early_stopping``: the validation MSE, without the penalty).
    stop_reason_ : str
        Why ``fit`` stopped, in words (the stopping rule met, ``max_iter`` reached, a callback, Ctrl-C).
    penalty_ : {None, "l2", "l1", "elasticnet"}
        The penalty the last fit used (``penalty``, or what "auto" chose for that X).
    alpha_ : float
        The penalty strength the last fit used (``alpha``; 0.0 when no penalty was used; with "auto" on sparse
        X the strength chosen from the data, see ``penalty``, else Ridge(alpha=1)'s 2·m² / n, or with another
        loss 1e-4·m²·u / s, s y's standard deviation and u the loss's unit: s for squared_epsilon_insensitive,
        min(s, epsilon) for huber, 1 for epsilon_insensitive and quantile, see ``penalty``).
    alpha_path_ : ndarray of shape (n_strengths, 2)
        With ``penalty="auto"`` where the fit chose the strength (see ``penalty``): each strength tried (as
        ``alpha``) and its held-out R² (with ``loss="huber"``: 1 − the held-out huber loss / that of the held-out
        rows' mean, at the scoring epsilon and averaged over the held-out shares, see ``penalty``), in the order
        tried; with the squared error, where the other shares hold enough rows (``stop_reason_`` says how many
        shares), the finalists come last (three or more, strong to weak), each with its mean over the shares, and
        ``alpha_`` is the best of them (no rows: no strength could be chosen, and ``stop_reason_`` says why).
    validation_scores_ : list of float
        Validation R² per round (with ``early_stopping``).
    best_validation_score_ : float
        The best of ``validation_scores_`` (with ``early_stopping``).
    n_features_in_ : int
        As in scikit-learn.
    feature_names_in_ : ndarray of str
        As in scikit-learn (when X was a DataFrame).
    """

    def __init__(self, optimizer="adam", learning_rate="adaptive", batch_size="auto", max_iter="auto",
                 tol=_planning.DEFAULT_TOL, n_iter_no_change=_planning.DEFAULT_N_ITER_NO_CHANGE, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, fit_intercept=True, standardize=True,
                 average=True, penalty="auto", alpha=1e-4, l1_ratio=0.15, gtol=None, warm_start=False, n_jobs=None,
                 verbose=0, backend="auto", callbacks=None, distributed="exact", loss="squared_error", epsilon=0.1,
                 quantile=0.5):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.average = average
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.gtol = gtol
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend
        self.callbacks = callbacks
        self.distributed = distributed
        self.loss = loss
        self.epsilon = epsilon
        self.quantile = quantile

    _parameter_constraints = {
        "max_iter": [Options("auto"), Interval(1, None, integer=True)],
        "tol": [Interval(0, None), Options(None)],
        "n_iter_no_change": [Interval(1, None, integer=True)],
        "early_stopping": [Boolean()],
        "validation_fraction": [Interval(0, 1, closed="neither")],
        "shuffle": [Boolean()],
        "fit_intercept": [Boolean()],
        "standardize": [Boolean()],
        "average": [Boolean()],
        "penalty": [Options("auto", None, "l2", "l1", "elasticnet")],
        "alpha": [Interval(0, None)],
        "l1_ratio": [Interval(0, 1)],
        "gtol": [Interval(0, None, closed="neither"), Options(None)],
        "warm_start": [Boolean()],
        "verbose": [Interval(0, None, integer=True)],
        "backend": [Options(*_engine.BACKENDS)],
        "callbacks": [Options(None), Predicate(lambda v: callable(v) or (
            isinstance(v, (list, tuple)) and all(map(callable, v))), "a callable or a list of callables")],
        "distributed": [Options("exact", "parallel")],
        "loss": [Options(*LOSSES)],
        "epsilon": [Interval(0, None)],
        "quantile": [Interval(0, 1, closed="neither")],
        "learning_rate": [Options("adaptive"), Interval(0, None, closed="neither", label="a positive float"),
                          InstanceOf(Schedule, "a schedule from fastgd.schedules")],
        "batch_size": [Options("auto"), Interval(1, None, integer=True), Options(None)],
        "n_jobs": [Options(None), Predicate(lambda v: Interval(integer=True).accepts(v) and v != 0,
                                            "a non-zero int (-1: all cores)")],
    }

    # ------------------------------------------------------------------------------------------------------
    # parameters
    def set_params(self, **params):
        """As scikit-learn's; ``optimizer__lr=...`` also works when ``optimizer`` is a name: the name becomes
        its registry object (starting from the registry's ``start_lr``) and the value is set on it."""
        if any(key.startswith("optimizer__") for key in params):
            if isinstance(params.get("optimizer"), str):
                params["optimizer"] = _planning.named_optimizer(params["optimizer"])
            elif "optimizer" not in params and isinstance(self.optimizer, str):
                self.optimizer = _planning.named_optimizer(self.optimizer)
        return super().set_params(**params)

    # ------------------------------------------------------------------------------------------------------
    # validation
    def _check_params(self):
        opt = get_optimizer(_planning.named_optimizer(self.optimizer) if isinstance(self.optimizer, str) else self.optimizer,
                            full_batch=True)
        check_all(None, self.get_params(deep=False), self._parameter_constraints)
        if isinstance(self.learning_rate, Schedule):
            self.learning_rate.validate()
        if self.loss == "huber" and self.epsilon == 0:  # no quadratic zone and a zero slope beyond it: no gradient
            raise ValueError("epsilon=0 with loss='huber' has a zero gradient everywhere, so nothing would be "
                             "learned; loss='huber' needs epsilon > 0 (where it turns linear), or use "
                             "loss='epsilon_insensitive' with epsilon=0 for the absolute error")
        if isinstance(opt, LBFGS):
            # each unsupported setting with its own fix (the supported ones are not mentioned)
            bad = [f"{name}={value!r} (use {fix})" for name, value, ok, fix in (
                ("penalty", self.penalty, self.penalty in ("auto", None, "l2"), "penalty=None or 'l2'"),
                ("early_stopping", self.early_stopping, not self.early_stopping, "early_stopping=False"),
                ("learning_rate", self.learning_rate, not isinstance(self.learning_rate, Schedule),
                 "a constant learning_rate"))
                if not ok]
            if bad:
                raise ValueError(f"optimizer='lbfgs' (full-batch, smooth objective) does not support "
                                 f"{' and '.join(bad)}; change {'it' if len(bad) == 1 else 'them'}, or use "
                                 f"a mini-batch optimizer such as 'adam'")
            _training.check_lbfgs_loss(_planning.loss_code(self))
        _engine.check_backend(self.backend)  # a missing native extension is reported here, naming the fix
        self._warn_unused_penalty_args()
        return opt

    def _warn_unused_penalty_args(self):
        """``alpha``/``l1_ratio`` changed from their defaults while no penalty uses them: say so (code ported from
        SGDRegressor, whose default penalty is "l2", would otherwise lose its regularization silently)."""
        unused = []
        if self.penalty in (None, "auto") and self.alpha != 1e-4:
            unused.append(f"alpha={self.alpha!r}")
        if self.penalty != "elasticnet" and self.l1_ratio != 0.15:
            unused.append(f"l1_ratio={self.l1_ratio!r}")
        if unused:
            # l1_ratio acts only with "elasticnet" (which also uses alpha); alpha alone with any explicit penalty
            fix = ('penalty="elasticnet" to use them' if len(unused) > 1 else
                   'penalty="elasticnet" to use l1_ratio' if unused[0].startswith("l1_ratio") else
                   'penalty="l2" (SGDRegressor\'s default) or "l1" to use alpha')
            auto = (" (\"auto\" is no penalty on dense X and on sparse X an l2 strength chosen from the data)"
                    if self.penalty == "auto" and self.alpha != 1e-4 else "")
            warnings.warn(f"{' and '.join(unused)} has no effect with penalty={self.penalty!r}{auto}: set {fix}, or "
                          f"leave {'them' if len(unused) > 1 else 'it'} at the default.", UserWarning, stacklevel=4)

    def _validate_X(self, X, reset, for_fit=True, check_finite=True):
        """X as the kernels read it (float32/float64 C-contiguous, or CSR and its tuple) and the backend, looked
        up once: the fit's (``_planning.choose_backend``), or for prediction the one set (``for_fit=False``).
        ``check_finite=False``: the caller's column statistics check dense X (``_scaling_of``), saving a pass."""
        mapped = _mapped_file(X)
        X = _numbers_not_text(X)
        given = X
        rows = _frame_as_rows(X)
        if rows is not None:  # the names and the number of features from the frame, the values from its one copy
            _named("X", validate_data, self, X=X, reset=reset, skip_check_array=True)
            X = rows
        # finiteness is checked with all threads (scikit-learn's check sums X on one thread: on 16 cores about
        # 8 all-core reads of X); scikit-learn's own check then words the error
        X = _named("X", validate_data if rows is None else _check_rows, self, X=X, reset=reset, accept_sparse="csr",
                   dtype=[np.float64, np.float32], order="C", ensure_all_finite=False)
        if mapped is not None and not np.may_share_memory(X, given):
            _warn_memmap_copied(given, X, mapped)
        backend = (_planning.choose_backend(self, X) if for_fit else
                   _planning.Backend(self.backend, _engine.kernels(self.backend)))
        if sp.issparse(X):
            X = _readable_csr(X.tocsr())
        if check_finite or sp.issparse(X):
            self._check_finite(X, backend)
        if sp.issparse(X):
            return X, (X.data, X.indices, X.indptr, X.shape[1]), backend  # the kernels take mixed index dtypes
        return X, X, backend

    def _check_finite(self, X, backend, exact=False):
        """Raise scikit-learn's error for a NaN or infinity in X (``exact``: without the fast sum first)."""
        values = X.data[:, None] if sp.issparse(X) else X
        if values.ndim == 2 and (exact or not backend.kern.all_finite(  # the backend's: no JIT for native
                values, _engine.resolve_n_threads(self.n_jobs))):
            _named("X", _assert_all_finite, values, input_name="X", estimator_name=type(self).__name__)

    def _validate(self, X, y, sample_weight, reset, check_finite=True, chunk=False):
        """X as ``_validate_X`` gives it, y, the sample weights (normalized) and their total in the user's units
        (``chunk``: a partial_fit call's, whose errors say so)."""
        X, Xk, backend = self._validate_X(X, reset, check_finite=check_finite)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = _named("y", check_array, y, ensure_2d=False, dtype="numeric", input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X and y have different numbers of rows: {X.shape[0]} and {y.shape[0]}")
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError("y has 0 outputs (shape (n_samples, 0)); it needs at least one column")
        sw = None
        total = float(X.shape[0])  # the weight of the rows in the user's units: "auto"'s penalty strength
        if sample_weight is not None:
            try:
                sw = _named("sample_weight", _check_sample_weight, sample_weight, X, dtype=np.float64,
                            ensure_non_negative=True)
            except ValueError:
                if _all_zero(sample_weight):  # recent scikit-learn refuses them first, in words without a fix
                    raise ValueError(_zero_weights(chunk)) from None
                raise
            with np.errstate(over="ignore"):  # weights summing past float64: "auto"'s strength 2 / total is 0 then
                total = float(sw.sum())
            sw = _normalized_weights(sw)
            if not sw.sum() > 0:  # older scikit-learn accepts weights that are all zero
                raise ValueError(_zero_weights(chunk))
            if not check_finite and not sw.min() > 0:  # a row of weight 0 leaves no trace in the statistics
                self._check_finite(X, backend)
        return X, Xk, y, sw, backend, total

    # ------------------------------------------------------------------------------------------------------
    # fitting
    @_atomic
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Train from zero (or ``coef_init``/``intercept_init``, or the previous fit with ``warm_start``).

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or dask collection of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays (and memmaps) are read in place; SciPy CSR uses the sparse
            kernel; a dask array or DataFrame trains on the workers (see ``distributed``). Any other X (a pandas
            DataFrame, a Fortran-ordered or strided array, another dtype) is copied into C order once per call,
            without a warning (as scikit-learn does; a memmap's copy warns): ``np.ascontiguousarray`` it once
            and reuse the array to avoid that.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        coef_init : array-like of shape (n_features,) or (n_outputs, n_features), default=None
            Starting weights in the data's units (default: the standardized origin, i.e. the best constant).
        intercept_init : float or array-like of shape (n_outputs,), default=None
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the objective (see above).

        Returns
        -------
        self : LinearRegressor
            The fitted estimator.
        """
        self._partial_mean = None  # partial_fit's running mean continues from the fit's model (_fit_weight)
        self.__dict__.pop("_progress", None)  # partial_fit's check of the stream starts again after a fit
        self.__dict__.pop("_work", None)  # partial_fit's workspace: a fit holds none after it
        short = None  # early stopping's measured shortfall (the warning given)
        self.__dict__.pop("_fit_weight", None)
        if _dask.is_dask(X) or _dask.is_dask(y) or _dask.is_dask(sample_weight):
            if _planning.is_lbfgs(self):
                raise ValueError("optimizer='lbfgs' trains in memory only; for a dask collection use a mini-batch "
                                 "optimizer such as 'adam'")
            return self._fit_dask(X, y, coef_init, intercept_init, sample_weight)
        opt = self._check_params()
        warm = self.warm_start and hasattr(self, "coef_")
        width = getattr(X, "shape", ())[1:2]
        if warm and width and width[0] != self.n_features_in_:
            raise ValueError(f"X has {width[0]} features but the warm-started model has {self.n_features_in_}; set "
                             f"warm_start=False to fit a new model")
        # with standardization the column statistics are the finiteness check: one pass over X, not two
        X, Xk, y, sw, backend, total = self._validate(X, y, sample_weight, reset=not warm,
                                                      check_finite=not self.standardize)
        rows = _effective_rows(X, sw)  # "auto"'s strength counts rows: a common scale of the weights cancels
        # Σw / max w: Ridge's alpha in messages where Σw in the user's units is out of float64's range
        self._unit_weight_sum = rows if sw is None else float(sw.sum() / sw.max())
        self.penalty_, self.alpha_ = _planning.resolve_penalty(self, sp.issparse(X), rows)
        self.__dict__.pop("alpha_path_", None)  # set again only where this fit chooses the strength
        self._seen_weight, self._auto_ridge = rows, _planning.AUTO_RIDGE_ALPHA  # what partial_fit continues
        Y = _engine.targets_2d(y)
        k, d = Y.shape[1], X.shape[1]
        if warm and self._n_outputs != k:
            raise ValueError(f"y has {k} outputs but the warm-started model has {self._n_outputs}; "
                             f"set warm_start=False to fit a new model")
        scaling = self._scaling_of(X, Xk, Y, sw, backend) if self.standardize else None
        if self.penalty == "auto" and self.alpha_ > 0:
            self._set_auto_strength(scaling, rows)
        if self.penalty == "auto" and self.alpha_ > 0 and _planning.finish_follows(self, X, k):
            # the warm-up before the strength path: no stronger than the path can choose (in X's units)
            self.alpha_ = min(self.alpha_, _select.strongest(scaling, self.fit_intercept) or self.alpha_)
        ts = self._start_state(opt, scaling, warm, k, d, coef_init, intercept_init)
        problem = _planning.make_fit_data(self, X, Xk, Y, sw, scaling, backend)
        _warn_dense_updates(self, X, problem.batch_size, k)
        if scaling is not None and self.fit_intercept and not warm and coef_init is None and intercept_init is None:
            _warn_insensitive_everywhere(self, Y, sw)  # the fit starts at the constant mean of y
        chosen = self._choose_before_epochs(problem, ts, k, total)  # from the start: a warm one or coef_init too
        out = self._train_and_store(problem, ts, opt, y.ndim, warn=False, in_memory=True)
        if chosen is not None:
            self.stop_reason_ = f"{chosen}; then the epochs: {self.stop_reason_}"
        split = self.__dict__.pop("_split", None)  # early stopping's (training, held-out) batches
        if out.start_kept and not out.stopped:
            self._judge_kept_start(problem, ts, out)
        if self.average and problem.l1 > 0.0 and not self.early_stopping:
            self._polish_l1(problem, ts)
        # the epochs' fitted attributes (their coef_ and intercept_ are the model: nothing is copied, so the
        # finish's memory stays within its budget)
        epochs = _fitted_attributes(self)
        try:
            # one warning per fit: a measured shortfall names the cause better than "max_iter reached"
            if split is not None and (not out.warning or out.held_out_warning):
                # small data: the training rows' exact optimum on the held-out rows, against the kept model
                with _shortfall.one_blas_thread(), np.errstate(all="ignore"):
                    try:
                        short = _shortfall.early_stopping_shortfall(self, X, Y, sw, out, problem, *split)
                    except np.linalg.LinAlgError:  # a diagnostic never fails a fit
                        short = None
                if short is not None:
                    warnings.warn(short, ConvergenceWarning, stacklevel=3)
                    out.warning = None  # the measured cause replaces the held-out rows' hedged one
            over = None if short else self._overfit(X, Y, sw)
            own = not (_planning.user_chose(self) or self.max_iter != "auto")
            if over is None and not short and own and _shortfall.overfit_after_finish(self, X):
                # the check costs more than the epochs' passes paid for: tried again after the finish (whose
                # passes count), its warnings held until then (least squares' shortfall is news only where the
                # check finds least squares no worse than a penalty)
                with warnings.catch_warnings(record=True) as held:
                    warnings.simplefilter("always")
                    warn = (out.warning or not self._check_shortfall(X, Y, sw, out, problem, ts, total))
                over = self._overfit(X, Y, sw)
                if over is not None:
                    held = [h for h in held if not issubclass(h.category, ConvergenceWarning)]
                    warn = False
                for h in held:  # given by fit as its own warnings are (stacklevel=3): their location and registry
                    warnings.warn(h.message, h.category, stacklevel=3)
            elif over is None or not own:
                # the training settings the user chose: how far they left the fit from its optimum is news too
                warn = (out.warning or not self._check_shortfall(X, Y, sw, out, problem, ts, total)) and not short
            else:
                # the library's own settings: least squares itself is what falls short, so advice that reaches its
                # optimum would make the model worse (the check still runs its finish)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self._check_shortfall(X, Y, sw, out, problem, ts, total)
                warn = False
            if over is None and not short and own:
                over = self._diagnostic(_shortfall.unchecked_overfit, X, Y, sw)  # wide data the check could not afford
            if over is not None:
                warnings.warn(over, UserWarning, stacklevel=3)
        except (KeyboardInterrupt, SystemError) as exc:
            if not _engine.is_interrupt(exc):
                raise
            self._keep_epochs(epochs, problem, ts, k, d)
            warn = False
        if warn:
            self._warn(out)
        self.__dict__.pop("_choice_rng", None)
        self._keep_fit_weight(out, total)
        return self

    def _set_auto_strength(self, scaling, total):
        """penalty="auto"'s fixed strength on sparse X (``alpha_``) for rows of effective weight ``total``:
        Ridge(alpha=1) in the units of X's columns (and, with another loss, of y), kept in ``_auto_ridge`` (the
        partial_fit calls after it keep it too)."""
        self._auto_ridge = (_planning.AUTO_RIDGE_ALPHA * _select.auto_unit(scaling, self.fit_intercept)
                            * _select.auto_loss_unit(scaling, _planning.loss_code(self)))
        self.alpha_ = _planning.resolve_penalty(self, True, total, self._auto_ridge)[1]

    def _polish_l1(self, problem, ts):
        """The averaged model's exact zeros, which a mean of proximal iterates lacks: one proximal gradient
        step on all rows from it (fastgd._prox), kept only when the objective does not rise."""
        try:
            new = _prox.polish_l1(problem, ts.theta)
        except (KeyboardInterrupt, SystemError) as exc:
            if not _engine.is_interrupt(exc):
                raise
            # Ctrl-C in the step's passes: the epochs' model, untouched, as an interrupt in the epochs keeps it
            self.stop_reason_ += "; then the proximal step from the mean was interrupted (Ctrl-C)"
            warnings.warn("Training interrupted during the proximal step that follows the epochs: keeping the mean "
                          "of the iterates, whose small coefficients are not the exact zeros of the l1 penalty.",
                          UserWarning, stacklevel=4)
            return
        if new is not None:
            ts.theta[...] = new
            self._store(ts, problem.scaling, problem)
            self.stop_reason_ += "; then a proximal gradient step on all rows from the mean (the l1 part's zeros)"

    def _judge_kept_start(self, problem, ts, out):
        """No epoch improved on the start (kept, ``ts``): on small data with a smooth objective, measure how far
        it is from the optimum (full-batch L-BFGS from it, on a copy). Within what the shortfall check allows,
        nothing could improve on it: no warning, and ``stop_reason_`` says so; beyond it, the loop's advice (more
        epochs, or a lower rate the user chose; a lower gtol where gtol ended them) holds, with the measured gap.
        Unmeasured, the loop's hedged warning stays."""
        k, p = ts.theta.shape
        if problem.n * (p - 1) * k > _planning.CHECK_EXACT_MAX_VALUES or not _planning.smooth_loss(self) \
                or problem.l1 > 0.0:
            return
        f_ref = problem.target_variance(np.arange(problem.n_batches, dtype=np.int64))
        got, best = _lbfgs_gap(problem, ts, FINISH_TOL)
        excess = got - best
        if not (f_ref > 0 and np.isfinite(excess)):
            return
        unit = _training.tol_unit(self.loss == "squared_error")
        if excess <= _shortfall.warn_limit(best, f_ref, self.tol):
            out.warning = None
            gap = (f"to within {excess / f_ref:.2g} times {unit} (measured by full-batch L-BFGS)" if excess > 0.0
                   else "(full-batch L-BFGS found nothing better)")
            self.stop_reason_ = (f"{self.stop_reason_}; no epoch improved on the starting point, which is at the "
                                 f"optimum {gap}: kept")
            return
        gtol = _shortfall.gtol_cause(self, out)
        # gtol ended the epochs: more of them is the fix (max_iter did not end them); a rate the user chose may
        # still keep them from improving on the start
        more = _training.kept_start_fix(_planning.user_chose(self), self.max_iter_, self.tol)
        fix = (_training.sentence(more) if gtol is None else
               "Lower gtol (or leave it None, the default)"
               + ("; if the epochs then still do not improve on it, lower the learning rate"
                  if "learning_rate" in _planning.user_chose(self) else ""))
        out.warning = (f"Training did not improve on the starting point (loss {out.start_eval:.6g}), which is "
                       f"{_shortfall.excess_words(excess, best, f_ref, unit)} above the optimum "
                       f"(found by full-batch L-BFGS): the model was left at its starting point"
                       + (f"; {gtol}" if gtol else "") + f". {fix}"
                       + ("; or set standardize=True (the default) so the steps fit the data's scales."
                          if problem.scaling is None else "."))

    def _keep_fit_weight(self, out, total):
        """What the fitted model stands for in the running mean of the ``partial_fit`` calls after it: the sample
        weight of its rows, when the fit ended at rest (its stopping rule met, a full-batch finish run, or the
        epochs of tol=None done), however many updates that took; nothing when it ended on its way (Ctrl-C, a
        callback, max_iter short of the stopping rule): the mean leaves out iterates still travelling."""
        at_rest = out.converged or self.tol is None or self.n_iter_ > out.n_iter  # a finish adds its iterations
        if at_rest and out.n_iter > 0 and not out.interrupted and not out.stopped and np.isfinite(total) \
                and total > 0:
            self._fit_weight = total

    def _scaling_of(self, X, Xk, Y, sw, backend):
        """The column statistics of (X, Y), which also check dense X for NaN and infinities: a non-finite value
        of positive weight makes its column's statistics non-finite, and ``Scaling`` then raises; before that,
        the exact check gives scikit-learn's error when X holds one."""
        try:
            return _scaling.Scaling.from_data(backend.kern, Xk, Y, sw, self.fit_intercept,
                                              _engine.resolve_n_threads(self.n_jobs))
        except ValueError:
            self._check_finite(X, backend, exact=True)
            raise

    def _fit_dask(self, X, y, coef_init, intercept_init, sample_weight):
        """fit on dask collections: the in-memory fit's steps, the data staying on the cluster (fastgd._dask)."""
        opt = self._check_params()
        warm = self.warm_start and hasattr(self, "coef_")
        self.penalty_, self.alpha_ = _planning.resolve_penalty(self, False, 1.0)  # dask blocks are dense
        self.__dict__.pop("_seen_weight", None)
        self._auto_ridge = _planning.AUTO_RIDGE_ALPHA
        problem, names, y_ndim = _dask.fit_data(self, X, y, sample_weight,
                                                (self.n_features_in_, self._n_outputs) if warm else None)
        try:
            self.n_features_in_ = problem.blocks.d
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            ts = self._start_state(opt, problem.scaling, warm, problem.blocks.k, problem.blocks.d, coef_init,
                                   intercept_init)
            out = self._train_and_store(problem, ts, opt, y_ndim, warn=False)
            # the weight of the rows in the user's units (the blocks' weights were divided by a power of 2)
            with np.errstate(over="ignore"):  # beyond float64's range: messages use Σw / max w instead
                total = float(problem.n) if sample_weight is None else float(
                    np.ldexp(problem.blocks.total_weight, problem.blocks.weight_shift))
            self._unit_weight_sum = problem.blocks.total_weight / problem.blocks.weight_top
            if not self._finish_dask(problem, ts, out, total, sample_weight is not None) or out.warning:
                self._warn(out)
            self.__dict__.pop("_choice_rng", None)
            if sample_weight is None:  # a weighted dask fit's total weight in the user's units is not at hand
                self._keep_fit_weight(out, float(problem.n))
        finally:
            problem.blocks.release()
        return self

    def _finish_dask(self, problem, ts, out, total, weighted):
        """The exact finish of a fit on dask blocks: that of larger in-memory dense data (``_check_shortfall``),
        the conjugate-gradient finish (``_finish_dense``) where ``_noise_floor`` calls for it, its passes over
        X run on the workers (``DaskFitData.targets``), with its warning where it stops short of its tolerance.
        Small data has no exact check here (it would need X in memory): it is judged by the larger data's rule.
        Another smooth loss: the full-batch L-BFGS finish of larger data (``_check_smooth_loss``). Returns whether
        the conjugate-gradient finish ran (the optimum reached or its warning given: the max_iter warning is
        superseded)."""
        k = ts.theta.shape[0]
        if out.interrupted or out.stopped or not np.isfinite(out.best_eval) or self.tol is None \
                or self.early_stopping or problem.scaling is None or not _planning.finishes_with_lbfgs(self):
            return False
        squared = self._finish_may_follow(problem, ts)
        epochs = _fitted_attributes(self)
        try:
            if not squared:
                # another smooth loss: full-batch L-BFGS where the averaged steps' noise floor is above tol (as
                # _check_smooth_loss on larger data), the constant mean's loss summed on the workers
                if problem.l1 == 0.0:
                    f_ref = problem.targets_loss(problem.targets(np.ones(k)), problem.loss)
                    if f_ref > 0 and out.best_eval / f_ref * (problem.blocks.d + 1) / problem.n > self.tol:
                        self._finish_lbfgs(problem, ts)
                return False  # as in memory: its budget's warning stays
            # the decision may gather the rows it samples from the blocks (a Ctrl-C there keeps the epochs too)
            if self._noise_floor(problem)(out.best_eval) is None:
                return False
            fin = self._finish_dense(problem, ts)
        except (KeyboardInterrupt, SystemError) as exc:
            if not _engine.is_interrupt(exc):
                raise
            self._keep_epochs(epochs, problem, ts, k, problem.blocks.d, stacklevel=6)
            return True
        if not fin.converged and not fin.best_eval <= self.tol * k:
            warnings.warn(self._unfinished_dense(fin, total, weighted), ConvergenceWarning, stacklevel=5)
        return True

    def _keep_epochs(self, epochs, problem, ts, k, d, stacklevel=4):
        """A Ctrl-C in the exact finish (or the strength path): the completed epochs' model (``epochs``: their
        fitted attributes), as one in the epochs keeps the best of them; the parameters from it (the optimizer
        state as the finish left it: the sparse finish released a large one, as a finished fit does)."""
        _put_back(self, epochs)
        raw = self._raw_params(k, d)
        ts.theta[...] = raw if problem.scaling is None else problem.scaling.to_std(raw)
        self.stop_reason_ = f"{self.stop_reason_}; then the exact finish was interrupted (Ctrl-C)"
        warnings.warn(f"Training interrupted during the exact finish that follows the epochs: keeping the model "
                      f"of the completed epochs ({self.n_iter_} epoch(s)), which may be short of the optimum "
                      f"the finish would have reached.", UserWarning, stacklevel=stacklevel)

    def _diagnostic(self, check, *args):
        """``check(self, *args)``'s warning text, or None: a diagnostic never fails a fit (its own errors, from data
        whose units its arithmetic cannot take or memory it cannot have, give None). On one BLAS thread: small
        products, and the kernels' OpenMP threads may still be spinning."""
        try:
            with _shortfall.one_blas_thread(), np.errstate(all="ignore"):
                return check(self, *args)
        except (ValueError, MemoryError, ArithmeticError, np.linalg.LinAlgError):
            return None

    def _overfit(self, X, Y, sw):
        """The warning for a least-squares fit of dense X that an l2 penalty beats on left-out rows
        (``_shortfall.overfit``), or None."""
        return self._diagnostic(_shortfall.overfit, X, Y, sw)

    def _check_shortfall(self, X, Y, sw, out, problem=None, ts=None, total=None):
        """On small data, measure how far the fit stopped from the exact optimum of its own objective (the
        least-squares one, or with ``penalty`` the penalized one) and warn, naming the cause, when the excess
        is worth the user's attention: more than ``SHORTFALL_REL`` of the optimum's MSE or ``SHORTFALL_WARN`` of
        the variance of y, and more than ``tol`` allows. A diagnostic only: one pass for the residuals and the
        gradient, and the (d + 1)² Gram matrix of the standardized columns, whose eigenvalues give the excess
        of a quadratic (½ ∇ᵀH⁻¹∇) and the condition number; l1 penalties need coordinate descent on it.
        Under the default rate rule a shortfall is first finished by L-BFGS (also on larger dense data when
        the averaged steps' noise floor exceeds tol, or the objective does and a sample of rows does not show
        the columns well-conditioned: ``_noise_floor``). Returns whether the max_iter warning is superseded (a
        warning was given, or L-BFGS reached the optimum)."""
        n, d = X.shape
        k = Y.shape[1]
        if self.early_stopping or out.interrupted or out.stopped or self.tol is None:
            return False  # stopped by the user (Ctrl-C, a callback): its distance from the optimum is no surprise
        finished = None
        if problem is not None and _planning.finish_follows(self, problem.Xk, k) and not out.stopped \
                and np.isfinite(out.best_eval):
            # sparse data with an l2 penalty (the "auto" default's): the mini-batch epochs (lazy, approximate
            # for the Adam family) were the warm start; full-batch L-BFGS, preconditioned by the columns'
            # curvature, finds the exact penalized optimum
            finished = self._finish_sparse(problem, ts, k, total)
        if finished is not None and self.loss != "squared_error":
            # huber's L-BFGS finish (its warm-up epochs' budget is no max_iter shortfall)
            if not finished.converged:
                warnings.warn(self._unfinished_lbfgs(finished), ConvergenceWarning, stacklevel=4)
            return True
        if not _planning.smooth_loss(self):  # a kink: no L-BFGS; on tiny data its linear program is the check
            measured, short = _shortfall.linear_program_shortfall(self, X, Y, sw, out, problem, n * d * k)
            if short is not None:
                warnings.warn(short, ConvergenceWarning, stacklevel=4)
            return measured  # measured close to the optimum: more epochs gain nothing that matters
        if self.loss != "squared_error":
            return self._check_smooth_loss(X, out, problem, ts, n * d * k)
        if n * d * k > _planning.CHECK_EXACT_MAX_VALUES:
            # larger data: no exact check, but averaged constant-step SGD stops at an excess of about
            # (loss)·(d + 1)/(rows averaged) (Polyak-Ruppert); when that is above tol the plateau may be that
            # floor rather than the optimum, and a few L-BFGS passes remove it (on ill-conditioned columns the
            # epochs stop above that estimate: there an objective above tol is finished too)
            if problem is not None and not sp.issparse(X) and problem.scaling is not None and not out.stopped \
                    and _planning.finishes_with_lbfgs(self) and np.isfinite(out.best_eval):
                if self._noise_floor(problem)(out.best_eval) is not None:
                    fin = self._finish_dense(problem, ts)
                    # no exact check at this size: what the finish measured is the cause, unless its objective
                    # (the standardized targets' variance is 1 per output) is within tol of zero, below which no
                    # optimum lies (an exact fit: wide data that interpolates y)
                    if not fin.converged and not fin.best_eval <= self.tol * k:
                        warnings.warn(self._unfinished_dense(fin, total, sw is not None), ConvergenceWarning,
                                      stacklevel=4)
                    return True  # converged: the optimum reached, so the epochs' budget is no shortfall either
            if finished is not None and not finished.converged:
                warnings.warn(self._unfinished(finished, total, sw is not None), ConvergenceWarning, stacklevel=4)
            if finished is None and not (self.standardize and _planning.finishes_with_lbfgs(self)):
                # the user's training settings, no finish: a fit worse than the constant mean, or than one exact step
                # from it, is short for certain (one pass; two more where a sample of rows shows the step's gain near
                # the limit; the library's own settings on standardized columns are finished where they fall short)
                worse = self._diagnostic(_shortfall.certain_shortfall, X, Y, sw, out)
                if worse is not None:
                    warnings.warn(worse, ConvergenceWarning, stacklevel=4)
                    return True
            return finished is not None  # its warm-up epochs' budget is no max_iter shortfall
        # one BLAS thread: small products, and the kernels' OpenMP threads may still be spinning (measured:
        # 5,000 x 40 took 75-550 ms with all BLAS threads against 10-20 ms with one)
        with _shortfall.one_blas_thread():
            own = problem is not None and not sp.issparse(X) and not out.stopped and _planning.finishes_with_lbfgs(self)
            # under the library's own rate and budget the excess is judged against tol itself: the warning's
            # looser limit left default fits of small real data up to 1e-3 of var(y) short, silently
            short = _shortfall.shortfall(self, X, Y, sw, out, n, d, k, within_tol=own)
            in_doubt = short is not None or (self.n_iter_ >= self.max_iter_ and not out.converged)
            if in_doubt and own:
                # the library's own rate fell short of tol (ill-conditioned data, or the noise of its steps) or ran
                # out of its own epochs: finish with full-batch conjugate gradient from where the mini-batch fit
                # stopped, then judge again (against the warning's limit)
                self._finish_dense(problem, ts)
                short = _shortfall.shortfall(self, X, Y, sw, out, n, d, k)
                if short is None:
                    return True  # the optimum reached: no max_iter warning either
            if short is not None and finished is not None:
                # the CG finish stopped on a plateau of its gains: resumed to its limit, then judged again; what
                # is left is the finish's to explain (its optimizer and epochs played no part)
                finished = self._resume_cg(problem, ts, k)
                if _shortfall.shortfall(self, X, Y, sw, out, n, d, k) is None:
                    return True
                short = self._unfinished(finished, total, sw is not None)
        if short is None:  # measured at the optimum: more epochs (or the sparse finish's warm-up) gain nothing
            if out.handed_over and not in_doubt:
                self.stop_reason_ += "; the exact check measured the model within tol of the optimum: no finish needed"
            return True
        warnings.warn(short, ConvergenceWarning, stacklevel=4)
        return True

    def _finish_may_follow(self, problem, ts):
        """Whether the epochs of an in-memory fit on dense ``problem`` (or one on dask blocks) may be followed by
        the dense conjugate-gradient finish (``_check_shortfall``: of larger data when ``_noise_floor`` calls for
        it; of small data whenever the exact check finds it more than tol short, which it is at the floor;
        ``_finish_dask``: as larger data's)."""
        return (not isinstance(problem.Xk, tuple) and problem.scaling is not None and self.loss == "squared_error"
                and _planning.finishes_with_lbfgs(self) and self.tol is not None and not self.early_stopping)

    def _noise_floor(self, problem):
        """For larger dense data under the default rate rule: the function from the epochs' best evaluated
        objective f to the noise floor of the averaged steps, f·(d + 1)/n (Polyak-Ruppert), when the
        conjugate-gradient finish is due, else None. It is due when that floor is above tol of the variance of y
        (or d + 1 > n·FINISH_FLOOR_REL), and also when f is above tol of it unless a sample of rows shows
        well-conditioned columns (``_well_conditioned``): on ill-conditioned ones the epochs stop well above the
        floor estimate (on gains below tol that shrink slowly, or a plateau twice the estimate), and nothing
        they measure tells the two apart; only an objective within tol of zero bounds the excess by itself, and
        under the default tol not even that where the sample measured them ill-conditioned (their weak directions
        hold coefficients that tol of var(y) does not bound: correlated 50,000 x 10 with R² 0.999999 stopped 0.49
        from the least-squares coefficients, 10 standard errors). The
        shortfall check runs the finish on it; the epochs hand over to that finish at it
        (``_training.Settings.handover``)."""
        var = float(np.square(problem.scaling.y_scale).sum())
        n, d = problem.n, problem.scaling.x_scale.shape[0]

        def floor(f):
            # the floor in the objective's own terms too: with R² near 1 it is far below tol of var(y) but not
            # below the optimum's loss (ill-conditioned data plateaus well above it)
            due = var > 0 and (f / var * (d + 1) / n > self.tol or (d + 1) / n > FINISH_FLOOR_REL
                               or (f / var > self.tol and not _well_conditioned(problem))
                               or (self.tol == _planning.DEFAULT_TOL and _sampled_spread(problem) is not None
                                   and not _well_conditioned(problem)))
            return f * (d + 1) / n if due else None
        return floor

    def _unfinished(self, fin, total, weighted):
        """The warning of a sparse fit whose conjugate-gradient finish stopped short of its tolerance (``total``:
        the rows' weight in the user's units, which converts alpha to Ridge's; ``weighted``: sample_weight was
        given, which Ridge then needs too)."""
        return (f"The exact conjugate-gradient finish of this sparse fit stopped ({fin.stop_reason}) before meeting "
                f"its "
                f"tolerance, so the model may be short of the penalized optimum (it is the best point reached). "
                f"For a problem this ill-conditioned, {self._same_ridge(total)} (the same objective"
                f"{'; pass ' + self._ridge_weights(total) if weighted else ''}) solves it exactly.")

    def _unfinished_lbfgs(self, fin):
        """The warning of a fit whose L-BFGS finish (sparse huber; a smooth loss other than the squared error on
        dense X) stopped short of its tolerance."""
        chosen = self.penalty == "auto" and self.alpha_ > 0  # the strength "auto" chose: the refit needs it
        return (f"The exact L-BFGS finish of this {'sparse ' if chosen else ''}{self.loss} fit stopped "
                f"({fin.stop_reason}) before meeting its tolerance, so the model may be short of the "
                f"{'penalized ' if _planning.used_penalty(self)[0] is not None else ''}optimum (it is the best point "
                f"reached). Refit with "
                + (f"penalty='l2', alpha={self.alpha_:.6g} (the strength chosen), " if chosen else "")
                + "optimizer=fastgd.optimizers.LBFGS(line_search_fn='strong_wolfe'"
                + ("" if chosen else ", tolerance_grad=0.0, tolerance_change=0.0")
                + "), max_iter=3000 and tol=1e-10 (full-batch L-BFGS on that objective until it stops gaining).")

    def _ridge_alpha(self, l2, total):
        """Ridge's alpha for the objective's l2 strength ``l2``: l2 · Σw / 2 (``total``: Σw in the user's units),
        or, where that is not a float64 number (weights summing past its range, or below it), the alpha for the
        weights divided by their largest (the same objective); and whether it is that one."""
        with np.errstate(all="ignore"):
            ridge = l2 * total / 2
        if np.isfinite(ridge) and (ridge >= np.finfo(np.float64).tiny or l2 == 0):
            return ridge, False
        return l2 * getattr(self, "_unit_weight_sum", total) / 2, True

    def _ridge_weights(self, total):
        """The sample_weight to pass to ``_same_ridge``'s Ridge, in words."""
        rescaled = self._ridge_alpha(self.alpha_, total)[1]
        return "sample_weight / sample_weight.max()" if rescaled else "the same sample_weight"

    def _same_ridge(self, total):
        """scikit-learn's Ridge, as code, with this fit's l2 objective (``total``: as ``_unfinished``)."""
        return (f"sklearn.linear_model.Ridge(alpha={self._ridge_alpha(self.alpha_, total)[0]:.6g}"
                f"{'' if self.fit_intercept else ', fit_intercept=False'})")

    def _check_smooth_loss(self, X, out, problem, ts, values):
        """The shortfall check of a smooth loss other than the squared error (huber, squared_epsilon_insensitive),
        which has no closed-form optimum: full-batch L-BFGS from the fitted model finds it. Under the default
        rate rule that finish is kept (on small data always, on larger dense data when the averaged steps' noise
        floor exceeds tol, as for the squared error); under settings the user chose, small data is measured
        against it and a shortfall warns; on larger data a user's L-BFGS without a line search is checked by
        ``STALL_CHECK_ITER`` strong-Wolfe iterations from its fit, and a gain above the threshold warns. Returns
        whether the max_iter warning is superseded."""
        user_lbfgs = _planning.is_lbfgs(self)  # torch's default: no line search, whose steps can stall on huber
        # a user's L-BFGS with a line search: on small data measured against the semi-smooth Newton method alone
        # (L-BFGS from its model would repeat it), on larger data not at all
        searched = getattr(self.optimizer, "line_search_fn", None) is not None
        large = values > _planning.CHECK_EXACT_MAX_VALUES
        if problem is None or sp.issparse(X) or out.stopped or problem.scaling is None or problem.l1 > 0.0 \
                or (searched and large) or not np.isfinite(out.best_eval):
            return False
        f_ref = problem.target_variance(np.arange(problem.n_batches, dtype=np.int64))  # the constant mean's loss
        if large and not user_lbfgs:
            if _planning.finishes_with_lbfgs(self) and f_ref > 0 and out.best_eval / f_ref * (X.shape[1] + 1) / X.shape[0] \
                    > self.tol:
                # the finish's outcome replaces the epochs' budget as the news: converged, the optimum (no max_iter
                # warning: raising max_iter turns the finish off); else why it stopped, and what reaches it
                fin = self._finish_lbfgs(problem, ts, say=False)
                # its gain rule stopped it 0.03-0.5 % above the optimum, silently, on nearly collinear columns
                # (10,000-30,000 rows, 10-40 columns): Newton's steps finish it where they are affordable
                self._warn_finish(fin, self._newton_dense(problem, ts, fin, f_ref), f_ref, problem)
                return True
            return False
        if not large and _planning.finishes_with_lbfgs(self):
            # small data: each iteration is a pass over at most CHECK_EXACT_MAX_VALUES values, so the finish may
            # take SMALL_FINISH_STEPS (wine's degree-2 products, huber: 79 iterations to the optimum)
            fin = self._finish_lbfgs(problem, ts, steps=SMALL_FINISH_STEPS, exact=True, say=False)
            # L-BFGS's gain rule can stop it far from the optimum (ill-conditioned columns): the semi-smooth Newton
            # method, where affordable, reaches the optimum or certifies it
            self._warn_finish(fin, self._newton_dense(problem, ts, fin, f_ref), f_ref, problem)
            return True
        # larger data, the user's L-BFGS without a line search: a few strong-Wolfe iterations from the fit (a pass
        # each), whose gain proves a stall (and a lower bound on its excess); small data: the optimum itself
        if searched:
            got = best = problem.objective(ts.theta, np.arange(problem.n_batches, dtype=np.int64))[0]
        else:
            got, best = _lbfgs_gap(problem, ts, min(self.tol, FINISH_TOL), STALL_CHECK_ITER if large else None)
        # small data: the semi-smooth Newton method's optimum where it is lower (L-BFGS stalls short of it on
        # ill-conditioned columns: then its advice would not reach the optimum either)
        newton = None if large else self._newton_optimum(problem, ts, f_ref)
        if searched and newton is None:  # nothing measured the fit (Newton unaffordable): its own warnings stand
            return False
        stalls = newton is not None and (searched or newton[1] < best - _shortfall.warn_limit(newton[1], f_ref,
                                                                                                self.tol))
        unfinished = newton is not None and newton[3] == "budget"  # its optimum is an upper bound on the optimum
        if newton is not None and newton[1] < best:
            best = newton[1]
        excess = got - best
        if not (f_ref > 0 and excess > _shortfall.warn_limit(best, f_ref, self.tol)):
            # measured at the optimum: more steps gain nothing that matters (not where Newton did not finish)
            return f_ref > 0 and not large and not unfinished
        capped = self.n_iter_ >= self.max_iter_ and not out.converged
        # the settings of this fit that keep the default's L-BFGS finish from running (only those it chose)
        chosen = [f"{name}={value!r}" for name, value, default in (
            ("learning_rate", self.learning_rate, "adaptive"), ("max_iter", self.max_iter, "auto")) if value != default]
        if not isinstance(self.optimizer, str):
            chosen.append("an optimizer object")
        elif self.optimizer == "lbfgs":
            chosen.append("optimizer='lbfgs'")
        default = (" (its defaults instead of " + " and ".join(chosen) + " finish with L-BFGS)") if chosen else ""
        share = _shortfall.excess_words(excess, best, f_ref, "the loss of the constant mean of y")
        if stalls:  # L-BFGS from the fit stops short of Newton's optimum: only the default's finish reaches it
            what = "L-BFGS" if user_lbfgs else "Gradient descent"
            steps = "steps" if user_lbfgs else "epochs"
            finish = "their finish (full-batch L-BFGS, then the semi-smooth Newton method)"
            reach = ("goes as far, and warns where it stops short" if unfinished else "reaches it")
            fix = (f"Use the defaults instead of {' and '.join(chosen)}: {finish} {reach}" if chosen else
                   f"Fit with the default optimizer and learning rate: {finish} {reach}")
            stall = ("" if searched else "; full-batch L-BFGS from this model stalls short of it, as on "
                                          "ill-conditioned columns")
            found = (f"a point that much better, found by the semi-smooth Newton method, which was still gaining "
                     f"when its budget ran out{stall}" if unfinished else
                     f"found by the semi-smooth Newton method{stall}")
            warnings.warn(f"{what} stopped {'at least ' if unfinished else ''}{share} above the optimum of the "
                          f"{self.loss} objective ({found}) after {self.n_iter_} {steps}. {fix}.",
                          ConvergenceWarning, stacklevel=4)
            return True
        if user_lbfgs:
            found = (f"L-BFGS with a strong-Wolfe line search found a model that much better in at most "
                     f"{STALL_CHECK_ITER} iterations from it" if large else
                     "found by L-BFGS with a strong-Wolfe line search")
            warnings.warn(f"L-BFGS stopped {'at least ' if large else ''}{share} above the optimum of the "
                          f"{self.loss} objective ({found}) after {self.n_iter_} steps: torch's L-BFGS takes no line "
                          f"search by default, and its fixed steps stalled on this loss. Use optimizer=LBFGS("
                          f"line_search_fn='strong_wolfe') (fastgd.optimizers.LBFGS), or the default optimizer.",
                          ConvergenceWarning, stacklevel=4)
            return True
        warnings.warn(f"Gradient descent stopped {share} above the optimum of the {self.loss} objective (found by "
                      f"full-batch L-BFGS) after {self.n_iter_} epochs. "
                      + (f"Raise max_iter (it is {self.max_iter}), or use" if capped and self.max_iter != "auto" else
                         "Use") + f" optimizer='lbfgs', which this small data set and smooth loss allow{default}.",
                      ConvergenceWarning, stacklevel=4)
        return True

    def _finish_sparse(self, problem, ts, k, total):
        """The exact finish of a sparse fit (``_planning.finish_follows``): its objective, the squared error with
        an l2 penalty, is quadratic, so preconditioned conjugate gradient (the preconditioned L-BFGS finish's
        change of variables) until an iteration gains less than FINISH_TOL. The optimizer state of the warm-up
        epochs, which partial_fit calls after the fit continue (its moments: the gradients' scale the epochs
        reached), is kept when small (FINISH_KEEP_STATE_VALUES); a larger one is released first (a later warm
        start or partial_fit starts the optimizer afresh from the finished model), so the finish's vectors take
        its place in the fit's peak memory."""
        if problem.scaling.curvature(problem.l2, self.fit_intercept, k) is None:
            return self._finish_lbfgs(problem, ts)
        opt = get_optimizer(_planning.named_optimizer(self.optimizer) if isinstance(self.optimizer, str)
                            else self.optimizer, full_batch=True)  # fit's optimizer (_check_params's, unchecked)
        if ts.state.size > FINISH_KEEP_STATE_VALUES:
            ts.state, ts.scalars = opt.init_state(ts.theta.size)
        warm = self.stop_reason_
        if warm.startswith("max_iter='auto'"):  # the warm-up's planned epochs, not a cap
            warm = f"{self.max_iter_} warm-up epochs (max_iter='auto' on sparse data with an l2 penalty)"
        # the path and the finish on the columns that store values (``compact_problem``: every pass O(stored
        # columns), not O(d)); their solution is the full problem's, zero elsewhere
        compact = _training.compact_problem(problem, ts.theta)
        inner, its, into = problem, ts, None
        if compact is not None:
            inner, ext = compact
            its = _training.compact_state(ts, ext)
            into = (problem, ts, ext)
        with _shortfall.one_blas_thread():
            if self.penalty == "auto":  # the strength from the data (a penalty the user chose is kept)
                warm = f"{warm}; {self._choose_alpha(inner, its, k, total)}"
                problem.l2 = inner.l2
            if problem.loss is not None:  # huber: no linear system; L-BFGS in the same change of variables
                self.stop_reason_ = warm
                unit = _select.loss_l2_unit(problem.scaling, problem.loss)
                return self._finish_lbfgs(inner, its, precondition=inner.scaling.curvature(
                    problem.l2 / unit, self.fit_intercept, k), steps=HUBER_FINISH_STEPS, into=into)
            fin = self._sparse_cg(inner, its, k, min(self.tol, FINISH_TOL), FINISH_CG_PATIENCE, FINISH_REL)
        if compact is not None:
            ts.theta[:, ext] = its.theta
        return self._store_finish(problem, ts, fin, warm)

    def _sparse_cg(self, problem, ts, k, tol, patience, rel_tol=None):
        """The sparse finish's conjugate gradient from ``ts.theta`` (``train_pcg``'s ``tol``, ``n_iter_no_change``
        and ``rel_tol``), the rows as a full-batch pass's batches (``FitData.whole``), preconditioned by the
        columns' curvature at the current penalty."""
        whole = problem.whole()
        return _training.train_pcg(whole, ts, train_ids=np.arange(whole.n_batches, dtype=np.int64),
                                   steps=FINISH_CG_ITER, tol=tol, n_iter_no_change=patience, rel_tol=rel_tol,
                                   precondition=problem.scaling.curvature(problem.l2, self.fit_intercept, k))

    def _store_finish(self, problem, ts, fin, before):
        """Keep the model a conjugate-gradient finish reached; ``before``: what the fit did until then, in words."""
        self._store(ts, problem.scaling, problem)
        self.n_iter_ += fin.n_iter
        self.stop_reason_ = f"{before}; then full-batch conjugate gradient: {fin.stop_reason}"
        self._say_finished()
        return fin

    def _resume_cg(self, problem, ts, k):
        """The sparse finish resumed where it stopped, until its residual vanishes or FINISH_CG_ITER more
        iterations (small data only: the exact check found it short)."""
        with _shortfall.one_blas_thread():
            fin = self._sparse_cg(problem, ts, k, 0.0, FINISH_CG_ITER)
        self._store(ts, problem.scaling, problem)
        self.n_iter_ += fin.n_iter
        self.stop_reason_ = f"{self.stop_reason_}; resumed as the exact check found it short: {fin.stop_reason}"
        return fin

    def _choose_before_epochs(self, problem, ts, k, total):
        """penalty="auto" on sparse X where no exact finish follows the epochs to choose the strength on its path:
        training settings the user chose (``learning_rate``, ``max_iter``, ``tol``, ``early_stopping``,
        ``optimizer="lbfgs"``), or a loss with a kink (``epsilon_insensitive``, ``quantile``; huber stands in).
        The same path (``_choose_alpha``) runs from the start, before the epochs, which then train at the chosen
        strength from its path solution (else the fixed strength of Ridge(alpha=1), or SGDRegressor's for
        another loss, applied: on one-hot digits held-out R² 0.33 against 0.56 chosen, with huber -1.11 against
        0.52, silently). ``total``: Σw in the user's units (the Ridge alpha said). Returns what was done, in
        words, or None where the default fit's own path runs or none can (squared_epsilon_insensitive, several
        outputs of a loss other than the squared error, no standardization, dense X)."""
        kinked = self.loss in ("epsilon_insensitive", "quantile")
        if not (self.penalty == "auto" and self.alpha_ > 0 and problem.scaling is not None and self.standardize
                and isinstance(problem.Xk, tuple) and not _planning.finish_follows(self, problem.Xk, k)
                and (self.loss == "squared_error" or (self.loss == "huber" or kinked) and k == 1)):
            return None
        self._choice_rng = copy.deepcopy(check_random_state(self.random_state))  # as the default fit's path draws
        # early stopping: the path trains and scores on none of its validation rows (else the start, fitted on
        # most of them, is judged on them, and kept: Zipf counts, held-out R² 0.745 against Ridge(alpha=1)'s 0.777,
        # silently); a copy of problem, whose chosen strength is set on problem below
        path = dataclasses.replace(problem, sw=_planning.without_validation(self, problem)) \
            if self.early_stopping else problem
        # on the columns that store values (``_training.compact_problem``), the path solution written back
        compact = _training.compact_problem(path, ts.theta)
        full_ts = ts
        if compact is not None:
            path, ext = compact
            ts = _training.compact_state(full_ts, ext)
        if not kinked:
            with _shortfall.one_blas_thread():
                said = self._choose_alpha(path, ts, k, total)
            problem.l2 = path.l2
            if compact is not None:
                full_ts.theta[:, ext] = ts.theta
            return said
        # a loss with a kink has no smooth solver for the path: huber (at this fit's epsilon) stands in for it, and
        # its strength is converted to the loss's objective by their units (_select.loss_l2_unit: ε-insensitive
        # and quantile losses are about |r|, huber about ε·|r| beyond ε). One-hot digits with 5 % outliers: the
        # fixed strength gave held-out R² -1.05 / -0.58 (epsilon_insensitive / quantile), SGDRegressor 0.44 / 0.42,
        # the converted one 0.525 / 0.487
        stand_in = dataclasses.replace(path, loss=(LOSSES.index("huber"), float(self.epsilon)))
        with _shortfall.one_blas_thread():
            said = self._choose_alpha(stand_in, ts, k, total)
        if compact is not None:
            full_ts.theta[:, ext] = ts.theta
        if len(self.alpha_path_):
            factor = (_select.loss_l2_unit(problem.scaling, problem.loss)
                      / _select.loss_l2_unit(problem.scaling, stand_in.loss))
            self.alpha_ = stand_in.l2 * factor
            self.alpha_path_[:, 0] *= factor
            self._auto_ridge = self.alpha_ / _planning.AUTO_OTHER_LOSS_ALPHA * _planning.AUTO_RIDGE_ALPHA
            said = (f"{said}; chosen with huber (epsilon={self.epsilon:g}) standing in for {self.loss}, the "
                    f"strength in {self.loss}'s units: alpha={self.alpha_:.4g}")
        problem.l2 = self.alpha_  # no choice: _choose_alpha kept this loss's fixed strength in alpha_
        return said

    def _choose_alpha(self, problem, ts, k, total):
        """penalty="auto" before the sparse finish: the l2 strength chosen on held-out rows (``fastgd._select``),
        set on ``problem``, ``alpha_`` and ``alpha_path_``, and ``ts.theta`` moved to its path solution. Returns
        what was done, in words (for ``stop_reason_``)."""
        # the held-out rows are drawn from the fit's generator (random_state) as it was before the epochs: the same
        # for any n_jobs, backend and optimizer
        rng = self.__dict__.pop("_choice_rng", None)
        rng = self._rng if rng is None else rng
        choice = _select.choose_l2(problem, ts.theta, k, self.fit_intercept, rng)
        if isinstance(choice, str):  # why no strength could be chosen
            self.alpha_path_ = np.empty((0, 2))
            problem.l2 = self.alpha_ = _planning.resolve_penalty(self, True, self._seen_weight, self._auto_ridge)[1]
            if problem.loss is not None:
                return (f"{choice}: SGDRegressor's default strength alpha={_planning.AUTO_OTHER_LOSS_ALPHA:g} in "
                        f"units of X's median column's largest |value| and y's spread kept (alpha={self.alpha_:.4g})")
            return (f"{choice}: the l2 strength of Ridge(alpha={_planning.AUTO_RIDGE_ALPHA:g}) on X in units of its "
                    f"median column's largest |value| kept (Ridge(alpha={self._auto_ridge:.4g}) on X)")
        problem.l2 = self.alpha_ = choice.l2
        self.alpha_path_ = np.array(choice.path, dtype=np.float64).reshape(-1, 2)
        best = float(self.alpha_path_[self.alpha_path_[:, 0] == choice.l2, 1][0])
        if problem.loss is not None:
            # kept by the partial_fit calls after the fit (another loss's "auto" strength counts no rows)
            self._auto_ridge = choice.l2 / _planning.AUTO_OTHER_LOSS_ALPHA * _planning.AUTO_RIDGE_ALPHA
            return (f"l2 strength chosen on {choice.shares} shares of {_select.HOLD_OUT:.0%} held-out rows: "
                    f"alpha={choice.l2:.4g}, held-out score {best:.4f} (1 - their {self.loss} loss, epsilon at least "
                    f"{_select.SCORE_EPSILON:g} times y's robust spread, / that of their mean; the shares' mean), "
                    f"best of {len(choice.path)} strengths ({choice.passes} passes over X)")
        # the chosen strength in "auto"'s units (per effective row, as _seen_weight), which partial_fit calls keep
        self._auto_ridge = choice.l2 * getattr(self, "_seen_weight", total) / 2
        ridge, rescaled = self._ridge_alpha(choice.l2, total)
        if choice.loo:
            return (f"l2 strength chosen by leave-one-out over the {choice.shares} rows of positive weight (too few "
                    f"to hold out {_select.HOLD_OUT:.0%} of them): alpha={choice.l2:.4g} (Ridge(alpha={ridge:.4g})"
                    f"{' on sample_weight / sample_weight.max()' if rescaled else ''}), leave-one-out R² {best:.4f}, "
                    f"best of {len(choice.path)} strengths")
        shares = "" if choice.shares == 1 else f", the finalists on {choice.shares} such shares"
        return (f"l2 strength chosen on {_select.HOLD_OUT:.0%} held-out rows{shares}: alpha={choice.l2:.4g} (Ridge("
                f"alpha={ridge:.4g}){' on sample_weight / sample_weight.max()' if rescaled else ''}), held-out R² "
                f"{best:.4f}{' (their mean)' if shares else ''}, best of {len(choice.path)} strengths "
                f"({choice.passes} passes over X)")

    def _finish_dense(self, problem, ts):
        """The finish of a dense squared-error fit under the default rate rule: its objective (with an l2 penalty
        or none) is quadratic, so conjugate gradient from the fitted model, in the standardized coordinates
        (preconditioned by the columns' curvature, which also absorbs their means into the intercept), until a
        gain is below FINISH_TOL of the variance of y and FINISH_REL of the objective (at once when the
        curvature spread it measured is small and has settled, else FINISH_CG_PATIENCE times in a row and as
        many times as the iterations before), or FINISH_CG_ITER iterations. Not at once where a sample of rows
        measured the columns ill-conditioned (``_measured_ill``): there the epochs' excess lies along small
        curvatures, which the gradient hardly shows, so CG's first gains are small and its first iterations'
        spread says nothing (correlated 1e6 x 20 columns: one iteration, spread 1, 0.3 of the coefficients'
        norm left). torch's L-BFGS stopping tests
        (changes below 1e-9 of the variance of y) ended it up to three times the optimum's loss short on
        ill-conditioned data whose optimum explains nearly all of y."""
        k = ts.theta.shape[0]
        pre = None if problem.scaling is None else problem.scaling.curvature(problem.l2, self.fit_intercept, k)
        if pre is None or problem.loss is not None:  # standardize=False: L-BFGS on the raw columns
            return self._finish_lbfgs(problem, ts)
        with _shortfall.one_blas_thread():
            fin = _training.train_pcg(problem, ts, train_ids=np.arange(problem.n_batches, dtype=np.int64),
                                      steps=FINISH_CG_ITER, tol=min(self.tol, FINISH_TOL), precondition=pre,
                                      n_iter_no_change=FINISH_CG_PATIENCE, rel_tol=FINISH_REL,
                                      clear_spread=0.0 if _measured_ill(problem) else
                                      _clear_spread(problem.n, ts.theta.shape[1]), grow_patience=True)
        before = self.stop_reason_
        if not fin.converged and problem.l1 == 0.0 and isinstance(problem.Xk, np.ndarray) \
                and problem.Xk.shape[1] <= SOLVE_MAX_COLUMNS and not fin.interrupted:
            solved = self._solve_dense(problem, ts, k)
            if solved is not None:
                self._store_finish(problem, ts, fin, before)
                self.stop_reason_ += f"; then {solved}"
                fin.converged = True  # the exact optimum: no shortfall to warn of
                return fin
        return self._store_finish(problem, ts, fin, before)

    def _solve_dense(self, problem, ts, k):
        """After a conjugate-gradient finish that stopped short (ill-conditioned columns: 3000 x 200 at condition
        number 1e4 used its 1,000 iterations and stayed 1.3e-3 of var(y) above least squares, warned): the exact
        optimum from the normal equations (``_training.solve_dense``: one pass, O(n·d²), no more than the
        iterations already spent at d <= SOLVE_MAX_COLUMNS), kept where its objective is lower. Returns what was
        done, in words, or None (kept the finish's model)."""
        ids = np.arange(problem.n_batches, dtype=np.int64)
        try:
            with _shortfall.one_blas_thread(), np.errstate(all="ignore"):
                raw = _training.solve_dense(problem, k)
                theta = problem.scaling.to_std(raw)
                if not np.all(np.isfinite(theta)):
                    return None
                new = problem.objective(theta, ids)[0]
                old = problem.objective(ts.theta, ids)[0]
        except (np.linalg.LinAlgError, MemoryError, ValueError):
            return None
        if not new < old:
            return None
        ts.theta[...] = theta
        return (f"the normal equations solved exactly (their {problem.Xk.shape[1]} x {problem.Xk.shape[1]} "
                f"second moments, one pass over X): objective {old:.6g} -> {new:.6g}")

    def _warn_finish(self, fin, newton, f_ref, problem):
        """The outcome of a smooth loss's L-BFGS finish and the Newton steps after it (``newton``: what
        ``_newton_dense`` returned): printed with ``verbose``; a warning where it stopped short. Where Newton ran,
        its status decides (L-BFGS's gain rule, which it checks, is no evidence); else L-BFGS's (without torch's
        tolerances a step that leaves the model where it is ends at the optimum to rounding)."""
        self._say_finished()
        if newton is not None:
            if newton[0] == "budget":
                warnings.warn(self._unfinished_newton(newton[1], newton[2], f_ref, problem), ConvergenceWarning,
                              stacklevel=5)
        elif not (fin.converged or fin.by_torch_tol):
            warnings.warn(self._unfinished_lbfgs(fin), ConvergenceWarning, stacklevel=5)

    def _newton_optimum(self, problem, ts, f_ref):
        """The semi-smooth Newton method (``_training.newton_dense``) from the model at ``ts`` (left as it is), for
        dense data with huber or squared_epsilon_insensitive and no l1, within NEWTON_MAX_FLOPS for all outputs
        together (none where NEWTON_MIN_ITER iterations per output do not fit), its steps ending once NEWTON_PATIENCE
        in a row gain less than the finish's tolerance (of ``f_ref``, the constant mean's loss). Returns (theta,
        objective, objective at ts, status, iterations, last gain), or None where it does not apply or fails."""
        X = problem.Xk
        if problem.l1 > 0.0 or problem.scaling is None or not isinstance(X, np.ndarray) or problem.loss is None \
                or problem.loss[0] not in (_rules.HUBER, _rules.SQUARED_EPSILON_INSENSITIVE):
            return None
        n, d = X.shape
        k = ts.theta.shape[0]
        if _training.newton_work(n, d) * NEWTON_MIN_ITER * k > NEWTON_MAX_FLOPS:
            return None
        ids = np.arange(problem.n_batches, dtype=np.int64)
        try:
            with _shortfall.one_blas_thread(), np.errstate(all="ignore"):
                raw, status, steps, last = _training.newton_dense(problem, problem.raw(ts.theta), NEWTON_MAX_FLOPS,
                                                                  min(self.tol, FINISH_TOL) * f_ref)
                theta = problem.scaling.to_std(raw)
                if not np.all(np.isfinite(theta)):
                    return None
                return (theta, problem.objective(theta, ids)[0], problem.objective(ts.theta, ids)[0], status, steps,
                        last)
        except (np.linalg.LinAlgError, MemoryError, ValueError):
            return None

    def _newton_dense(self, problem, ts, fin, f_ref):
        """After the L-BFGS finish of a dense fit with huber or squared_epsilon_insensitive: the semi-smooth Newton
        method from its model (``_newton_optimum``), kept where it lowers the objective by more than the finish's
        tolerance (of ``f_ref``, the constant mean's loss: a smaller gain is within what the finish promised, and
        the dask fit, which has no Newton step, then stays equal to the in-memory one). L-BFGS's gain rule stopped
        0.3-2.4 % above the optimum, silently, on ill-conditioned columns (120 x 30, condition number 3e5, epsilon
        0.1). Returns None where it did not run, else (status, iterations, last gain): "converged" or "tolerance"
        (the model is then the optimum, to rounding or to that tolerance) or "budget" (it was still gaining)."""
        found = None if fin.interrupted else self._newton_optimum(problem, ts, f_ref)
        if found is None:
            return None
        theta, new, old, status, steps, last = found
        if old - new > min(self.tol, FINISH_TOL) * f_ref:
            ts.theta[...] = theta
            self._store(ts, problem.scaling, problem)
            self.n_iter_ += steps
            self.stop_reason_ += (f"; then semi-smooth Newton: {steps} iteration{'s' if steps != 1 else ''}, "
                                  + {"converged": "converged", "tolerance": "its gains below tol",
                                     "budget": "its budget spent"}[status] + f", objective {old:.6g} -> {new:.6g}")
        elif status == "budget":
            self.stop_reason_ += (f"; then semi-smooth Newton: {steps} iteration{'s' if steps != 1 else ''}, its "
                                  f"budget spent, objective {old:.6g} -> {new:.6g} (not kept: within tol)")
        return status, steps, last

    def _unfinished_newton(self, steps, last, f_ref, problem):
        """The warning of a fit whose Newton steps after its L-BFGS finish ran out of their budget while still
        gaining: the figures, the cause it can see (huber's epsilon far below the residuals: nearly the absolute
        error), and what helps."""
        share = last / f_ref if f_ref > 0 else float("nan")
        msg = (f"The finish of this {self.loss} fit (full-batch L-BFGS, then {steps} iterations of the semi-smooth "
               f"Newton method, their budget of {NEWTON_MAX_FLOPS:.0e} operations) stopped before the optimum: its "
               f"last iteration still lowered the objective by {share:.3g} of the loss of the constant mean of y, so "
               f"the model is likely short of the optimum (it is the best point reached).")
        if self.loss == "huber":
            r = np.abs(problem.Y[:, 0] - problem.Y[:, 0].mean()) if problem.Y.size else np.zeros(1)
            spread = float(np.median(r))
            if spread > 0 and self.epsilon < 0.01 * spread:
                msg += (f" With epsilon={self.epsilon:g}, far below the targets' spread (median |y - mean| "
                        f"{spread:.3g}), the huber objective is nearly the absolute error, whose kinks every method "
                        f"crosses one at a time; a larger epsilon makes it smoother and its optimum quick to reach "
                        f"(HuberRegressor's rule is 1.35 times the residuals' robust spread).")
        return msg

    def _unfinished_dense(self, fin, total, weighted):
        """The warning of a dense fit whose conjugate-gradient finish stopped before its tolerance, with the
        condition number of the standardized design its iterations measured (the square root of the curvature
        spread) and a solver that reaches the optimum of such a problem (``total``, ``weighted``: as
        ``_unfinished``)."""
        penalty = _planning.used_penalty(self)[0]
        cond = (f"condition number at least {np.sqrt(fin.spread):.3g}, measured by its iterations"
                if np.isfinite(fin.spread) else "its iterations did not measure the condition number")
        exact = (f"{_shortfall.least_squares_solver(self)} (least squares on the standardized features: the same "
                 "optimum)" if penalty is None else
                 f"{self._same_ridge(total)} (the same objective)")
        weights = "the same sample_weight" if penalty is None else self._ridge_weights(total)
        return (f"The conjugate-gradient finish of this fit stopped ({fin.stop_reason}) before meeting its "
                f"tolerance: the standardized features are ill-conditioned ({cond}), so the model may be short "
                f"of the "
                f"{'least-squares' if penalty is None else 'penalized'} optimum (it is the best point reached). "
                f"{exact}{'; pass ' + weights + ',' if weighted else ''} solves it exactly.")

    def _finish_lbfgs(self, problem, ts, precondition=None, steps=FINISH_STEPS, exact=False, say=True, into=None):
        """Full-batch L-BFGS (strong-Wolfe) from the fitted model until a step gains less than FINISH_TOL
        (``precondition``: see ``_training.train_lbfgs``; its history is then FINISH_HISTORY pairs). ``exact``
        (small data, whose passes are cheap): without torch's tolerances (tolerance_grad and tolerance_change 0),
        so the gain rule, the steps or a step that leaves the model where it is end it (on huber with epsilon far
        below y's spread torch's 1e-7 and 1e-9 stopped it 4.3e-4 of the constant's loss above the optimum, which
        zero tolerances reach). ``into``: (the whole problem, its training state, the columns), where ``problem`` and
        ``ts`` are the stored columns' (``_training.compact_problem``): the solution is written into those columns
        and kept."""
        zero = {"tolerance_grad": 0.0, "tolerance_change": 0.0} if exact else {}
        lbfgs = LBFGS(line_search_fn="strong_wolfe", **zero, **({} if precondition is None else
                                                                {"history_size": FINISH_HISTORY,
                                                                 "tolerance_change": FINISH_TOLERANCE_CHANGE}))
        # sparse data: each evaluation sums all rows as a full-batch pass's batches (``FitData.whole``: per
        # batch, the sums cost O(d) besides the rows' non-zeros); the objective is the same
        whole = problem if precondition is None else problem.whole()
        # one BLAS thread: its products are of single vectors, where waking threads (the kernels' OpenMP threads
        # may still be spinning) cost more than they gain
        with _shortfall.one_blas_thread():
            fin = _training.train_lbfgs(whole, ts, lbfgs, train_ids=np.arange(whole.n_batches, dtype=np.int64),
                                        steps=steps, tol=min(self.tol, FINISH_TOL), precondition=precondition)
        if into is not None:
            problem, full, ext = into
            full.theta[:, ext] = ts.theta
            ts = full
        self._store(ts, problem.scaling, problem)
        self.n_iter_ += fin.n_iter
        self.stop_reason_ = f"{self.stop_reason_}; then full-batch L-BFGS: {fin.stop_reason}"
        if say:  # (else the caller prints once what follows too)
            self._say_finished()
        return fin

    def _say_finished(self):
        """With ``verbose``, the whole fit's ``stop_reason_`` once a finish has run (the loop's last line told only
        of the epochs before it)."""
        if self.verbose:
            print(f"-- Finished after {self.n_iter_} epoch(s) and iteration(s): {self.stop_reason_}")

    def _start_state(self, opt, scaling, warm, k, d, coef_init=None, intercept_init=None, raw=None):
        """The training state a fit or a partial_fit call starts from: the previous model (``warm``: ``raw``
        in the data's units, by default ``coef_``/``intercept_``; its optimizer state too when it fits),
        ``coef_init``/``intercept_init``, or the standardized origin (the best constant)."""
        if raw is None:
            raw = self._raw_params(k, d) if warm else np.zeros((k, d + 1))
        if not warm and scaling is not None and self.fit_intercept:
            raw[:, d] = scaling.y_mean
        raw = self._apply_init(raw, coef_init, intercept_init, k, d)
        ts = self._ts if warm and self._ts.fits(opt, k, d) else _engine.TrainingState.fresh(opt, k, d)
        ts.theta[...] = raw if scaling is None else scaling.to_std(raw)
        return ts

    def _train_and_store(self, problem, ts, opt, y_ndim, warn=True, in_memory=False):
        """fit's loop with its stopping rules (in memory or on dask blocks), then the fitted attributes and the
        loop's warning (``warn=False``: the caller gives it). ``in_memory``: fit's dense in-memory path, where
        small data gets the epoch budget that the L-BFGS finish completes. Returns the loop's Outcome."""
        rng = check_random_state(self.random_state)
        train_ids, eval_ids = _planning.split_batches(self, problem, rng)
        # the generator as the epochs find it: the strength path's held-out rows (_choose_alpha) are drawn from
        # it, so they do not depend on what the epochs drew (their optimizer, their number)
        self._choice_rng = copy.deepcopy(rng)
        # the epochs of a sparse fit that the exact finish completes are its warm start: they update lazily,
        # the l2 penalty frequency-weighted where batches touch (see "lazy updates" in fastgd._rules), also
        # where that does not pay
        warm_only = in_memory and _planning.finish_follows(self, problem.Xk, problem.Y.shape[1])
        problem.touch_l2 = problem.touch_l2 or (warm_only and problem.loss is None)
        settings = _planning.make_settings(self, opt, self.average, problem.n,
                                  None if not in_memory or isinstance(problem.Xk, tuple)
                                  else problem.n * (ts.theta.size - ts.theta.shape[0]),
                                  warm_start_only=warm_only, problem=problem)
        self.max_iter_ = settings.max_iter
        if (in_memory or isinstance(problem, _dask.DaskFitData)) and self._finish_may_follow(problem, ts):
            settings.handover = self._noise_floor(problem)
            if self.n_iter_no_change == _planning.DEFAULT_N_ITER_NO_CHANGE:  # a patience the user set is kept
                settings.settled = functools.partial(_nearly_independent, problem)
        try:
            if isinstance(opt, LBFGS):
                out = _training.train_lbfgs(problem, ts, copy.copy(opt).set_params(lr=settings.lr), train_ids=train_ids,
                                            steps=settings.max_iter, tol=self.tol or 0.0,
                                            n_iter_no_change=self.n_iter_no_change)
            else:
                out = _training.train(problem, ts, settings, rng, train_ids=train_ids, eval_ids=eval_ids,
                                      epochs=settings.max_iter, stopping=True,
                                      keep_best=self.tol is not None or self.early_stopping)
        except _training.Diverged as exc:
            raise ValueError(str(exc)) from None
        self._rng = rng
        self._y_ndim = y_ndim
        self.n_iter_ = out.n_iter
        self.loss_curve_ = out.losses
        self.eval_loss_curve_ = out.eval_losses
        self.stop_reason_ = _reason_of(self, out)
        if in_memory and self.early_stopping:
            self._split = (train_ids, eval_ids)  # early stopping's exact check (fit) measures on them, then drops
        self._rate_shrinks = out.n_shrinks  # the adaptive rule's rate, which the partial_fit calls after it continue
        if self.early_stopping:
            var = problem.target_variance(eval_ids)
            self.validation_scores_ = [1.0 - f / var if var > 0 else 0.0 for f in out.eval_losses]
            self.best_validation_score_ = max(self.validation_scores_, default=-np.inf)
        self._store(ts, problem.scaling, problem)
        if warn:
            self._warn(out)
        return out

    @_atomic
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the optimizer state between calls (like SGDRegressor).

        With ``average=True`` (the default) ``coef_``/``intercept_`` are the mean of the iterates of the calls
        that begin at or after the optimizer's 256th update (until then, of the latest call's): the calls
        before (the first call of a large chunk, the first pass or so of a stream of small chunks) still
        travel to the optimum. This is averaged stochastic gradient descent (as ``SGDRegressor(average=True)``)
        while training continues from the last iterate: with the constant default rate the last iterate keeps
        jittering at the step's noise floor, but the mean converges over passes. After a ``fit`` the calls
        continue from its model, its optimizer state and the rate its adaptive rule ended with (as torch.optim's
        state and SGDRegressor's schedule continue), and the mean starts from it, counted as the sample weight of
        the fit's rows (at the call's updates per row): the first call of c rows after a fit on n moves the model
        c / (n + c) of the way to the mean of its own iterates, so small chunks add to what the fit learned
        instead of replacing it (a fit that ended on its way, by Ctrl-C, a callback or max_iter short of its
        stopping rule, counts for nothing: the mean then starts as on a stream). ``average=False``: the last iterate.
        With an l1 penalty that mean has no exact zeros (a call sees one chunk, so it takes no proximal step
        on all rows as ``fit`` does: diabetes in 100-row chunks, 30 passes, ``alpha=1``, 10 non-zeros against
        Lasso's 4); ``average=False`` keeps the iterate's zeros (4 there).
        ``batch_size="auto"`` gives each call about 256 updates (batches of a few rows on a small chunk).
        With ``standardize=True`` the column statistics are running ones: each call merges the new rows'
        means and variances into them and re-expresses the model (and the mean) in the new coordinates (its
        predictions are unchanged by that). A mostly-zero column (non-zero in under half the rows seen, by weight)
        whose values fewer than 10 rows have shown is scaled by at least the median scale of the columns that
        many rows have shown: a scale from a handful of values can be orders of magnitude too small, and the
        first calls' steps, about the rate over the scale in the data's units, then gave such a column a huge
        coefficient (dense 100-row chunks of a 2000 x 300 matrix with 2 % non-zeros: R² -159 after one pass,
        now 0.90). With an optimizer that steps each coefficient by about the rate (the Adam family, Adagrad,
        RMSprop, Adadelta) the scale of a dense stream's column non-zero in under 1 % of the rows so far is
        also at least a tenth of the root mean square of its non-zero values: a rare one-hot level's standard
        deviation is tiny, its standardized values huge, and each update moved its rows' predictions by that
        many times the rate (8 one-hot categories of 500 levels in dense 1000-row chunks: held-out R² -0.39 after
        5 passes, now 0.94; the same chunks as CSR 0.93). No stopping rule applies: the caller decides.

        The chunks are taken as pieces of one data set (as ``StandardScaler.partial_fit`` takes them): every
        row seen so far counts in the statistics and in what the model learned. Chunks whose units change
        mid-stream (later chunks in metres, earlier in kilometres) leave a model that recovers very slowly: its
        weights are in the old units and each call moves them about a step per update (diabetes, after
        ``partial_fit(X)``: R² on ``X * 1000`` is -4.6e5 after one ``partial_fit(X * 1000)`` call, -3.8e5 after
        30). Bring the chunks to common units first (e.g. a ``StandardScaler`` fitted beforehand on data in the
        final units), or start again once they change: ``fit`` on the new data, or ``clone(model)``.
        On sparse X, ``batch_size="auto"`` takes batches of at most 64 rows whatever the chunk's size (one row
        for 'sgd', 'momentum' and 'nesterov' where their epoch is lazy, as SGDRegressor's): a stream is one data set
        cut anywhere, and larger batches made few updates a call ('adagrad' on 4,314 rows of hashed text in one
        call: held-out R² -0.24, then -1.26 on a second pass; 0.65 now).
        ``fit_intercept`` and ``standardize`` are part of what the model learned: a call after ``set_params``
        changed either raises (the model unchanged), naming the fix; other parameters (the optimizer, its rate)
        may change between calls. Calls from several threads on one estimator take turns, one call at a time.

        A stream that fails warns, once: each call's progressive loss (each batch's before its update, which the
        epoch computes anyway) is compared with the loss on the chunk of the mean of the targets seen before it,
        both summed over the recent calls (halved every 500 rows; a call counts for at most 5 times the
        constant's loss, so one odd chunk does not warn). Above twice the constant's (a progressive R² below -1)
        over 300 rows and 3 calls, a ``ConvergenceWarning`` gives the figure, the cause it can check
        (``standardize=False`` with columns whose scales span more than 100 times; running scales that moved 10
        times or more since the first call, or the fit before it: a change of units; mostly-zero columns with an
        Adam-like optimizer) and its fix. Dense 100-row chunks of 2000 x 300 with
        2 % lognormal(0, 2) non-zeros: R² -6.4 after a pass, warned on the fifth call; ``optimizer='sgd'`` gives
        0.97 / 1.000 after 5 / 20 passes.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            One chunk of the data (float32 or float64, read in place).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : LinearRegressor
            The fitted estimator.
        """
        if _dask.is_dask(X) or _dask.is_dask(y):
            raise TypeError("partial_fit takes in-memory chunks (NumPy arrays, memmaps, SciPy CSR); for a dask "
                            "collection call fit (it trains where the blocks live) or pass its blocks one by one")
        opt = self._check_params()
        if isinstance(opt, LBFGS):
            raise ValueError("partial_fit trains one mini-batch epoch per call; optimizer='lbfgs' is full-batch: "
                             "call fit, or use a mini-batch optimizer such as 'adam'")
        first = not hasattr(self, "coef_")
        prior = None if first else self.__dict__.get("_scaling")  # the scales before this call
        X, Xk, y, sw, backend, total = self._validate(X, y, sample_weight, reset=first, chunk=True)
        # "auto" on sparse X: the Ridge strength (Ridge(alpha=1)'s, or the one a fit before chose) for all the
        # rows seen, the fit's and the calls' (its penalty relative to the mean loss shrinks as the stream
        # grows, as it does for one fit on more rows)
        self._seen_weight = _effective_rows(X, sw) + (0.0 if first else getattr(self, "_seen_weight", 0.0))
        ridge = _planning.AUTO_RIDGE_ALPHA if first else getattr(self, "_auto_ridge", _planning.AUTO_RIDGE_ALPHA)
        self.penalty_, self.alpha_ = _planning.resolve_penalty(self, sp.issparse(X), self._seen_weight, ridge)
        self.__dict__.pop("alpha_path_", None)  # a fit's choice no longer describes alpha_
        Y = _engine.targets_2d(y)
        k, d = Y.shape[1], X.shape[1]
        structure = getattr(self, "_structure", None)  # (fit_intercept, standardize) of the model (old pickles: none)
        if not first and structure is not None and structure != self._structure_now():
            changed = [f"{name}={now!r} (the model was fitted with {then!r})" for name, then, now in
                       zip(("fit_intercept", "standardize"), structure, self._structure_now()) if then != now]
            raise ValueError(f"partial_fit continues the model, whose {' and '.join(changed)} cannot change "
                             f"mid-stream: the intercept and the scaling are part of what it learned. Set it back, "
                             f"or start a new model with the new setting (fit, or a fresh estimator: "
                             f"sklearn.base.clone(model))")
        if not first and self._n_outputs != k:
            raise ValueError(f"y has {k} outputs but the model was fitted with {self._n_outputs}: pass y with "
                             f"{self._n_outputs} column(s), or start a new model on these targets (fit, or a fresh "
                             f"estimator: sklearn.base.clone(model))")
        scaling = None
        if self.standardize:
            # a stream's non-zero counts (_scaling.Scaling): on the first call all columns, later only those
            # still below TRUSTED_VALUES; none after a fit (its statistics are all rows')
            if prior is None:
                counted = "all"
            elif prior.x_count is None:
                counted = None
            elif isinstance(Xk, tuple):  # CSR counts every column from its indices: no list to make
                counted = "all"
            else:
                counted = np.flatnonzero(prior.x_count < _scaling.TRUSTED_VALUES)
            # the Adam family's steps, about the rate per coordinate: a dense mostly-zero column's scale at least a
            # tenth of its non-zero values' root mean square (_scaling.STREAM_SPREAD_CAP), so a rare one-hot level
            # is not stepped 45 times as far
            scaling = _scaling.Scaling.from_data(backend.kern, Xk, Y, sw, self.fit_intercept,
                                                 _engine.resolve_n_threads(self.n_jobs), count=counted,
                                                 into=None if first else self._scaling,
                                                 bound=opt.name in _training.ADAPTIVE_OPTIMIZERS)
        if first and self.penalty == "auto" and self.alpha_ > 0:  # the later calls keep it
            self._set_auto_strength(scaling, self._seen_weight)
        raw = None
        if first:
            self._rng = check_random_state(self.random_state)
            self.loss_curve_, self.n_iter_, self._y_ndim = [], 0, y.ndim
        elif getattr(self, "_partial_mean", None) is not None:  # continue from the last iterate (the public
            raw = _unstandardized(self._scaling, self._ts.theta)  # coef_ is then the mean of the iterates)
        ts = self._start_state(opt, scaling, not first, k, d, raw=raw)
        continued = not first and ts is self._ts  # the optimizer state of the fit or call before goes on
        # a call is one epoch over its chunk: a small chunk gets up to AUTO_UPDATES updates too, not n / 32
        # (a stream of 200-row chunks would otherwise take 7 steps per pass)
        problem = _planning.make_fit_data(self, X, Xk, Y, sw, scaling, backend, min_batch=1, stream=True)
        if first:
            _warn_dense_updates(self, X, problem.batch_size, k)
        problem.stream_factors = True  # the chunk is a piece of the stream (_engine.expected_touch_factors)
        ids = np.arange(problem.n_batches, dtype=np.int64)
        fitted = None if first else self.__dict__.pop("_fit_weight", None)
        avg, burn_in = None, False
        if self.average:  # the running mean over the calls: (k, d + 1) in the data's units and a count
            mean = None if first else getattr(self, "_partial_mean", None)
            if mean is None and fitted is not None:
                # the first call after a fit continues the mean from the fit's model, counted as the updates
                # this call gives as much sample weight (a row-weighted mean: after an n-row fit a c-row chunk
                # moves it c / (n + c) of the way to its iterates' mean)
                mean = (self._raw_params(k, d), fitted * problem.n_batches / total)
            avg = np.zeros(ts.theta.size + 1)
            # the first iterates travel from the start to the optimum: the mean leaves them out, restarting
            # with every call that begins before the optimizer's AUTO_UPDATES-th update (the second call after
            # a large first chunk, later on a stream of small chunks, whose travel spans many calls; measured
            # in benchmarks/partial_fit_passes.py), unless it holds a fit's model (which travelled already)
            burn_in = (mean is None or mean[0].shape != ts.theta.shape
                       or (ts.step < _planning.AUTO_UPDATES and not mean[1] > 0))
            if not burn_in:
                avg[:-1] = (mean[0] if scaling is None else scaling.to_std(mean[0])).ravel()
                avg[-1] = mean[1]
        try:
            settings = _planning.make_settings(self, opt, False, Y.shape[0], problem=problem)
            if settings.adaptive and continued:
                # the rate the adaptive rule of the fit before ended with, as its optimizer state (torch's
                # scheduler and SGDRegressor's t_ continue too): the calls' steps stay at the scale the fit reached
                settings.lr /= _training.LR_SHRINK ** getattr(self, "_rate_shrinks", 0)
            out = _training.train(problem, ts, settings, self._rng, train_ids=ids, eval_ids=None, epochs=1,
                                  stopping=False, n_done=self.n_iter_, avg=avg, interrupt_keeps=False,
                                  hold_workspace=True, workspace=None if first else self.__dict__.get("_work"))
        except _training.Diverged as exc:
            raise ValueError(str(exc)) from None
        self.n_iter_ += out.n_iter
        self.loss_curve_ = self.loss_curve_ + out.losses
        self._partial_mean = mean_raw = None
        if avg is not None and avg[-1] > 0:
            mean_raw = problem.raw(avg[:-1].reshape(ts.theta.shape))
            self._partial_mean = (mean_raw, 0.0 if burn_in else float(avg[-1]))
        self._store(ts, scaling, problem, mean_raw)  # coef_ and intercept_: the mean where there is one
        # the lazy CSR epoch's workspace (k·(d + 1) records of 32 bytes), kept for the next call: not pickled
        self._work = out.workspace
        self._check_stream(out, problem, X, opt, first or fitted is not None,
                           first and not (self.standardize and self.fit_intercept), self._scaling if first else prior)
        return self

    def _check_stream(self, out, problem, X, opt, restart, from_zero, start_scaling):
        """partial_fit's check that the stream is not failing silently: the call's progressive loss (each batch's
        before its update, computed by the epoch anyway) against that of the weighted mean of the targets seen
        before the chunk (O(n·k) on y, no pass over X), both summed over the calls with a decay (see
        PROGRESS_HALF_ROWS). One ConvergenceWarning per stream when the model's loss is more than PROGRESS_RATIO
        times the constant's (a progressive R² below -1), with the cause it can verify and its fix."""
        Y, w = problem.Y, problem.sw
        k = Y.shape[1]
        state = None if restart else self.__dict__.get("_progress")
        state = None if state is None else dict(state)  # a new dict: a call that raises (_atomic) leaves the old
        if state is None or (state["mean"] is not None and state["mean"].shape != (k,)):
            sc = start_scaling  # the scales of the stream's first call (or of the fit before it)
            state = dict(mean=None, weight=0.0, loss=0.0, capped=0.0, const=0.0, rows=0.0, calls=0, warned=False,
                         from_zero=from_zero, scales=None if sc is None else (sc.x_scale.copy(), sc.y_scale.copy()))
        n = Y.shape[0]
        total = float(n if w is None else np.sum(w))
        if not (total > 0 and np.isfinite(out.data_loss)):
            self._progress = state
            return
        mean = np.average(Y, axis=0, weights=w)
        if state["mean"] is not None:  # from the second call of the stream (the first starts it)
            const = _loss_sum(Y, w, state["mean"], problem.loss)
            if state["from_zero"]:  # no better than the start, zero (standardize=False): travelling, not failing
                const = max(const, _loss_sum(Y, w, np.zeros(k), problem.loss))
            decay = 0.5 ** (n / max(PROGRESS_HALF_ROWS, PROGRESS_HALF_CALLS * n))
            loss = out.data_loss * total
            state["loss"] = decay * state["loss"] + loss
            state["capped"] = decay * state["capped"] + min(loss, PROGRESS_CAP * const)  # one odd chunk: not enough
            state["const"] = decay * state["const"] + const
            state["rows"] = decay * state["rows"] + n
            state["calls"] += 1
            if (not state["warned"] and state["calls"] >= PROGRESS_MIN_CALLS and state["rows"] >= PROGRESS_MIN_ROWS
                    and state["capped"] > PROGRESS_RATIO * state["const"]):
                state["warned"] = True
                warnings.warn(self._stream_failing(state, X, opt), ConvergenceWarning, stacklevel=3)
        state["weight"] += total  # the running mean of the targets, for the next call's constant
        state["mean"] = mean if state["mean"] is None else \
            state["mean"] + (mean - state["mean"]) * (total / state["weight"])
        self._progress = state

    def _stream_failing(self, state, X, opt):
        """The warning of _check_stream: the measured figure, the cause it can verify in this chunk, the fix."""
        ratio = state["loss"] / state["const"] if state["const"] > 0 else np.inf
        head = (f"partial_fit: over the recent calls (about {state['rows']:.0f} rows, weighted towards the latest) "
                f"the model predicted each chunk, before each batch's update, with {ratio:.3g} times the loss of "
                f"the mean of the targets seen before it (a progressive R² of {1 - ratio:.3g}): the model is "
                f"worse than a constant and is not converging. ")
        if not self.standardize:  # the user's unscaled features, as fit names them (its column scales and cause)
            cause = _shortfall.scale_cause(self, _shortfall._blocked_column_scales(X, None, self.fit_intercept))
            if cause is not None:
                return head + (f"The cause: {cause} (this chunk's columns). Start the stream again with "
                               f"standardize=True (the default), which scales each column inside the kernels: "
                               f"sklearn.base.clone(model).set_params(standardize=True).")
        sc, first = self._scaling, state["scales"]
        for what, now, then in (() if sc is None or first is None else
                                (("columns of X", sc.x_scale, first[0]), ("targets", sc.y_scale, first[1]))):
            ok = (then > 0) & (now > 0) & np.isfinite(now) & np.isfinite(then)
            change = float(np.median(now[ok] / then[ok])) if np.any(ok) else 1.0
            if not 1 / UNITS_CHANGE <= change <= UNITS_CHANGE:
                return head + (
                    f"The running scale of the {what} is now {change:.3g} times what it was at the stream's start "
                    f"(its first call, or the fit before it; the median over them): the chunks changed units or "
                    f"meaning mid-stream, and the model's weights, learned in the old units, move about one step per "
                    f"update towards the new ones. Bring every chunk to the same units before partial_fit, or start "
                    f"again on data in the new units: fit on it, or a fresh estimator (sklearn.base.clone(model)).")
        d = X.shape[1]
        rows = X.shape[0]
        nonzero = (np.bincount(X.indices, minlength=d) if sp.issparse(X) else np.count_nonzero(X, axis=0))
        rare = int(np.sum(nonzero < 0.5 * rows))  # a pass over the chunk, once, when the warning is given
        # the adaptive optimizers step each coordinate by about the rate whatever its gradient's size (the fix on
        # mostly-zero columns: optimizer='sgd'); a chunk of few rows shows no column as mostly zero (one row: every
        # zero of it): digits in 1-row chunks with 'adagrad' were told to use 'sgd', which diverged on them
        if opt.name in _training.ADAPTIVE_OPTIMIZERS and rows >= STREAM_RARE_ROWS and rare >= max(1, 0.1 * d):
            return head + (
                f"{rare} of the {d} columns are zero in most rows of this chunk, and optimizer={opt.name!r} moves "
                f"each coefficient by about the rate per update whatever the size of its gradient, so a column "
                f"seen in few rows (with rare large values) is given a coefficient far off. optimizer='sgd' steps "
                f"in proportion to the gradient: on a dense 2000 x 300 stream with 2 % lognormal(0, 2) non-zeros in "
                f"100-row chunks it gives training R² 0.97 / 1.000 after 5 / 20 passes where 'adam' gave "
                f"-3.0 / -0.20. Where the rows fit in memory, fit on all of them (R² 1.000 there).")
        return head + ("Where the rows fit in memory, fit on all of them; if the chunks changed units or meaning "
                       "mid-stream, bring them to the same units, or start a fresh estimator "
                       "(sklearn.base.clone(model)) on data in the new units.")

    def _apply_init(self, raw, coef_init, intercept_init, k, d):
        if coef_init is not None:
            coef = _named("coef_init", np.asarray, coef_init, dtype=np.float64)
            shapes = [(k, d)] + ([(d,)] if k == 1 else [])
            if coef.shape not in shapes:
                raise ValueError(f"coef_init must have shape {' or '.join(map(str, shapes))} "
                                 f"(n_outputs, n_features), got shape {coef.shape}")
            if not np.all(np.isfinite(coef)):
                raise ValueError(f"coef_init must be finite: it holds {int(np.sum(~np.isfinite(coef)))} NaN or "
                                 f"infinite value(s)")
            raw[:, :d] = coef.reshape(k, d)
        if intercept_init is not None:
            b = _named("intercept_init", np.asarray, intercept_init, dtype=np.float64)
            if b.shape not in ([(), (1,)] if k == 1 else [(k,)]):
                raise ValueError(f"intercept_init must hold {k} value(s) (shape ({k},)), got shape {b.shape}")
            if not np.all(np.isfinite(b)):
                raise ValueError("intercept_init must be finite: it holds NaN or infinite value(s)")
            raw[:, d] = b.reshape(k)
        return raw

    def __getstate__(self):
        """Pickled without partial_fit's workspace (scratch: the next call makes it again)."""
        state = dict(super().__getstate__())  # a copy: the base class may hand over the live __dict__
        state.pop("_work", None)
        return state

    def _store(self, ts, scaling, problem, raw=None):
        """Keep ``ts`` and ``scaling``; ``coef_`` and ``intercept_`` from ``raw`` (the model in the data's units:
        partial_fit's mean of the iterates), by default from ``ts.theta``."""
        self._ts = ts
        self._scaling = scaling
        self._n_outputs = ts.theta.shape[0]
        self._structure = self._structure_now()
        self.t_ = ts.step
        self.batch_size_ = problem.batch_size
        raw = problem.raw(ts.theta) if raw is None else raw
        d = raw.shape[1] - 1
        single = self._y_ndim == 1
        self.coef_ = raw[0, :d].copy() if single else raw[:, :d].copy()
        self.intercept_ = float(raw[0, d]) if single else raw[:, d].copy()

    def _structure_now(self):
        """(fit_intercept, standardize) as set: what a stream's model is made of (partial_fit keeps them)."""
        return bool(self.fit_intercept), bool(self.standardize)

    def _raw_params(self, k, d):
        """(k, d + 1) parameters in the data's units from the public ``coef_`` and ``intercept_``."""
        coef = np.asarray(self.coef_, dtype=np.float64)
        b = np.asarray(self.intercept_, dtype=np.float64)
        if coef.size != k * d or b.size != k or not (np.all(np.isfinite(coef)) and np.all(np.isfinite(b))):
            raise ValueError(f"coef_ and intercept_ must be finite with shapes ({k}, {d}) (or ({d},)) and ({k},); "
                             f"got {coef.shape} and {b.shape}")
        raw = np.empty((k, d + 1))
        raw[:, :d] = coef.reshape(k, d)
        raw[:, d] = b.reshape(k)
        return raw

    def _warn(self, out):
        """Give the loop's warning or the max_iter one; return whether a warning was given."""
        if out.warning:
            warnings.warn(out.warning, ConvergenceWarning, stacklevel=3)
            return True
        if not (out.converged or out.interrupted or out.stopped) and self.tol is not None \
                and self.n_iter_ >= self.max_iter_:
            # max_iter="auto" was not the user's number: say what it planned, and the value that goes further
            more = ("raise max_iter" if self.max_iter != "auto" else
                    f"raise max_iter above the {self.max_iter_} epochs that 'auto' planned for these rows")
            # a rate or optimizer the user chose may be what made the steps too small: named, with its default
            # (sgd at 1e-6 with early stopping: 20 -> 200 epochs, R² 0.021 -> 0.197, told each time to raise
            # max_iter, where the default rate reaches 0.987)
            rate = _shortfall._chosen_rate(self)
            if rate:
                more = (" and ".join(f"leave {name} at its default ({default!r})" for name, _, default in rate)
                        + f" (with this fit's {' and '.join(f'{name}={value!r}' for name, value, _ in rate)} the "
                        f"steps may be what fell short), or {more}")
            warnings.warn(f"Maximum number of epochs ({self.max_iter_}) reached before the objective stopped "
                          f"improving by tol={self.tol:g} (relative to "
                          f"{_training.tol_unit(self.loss == 'squared_error')}); "
                          + ("set standardize=True (the default), which fits the steps to the features' scales, "
                             f"or {more}." if not self.standardize else f"{more}.")
                          # the finish works in the standardized coordinates (without them only a small data set's
                          # exact check finishes, and it warns with its own measured figures)
                          + (" Or leave max_iter at 'auto' (the default): its budget ends with an exact finish "
                             "where the epochs stop short, which setting max_iter turns off." if self.max_iter != "auto"
                             and self.standardize and _planning.finishes_with_lbfgs(self, any_max_iter=True)
                             else " Or use the default optimizer: its conjugate-gradient finish solves the squared "
                             "error's quadratic exactly, where L-BFGS's steps on ill-conditioned features gain "
                             "little." if _planning.is_lbfgs(self) and self.loss == "squared_error" else ""),
                          ConvergenceWarning, stacklevel=3)
            return True
        return False

    # ------------------------------------------------------------------------------------------------------
    # prediction
    def predict(self, X):
        """``X @ coef_.T + intercept_``, from the public attributes (editing them changes the predictions)."""
        check_is_fitted(self, "coef_")
        if _dask.is_dask(X):
            Xd = _dask.prediction_blocks(self, X)
            theta = self._raw_params(self._n_outputs, self.n_features_in_)
            return _dask.predict(Xd, theta, self.backend, self._y_ndim == 1)
        _, Xk, backend = self._validate_X(X, reset=False, for_fit=False)
        k = self._n_outputs
        theta = self._raw_params(k, self.n_features_in_)
        out = backend.kern.predict(Xk, theta, _engine.resolve_n_threads(self.n_jobs))
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


def _unstandardized(scaling, theta):
    return theta.copy() if scaling is None else scaling.to_raw(theta)


def _loss_sum(Y, w, m, loss):
    """The weighted loss, summed over rows and outputs, of predicting the constants ``m`` (k,) for the targets."""
    dev = _training.constant_deviations(Y, m, loss).sum(axis=1)
    return float(dev.sum() if w is None else dev @ w)


def _readable_csr(X):
    """CSR X whose arrays both backends read in place: 1-D C-contiguous, indices and indptr of int32 or int64. SciPy
    keeps what a user builds a matrix from or assigns: a strided view (values taken as a column of a 2-D array),
    indices of uint32 or int16; the native kernels, which read raw pointers, refused those ("X must be
    C-contiguous", whatever the user had passed) where Numba took them (compiling again for each index type).
    Only such arrays are copied, into a new matrix (the user's is left as it is); X itself when none is."""
    arrays = []
    small = max(X.shape[1], X.nnz) < np.iinfo(np.int32).max  # SciPy's own choice of index type (the same bits)
    for name in ("data", "indices", "indptr"):
        a = getattr(X, name)
        if name != "data" and a.dtype not in (np.int32, np.int64):
            a = a.astype(np.int32 if small else np.int64)
        arrays.append(np.ascontiguousarray(a))
    if all(a is getattr(X, name) for a, name in zip(arrays, ("data", "indices", "indptr"))):
        return X
    out = type(X)(X.shape, dtype=X.dtype)  # csr_matrix or csr_array, as given
    out.data, out.indices, out.indptr = arrays
    return out


def _mapped_file(X):
    """The file name when X is a view of a file-backed ``np.memmap`` (``np.load(..., mmap_mode="r")``)."""
    base = X
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap) and getattr(base, "filename", None):
            return base.filename
        base = base.base
    return None


def _warn_dense_updates(est, X, batch_size, k):
    """The batch size the user chose makes each epoch on sparse X update every coefficient after every batch,
    far more work than its gradients (``_planning.dense_update_excess``): say so, with the settings that would
    update only what a batch touches."""
    if est.batch_size in ("auto", None):
        return
    ex = _planning.dense_update_excess(est, X, batch_size, k)
    if ex is None:
        return
    fixes = list(ex.lazy_with)
    fixes.append(f"batch_size={ex.batch_for_ratio:,} or more (batch_size='auto' chooses "
                 f"{_planning.choose_batch_size(copy.copy(est).set_params(batch_size='auto'), X, X.shape[0], k):,} "
                 f"here)" if ex.lazy_with else f"batch_size={ex.batch_for_ratio:,} or more, or 'auto'")
    lazy = ("; with " + " or ".join(ex.lazy_with) + " a batch updates only the coefficients its rows touch, "
            "as SGDRegressor does") if ex.lazy_with else ""
    warnings.warn(f"batch_size={est.batch_size} on this sparse X updates all {ex.coefficients:,} coefficients after "
                  f"each of an epoch's {ex.batches:,} batches ({_dense_update_cause(est)}): "
                  f"{ex.ratio:,.0f} times the work of an epoch that updates only what each batch touches (its "
                  f"{ex.stored:,} stored values and one pass over the coefficients), so each epoch takes far "
                  f"longer{lazy}. "
                  f"Set {' or '.join(fixes)}.", UserWarning, stacklevel=4)


def _dense_update_cause(est):
    """Why no batch of ``est``'s fit updates lazily (``fastgd._rules.lazy_kind``), in the user's settings."""
    opt = est.optimizer if not isinstance(est.optimizer, str) else _planning.named_optimizer(est.optimizer)
    name = getattr(opt, "name", str(est.optimizer))
    if _planning.penalty_parts(est)[0] != 0.0:
        return f"penalty={est.penalty!r}: an l1 penalty's step moves every coefficient"
    adam = opt.code in (_rules.ADAM, _rules.ADAMW, _rules.ADAMAX, _rules.NADAM)
    if adam and est.standardize and est.loss != "squared_error":
        return f"optimizer={name!r} with loss={est.loss!r}: its lazy form, LazyAdam, serves the squared error only"
    if adam and not est.standardize:
        return (f"optimizer={name!r} with standardize=False follows torch.optim's rule, whose moments move every "
                f"coefficient at every step")
    scheduled = isinstance(est.learning_rate, Schedule)
    if _planning.penalty_parts(est)[1] != 0.0 or opt.weight_decay != 0.0:
        return (f"optimizer={name!r} with {'weight decay' if opt.weight_decay != 0.0 else 'an l2 penalty'}"
                f"{' under a learning-rate schedule' if scheduled else ''}: it moves every coefficient at every step")
    return f"optimizer={name!r} under a learning-rate schedule: a skipped step has no exact catch-up"


def _warn_memmap_copied(given, X, filename):
    """A memmapped X that the kernels cannot read in place was copied into memory: say so, and how to avoid it."""
    why = ([] if given.dtype in (np.float32, np.float64) else [f"its dtype is {given.dtype}"]) + (
        [] if given.flags.c_contiguous else
        ["it is Fortran-ordered" if given.flags.f_contiguous else "it is not C-contiguous (a strided view)"])
    warnings.warn(
        f"X is memory-mapped from {filename!r} but {' and '.join(why) or 'it cannot be read in place'}, so it was "
        f"copied into memory in full ({X.nbytes / 2**20:.3g} MiB as {X.dtype}): the out-of-core path, which reads "
        f"a memmap block by block in place, was not taken. Save X once as a C-ordered float32 or float64 .npy "
        f"(np.save(path, np.ascontiguousarray(X, dtype=np.float32)), in pieces for a file larger than memory) "
        f"and pass np.load(path, mmap_mode='r').", UserWarning, stacklevel=4)


def _reason_of(est, out):
    """The epochs' stop reason for ``stop_reason_``: the budget that ``max_iter="auto"`` planned is described as
    such, never as a max_iter the user set."""
    reason = out.stop_reason
    if est.max_iter == "auto" and reason is not None and reason.startswith("max_iter="):
        reason = "max_iter='auto' (" + reason[len("max_iter="):].replace(" epochs reached", " epochs) reached", 1)
    return reason


def _frame_as_rows(X):
    """A pandas DataFrame whose columns have several NumPy numeric dtypes as one C-ordered float array (float32
    when their common type is, else float64), filled a block of rows at a time: None for any other X. NumPy's view
    of such a frame is a column-ordered copy, which the kernels' row order then copied again (two copies of X
    alive at once); a frame of one dtype is a view that one reordering copy turns into rows."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "iloc") or getattr(X, "ndim", 0) != 2:
        return None
    dtypes = list(dtypes)
    if len(set(dtypes)) < 2 or not all(isinstance(t, np.dtype) and t.kind in "biuf" for t in dtypes):
        return None
    dtype = np.float32 if np.result_type(*dtypes) == np.float32 else np.float64  # as NumPy's view would be
    n, d = X.shape
    out = np.empty((n, d), dtype=dtype)
    step = max(1, FRAME_BLOCK_VALUES // max(d, 1))
    for r0 in range(0, n, step):
        out[r0:r0 + step] = X.iloc[r0:r0 + step].to_numpy(dtype=dtype)
    return out


def _check_rows(est, X, reset, **check_params):
    """scikit-learn's checks of X's values (its names and width were checked on the frame)."""
    return check_array(X, input_name="X", estimator=est, **check_params)


def _numbers_not_text(X):
    """X, a list read as an array; strings or bytes (``X.astype(str)``) refused, as scikit-learn's
    ``check_array(dtype="numeric")`` and LinearRegression refuse them (the float conversion would parse them)."""
    if isinstance(X, (list, tuple)):
        try:
            X = np.asarray(X)
        except (ValueError, TypeError):  # ragged: scikit-learn's validation words it
            return X
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if isinstance(kind, str) and kind in "USV":
        raise ValueError(f"X holds {'bytes' if kind == 'S' else 'strings' if kind == 'U' else 'structured records'} "
                         f"(dtype {X.dtype}), not numbers: convert it to a numeric dtype first, e.g. "
                         f"np.asarray(X, dtype=np.float64) (scikit-learn's LinearRegression refuses such X too)")
    return X


def _warn_insensitive_everywhere(est, Y, sw):
    """Warn where an epsilon-insensitive loss is zero at the constant mean of y although y varies: every residual
    of the start lies inside epsilon (in y's units), so no gradient moves the fit from it (R² 0)."""
    if est.loss not in ("epsilon_insensitive", "squared_epsilon_insensitive"):
        return
    rows = slice(None) if sw is None else sw > 0
    spread = np.abs(Y[rows] - np.average(Y, axis=0, weights=sw)).max(axis=0)
    varies = np.ptp(Y[rows], axis=0) > 0
    inside = varies & (spread <= est.epsilon)
    if np.any(inside):
        std = float(np.sqrt(np.average(np.square(Y - np.average(Y, axis=0, weights=sw)), axis=0, weights=sw))[
            inside].min())
        which = "" if Y.shape[1] == 1 else f" of output {int(np.flatnonzero(inside)[0])}"
        warnings.warn(f"epsilon={est.epsilon:g} is wider than every residual{which} of the constant mean of y (the "
                      f"largest is {float(spread[inside].min()):.3g}), so loss={est.loss!r} is zero there and nothing "
                      f"moves the fit from it (R² 0). epsilon is in the units of y: set it below y's spread, e.g. "
                      f"epsilon={0.1 * std:.3g} (a tenth of y's standard deviation).", UserWarning, stacklevel=3)


def _all_zero(sample_weight):
    """Whether ``sample_weight`` is zero on every row (False when it is not numbers: scikit-learn words that)."""
    try:
        return bool(np.all(np.asarray(sample_weight, dtype=np.float64) == 0.0))
    except (TypeError, ValueError):
        return False


def _zero_weights(chunk):
    """The error for sample weights that are all zero (``chunk``: of a partial_fit call)."""
    return ("sample_weight is zero on every row, so the rows carry no information (scikit-learn's estimators refuse "
            "such weights too): give at least one row a positive weight"
            + ("; or skip this chunk (the model is left as it was)." if chunk else "."))


def _effective_rows(X, sw):
    """The rows that "auto"'s penalty strength counts: n without weights, else the effective number of rows
    (Σw)² / Σw² (n for equal weights, fewer when a few rows carry most of the weight), which any common scale
    of the weights leaves unchanged (``sw``: normalized, its largest value in [1, 2))."""
    if sw is None:
        return float(X.shape[0])
    u = sw / sw.max()  # in [0, 1]: neither sum overflows
    return float(np.square(u.sum()) / np.square(u).sum())


def _normalized_weights(sw):
    """``sample_weight`` scaled by a power of two so that its largest value is in [1, 2): the objective is the
    same (weights count only relative to their sum) and exactly so (a power of two scales every sum exactly),
    but no sum of weights can overflow, whatever their units (all 1e300, or one 1e308 among ones)."""
    top = sw.max(initial=0.0)
    if not top > 0:
        return sw  # all zero: the caller says so
    shift = int(np.frexp(top)[1]) - 1
    return sw if shift == 0 else np.ldexp(sw, -shift)


# ----------------------------------------------------------------------------------------------------------
def _named(name, fn, *args, **kwargs):
    """Call a scikit-learn validator; make sure its error names the argument."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        # the name as a word ("y" alone: "array" or "dimensionality" do not name it)
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message):
            raise
        raise type(exc)(f"{name}: {message}") from exc
