"""Compiled kernels: one fused pass over the data per epoch.

Only arrays, scalars and integer codes cross this boundary; validation, defaults and the loop over epochs live
in Python. The optimizer rules, the epoch's layout (chunks, thread rules) and the step after a batch's gradient
are written once for both backends, in ``fastgd._rules``; this module holds the Numba row loops and thread
protocol (the native module, ``fastgd._native``, its own). The readable specification of every formula here
is ``fastgd.reference``; tests compare the two.

Layout conventions shared with ``fastgd._engine`` and ``fastgd.reference``:

* ``X``: (n, d) float32 or float64, C-contiguous, read in place (never copied, never written).
* ``Y``: (n, k) float64 targets (``k`` outputs trained together; a 1-D ``y`` is passed as a view ``y[:, None]``).
* ``sw``: (n,) float64 sample weights, or an empty array for "all ones".
* ``theta``: (k, d + 1) float64 parameters; column ``d`` is the intercept (one more coordinate, as with the
  bias of torch's ``nn.Linear``).
* ``state``: (n_slots, k * (d + 1)) float64 per-coordinate optimizer state (moments, accumulators).
* ``scalars``: (N_SCALARS,) float64: ``[0]`` step count t (updates done so far), ``[1]`` NAdam's running
  product of momentum coefficients (1.0 initially).
* ``hp``: (HP_LEN,) float64 hyperparameters: ``[0]`` lr, ``[1]`` weight_decay, ``[2:]`` optimizer-specific,
  in the order of the rule's ``*_HP`` names in ``fastgd._rules`` (``Optimizer.pack`` builds it from them).
* ``sched``: (SCHED_LEN,) float64: ``[0]`` schedule code, ``[1]`` warm-up steps, ``[2:]`` schedule params.
* ``pen``: (5,) float64: ``[0]`` l1 strength, ``[1]`` l2 strength (applied to the weights, not the intercept),
  ``[2]`` the batch weight (0: each batch's own; see ``fastgd._rules.finish_batch``), ``[3]`` and ``[4]`` the
  loss's code and parameter (``fastgd._rules.loss_value``). The last one or three may be left off (a batch
  weight of 0, the squared error).

Objective of a batch of rows i with weights s_i (s_i = 1 without sample weights):
    L = Σ s_i r_i² / Σ s_i,   r_i = x_i·w + b − y_i,
    ∂L/∂w = (2 / Σ s_i) Σ s_i r_i x_i,   ∂L/∂b = (2 / Σ s_i) Σ s_i r_i,
plus ``pen[1] * w`` from the l2 penalty (½·pen[1]·‖w‖²) and a proximal step for the l1 penalty (pen[0]·‖w‖₁).

Parallel reduction: a batch is cut into fixed-size row chunks (the size depends on the batch size and the
number of coordinates only, never on the thread count; see ``fastgd._rules.chunk_rows``); each chunk
accumulates into its own padded buffer; the buffers are then summed by a fixed pairwise tree over the chunk
indices (dense X; see _tree_within) or in chunk order (CSR). The sequential path runs the same chunks and the
same sum, so both paths and any thread count give bit-identical results. The parallel path runs one parallel
region per epoch, not per batch (a region costs ~4-5 us to launch): workers claim tasks (one contiguous run of
a batch's chunks each) of the published batch through per-task flags and the worker that finishes a batch's
last task reduces and updates (see ``_epoch_team``).
"""

import inspect
import math
import os

import numba
import numpy as np
from numba import prange, types
from numba.core import caching
from numba.extending import overload

from . import _config
from . import _intrinsics as intr
from . import _rules
from ._config import NUMBA_FLAGS, OVERLOAD_FLAGS, STRICT_FLAGS, compiles_uninterrupted, jit
from ._rules import CONSTANT, COSINE, EXPONENTIAL, INVSCALING, STEP  # noqa: F401 (for fastgd.schedules)

# The optimizer rules and lr_at are written once, in fastgd._rules, for this backend and the native one. Each
# function there is jitted in place: Numba resolves a callee through its caller's module globals, so the
# names in _rules must be the jitted versions (and each is jitted once, with the same flags). They are inlined
# into their callers (Numba IR): with plain calls an update-bound epoch (d = 10, batch 32, 1 thread) took
# 10-15 % longer than with the rules written in this file; inlined, as long.
# finish_batch is the exception: called out of line by the sequential and the parallel epoch, since two
# inlined copies may be optimized differently (reassociation) and the two paths must give the same bits. Numba
# still links a copy of it into each caller and optimizes it again there, and which copy runs depends on what
# the process compiled or loaded from the cache first, so it is compiled without fastmath (_config.STRICT_FLAGS):
# every copy then rounds as written (docs/design.md, "Compiler flags"). So is the lazy CSR epoch (_STRICT).
_OUT_OF_LINE = ("finish_batch",)
# The functions compiled with _config.STRICT_FLAGS: called out of line and holding the rules (inlined).
_STRICT = _OUT_OF_LINE + ("_epoch_csr_lazy",)


def _fmadd(a, b, c):
    """fastgd._rules.fmadd for Numba: an explicit fma (fastgd._intrinsics.fma), whatever LLVM would contract."""
    return intr.fma(a, b, c)


_rules.fmadd = compiles_uninterrupted(numba.njit(inline="always", **NUMBA_FLAGS)(_fmadd))
for _name, _f in list(vars(_rules).items()):
    if inspect.isfunction(_f) and _f.__module__ == _rules.__name__:
        _inline, _flags = ("never", STRICT_FLAGS) if _name in _OUT_OF_LINE else ("always", NUMBA_FLAGS)
        setattr(_rules, _name, compiles_uninterrupted(numba.njit(inline=_inline, **_flags)(_f)))
lr_at = _rules.lr_at


