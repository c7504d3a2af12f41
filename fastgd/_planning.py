"""Planning a fit: from the estimator's parameters and the data's shape to what the loop takes.

The batch size, the backend (and whether CSR epochs update lazily), the epoch budget, the penalty and loss
codes, the training settings and the split into training and evaluation batches. Functions of the
estimator's public parameters (``est``) and the data; they change nothing.
"""

import copy
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from . import _engine, _rules, _stability, _training
from ._rules import LOSSES
from .optimizers import LBFGS, get_optimizer
from .schedules import Constant, Schedule

PENALTIES = {None: 0.0, "l2": 0.0, "l1": 1.0, "elasticnet": None}  # l1 share of alpha (None: l1_ratio)
# penalty="auto" on sparse X: the l2 penalty of Ridge(alpha=AUTO_RIDGE_ALPHA), i.e. alpha = 2·this / total weight
AUTO_RIDGE_ALPHA = 1.0
# ... and with another loss (no Ridge to take a strength from), SGDRegressor's default l2 penalty: this alpha in
# the objective (the mean loss plus alpha/2 times the squared norm of the weights, as SGDRegressor's), with X in
# the same units as AUTO_RIDGE_ALPHA's; with as many columns as rows or more, no penalty let those losses
# interpolate the training rows (sparse 100 x 300, held-out R² -1.07 for huber, 0.377 with it)
AUTO_OTHER_LOSS_ALPHA = 1e-4
DEFAULT_TOL = _training.DEFAULT_TOL  # LinearRegressor's tol (relative to the variance of y)
DEFAULT_N_ITER_NO_CHANGE = 2  # LinearRegressor's n_iter_no_change
# batch_size="auto": about this many updates per epoch, in [AUTO_MIN_BATCH, AUTO_MAX_BATCH] rows
AUTO_UPDATES = 256
AUTO_MIN_BATCH = 32
AUTO_MAX_BATCH = 4096
WIDE_ROWS = 4  # dense data: batches of at least d / WIDE_ROWS rows (wide_batch_size)
# max_iter="auto": at least 1000 epochs, more on small data (epochs that visit this many rows in all) ...
AUTO_ROW_VISITS = 2_000_000
AUTO_MAX_EPOCHS = 100_000  # ... up to this many
# after a fit on data this small (n·d·k values), the shortfall from the exact least-squares optimum is
# measured (an O(n·d²) solve that costs milliseconds) and reported if the gradient descent fell short
CHECK_EXACT_MAX_VALUES = 250_000  # values: the solve makes a standardized copy (at most 2 MB)
LBFGS_STEPS = 100  # max_iter="auto" with optimizer="lbfgs": steps of up to 20 iterations
# max_iter="auto" on sparse data finished by L-BFGS (``finish_follows``): these mini-batch epochs are its warm
# start (measured: the finish costs as many passes after 1 epoch as after the stopping rule's 40-50)
SPARSE_WARM_EPOCHS = 2
NONSMOOTH_MIN_BATCH = 4096  # "auto" batch size with a loss other than the squared error: at least this (or n)
# early stopping with "auto": batches of at least this many rows (one row has no variance to score R² on)
MIN_HELD_OUT_ROWS = 2
# a partial_fit call on sparse X with batch_size="auto": batches of at most this many rows whatever the chunk's
# size (a stream is one data set cut anywhere; the batch rule's growth with n, and where the epoch updates every
# coordinate its d / non-zeros floor, gave a 4,314-row call of hashed text one update: 'adagrad' held-out R²
# -0.24 then -1.26 on the second pass, 0.65 with 64-row batches; 'rmsprop' 0.38 -> 0.58) ...
STREAM_SPARSE_BATCH = 64
# ... and one row for the rules whose steps are the rate times the gradient ('sgd', 'momentum', 'nesterov': a
# batch's mean gradient moves B rows as far as one; SGDRegressor's batches are rows) where the epoch is lazy (a
# batch costs its non-zeros): one-hot 10,000-row chunks, 'sgd' held-out R² 0.509 at the rule's 32 rows, 0.79 at
# 1 (SGDRegressor.partial_fit 0.62)
STREAM_SPARSE_PLAIN_BATCH = 1


