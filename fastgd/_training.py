"""The training loop: epochs over the batches in their order, averaging, and the stopping rules.

It takes validated inputs and the fit's plan (fastgd.estimator, fastgd._planning) and runs the compiled
epoch through ``_engine.Epochs``, made once per fit; it never copies X. Everything here is O(k·d) or O(n·k)
per epoch apart from the kernel calls, which read X in place:

* one epoch pass (``Epochs.run``: gradient, update, and the running mean of the iterates);
* one pass over a fixed *evaluation set* of batches (at most ``EVAL_ROWS`` rows: the held-out batches with
  early stopping, else a fixed random subset of the training batches, all of them on small data), which
  measures the exact objective of the epoch's model. Two nearby models compared on the same rows differ by
  far less than the sampling noise of either loss, so this paired comparison decides progress reliably at a
  few per cent of the cost of a full pass.

The stopping policy is ``_StoppingRules``; standardization is ``fastgd._scaling``, the page-cache hints for
a memmapped X ``fastgd._pagecache``.
"""

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal

from . import _engine, _rules, _stability, reference
from . import _pagecache, _scaling
from ._scaling import Scaling

DEFAULT_TOL = 1e-6  # LinearRegressor's tol (relative to the variance of y; the kept start's advice names it)
EVAL_ROWS = 65_536  # rows of the evaluation set (all rows when there are fewer than twice this)
MIN_AVG_UPDATES = 100  # an epoch with at least this many updates is averaged well enough to stop on a plateau
ROUND_UPDATES = 50  # progress is measured over rounds of whole epochs with at least this many updates
LR_SHRINK = 5.0  # the "adaptive" rule divides the rate by this on a plateau ...
MIN_LR_FRACTION = 1e-4  # ... and stops once it would fall below this fraction of its starting value
RISE_TOL = 1e-4  # an evaluation this much (of the variance of y) above the best so far is a rise, not noise
# on columns measured close to independent ones, a round that gains less than tol and at most this share of the round
# before ends the epochs (``_StoppingRules._settled``)
SETTLED_RATIO = 0.5
DIVERGE_FACTOR = 1e6  # an epoch whose mean loss exceeds this multiple of the data's scale has diverged
# early stopping warns where its best model's held-out loss exceeds this times the held-out rows' variance (a
# validation R² below -0.1: worse than their own mean by more than a fit without signal scores)
HELD_OUT_WORSE = 1.1
HELD_OUT_CHANCE = 10.0  # ... or by more than this many times its expected value by chance (_held_out_limit)
BLOCK_BYTES = 32 << 20  # shuffle=True visits contiguous blocks of about this many bytes of X (see block_shuffled_order)
LBFGS_PARALLEL_VALUES = 1 << 20  # L-BFGS evaluates on one thread below this many values of X (n·d·k)
SPREAD_SETTLED = 0.1  # train_pcg: a curvature spread that grew by at most this fraction in an iteration ...
SETTLED_ITERATIONS = 1  # ... this many iterations in a row has settled
# a full-batch pass over CSR X (FitData.whole) cuts its rows into batches summed in parallel, each into its own
# k·(d + 1) sums (zeroed, then added once per pass): at most this many ...
WHOLE_GROUPS = 16
WHOLE_NNZ_PER_SUM = 16  # ... and at least this many non-zeros of X per sum of those buffers (else fewer)
# train_pcg and train_lbfgs on CSR X: their vectors hold only the columns that can move when they are at most
# this fraction of all. Gathering the gradient and scattering the parameters for the kernels cost about 1 ns per
# kept column each, 20 of CG's elementwise NumPy passes in an iteration: 51 % kept at d = 2^20 made a default fit
# 15 % faster, 94 % at d = 2^18 45 % slower (7 % at d = 2^20: the CG 5.5x faster)
PCG_KEEP_FRACTION = 0.5
# the k·(d + 1) vectors of the sparse finish (start, r, p, z/u/A·p, the kernels' gradient, the preconditioner's
# two) that ``compact_problem`` shrinks to the stored columns: its copy of X's indices may take as much
COMPACT_VECTORS = 7
SNAPSHOT_BLOCK = 1 << 15  # values of a state slot copied by the epoch's snapshot, then tested while in cache
# train_pcg: a search direction whose curvature (its Rayleigh quotient pᵀAp / pᵀMp) is at most this fraction of
# the largest one met is flat to rounding: it lies in a rank-deficient design's null space, where A·p is rounding,
# and a step along it (α = rᵀz / pᵀAp) would throw θ far along a direction that leaves the objective unchanged
# (float64 resolves curvatures to a few hundred eps of the largest; see docs/design.md)
FLAT_CURVATURE = 1e-13
CLEAR_GAIN = 1e-9  # train_pcg: a stop on a settled small spread that gained less than this fraction of the start keeps it
# an objective below this fraction of the reference (the variance of y) fits y exactly, to rounding or to the
# tolerance of the solver that found it: a gain relative to it measures rounding, not progress
EXACT_FIT = 1e-8
# solve_dense: the row blocks of its one pass (float64 temporaries of at most this many bytes)
SOLVE_BLOCK_BYTES = 4 << 20
# newton_dense: the damping of its first step (relative to the standardized columns' second moments) and the damping
# past which no step lowering the objective exists (the point is stationary to rounding)
NEWTON_DAMP_START = 1e-12
NEWTON_DAMP_MAX = 1e12
# ... and a step whose first-order gain is below this fraction of the objective ends it: the rest is rounding
NEWTON_ROUNDING = 1e-14
# ... or this many steps in a row that each gain less than the caller's tolerance
NEWTON_PATIENCE = 3
# ... and its elementwise work per row and column of an iteration or a trial (newton_work), in operations
NEWTON_ROW_WORK = 30.0


# ----------------------------------------------------------------------------------------------------------
# batch order


def block_batches(Xk, batch_size):
    """Batches per block of the default order: about ``BLOCK_BYTES`` of X (a function of n, d, the dtype and
    the batch size only), at least one batch. Dense X: d * itemsize bytes per row; CSR: the mean bytes per
    row of its values and column indices."""
    if isinstance(Xk, tuple):
        data, indices, indptr, _ = Xk
        n = len(indptr) - 1
        row_bytes = len(data) * (data.itemsize + indices.itemsize) / max(n, 1)
    else:
        row_bytes = Xk.shape[1] * Xk.itemsize
    return max(1, int(round(BLOCK_BYTES / max(row_bytes, 1.0) / batch_size)))


def block_shuffled_order(train_ids, block_batches, rng):
    """The order in which a shuffled epoch visits ``train_ids``: disk-friendly for data that does not fit in
    memory (a memmap larger than the page cache, or the blocks of a dask array).

    Batch b belongs to block ``b // block_batches`` (contiguous rows, about ``BLOCK_BYTES`` of X). The
    blocks are visited in a random order and the batches inside each block in a random order, so an epoch
    reads X sequentially one block at a time (block by block, at disk speed) instead of seeking for every
    batch. Each batch still appears once per epoch and every permutation of the blocks and of the batches
    within them is equally likely; the only difference from a full shuffle is that batches of one block are
    consecutive. When all batches are in one block it is exactly ``rng.shuffle`` (the same draws as before).
    """
    order = np.array(train_ids, dtype=np.int64, copy=True)
    blocks = order // max(int(block_batches), 1)
    if len(order) == 0 or blocks.min() == blocks.max():
        rng.shuffle(order)
        return order
    uniq, inverse = np.unique(blocks, return_inverse=True)
    rank = rng.permutation(len(uniq))[inverse]  # the random position of each batch's block
    within = rng.random(len(order))  # a random order inside each block
    return order[np.lexsort((within, rank))]


# ----------------------------------------------------------------------------------------------------------
# the loop