class _DependentCacheLocator(caching._CacheLocator):
    """Numba's cache checks only a function's own file, but the machine code cached for this file also holds the
    _rules and _intrinsics functions it calls: their stamps join this file's, so an edited rule is recompiled
    instead of the old one running from the cache."""

    _here = os.path.abspath(__file__)
    _deps = (os.path.join(os.path.dirname(_here), "_rules.py"), os.path.join(os.path.dirname(_here), "_intrinsics.py"))

    def __init__(self, inner):
        self._inner = inner
        self._py_file = inner._py_file

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    def get_source_stamp(self):
        deps = tuple((os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in self._deps)
        return self._inner.get_source_stamp(), deps

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.abspath(py_file) != cls._here:
            return None
        for other in _CACHE_IMPL._locator_classes:
            inner = None if other.__name__ == cls.__name__ else other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # named _CacheImpl before Numba 0.61
_CACHE_IMPL._locator_classes[:] = [
    _DependentCacheLocator, *(c for c in _CACHE_IMPL._locator_classes if c.__name__ != "_DependentCacheLocator")]

N_SCALARS, HP_LEN, SCHED_LEN = _rules.N_SCALARS, _rules.HP_LEN, _rules.SCHED_LEN  # written once, in _rules
STATE_ROWS = _rules.STATE_ROWS  # state rows (slots) each optimizer code needs, declared with the rules
# The layout of the epoch (paths, chunks, padding, thread rules, spins, prefetch distance) and the step after a
# batch's gradient are written once, in fastgd._rules, for this backend and the native one.
from ._rules import (CHUNK_BUDGET_BYTES, CHUNK_ROWS, MAX_CHUNKS, PAD, PAR_MIN_WORK,  # noqa: E402,F401
                     PAR_WORK_PER_THREAD, PATH_AUTO, PATH_PARALLEL, PATH_SEQUENTIAL, PREDICT_ROWS, PREFETCH_BYTES,
                     READ_ROWS, REGION_MIN_WORK, SPINS_BEFORE_SLEEP, SPLIT_NNZ, SPLIT_ROWS, STATS_BUDGET_BYTES,
                     STATS_CHUNK_BYTES)
batch_weight, chunk_rows, chunk_stride, epoch_threads = (_rules.batch_weight, _rules.chunk_rows, _rules.chunk_stride,
                                                         _rules.epoch_threads)
finish_batch, max_chunks, region_threads, stats_rows = (_rules.finish_batch, _rules.max_chunks, _rules.region_threads,
                                                        _rules.stats_rows)
batches_per_group, split_block_rows = _rules.batches_per_group, _rules.split_block_rows
split_blocks, split_block_count = _rules.split_blocks, _rules.split_block_count


SQUARED = (_rules.SQUARED_ERROR, 0.0)  # the loss (code, param) the kernels use unless told otherwise


@jit()
def _pen_loss(pen):
    """The loss ``(code, param)`` packed in ``pen`` after [l1, l2, batch_weight]; shorter: the squared error."""
    if pen.shape[0] > 4:
        return int(pen[3]), pen[4]
    return SQUARED


@jit()
def _touch_l2(pen):
    """pen[5] (after the loss): whether a lazy Adam-family epoch may apply the l2 penalty only where a batch
    touches (fastgd._rules.lazy_kind); left off: it may not. With d more values after it, pen[6 + c] is column
    c's factor f_c of the frequency-weighted penalty ("lazy updates" in fastgd._rules); without, f_c = 1."""
    return pen.shape[0] > 5 and pen[5] != 0.0


@jit()
def _step_args(state, raw, sw, pen, stdz, avg):
    """What fastgd._rules.finish_batch takes besides the batch, from the epoch's arrays: the flat state and raw
    parameters, whether rows are weighted, l1, l2, the fixed batch weight (pen[2], 0 when left off), whether
    the loss's code and parameter (the standardized objective's unit: fastgd._rules.loss_unit), whether to
    standardize and to average."""
    wnorm = pen[2] if pen.shape[0] > 2 else 0.0
    lcode, la = _pen_loss(pen)
    return (state.reshape(state.size), raw.reshape(raw.size), sw.shape[0] > 0, pen[0], pen[1], wnorm, lcode, la,
            stdz.shape[0] > 0, avg.shape[0] > 0)


@jit()
def _check_loss(lossp):
    code, a = lossp
    if code < 0 or code >= len(_rules.LOSSES):
        raise ValueError("loss code must be in [0, " + str(len(_rules.LOSSES)) + "), got " + str(code))
    if code == _rules.QUANTILE and not (a > 0.0 and a < 1.0):
        raise ValueError("the quantile loss's parameter must be in (0, 1), got " + str(a))
    if not a >= 0.0:
        raise ValueError("the loss's parameter (epsilon) must be >= 0, got " + str(a))


@jit()
def _chunk_grad_dense(X, Y, sw, theta, start, stop, buf, lossp, then=-1):
    """buf[:k*(d+1)] = Σ s_i r_i [x_i, 1] per output; buf[k*(d+1)] = Σ s_i r_i², over rows [start, stop).

    With another loss (``lossp = [code, param]``, see fastgd._rules.loss_value): Σ s_i slope(r_i) [x_i, 1]
    and Σ s_i loss(r_i) (one rule per row, fastgd._rules.loss_accumulate).

    Rows go in pairs from ``start`` (an odd last row alone): one loop takes the two rows' dot products
    (two independent chains of adds), a second adds the previous pair into the gradient, buf += s_a x_a +
    s_b x_b, from L1, so that each 64-byte store to the gradient (about two cycles, the row loop's
    bottleneck) carries two rows, and that second loop never waits for the loss rule of the pair just
    computed (a loss with a clip or a kink: a longer chain than the squared error's). The pairs start at
    the chunk's first row, so any thread count gives the same bits;
    _chunk_loss_dense runs the same dot loop, so the loss-only pass gives the same bits. The rows about
    PREFETCH_BYTES ahead are prefetched into L2 (see intr.prefetch_row); ``then`` >= 0: the rows read after
    this chunk start there (the next batch's), so the rows ahead of the last ones are prefetched from there.
    (One row at a time, with row i's dot product fused with row i − 1's gradient in one loop, took 1.3x the
    one-thread read of X.)
    """
    d = X.shape[1]
    k = Y.shape[1]
    p = d + 1
    m = k * p
    for q in range(m):
        buf[q] = 0.0
    buf[m] = 0.0
    if stop <= start:
        return
    loss = 0.0
    weighted = sw.shape[0] > 0
    lcode, la = lossp
    n = X.shape[0]
    line = 64 // X.itemsize  # elements per cache line
    ahead = (PREFETCH_BYTES + d * X.itemsize - 1) // (d * X.itemsize)  # rows
    npair = (stop - start) // 2
    for j in range(k):
        o = j * p
        bsum = 0.0
        sa = sb = 0.0
        pf = start + ahead  # the rows prefetched (an index: a select per row made the native loop 5 % slower)
        for t in range(npair):
            i = start + 2 * t
            if then >= 0 and stop <= pf < stop + 2:  # the rows read after this chunk: from there on
                pf = then + (pf - stop)
            if j == 0 and pf + 2 <= n:
                for q in range(0, 2 * d, line):  # rows pf and pf + 1
                    intr.prefetch_row(X, pf, q)
            pf += 2
            a0 = theta[j, d]
            a1 = theta[j, d]
            for c in range(d):
                wc = theta[j, c]
                a0 += X[i, c] * wc
                a1 += X[i + 1, c] * wc
            if t > 0:  # the previous pair: its slopes are known, so this does not wait for the loss below
                for c in range(d):
                    buf[o + c] += sa * X[i - 2, c] + sb * X[i - 1, c]
            sa, loss = _rules.loss_accumulate(lcode, a0 - Y[i, j], la, sw[i] if weighted else 1.0, loss)
            sb, loss = _rules.loss_accumulate(lcode, a1 - Y[i + 1, j], la, sw[i + 1] if weighted else 1.0, loss)
            bsum += sa + sb
        if npair > 0:
            i = start + 2 * npair
            for c in range(d):
                buf[o + c] += sa * X[i - 2, c] + sb * X[i - 1, c]
        if (stop - start) % 2 == 1:  # the odd last row
            i = stop - 1
            a0 = theta[j, d]
            for c in range(d):
                a0 += X[i, c] * theta[j, c]
            sa, loss = _rules.loss_accumulate(lcode, a0 - Y[i, j], la, sw[i] if weighted else 1.0, loss)
            bsum += sa
            for c in range(d):
                buf[o + c] += sa * X[i, c]
        buf[o + d] = bsum
    buf[m] = loss


@jit()
def _chunk_grad_csr(X, Y, sw, theta, start, stop, buf, lossp):
    """As _chunk_grad_dense for a CSR matrix given as ``(data, indices, indptr, n_features)``.

    The hot gradient loops (dense and CSR) stay written per backend, unlike the rules (fastgd._rules): they
    read X in each backend's own representation (Numba arrays and tuples; Cython raw pointers with fused
    value and index types) and are tuned per backend (prefetch, software pipelining, vector accumulators)."""
    k = Y.shape[1]
    m = k * (X[3] + 1)
    for q in range(m + 1):
        buf[q] = 0.0
    _csr_rows(X, Y, sw, theta, start, stop, buf, lossp)


@jit()
def _sums_hint_end(indptr, k, d):
    """Where the CSR sums' hints stop: X's last value where k·(d + 1) parameters take at least
    SUMS_HINT_MIN_BYTES, else 0 (no hints)."""
    return indptr[indptr.shape[0] - 1] if k * (d + 1) * 8 >= _rules.SUMS_HINT_MIN_BYTES else 0


@jit()
def _hint_sums(indices, lo, hi, end, theta, buf, k, p):
    """Hint the parameters (``theta``, k rows) and the sums (``buf``, output j's at j·p; either may be empty) of
    the values SUMS_AHEAD_VALUES after [lo, hi), up to ``end``: in a loop of their own, so that the sums' loops
    compile as without them (the same adds, the same bits). Never a change of result."""
    for q in range(lo + _rules.SUMS_AHEAD_VALUES, min(hi + _rules.SUMS_AHEAD_VALUES, end)):
        c = indices[q]
        for j in range(k):
            if theta.shape[0] > 0:
                intr.prefetch_row(theta, j, c)
            if buf.shape[0] > 0:
                intr.prefetch_at(buf, j * p + c)


@jit()
def _csr_rows(X, Y, sw, theta, start, stop, buf, lossp):
    """Add Σ s_i r_i [x_i, 1] per output into buf[:k*(d+1)] and Σ s_i r_i² into buf[k*(d+1)], rows [start, stop)
    (another loss: s_i slope(r_i) and s_i loss(r_i), as _chunk_grad_dense)."""
    X = _borrow_x(X)
    data, indices, indptr, d = X
    k = Y.shape[1]
    p = d + 1
    m = k * p
    loss = 0.0
    weighted = sw.shape[0] > 0
    lcode, la = lossp
    end = _sums_hint_end(indptr, k, d)
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        lo = indptr[i]
        hi = indptr[i + 1]
        _hint_sums(indices, lo, hi, end, theta, buf, k, p)
        for j in range(k):
            o = j * p
            sr, loss = _rules.loss_accumulate(lcode, _row_dot(X, i, theta, j) - Y[i, j], la, s, loss)
            for q in range(lo, hi):
                buf[o + indices[q]] += sr * data[q]
            buf[o + d] += sr
    buf[m] += loss


def _is_csr(X):
    return isinstance(X, types.BaseTuple)


def _chunk_grad(X, Y, sw, theta, start, stop, buf, lossp, then):
    """Dispatches on X's type at compile time: dense 2-D array or CSR tuple (``then``: see _chunk_grad_dense).

    (This body only runs as plain Python, with NUMBA_DISABLE_JIT=1; compiled callers use the overload.)
    """
    if isinstance(X, tuple):
        return _chunk_grad_csr(X, Y, sw, theta, start, stop, buf, lossp)
    return _chunk_grad_dense(X, Y, sw, theta, start, stop, buf, lossp, then)


@overload(_chunk_grad, jit_options=OVERLOAD_FLAGS)
def _chunk_grad_impl(X, Y, sw, theta, start, stop, buf, lossp, then):
    if _is_csr(X):
        return lambda X, Y, sw, theta, start, stop, buf, lossp, then: _chunk_grad_csr(X, Y, sw, theta, start, stop,
                                                                                     buf, lossp)
    return lambda X, Y, sw, theta, start, stop, buf, lossp, then: _chunk_grad_dense(X, Y, sw, theta, start, stop,
                                                                                   buf, lossp, then)


@jit()
def _run_grad(X, Y, sw, theta, start, stop, ch, part, q0, lossp, then):
    """Chunks of ``ch`` rows of [start, stop), chunk q into part[q0 + q], chunk by chunk; ``then``: where the
    rows read next start (see _chunk_grad_dense), or -1. (One row pipeline across chunk boundaries, as the
    native kernel runs it, made this Numba epoch 2x slower in three formulations tried, on 1 and 2 threads, before
    the loops ran on borrowed views (docs/design.md, "Numba's reference counts in hot loops"): not tried since.)"""
    q = q0
    s0 = start
    while s0 < stop:
        _chunk_grad(X, Y, sw, theta, s0, min(s0 + ch, stop), part[q], lossp, then if s0 + ch >= stop else -1)
        q += 1
        s0 += ch


def shape(X):
    """(n_samples, n_features) of a dense array or a CSR tuple (body: plain Python, NUMBA_DISABLE_JIT=1)."""
    if isinstance(X, tuple):
        return X[2].shape[0] - 1, X[3]
    return X.shape[0], X.shape[1]


@overload(shape, jit_options=OVERLOAD_FLAGS)
def _shape_impl(X):
    if _is_csr(X):
        return lambda X: (X[2].shape[0] - 1, X[3])
    return lambda X: (X.shape[0], X.shape[1])


def _borrow_x(X):
    """X with its arrays as borrowed views (intr.borrowed: no atomic reference counts where a loop passes it to a
    function per batch or chunk); valid while X is. (Body: plain Python, NUMBA_DISABLE_JIT=1.)"""
    return X


@overload(_borrow_x, jit_options=OVERLOAD_FLAGS)
def _borrow_x_impl(X):
    if _is_csr(X):
        return lambda X: (intr.borrowed(X[0]), intr.borrowed(X[1]), intr.borrowed(X[2]), X[3])
    return lambda X: intr.borrowed(X)


def _row_dot(X, i, theta, j):
    """x_i · theta[j, :d] + theta[j, d]: the one row dot product of predict and (CSR) of the gradient sums, the
    split pass's residuals and the loss pass, so that their residuals have the same bits; inlined (a caller
    in a loop passes X borrowed: _borrow_x). (Body: plain Python, NUMBA_DISABLE_JIT=1.)"""
    if isinstance(X, tuple):
        data, indices, indptr, d = X
        lo, hi = indptr[i], indptr[i + 1]
        return theta[j, d] + float(np.dot(data[lo:hi], theta[j, indices[lo:hi]]))
    return theta[j, X.shape[1]] + float(np.dot(X[i], theta[j, :X.shape[1]]))


@overload(_row_dot, jit_options=OVERLOAD_FLAGS, inline="always")
def _row_dot_impl(X, i, theta, j):
    if _is_csr(X):
        def csr(X, i, theta, j):
            data, indices, indptr, d = X
            acc = theta[j, d]
            for q in range(indptr[i], indptr[i + 1]):
                acc += data[q] * theta[j, indices[q]]
            return acc
        return csr

    def dense(X, i, theta, j):
        d = X.shape[1]
        acc = theta[j, d]
        for c in range(d):
            acc += X[i, c] * theta[j, c]
        return acc
    return dense


# ----------------------------------------------------------------------------------------------------------
# Argument checks: every entry point checks the shapes it is handed (cheaply: O(n + nnz + batches) once per
# call), so a wrong shape is a ValueError, never an out-of-bounds read or write.


@jit()
def _check_csr(data, indices, indptr, d):
    if d < 0:
        raise ValueError("CSR X: n_features must be >= 0, got " + str(d))
    if indptr.shape[0] < 1:
        raise ValueError("CSR X: indptr must hold n_samples + 1 entries, got an empty array")
    if indptr[0] != 0:
        raise ValueError("CSR X: indptr[0] must be 0, got " + str(indptr[0]))
    if data.shape[0] != indices.shape[0]:
        raise ValueError("CSR X: data and indices must have the same length, got " + str(data.shape[0])
                         + " and " + str(indices.shape[0]))
    for i in range(indptr.shape[0] - 1):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("CSR X: indptr must be nondecreasing; indptr[" + str(i + 1) + "] < indptr["
                             + str(i) + "]")
    nnz = indptr[indptr.shape[0] - 1]
    if nnz > indices.shape[0]:
        raise ValueError("CSR X: indptr[-1] = " + str(nnz) + " exceeds len(indices) = " + str(indices.shape[0]))
    for q in range(nnz):
        if indices[q] < 0 or indices[q] >= d:
            raise ValueError("CSR X: column index " + str(indices[q]) + " out of range [0, n_features = "
                             + str(d) + ")")


def _check_x(X):
    """Raise ValueError if a CSR tuple is inconsistent (dense arrays are consistent by construction)."""
    if isinstance(X, tuple):  # plain Python (NUMBA_DISABLE_JIT=1); compiled callers use the overload
        _check_csr(X[0], X[1], X[2], X[3])


@overload(_check_x, jit_options=OVERLOAD_FLAGS)
def _check_x_impl(X):
    if _is_csr(X):
        return lambda X: _check_csr(X[0], X[1], X[2], X[3])
    return lambda X: None


@jit()
def _check_rows(X, Y, sw, theta):
    """X consistent; Y has X's rows; sw empty or one weight per row; theta (k, d + 1) with k = Y's columns."""
    _check_x(X)
    n, d = shape(X)
    k = Y.shape[1]
    if Y.shape[0] != n:
        raise ValueError("Y must have one row per sample of X: got " + str(Y.shape[0]) + " rows for "
                         + str(n) + " samples")
    if sw.shape[0] != 0 and sw.shape[0] != n:
        raise ValueError("sw (sample weights) must be empty or hold one weight per sample (" + str(n)
                         + "), got " + str(sw.shape[0]))
    if theta.shape[0] != k or theta.shape[1] != d + 1:
        raise ValueError("theta must have shape (n_outputs, n_features + 1) = (" + str(k) + ", " + str(d + 1)
                         + "), got (" + str(theta.shape[0]) + ", " + str(theta.shape[1]) + ")")


@jit()
def _check_batches(n, batch_size, ids, name):
    """batch_size >= 1 and every listed batch index in [0, n_batches)."""
    if batch_size < 1:
        raise ValueError("batch_size must be a positive int, got " + str(batch_size))
    nb = (n + batch_size - 1) // batch_size
    for i in range(ids.shape[0]):
        if ids[i] < 0 or ids[i] >= nb:
            raise ValueError(name + " holds batch index " + str(ids[i]) + ", outside [0, n_batches = "
                             + str(nb) + ")")


@jit()
def _check_epoch_args(X, Y, sw, theta, state, scalars, code, hp, sched, pen, batch_size, order):
    """Raise ValueError unless every array ``epoch`` is given has the shape the code below relies on."""
    _check_rows(X, Y, sw, theta)
    n, d = shape(X)
    P = Y.shape[1] * (d + 1)
    _check_batches(n, batch_size, order, "order")
    if code < 0 or code >= len(STATE_ROWS):
        raise ValueError("optimizer code must be in [0, " + str(len(STATE_ROWS)) + "), got " + str(code))
    if state.shape[0] < STATE_ROWS[code] or state.shape[1] != P:
        raise ValueError("state must have shape (" + str(STATE_ROWS[code]) + ", " + str(P)
                         + ") for this optimizer and theta (start a fresh state when the optimizer or the "
                         + "shape changes), got (" + str(state.shape[0]) + ", " + str(state.shape[1]) + ")")
    if scalars.shape[0] < N_SCALARS:
        raise ValueError("scalars must hold " + str(N_SCALARS) + " values, got " + str(scalars.shape[0]))
    if hp.shape[0] < HP_LEN:
        raise ValueError("hp must hold " + str(HP_LEN) + " hyperparameters, got " + str(hp.shape[0]))
    if sched.shape[0] < SCHED_LEN:
        raise ValueError("sched must hold " + str(SCHED_LEN) + " values, got " + str(sched.shape[0]))
    if pen.shape[0] < 2 or pen.shape[0] == 4 or (pen.shape[0] > 6 and pen.shape[0] != 6 + d):  # a loss code
        # without its parameter, say
        raise ValueError("pen must hold 2, 3, 5 or 6 values ([l1, l2, batch weight, loss code, loss param, "
                         + "l2 at touch], the last one, two or four left off), or 6 + d (the l2 at touch's "
                         + "column factors after them), got " + str(pen.shape[0]))
    _check_loss(_pen_loss(pen))


@jit()
def _check_stats_args(X, Y, sw, theta, batch_size, batch_ids):
    _check_rows(X, Y, sw, theta)
    _check_batches(shape(X)[0], batch_size, batch_ids, "batch_ids")


@jit()
def _check_predict_args(X, theta):
    _check_x(X)
    d = shape(X)[1]
    if theta.shape[1] != d + 1:
        raise ValueError("theta must have n_features + 1 = " + str(d + 1) + " columns, got "
                         + str(theta.shape[1]))


@jit()
def _predict_rows(X, theta, out, lo, hi):
    for i in range(lo, hi):
        for j in range(theta.shape[0]):
            out[i, j] = _row_dot(X, i, theta, j)


@jit(parallel=True)
def _predict_parallel(X, theta):
    _check_predict_args(X, theta)
    n = shape(X)[0]
    out = np.empty((n, theta.shape[0]))
    nch = (n + PREDICT_ROWS - 1) // PREDICT_ROWS
    for c in prange(nch):
        _predict_rows(X, theta, out, c * PREDICT_ROWS, min(c * PREDICT_ROWS + PREDICT_ROWS, n))
    return out


@jit()
def _predict_sequential(X, theta):
    _check_predict_args(X, theta)
    n = shape(X)[0]
    out = np.empty((n, theta.shape[0]))
    _predict_rows(X, theta, out, 0, n)
    return out


def _threads(n_threads):
    """The thread count a Python entry point runs with (None: the n_jobs=None rule of fastgd._config)."""
    if _config.sequential_only():
        return 1
    return _config.effective_n_threads(None) if n_threads is None else max(1, int(n_threads))


def _in_team(fn, n_threads, *args):
    """Call the parallel kernel ``fn`` with Numba's (thread-local) thread count set to ``n_threads``."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(before)


def predict(X, theta, n_threads=None):
    """(n, k) predictions X·Wᵀ + b for a dense array or a CSR tuple, in float64, without converting X.

    ``n_threads``: None follows the ``n_jobs=None`` rule (fastgd._config.effective_n_threads); 1, or a
    child forked after threads had run, takes a path that opens no parallel region.
    """
    n = shape(X)[0]
    n_threads = region_threads(_threads(n_threads), -(-n // PREDICT_ROWS), _work(X, n, theta.shape[0]))
    if n_threads == 1:
        return _predict_sequential(X, theta)
    return _in_team(_predict_parallel, n_threads, X, theta)


@jit()
def _sum_chunks(part, nch, G):
    """G = part[0] + part[1] + ... + part[nch - 1], in chunk order (every path sums through this one function)."""
    m = G.shape[0]
    for q in range(m):
        G[q] = 0.0
    for c in range(nch):  # fixed summation order
        for q in range(m):
            G[q] += part[c, q]


def _itemsize(X):
    """Bytes per value of X (body: plain Python)."""
    return X[0].itemsize if isinstance(X, tuple) else X.itemsize


@overload(_itemsize, jit_options=OVERLOAD_FLAGS)
def _itemsize_impl(X):
    if _is_csr(X):
        return lambda X: X[0].itemsize
    return lambda X: X.itemsize


def _tree_order(X):
    """Whether the epoch sums X's chunk buffers with the pairwise tree (dense X) or in chunk order (CSR: its
    sequential path keeps one buffer; with many features a buffer is large). Body: plain Python."""
    return not isinstance(X, tuple)


@overload(_tree_order, jit_options=OVERLOAD_FLAGS)
def _tree_order_impl(X):
    if _is_csr(X):
        return lambda X: False
    return lambda X: True


def _prefetch_line(X, i, c):
    """Prefetch the cache line of X[i, c] into L2 (dense X; nothing for CSR). Body: plain Python, a no-op."""


@overload(_prefetch_line, jit_options=OVERLOAD_FLAGS)
def _prefetch_line_impl(X, i, c):
    if _is_csr(X):
        return lambda X, i, c: None
    return lambda X, i, c: intr.prefetch_row(X, i, c)


@jit()
def _add_node(part, a, b, m):
    for q in range(m + 1):
        part[a, q] += part[b, q]


@jit()
def _tree_within(part, lo, hi, nch, m):
    """The dense epoch's pairwise sum tree over a batch's chunk buffers (node (half, a), a a multiple of
    2 * half: chunks [a, a + 2 * half), its sum kept in buffer a, its right child a + half added into it in
    place): the nodes inside the run of chunks [lo, hi). A task adds those of its own run, the batch's last task
    the ones across runs (_tree_across): the total (buffer 0) has the same bits for any split into tasks, and
    the finisher reads about one partial per task instead of every chunk's buffer (as the native kernel)."""
    half = 1
    while half < nch:
        step = 2 * half
        a = (lo + step - 1) // step * step
        while a < nch and min(a + step, nch) <= hi:
            if a + half < nch:
                _add_node(part, a, a + half, m)
            a += step
        half = step