def choose_batch_size(est, X, n, k, min_batch=AUTO_MIN_BATCH, lazy=None, stream=False):
    """Rows per batch (``lazy``: ``is_lazy(est, X)`` when already known). With early stopping, "auto" is
    capped so that the batches leave a validation and a training batch (see ``split_batches``) of at least
    ``MIN_HELD_OUT_ROWS`` rows each; where none can, the error of ``split_batches`` says what works. Not for a
    ``stream`` (a partial_fit call), which holds nothing out: early stopping is fit's, as SGDRegressor's."""
    b = _batch_size(est, X, n, k, min_batch, lazy)
    if stream and est.batch_size == "auto" and sp.issparse(X):
        opt = est.optimizer if not isinstance(est.optimizer, str) else named_optimizer(est.optimizer)
        plain = getattr(opt, "code", None) in (_rules.SGD, _rules.MOMENTUM, _rules.NESTEROV)
        # one-row batches only where a batch costs its non-zeros (a lazy epoch, which the kernels choose whatever
        # the batch size; else each updates all d), with the squared error (another loss's subgradient noise: as
        # fit's NONSMOOTH_MIN_BATCH, the batches the streams had when the other losses were not lazy)
        one = plain and lazy_allowed(est, X) and est.loss == "squared_error"
        return min(b, STREAM_SPARSE_PLAIN_BATCH if one else STREAM_SPARSE_BATCH)
    if est.early_stopping and est.batch_size == "auto" and not stream:
        cap = held_out_batch_size(n, est.validation_fraction, MIN_HELD_OUT_ROWS)
        return b if cap is None else min(b, cap)
    return b


def held_out_batch_size(n, fraction, min_rows=1):
    """The largest batch size (at least ``min_rows``) whose batches of n rows hold out at least one
    validation batch and keep one training batch with this validation fraction; None when none does."""
    # a lower bound on the batches needed: round(fraction * nb) >= 1 and <= nb - 1
    nb = max(2, int(0.5 / min(fraction, 1.0 - fraction)) - 1)
    while nb <= n // min_rows:
        n_val = validation_batches(fraction, nb)
        if 1 <= n_val < nb:
            return n // nb  # ceil(n / (n // nb)) >= nb batches: as many validation batches or more
        nb += 1
    return None


def validation_batches(fraction, nb):
    """How many of ``nb`` batches early stopping holds out."""
    return int(round(fraction * nb))


def _batch_size(est, X, n, k, min_batch, lazy):
    if est.batch_size is None:
        return n
    if est.batch_size == "auto":
        lazy = is_lazy(est, X) if lazy is None else lazy
        # lazy: a batch costs its non-zeros, as a dense row costs its values (the dense rule)
        nnz = X.shape[1] if lazy or not sp.issparse(X) else X.nnz / max(n, 1)
        b = auto_batch_size(n, X.shape[1], k, nnz, min_batch)
        if est.loss != "squared_error":
            return nonsmooth_batch_size(b, n)
        return b if sp.issparse(X) else wide_batch_size(b, n, X.shape[1])
    return min(est.batch_size, n)


def nonsmooth_batch_size(b, n):
    """The "auto" batch size b of n rows with a loss other than the squared error: at least
    NONSMOOTH_MIN_BATCH rows (or n), since a small batch's subgradient noise stalls the fit short of the
    optimum."""
    return max(b, min(n, NONSMOOTH_MIN_BATCH))


def is_lazy(est, X):
    """Whether the epochs on X update lazily (CSR and an optimizer and penalty that allow it; see "lazy
    updates" in fastgd._rules): a batch then costs what it touches. Only where that pays: when updating
    every coordinate would cost more than the batch's gradient (d + 1 > batch rows x non-zeros per row);
    below that the dense update is as cheap."""
    if not lazy_allowed(est, X):
        return False
    n, d = X.shape
    rows = (n if est.batch_size is None else auto_batch_size(n, d, 1, d) if est.batch_size == "auto"
            else min(est.batch_size, n))
    if est.batch_size == "auto" and est.loss != "squared_error":
        rows = nonsmooth_batch_size(rows, n)  # as _batch_size
    return d + 1 > rows * max(X.nnz / max(n, 1), 1.0)