@dataclass
class FitData:
    """The data and the fixed settings of one fit, as the kernels take them."""

    Xk: object  # dense array or CSR tuple
    Y: np.ndarray  # (n, k) float64
    sw: np.ndarray  # (n,) float64 or None
    batch_size: int
    kern: object  # kernel module
    backend: str
    n_threads: int
    fit_intercept: bool
    l1: float
    l2: float
    scaling: Scaling = None  # None: no standardization
    batch_weight: float = 0.0  # > 0: divide each batch's sums by this (unbiased: see _rules.finish_batch)
    block_batches: int = None  # batches per block of the shuffled order (None: ``block_batches(Xk, ...)``)
    path: int = _engine.K.PATH_AUTO  # the gradient path (tests and benchmarks force one)
    loss: tuple = None  # (code, param) of a loss of fastgd._rules.LOSSES; None: the squared error
    # a lazy Adam-family epoch may apply the l2 penalty only where a batch touches (fastgd._rules.lazy_kind),
    # frequency-weighted ("lazy updates" there)
    touch_l2: bool = False
    # partial_fit: the factors from the running statistics (a call's chunk is one piece of the stream: counted
    # within it, one-row chunks gave every column the factor 1, LazyAdam's own penalty)
    stream_factors: bool = False
    # CSR X, set by ``whole``: the columns that store a value in some row (a sorted index array), to which
    # train_pcg and train_lbfgs restrict their vectors (``_moved_columns``)
    stored_columns: np.ndarray = None

    def epoch_kernel(self, optimizer_code, hp, sched, stdz, avg, train_ids=None):
        """This fit's compiled epoch (``_engine.Epochs``; fastgd._dask: on the workers), made once per fit:
        ``.run(ts, order)`` runs one epoch over (a share of) ``train_ids``, the training batches (None: all),
        over which the frequency-weighted l2 penalty's factors are counted."""
        return _engine.Epochs(self.kern, self.Xk, self.Y, optimizer_code, hp, self.batch_size, sw=self.sw,
                              sched=sched, l1=self.l1, l2=self.l2, fit_intercept=self.fit_intercept,
                              n_threads=self.n_threads, path=self.path, stdz=stdz, avg=avg,
                              batch_weight=self.batch_weight, loss=self.loss, touch_l2=self.touch_l2,
                              l2_factors=self.l2_factors(optimizer_code, hp, sched, stdz, train_ids))

    def l2_factors(self, optimizer_code, hp, sched, stdz, train_ids=None):
        """The factors of the frequency-weighted l2 penalty (``_engine.l2_touch_factors`` over ``train_ids``)
        where this fit's epochs are lazy Adam-family ones that apply it (an l2 penalty on a CSR tuple in the
        standardized mode, ``touch_l2``); else None."""
        if not (self.touch_l2 and self.l2 != 0.0 and isinstance(self.Xk, tuple) and stdz is not None):
            return None
        s = _engine.no_schedule() if sched is None else sched
        kind = _rules.lazy_kind(optimizer_code, hp, True, self.l1, self.l2, _rules.constant_rate(s), True)
        if _rules.lazy_kind_of_loss(kind, _rules.SQUARED_ERROR if self.loss is None else int(self.loss[0])) \
                != _rules.LAZY_APPROX:
            return None
        if self.stream_factors and self.scaling.x_sparse is not None and self.scaling.weight > 0:
            return _engine.expected_touch_factors(self.scaling, self.batch_size)
        ids = np.arange(self.n_batches, dtype=np.int64) if train_ids is None else train_ids
        return _engine.l2_touch_factors(self.kern, self.Xk, self.batch_size, ids,
                                        None if self.sw is None else self.batch_weights())

    @property
    def n(self):
        return self.Y.shape[0]

    @property
    def n_batches(self):
        return _engine.n_batches(self.n, self.batch_size)

    def whole(self):
        """This data as the batches of a full-batch pass (L-BFGS and conjugate-gradient finishes, the strength
        path): its rows in one batch, or on CSR X (where a batch costs its non-zeros only) in up to WHOLE_GROUPS
        batches that the kernels sum in parallel, one group each (max_chunks bounds their buffers' bytes, and
        WHOLE_NNZ_PER_SUM makes the non-zeros outweigh zeroing and adding the buffers; where that leaves one
        batch, the kernels split its sums across threads instead). A function of the shape and the non-zeros
        only, never of the thread count: the sums are the same for any."""
        n = self.n
        groups = 1
        if isinstance(self.Xk, tuple):
            if self.stored_columns is None:
                self.stored_columns = stored_columns(self.Xk)
            indptr = self.Xk[2]
            nnz = int(indptr[-1] - indptr[0]) if len(indptr) else 0
            m = self.Y.shape[1] * (int(self.Xk[3]) + 1)
            groups = max(1, min(WHOLE_GROUPS, int(_rules.max_chunks(m)), nnz // (WHOLE_NNZ_PER_SUM * m),
                                n // _rules.CHUNK_ROWS))
        return replace(self, batch_size=max(-(-n // groups), 1))

    def targets(self, scale, outputs=None):
        """The targets a full-batch solver passes to the kernels with this data: Y / ``scale`` (per output; a
        copy of Y, O(n·k), not of X), or zeros where ``scale`` is None (the homogeneous objective, whose gradient
        is the Hessian's product); ``outputs``: a slice of the outputs (``scale`` then the whole (k,) vector).
        fastgd._dask's blocks hold their own y: there a marker the workers apply."""
        outputs = slice(None) if outputs is None else outputs
        if scale is None:
            return np.zeros((self.n, len(range(self.Y.shape[1])[outputs])))
        return np.ascontiguousarray(self.Y[:, outputs] / scale[outputs])

    def targets_loss(self, targets, loss):
        """``constant_loss`` of ``targets`` (``self.targets``'), with this data's sample weights."""
        return constant_loss(targets, self.sw, loss)

    def sample_rows(self, rows):
        """The listed rows of X as float64 (a copy of those rows only) and their sample weights (or None)."""
        return np.asarray(self.Xk[rows], dtype=np.float64), None if self.sw is None else self.sw[rows]

    def raw(self, theta, out=None):
        """``theta`` in the data's units (``theta`` itself without standardization; else into ``out`` if given)."""
        return theta if self.scaling is None else self.scaling.to_raw(theta, out)

    @property
    def penalized(self):
        return self.l1 != 0.0 or self.l2 != 0.0

    def objective(self, theta, batch_ids, penalized=True, raw=None, penalty=None):
        """Weighted mean loss over the listed batches (plus the penalty), at standardized ``theta`` (``raw``:
        ``self.raw(theta)`` when already at hand; ``penalty``: ``self.penalty(raw)`` when already at hand, an
        O(k·d) pass saved); and the weight."""
        raw = np.ascontiguousarray(self.raw(theta) if raw is None else raw)
        if self.Y is not None and not _any_nonzero(raw[:, :-1]):
            sse, W = self._constant_sums(raw[:, -1], batch_ids)  # no weights (the usual start): X is not read
        else:
            sse, W = self.kern.batches_loss(self.Xk, self.Y, _sw(self.sw), raw, self.batch_size, batch_ids,
                                            self.n_threads, loss=self.loss)  # no gradient sums: only the loss
        if penalized and penalty is None:
            penalty = self.penalty(raw)
        return (sse / W if W > 0 else np.nan) + (penalty if penalized else 0.0), W

    def _constant_sums(self, b, batch_ids):
        """(Σ s·loss, Σ s) over the listed batches of the constant prediction ``b``: batches_stats' sums without
        X, one batch at a time (memory O(batch_size·k)); without sample weights the whole batches of about
        EVAL_ROWS rows at once (one batch's rows per row of a block: the same sums, added in the same order,
        without a Python step per batch, which at batch_size=1 cost more than an epoch)."""
        sse = W = 0.0
        bs, n = self.batch_size, self.n
        code, param = (0, 0.0) if self.loss is None else self.loss
        ids = np.asarray(batch_ids, dtype=np.int64)
        step = max(1, EVAL_ROWS // bs) if self.sw is None else 1
        for c0 in range(0, len(ids), step):
            chunk = ids[c0:c0 + step]
            sums = np.empty(len(chunk))
            whole = (chunk + 1) * bs <= n if len(chunk) > 1 else np.zeros(len(chunk), dtype=bool)
            if whole.any():
                rows = chunk[whole, None] * bs + np.arange(bs)  # (batches, bs): one batch a row
                with np.errstate(over="ignore", invalid="ignore"):
                    v = reference.loss_value(b - self.Y[rows], reference.LOSSES[int(code)], param).sum(axis=2)
                sums[whole] = v.sum(axis=1)
                W += float(bs * int(np.count_nonzero(whole)))  # whole numbers: exact in any order
            for j in np.flatnonzero(~whole).tolist():
                lo, hi = int(chunk[j]) * bs, min((int(chunk[j]) + 1) * bs, n)
                with np.errstate(over="ignore", invalid="ignore"):
                    v = reference.loss_value(b - self.Y[lo:hi], reference.LOSSES[int(code)], param).sum(axis=1)
                s = None if self.sw is None else self.sw[lo:hi]
                sums[j] = float(v.sum()) if s is None else reference.vdot(s, v)
                W += float(hi - lo if s is None else s.sum())
            sse = float(np.cumsum(np.concatenate(([sse], sums)))[-1])  # batch after batch, as a loop would add
        return sse, W

    def penalty(self, raw, scratch=None):
        """l1·‖W‖₁ + ½·l2·‖W‖² of parameters in the data's units (the intercept column is not penalized).
        ``scratch``: a C-contiguous array of W's shape for the terms' |W| and W² (None: new ones; the same
        bits either way), which ``train`` takes from the lazy epoch's workspace: between epochs the workspace
        is held, and a new (k, d) array beside it raised the default sparse fit's peak (Numba: 3.9 to 4.3
        times the state)."""
        w = raw[:, :-1]
        total = 0.0  # a term whose coefficient is 0 is not computed (an epoch's evaluation would pass over W twice)
        with np.errstate(over="ignore", invalid="ignore"):  # huge but finite weights: the penalty says inf
            if self.l1 != 0.0:
                total += self.l1 * np.abs(w, out=scratch).sum()
            if self.l2 != 0.0:
                total += half_l2(self.l2, w, float(np.square(w, out=scratch).sum()))
        return total

    def gradient_norm(self, theta, batch_ids, raw=None):
        """Norm of the full gradient of the smooth objective in the data's units (the ``gtol`` rule)."""
        raw = np.ascontiguousarray(self.raw(theta) if raw is None else raw)
        G, _, W = self.kern.batches_stats(self.Xk, self.Y, _sw(self.sw), raw, self.batch_size, batch_ids,
                                          self.n_threads, loss=self.loss)
        d = raw.shape[1] - 1
        grad = (2.0 / W) * G.reshape(raw.shape)
        grad[:, :d] += self.l2 * raw[:, :d]
        if not self.fit_intercept:
            grad[:, d] = 0.0
        return math.sqrt(reference.vdot(grad, grad))

    def batch_weights(self):
        """The weight of every batch (rows, or the sum of their sample weights)."""
        bs, n = self.batch_size, self.n
        if self.sw is None:
            return np.minimum(bs, n - bs * np.arange(self.n_batches)).astype(np.float64)
        return np.add.reduceat(self.sw, np.arange(0, n, bs))

    def batch_rows(self, batch_ids):
        """The rows of the listed batches, batch by batch in their order (no Python step per batch: at
        batch_size=1 a list of n ranges cost about as much as ten epochs)."""
        ids = np.asarray(batch_ids, dtype=np.int64).reshape(-1)
        starts = ids * self.batch_size
        lengths = np.minimum(self.batch_size, self.n - starts)
        ends = np.cumsum(lengths)
        return np.arange(ends[-1] if len(ends) else 0, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)

    def target_variance(self, batch_ids):
        """Weighted variance of the targets over the listed batches, summed over outputs (the loss of the
        best constant): the unit in which ``tol`` measures progress. With another loss: that loss of the
        constant mean of the targets (see ``constant_loss``)."""
        rows = self.batch_rows(batch_ids)
        Y = self.Y[rows]
        w = None if self.sw is None else self.sw[rows]
        if w is not None and not w.sum() > 0:
            return 0.0
        return constant_loss(Y, w, self.loss)


def _one_value(problem, batch_ids):
    """Whether, in every output, the targets of the listed batches' rows of weight that counts (more than
    float64's epsilon times the largest: a lighter row is below the rounding of every weighted sum) are one
    value to rounding: their range at most CONSTANT_SPREAD times their largest |value|. One weight 1e300 times
    the others is one such row: the weighted variance is rounding (3e-30 on y of about 10), and an epoch's
    1.6e-18 had "diverged ... please report it". False where the targets are not in memory (dask: they live on
    the workers, and a fit sees all its rows, never a one-row chunk)."""
    if problem.Y is None:
        return False
    rows = problem.batch_rows(batch_ids)
    Y = problem.Y[rows]
    if problem.sw is not None:
        w = problem.sw[rows]
        top = float(np.max(w)) if w.size else 0.0
        Y = Y[w > top * np.finfo(np.float64).eps] if top > 0 else Y[:0]
    if not len(Y):
        return True
    top = np.max(np.abs(Y), axis=0)
    return bool(np.all(np.ptp(Y, axis=0) <= _scaling.CONSTANT_SPREAD * top))


def tol_unit(squared):
    """The unit in which ``tol`` measures progress (``FitData.target_variance``), in words: the variance of y for
    the squared error, the loss of the constant mean of y for another loss."""
    return "the variance of y" if squared else "the loss of the constant mean of y"


def stored_columns(Xk):
    """The columns of the CSR tuple ``Xk`` that store a value in some row, sorted: one pass over its indices."""
    indices, indptr, d = Xk[1], Xk[2], int(Xk[3])
    seen = np.zeros(d, dtype=bool)
    if len(indptr):
        seen[indices[indptr[0]:indptr[-1]]] = True
    return np.flatnonzero(seen)


def constant_loss(Y, w, loss):
    """The weighted mean loss, summed over outputs, of predicting the targets' weighted mean: the variance for
    the squared error, the loss's own scale of the data for another (the scale of progress and divergence)."""
    mean = np.average(Y, axis=0, weights=w)
    return float(np.average(constant_deviations(Y, mean, loss), axis=0, weights=w).sum())


def constant_deviations(Y, m, loss):
    """Each row's loss, per output, of predicting the constants ``m`` (k,) for the targets ``Y`` (n, k):
    (y − m)² for the squared error (``loss`` None), else the loss's own value of the residual m − y."""
    if loss is None:
        return np.square(Y - m)
    return reference.loss_value(m - Y, reference.LOSSES[int(loss[0])], loss[1])


# the losses whose objective has a continuous gradient (None: the squared error)
SMOOTH_LOSSES = (None, _rules.HUBER, _rules.SQUARED_EPSILON_INSENSITIVE)


def check_lbfgs_loss(loss):
    """Refuse L-BFGS for a loss with a kink in its value (epsilon_insensitive, quantile): its gradient jumps
    there, so the curvature pairs and the Wolfe line search that L-BFGS relies on fail near the optimum,
    which lies on the kinks (a linear program's vertex), and it stalls short of it."""
    if loss is not None and int(loss[0]) not in SMOOTH_LOSSES:
        name = reference.LOSSES[int(loss[0])]
        raise ValueError(f"optimizer='lbfgs' needs a smooth objective, and loss={name!r} has a kink where its "
                         f"gradient jumps (L-BFGS stalls there); use it with loss='squared_error', 'huber' or "
                         f"'squared_epsilon_insensitive', or keep a first-order optimizer (the default 'adam', whose "
                         f"averaged iterates and decaying rate converge on a kink) with loss={name!r}")


def _sw(sw):
    return _engine.EMPTY if sw is None else sw


def _constant_or_copy(a):
    """A copy of ``a``, or its one value (a 0-d array, restored by broadcasting) when every element has the same
    bits (a fresh model or optimizer state): a snapshot of the start costs no O(d) memory then."""
    if a.size and a.dtype == np.float64:
        bits = a.reshape(-1).view(np.uint64)
        if np.all(bits == bits[0]):
            return a.reshape(-1)[:1].reshape(()).copy()
    return a.copy()


def _compact_snapshot(ts):
    """``ts.snapshot()`` for ``ts.restore``, with constant arrays (each state slot apart) kept as one value."""
    state = ts.state
    slots = [_constant_or_copy(row) for row in state] if state.ndim == 2 else None
    if slots is not None and all(s.ndim == 0 for s in slots):
        state = np.array([float(s) for s in slots]).reshape(-1, 1) if slots else state.copy()
    else:
        state = state.copy()
    return _constant_or_copy(ts.theta), state, ts.scalars.copy()


def _snapshot_into(ts, bufs, written=None, theta=True):
    """``ts.snapshot()`` copied into ``bufs`` (a previous result of this function, or None: new buffers), for
    ``ts.restore``. A state slot whose values are all one value (bit for bit: a slot the optimizer does not
    write, such as Adam's without amsgrad) is kept as that value, not as a k·(d + 1) copy. ``written``: the
    number of leading slots the rule writes (None: all); a later slot already in ``bufs`` is kept as it is.
    ``theta`` False: the parameters are not copied (the snapshot holds ``ts.theta`` itself), for a caller that
    writes the model to keep into ``ts.theta`` after every restore."""
    return _checked_snapshot_into(ts, bufs, written, theta)[0]


def _checked_snapshot_into(ts, bufs, written=None, theta=True):
    """``(_snapshot_into(...), finite)``: ``finite`` says whether every value of the written slots is, tested
    block by block as they are copied (the test reads what was just written, from cache: one pass over the
    state from memory, not two)."""
    if bufs is None:
        bufs = (np.empty_like(ts.theta) if theta else ts.theta), [None] * len(ts.state), np.empty_like(ts.scalars)
    theta_buf, slots, scalars = bufs
    if theta_buf is not ts.theta:
        np.copyto(theta_buf, ts.theta)
    np.copyto(scalars, ts.scalars)
    finite = True
    for i, row in enumerate(ts.state):
        if written is not None and i >= written and slots[i] is not None:
            continue  # unchanged since the earlier epoch's snapshot: no copy, no scan
        if slots[i] is not None and slots[i].ndim == 1:
            finite = _copy_finite(slots[i], row) and finite  # a buffer made in an earlier epoch: reused
            continue
        if _all_one_value(row):
            slots[i] = row[:1].reshape(()).copy()
        else:
            slots[i] = row.copy()
        finite = finite and (written is not None and i >= written or _engine.all_finite(slots[i]))
    return (theta_buf, slots, scalars), finite


def _copy_finite(dst, src):
    """Copy the 1-D ``src`` into ``dst`` in blocks; whether every value is finite (``_engine.all_finite`` of each
    block just written, while it is in cache)."""
    finite = True
    for i in range(0, src.size, SNAPSHOT_BLOCK):
        block = dst[i:i + SNAPSHOT_BLOCK]
        np.copyto(block, src[i:i + SNAPSHOT_BLOCK])
        finite = finite and _engine.all_finite(block)
    return finite


def _any_nonzero(w):
    """Whether any value of the (k, d) ``w`` is non-zero (or NaN), block by block: a trained model answers in
    its first block, not after a pass over all d."""
    return any(bool(np.any(w[:, s])) for s in _blocks(w.shape[1]))


def half_l2(l2, w, squares):
    """½·l2·‖w‖² of the (k, d) weights ``w`` in the data's units, given ``squares``, ‖w‖² as the caller summed it
    (with overflow ignored). Where that overflowed, the squares are summed again in units of a power of two at
    the largest |w|, which scales them exactly: in the units of X near float64's underflow check the weights
    are about 1e154 and their squares overflow, where the penalty (l2 about X's scale squared) does not."""
    if math.isfinite(squares) or l2 == 0.0:
        return 0.5 * l2 * squares
    top = max(-float(np.min(w)), float(np.max(w)))
    if not math.isfinite(top):
        return 0.5 * l2 * squares
    unit = math.ldexp(1.0, math.frexp(top)[1] - 1)  # in (top / 2, top] (finite); at least 1 here (no underflow)
    scaled = np.divide(w, unit)
    return l2 * unit * unit * (0.5 * float(np.square(scaled, out=scaled).sum()))


def _all_one_value(a):
    """Whether the 1-D float64 array ``a`` holds one value, bit for bit (blocks: no temporary of its size)."""
    bits = a.view(np.int64)
    return all(np.all(bits[s] == bits[0]) for s in _blocks(bits.size)) if bits.size else True


def _call_back(callbacks, info, ts, start):
    """Call every callback; True when one returns True (only the bool: a truthy "no" or 1 is not a request to
    stop, and warns). A callback that raises leaves the model at its start."""
    stop = False
    for callback in callbacks:
        try:
            said = callback(info)
        except BaseException:
            ts.restore(start)
            raise
        if isinstance(said, (bool, np.bool_)):
            stop = stop or bool(said)
        elif said is not None:
            warnings.warn(f"The callback {getattr(callback, '__name__', callback)!r} returned {said!r} "
                          f"({type(said).__name__}): only True stops training, so training goes on; return "
                          f"True to stop, None to continue.", UserWarning, stacklevel=5)
    return stop


def sentence(text):
    """``text`` with its first letter in upper case and the rest as written (str.capitalize lowers the rest:
    "standardize=true", "tol=none")."""
    return text[:1].upper() + text[1:]


def kept_start_fix(chose, max_iter, tol):
    """What lets the epochs improve on a start they kept: more of them, under the adaptive rate rule, which
    lowers its rate where a round does not improve by ``tol`` (with tol=None it never does: then tol too,
    the setting the user changed); a lower rate only where the user chose the rate (``chose``:
    ``Settings.user_chose``, None: all)."""
    more = f"set max_iter above {max_iter}"
    if chose is None or "learning_rate" in chose:
        return f"lower the learning rate or {more}"
    if tol is None:  # the library's adaptive rate
        more = (f"set tol (the default is {DEFAULT_TOL:g}; with tol=None the adaptive learning rate never lowers "
                f"itself) and {more}")
    return more


@dataclass
class Settings:
    """How to train: the optimizer, the rate rule and the stopping rules (validated by the estimator)."""

    optimizer: object
    lr: float
    sched: np.ndarray
    adaptive: bool
    average: bool
    max_iter: int
    tol: float = None
    n_iter_no_change: int = 2
    gtol: float = None
    shuffle: bool = True
    verbose: int = 0
    penalized_eval: bool = True  # judge progress by the objective (False: by the plain MSE, early stopping)
    report_objective: bool = True  # losses include the penalty (False: the mean loss alone, as the reference)
    callbacks: tuple = ()  # called after every epoch with an EpochInfo; returning True stops training
    # which of "learning_rate", "optimizer", "standardize" the user set: messages advise changing only those
    # (None: all of them, as for direct calls of the loop)
    user_chose: frozenset = None
    auto_penalty: bool = False  # the penalty is penalty="auto"'s (the user set no alpha to lower)
    named_optimizer: bool = False  # the optimizer was given by name (the default rate rule may lower its rate)
    alpha: float = None  # the penalty's strength as the user set it (None: the l2 part is the strength)
    # an exact full-batch finish follows epochs that stop at the best evaluated objective f when handover(f) is not
    # None: it is the averaged steps' noise floor (an excess in the objective's units), which the finish removes;
    # the rounds then stop once their gains show the epochs at it (``_StoppingRules._hand_over``)
    handover: object = None
    # a callable telling whether the columns are measured close to independent ones (a sample of rows), where gains
    # that shrink at least geometrically end the epochs after one round below tol (``_StoppingRules._settled``);
    # None: the tol rule's rounds only
    settled: object = None


@dataclass
class Outcome:
    n_iter: int = 0
    losses: list = field(default_factory=list)
    eval_losses: list = field(default_factory=list)
    converged: bool = False
    interrupted: bool = False
    best_eval: float = np.inf
    start_eval: float = np.nan
    warning: str = None  # a ConvergenceWarning to give the user (the real cause and the fix)
    stopped: bool = False  # a callback asked to stop
    start_kept: bool = False  # no epoch improved on the start, which was kept (``warning`` says so)
    by_gtol: bool = False  # the gtol rule ended the epochs
    handed_over: bool = False  # the epochs stopped at the averaged steps' noise floor for the finish (handover)
    data_loss: float = np.nan  # the last epoch's mean loss without the penalty: each batch's before its update
    by_torch_tol: bool = False  # train_lbfgs: torch's tolerances stopped its steps from moving the model
    n_shrinks: int = 0  # times the adaptive rule divided the rate
    stop_reason: str = None  # why training ended, in words (LinearRegressor.stop_reason_)
    spread: float = np.nan  # train_pcg: the curvature spread its iterations measured (a lower bound)
    # the warning is early stopping's about its held-out rows (the start kept, or a model worse than their mean),
    # which the exact check of small data (_shortfall.early_stopping_shortfall) replaces with what it measured
    held_out_warning: bool = False
    # train(hold_workspace=True): the lazy epoch's workspace, for the next call's train to adopt (partial_fit)
    workspace: np.ndarray = field(default=None, repr=False)


@dataclass
class EpochInfo:
    """What a callback receives after every epoch (``LinearRegressor(callbacks=...)``); ``fastgd.EpochInfo``.

    Attributes: ``epoch`` (epochs completed, counting earlier partial_fit calls), ``loss`` (the training
    objective seen during the epoch, as in ``loss_curve_``), ``eval_loss`` (the objective on the evaluation
    set after this epoch's round, as in ``eval_loss_curve_``; None when the epoch ended no round),
    ``learning_rate``, ``step`` (optimizer updates so far), ``elapsed`` (seconds since training started),
    ``coef`` ((n_outputs, n_features), the epoch's model in the data's units, a copy) and ``intercept``
    ((n_outputs,)).
    """

    epoch: int  # epochs completed, counting earlier partial_fit calls
    loss: float  # training objective seen during the epoch (as in loss_curve_)
    eval_loss: float  # objective on the evaluation set after this epoch's round (None when not evaluated)
    learning_rate: float
    step: int  # optimizer updates so far
    elapsed: float  # seconds since training started
    coef: np.ndarray  # (n_outputs, n_features) the epoch's model in the data's units (a copy)
    intercept: np.ndarray  # (n_outputs,)


class Diverged(ValueError):
    pass


AUTO_PENALTY_CURVATURE = 1e6  # penalty="auto"'s curvature (per unit of a column's) named as a divergence's cause
ADAPTIVE_OPTIMIZERS = ("adagrad", "rmsprop", "adam", "adamw", "adamax", "nadam", "adadelta")


def _with_lr(opt, lr):
    """The optimizer as the fit ran it: its repr with the rate in use, not the object's own ``lr`` (a name's
    registry object starts from ``start_lr``; the learning_rate parameter or the adaptive rule set the rate)."""
    defaults = inspect.signature(type(opt).__init__).parameters
    other = [f"{k}={v!r}" for k, v in opt.get_params().items() if k != "lr" and v != defaults[k].default]
    return f"{type(opt).__name__}({', '.join([f'lr={lr:g}'] + other)})"


def _divergence_advice(settings, problem, start_loss=0.0, lr=None):
    """The fixes for a diverged fit that are true for it: only settings the user chose, never one in use; for a
    gradient step (SGD, momentum, Nesterov) with standardization, the curvature that made the rate ``lr`` (the
    one in use) unstable, and the value of the setting that keeps it stable (``fastgd._stability``)."""
    chose = settings.user_chose
    lr = settings.lr if lr is None else lr
    if not np.isfinite(start_loss):  # nothing in the steps can fix a start whose loss overflows
        return ("The starting point's loss is not finite: pass a smaller coef_init/intercept_init, or "
                "warm_start=False.")
    tips = []
    parts = _stability.step_parts(settings.optimizer, problem)
    if parts is not None:
        tips += _unstable_step_tips(settings, problem, lr, *parts)
    elif problem.l2 > 0 and not settings.auto_penalty:  # the user's penalty: its curvature grows with alpha
        tips.append(f"lower alpha (the penalty's l2 part is {problem.l2:g})")
    if problem.l2 > 0 and settings.auto_penalty and problem.scaling is not None:
        # penalty="auto"'s strength is in units of X's median column (X times a constant changes nothing), so
        # its curvature in the standardized coordinates is large only on a column in far smaller units: given
        # the median column's units, it is as at unit scale
        from ._select import auto_unit
        squares = np.square(problem.scaling.x_scale)
        curv = problem.l2 / squares
        j = int(np.argmax(curv))
        unit = auto_unit(problem.scaling, problem.fit_intercept)
        if curv[j] > AUTO_PENALTY_CURVATURE and _steps_follow_with(settings, problem, lr, squares,
                                                                   curv > AUTO_PENALTY_CURVATURE, unit):
            many = int(np.count_nonzero(curv > AUTO_PENALTY_CURVATURE))
            factor = math.sqrt(unit / float(squares[j]))
            tips.append(f"multiply X's column {j} by {factor:.3g} (its values are so small beside the median "
                        f"column's that penalty='auto''s l2 strength, {problem.l2:g}, is {curv[j]:.3g} times its "
                        f"standardized curvature" + (f"; {many} columns are such, each to be put in the median "
                                                     f"column's units" if many > 1 else "") + ")")
    wd = float(getattr(settings.optimizer, "weight_decay", 0.0) or 0.0)
    if wd > 0 and (chose is None or "optimizer" in chose):  # torch's weight decay: the user's optimizer object
        tips.append(f"lower the optimizer's weight_decay (now {wd:g})")
    if (chose is None or "learning_rate" in chose) and not any("learning rate" in tip for tip in tips):
        tips.append(f"lower the learning rate (now {lr:g})")
    if chose is not None and "learning_rate" in chose and settings.named_optimizer and not settings.adaptive \
            and settings.optimizer.name in _stability.GRADIENT_STEPS:
        # the default rate rule starts a named gradient step within what this data's curvature allows and, where
        # an epoch still diverges, resumes from the best model at a lower rate (_Loop._retry)
        tips.append("leave learning_rate='adaptive' (the default), which starts this optimizer at a rate its "
                    "steps can follow on this data and lowers it where they diverge")
    if problem.scaling is None and (chose is None or "standardize" in chose):
        tips.append("set standardize=True (the default) so the steps fit the data's scales")
    if (chose is None or "optimizer" in chose) and settings.optimizer.name not in ADAPTIVE_OPTIMIZERS:
        tips.append("use an adaptive optimizer such as 'adam' (the default)")
    if not tips:
        return ("This fit uses fastgd's default learning rate, optimizer and standardization, which should not "
                "diverge on finite data: please report it with the data (or its shape and value ranges).")
    return sentence(", ".join(tips[:-1]) + (", or " if len(tips) > 1 else "") + tips[-1]) + "."


def _steps_follow_with(settings, problem, lr, squares, scaled, unit):
    """Whether a gradient step at rate ``lr`` would be stable by _unstable_step_tips' measures once X's columns
    ``scaled`` (a mask; ``squares``: the columns' scales squared) are put in the median column's units
    (``unit``, their scale squared then): a tip to rescale them is a fix only then. True where the measures are
    unknown (an adaptive optimizer's steps: no curvature bound)."""
    gains = _stability.step_gains(settings.optimizer)
    noise = None if gains is None else _stability.noise_curvature(problem)
    if noise is None:
        return True
    smallest = min(float(np.min(squares[~scaled])) if not scaled.all() else unit, unit)
    wd = float(getattr(settings.optimizer, "weight_decay", 0.0) or 0.0)
    steady = gains[1] * (problem.l2 * _stability.unit_gain(problem) / smallest + wd)
    return _steps_stable(lr, gains[0] * noise, steady, gains[1] * (_stability.row_curvature(problem) or 0.0))


def _steps_stable(lr, noise, steady, data):
    """The measures of a stable gradient step (per unit of rate, with the optimizer's gains): the batches'
    curvature noise and the penalty's curvature within STABLE_STEP, the data's trace bound within twice it."""
    limit = _stability.STABLE_STEP
    return lr * (noise + steady) <= limit and lr * data <= 2.0 * limit


def _unstable_step_tips(settings, problem, lr, noise, steady):
    """The fixes of ``_divergence_advice`` for a gradient step whose rate ``lr`` meets the batches' curvature
    noise ``noise`` and the penalty's curvature ``steady`` (per unit of rate, with the optimizer's gains): each
    names a value that brings lr·(noise + steady) to ``STABLE_STEP``, and only where that setting is the
    user's; alpha only where the penalty's curvature alone is past it and the noise is well inside."""
    chose, limit = settings.user_chose, _stability.STABLE_STEP
    tips = []
    # the data's own top curvature is not known without passes over X; its bound, the Hessian's trace (the rows'
    # mean curvature T, from the column statistics), makes a named rate one that holds: the noise and penalty
    # bounds alone named rates that still diverged (diabetes, SGD: 1.6 where 0.25 is the limit)
    gain = _stability.step_gains(settings.optimizer)[1]  # how much less curvature the optimizer can follow
    data = gain * (_stability.row_curvature(problem) or 0.0)
    if _steps_stable(lr, noise, steady, data):
        return tips
    if chose is None or "learning_rate" in chose:
        tips.append(f"lower the learning rate (now {lr:g}) to {limit / (noise + steady + data):.2g} or less, which "
                    f"keeps this optimizer's steps stable on this data, batch size and penalty")
    # the penalty's share of the steady curvature, without the optimizer's weight decay
    pen_only = steady - gain * float(getattr(settings.optimizer, "weight_decay", 0.0) or 0.0)
    steady = steady + data  # what a penalty or batch size cannot change bounds what they can fix
    if problem.l2 > 0 and not settings.auto_penalty and lr * pen_only > limit / 2 and lr * noise < limit / 2 \
            and lr * (steady - pen_only) < limit:
        # the user's penalty: its curvature (largest for the column in the smallest units) is what the rate
        # cannot follow, and the strength that brings it within the limit keeps the rate
        room = (limit / lr - noise - (steady - pen_only)) / pen_only
        if room > 0.0:  # else the optimizer's weight decay leaves none (named below)
            tips.append(f"lower alpha to {room * _alpha_of(settings, problem):.2g} or less (the penalty's l2 "
                        f"part, {problem.l2:g}, is a curvature of up to {_stability.penalty_curvature(problem):.3g} "
                        f"in the standardized coordinates, more than this rate can follow)")
    n, b = problem.n, min(problem.batch_size, problem.n)
    if (chose is None or "batch_size" in chose) and lr * noise > limit / 2 and lr * steady < limit and b < n:
        # the batches' noise is the cause: the batch size whose noise (T·(n − b)/(b(n − 1))) fits the room left
        room = limit / lr - steady
        T = noise * b * (n - 1) / (n - b)
        need = int(np.ceil(T * n / (room * (n - 1) + T)))
        if b < need <= n:
            tips.append(f"raise batch_size (now {b}) to {need} or more (smaller batches are too noisy for this "
                        f"rate)")
    return tips


def _alpha_of(settings, problem):
    """The user's alpha behind the problem's l2 part (elasticnet's share: l2 = alpha·(1 − l1_ratio))."""
    return settings.alpha if settings.alpha is not None else problem.l2


_is_interrupt = _engine.is_interrupt


class _FitProgress:
    """One tqdm bar over the whole fit (verbose, tqdm installed, epochs in more than one piece: data over
    ``BLOCK_BYTES``), made when first needed and counting rows across epochs; its total is known only when
    no stopping rule can end the fit early."""

    def __init__(self, settings, problem, epochs, may_stop):
        self.on, self.bar = bool(settings.verbose), None
        self.total = None if may_stop else problem.n * epochs

    def get(self, n_pieces, epoch):
        if not self.on or n_pieces < 2:
            return None
        if self.bar is None:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                self.on = False
                return None
            self.bar = tqdm(total=self.total, unit="rows", unit_scale=True, leave=False)
        self.bar.set_description(f"epoch {epoch}")
        return self.bar

    def write(self, line):
        print(line) if self.bar is None else self.bar.write(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _epoch_in_pieces(kernel, problem, ts, order, bb, settings, n_done, file_range=None, seg=1, progress=None):
    """One epoch, run block by block when a progress bar is shown or X is a memmapped file (then the next
    block is prefetched while one is trained on); data in memory (one block) goes in pieces of ``seg``
    batches for the bar. The same updates as one call: the kernel's state, step count and running mean carry
    over between calls; only the loss is summed in another order."""
    blocks = order // bb
    if settings.verbose and file_range is None and len(order) and blocks.min() == blocks.max():
        blocks = np.arange(len(order)) // max(seg, 1)  # pieces for the progress bar only
    cuts = np.flatnonzero(blocks[1:] != blocks[:-1]) + 1
    bar = None if progress is None else progress.get(len(cuts) + 1, n_done + 1)
    if bar is None and (file_range is None or len(cuts) == 0):
        return kernel.run(ts, order)
    weights = problem.batch_weights()
    bs, n = problem.batch_size, problem.n
    starts = np.r_[0, cuts]

    def rows_of(j):
        b = int(blocks[starts[j]])
        return b * bb * bs, min((b + 1) * bb * bs, n)

    loss_sum, weight_sum, finite = 0.0, 0.0, True
    pending = {}
    try:
        for j, piece in enumerate(np.split(order, cuts)):
            if file_range is not None:  # this block (first) and the next PREFETCH_BLOCKS ones, in the background
                ahead = _pagecache.PREFETCH_BLOCKS
                for a in range(j if j == 0 else j + ahead, min(j + ahead + 1, len(starts))):
                    pending[a] = _pagecache.prefetch_async(file_range, rows_of(a))
                try:
                    pending.pop(j).result()  # wait until this block is in memory
                except Exception:  # noqa: BLE001 -- prefetching is only a hint; the kernel reads the pages anyway
                    pass
            loss, ok = kernel.run(ts, piece)
            if file_range is not None:
                _pagecache.release(file_range, rows_of(j))
            w = float(weights[piece].sum())
            if w > 0:
                loss_sum += loss * w
                weight_sum += w
            finite = finite and ok
            if bar is not None:
                bar.update(int(np.minimum((piece + 1) * bs, n).sum() - np.minimum(piece * bs, n).sum()))
    finally:
        for fut in pending.values():
            fut.cancel()
    return (loss_sum / weight_sum if weight_sum > 0 else np.nan), finite


class _StoppingRules:
    """The stopping policy of one ``train`` call, rule by rule: divergence, the gradient norm (``gtol``),
    progress judged on the evaluation set over rounds (``tol``, ``n_iter_no_change``), the adaptive rate,
    and at the end the model to keep (the best evaluated one, never one worse than the start).

    ``lr`` is the rate of the next epoch (the adaptive rule divides it). With an evaluation set
    (``evaluating``) the start is measured first: ``out.start_eval``, and ``f_ref``, the loss of the best
    constant, the unit of ``tol``."""

    def __init__(self, problem, ts, settings, out, eval_ids, keep_best, averaged, round_epochs, start_theta):
        self.problem, self.settings, self.out, self.eval_ids = problem, settings, out, eval_ids
        self.keep_best, self.averaged, self.round_epochs = keep_best, averaged, round_epochs
        self.train_ids = None  # the training batches (train sets them), which a held-out rise is measured on
        self._train_limit = None  # without an evaluation set: the training loss that has exploded (measured once)
        self._limit_of = "these rows"  # what that limit's loss of the best constant was measured on, in words
        self.lr = settings.lr
        self.no_change = 0
        self.evaluating = eval_ids is not None and len(eval_ids) > 0
        if self.evaluating:
            out.start_eval = problem.objective(ts.theta, eval_ids, settings.penalized_eval)[0]
            # the handover rule's: the last round's objective and gain
            self.prev_f, self.prev_gain = out.start_eval, None
            f_ref = problem.target_variance(eval_ids)
            if not f_ref > 0:
                f_ref = out.start_eval if out.start_eval > 0 else 1.0
            self.f_ref = f_ref
            # the start's model is the start snapshot's (no copy); later best models go into one owned buffer
            self.best_eval, self.best_theta, self._best_buffer = out.start_eval, start_theta, None
            # divergence is judged against the data's scale (the loss of the best constant), or the start's loss
            # when that is larger: a start at the optimum of noise-free data has a loss near zero (y near float64's
            # limit: the threshold overflows to inf, and only a non-finite loss diverges)
            with np.errstate(over="ignore"):
                self.diverge_at = DIVERGE_FACTOR * max(out.start_eval, f_ref)
            # rows whose targets are one value to rounding (one row of positive weight): the losses are rounding
            # (the start's 9e-28, an epoch's 2e-14, two outputs in huber's units), no scale, as in
            # _training_limit: only a non-finite loss diverges (the best model is kept either way)
            if _one_value(problem, eval_ids):
                self.diverge_at = np.inf

    def check_diverged(self, loss, finite, epoch_number, ts, start, may_retry=False):
        """Divergence: the weights or the optimizer state not finite, or the loss not finite or exploded.
        Restores the start; then, when the rate is the fit's own (``may_retry``: ``_retry``), resumes at a
        lower one and returns True; else raises ``Diverged`` with the cause and the fixes true for this fit."""
        out = self.out
        exploded = loss > self.diverge_at if self.evaluating else loss > self._training_limit()
        if finite and np.isfinite(loss) and not exploded:
            return False
        ts.restore(start)
        if may_retry and self._retry(ts, epoch_number):
            return True
        lowered = (f", lowered from {self.settings.lr:g} by this fit" if self.lr < self.settings.lr else "")
        raise Diverged(
            f"Training diverged in epoch {epoch_number}: "
            + ("the weights or the optimizer state are no longer finite" if not finite else
               "the loss is no longer finite" if not np.isfinite(loss) else
               f"the loss rose to {loss:.3g} from {out.start_eval:.3g}" if self.evaluating else
               f"the training loss rose to {loss:.3g}, more than {DIVERGE_FACTOR:g} times the loss of the best "
               f"constant on {self._limit_of} ({self._training_limit() / DIVERGE_FACTOR:.3g})")
            + f" (optimizer={_with_lr(self.settings.optimizer, self.lr)}{lowered}). The model was restored to its "
            + "starting point. "
            + _divergence_advice(self.settings, self.problem, out.start_eval if self.evaluating else 0.0, self.lr))

    def _training_limit(self):
        """Without an evaluation set (partial_fit's calls): the epoch's training loss (measured as its batches
        are fitted) above which it has exploded, DIVERGE_FACTOR times the loss of the best constant on the
        training batches (inf where that is zero or unknown: only a non-finite loss diverges then). Measured
        once; Y only is read.

        Rows whose targets are one value to rounding (a one-row chunk, equal targets) give that constant a loss
        of zero or of rounding, no scale: one weighted row's weighted mean differs from its target in the last
        bit, a "best constant" loss of 4.9e-32, so any loss "diverged" (one-row weighted partial_fit calls
        raised). Such rows count as zero. With the squared error and running statistics (partial_fit's
        standardization: every target the stream has shown), their variance is the scale where it is larger:
        a chunk is one piece of the stream, and its own spread can be far smaller than the stream's."""
        if self._train_limit is None:
            ids = self.train_ids
            problem = self.problem
            ref = problem.target_variance(ids) if ids is not None and len(ids) else 0.0
            if ref > 0 and _one_value(problem, ids):
                ref = 0.0
            sc = problem.scaling
            stream = 0.0
            if problem.loss is None and sc is not None and sc.y_var is not None:
                # each output's running variance, zero where it is rounding next to its mean (the stream's
                # targets one value so far: 0.1 fifty times has a variance of 7.7e-34, no scale)
                var = np.asarray(sc.y_var, dtype=np.float64)
                mean = sc.y_raw_mean if sc.y_raw_mean is not None else sc.y_mean
                floor = _scaling.constant_floor(np.array(mean, dtype=np.float64))
                stream = float(np.sum(np.where(var > np.square(floor), var, 0.0)))
            if stream > ref:
                ref = stream
                self._limit_of = "every target seen so far (the running statistics)"
            with np.errstate(over="ignore"):
                self._train_limit = DIVERGE_FACTOR * ref if ref > 0 else np.inf
        return self._train_limit

    def _retry(self, ts, epoch_number):
        """A divergence under the fit's own rate (the default learning_rate, not a rate the user chose): as the
        adaptive rule answers a rise, resume from the best model so far (the optimizer state restarted) at a
        rate LR_SHRINK times lower, while that stays above MIN_LR_FRACTION of the start. Whether it resumed."""
        settings = self.settings
        own = settings.adaptive and settings.user_chose is not None and "learning_rate" not in settings.user_chose
        if not (own and self.evaluating and np.isfinite(self.out.start_eval)
                and self.lr / LR_SHRINK >= settings.lr * MIN_LR_FRACTION):
            return False
        self.lr /= LR_SHRINK
        self.out.n_shrinks += 1
        if self.keep_best:
            ts.theta[...] = self.best_theta
        if settings.verbose:
            print(f"-- the loss diverged in epoch {epoch_number}: learning rate now {self.lr:.3g}, from the best "
                  f"model so far")
        return True

    def gradient_small(self, model, train_ids, raw=None):
        """The ``gtol`` rule: stop when the norm of the full training gradient falls below gtol."""
        gtol = self.settings.gtol
        if gtol is None or not self.problem.gradient_norm(model, train_ids, raw) < gtol:
            return False
        self.out.converged = True
        self.out.stop_reason = f"the norm of the training gradient fell below gtol={gtol:g}"
        self.out.by_gtol = True
        return True

    def evaluate(self, model, raw=None, penalty=None):
        """The objective of the round's model on the evaluation set (recorded in ``eval_loss_curve_``;
        ``raw``, ``penalty``: as ``FitData.objective``)."""
        f = self.problem.objective(model, self.eval_ids, self.settings.penalized_eval, raw, penalty)[0]
        self.out.eval_losses.append(float(f))
        return f

    def judge_round(self, f, model, ts, stop, owner=None):
        """The end of a round, its model evaluated to ``f``: keep the best, and apply the ``tol`` rule (stop
        after ``n_iter_no_change`` rounds without progress) and the adaptive rate rule. Returns whether to
        stop. ``owner``: the array behind ``model`` (a view of it), which the caller gives up if ``model``
        becomes the best: it is then kept as it is, not copied, and ``self.spare`` is the buffer of the best
        model it replaces (None: none), for the caller to reuse."""
        settings, out, tol = self.settings, self.out, self.settings.tol
        improved = tol is None or f < self.best_eval - tol * self.f_ref
        gain, prev = self.prev_f - f, self.prev_gain  # this round's gain and the one before (None: first round)
        handover = not stop and self._hand_over(f)
        self.spare = None
        if f < self.best_eval or not self.keep_best or stop:
            if owner is not None:
                self.spare, self._best_buffer = self._best_buffer, owner
                self.best_eval, self.best_theta = f, model
            else:
                if self._best_buffer is None:
                    self._best_buffer = np.empty_like(model)
                np.copyto(self._best_buffer, model)
                self.best_eval, self.best_theta = f, self._best_buffer
        if handover:
            out.converged = out.handed_over = True
            out.stop_reason = (f"the evaluated objective's gains reached the averaged steps' noise floor (about "
                               f"{self.floor / self.f_ref:.2g} times {tol_unit(self.problem.loss is None)}), which "
                               f"the full-batch finish removes where it is needed")
            return True
        if tol is not None:
            self.no_change = 0 if improved else self.no_change + 1
        # a rise (not a plateau) means the step noise, not the optimum, sets the loss: averaging cannot
        # fix that, so the adaptive rule shrinks the rate then too and resumes from the best model
        rose = tol is not None and f > self.best_eval + RISE_TOL * self.f_ref
        if not (improved or stop or rose) and self.no_change < settings.n_iter_no_change \
                and self._settled(gain, prev):
            out.converged = True
            out.stop_reason = (f"the evaluated objective improved by less than tol={tol:g} (times "
                               f"{tol_unit(self.problem.loss is None)}) in a round that gained at most "
                               f"{SETTLED_RATIO:g} of the round before, on columns a sample of rows measured "
                               f"well-conditioned (close to independent ones: the excess left is then below that "
                               f"gain)")
            return True
        if (self.no_change >= settings.n_iter_no_change or (rose and settings.adaptive)) and not stop:
            self.no_change = 0
            shrink = self._shrink_rate(rose, ts)
            if shrink is not True:
                out.converged = stop = True
                out.stop_reason = (
                    f"the evaluated objective improved by less than tol={tol:g} (times "
                    f"{tol_unit(self.problem.loss is None)}) in {settings.n_iter_no_change} rounds of "
                    f"{self.round_epochs} epoch(s)"
                    + (f" with the learning rate at its smallest ({self.lr:.3g})" if shrink else ""))
        return stop

    def _settled(self, gain, prev):
        """Whether a round that gained less than tol (``gain``; ``prev``: the round before's) ends the epochs at
        once, before ``n_iter_no_change`` such rounds: where the columns are measured close to independent ones
        (``Settings.settled``, asked last: it may read a sample of rows) and this round gained at most
        SETTLED_RATIO of the round before (a rise of less than that counts as none). Gains that shrink at least
        as fast mean an excess E_k ≤ E_(k-1)/2, so the excess left is at most this gain, below tol, and a second
        round of plateau measures noise: 1e6 x 100, the default fit's third epoch gained 3e-10 of var(y) after
        3e-4, and a fourth confirmed it at a cost of 1.35 reads of X of its 7.7."""
        if self.settings.settled is None or prev is None or not prev > 0.0:
            return False
        return abs(gain) <= SETTLED_RATIO * prev and bool(self.settings.settled())

    def _hand_over(self, f):
        """The handover rule, when an exact finish follows (``Settings.handover``): the round evaluated to ``f``
        ends the epochs when its gain g, extrapolated as the gains have shrunk (g² / the previous round's gain: the
        excess left if the next gains shrink by the same ratio), falls below the noise floor (``self.floor``), or
        when it gained nothing. The finish's result does not depend on where it starts, and one of its passes
        removes more of a well-conditioned problem's excess than an epoch at its floor (the ``tol`` rule's rounds
        there are noise); a problem on which the epochs still make headway (slowly shrinking gains) keeps
        training. Never on the first round, whose gain is over the start."""
        gain, self.prev_f = self.prev_f - f, f
        prev, self.prev_gain = self.prev_gain, gain
        if self.settings.handover is None or prev is None or not prev > 0.0:
            return False
        self.floor = self.settings.handover(min(f, self.best_eval))
        return self.floor is not None and (not gain > 0.0 or gain * (gain / prev) < self.floor)

    def _shrink_rate(self, rose, ts):
        """The adaptive rate rule, on a plateau or a rise: divide the rate by LR_SHRINK (after a rise, back to
        the best model) unless it would fall below MIN_LR_FRACTION of its start. True: divided; "smallest":
        the rule applies but the rate is at its smallest; False: the rule does not apply (constant rate, or
        a plateau of the averaged iterates of the squared error)."""
        settings = self.settings
        # a loss with a kink (any but the squared error) needs the decaying rate also when averaged
        shrink = settings.adaptive and (rose or self.problem.loss is not None or not self.averaged)
        if not (shrink and self.lr / LR_SHRINK >= settings.lr * MIN_LR_FRACTION):
            return "smallest" if shrink else False
        self.lr /= LR_SHRINK
        self.out.n_shrinks += 1
        if rose and self.keep_best:
            ts.theta[...] = self.best_theta
        if settings.verbose:
            print(f"-- {'the loss rose' if rose else 'no improvement'} in {settings.n_iter_no_change}"
                  f" rounds of {self.round_epochs} epoch(s): learning rate now {self.lr:.3g}")
        return True

    def judge_interrupted(self, last_model):
        """After a Ctrl-C: judge the last completed epoch's model if its round was not judged yet (a second
        Ctrl-C keeps it unjudged)."""
        if last_model is None:
            return
        try:
            f = self.problem.objective(last_model, self.eval_ids, self.settings.penalized_eval)[0]
        except (KeyboardInterrupt, SystemError) as again:
            if not _is_interrupt(again):
                raise
            f = None  # a second Ctrl-C: keep that epoch's model unjudged
        if f is not None:
            self.out.eval_losses.append(float(f))
        if f is None or f < self.best_eval or not self.keep_best:
            self.best_theta = last_model
            self.best_eval = self.best_eval if f is None else f

    def _rose_in_training(self, last, rise):
        """Whether the last evaluated model (``last``) is worse than the best by more than ``rise`` on training
        rows, as the evaluation found: always, when the evaluation set is training rows; with early stopping,
        measured on up to EVAL_ROWS training rows (a held-out loss also rises by its rows' noise, which stopping
        early exists to catch: the rate is the cause only when the training objective rose too)."""
        if self.settings.penalized_eval:
            return True
        if last is None or self.train_ids is None or len(self.train_ids) == 0:
            return False
        ids = self.train_ids[:max(1, EVAL_ROWS // self.problem.batch_size)]
        # the best may be the kept start, compacted to one value when it is constant (_compact_snapshot)
        best = self.problem.objective(np.broadcast_to(self.best_theta, last.shape), ids, False)[0]
        return self.problem.objective(last, ids, False)[0] > best + rise

    def keep_model(self, ts, start, last=None):
        """The model to keep: the best evaluated one, never one worse than the start (that reverts to the start
        with a warning); a rise under a rate the user chose is warned about (``last``: the last evaluated model,
        which the warning about a held-out rise measures on training rows)."""
        out, settings, problem, f_ref = self.out, self.settings, self.problem, self.f_ref
        best_eval = self.best_eval
        out.best_eval = best_eval
        if out.eval_losses and not out.interrupted and last is not None and last is not self.best_theta:
            last = last.copy()  # its buffer may be ts.theta, which the kept model overwrites
        ts.theta[...] = self.best_theta
        if out.eval_losses and not out.interrupted:
            last_f = out.eval_losses[-1]
            # the adaptive rule already answers a rise (smaller rate, back to the best model): warn only about a
            # rate the user chose, and advise only settings that differ from this fit's
            # a rise is judged on the loss's own level when it exceeds var(y) (no intercept, y far from 0)
            rise = max(settings.tol or 0.0, 1e-3) * max(f_ref, best_eval)
            if last_f > best_eval + rise and not settings.adaptive and self._rose_in_training(last, rise):
                fixes = ["lower learning_rate"] + (["use learning_rate='adaptive'"] if not settings.adaptive else []) \
                    + (["set standardize=True (the default)"] if problem.scaling is None else [])
                out.warning = (f"The loss rose during training (evaluation loss {best_eval:.6g} at best, kept; "
                               f"{last_f:.6g} at the end): the learning rate is too high for this data. "
                               + sentence("; or ".join(fixes)) + ".")
        if best_eval > out.start_eval and out.n_iter > 0 and not out.interrupted:
            ts.restore(start)  # never return a model worse than the start ...
        if best_eval >= out.start_eval and out.n_iter > 0 and not out.interrupted and out.stop_reason is not None:
            out.stop_reason += "; no evaluated model improved on the starting point, which was kept"  # ... say so

        kept = f"the model was left at its starting point (loss {out.start_eval:.6g})"
        if out.stopped and best_eval >= out.start_eval and out.n_iter > 0:
            # the user's callback ended training before an evaluated model beat the start, not a setting
            out.warning = (f"A callback stopped training after {out.n_iter} epoch(s), before any evaluated model "
                           f"improved on the starting point: {kept}.")
        elif best_eval > out.start_eval + 1e-9 * f_ref and out.n_iter > 0 and not out.interrupted:
            out.start_kept = True
            # the fix holds unless the start is at the optimum already (a warm start from a converged fit), where
            # nothing can improve on it: the estimator measures that where it can (_judge_kept_start)
            gtol = out.by_gtol  # the user's gtol ended the epochs: the setting to name
            out.warning = (f"Training did not improve on the starting point: {kept}. Unless that start is already "
                           f"at the optimum (as a warm start from a converged fit is), "
                           + ("lower gtol (its norm is in the data's units), or leave it None" if gtol else
                              kept_start_fix(settings.user_chose, settings.max_iter, settings.tol))
                           + ("; or set standardize=True (the default) so the steps fit the data's scales."
                              if problem.scaling is None else "."))
        elif (not settings.penalized_eval and best_eval >= out.start_eval >= 0.999 * f_ref and out.n_iter > 0
              and not out.interrupted and not out.warning):
            # early stopping kept a start no better than the constant: no epoch lowered the held-out loss (often
            # too few held-out rows to tell a better model from noise); the fix is the user's choice
            out.held_out_warning = True
            m = _held_out_rows(problem, self.eval_ids)
            weighted = " of positive weight" if _rows_by_weight(problem) else ""
            out.warning = (f"Early stopping kept the starting model: no epoch lowered the loss on the {m} "
                           f"held-out row{'' if m == 1 else 's'}{weighted}. Set early_stopping=False, or a larger "
                           f"validation_fraction so that more rows judge the fit.")
        elif (not settings.penalized_eval and problem.loss is None and out.converged and not out.interrupted
              and not out.stopped and not out.warning
              and best_eval > _held_out_limit(problem, self.eval_ids) * f_ref):
            # early stopping's best model, its start (the training rows' mean) included, predicts the held-out
            # rows worse than their own mean by more than chance: they are not like the training rows, or the
            # epochs stalled far from a model that fits both (one outlying row: its columns' scales and the
            # training mean are its own, and the rate the held-out loss allows stalls far from the optimum)
            out.held_out_warning = True
            out.warning = (f"Early stopping's best model predicts the held-out rows worse than their own mean "
                           f"(validation R² {1.0 - best_eval / f_ref:.3g}; the starting model, the training rows' "
                           f"mean, {1.0 - out.start_eval / f_ref:.3g}), and its stopping rule ended the fit: the "
                           f"held-out rows differ from the training rows (an outlying row pulls the training mean "
                           f"and its columns' scales) or the epochs stalled far from the training optimum. Look "
                           f"for rows far from the others, or set early_stopping=False to train on every row to "
                           f"the training objective's optimum.")


def _held_out_limit(problem, eval_ids):
    """The held-out loss, in units of the held-out rows' variance, above which early stopping's best model is
    worse than their own mean by more than chance: HELD_OUT_WORSE, or more with few rows (the training mean's
    squared distance from m held-out rows' mean is about var·(1/m + 1/n_train) times a chi-square of one degree:
    HELD_OUT_CHANCE of those)."""
    m = max(_held_out_rows(problem, eval_ids), 1)
    n_train = max(problem.n - m, 1)
    return 1.0 + max(HELD_OUT_WORSE - 1.0, HELD_OUT_CHANCE * (1.0 / m + 1.0 / n_train))


def _held_out_rows(problem, eval_ids):
    """The number of rows of positive weight in the held-out batches ``eval_ids`` (the last batch may be short;
    a row of weight 0 judges nothing: 5 weighted rows of 400 had "32 held-out rows" named where 1 judged)."""
    ids = np.asarray(eval_ids)
    if not _rows_by_weight(problem):
        return int(np.minimum(problem.batch_size, problem.n - problem.batch_size * ids).sum())
    return int(np.count_nonzero(problem.sw[problem.batch_rows(ids)] > 0))


def _rows_by_weight(problem):
    """Whether _held_out_rows counts the rows of positive weight: sample weights in memory (not with dask,
    whose rows live on the workers: there it counts every row, and its message says "rows")."""
    return getattr(problem, "sw", None) is not None and getattr(problem, "Y", None) is not None


def train(problem, ts, settings, rng, *, train_ids, eval_ids, epochs, stopping, n_done=0, keep_best=True, avg=None,
          interrupt_keeps=True, hold_workspace=False, workspace=None):
    """Run up to ``epochs`` epochs on ``ts`` (updated in place). Returns an ``Outcome``.

    ``avg``: a running mean of the iterates (k·(d+1) values and a count) to continue instead of averaging
    over rounds (partial_fit: the mean over all its calls). ``interrupt_keeps=False`` (partial_fit): a Ctrl-C
    restores ``ts`` to its start and raises KeyboardInterrupt, whatever completed. ``hold_workspace``
    (partial_fit, one epoch per call): the lazy epoch's workspace is ``workspace`` where that is large enough
    (``_engine.Epochs.adopt``; the previous call's) and is handed back in ``Outcome.workspace``, not dropped.

    On return ``ts`` holds the model to keep: with an evaluation set, the best evaluated one
    (``keep_best``) or the last one, never one worse on the evaluation set than the starting point (that
    reverts to the start, with a warning); after a Ctrl-C, the same choice among the completed epochs (the last
    one's model is evaluated first if the interrupt came before its evaluation; before the first epoch completed,
    ``ts`` is restored to its start and KeyboardInterrupt raised). Raises ``Diverged``
    (the model restored to its start) when the parameters or the optimizer state stop being finite or the
    loss explodes. The rules are ``_StoppingRules``'.
    """
    out = Outcome()
    opt = settings.optimizer
    hp = opt.pack()
    stdz = None if problem.scaling is None else problem.scaling.pack()
    P = ts.theta.size
    # averaging removes gradient noise; a full batch has none (its model is then the last iterate)
    carried = avg is not None
    if not carried:
        avg = np.zeros(P + 1) if settings.average and len(train_ids) > 1 else None
    start = _compact_snapshot(ts)
    # progress is judged (and iterates averaged) over rounds of at least ROUND_UPDATES updates
    round_epochs = max(1, -(-ROUND_UPDATES // max(len(train_ids), 1)))
    t0 = time.perf_counter()
    last, last_model = start, None  # the last completed epoch: its state and (unevaluated) model
    last_bufs = model_buf = None  # their buffers, made once and overwritten each epoch
    saving = checked = False
    rules = _StoppingRules(problem, ts, settings, out, eval_ids if stopping else None, keep_best,
                           avg is not None and len(train_ids) >= MIN_AVG_UPDATES, round_epochs, start[0])
    rules.train_ids = train_ids
    # the model kept after a Ctrl-C is the best (or last) mean, written into ts.theta: the iterate needs no copy
    copy_theta = not (rules.evaluating and avg is not None)
    # the order: shuffled blocks of batches for data read from disk (a memmapped file: prefetched block by
    # block) or from dask blocks; a full shuffle (one block) for data in memory, where blocks save nothing and
    # rows sorted by the target would cost accuracy (measured: 1e-3 of R² short on rows sorted by y)
    file_range = _pagecache.file_range(problem.Xk)
    seg = problem.block_batches or block_batches(problem.Xk, problem.batch_size)
    bb = seg if file_range is not None or problem.block_batches else max(problem.n_batches, 1)
    progress = _FitProgress(settings, problem, epochs, stopping and (settings.tol is not None or
                                                                      settings.gtol is not None))
    kernel = problem.epoch_kernel(opt.code, hp, settings.sched, stdz, avg, train_ids)  # its arguments, packed once
    if hold_workspace:
        kernel.adopt(workspace, ts)
    # a round's mean that becomes the best model is kept as it is (no copy); the next round's goes into another buffer
    swap_avg = avg is not None and not carried and hasattr(kernel, "set_avg")
    # the state slots the rule reads or writes: the others keep their start (finite: the restore point's) values
    used = ts.state[:min(ts.state.shape[0], _rules.used_slots(opt.code, hp))]
    in_one_piece = file_range is None and not settings.verbose  # else block by block: prefetching, progress bar
    try:
        for epoch in range(epochs):
            order = block_shuffled_order(train_ids, bb, rng) if settings.shuffle else train_ids.copy()
            hp[0] = rules.lr
            if avg is not None and not carried and epoch % round_epochs == 0:
                avg[:] = 0.0
            if in_one_piece:
                loss, finite = kernel.run(ts, order)
            else:
                loss, finite = _epoch_in_pieces(kernel, problem, ts, order, bb, settings, n_done + out.n_iter,
                                                file_range, seg, progress)
            model = ts.theta if avg is None else avg[:P].reshape(ts.theta.shape)
            # the epoch is complete: Ctrl-C from here keeps it (copied into buffers made once per call)
            saving, checked = True, False  # a Ctrl-C while the buffers are overwritten keeps ts itself, checked
            last_bufs, state_finite = _checked_snapshot_into(ts, last_bufs, len(used), copy_theta)
            last = last_bufs
            if rules.check_diverged(loss, finite and state_finite, n_done + out.n_iter + 1, ts, start, True):
                # resumed at a lower rate: the diverged epoch is not kept, and its iterates leave the mean
                saving, last, last_model = False, start, None
                if avg is not None and not carried:
                    avg[:] = 0.0
                continue
            checked = True
            # the model is the iterate (the snapshot's copy) or the running mean, unchanged until the next epoch
            last_model = last[0] if avg is None else model
            penalty = settings.report_objective and problem.penalized
            gtol = stopping and settings.gtol is not None
            round_end = (epoch + 1) % round_epochs == 0 or epoch + 1 == epochs
            # the model in the data's units once per epoch, only when something reads it, and dropped before the
            # next epoch (kept through it, it would add k·(d + 1) values to the fit's peak memory)
            raw = None
            if gtol:  # the gradient's group sums need the memory: the next epoch makes the workspace again
                kernel.release()
            if penalty or gtol or settings.callbacks or (rules.evaluating and round_end):
                # in the lazy epoch's workspace, which the epoch is done with: kept beside it, a new array
                # added one more k·(d + 1) values to the peak memory of a default sparse fit
                raw = problem.raw(model, kernel.spare(model.shape))
            # also the evaluation's, on the same model; its temporaries in the workspace too, past the model
            pen = problem.penalty(raw, kernel.spare((raw.shape[0], raw.shape[1] - 1), raw.size)) if penalty \
                else None
            # the epoch's reported loss before it is counted: a Ctrl-C up to here keeps the epoch with its loss
            # (``saving``); from here the count and the loss go in together (the handler completes the pair)
            reported = float(loss + pen) if penalty else float(loss)
            out.data_loss = float(loss)  # progressive (each batch before its update): partial_fit's check
            saving = False
            out.n_iter += 1
            out.losses.append(reported)
            loss = reported
            stop = stopping and rules.gradient_small(model, train_ids, raw)
            evaluated = rules.evaluating and (stop or round_end)
            if evaluated:
                f = rules.evaluate(model, raw, pen)
                last_model = None
                stop = rules.judge_round(f, model, ts, stop, avg if swap_avg else None)
                if swap_avg and rules.best_theta is model:  # the mean is now the best model's buffer
                    avg = rules.spare if rules.spare is not None else np.zeros(P + 1)
                    kernel.set_avg(avg)
            if settings.verbose:
                extra = f", evaluation loss {out.eval_losses[-1]:.6g}" if rules.evaluating and out.eval_losses else ""
                progress.write(f"-- Epoch {n_done + out.n_iter}: loss {loss:.6g}{extra}, lr {rules.lr:.3g}, "
                               f"step {ts.step}, {time.perf_counter() - t0:.3f} s")
            if settings.callbacks and _call_back(settings.callbacks, EpochInfo(
                    n_done + out.n_iter, float(loss), out.eval_losses[-1] if evaluated else None, rules.lr, ts.step,
                    time.perf_counter() - t0, raw[:, :-1].copy(), raw[:, -1].copy()), ts, start):
                out.stopped = stop = True
                out.stop_reason = f"a callback returned True after epoch {n_done + out.n_iter}"
            raw = None
            if stop:
                break
            if rules.evaluating and last_model is model:  # not judged yet, and the next epoch changes the mean
                model_buf = np.empty_like(model) if model_buf is None else model_buf
                np.copyto(model_buf, model)
                last_model = model_buf
    except (KeyboardInterrupt, SystemError) as exc:
        if not _is_interrupt(exc):
            raise
        if not interrupt_keeps or (not saving and out.n_iter == 0):
            # a partial_fit call (its epoch is the whole call: a kept epoch would swallow the Ctrl-C, and the user's
            # loop over the calls go on), or no epoch completed (no model of this call to keep): the caller's model
            # stays as it was (the estimator puts its previous fitted state back) and the Ctrl-C goes on
            ts.restore(start)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from exc
        if saving:
            if not checked:  # the epoch is kept: it must be finite (the snapshot had been testing it)
                rules.check_diverged(loss, finite and _engine.all_finite(used), n_done + out.n_iter + 1, ts, start)
            last_model = model.copy()
            out.n_iter += 1  # the epoch is complete and kept: counted, with its loss, as the epochs before it
            if settings.report_objective and problem.penalized:
                loss += problem.penalty(problem.raw(last_model))
            out.losses.append(float(loss))
        else:
            ts.restore(last)
            if len(out.losses) < out.n_iter:  # counted, interrupted before its loss went in
                out.losses.append(reported)
        out.interrupted = True
        out.stop_reason = "interrupted (Ctrl-C)"
        warnings.warn(f"Training interrupted: keeping the {'best' if rules.evaluating and keep_best else 'last'} "
                      f"model of the completed epochs ({n_done + out.n_iter} epoch(s) in all).", UserWarning,
                      stacklevel=4)
        if not rules.evaluating:
            return out
        rules.judge_interrupted(last_model)
    finally:
        progress.close()
        # the workspace is not held through what follows (the kept model, the finish), unless the caller holds it
        held = kernel.release()
        out.workspace = held if hold_workspace else None
    if out.stopped and rules.evaluating:
        # a callback ended the round early: its last epoch's model is judged with the evaluated ones (as after a
        # Ctrl-C), not left out for the start
        rules.judge_interrupted(last_model)
    if out.stop_reason is None and stopping:
        out.stop_reason = f"max_iter={epochs} epochs reached before a stopping rule was met"
    if settings.verbose and stopping:
        print(f"-- Stopped after {n_done + out.n_iter} epoch(s), {time.perf_counter() - t0:.3f} s: {out.stop_reason}")
    if rules.evaluating:
        rules.keep_model(ts, start, None if out.interrupted or out.n_iter == 0 else model)
    return out


def train_epochs(X, y, optimizer, *, batch_size=32, epochs=10, shuffle=True, random_state=0, n_threads=1,
                 sw=None, fit_intercept=True, sched=None, l1=0.0, l2=0.0, path=_engine.K.PATH_AUTO, ts=None,
                 backend="numba"):
    """``epochs`` plain epochs of the one loop (no standardization, averaging, evaluation or stopping rule):
    the optimizer's own trajectory, as torch.optim would run it, for tests and benchmarks.

    X is a dense array or a CSR tuple ``(data, indices, indptr, n_features)``. Returns ``(ts, losses)``;
    raises ``Diverged`` (``ts`` restored to its start) if the weights stop being finite.
    """
    Y = _engine.targets_2d(y)
    if ts is None:
        ts = _engine.TrainingState.fresh(optimizer, Y.shape[1], X[3] if isinstance(X, tuple) else X.shape[1])
    problem = FitData(X, Y, sw, batch_size, _engine.kernels(backend), backend, n_threads, fit_intercept, l1, l2,
                      path=path)
    settings = Settings(optimizer, optimizer.lr, _engine.no_schedule() if sched is None else sched,
                        adaptive=False, average=False, max_iter=epochs, tol=None, shuffle=shuffle,
                        report_objective=False)
    ids = np.arange(problem.n_batches, dtype=np.int64)
    out = train(problem, ts, settings, np.random.default_rng(random_state), train_ids=ids, eval_ids=None,
                epochs=epochs, stopping=False)
    return ts, out.losses


def _units(sc, k, d):
    """(scaling, y scales, x scales, x means) of a full-batch solver on ``k`` outputs of ``d`` columns: ones
    and zeros without standardization."""
    if sc is None:
        return None, np.ones(k), np.ones(d), np.zeros(d)
    return sc, sc.y_scale, sc.x_scale, sc.x_mean


def train_lbfgs(problem, ts, lbfgs, *, train_ids, steps, tol, n_iter_no_change=2, precondition=None):
    """Full-batch L-BFGS (``fastgd.optimizers.LBFGS``, torch's algorithm) on ``ts.theta`` (updated in place):
    up to ``steps`` calls of its ``step``, each evaluation of the objective and its gradient one pass of the
    kernels over ``train_ids``. Works in the coordinates of ``ts.theta`` (standardized when ``problem.scaling``
    is set, where the objective is in units of the variance of y). Stops when a step improves the objective
    by less than ``tol`` (of the variance of y) ``n_iter_no_change`` times, or when a step leaves the model
    where it was (torch's own tolerances then end every later step at once, ``Outcome.by_torch_tol``). A step
    that torch ended early on its tolerances but that moved the model is followed by the next, as a loop
    over torch's ``step`` continues: a first step can end on its loss change alone (a fixed first step that
    overshoots to the far side of the minimum at the same loss) although the history it leaves makes the next
    step exact. Keeps the best model seen (never one worse than the start). Returns an ``Outcome``
    (``n_iter``: steps, ``losses``: the objective after each step).

    ``precondition``: ``(curvature, shift)``, a change of variables that leaves the objective and its minimizer
    the same but makes it far better conditioned on sparse data, whose columns' frequencies span orders of
    magnitude: with ``shift`` (d,) (None: none), the intercept variable becomes θ_b + Σ_j shift_j·θ_j (the
    intercept of the centred columns, so that an uncentred column no longer moves the mean prediction), and
    then every variable is multiplied by the square root of ``curvature`` (k, p), positive estimates of the
    objective's curvature along it (the diagonal of its Hessian in those variables).

    On CSR X whose stored columns are few (``_moved_columns``) the variables are those columns' (and any θ
    holds a weight in), as train_pcg's vectors: the others' gradient stays zero, so L-BFGS's directions,
    history and steps do too."""
    if problem.l1 > 0.0:
        raise ValueError("optimizer='lbfgs' needs a smooth objective: use penalty=None or 'l2' with it")
    check_lbfgs_loss(problem.loss)
    out = Outcome()
    k, p = ts.theta.shape
    d = p - 1
    sc, ys, xs, xm = _units(problem.scaling, k, d)

    # small data: one thread (a parallel region per evaluation cost 7 ms on 442 x 65 on a busy 2-core host);
    # the sums are the same for any thread count
    threads = 1 if problem.n * d * k < LBFGS_PARALLEL_VALUES else problem.n_threads
    # the variables are the columns that can move (as train_pcg's vectors: ``_Kept``)
    kept = _Kept.of_problem(problem, ts.theta)
    if kept is not None:
        xs, xm = xs[kept.keep], xm[kept.keep]
        d, p = len(kept.keep), len(kept.keep) + 1
    # another (smooth, squared-units) loss: its epsilon in each target's units too, loss(r/c; ε/c) = loss(r; ε)/c²;
    # outputs of different scales need one pass each (their parameters differ), all equal scales one in all
    same = problem.loss is None or np.all(ys == ys[0])
    parts = [(slice(0, k), None if problem.loss is None else (problem.loss[0], problem.loss[1] / ys[0]))] if same \
        else [(slice(j, j + 1), (problem.loss[0], problem.loss[1] / ys[j])) for j in range(k)]
    # residuals in units of each target's scale (O(n·k), not X)
    Yparts = [problem.targets(ys, None if same else rows) for rows, _ in parts]
    # standardized: each output's objective over _rules.loss_unit / y_scale more, as the epochs' (huber with an
    # epsilon far below y_scale: over epsilon / y_scale, so that its gradient is not below torch's tolerance_grad)
    rel = np.ones(k) if sc is None or problem.loss is None else np.array(
        [_rules.loss_unit(int(problem.loss[0]), float(problem.loss[1]), float(s)) / float(s) for s in ys])
    relative = bool(np.any(rel != 1.0))

    # work buffers of fg, reused by every evaluation: the arithmetic of Scaling.to_raw and of the expressions
    # in the comments, written in place (a large d otherwise allocates, and faults in, a dozen fresh vectors)
    u = np.empty((k, p))
    v = np.empty((k, d))
    G = np.empty((k, p))

    def fg(x):
        theta = x.reshape(k, p)
        if sc is None:
            np.divide(theta, ys[:, None], out=u)  # u = raw / ys
        else:  # u = Scaling.to_raw(theta) / ys
            np.divide(theta[:, :d], xs, out=v)
            b = sc.y_scale * (theta[:, d] - np.einsum("ij,j->i", v, xm)) + sc.y_mean
            np.multiply(sc.y_scale[:, None], v, out=u[:, :d])
            u[:, d] = b
            np.divide(u, ys[:, None], out=u)
        sse = 0.0
        params = u if kept is None else kept.params(u)
        for (rows, loss), Yj in zip(parts, Yparts):
            Gj, sse_j, W = problem.kern.batches_stats(problem.Xk, Yj, _sw(problem.sw),
                                                      np.ascontiguousarray(params[rows]),
                                                      problem.batch_size, train_ids, threads, loss=loss)
            G[rows] = np.asarray(Gj, dtype=np.float64).reshape(-1, p) if kept is None else kept.gather(Gj)
            del Gj
            sse += sse_j / rel[rows][0] if relative else sse_j
        if relative:
            np.divide(G, rel[:, None], out=G)
        gu = np.multiply(2.0 / W, G, out=G)  # (2 / W)·G
        gu[:, :d] += np.multiply(problem.l2 / rel[:, None] if relative else problem.l2, u[:, :d], out=v)
        grad = np.empty_like(gu)
        np.multiply(xm, gu[:, d:], out=v)  # (gu[:, :d] − xm·gu[:, d:]) / xs
        np.subtract(gu[:, :d], v, out=v)
        np.divide(v, xs, out=grad[:, :d])
        grad[:, d] = gu[:, d] if problem.fit_intercept else 0.0
        with np.errstate(over="ignore"):
            if relative:  # each output's penalty in its own unit
                return float(sse) / W + sum(half_l2(problem.l2 / rel[j], u[j:j + 1, :d], float(np.square(
                    u[j, :d], out=v[j]).sum())) for j in range(k)), grad.reshape(-1)
            squares = float(np.square(u[:, :d], out=v).sum())
        return float(sse) / W + half_l2(problem.l2, u[:, :d], squares), grad.reshape(-1)

    seen = {}
    cached = 4 if precondition is None else 2  # keys are copies of x: a large (sparse) problem keeps fewer

    def fg_once(x):
        """fg, remembering its last few points: a step starts where the previous one's line search ended, and
        the end point is judged after the last step, both already evaluated (each evaluation is a pass over X)."""
        key = x.tobytes()
        if key not in seen:
            if len(seen) >= cached:
                seen.pop(next(iter(seen)))
            seen[key] = fg(x)  # fg's gradient is a fresh array: kept as it is, handed out as copies
        f, g = seen[key]
        return f, g.copy()

    to_z = from_z = None
    if precondition is not None:
        root = np.sqrt(precondition[0], out=precondition[0])
        shift = precondition[1]
        if kept is not None:
            root, shift = kept.of(root), None if shift is None else shift[kept.keep]
        fg_theta = fg
        theta_of_z = np.empty((k, p))

        def to_z(theta):
            z = theta.reshape(k, p) * root
            if shift is not None:
                z[:, d] += np.einsum("ij,j->i", theta.reshape(k, p)[:, :d], shift) * root[:, d]
            return z.reshape(-1)

        def from_z(z, out=None):
            out = np.divide(z.reshape(k, p), root, out=out)
            if shift is not None:
                out[:, d] -= np.einsum("ij,j->i", out[:, :d], shift)
            return out

        def fg(z):  # noqa: F811 (the same objective, of z)
            f, g = fg_theta(from_z(z, theta_of_z).reshape(-1))
            g = g.reshape(k, p)
            if shift is not None:  # the chain rule through θ_b = φ_b − Σ shift_j·θ_j
                g[:, :d] -= g[:, d:] * shift
            g /= root
            return f, g.reshape(-1)

    theta0 = ts.theta if kept is None else kept.of(ts.theta)
    x = theta0.reshape(-1).copy() if to_z is None else to_z(theta0)
    start = (theta0.copy(), ts.scalars.copy())  # L-BFGS leaves the optimizer state as it is
    end = ts.theta if kept is None else theta0  # θ, or its kept columns (then written back), at the end
    state = {}
    # the objective of the best constant (the mean for another loss): the unit of tol
    f_ref = problem.target_variance(train_ids) if sc is None else float(k) if problem.loss is None else sum(
        problem.targets_loss(Yj, loss) / rel[rows][0]
        for (rows, loss), Yj in zip(parts, Yparts))
    f_ref = f_ref if f_ref > 0 else 1.0
    best_f, best_x = np.inf, x.copy()
    prev = None
    no_change = 0
    for _ in range(steps):
        before = (state.get("n_iter", 0), state.get("func_evals", 0))
        x_in = x.copy()
        f = lbfgs.step(fg_once, x, state)  # the objective at x_in
        if f < best_f:
            best_f, best_x = f, x_in
        if not np.isfinite(f) or not np.all(np.isfinite(x)):
            break
        out.n_iter += 1
        out.losses.append(float(f))
        ts.scalars[0] += state["func_evals"] - before[1]
        if prev is not None:
            no_change = no_change + 1 if prev - f < tol * f_ref else 0
        prev = f
        # the same point, gradient and history: every later step would end the same way, without moving
        still = np.array_equal(x, x_in)
        if no_change >= n_iter_no_change or still:
            out.converged = True
            out.by_torch_tol = still and no_change < n_iter_no_change
            out.stop_reason = (f"a step gained less than tol={tol:g} (times {tol_unit(problem.loss is None)}) "
                               f"{n_iter_no_change} times" if not out.by_torch_tol else
                               f"a step left the model where it was, so every later one would (torch's "
                               f"tolerance_grad={lbfgs.tolerance_grad:g} or tolerance_change="
                               f"{lbfgs.tolerance_change:g} ended it" + (", or its line search found no lower "
                               "point)" if lbfgs.line_search_fn is not None else ")"))
            break
    if out.stop_reason is None:
        out.stop_reason = f"{out.n_iter} steps (max_iter) done" if out.n_iter == steps else "the objective stopped being finite"
    f_end, _ = fg_once(x)
    if np.isfinite(f_end) and np.all(np.isfinite(x)) and f_end <= best_f:
        best_f, best_x = f_end, x
    f_start = out.losses[0] if out.losses else fg_once(start[0].reshape(-1) if to_z is None else to_z(start[0]))[0]
    if not best_f <= f_start:
        end[...], ts.scalars[...] = start
    else:
        end[...] = best_x.reshape(k, p) if from_z is None else from_z(best_x)
    if kept is not None:
        kept.put(ts.theta, end)
    out.best_eval = min(best_f, f_start)
    return out


def standardized_blocks(X, mu, s, ones):
    """(start, stop, Z) over row blocks of dense X of at most SOLVE_BLOCK_BYTES: the block's columns less ``mu``
    over ``s`` in float64 (and, with ``ones``, a last column of ones for the intercept), a temporary per block:
    X is never copied whole (solve_dense, newton_dense)."""
    n, d = X.shape
    p = d + 1 if ones else d
    rows = max(1, SOLVE_BLOCK_BYTES // (8 * max(p, 1)))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        Z = np.empty((stop - start, p))
        np.subtract(np.asarray(X[start:stop], dtype=np.float64), mu, out=Z[:, :d])
        Z[:, :d] /= s
        if ones:
            Z[:, d] = 1.0
        yield start, stop, Z


def solve_dense(problem, k):
    """The exact optimum of a dense squared-error ``problem`` (no l1; l2 on the raw weights or none), in the data's
    units ((k, d + 1), intercept last), from the normal equations in the fit's standardized coordinates: their
    (d, d) second moments summed over row blocks of at most SOLVE_BLOCK_BYTES (X is read once, never copied
    whole), then an eigendecomposition (the minimum-norm solution in those coordinates where columns are
    collinear, as the fit from zero reaches). O(n·d²) operations: the caller's budget (SOLVE_MAX_COLUMNS)."""
    X, sc, sw = problem.Xk, problem.scaling, problem.sw
    n, d = X.shape
    center = problem.fit_intercept
    mu = np.asarray(sc.x_mean, dtype=np.float64) if center else np.zeros(d)
    s = np.asarray(sc.x_scale, dtype=np.float64)
    Y = problem.Y
    W = float(n if sw is None else np.sum(sw))
    ybar = ((Y.sum(axis=0) if sw is None else sw @ Y) / W) if center else np.zeros(k)
    G = np.zeros((d, d))
    b = np.zeros((d, k))
    for start, stop, Z in standardized_blocks(X, mu, s, False):
        Zw = Z if sw is None else Z * sw[start:stop, None]
        G += Zw.T @ Z
        b += Zw.T @ (Y[start:stop] - ybar)
    G += (0.5 * problem.l2 * W) * np.diag(1.0 / np.square(s))
    lam, Q = np.linalg.eigh(G)
    keep = lam > max(lam[-1], 0.0) * d * np.finfo(np.float64).eps
    beta = Q[:, keep] @ ((Q[:, keep].T @ b) / lam[keep, None])  # (d, k): the weights on the standardized columns
    raw = np.empty((k, d + 1))
    raw[:, :d] = (beta / s[:, None]).T
    raw[:, d] = ybar - raw[:, :d] @ mu
    return raw


def newton_work(n, d):
    """Work of one ``newton_dense`` iteration on n rows and d columns, in floating-point operations and their
    equivalent: the generalized Hessian (2·n·(d + 1)² multiply-adds), its eigendecomposition and products (about
    10·(d + 1)³) and the elementwise passes over the row blocks (about NEWTON_ROW_WORK·n·(d + 1), which dominate
    at small d: 8 ms an iteration at 20,000 x 12, where the products are 7e6 operations)."""
    return 2.0 * n * (d + 1) ** 2 + 10.0 * (d + 1) ** 3 + NEWTON_ROW_WORK * n * (d + 1)


def newton_dense(problem, raw, budget, tol_gain=0.0):
    """The optimum of a dense ``problem`` with a smooth loss that is piecewise quadratic in the residual (huber,
    squared_epsilon_insensitive; l2 on the raw weights or none, no l1), from ``raw`` (k, d + 1): a damped
    semi-smooth Newton method (Levenberg-Marquardt) per output in the fit's standardized coordinates. Each
    iteration forms the generalized Hessian (the rows whose residual is on a quadratic piece, e.g. within epsilon
    for huber) and decomposes it against the second moments of the standardized columns once, then takes the
    least damping whose step lowers the objective (each trial O(n·d)); the damping shrinks tenfold after a
    success. Where no damping up to NEWTON_DAMP_MAX lowers the objective the point is stationary to rounding (the
    objective is convex): the output has converged. On ill-conditioned columns L-BFGS stalls on such losses (a
    step's gain below FINISH_TOL long before the optimum: 2.4 % above it, 120 x 30 at condition number 3e5,
    huber at epsilon 0.1) where this reaches it in about 40 iterations; near the absolute error (huber with epsilon
    far below the residuals) it may need hundreds. ``budget``: the work allowed for all outputs together (units of
    ``newton_work``; each trial counts NEWTON_ROW_WORK·n·(d + 1)); ``tol_gain``: NEWTON_PATIENCE iterations in a
    row that each lower an output's objective by less than this end it too (the finish's tolerance). Returns
    (raw, status, iterations, last_gain): the model in the data's units; "converged" (every output stationary to
    rounding), "tolerance" (some ended on ``tol_gain``) or "budget" (some output was still gaining when the
    budget ran out); the steps taken; and the gain of the last step of an output the budget cut short (else 0).
    X is read in row blocks (a pass for each Hessian and each trial), never copied whole."""
    X, sc, sw = problem.Xk, problem.scaling, problem.sw
    n, d = X.shape
    k = raw.shape[0]
    code, a = problem.loss
    if code not in (_rules.HUBER, _rules.SQUARED_EPSILON_INSENSITIVE) or problem.l1 > 0.0:
        raise ValueError("newton_dense needs huber or squared_epsilon_insensitive and no l1 penalty")
    center = problem.fit_intercept
    mu = np.asarray(sc.x_mean, dtype=np.float64) if center else np.zeros(d)
    s = np.asarray(sc.x_scale, dtype=np.float64)
    p = d + 1 if center else d
    w = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    W = float(w.sum())

    def weighted_moments(rw):
        """Σ rw_i z_i z_iᵀ over the rows."""
        out = np.zeros((p, p))
        for start, stop, Z in standardized_blocks(X, mu, s, center):
            out += (Z * rw[start:stop, None]).T @ Z
        return out

    pen = np.zeros(p)  # the l2 penalty's curvature on the standardized weights: l2 / s² (none on the intercept)
    pen[:d] = problem.l2 / np.square(s)
    M = weighted_moments(w / W)
    M[np.diag_indices(p)] += pen
    M[np.diag_indices(p)] += max(float(np.trace(M)), 1.0) * p * np.finfo(np.float64).eps
    Li = np.linalg.solve(np.linalg.cholesky(M), np.eye(p))  # M = L Lᵀ; Li = L⁻¹

    def at(v, y):
        """(objective, gradient, curvature per row) at standardized weights v for targets y."""
        f, g, curv = 0.0, np.zeros(p), np.empty(n)
        for start, stop, Z in standardized_blocks(X, mu, s, center):
            r = Z @ v - y[start:stop]
            c = np.clip(r, -a, a)
            if code == _rules.HUBER:
                value, slope, curv[start:stop] = c * (r - 0.5 * c), c, np.abs(r) < a
            else:
                e = r - c
                value, slope, curv[start:stop] = e * e, 2.0 * e, 2.0 * (np.abs(r) > a)
            wb = w[start:stop]
            f += float(wb @ value)
            g += Z.T @ (wb * slope)
        return f / W + 0.5 * float(pen @ np.square(v)), g / W + pen * v, curv

    out = np.array(raw, dtype=np.float64)
    status = "converged"
    iterations = 0
    used = 0.0
    hessian_work = newton_work(n, d) - NEWTON_ROW_WORK * n * p
    trial_work = NEWTON_ROW_WORK * n * p
    last_gain = 0.0
    for j in range(k):
        v = np.empty(p)
        v[:d] = out[j, :d] * s
        if center:
            v[d] = out[j, d] + out[j, :d] @ mu
        y = problem.Y[:, j]
        f, g, curv = at(v, y)
        used += trial_work
        damp = NEWTON_DAMP_START
        done = None
        small = 0
        last = 0.0
        while True:
            if used + hessian_work + trial_work > budget:
                break
            used += hessian_work
            H = weighted_moments(w * curv / W)
            H[np.diag_indices(p)] += pen
            # H + λM = L (Ĥ + λI) Lᵀ with Ĥ = L⁻¹ H L⁻ᵀ: one eigendecomposition serves every damping λ
            lam, Q = np.linalg.eigh(Li @ H @ Li.T)
            lam = np.maximum(lam, 0.0)  # H is positive semi-definite: a negative eigenvalue is rounding
            u = Q.T @ (Li @ g)
            # the least-damped step's first-order gain (the Newton decrement): below rounding, the optimum is reached
            newton = -(Li.T @ (Q @ (u / (lam + NEWTON_DAMP_START))))
            gain = -float(g @ newton)
            if math.isfinite(gain) and gain <= NEWTON_ROUNDING * abs(f):
                done = "converged"
                break
            step = newton if damp == NEWTON_DAMP_START else -(Li.T @ (Q @ (u / (lam + damp))))
            while True:
                f2, g2, curv2 = at(v + step, y)
                used += trial_work
                if np.isfinite(f2) and f2 < f:
                    break
                damp *= 10.0
                if damp > NEWTON_DAMP_MAX:
                    break
                step = -(Li.T @ (Q @ (u / (lam + damp))))
            if damp > NEWTON_DAMP_MAX:  # no step lowers the objective: stationary to rounding
                done = "converged"
                break
            last = f - f2
            v += step
            f, g, curv = f2, g2, curv2
            damp = max(damp / 10.0, NEWTON_DAMP_START)
            iterations += 1
            small = small + 1 if last < tol_gain else 0
            if small >= NEWTON_PATIENCE:
                done = "tolerance"
                break
        if done is None:
            status = "budget"
            last_gain = max(last_gain, last)
        elif done == "tolerance" and status == "converged":
            status = "tolerance"
        out[j, :d] = v[:d] / s
        out[j, d] = (v[d] - out[j, :d] @ mu) if center else 0.0
    return out, status, iterations, last_gain


def train_pcg(problem, ts, *, train_ids, steps, tol, precondition, n_iter_no_change=2, rel_tol=None,
              clear_spread=None, grow_patience=False):
    """Preconditioned conjugate gradient on ``ts.theta`` (updated in place) for a quadratic objective: the
    squared error with an l2 penalty (``problem.loss`` None), as scikit-learn's Ridge(solver="sparse_cg").
    The preconditioner is ``train_lbfgs``'s change of variables ``precondition`` = ``(curvature, shift)``
    (``curvature`` is overwritten): CG in those variables, written in θ's. Each iteration is one pass of the
    kernels over X (the gradient of the homogeneous objective, y = 0, is the Hessian's product); the start and
    the end one pass each. Holds four k·(d + 1) vectors besides θ (the start, r, p, and one for z, u and A·p in
    turn) and the kernels' chunk buffers; on CSR X whose stored columns are few (``_moved_columns``) the vectors
    hold those columns only (and θ's copy in them), and one k·(d + 1) array passes the parameters to the
    kernels. Stops when an iteration lowers the objective (which CG tracks as ½·α·rᵀz) by less than ``tol`` (of
    the variance of y) ``n_iter_no_change`` times in a row, or after ``steps`` iterations. Keeps the start when
    the end is not better. Returns an ``Outcome`` (``n_iter``: iterations, two passes fewer than were made;
    ``losses``: the objective as CG tracks it; ``spread``: the ratio of the largest to the smallest curvature its
    iterations found, the Ritz values of their Lanczos matrix, a lower bound on the preconditioned Hessian's
    condition number).

    ``rel_tol``: a gain counts as small only when it is also below this fraction of the objective (the
    relative excess, which ``tol`` in units of the variance of y does not bound when the fit explains almost
    all of it). ``clear_spread``: a small gain ends the iterations at once (no ``n_iter_no_change``) while the
    measured spread is at most this: the gains then shrink geometrically and what is left is about one more
    gain (the spread must also have settled: grown by at most ``SPREAD_SETTLED`` in each of the last
    ``SETTLED_ITERATIONS``, or since the first); a
    wider spread has plateaus of small gains before the directions of small curvature are reached. Such a stop
    keeps CG's running objective (or the start, after a gain below ``CLEAR_GAIN`` of it): no end pass.
    ``grow_patience``: a run of small gains ends the iterations only once it is ``n_iter_no_change`` long and
    as long as the iterations before it: CG's gains have plateaus longer than any fixed patience while it
    works through a group of large curvatures before one of small ones."""
    if problem.loss is not None or problem.l1 > 0.0:
        raise ValueError("conjugate gradient needs a quadratic objective: the squared error with an l2 penalty")
    out = Outcome()
    k, p = ts.theta.shape
    d = p - 1
    sc, ys, xs, xm = _units(problem.scaling, k, d)
    y_off = np.zeros(k) if sc is None else sc.y_mean / ys
    Ys = problem.targets(ys)
    zeros = problem.targets(None)  # y = 0: the objective's gradient is then linear in θ, the Hessian's product
    threads = 1 if problem.n * d * k < LBFGS_PARALLEL_VALUES else problem.n_threads
    root = np.sqrt(precondition[0], out=precondition[0])
    shift = precondition[1]
    theta = ts.theta
    # the vectors hold only the columns that can move (``_Kept``: hashed text at d = 2^20, 7 % of them)
    kept = _Kept.of_problem(problem, theta)
    if kept is not None:
        theta, root = kept.of(theta), kept.of(root)
        xs, xm = xs[kept.keep], xm[kept.keep]
        shift = None if shift is None else shift[kept.keep]
        d, p = len(kept.keep), len(kept.keep) + 1

    def grad(theta, Y, buf, out, offset):
        """out = ∇f(theta) of the objective with targets Y (``offset``: the intercept's y_mean term, or 0);
        ``buf`` (may be ``out``) holds u = to_raw(theta) / ys for the kernels. Returns the objective. The
        arithmetic is done in the kernels' fresh gradient array, in blocks: no d-sized temporary."""
        np.divide(theta[:, :d], xs, out=buf[:, :d])
        buf[:, d] = theta[:, d] - np.einsum("ij,j->i", buf[:, :d], xm) + offset
        with np.errstate(over="ignore"):
            l2_term = half_l2(problem.l2, buf[:, :d], float(np.einsum("ij,ij->", buf[:, :d], buf[:, :d])))
        G, sse, W = problem.kern.batches_stats(problem.Xk, Y, _sw(problem.sw),
                                               buf if kept is None else kept.params(buf), problem.batch_size,
                                               train_ids, threads)
        G = np.asarray(G, dtype=np.float64).reshape(k, p) if kept is None else kept.gather(G)
        G *= 2.0 / W
        for j in range(k):
            for s in _blocks(d):  # gu_d = (2/W)·G_d + l2·u_d, then (gu_d − xm·gu_b) / xs
                G[j, s] += problem.l2 * buf[j, s]
                G[j, s] -= G[j, d] * xm[s]
                G[j, s] /= xs[s]
        if not problem.fit_intercept:
            G[:, d] = 0.0
        np.copyto(out, G)
        return float(sse) / W + l2_term

    def metric(v):
        """vᵀ M v = |S v|², S the change of variables (``precondition_into``'s), in blocks: no (k, p) temporary."""
        total = 0.0
        for j in range(k):
            for s in _blocks(d):
                w = v[j, s] * root[j, s]
                total += reference.vdot(w, w)
            b = root[j, d] * (v[j, d] + (0.0 if shift is None else reference.vdot(v[j, :d], shift)))
            total += b * b
        return total

    def precondition_into(r, out):
        """out = M⁻¹ r = S⁻¹ S⁻ᵀ r, S the change of variables z = S·θ (z_d = root_d θ_d, z_b = root_b (θ_b +
        shift·θ_d))."""
        np.copyto(out, r)
        if shift is not None:
            for j in range(k):
                for s in _blocks(d):
                    out[j, s] -= out[j, d] * shift[s]
        out /= root
        out /= root
        if shift is not None:
            out[:, d] -= np.einsum("ij,j->i", out[:, :d], shift)

    start = theta.copy()
    r = np.empty((k, p))
    q = np.empty((k, p))  # z, then u, then A·p, in turn
    with np.errstate(all="ignore"):
        f_start = grad(theta, Ys, q, r, y_off)
    np.negative(r, out=r)
    pdir = np.empty((k, p))
    precondition_into(r, pdir)
    rz = reference.vdot(r, pdir)
    f = f_start
    f_ref = float(k) if sc is not None else problem.target_variance(train_ids)
    f_ref = f_ref if f_ref > 0 else 1.0
    try:
        f, clear = _pcg_iterations(out, steps, theta, r, q, pdir, rz, f, f_ref, tol, n_iter_no_change, grad, zeros,
                                   precondition_into, metric, rel_tol, clear_spread, grow_patience)
    except BaseException:  # a Ctrl-C (or an error) mid-update: θ back to the start, not half updated
        theta[...] = start
        raise
    del pdir, r
    if clear and np.all(np.isfinite(theta)):
        # a few iterations of a small spread: the running value has not drifted by anything near its gain over
        # the start (in this case no pass to measure the end: it would cost as much as an iteration); a gain
        # below CLEAR_GAIN of the start confirmed the start, which is kept (the end might differ from it by
        # rounding alone)
        if not f_start - f > CLEAR_GAIN * abs(f_start):
            theta[...] = start
            f = f_start
        out.best_eval = f
    else:
        with np.errstate(all="ignore"):
            f_end = grad(theta, Ys, q, q, y_off)  # the true objective at the end (CG's running value drifts)
        if not (np.isfinite(f_end) and np.all(np.isfinite(theta)) and f_end <= f_start):
            theta[...] = start
            f_end = f_start
        out.best_eval = f_end
    if kept is not None:
        kept.put(ts.theta, theta)
    return out


class _Kept:
    """The columns that train_pcg's and train_lbfgs's vectors hold (``_moved_columns``, ``keep``; ``ext`` with
    the intercept), and the kernels' side of them: the kernels read the parameters from a full (k, d + 1) array,
    zero in the other columns, and return a full gradient, whose kept entries are gathered."""

    def __init__(self, keep, k, d):
        self.keep = keep
        self.ext = np.append(keep, d)
        self.full = np.zeros((k, d + 1))

    @classmethod
    def of_problem(cls, problem, theta):
        """The kept columns of ``problem`` from ``theta`` (k, d + 1), or None for all."""
        keep = _moved_columns(problem, theta)
        return None if keep is None else cls(keep, theta.shape[0], theta.shape[1] - 1)

    def of(self, a):
        """The kept entries of a (k, d + 1) array, C-contiguous: a column gather of several rows comes out in
        Fortran order, and _axpy updates its target through a flat view (a copy of such an array)."""
        return np.ascontiguousarray(a[:, self.ext])

    def params(self, u):
        """The kernels' parameters for ``u``, the kept entries of all outputs (written into ``full``)."""
        self.full[:, self.ext] = u
        return self.full

    def gather(self, G):
        """The kept entries of the kernels' flat gradient ``G`` of one or more outputs."""
        return np.asarray(G, dtype=np.float64).reshape(-1, self.full.shape[1])[:, self.ext]

    def put(self, theta, kept):
        """Write ``kept``, the kept entries, into the full ``theta``."""
        theta[:, self.ext] = kept


def compact_problem(problem, theta):
    """``problem`` (CSR, a ``Scaling``) restricted to the columns that can move (``_moved_columns``: those that
    store a value in some row or hold a weight in ``theta``), as (the restricted problem, its columns with the
    intercept's index d last), or None where they are more than PCG_KEEP_FRACTION of all or the copy below would
    take more memory than the solvers' vectors save (COMPACT_VECTORS). The restricted problem's X is X's values
    with its column indices renumbered (a copy of the indices, not of the values),
    its statistics those columns' own (in float64: ``Scaling.column_moments``), so every kernel pass and every
    vector of a full-batch solver on it is O(stored columns), not O(d): hashed text of 8,939 rows at d = 2^22
    stores 62,599 columns, and the strength path's and finish's passes each zeroed and added several d-sized
    sums. In every other column the gradient stays zero (see ``_moved_columns``), so a solver on the restricted
    problem takes the same steps; only the grouping of the sums, a function of the columns' count, differs."""
    sc = problem.scaling
    if not isinstance(problem.Xk, tuple) or sc is None or sc.x_var is None or sc.x_raw_mean is None:
        return None
    whole = problem.whole()  # sets stored_columns
    keep = _moved_columns(whole, theta)
    if keep is None:
        return None
    data, indices, indptr, d = problem.Xk
    lo, hi = int(indptr[0]), int(indptr[-1])
    dk = len(keep)
    # never a higher peak: the renumbered indices (and the numbering) must take less memory than the solvers'
    # COMPACT_VECTORS k·(d + 1) vectors lose (X is not copied where it has many values per column: a large X
    # keeps its passes over all columns, whose O(d) is then small beside its non-zeros)
    if 4 * ((hi - lo) + int(d)) > COMPACT_VECTORS * 8 * theta.shape[0] * (int(d) - dk):
        return None
    number = np.zeros(int(d), dtype=np.int32 if dk < 2 ** 31 else np.int64)
    number[keep] = np.arange(dk, dtype=number.dtype)
    Xk = (data[lo:hi], number[indices[lo:hi]], np.asarray(indptr) - indptr[0], dk)
    del number
    raw_mean, var = sc.column_moments()
    restricted = Scaling(sc.x_mean[keep], sc.x_scale[keep], sc.y_mean, sc.y_scale, sc.weight, x_var=var[keep],
                         y_var=sc.y_var, x_raw_mean=raw_mean[keep], y_raw_mean=sc.y_raw_mean)
    restricted._center = getattr(sc, "_center", None)
    return replace(problem, Xk=Xk, scaling=restricted, stored_columns=None), np.append(keep, int(d))


def compact_state(ts, ext):
    """A solver's state on ``compact_problem``'s columns ``ext`` of ``ts``: θ's columns (C-contiguous, as
    ``_Kept.of``: the solvers step through flat views) and the same step counts (``ts.scalars``, shared). The
    caller writes the solution back with ``ts.theta[:, ext] = state.theta``."""
    return SimpleNamespace(theta=np.ascontiguousarray(ts.theta[:, ext]), scalars=ts.scalars)


def _moved_columns(problem, theta):
    """The columns (sorted) to which train_pcg and train_lbfgs restrict their vectors, or None for all: on CSR X
    (``FitData.whole``'s ``stored_columns``) those that store a value in some row or hold a weight in ``theta``,
    when they are at most PCG_KEEP_FRACTION of them. In any other column the gradient stays zero (no row holds a
    value of it and the penalty acts on a zero weight, which the centring of a column stored in no row leaves zero
    too), so its search directions and steps are zero: only the sums over the vectors' zeros, in another order,
    differ."""
    stored = getattr(problem, "stored_columns", None)
    if stored is None:
        return None
    d = theta.shape[1] - 1
    moved = np.any(theta[:, :d] != 0.0, axis=0)
    moved[stored] = True
    keep = np.flatnonzero(moved)
    return keep if len(keep) <= PCG_KEEP_FRACTION * d else None


def _pcg_iterations(out, steps, theta, r, q, pdir, rz, f, f_ref, tol, n_iter_no_change, grad, zeros,
                    precondition_into, metric, rel_tol=None, clear_spread=None, grow_patience=False):
    """train_pcg's iterations (θ, r, q and pdir updated in place; ``out`` records them; ``metric``: v ↦ vᵀMv)."""
    small, clear, settled = 0, False, 0
    top = 0.0  # the largest curvature (Rayleigh quotient pᵀAp / pᵀMp) of the search directions so far
    lanczos = ([], [])  # CG's step sizes and direction ratios: the Lanczos matrix whose Ritz values bound the spread
    out.stop_reason = f"its limit of {steps} iterations reached"
    with np.errstate(all="ignore"):
        for _ in range(steps):
            if not (np.isfinite(rz) and rz > 0.0):
                out.converged = rz == 0.0
                out.stop_reason = "the residual vanished" if out.converged else "the residual stopped being finite"
                break
            grad(pdir, zeros, q, q, 0.0)  # q = A·p: u is written to q and read by the kernels before q is
            pap = reference.vdot(pdir, q)
            pmp = metric(pdir)
            if not (np.isfinite(pap) and np.isfinite(pmp)):
                out.stop_reason = "the curvature along the search direction stopped being finite"
                break
            rayleigh = pap / pmp if pmp > 0.0 else 0.0  # pᵀMp = 0: p vanished (to underflow)
            top = max(top, rayleigh)
            if not rayleigh > FLAT_CURVATURE * top:
                # a flat direction (curvature ≤ 0 is rounding too: the objective is convex): no step along it; the
                # residual left is rounding noise in the design's null space, along which no step gains
                out.converged = True
                out.stop_reason = ("the search direction's curvature fell to rounding level (the design is "
                                   "rank-deficient to rounding: the objective is flat along the directions left)")
                break
            alpha = rz / pap
            _axpy(theta, alpha, pdir)
            _axpy(r, -alpha, q)
            gain = 0.5 * alpha * rz
            f -= gain
            out.n_iter += 1
            out.losses.append(f)
            lanczos[0].append(alpha)
            if f <= 0.0:
                # the gains have used up the whole objective (a sum of squares and a penalty: never below zero), so
                # the model fits the rows exactly and the residual left is rounding noise: steps along it gain
                # nothing, and where the design has a null space (fewer rows than columns) they carry the weights
                # along it without bound (300 x 600 with columns whose means are 1e6 times their spread: the
                # weights' norm 2.8 -> 25, held-out R² 0.89 -> -7.4, after 270 such "gains")
                out.converged = True
                out.stop_reason = ("the objective as CG tracks it reached zero (the model fits the rows exactly; "
                                   "what is left is rounding)")
                break
            # relative to the objective down to an exact fit's (CG's running value then drifts by rounding, to 0
            # or below, and no gain would count as small)
            small = small + 1 if gain < tol * f_ref and (rel_tol is None or gain <= rel_tol * max(
                f, EXACT_FIT * f_ref)) else 0
            # the extreme Ritz values only move apart (interlacing): once wider, the spread stays wider
            if clear_spread is not None and not out.spread > clear_spread:
                last, out.spread = out.spread, _ritz_spread(*lanczos)
                # settled: the last iterations widened it by little (a spread still growing has not yet reached
                # the directions of small curvature, whose share of the gap the first gains do not show)
                settled = settled + 1 if last * (1.0 + SPREAD_SETTLED) >= out.spread else 0
                if small and small < n_iter_no_change and settled >= min(SETTLED_ITERATIONS, out.n_iter - 1) \
                        and out.spread <= clear_spread:
                    out.converged = clear = True
                    out.stop_reason = (f"an iteration gained less than tol={tol:g} (times the variance of y)"
                                       + ("" if rel_tol is None else f" and {rel_tol:g} of the objective")
                                       + f", the curvature spread measured {out.spread:.3g}")
                    break
            # grow_patience: a run of small gains as long as the iterations before it, at least (a plateau while
            # CG works through a group of large curvatures lasts about as long as reaching it took)
            if small >= (max(n_iter_no_change, out.n_iter - small) if grow_patience else n_iter_no_change):
                out.converged = True
                out.stop_reason = (f"an iteration gained less than tol={tol:g} (times the variance of y) "
                                   + ("" if rel_tol is None else f"and {rel_tol:g} of the objective ")
                                   + (f"{small} times in a row" if grow_patience else f"{n_iter_no_change} times"))
                break
            precondition_into(r, q)
            rz_new = reference.vdot(r, q)
            lanczos[1].append(rz_new / rz)
            pdir *= rz_new / rz
            pdir += q
            rz = rz_new
    if clear_spread is not None and lanczos[0]:
        out.spread = _ritz_spread(*lanczos)
    return f, clear


def _ritz(alphas, betas):
    """The extreme Ritz values of CG's Lanczos matrix after ``len(alphas)`` iterations (step sizes α_j, direction
    ratios β_j): diagonal 1/α_j + β_{j-1}/α_{j-1}, off-diagonal √β_j / α_j."""
    a = np.asarray(alphas, dtype=np.float64)
    b = np.asarray(betas[:len(a) - 1], dtype=np.float64)
    diag = 1.0 / a
    diag[1:] += b / a[:-1]
    if len(a) == 1:
        return float(diag[0]), float(diag[0])
    ritz = eigvalsh_tridiagonal(diag, np.sqrt(b) / a[:-1])
    return float(ritz[0]), float(ritz[-1])


def _ritz_spread(alphas, betas):
    """The ratio of the extreme Ritz values (``_ritz``): a lower bound on the preconditioned Hessian's spread."""
    low, high = _ritz(alphas, betas)
    return high / low if low > 0 else np.inf


def _blocks(n, size=1 << 15):
    """Slices of range(n) in blocks: elementwise NumPy expressions on them need only block-sized temporaries."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _axpy(y, a, x):
    """y += a·x in place, without a temporary of y's size (y C-contiguous: updated through a flat view)."""
    if not y.flags.c_contiguous:
        raise ValueError("_axpy updates a C-contiguous array in place")
    y, x = y.reshape(-1), x.reshape(-1)
    for s in _blocks(y.size):
        y[s] += a * x[s]