@jit()
def _task_of(c, nch, ntb):
    """The task of chunk c when nch chunks are split into ntb runs [nch * j // ntb, nch * (j + 1) // ntb)."""
    return ((c + 1) * ntb + nch - 1) // nch - 1


@jit()
def _tree_across(part, nch, ntb, m):
    """The nodes of the sum tree that span several tasks' runs (see _tree_within), bottom-up."""
    half = 1
    while half < nch:
        step = 2 * half
        a = 0
        while a + half < nch:
            if _task_of(a, nch, ntb) != _task_of(min(a + step, nch) - 1, nch, ntb):
                _add_node(part, a, a + half, m)
            a += step
        half = step


@jit(parallel=True)
def _batch_grad_parallel(X, Y, sw, theta, start, stop, ch, part, G, lossp):
    nch = (stop - start + ch - 1) // ch
    for c in prange(nch):
        s0 = start + c * ch
        _chunk_grad(X, Y, sw, theta, s0, min(s0 + ch, stop), part[c], lossp, -1)
    _sum_chunks(part, nch, G)


@jit()
def _batch_grad_sequential(X, Y, sw, theta, start, stop, ch, part, G, lossp):
    nch = (stop - start + ch - 1) // ch
    m = G.shape[0]
    for q in range(m):
        G[q] = 0.0
    for c in range(nch):  # same chunks, same order as the parallel path
        s0 = start + c * ch
        _chunk_grad(X, Y, sw, theta, s0, min(s0 + ch, stop), part[0], lossp, -1)
        for q in range(m):
            G[q] += part[0, q]


@jit()
def batch_gradient(X, Y, sw, theta, start, stop, parallel, lossp=SQUARED):
    """Gradient of the batch objective (without penalty) at ``theta`` and the batch's weighted loss.

    Returns ``(G, loss)``: G of shape (k * (d + 1),) in theta's flattened layout.
    """
    k = Y.shape[1]
    m = k * (shape(X)[1] + 1)
    ch = chunk_rows(stop - start, m)
    nch = (stop - start + ch - 1) // ch
    part = np.empty((nch if parallel else 1, chunk_stride(m)))
    G = np.empty(m + 1)
    if parallel:
        _batch_grad_parallel(X, Y, sw, theta, start, stop, ch, part, G, lossp)
    else:
        _batch_grad_sequential(X, Y, sw, theta, start, stop, ch, part, G, lossp)
    W = _batch_weight(sw, start, stop)
    loss = G[m] / W
    out = np.empty(m)
    for q in range(m):
        out[q] = G[q] * (2.0 / W)
    return out, loss


@jit()
def _batch_weight(sw, start, stop):
    """fastgd._rules.batch_weight of rows [start, stop) of the (n,) or empty weights ``sw``."""
    return batch_weight(sw, sw.shape[0] > 0, start, stop)


@jit()
def update(code, th, G, S, scalars, hp, lr, eta):
    """Apply one optimizer step (``fastgd._rules.update``) to the flat parameters ``th`` given the flat gradient ``G``.

    ``S`` is the (n_slots, P) state array; ``scalars[0]`` must already hold the new step count t. When ``eta``
    is non-empty it receives each coordinate's effective step size, which the l1 proximal step uses.
    """
    _rules.update(code, th, G, S.reshape(S.size), th.shape[0], scalars, hp, lr, eta, eta.shape[0] > 0)


@jit()
def _line_aligned_empty(k, p):
    """An uninitialized (k, p) float64 array starting on a 64-byte boundary (see _engine.line_aligned_zeros)."""
    buf = np.empty(k * p + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + k * p].reshape((k, p))


@jit()
def raw_theta(th, stdz, k, d, raw):
    """Parameters in the data's units (``raw``, (k, d + 1)) from the standardized ones: ``fastgd._rules.raw_theta``."""
    _rules.raw_theta(th, stdz, k, d, raw.reshape(raw.size))


# The team's counters, one cache line apart (a completion must not invalidate the line every waiting worker
# polls): published batch, tasks done, sleepers (slots of ``sync``); each task's claim flag has a line too.
SYNC_STRIDE = 8
S_PUB, S_DONE, S_SLEEP = 0, SYNC_STRIDE, 2 * SYNC_STRIDE


@jit()
def _claim(slots, w, ntb, key):
    """Claim a task of the published batch (``key``: its index + 1): worker w's own task w first (its own
    cache line: no contention when every worker is running), else the first unclaimed one after it (a worker
    the OS descheduled delays nobody: the running ones take its task). Slot j holds the last key task j was
    claimed for; returns the task's index in the batch, or -1 when all ``ntb`` are taken."""
    for s in range(ntb):
        j = (w + s) % ntb
        q = j * SYNC_STRIDE
        if intr.load_acquire(slots, q) < key and intr.fetch_max(slots, q, key) < key:
            return j
    return -1


@jit()
def _signal(sync, word, sleepers):
    """Advance the counter sync[word] (any number of workers may: seq_cst), waking the workers asleep on it
    (sync[sleepers] counts them), if any."""
    intr.fetch_add(sync, word, 1)
    if intr.fetch_add(sync, sleepers, 0) > 0:
        intr.futex_wake(sync, word)


@jit()
def _wait_change(sync, word, sleepers, seen):
    """Wait until sync[word] is no longer ``seen``: spin SPINS_BEFORE_SLEEP times, then sleep on a futex (at
    most 1 ms at a time; sync[sleepers] counts the sleepers, seq_cst RMWs on both sides with _signal)."""
    spins = 0
    while intr.load_acquire(sync, word) == seen:
        spins += 1
        if spins < SPINS_BEFORE_SLEEP:
            intr.spin_pause()
        else:
            intr.fetch_add(sync, sleepers, 1)
            if intr.fetch_add(sync, word, 0) == seen:
                intr.futex_wait(sync, word, seen)
            intr.fetch_add(sync, sleepers, -1)