def lazy_allowed(est, X):
    """Whether the kernels' epochs on X may update lazily (CSR, and an optimizer, schedule, penalty and loss
    that ``fastgd._rules.lazy_kind`` and ``lazy_kind_of_loss`` allow), whatever the batch size."""
    if not sp.issparse(X) or is_lbfgs(est):
        return False
    opt = get_optimizer(named_optimizer(est.optimizer) if isinstance(est.optimizer, str) else est.optimizer)
    sched = (est.learning_rate if isinstance(est.learning_rate, Schedule) else Constant()).pack(opt.lr)[1]
    # X is sparse here; "auto"'s strength (by a nominal weight) does not change what the lazy rules allow
    penalty = resolve_penalty(est, True, 1.0)
    # an l2 penalty where batches touch: frequency-weighted (or, in the warm start of the exact sparse finish,
    # LazyAdam's own); see "lazy updates" in fastgd._rules
    kind = _rules.lazy_kind(opt.code, opt.pack(), bool(est.standardize), *_parts(est, *penalty),
                            _rules.constant_rate(sched), True)
    return _rules.lazy_kind_of_loss(kind, LOSSES.index(est.loss)) != _rules.LAZY_NONE


# an explicit batch size on sparse X whose epochs cannot update lazily: a warning where the batches' updates of
# every coordinate are more than this many times the work of a lazy epoch (its stored values and one pass over
# the coordinates) and at least DENSE_UPDATE_MIN coordinate updates an epoch (about 5-40 ms an epoch, by the
# optimizer; 2^26 took 0.6 s with an l1 penalty, so the floor is no fix to advise): d = 2^20, 30 values a row,
# 'adam' with standardize=False at batch_size=1 took 6.9 s per 1,000 rows (an epoch of 100,000 rows about 11
# minutes, SGDRegressor's 0.03 s), silently
DENSE_UPDATE_RATIO = 32
DENSE_UPDATE_MIN = 1 << 22
# settings whose default may allow the lazy epoch (``lazy_allowed``), with those defaults
LAZY_DEFAULTS = (("standardize", True), ("learning_rate", "adaptive"), ("optimizer", "adam"))


@dataclass(frozen=True)
class DenseUpdates:
    """Why a sparse fit's epochs cost far more than its data (``dense_update_excess``)."""

    batches: int  # per epoch
    coefficients: int  # k·(d + 1): what each batch updates
    stored: int  # X's stored values times the outputs: what its gradients read
    ratio: float  # batches · coefficients / (stored + coefficients): the lazy epoch's work
    lazy_with: tuple  # "name=value" of the settings the user chose whose default updates lazily
    batch_for_ratio: int  # the smallest batch size within DENSE_UPDATE_RATIO