@jit(parallel=True)
def _epoch_team(X, Y, sw, theta, raw, state, scalars, code, hp, lr_sched, pen, fit_intercept, batch_size, order,
                n_workers, ch, part, G, eta, task_start, sync, slots, acc, stdz, avg):
    """The parallel epoch (``lr_sched``: the schedule; Numba reserves the name ``sched`` in prange code): one
    parallel region for the whole epoch instead of one per batch.

    Each batch is split into one task per worker (a contiguous run of its chunks; fewer tasks when the batch
    has fewer chunks); batch bi's tasks are counted in [task_start[bi], task_start[bi + 1]). Workers claim tasks
    of the published batch (sync[S_PUB]) only (_claim: its own task first, then any unclaimed one); a worker
    that finds them all taken waits for the next batch holding none. Completed tasks are counted in
    sync[S_DONE]; the worker that completes a batch's last task finishes the sum of the chunk buffers
    (_tree_across, or in chunk order for CSR), applies the update, and publishes the next batch (an atomic
    increment of sync[S_PUB]), waking the workers that sleep waiting for it (sync[S_SLEEP] counts them; a
    waiting worker spins SPINS_BEFORE_SLEEP times, then sleeps on a futex, at most 1 ms at a time). A waiting
    worker only ever waits for tasks that running workers hold, and a worker alone does all tasks itself, so
    the protocol cannot deadlock whatever number of threads actually runs. Which worker computes a chunk never
    changes the chunk's value, nor the sum, so results are bit-identical to the sequential path.
    """
    n, d = shape(X)
    k = Y.shape[1]
    th = theta.reshape(k * (d + 1))
    m = k * (d + 1)
    nb = order.shape[0]
    tree = _tree_order(X)
    line = 8 if tree and _itemsize(X) == 8 else 16  # elements per cache line (dense X)
    S, rawf, weighted, l1, l2, wnorm, lcode, la, std, averaging = _step_args(state, raw, sw, pen, stdz, avg)
    # borrowed views in the workers' loop (intr.borrowed: no atomic reference counts per batch and chunk); every
    # array here is an argument's, alive for the call
    X, Y, sw, raw, scalars, hp = (_borrow_x(X), intr.borrowed(Y), intr.borrowed(sw), intr.borrowed(raw),
                                  intr.borrowed(scalars), intr.borrowed(hp))
    lr_sched, pen, order, part, G, eta = (intr.borrowed(lr_sched), intr.borrowed(pen), intr.borrowed(order),
                                          intr.borrowed(part), intr.borrowed(G), intr.borrowed(eta))
    task_start, sync, slots, acc, stdz, avg = (intr.borrowed(task_start), intr.borrowed(sync), intr.borrowed(slots),
                                               intr.borrowed(acc), intr.borrowed(stdz), intr.borrowed(avg))
    th, S, rawf = intr.borrowed(th), intr.borrowed(S), intr.borrowed(rawf)
    for w in prange(n_workers):
        bi = intr.load_acquire(sync, S_PUB)
        while bi < nb:
            ntb = task_start[bi + 1] - task_start[bi]
            j = _claim(slots, w, ntb, bi + 1)
            if j < 0:  # all of batch bi is taken: wait for bi + 1 holding no task
                # meanwhile prefetch my own share of batch bi + 1 into L2, one cache line per turn (as the
                # native kernel; which rows a task covers never depends on the parameters)
                pf = pf_end = pc = 0
                if tree and bi + 1 < nb and w < task_start[bi + 2] - task_start[bi + 1]:
                    ntn = task_start[bi + 2] - task_start[bi + 1]
                    s1 = order[bi + 1] * batch_size
                    n1 = (min(s1 + batch_size, n) - s1 + ch - 1) // ch
                    pf = s1 + (n1 * w // ntn) * ch
                    pf_end = min(s1 + (n1 * (w + 1) // ntn) * ch, n)
                while pf < pf_end and intr.load_acquire(sync, S_PUB) == bi:
                    _prefetch_line(X, pf, pc)
                    pc += line
                    if pc >= d:
                        pc = 0
                        pf += 1
                _wait_change(sync, S_PUB, S_SLEEP, bi)
                bi = intr.load_acquire(sync, S_PUB)
                continue
            start = order[bi] * batch_size
            stop = min(start + batch_size, n)
            nch = (stop - start + ch - 1) // ch
            c0 = nch * j // ntb  # task j: a contiguous run of chunks
            c1 = nch * (j + 1) // ntb
            nx = -1  # where my own task of the next batch starts: the rows my run's tail prefetches
            if tree and bi + 1 < nb and w < task_start[bi + 2] - task_start[bi + 1]:
                ntn = task_start[bi + 2] - task_start[bi + 1]
                s1 = order[bi + 1] * batch_size
                n1 = (min(s1 + batch_size, n) - s1 + ch - 1) // ch
                nx = s1 + (n1 * w // ntn) * ch
            _run_grad(X, Y, sw, raw, start + c0 * ch, min(start + c1 * ch, stop), ch, part, c0, _pen_loss(pen), nx)
            if tree:  # the sum tree's nodes inside my run
                _tree_within(part, c0, c1, nch, m)
            if intr.fetch_add(sync, S_DONE, 1) + 1 == task_start[bi + 1]:
                # the batch's last task is done: reduce (the tree's nodes across runs, or in chunk order),
                # update, publish the next batch
                if tree:
                    _tree_across(part, nch, ntb, m)
                    for q in range(m + 1):
                        G[q] = part[0, q]
                else:
                    _sum_chunks(part, nch, G)
                finish_batch(G, batch_weight(sw, weighted, start, stop), th, rawf, S, scalars, code, hp, lr_sched,
                             l1, l2, wnorm, lcode, la, fit_intercept, eta, k, d, acc, stdz, std, avg, averaging)
                _signal(sync, S_PUB, S_SLEEP)  # publish batch bi + 1 (seq_cst), then wake sleepers if any
            bi = intr.load_acquire(sync, S_PUB)


# Fields of a coordinate's work record in the lazy epoch: its column's update count (kept in output 0's
# record: the update count the column's coordinates are caught up to, t + 0.5 while listed in the current
# batch), the batch's gradient sum, the parameter in the data's units, its column's scale
L_STAMP, L_G, L_RAW, L_XS, L_WIDTH = 0, 1, 2, 3, 4


@jit()
def lazy_work_len(P, ns):
    """Doubles of ``epoch``'s ``work`` in which a lazy epoch of P coordinates keeps its work records (L_WIDTH
    each; ``ns``, the state slots, do not change their size here), with a cache line's slack to align them."""
    return P * L_WIDTH + 8


# inlined: called per column of a batch (a call passes its four arrays, 56 bytes each, on the stack), and only
# integer arithmetic, so the strict lazy epoch may take it in; Numba lazy epoch d = 2^14, B = 1: 0.073-0.076 ->
# 0.062-0.064 s with _lazy_ahead inlined too
@jit(inline=True)
def _lazy_hint_column(WR, th, S, avg, c, k, p, P, ns):
    """Prefetch what the lazy epoch reads of column c: its record, and its coordinates' parameters, state and
    running means (a hint: no result depends on it)."""
    intr.prefetch_at(WR, c * L_WIDTH)
    for j in range(k):
        q = j * p + c
        intr.prefetch_at(th, q)
        for sl in range(ns):
            intr.prefetch_at(S, sl * P + q)
        if avg.shape[0] > 0:
            intr.prefetch_at(avg, q)


@jit(inline=True)
def _lazy_ahead(data, indices, indptr, Y, sw, WR, th, S, avg, order, bi, batch_size, n, k, p, P, ns, col_hints):
    """Hints for the batches after batch bi of a lazy epoch, so their misses overlap this batch's work: the
    row bounds of batch bi + 3, the stored values, targets and weights of batch bi + 2's rows, the columns of
    batch bi + 1 (_lazy_hint_column; with ``col_hints``: the records take LAZY_HINT_MIN_BYTES), each for
    batches of at most LAZY_AHEAD_NNZ values (larger ones hint within)."""
    nb = order.shape[0]
    if bi + 3 < nb:
        s0 = order[bi + 3] * batch_size
        intr.prefetch_at(indptr, s0)
        intr.prefetch_at(indptr, min(s0 + batch_size, n))
    if bi + 2 < nb:
        s0 = order[bi + 2] * batch_size
        s1 = min(s0 + batch_size, n)
        lo = indptr[s0]
        hi = indptr[s1]
        if hi - lo <= _rules.LAZY_AHEAD_NNZ:
            for i in range(s0, s1):
                intr.prefetch_row(Y, i, 0)
            if sw.shape[0] > 0:
                intr.prefetch_at(sw, s0)
                intr.prefetch_at(sw, s1 - 1)
            for q in range(lo, hi, 64 // indices.itemsize):
                intr.prefetch_at(indices, q)
            for q in range(lo, hi, 64 // data.itemsize):
                intr.prefetch_at(data, q)
            if hi > lo:
                intr.prefetch_at(indices, hi - 1)
                intr.prefetch_at(data, hi - 1)
    if bi + 1 < nb and col_hints:
        s0 = order[bi + 1] * batch_size
        lo = indptr[s0]
        hi = indptr[min(s0 + batch_size, n)]
        if hi - lo <= _rules.LAZY_AHEAD_NNZ:
            for q in range(lo, hi):
                _lazy_hint_column(WR, th, S, avg, indices[q], k, p, P, ns)


@jit(strict=True)  # called out of line by epoch, with the rules inlined: no fastmath (see _STRICT)
def _epoch_csr_lazy(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order,
                    stdz, avg, work, exact):
    """The epoch of a CSR X with lazy updates (see "lazy updates" in fastgd._rules): each batch costs what it
    touches, its rows' columns plus the centred columns and the intercepts, not k·(d + 1).

    What the epoch keeps per coordinate beyond the parameters, state and running mean (its count, gradient
    scratch, raw parameter, column scale) lives in one 32-byte work record (``L_*``): a touched coordinate
    costs one cache miss for them, not one per array. Per batch: the touched columns are listed (a record's
    count set to t + 0.5 marks it listed) and their coordinates caught up (fastgd._rules.lazy_catch_up and
    average_catch_up), the gradient summed row by row into the records, and the optimizer's own rule
    (fastgd._rules.update) applied to the touched coordinates, gathered into compact arrays and scattered
    back. ``exact``: the catch-up is the dense update's mathematics; else the LazyAdam approximation. Any loss
    (pen's, ``_pen_loss``): a row adds its loss's slope times the row (_rules.loss_accumulate), and each
    output's objective unit and l2 strength are finish_batch's (_rules.output_units).
    Sequential (one batch's rows are few): the same result for any thread count. Returns (loss, weight).
    """
    # every array as a borrowed view (intr.borrowed: no atomic reference counts in the loops; the arguments
    # live for the call, the local arrays are kept alive to the end, intr.keep)
    data, indices, indptr, d = X
    data, indices, indptr = intr.borrowed(data), intr.borrowed(indices), intr.borrowed(indptr)
    Y, sw, scalars, hp, sched, pen = (intr.borrowed(Y), intr.borrowed(sw), intr.borrowed(scalars),
                                      intr.borrowed(hp), intr.borrowed(sched), intr.borrowed(pen))
    order, stdz, avg = intr.borrowed(order), intr.borrowed(stdz), intr.borrowed(avg)
    n = indptr.shape[0] - 1
    k = Y.shape[1]
    p = d + 1
    P = k * p
    th = intr.borrowed(theta.reshape(P))
    ns = min(state.shape[0], _rules.used_slots(code, hp))  # the slots this rule reads or writes
    S = intr.borrowed(state.reshape(state.size))  # slot s of coordinate q at S[s * P + q]
    std = stdz.shape[0] > 0
    averaging = avg.shape[0] > 0
    weighted = sw.shape[0] > 0
    l2 = pen[1]
    l2w = pen.shape[0] > 6  # LazyAdam's penalty frequency-weighted: column c's factor at pen[6 + c]
    lcode, la = _pen_loss(pen)
    wd = hp[1] if code == _rules.SGD else 0.0  # SGD's coupled weight decay (other rules: lazy only without)
    lr_c = lr_at(hp[0], sched, 1.0)  # the rate of every update where a catch-up moves a parameter
    moves = _rules.lazy_moves(code, hp, exact, wd + l2)  # else a catch-up leaves the raw parameters
    ncen = 0
    if std:
        for c in range(d):
            if stdz[c] != 0.0:
                ncen += 1
    cen_own = np.empty(ncen, dtype=np.int64)  # centred columns, ascending: every batch touches them
    cen = intr.borrowed(cen_own)
    ncen = 0
    if std:
        for c in range(d):
            if stdz[c] != 0.0:
                cen[ncen] = c
                ncen += 1
    tstart = scalars[0]
    # the records in the caller's workspace where it holds them (kept from epoch to epoch, their pages are not
    # faulted in and zeroed again: see lazy_work_len), else in an array of this epoch's
    buf = intr.borrowed(work) if work.shape[0] >= lazy_work_len(P, ns) else np.empty(lazy_work_len(P, ns))
    intr.advise_huge(buf)  # read at random: 4 KiB pages would miss the TLB on most records (as the native twin)
    off = ((64 - buf.ctypes.data % 64) % 64) // 8  # records on cache-line boundaries: one line holds two
    WR = intr.borrowed(buf[off:off + P * L_WIDTH])
    for j in range(k):
        o = j * p
        ys = stdz[2 * d + k + j] if std else 1.0
        for c in range(p):
            b = (o + c) * L_WIDTH
            xs = stdz[d + c] if std and c < d else 1.0
            WR[b + L_STAMP] = tstart
            WR[b + L_G] = 0.0
            if exact:
                WR[b + L_RAW] = ys * (th[o + c] / xs) if std else th[o + c]
                WR[b + L_XS] = xs
            else:  # LazyAdam keeps the column's reciprocal scale (as the native twin)
                WR[b + L_XS] = 1.0 / xs
                WR[b + L_RAW] = ys * (th[o + c] * WR[b + L_XS]) if std else th[o + c]
    rawb_own = np.empty(k)  # the intercepts in the data's units
    gb_own = np.empty(k)
    rawb, gb = intr.borrowed(rawb_own), intr.borrowed(gb_own)
    # each output's objective unit and l2 strength in the standardized coordinates (as finish_batch)
    yu_own = np.empty(k)
    l2o_own = np.empty(k)
    yu, l2o = intr.borrowed(yu_own), intr.borrowed(l2o_own)
    _rules.output_units(lcode, la, l2, stdz, std, d, k, yu, l2o)
    for j in range(k):
        o = j * p
        if std:
            shift = 0.0
            for t in range(ncen):
                c = cen[t]
                shift += (th[o + c] / stdz[d + c]) * stdz[c]
            rawb[j] = stdz[2 * d + k + j] * (th[o + d] - shift) + stdz[2 * d + j]
        else:
            rawb[j] = th[o + d]
    nb = order.shape[0]
    widest = 0
    for bi in range(nb):
        start = order[bi] * batch_size
        stop = min(start + batch_size, n)
        widest = max(widest, indptr[stop] - indptr[start])
    cap = min(d, widest + ncen)
    cols_own = np.empty(cap + 1, dtype=np.int64)
    prev_own = np.empty(cap + 1)  # the listed columns' update counts before this batch
    nq_max = k * (cap + 1)
    qs_own = np.empty(nq_max, dtype=np.int64)
    thc_own = np.empty(nq_max)
    Gc_own = np.empty(nq_max)
    Sc_own = np.empty(max(ns, 1) * nq_max)
    eta = np.empty(0)
    cols, prev, qs = intr.borrowed(cols_own), intr.borrowed(prev_own), intr.borrowed(qs_own)
    thc, Gc, Sc = intr.borrowed(thc_own), intr.borrowed(Gc_own), intr.borrowed(Sc_own)
    # the running mean's count moves with the update count (both once per update): count = stamp + shift
    c_shift = (avg[P] if averaging else 0.0) - tstart
    # LazyAdam (not exact): the batch's constants in place of per-coordinate divisions (_rules.lazy_update)
    h1 = _rules.lazy_bias_horizon(hp[2])
    h2 = _rules.lazy_bias_horizon(hp[3])
    loss_sum = 0.0
    weight_sum = 0.0
    col_hints = P * L_WIDTH * 8 >= _rules.LAZY_HINT_MIN_BYTES  # the columns' hints pay (else they stay in cache)
    for bi in range(nb):
        _lazy_ahead(data, indices, indptr, Y, sw, WR, th, S, avg, order, bi, batch_size, n, k, p, P, ns, col_hints)
        start = order[bi] * batch_size
        stop = min(start + batch_size, n)
        Wb = _batch_weight(sw, start, stop)
        if not Wb > 0.0:  # no information, no update (as _rules.finish_batch)
            continue
        tnow = scalars[0]
        listed = tnow + 0.5
        nt = 0  # list the batch's columns (centred ones first), marking them and keeping their counts
        for t in range(ncen):
            c = cen[t]
            cols[nt] = c
            prev[nt] = WR[c * L_WIDTH + L_STAMP]
            WR[c * L_WIDTH + L_STAMP] = listed
            nt += 1
        lo = indptr[start]
        hi = indptr[stop]
        ahead = col_hints and hi - lo > _rules.LAZY_AHEAD_NNZ  # not hinted ahead: hint within
        for q in range(lo, hi):
            c = indices[q]
            if ahead and q + _rules.LAZY_AHEAD_VALUES < hi:
                intr.prefetch_at(WR, indices[q + _rules.LAZY_AHEAD_VALUES] * L_WIDTH)
            if WR[c * L_WIDTH + L_STAMP] != listed:
                cols[nt] = c
                prev[nt] = WR[c * L_WIDTH + L_STAMP]
                WR[c * L_WIDTH + L_STAMP] = listed
                nt += 1
                if ahead:
                    _lazy_hint_column(WR, th, S, avg, c, k, p, P, ns)
        cols[nt] = d  # the intercepts, caught up with the columns
        prev[nt] = WR[d * L_WIDTH + L_STAMP]
        ic1 = 1.0 / (tnow + c_shift)
        for t in range(nt + 1):  # catch up what the skipped updates did to these coordinates
            steps = tnow - prev[t]
            if steps > 0.0:
                c = cols[t]
                for j in range(k):
                    q = j * p + c
                    b = q * L_WIDTH
                    if exact:
                        lam = wd + (0.0 if c == d else (l2o[j] / (WR[b + L_XS] * WR[b + L_XS]) if std else l2))
                        total = _rules.lazy_catch_up(code, th, q, S, q, P, steps, hp, lr_c, lam)
                    else:  # LazyAdam: moments stay; only decoupled weight decay moves the parameter
                        total = _rules.lazy_approx_catch_up(th, q, steps)
                    if not averaging:
                        pass
                    elif exact:
                        _rules.average_catch_up(avg, q, total, tnow - steps + c_shift, tnow + c_shift)
                    else:
                        _rules.lazy_average(avg, q, total, steps, ic1)
                    if moves and c < d:
                        if not std:
                            WR[b + L_RAW] = th[q]
                        elif exact:
                            WR[b + L_RAW] = stdz[2 * d + k + j] * (th[q] / WR[b + L_XS])
                        else:
                            WR[b + L_RAW] = stdz[2 * d + k + j] * (th[q] * WR[b + L_XS])
        for j in range(k):
            gb[j] = 0.0
        loss = 0.0
        for i in range(start, stop):
            s = sw[i] if weighted else 1.0
            lo = indptr[i]
            hi = indptr[i + 1]
            for j in range(k):
                o = j * p
                acc = rawb[j]
                for q in range(lo, hi):
                    acc += data[q] * WR[(o + indices[q]) * L_WIDTH + L_RAW]
                sr, loss = _rules.loss_accumulate(lcode, acc - Y[i, j], la, s, loss)
                for q in range(lo, hi):
                    WR[(o + indices[q]) * L_WIDTH + L_G] += sr * data[q]
                gb[j] += sr
        loss_sum += loss
        weight_sum += Wb
        scale = 2.0 / (pen[2] if pen.shape[0] > 2 and pen[2] > 0.0 else Wb)  # as _rules.finish_batch
        nq = 0
        for j in range(k):
            o = j * p
            g0 = gb[j]
            ys = yu[j]
            l2j = l2o[j]
            sy = scale / ys
            for t in range(nt):
                q = o + cols[t]
                b = q * L_WIDTH
                v = th[q]
                if std and not exact:  # L_XS: the reciprocal scale
                    ixs = WR[b + L_XS]
                    xm = stdz[cols[t]] if t < ncen else 0.0
                    l2c = l2j * pen[6 + cols[t]] if l2w and t >= ncen else l2j  # a centred column: every batch
                    Gc[nq] = (WR[b + L_G] - xm * g0) * (sy * ixs) + ((l2c * ixs * ixs) if l2 != 0.0 else 0.0) * v
                elif std:
                    xs = WR[b + L_XS]
                    xm = stdz[cols[t]] if t < ncen else 0.0
                    Gc[nq] = (WR[b + L_G] - xm * g0) * (scale / (xs * ys)) + ((l2j / (xs * xs)) if l2 != 0.0 else 0.0) * v
                else:
                    Gc[nq] = WR[b + L_G] * scale + l2 * v
                WR[b + L_G] = 0.0
                qs[nq] = q
                thc[nq] = v
                nq += 1
            Gc[nq] = ((g0 * (scale / ys)) if std else g0 * scale) if fit_intercept else 0.0
            qs[nq] = o + d
            thc[nq] = th[o + d]
            nq += 1
        for sl in range(ns):
            for i in range(nq):
                Sc[sl * nq + i] = S[sl * P + qs[i]]
        scalars[0] += 1.0
        _rules.lazy_update(code, thc, Gc, Sc, nq, scalars, hp, lr_at(hp[0], sched, scalars[0]), eta, exact, h1, h2)
        tnew = scalars[0]
        cnt = tnew + c_shift
        ic1 = 1.0 / cnt
        for i in range(nq):
            q = qs[i]
            v = thc[i]
            th[q] = v
            for sl in range(ns):
                S[sl * P + q] = Sc[sl * nq + i]
            if not averaging:
                pass
            elif exact:
                avg[q] += (v - avg[q]) / cnt
            else:
                _rules.lazy_average(avg, q, v, 1.0, ic1)
        for t in range(nt + 1):
            WR[cols[t] * L_WIDTH + L_STAMP] = tnew
        for j in range(k):  # the raw parameters of the touched coordinates, as _rules.raw_theta computes them
            o = j * p
            if std:
                ys = stdz[2 * d + k + j]
                for t in range(nt):
                    b = (o + cols[t]) * L_WIDTH
                    if exact:
                        WR[b + L_RAW] = ys * (th[o + cols[t]] / WR[b + L_XS])
                    else:
                        WR[b + L_RAW] = ys * (th[o + cols[t]] * WR[b + L_XS])
                shift = 0.0
                for t in range(ncen):
                    c = cen[t]
                    shift += (th[o + c] / stdz[d + c]) * stdz[c]
                rawb[j] = ys * (th[o + d] - shift) + stdz[2 * d + j]
            else:
                for t in range(nt):
                    WR[(o + cols[t]) * L_WIDTH + L_RAW] = th[o + cols[t]]
                rawb[j] = th[o + d]
    tnow = scalars[0]
    ic1 = 1.0 / (tnow + c_shift)
    for c in range(p):  # the end of the epoch: every coordinate caught up
        steps = tnow - WR[c * L_WIDTH + L_STAMP]
        if steps > 0.0:
            for j in range(k):
                q = j * p + c
                b = q * L_WIDTH
                if exact:
                    lam = wd + (0.0 if c == d else (l2o[j] / (WR[b + L_XS] * WR[b + L_XS]) if std else l2))
                    total = _rules.lazy_catch_up(code, th, q, S, q, P, steps, hp, lr_c, lam)
                else:
                    total = _rules.lazy_approx_catch_up(th, q, steps)
                if not averaging:
                    pass
                elif exact:
                    _rules.average_catch_up(avg, q, total, tnow - steps + c_shift, tnow + c_shift)
                else:
                    _rules.lazy_average(avg, q, total, steps, ic1)
    if averaging:
        avg[P] = tnow + c_shift
    # the local arrays behind the borrowed views, alive to here
    for a in (rawb_own, gb_own, yu_own, l2o_own, prev_own, thc_own, Gc_own, Sc_own, buf):
        intr.keep(a)
    for ai in (cen_own, cols_own, qs_own):
        intr.keep(ai)
    return loss_sum, weight_sum


def _lazy_epoch(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order, stdz, avg,
                work):
    """(ran, loss, weight): runs _epoch_csr_lazy when X is CSR and the optimizer allows lazy updates
    (fastgd._rules.lazy_kind). (Body: plain Python, NUMBA_DISABLE_JIT=1; compiled callers use the overload.)"""
    if not isinstance(X, tuple):
        return False, 0.0, 0.0
    kind = _rules.lazy_kind_of_loss(_rules.lazy_kind(code, hp, stdz.shape[0] > 0, pen[0], pen[1],
                                                     _rules.constant_rate(sched), _touch_l2(pen)), _pen_loss(pen)[0])
    if kind == _rules.LAZY_NONE:
        return False, 0.0, 0.0
    loss, w = _epoch_csr_lazy(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size,
                              order, stdz, avg, work, kind == _rules.LAZY_EXACT)
    return True, loss, w


@overload(_lazy_epoch, jit_options=OVERLOAD_FLAGS)
def _lazy_epoch_impl(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order, stdz,
                     avg, work):
    if _is_csr(X):
        def csr(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order, stdz, avg,
                work):
            kind = _rules.lazy_kind_of_loss(_rules.lazy_kind(code, hp, stdz.shape[0] > 0, pen[0], pen[1],
                                                             _rules.constant_rate(sched), _touch_l2(pen)),
                                            _pen_loss(pen)[0])
            if kind == 0:
                return False, 0.0, 0.0
            loss, w = _epoch_csr_lazy(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept,
                                      batch_size, order, stdz, avg, work, kind == 1)
            return True, loss, w
        return csr
    return lambda X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order, stdz, \
        avg, work: (False, 0.0, 0.0)


@jit()
def epoch(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order,
          n_threads, path, stdz, avg, work):
    """One fused pass over the batches listed in ``order`` (batch b = rows [b*batch_size, (b+1)*batch_size)).

    For each batch: gradient of the mean squared error (parallel or sequential path), penalty, one optimizer
    update of every coordinate. Returns ``(loss_sum, weight_sum, finite)``: the weighted sum of squared
    residuals seen during the epoch (each batch at the weights before its update), the sum of the batches'
    weights, and whether every parameter is finite at the end.

    ``stdz`` (empty: off) standardizes implicitly: ``theta`` and the optimizer state live in the coordinates
    of centred and scaled columns and targets, ``stdz = [x_mean (d), x_scale (d), y_mean (k), y_scale (k)]``,
    while the rows are read raw, at the raw parameters (``raw_theta``); X is never copied. ``avg`` (empty:
    off; else k·(d+1) values and a count) accumulates the running mean of the parameters after each update.
    ``work`` (empty: none): a workspace of at least ``lazy_work_len(k·(d+1), slots)`` values in which a lazy
    CSR epoch keeps its records (the caller keeps it from epoch to epoch: _engine.Epochs); smaller, the epoch
    allocates its own.
    """
    _check_epoch_args(X, Y, sw, theta, state, scalars, code, hp, sched, pen, batch_size, order)
    n, d = shape(X)
    k = Y.shape[1]
    P = k * (d + 1)
    th = theta.reshape(P)
    lazy, loss_sum, weight_sum = _lazy_epoch(X, Y, sw, theta, state, scalars, code, hp, sched, pen, fit_intercept,
                                             batch_size, order, stdz, avg, work)
    if lazy:
        finite = True
        for q in range(P):
            if not math.isfinite(th[q]):
                finite = False
        return loss_sum, weight_sum, finite
    ch = chunk_rows(batch_size, P)
    nch_max = (batch_size + ch - 1) // ch
    workers = epoch_threads(batch_size, d, k, n_threads, path)
    use_par = workers > 0
    tree = _tree_order(X)
    part = np.empty((nch_max if use_par or tree else 1, chunk_stride(P)))
    G = np.empty(P + 1)
    eta = np.empty(P if pen[0] > 0.0 else 0)
    acc = np.zeros(2)
    if stdz.shape[0] > 0:
        raw = _line_aligned_empty(k, d + 1)  # as _engine.line_aligned_zeros: the row loop reads it
        raw_theta(th, stdz, k, d, raw)
    else:
        raw = theta  # the parameters are the data's own
    nb = order.shape[0]
    if use_par:
        task_start = np.empty(nb + 1, dtype=np.int64)
        task_start[0] = 0
        for bi in range(nb):  # one task per worker per batch: a contiguous run of its chunks (contiguous
            # shares stream X better than interleaved chunks, and cost one claim per worker per batch)
            start = order[bi] * batch_size
            rows = min(start + batch_size, n) - start
            task_start[bi + 1] = task_start[bi] + min((rows + ch - 1) // ch, workers)
        sync = np.zeros(3 * SYNC_STRIDE, dtype=np.int64)
        slots = np.zeros(workers * SYNC_STRIDE, dtype=np.int64)
        _epoch_team(X, Y, sw, theta, raw, state, scalars, code, hp, sched, pen, fit_intercept, batch_size, order,
                    workers, ch, part, G, eta, task_start, sync, slots, acc, stdz, avg)
    else:
        S, rawf, weighted, l1, l2, wnorm, lcode, la, std, averaging = _step_args(state, raw, sw, pen, stdz, avg)
        # the batch loop on borrowed views (intr.borrowed: no atomic reference counts per batch and chunk); the
        # local arrays behind them are kept alive below
        X, Y, sw, scalars, hp, sched = (_borrow_x(X), intr.borrowed(Y), intr.borrowed(sw), intr.borrowed(scalars),
                                        intr.borrowed(hp), intr.borrowed(sched))
        pen, order, stdz, avg = intr.borrowed(pen), intr.borrowed(order), intr.borrowed(stdz), intr.borrowed(avg)
        raw_b, th_b, rawf_b, S_b = intr.borrowed(raw), intr.borrowed(th), intr.borrowed(rawf), intr.borrowed(S)
        part_b, G_b, eta_b, acc_b = intr.borrowed(part), intr.borrowed(G), intr.borrowed(eta), intr.borrowed(acc)
        for bi in range(nb):
            start = order[bi] * batch_size
            stop = min(start + batch_size, n)
            if tree:  # the same chunks and the same sum tree as the parallel path, as one run
                nch = (stop - start + ch - 1) // ch
                # the rows prefetched past this batch are the next one's first
                _run_grad(X, Y, sw, raw_b, start, stop, ch, part_b, 0, _pen_loss(pen),
                          order[bi + 1] * batch_size if bi + 1 < nb else -1)
                _tree_within(part_b, 0, nch, nch, P)
                for q in range(P + 1):
                    G_b[q] = part_b[0, q]
            else:
                _batch_grad_sequential(X, Y, sw, raw_b, start, stop, ch, part_b, G_b, _pen_loss(pen))
            finish_batch(G_b, batch_weight(sw, weighted, start, stop), th_b, rawf_b, S_b, scalars, code, hp, sched,
                         l1, l2, wnorm, lcode, la, fit_intercept, eta_b, k, d, acc_b, stdz, std, avg, averaging)
        for a in (G, eta, acc, rawf):
            intr.keep(a)
        intr.keep(part)
    finite = True
    for q in range(P):
        if not math.isfinite(th[q]):
            finite = False
    return acc[0], acc[1], finite


@jit()
def _stats_group(X, Y, sw, theta, batch_size, batch_ids, lo, hi, ch, part, G, out, lossp):
    """Add the raw sums of batches batch_ids[lo:hi] into ``out`` (m + 2 entries: G, loss, weight)."""
    X, Y, sw, theta, batch_ids = _borrow_x(X), intr.borrowed(Y), intr.borrowed(sw), intr.borrowed(theta), \
        intr.borrowed(batch_ids)
    part, G, out = intr.borrowed(part), intr.borrowed(G), intr.borrowed(out)
    n = shape(X)[0]
    m = G.shape[0] - 1
    for bi in range(lo, hi):
        start = batch_ids[bi] * batch_size
        stop = min(start + batch_size, n)
        if not _add_csr_rows(X, Y, sw, theta, start, stop, out, lossp):
            _batch_grad_sequential(X, Y, sw, theta, start, stop, ch, part, G, lossp)
            for q in range(m + 1):
                out[q] += G[q]
        out[m + 1] += _batch_weight(sw, start, stop)


def _add_csr_rows(X, Y, sw, theta, start, stop, out, lossp):
    """CSR: add the rows' sums straight into ``out`` (a small batch then costs its non-zeros, not a zeroed
    buffer of k·(d + 1)) and return True; dense: False. (Body: plain Python, NUMBA_DISABLE_JIT=1.)"""
    if not isinstance(X, tuple):
        return False
    buf = np.zeros_like(out)
    _chunk_grad_csr(X, Y, sw, theta, start, stop, buf, lossp)
    out[:buf.shape[0] - 1] += buf[:-1]
    return True


@overload(_add_csr_rows, jit_options=OVERLOAD_FLAGS)
def _add_csr_rows_impl(X, Y, sw, theta, start, stop, out, lossp):
    if _is_csr(X):
        def csr(X, Y, sw, theta, start, stop, out, lossp):
            _csr_rows(X, Y, sw, theta, start, stop, out, lossp)
            return True
        return csr
    return lambda X, Y, sw, theta, start, stop, out, lossp: False


@jit()
def _stats_layout(X, Y, batch_size, nb):
    """(m, per, ngroups, ch): batches are split into groups of ``per`` (a function of their number and the
    shape only), at most MAX_CHUNKS groups and at most CHUNK_BUDGET_BYTES of group sums."""
    m = Y.shape[1] * (shape(X)[1] + 1)
    per = batches_per_group(nb, m, False)
    return m, per, (nb + per - 1) // per, chunk_rows(batch_size, m)


@jit()
def _loss_layout(X, Y, batch_size, nb):
    """(per, ngroups, ch) of the loss-only pass: _stats_layout's groups without its memory budget (a group
    holds two sums, not k·(d + 1)), so the same groups, and bits, as batches_stats wherever the budget
    allows MAX_CHUNKS groups, and more groups (threads) than it at large d."""
    m = Y.shape[1] * (shape(X)[1] + 1)
    per = batches_per_group(nb, m, True)
    return per, (nb + per - 1) // per, chunk_rows(batch_size, m)


@jit()
def _stats_total(sums, m, ngroups):
    total = np.zeros(m + 2)
    for g in range(ngroups):  # groups added in order
        for q in range(m + 2):
            total[q] += sums[g, q]
    return total[:m].copy(), total[m], total[m + 1]


@jit(parallel=True)
def _batches_stats_parallel(X, Y, sw, theta, batch_size, batch_ids, lossp):
    _check_stats_args(X, Y, sw, theta, batch_size, batch_ids)
    nb = batch_ids.shape[0]
    m, per, ngroups, ch = _stats_layout(X, Y, batch_size, nb)
    stride = chunk_stride(m)
    sums = np.zeros((ngroups, stride))
    for g in prange(ngroups):
        part = np.empty((1, stride))
        G = np.empty(m + 1)
        _stats_group(X, Y, sw, theta, batch_size, batch_ids, g * per, min(g * per + per, nb), ch, part, G,
                     sums[g], lossp)
    return _stats_total(sums, m, ngroups)


@jit()
def _batches_stats_sequential(X, Y, sw, theta, batch_size, batch_ids, lossp):
    _check_stats_args(X, Y, sw, theta, batch_size, batch_ids)
    nb = batch_ids.shape[0]
    m, per, ngroups, ch = _stats_layout(X, Y, batch_size, nb)
    stride = chunk_stride(m)
    sums = np.zeros((ngroups, stride))
    part = np.empty((1, stride))
    G = np.empty(m + 1)
    for g in range(ngroups):  # the same groups as the parallel driver: the same sums, bit for bit
        _stats_group(X, Y, sw, theta, batch_size, batch_ids, g * per, min(g * per + per, nb), ch, part, G,
                     sums[g], lossp)
    return _stats_total(sums, m, ngroups)


@jit()
def _split_residuals(X, Y, theta, lo, hi, res, base):
    """res[(i - base)·k + j] = x_i · theta[j, :d] + theta[j, d] - Y[i, j] for rows [lo, hi) of a CSR tuple: the
    residual _csr_rows takes (the same _row_dot)."""
    X = _borrow_x(X)
    _, indices, indptr, d = X
    k = Y.shape[1]
    end = _sums_hint_end(indptr, k, d)
    for i in range(lo, hi):
        _hint_sums(indices, indptr[i], indptr[i + 1], end, theta, res[:0], k, d + 1)
        for j in range(k):
            res[(i - base) * k + j] = _row_dot(X, i, theta, j) - Y[i, j]


@jit()
def _split_sums(X, sw, lo, hi, k, res, base, out, loss, lossp):
    """Rows [lo, hi) in order, from their residuals in ``res``: add s_i slope(r_i) [x_i, 1] per output into
    ``out`` and return ``loss`` plus s_i loss(r_i), as _csr_rows adds them (the same adds in the same order)."""
    data, indices, indptr, d = X
    weighted = sw.shape[0] > 0
    lcode, la = lossp
    p = d + 1
    end = _sums_hint_end(indptr, k, d)
    for i in range(lo, hi):
        s = sw[i] if weighted else 1.0
        a = indptr[i]
        b = indptr[i + 1]
        _hint_sums(indices, a, b, end, res.reshape((1, res.shape[0]))[:0], out, k, p)
        for j in range(k):
            o = j * p
            sr, loss = _rules.loss_accumulate(lcode, res[(i - base) * k + j], la, s, loss)
            for q in range(a, b):
                out[o + indices[q]] += sr * data[q]
            out[o + d] += sr
    return loss


@jit()
def _split_setup(X, Y, sw, theta, batch_size, batch_ids):
    _check_stats_args(X, Y, sw, theta, batch_size, batch_ids)
    data, indices, indptr, d = X
    n = indptr.shape[0] - 1
    k = Y.shape[1]
    rows = split_block_rows(indptr[n] - indptr[0], n, k)
    return n, d, k, rows, np.zeros(k * (d + 1) + 2), np.empty((2, rows * k))


# The split pass's counters (slots of ``sync``, one cache line apart): blocks summed, block sums claimed, residual
# shares claimed and done per buffer (two slots each), progress (the futex word) and the threads asleep on it
P_SUMMED, P_SUMCLAIM, P_CLAIMED, P_DONE, P_EVENT, P_SLEEP = 0, 8, 16, 32, 48, 56


@jit()
def _ticket(sync, q, end):
    """The next ticket below ``end`` of the counter sync[q] (moved past it), or -1 when every one is taken
    (fetch_max as a compare-and-swap: the counter only grows)."""
    v = intr.load_acquire(sync, q)
    while v < end:
        old = intr.fetch_max(sync, q, v + 1)
        if old == v:
            return v
        v = old
    return -1


@jit()
def _split_worker(X, Y, sw, theta, blocks, nblocks, shares, res, out, carry, sync, lossp, w):
    """Worker ``w`` of the split pass (_csr_split_parallel; the native kernel runs the same protocol). The
    pass's rows are in blocks (split_blocks); block g's residuals go to buffer g % 2 in ``shares`` shares, and
    its sums, in row order, are added by one worker once they are all in. Until every block is summed, a
    worker: sums the next block (g: the number summed so far) if its residuals are all in and nobody claimed it
    (its sum is claimed by moving sync[P_SUMCLAIM] from g to g + 1), worker 0 at once, another only after
    spinning SPINS_BEFORE_SLEEP turns with nothing else to do (the sums are the pass's serial part: on a busy
    host the worker that shares its core would slow every block it took); else computes a residual share of
    block g, or of block g + 1 (whose buffer block g - 1 used: it is summed), claimed as a ticket of that
    buffer's counter; else waits for progress (spins SPINS_BEFORE_SLEEP times, then sleeps on a futex). Any
    worker does any of the work, so a worker the OS deschedules holds up at most the share or the sum it
    holds, and one worker alone does it all: whatever number of threads runs, the pass ends, and its sums are
    the one-thread pass's bit for bit (each residual is one row's, each block is summed in row order after the
    ones before it).
    ``carry[0]``: the loss of the current batch so far (a batch's loss is added to out[m] at its end, as the
    one-thread pass adds it)."""
    k = Y.shape[1]
    m = k * (shape(X)[1] + 1)
    S = shares
    idle = 0
    while True:
        seen = intr.load_acquire(sync, P_EVENT)
        g = intr.load_acquire(sync, P_SUMMED)
        if g >= nblocks:
            return
        ready = intr.load_acquire(sync, P_DONE + g % 2) >= S * (g // 2 + 1) and intr.load_acquire(sync, P_SUMCLAIM) == g
        if ready and (w == 0 or idle >= SPINS_BEFORE_SLEEP) and intr.fetch_max(sync, P_SUMCLAIM, g + 1) == g:
            idle = 0
            lo, hi, start, stop = blocks[g, 0], blocks[g, 1], blocks[g, 2], blocks[g, 3]
            if lo == start:
                carry[0] = 0.0
            carry[0] = _split_sums(X, sw, lo, hi, k, res[g % 2], lo, out, carry[0], lossp)
            if hi == stop:
                out[m] += carry[0]
                out[m + 1] += _batch_weight(sw, start, stop)
            intr.store_release(sync, P_SUMMED, g + 1)
            _signal(sync, P_EVENT, P_SLEEP)
            continue
        t = -1
        h = g
        while h < min(g + 2, nblocks):
            t = _ticket(sync, P_CLAIMED + h % 2, S * (h // 2 + 1))
            if t >= 0:
                break
            h += 1
        if t >= 0:
            idle = 0
            t -= S * (h // 2)  # the share of block h
            lo, hi = blocks[h, 0], blocks[h, 1]
            _split_residuals(X, Y, theta, lo + (hi - lo) * t // S, lo + (hi - lo) * (t + 1) // S, res[h % 2], lo)
            intr.fetch_add(sync, P_DONE + h % 2, 1)
            _signal(sync, P_EVENT, P_SLEEP)
            continue
        if ready:  # worker 0's sum to take: spin, and take it after SPINS_BEFORE_SLEEP turns if it is still there
            idle += 1
            intr.spin_pause()
            continue
        _wait_change(sync, P_EVENT, P_SLEEP, seen)


@jit(parallel=True)
def _csr_split_parallel(X, Y, sw, theta, batch_size, batch_ids, lossp, lanes):
    """batches_stats of CSR batches in one group (_csr_split_stats), on ``lanes`` workers (Numba's threads, set
    by _in_team) in one parallel region: the rows in blocks, a block's sums (in row order, by one worker) beside
    the next block's residuals (shared by the others), with the protocol of _split_worker."""
    n, d, k, rows, out, res = _split_setup(X, Y, sw, theta, batch_size, batch_ids)
    m = k * (d + 1)
    nb = batch_ids.shape[0]
    blocks = np.empty((split_block_count(nb, batch_size, rows), 4), dtype=np.int64)
    nblocks = split_blocks(batch_ids, nb, batch_size, n, rows, blocks.reshape(blocks.size))
    sync = np.zeros(64, dtype=np.int64)
    carry = np.zeros(1)
    shares = max(1, rows // SPLIT_ROWS)
    for w in prange(lanes):
        _split_worker(X, Y, sw, theta, blocks, nblocks, shares, res, out, carry, sync, lossp, w)
    return out[:m], out[m], out[m + 1]  # out started at +0.0: no sum in it is -0.0 (as _stats_total's)


def _csr_split_stats(X, Y, sw, theta, batch_size, batch_ids, n_threads, lossp):
    """batches_stats of CSR batches that its buffer budget puts in one group (a full-batch pass at large d, where
    a buffer of k·(d + 1) sums per thread would cost more to zero and add than the non-zeros): one group's sums
    take one thread, so with more threads the pass is split, into the rows' residuals (the gathers, in
    parallel) and their sums (in row order, beside the next block's residuals). Each sum gets the adds of the
    one-thread pass (_csr_rows) in its order: the same bits for any thread count. None where X is dense, the
    batches make more than one group, or one thread is all the work pays for. ``lossp``: as _stats_plan
    checked it."""
    if not isinstance(X, tuple):
        return None
    nb = len(batch_ids)
    if nb > batches_per_group(nb, Y.shape[1] * (shape(X)[1] + 1), False):  # _stats_layout's groups, in Python
        return None  # (_stats_layout itself would compile an entry point for Python: memory a fit need not take)
    rows = min(nb * batch_size, shape(X)[0])
    n_threads = min(region_threads(_threads(n_threads), -(-rows // SPLIT_ROWS), _work(X, rows, Y.shape[1])),
                    numba.config.NUMBA_NUM_THREADS)
    if n_threads == 1:
        return None
    return _in_team(_csr_split_parallel, n_threads, X, Y, sw, theta, batch_size, batch_ids, lossp, n_threads)


def batches_stats(X, Y, sw, theta, batch_size, batch_ids, n_threads=None, loss=None):
    """Raw sums over the listed batches at fixed ``theta``, for validation scores and the gradient-norm rule.

    Returns ``(G, loss, weight)``: G = Σ s_i r_i [x_i, 1] (flat, k * (d + 1)), loss = Σ s_i r_i²,
    weight = Σ s_i. Batches are split into groups (a function of their number and the shape only), each
    summed into its own buffer, and the groups are added in order: deterministic for any thread count.
    ``n_threads`` as in :func:`predict`. ``loss``: ``(code, param)`` of another loss (fastgd._rules.LOSSES;
    None: the squared error); G then sums s_i slope(r_i) [x_i, 1] and loss Σ s_i loss(r_i).
    """
    group_threads, lossp = _stats_plan(X, Y, batch_size, batch_ids, n_threads, loss)
    split = _csr_split_stats(X, Y, sw, theta, batch_size, batch_ids, n_threads, lossp)
    if split is not None:
        return split
    if group_threads == 1:
        return _batches_stats_sequential(X, Y, sw, theta, batch_size, batch_ids, lossp)
    return _in_team(_batches_stats_parallel, group_threads, X, Y, sw, theta, batch_size, batch_ids, lossp)


def _stats_plan(X, Y, batch_size, batch_ids, n_threads, loss, loss_only=False):
    """(threads, (loss code, param)) of batches_stats / batches_loss (``loss_only``): a thread per group of
    _stats_layout (_loss_layout) at most, and only as many as the work pays for."""
    n, d = shape(X)
    nb = len(batch_ids)
    per = batches_per_group(nb, Y.shape[1] * (d + 1), loss_only)  # their groups
    n_threads = region_threads(_threads(n_threads), -(-nb // per), _work(X, min(nb * batch_size, n), Y.shape[1]))
    lossp = SQUARED if loss is None else (int(loss[0]), float(loss[1]))
    _check_loss(lossp)
    return n_threads, lossp


@jit()
def _chunk_loss_dense(X, Y, sw, theta, start, stop, lossp):
    """(Σ s_i loss(r_i), Σ s_i slope(r_i)) over rows [start, stop): _chunk_grad_dense's loss (same rows, outputs
    and order of adds) without the gradient, so a row costs its dot product only. The slope is summed so that
    it is computed as there: unused, reassoc may fold s_i·r_i·r_i another way and change the loss's bits."""
    d = X.shape[1]
    k = Y.shape[1]
    loss = 0.0
    weighted = sw.shape[0] > 0
    lcode, la = lossp
    ssum = 0.0
    npair = (stop - start) // 2
    for j in range(k):
        for t in range(npair):  # rows in pairs, as there
            i = start + 2 * t
            a0 = theta[j, d]
            a1 = theta[j, d]
            for c in range(d):
                wc = theta[j, c]
                a0 += X[i, c] * wc
                a1 += X[i + 1, c] * wc
            sa, loss = _rules.loss_accumulate(lcode, a0 - Y[i, j], la, sw[i] if weighted else 1.0, loss)
            sb, loss = _rules.loss_accumulate(lcode, a1 - Y[i + 1, j], la, sw[i + 1] if weighted else 1.0, loss)
            ssum += sa + sb
        if (stop - start) % 2 == 1:
            i = stop - 1
            acc = theta[j, d]
            for c in range(d):
                acc += X[i, c] * theta[j, c]
            s, loss = _rules.loss_accumulate(lcode, acc - Y[i, j], la, sw[i] if weighted else 1.0, loss)
            ssum += s
    return loss, ssum


@jit()
def _csr_rows_loss(X, Y, sw, theta, start, stop, lossp):
    """(Σ s_i loss(r_i), Σ s_i slope(r_i)) over rows [start, stop): _csr_rows' loss without the gradient (costs
    the non-zeros; the slope sum as in _chunk_loss_dense). At large d the parameters of the values
    LOSS_AHEAD_VALUES ahead in X are hinted, in a loop of their own (as the native twin's _csr_loss)."""
    X = _borrow_x(X)
    data, indices, indptr, d = X
    k = Y.shape[1]
    loss = 0.0
    ssum = 0.0
    weighted = sw.shape[0] > 0
    lcode, la = lossp
    end = indptr[indptr.shape[0] - 1] if k * (d + 1) * 8 >= _rules.LOSS_HINT_MIN_BYTES else 0  # 0: no hints
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        lo = indptr[i]
        hi = indptr[i + 1]
        for q in range(lo + _rules.LOSS_AHEAD_VALUES, min(hi + _rules.LOSS_AHEAD_VALUES, end)):
            for j in range(k):
                intr.prefetch_row(theta, j, indices[q])
        for j in range(k):
            sr, loss = _rules.loss_accumulate(lcode, _row_dot(X, i, theta, j) - Y[i, j], la, s, loss)
            ssum += sr
    return loss, ssum


def _batch_loss(X, Y, sw, theta, start, stop, ch, lossp):
    """(loss, slope sum) of one batch, added as batches_stats adds its sums: CSR one run over the rows; dense
    chunk by chunk from zero (as _batch_grad_sequential). Body: plain Python, NUMBA_DISABLE_JIT=1."""
    if isinstance(X, tuple):
        return _csr_rows_loss(X, Y, sw, theta, start, stop, lossp)
    total = ssum = 0.0
    for s0 in range(start, stop, ch):
        loss, s = _chunk_loss_dense(X, Y, sw, theta, s0, min(s0 + ch, stop), lossp)
        total += loss
        ssum += s
    return total, ssum


@overload(_batch_loss, jit_options=OVERLOAD_FLAGS)
def _batch_loss_impl(X, Y, sw, theta, start, stop, ch, lossp):
    if _is_csr(X):
        return lambda X, Y, sw, theta, start, stop, ch, lossp: _csr_rows_loss(X, Y, sw, theta, start, stop, lossp)

    def dense(X, Y, sw, theta, start, stop, ch, lossp):
        total = ssum = 0.0
        s0 = start
        while s0 < stop:
            loss, s = _chunk_loss_dense(X, Y, sw, theta, s0, min(s0 + ch, stop), lossp)
            total += loss
            ssum += s
            s0 += ch
        return total, ssum
    return dense


@jit()
def _loss_group(X, Y, sw, theta, batch_size, batch_ids, lo, hi, ch, out, lossp):
    """Add the loss and weight of batches batch_ids[lo:hi] into out[0], out[1] (as _stats_group adds them);
    out[2]: their slope sums (unused)."""
    X, Y, sw, theta, batch_ids = _borrow_x(X), intr.borrowed(Y), intr.borrowed(sw), intr.borrowed(theta), \
        intr.borrowed(batch_ids)
    n = shape(X)[0]
    for bi in range(lo, hi):
        start = batch_ids[bi] * batch_size
        stop = min(start + batch_size, n)
        loss, s = _batch_loss(X, Y, sw, theta, start, stop, ch, lossp)
        out[0] += loss
        out[1] += _batch_weight(sw, start, stop)
        out[2] += s


@jit(parallel=True)
def _batches_loss_parallel(X, Y, sw, theta, batch_size, batch_ids, lossp):
    _check_stats_args(X, Y, sw, theta, batch_size, batch_ids)
    nb = batch_ids.shape[0]
    per, ngroups, ch = _loss_layout(X, Y, batch_size, nb)
    sums = np.zeros((ngroups, 8))  # a cache line per group
    for g in prange(ngroups):
        _loss_group(X, Y, sw, theta, batch_size, batch_ids, g * per, min(g * per + per, nb), ch, sums[g], lossp)
    return _loss_total(sums, ngroups)


@jit()
def _batches_loss_sequential(X, Y, sw, theta, batch_size, batch_ids, lossp):
    _check_stats_args(X, Y, sw, theta, batch_size, batch_ids)
    nb = batch_ids.shape[0]
    per, ngroups, ch = _loss_layout(X, Y, batch_size, nb)
    sums = np.zeros((ngroups, 8))
    for g in range(ngroups):  # the groups of the parallel driver
        _loss_group(X, Y, sw, theta, batch_size, batch_ids, g * per, min(g * per + per, nb), ch, sums[g], lossp)
    return _loss_total(sums, ngroups)


@jit()
def _loss_total(sums, ngroups):
    loss = 0.0
    weight = 0.0
    for g in range(ngroups):  # groups added in order
        loss += sums[g, 0]
        weight += sums[g, 1]
    return loss, weight


def batches_loss(X, Y, sw, theta, batch_size, batch_ids, n_threads=None, loss=None):
    """``(loss, weight)`` of :func:`batches_stats` without its gradient sums G: what an evaluation needs.

    The same chunks and order of adds as batches_stats, and its groups where its memory budget allows
    MAX_CHUNKS of them (so the same bits there); no buffer of k·(d + 1) per group or chunk, so at large d
    up to MAX_CHUNKS groups where batches_stats has fewer (CSR costs the listed rows' non-zeros, not d; a
    dense row costs its dot product only). The groups depend on the number of batches only: the same bits
    for any thread count and both backends."""
    n_threads, lossp = _stats_plan(X, Y, batch_size, batch_ids, n_threads, loss, loss_only=True)
    if n_threads == 1:
        return _batches_loss_sequential(X, Y, sw, theta, batch_size, batch_ids, lossp)
    return _in_team(_batches_loss_parallel, n_threads, X, Y, sw, theta, batch_size, batch_ids, lossp)


def _work(X, rows, k):
    """Multiply-adds of ``rows`` rows of X for ``k`` outputs (CSR: at X's mean number of values per row)."""
    n, d = shape(X)
    if isinstance(X, tuple):
        d = -(-len(X[0]) // max(n, 1))
    return rows * max(d, 1) * max(k, 1)


@jit(parallel=True)
def read_floor(X):
    """The hardware floor: a read-only pass over X with all threads (row sums, reassociated so it vectorizes).

    Benchmarks divide epoch times by this; it must be at least as fast as NumPy's ``X.sum()``.
    """
    n, d = X.shape
    nch = (n + READ_ROWS - 1) // READ_ROWS
    sums = np.zeros(nch)
    for c in prange(nch):
        s = 0.0
        for i in range(c * READ_ROWS, min(c * READ_ROWS + READ_ROWS, n)):
            for j in range(d):
                s += X[i, j]
        sums[c] = s
    return sums.sum()


@jit(parallel=True)
def _sum_parallel(X):
    n = X.shape[0]
    nch = (n + READ_ROWS - 1) // READ_ROWS
    sums = np.zeros(nch)
    for c in prange(nch):
        s = 0.0
        for i in range(c * READ_ROWS, min(c * READ_ROWS + READ_ROWS, n)):
            for j in range(X.shape[1]):
                s += X[i, j]
        sums[c] = s
    return sums.sum()


@jit()
def _sum_sequential(X):
    s = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            s += X[i, j]
    return s


def all_finite(X, n_threads=None):
    """False when the 2-D array X holds a NaN or an infinity (or its sum overflows: then check exactly),
    from one read of X with all threads (scikit-learn's check sums X on one thread)."""
    n = X.shape[0]
    nt = region_threads(_threads(n_threads), -(-n // READ_ROWS), n * max(X.shape[1], 1))
    s = _sum_sequential(X) if nt == 1 else _in_team(_sum_parallel, nt, X)
    return math.isfinite(s)


def column_nonzero_weight(X, sw):
    """The weight of the rows where each column of dense X is non-zero (``sw``: the rows' weights, empty for 1
    each; rows of weight <= 0 count nothing), float64: a dense stream's chunk's share of non-zeros
    (fastgd._scaling.Scaling, the bound on rare columns). One sequential pass, a row at a time, adding in row
    order (the reference: fastgd.reference.column_nonzero_weight)."""
    _check_sw(sw, X.shape[0])
    return _column_nonzero_weight(X, sw)


def _check_sw(sw, n):
    """Row weights for the column passes: empty or one per row (the native twins' check; the jitted loops read
    sw[i] for every row unchecked)."""
    if sw.shape[0] not in (0, n):
        raise ValueError(f"sw must be empty or hold one weight per row ({n}), got {sw.shape[0]}")


@jit()
def _column_nonzero_weight(X, sw):
    n, d = X.shape
    out = np.zeros(d)
    weighted = sw.shape[0] > 0
    for i in range(n):
        s = sw[i] if weighted else 1.0
        if not s > 0.0:
            continue
        for j in range(d):
            out[j] += s if X[i, j] != 0 else 0.0
    return out


def column_stats(X, sw, n_threads=None):
    """Weighted mean and variance of every column of X (dense or CSR) and the total weight, in float64.

    Dense X: fixed row chunks (their size depends on n only), each summarized by its mean and centred sum of
    squares, merged in chunk order (Chan et al.), so the result is deterministic and accurate for
    columns with a large mean. CSR: see :func:`csr_column_stats`.
    ``n_threads`` as in :func:`predict` (a forked child opens no parallel region).
    """
    nt = _threads(n_threads)
    if not isinstance(X, tuple):
        n = X.shape[0]
        _check_sw(sw, n)
        rows = stats_rows(n, X.shape[1])  # the chunks of _stats_chunks
        nt = region_threads(nt, -(-n // rows), _work(X, n, 1))
    if isinstance(X, tuple):
        mean, var, total, _, _ = csr_column_stats(X, sw)
        return mean, var, total
    elif nt == 1:
        mean, m2, total = _dense_stats_sequential(X, sw)
    else:
        mean, m2, total = _in_team(_dense_stats, nt, X, sw)
    var = np.maximum(m2, 0.0) / total if total > 0.0 else np.zeros_like(m2)
    return mean, var, total


def csr_column_stats(X, sw):
    """``(mean, var, total, maxabs, stored)`` of the columns of a CSR tuple: weighted mean and variance (the
    implicit zeros count), total weight, largest absolute value, and the weight of the rows that store the
    column. Duplicate (row, column) entries count as their sum, as in SciPy; the variance is taken in two
    passes (the mean first, then centred squares), so a column with a large offset keeps its small spread;
    column indices are checked. Sequential and deterministic."""
    mean, m2, total, maxabs, stored = _csr_stats(X, sw)
    if total > 0.0:  # the variance in place: no O(d) temporary
        np.maximum(m2, 0.0, out=m2)
        m2 /= total
    else:
        m2[:] = 0.0
    return mean, m2, total, maxabs, stored


@jit()
def batch_column_counts(X, batch_size, batch_ids):
    """nb_j of a CSR tuple: how many of the listed batches (distinct; batch b = rows [b*batch_size,
    (b+1)*batch_size)) store each column, as float64 (fastgd._rules.count_column_batches: O(nnz + d), X not
    copied). Sequential and deterministic."""
    data, indices, indptr, d = X
    _check_csr(data, indices, indptr, d)
    n = indptr.shape[0] - 1
    _check_batches(n, batch_size, batch_ids, "batch_ids")
    counts = np.zeros(d)
    _rules.count_column_batches(indices, indptr, n, batch_size, batch_ids, batch_ids.shape[0],
                               np.full(d, -1, dtype=np.int64), counts)
    return counts


@jit(parallel=True)
def _dense_stats(X, sw):
    n = X.shape[0]
    rows, nch, cmean, cm2, cw = _stats_chunks(n, X.shape[1])
    for c in prange(nch):
        _dense_moments(X, sw, sw.shape[0] > 0, c * rows, min(c * rows + rows, n), cmean[c], cm2[c], cw, c)
    return _chan_merge(cmean, cm2, cw)


@jit()
def _dense_stats_sequential(X, sw):
    """As _dense_stats, opening no parallel region (a forked child; a separate function, since Numba's
    cache keys compiled code by function, not by the parallel flag)."""
    n = X.shape[0]
    rows, nch, cmean, cm2, cw = _stats_chunks(n, X.shape[1])
    for c in range(nch):
        _dense_moments(X, sw, sw.shape[0] > 0, c * rows, min(c * rows + rows, n), cmean[c], cm2[c], cw, c)
    return _chan_merge(cmean, cm2, cw)


@jit()
def _stats_chunks(n, d):
    """Rows per chunk, number of chunks, and the per-chunk (mean, centred sum of squares, weight) buffers."""
    rows = stats_rows(n, d)
    nch = (n + rows - 1) // rows
    return rows, nch, np.zeros((nch, d)), np.zeros((nch, d)), np.zeros(nch)


@jit()
def _chan_merge(cmean, cm2, cw):
    """Merge per-chunk (mean, centred sum of squares, weight) in chunk order: fastgd._rules.chan_merge."""
    d = cmean.shape[1]
    mean = np.zeros(d)
    m2 = np.zeros(d)
    total = _rules.chan_merge(cmean.ravel(), cm2.ravel(), cw, cmean.shape[0], d, mean, m2)
    return mean, m2, total


@jit()
def _dense_moments(X, sw, weighted, start, stop, mean, m2, cw, c):
    """Chunk c's column statistics on rows [start, stop): weighted mean and centred sum of squares into
    ``mean`` and ``m2`` (zeros on entry), the weight into cw[c]. A hot loop over X, so written per backend
    (the native twin: FASTGD_MOMENTS in fastgd._native).

    One pass: weighted sums S1, S2 of v = x - x0 (x0: the chunk's first row of positive weight, a shift close to
    the mean, so a column with a large offset keeps its small spread), then mean = x0 + S1 / w and
    m2 = S2 - S1 (S1 / w). The cancellation costs a factor (x0 - mean)² / var of the chunk in relative accuracy,
    at most its rows - 1 (a row that counts lies within sqrt(rows - 1) spreads of the weighted mean; a row of
    weight 0 may lie anywhere: shifted by one at 1e8 from the others, whole columns' variances came out 0).
    Four rows per pass over the sums: the loop's cost is its stores to them (a 64-byte store takes about two
    cycles). Four rows in one loop defeat the hardware's stream detection, so the rows about PREFETCH_BYTES
    ahead are prefetched. (Two passes, the mean and then centred squares from the cache, a row per store,
    took 2-2.6x a read of X.)"""
    d = X.shape[1]
    if d == 1:  # one column (y): the rule's partial sums, on a 1-D view
        cw[c] = _rules.column_moments(X.reshape(X.shape[0]), sw, weighted, start, stop, mean, m2)
        return
    w = 0.0
    i = start
    n = X.shape[0]
    base = start  # the shift: the chunk's first row of positive weight (a row of weight 0 may lie anywhere)
    while weighted and base + 1 < stop and not sw[base] > 0.0:
        base += 1
    line = 64 // X.itemsize
    ahead = (PREFETCH_BYTES + d * X.itemsize - 1) // (d * X.itemsize)  # rows
    while i + 4 <= stop:
        if i + ahead + 4 <= n:  # four rows in one loop defeat the hardware's stream detection: prefetch
            for q in range(0, 4 * d, line):
                intr.prefetch_row(X, i + ahead, q)
        s0 = sw[i] if weighted else 1.0
        s1 = sw[i + 1] if weighted else 1.0
        s2 = sw[i + 2] if weighted else 1.0
        s3 = sw[i + 3] if weighted else 1.0
        w += (s0 + s1) + (s2 + s3)
        for j in range(d):
            x0 = np.float64(X[base, j])
            v0 = np.float64(X[i, j]) - x0
            v1 = np.float64(X[i + 1, j]) - x0
            v2 = np.float64(X[i + 2, j]) - x0
            v3 = np.float64(X[i + 3, j]) - x0
            mean[j] += (s0 * v0 + s1 * v1) + (s2 * v2 + s3 * v3)
            m2[j] += (s0 * v0 * v0 + s1 * v1 * v1) + (s2 * v2 * v2 + s3 * v3 * v3)
        i += 4
    while i < stop:
        s0 = sw[i] if weighted else 1.0
        w += s0
        for j in range(d):
            v0 = np.float64(X[i, j]) - np.float64(X[base, j])
            mean[j] += s0 * v0
            m2[j] += s0 * v0 * v0
        i += 1
    if w > 0.0:
        for j in range(d):
            t = mean[j]
            mean[j] = np.float64(X[base, j]) + t / w
            m2[j] -= t * (t / w)
    cw[c] = w


@jit()
def _csr_stats(X, sw):
    """fastgd._rules.csr_moments of a CSR tuple, after checking it."""
    data, indices, indptr, d = X
    _check_csr(data, indices, indptr, d)
    n = indptr.shape[0] - 1
    mean = np.zeros(d)
    m2 = np.zeros(d)
    maxabs = np.zeros(d)
    stored = np.zeros(d)
    widest = 0
    for i in range(n):
        widest = max(widest, indptr[i + 1] - indptr[i])
    total = _rules.csr_moments(data, indices, indptr, n, d, sw, sw.shape[0] > 0, mean, m2, maxabs, stored,
                               np.full(d, -1, dtype=np.int64), np.zeros(d), np.empty(widest, dtype=np.int64))
    return mean, m2, total, maxabs, stored