def dense_update_excess(est, X, batch_size, k):
    """A ``DenseUpdates`` where ``batch_size`` (the user's choice) on sparse X makes an epoch update every
    coefficient after each batch (the optimizer, penalty, loss or schedule has no lazy form): more than
    DENSE_UPDATE_RATIO times the work of a lazy epoch and DENSE_UPDATE_MIN updates; None otherwise (dense X, a
    lazy epoch, few batches or few coefficients)."""
    if not sp.issparse(X) or lazy_allowed(est, X):
        return None
    n, d = X.shape
    nb = _engine.n_batches(n, batch_size)
    coefs, stored = k * (d + 1), int(X.nnz) * k
    work = stored + coefs
    ratio = nb * coefs / work
    if ratio <= DENSE_UPDATE_RATIO or nb * coefs < DENSE_UPDATE_MIN:
        return None
    chosen = user_chose(est)
    lazy_with = []
    for name, default in LAZY_DEFAULTS:
        if name in chosen:
            trial = copy.copy(est)
            setattr(trial, name, default)
            if lazy_allowed(trial, X):
                lazy_with.append(f"{name}={default!r}")
    most = max(1, int(DENSE_UPDATE_RATIO * work // coefs))  # the most batches an epoch within the ratio
    return DenseUpdates(nb, coefs, stored, ratio, tuple(lazy_with), -(-n // most))


@dataclass(frozen=True)
class Backend:
    """The kernels of one fit, chosen and looked up once."""

    name: str  # as the estimator's ``backend`` ("auto" stays "auto": see fastgd._engine.kernels)
    kern: object  # the kernel module
    lazy: bool = False  # CSR epochs update only the coordinates each batch touches


def choose_backend(est, X):
    """The backend a fit on X uses, looked up (both have the lazy CSR epoch): as ``fastgd._engine.kernels``."""
    return Backend(est.backend, _engine.kernels(est.backend), is_lazy(est, X))


def make_fit_data(est, X, Xk, Y, sw, scaling, backend, min_batch=AUTO_MIN_BATCH, stream=False):
    """The ``_training.FitData`` of a fit on X (``Xk``: as the kernels read it) with ``backend`` (a
    ``Backend``)."""
    l1, l2 = penalty_parts(est)
    n = Y.shape[0]
    bs = choose_batch_size(est, X, n, Y.shape[1], min_batch, backend.lazy, stream)
    # with standardization, fastgd's own mode: each batch counts for its weight (an unbiased gradient of
    # the whole objective, also with a short last batch or sample weights); without, torch's mean per batch
    total = float(n if sw is None else sw.sum())
    batch_weight = total / _engine.n_batches(n, bs) if scaling is not None else 0.0
    # lazy epochs apply an l2 penalty where batches touch, frequency-weighted (see FitData.touch_l2)
    return _training.FitData(Xk, Y, sw, bs, backend.kern, backend.name, _engine.resolve_n_threads(est.n_jobs),
                             est.fit_intercept, l1, l2, scaling, batch_weight, loss=loss_code(est),
                             touch_l2=backend.lazy)


def loss_code(est):
    """(code, param) of the loss for the kernels; None for the squared error (their default)."""
    if est.loss == "squared_error":
        return None
    return LOSSES.index(est.loss), float(est.quantile if est.loss == "quantile" else est.epsilon)


def choose_max_iter(est, n, values=None, warm_start_only=False):
    if est.max_iter == "auto" and is_lbfgs(est):
        return LBFGS_STEPS
    if est.max_iter == "auto" and warm_start_only:
        return SPARSE_WARM_EPOCHS
    if est.max_iter == "auto":
        if values is not None and values <= CHECK_EXACT_MAX_VALUES and finishes_with_lbfgs(est) \
                and est.tol is not None and not est.early_stopping:
            return 1000  # small data: L-BFGS finishes what the mini-batch epochs leave (see fit)
        return int(min(AUTO_MAX_EPOCHS, max(1000, -(-AUTO_ROW_VISITS // max(n, 1)))))
    return est.max_iter


def make_settings(est, opt, average, n, values=None, warm_start_only=False, problem=None):
    """The loop's settings. The fit's own rate (the default learning_rate with an optimizer given by name)
    starts from the registry's ``start_lr``, lowered where ``problem``'s penalty curvature or batches' noise
    would make a gradient step diverge at it (``fastgd._stability``; momentum carries the noise further)."""
    if isinstance(est.learning_rate, Schedule):
        lr, sched = est.learning_rate.pack(opt.lr)
    else:
        adaptive = isinstance(est.learning_rate, str)
        lr = opt.lr if adaptive else float(est.learning_rate)
        if problem is not None and "learning_rate" not in user_chose(est):
            lr = min(lr, _stability.stable_rate(opt, problem) or lr)
        lr, sched = Constant().pack(lr)
    return _training.Settings(opt, lr, sched, adaptive=isinstance(est.learning_rate, str), average=average,
                              max_iter=choose_max_iter(est, n, values, warm_start_only), tol=est.tol,
                              n_iter_no_change=est.n_iter_no_change,
                              gtol=est.gtol, shuffle=est.shuffle, verbose=est.verbose,
                              penalized_eval=not est.early_stopping, callbacks=_callbacks(est.callbacks),
                              user_chose=user_chose(est), auto_penalty=est.penalty == "auto",
                              named_optimizer=isinstance(est.optimizer, str),
                              alpha=used_penalty(est)[1] if est.penalty != "auto" else None)


def user_chose(est):
    """The training settings the user changed from the defaults (an optimizer object carries its lr)."""
    named = isinstance(est.optimizer, str)
    return frozenset(name for name, chosen in (
        ("learning_rate", est.learning_rate != "adaptive" or not named),
        ("optimizer", not (named and est.optimizer == "adam")),
        ("standardize", not est.standardize), ("batch_size", est.batch_size != "auto")) if chosen)


def is_lbfgs(est):
    return isinstance(est.optimizer, LBFGS) or est.optimizer == "lbfgs"


def finishes_with_lbfgs(est, any_max_iter=False):
    """The default rate rule and epoch budget (not a rate, optimizer object or max_iter the user chose), and a
    smooth objective (``any_max_iter``: whatever max_iter is, i.e. whether the max_iter set is what stops it)."""
    return (est.learning_rate == "adaptive" and isinstance(est.optimizer, str) and est.optimizer != "lbfgs"
            and est.penalty in (None, "l2", "auto") and (any_max_iter or est.max_iter == "auto")
            and smooth_loss(est))


def finish_follows(est, X, k=1):
    """Whether an in-memory fit of ``est`` on X (CSR, or the kernels' CSR tuple) ends with the exact, preconditioned
    finish (``LinearRegressor._finish_sparse``; with penalty="auto" it also chooses the l2 strength): an l2
    penalty (that of penalty="auto"), standardization, the squared error and the default rate rule and epoch
    budget; its mini-batch epochs are then a warm start (``SPARSE_WARM_EPOCHS``), in which the lazy Adam-family
    epochs apply the penalty only where batches touch (fastgd._rules.lazy_kind) also where updating lazily does
    not pay. Huber with penalty="auto" too: its strength is chosen on held-out rows along the same path
    (``_select.choose_l2``) and preconditioned L-BFGS finishes, with one output (``k``): huber's unit,
    min(y_scale, epsilon), differs between outputs of different scales, and one shared strength served neither
    (outputs 1 and 100 times X·w: held-out R² -3.7 and 0.997, where each alone chose strengths 1,000 times
    apart)."""
    return ((sp.issparse(X) or isinstance(X, tuple)) and bool(est.standardize)
            and (est.loss == "squared_error" or (est.loss == "huber" and est.penalty == "auto" and k == 1))
            and finishes_with_lbfgs(est) and est.tol is not None and not est.early_stopping
            and _parts(est, *resolve_penalty(est, True, 1.0))[1] > 0.0)


def smooth_loss(est):
    """A loss with a continuous gradient (L-BFGS and its finish apply); the others have a kink."""
    return est.loss in ("squared_error", "huber", "squared_epsilon_insensitive")


def resolve_penalty(est, sparse, total, ridge=AUTO_RIDGE_ALPHA):
    """(penalty, alpha) that a fit on X of ``total`` sample weight (rows when unweighted) uses:
    ``penalty="auto"`` is no penalty on dense X and, on sparse X with the squared error, the l2 penalty of
    ``Ridge(alpha=ridge)`` (alpha = 2·ridge / total in this objective; ``ridge``: AUTO_RIDGE_ALPHA, or the
    strength a fit chose, which the ``partial_fit`` calls after it keep): with as many columns as rows or more,
    the least-squares solution is not unique and the penalty is what generalizes; another loss has no Ridge to
    take the strength from: SGDRegressor's default, alpha = AUTO_OTHER_LOSS_ALPHA, in the units ``ridge`` carries
    (times ``ridge / AUTO_RIDGE_ALPHA``, which a fit passes: the median column's largest |value| squared times
    the loss's unit over y's scale, ``_select.auto_loss_unit``, so that X or y times a constant gives the same
    model; 1 for binary or unit-valued columns and y of unit spread, with the squared losses)."""
    if est.penalty != "auto":
        return est.penalty, est.alpha if est.penalty is not None else 0.0
    if not sparse:
        return None, 0.0
    if est.loss == "squared_error":
        return "l2", 2.0 * ridge / total
    return "l2", AUTO_OTHER_LOSS_ALPHA * ridge / AUTO_RIDGE_ALPHA


def used_penalty(est):
    """(penalty, alpha) of the current fit: the parameters, or what "auto" resolved to (``penalty_``,
    ``alpha_``, set by the fit before it plans anything)."""
    if est.penalty != "auto":
        return est.penalty, est.alpha if est.penalty is not None else 0.0
    return est.penalty_, est.alpha_


def penalty_parts(est):
    """(l1, l2) strengths of the current fit's penalty."""
    return _parts(est, *used_penalty(est))


def _parts(est, penalty, alpha):
    share = PENALTIES[penalty]
    if penalty is None:
        return 0.0, 0.0
    share = est.l1_ratio if share is None else share
    return float(alpha * share), float(alpha * (1.0 - share))


def without_validation(est, problem):
    """``problem``'s sample weights (ones where it has none) with early stopping's validation rows at 0: the
    evaluation batches of ``split_batches``, drawn as the loop will draw them (from ``random_state`` afresh), so a
    choice made before the epochs (the l2 strength's path) trains and scores on none of the rows that judge the
    epochs and their start."""
    _, val = split_batches(est, problem, copy.deepcopy(check_random_state(est.random_state)))
    w = np.ones(problem.n) if problem.sw is None else np.array(problem.sw, dtype=np.float64)
    w[problem.batch_rows(val)] = 0.0
    return w


def split_batches(est, problem, rng):
    """(training batches, evaluation batches): held-out batches with early stopping, else a fixed subset
    of the training batches (all of them on small data) on which the loop measures progress."""
    nb = problem.n_batches
    all_ids = np.arange(nb, dtype=np.int64)
    if est.early_stopping:
        weights = problem.batch_weights()
        usable = np.flatnonzero(weights > 0)
        n_val = validation_batches(est.validation_fraction, nb)
        if n_val < 1 or nb - n_val < 1 or len(usable) < 2:
            # only the fixes that work here: a batch size only the user's and only one that leaves a
            # validation batch ("auto" already makes batches as small as it may), a fraction only one that
            # these batches (or the most "auto" may make) can hold out; early_stopping=False always works
            auto = est.batch_size == "auto"
            cap = held_out_batch_size(problem.n, est.validation_fraction)
            # the batches another validation_fraction would get: these, or as many as "auto" may make
            nbf = max(problem.n // MIN_HELD_OUT_ROWS, 1) if auto else nb
            n_valf = validation_batches(est.validation_fraction, nbf)
            tips = ([f"batch_size <= {cap}"] if not auto and cap and cap < problem.batch_size
                    and len(usable) == nb else []) + (
                [f"validation_fraction >= {1 / nbf:.3g}"] if n_valf < 1 and nbf >= 2 and len(usable) >= min(2, nb)
                else ["a smaller validation_fraction"] if nbf - n_valf < 1 and nbf >= 2 else [])
            raise ValueError(
                f"early_stopping holds out whole batches: validation_fraction={est.validation_fraction} of "
                f"{nb} batch(es) ({len(usable)} with positive sample weight) leaves no validation or no "
                f"training batch; use " + ", ".join(tips) + (", or " if tips else "") + "early_stopping=False"
                + ("" if tips else " (too few rows to hold any out)" if nb < 2 else
                   " (too few batches with positive sample weight to hold one out)"))
        # held out: full batches when there are enough (a short last batch alone judges the fit by a few rows)
        short = nb - 1 if problem.n % problem.batch_size else -1
        full = usable[usable != short]
        if short in usable and len(full) >= n_val:
            val = np.sort(rng.permutation(full)[:n_val]).astype(np.int64)
        else:
            val = np.sort(rng.permutation(usable)[:min(n_val, len(usable) - 1)]).astype(np.int64)
        return np.setdiff1d(all_ids, val).astype(np.int64), val
    if problem.n <= 2 * _training.EVAL_ROWS:
        return all_ids, all_ids
    n_eval = max(1, -(-_training.EVAL_ROWS // problem.batch_size))
    return all_ids, np.sort(rng.permutation(nb)[:n_eval]).astype(np.int64)


def auto_batch_size(n, d, k, nnz_per_row, min_batch=AUTO_MIN_BATCH):
    """``batch_size="auto"``: about ``AUTO_UPDATES`` updates per epoch, between 32 and 4096 rows (a power of
    two), and never so small that the O(k·d) update of every coordinate costs more than the batch's
    gradient (sparse, high-dimensional data)."""
    b = 1 << max(0, int(np.floor(np.log2(max(n // AUTO_UPDATES, 1)))))
    b = min(max(b, min_batch), AUTO_MAX_BATCH)
    b = max(b, int(np.ceil(k * (d + 1) / max(nnz_per_row * k, 1.0))))
    return int(min(b, n))


def wide_batch_size(b, n, d):
    """Dense data: at least ``d / WIDE_ROWS`` rows per batch (a power of two, at most ``AUTO_MAX_BATCH``). A
    batch of B standardized rows has curvature up to about (1 + sqrt(d / B))² where the data's is about 1, so
    below that the step noise, not the curvature, sets how close a constant rate can get (see docs/design.md,
    "Wide data")."""
    floor = 1 << int(np.ceil(np.log2(max(d / WIDE_ROWS, 1.0))))
    return int(min(max(b, min(floor, AUTO_MAX_BATCH)), n))


def _callbacks(callbacks):
    if callbacks is None:
        return ()
    return tuple(callbacks) if isinstance(callbacks, (list, tuple)) else (callbacks,)


def named_optimizer(name):
    """The registry object for an optimizer name, starting from the registry's ``start_lr``."""
    opt = get_optimizer(name, full_batch=True)
    return opt.set_params(lr=type(opt).start_lr)
