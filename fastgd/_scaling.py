"""Standardization: the column means and scales of X and of the targets, applied inside the kernels.

``Scaling`` holds them; the kernels apply them per batch in O(k·d) (``fastgd._kernels.raw_theta``), so X is
never copied. ``TrainingState.theta`` is in the standardized coordinates; ``Scaling.to_raw`` gives the
coefficients in the data's units.
"""

import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from . import _engine

CONSTANT_SPREAD = 64 * np.finfo(np.float64).eps  # a standard deviation below this multiple of |mean|: constant
SPARSE_CENTRE_FRACTION = 0.5  # CSR: columns stored in at least this fraction of the rows are centred (Scaling)
# partial_fit: a mostly-zero column whose values a stream has shown in fewer rows than this is not scaled below the
# median scale of the columns shown in that many rows (Scaling)
TRUSTED_VALUES = 10
# partial_fit on dense chunks with an optimizer that steps each coordinate by about the rate (the Adam family,
# Adagrad, RMSprop, Adadelta): a mostly-zero column's scale is at least the root mean square of its non-zero
# values so far over this (its typical non-zero value standardized to at most this; Scaling)
STREAM_SPREAD_CAP = 10.0
TINY_SCALE = np.finfo(np.float64).tiny ** 0.5  # below this a column's squares underflow (_check_representable)


def constant_floor(mean):
    """The spread at or below which a column with these means counts as constant (rounding next to the mean, or
    below TINY_SCALE): Scaling's rule, and the shortfall checks' column scales'."""
    floor = np.abs(mean) * CONSTANT_SPREAD
    return np.maximum(TINY_SCALE, floor, out=floor)


class Moments(NamedTuple):
    """A chunk's raw statistics (``Scaling._moments``), what ``Scaling._finish`` makes a Scaling of or
    ``Scaling.merged`` merges into running ones."""
    x_mean: np.ndarray
    x_var: np.ndarray
    y_mean: np.ndarray
    y_var: np.ndarray
    weight: float
    sparse: tuple  # CSR: (largest |value|, stored weight) per column; dense: None
    counts: np.ndarray  # a stream's non-zero rows per column (``from_data``'s ``count``), or None
    stored: np.ndarray  # a dense stream's weight of those rows, or None
    nonzero: np.ndarray  # a dense stream's weight of each column's non-zero rows (all columns), or None
    top_of: Callable  # (name, columns) -> their largest |values| (for the error messages)


@dataclass
class Scaling:
    """Column means and scales of X and of the targets (float64), applied inside the kernels.

    Without an intercept nothing is centred (means are zero) and the scales are root mean squares, so the
    model stays a line through the origin. Constant columns get scale 1 (as scikit-learn's StandardScaler).

    Sparse (CSR) X: a column stored in fewer than ``SPARSE_CENTRE_FRACTION`` of the rows (by weight) is not
    centred and is scaled by its largest absolute value (as scikit-learn's MaxAbsScaler): its scaled values
    stay in [-1, 1] however rare it is (a rare column's standard deviation is tiny, so dividing by it makes
    its few values huge and the step size that suits the rest diverges on them), and every batch's gradient
    stays as sparse as its rows. Columns stored in most rows are centred and scaled by their standard
    deviation as dense columns are (a column with a large offset would otherwise be nearly collinear with
    the intercept); every batch touches them anyway.

    ``partial_fit`` (``from_data(..., count=...)``): a stream's statistics also count, per column, the rows
    whose value is non-zero (``x_count``, up to ``TRUSTED_VALUES``; dense chunks also keep their weight,
    ``x_stored``, and are read again only for the columns still below that count). A mostly-zero column
    (non-zero in fewer than ``SPARSE_CENTRE_FRACTION`` of the rows seen, by weight) whose values fewer than
    ``TRUSTED_VALUES`` rows have shown is scaled by at least the median scale of the columns that many rows
    have shown: its own estimate, from a handful of values, can be off by orders of magnitude (one value of
    6.3e-4 in a first chunk of 100 rows: a standard deviation of 6e-5, where all 2000 rows give 0.08), and the
    optimizer's steps, of about the rate in scaled units, are the rate over that scale in the data's units: the
    first calls gave such a column a raw coefficient of 215 that its later values, up to 1, turned into R² -159.
    A larger scale only slows the column until its values are trusted. ``fit`` (all rows at once) and a stream
    after a ``fit`` (whose statistics hold no counts: trusted) are unaffected.

    With ``bound`` (partial_fit with an optimizer that steps each coordinate by about the rate whatever its
    gradient: the Adam family, Adagrad, RMSprop, Adadelta) the dense chunks of a stream also keep, for every
    column, the weight of its non-zero rows (``x_nonzero``), and a mostly-zero column's scale is at least the
    root mean square of its non-zero values over ``STREAM_SPREAD_CAP`` (from the stream's first call on, while
    its calls use such an optimizer: a call with another keeps no such weights, and the bound ends). A column
    non-zero in a share q of the rows has a standard deviation of about √q times its non-zero values, so its
    standardized non-zero values are about 1/√q: a one-hot level seen in one row of 2,000 has 45, and each
    update, about the rate per coordinate, moves the predictions of its rows by 45 times the rate, whatever the
    gradient's evidence (dense one-hot chunks of 8 categories with 500 levels: held-out R² −0.39 after 5 passes
    where the same chunks as CSR, whose rare columns are scaled by their largest |value|, gave 0.93). The bound
    acts where q < 1 / STREAM_SPREAD_CAP² (1 %), and only through weighted second moments: columns non-zero in
    most rows, however heavy their tails or odd their outliers, and rows of small weight leave it alone. SGD,
    whose steps follow the gradient, keeps the standard deviation (its steps on a rare column are small
    already).
    """

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    weight: float = 0.0
    # the data's own statistics (raw means, variances, weight): what merges across partial_fit calls and dask
    # blocks; the derived scales cannot (a constant column's scale is set to 1)
    x_var: np.ndarray = field(default=None, repr=False)
    y_var: np.ndarray = field(default=None, repr=False)
    x_raw_mean: np.ndarray = field(default=None, repr=False)
    y_raw_mean: np.ndarray = field(default=None, repr=False)
    # CSR: per column the largest |value| and the weight of the rows that store it, kept compact (``_compact``):
    # the largest |value| is the scale of a rare column, so only the columns where it is not are listed, and
    # the stored weight only decides which columns are rare (float32); then the columns that are not rare
    # with their float64 means and variances (x_raw_mean and x_var are float32 for CSR, in units of x_scale:
    # ``column_moments``)
    x_sparse: tuple = field(default=None, repr=False)
    # partial_fit: per column the rows that hold a non-zero (CSR: that store it), float32, up to TRUSTED_VALUES
    # (only whether a column has reached it matters); dense chunks: the weight of those rows (float64), kept up
    # to date only for the columns below TRUSTED_VALUES (the others are no longer counted)
    x_count: np.ndarray = field(default=None, repr=False)
    x_stored: np.ndarray = field(default=None, repr=False)
    # dense partial_fit chunks with the bound: the weight of each column's non-zero rows over the stream (see the
    # class)
    x_nonzero: np.ndarray = field(default=None, repr=False)

    @classmethod
    def identity(cls, d, k):
        return cls(np.zeros(d), np.ones(d), np.zeros(k), np.ones(k))

    @classmethod
    def from_data(cls, kern, Xk, Y, sw, center, n_threads=None, count=None, into=None, bound=False):
        """The statistics of (Xk, Y) with weights ``sw``. ``count``: X is a chunk of a stream (partial_fit), whose
        non-zero rows per column bound the scales of the columns seen in few rows (see the class): "all", or
        the dense columns to count (an index array; CSR counts all); None: no counts. ``into``: the statistics
        of the rows before the chunk (a stream's), which the result merges the chunk's into (``merged``; the
        chunk's own raw moments, without first finishing them as statistics of their own: at d = 2^20 that
        finish alone cost 17 ms of a call's 100). ``bound``: a dense stream's mostly-zero columns scaled by at
        least the root mean square of their non-zero values over STREAM_SPREAD_CAP (see the class)."""
        moments = cls._moments(kern, Xk, Y, sw, n_threads, count, bound)
        return cls._finished(moments, center, bound) if into is None else into.merged(moments, bound)

    @classmethod
    def _finished(cls, m, center, bound=False):
        """The Scaling of a chunk's raw statistics ``m`` (``Moments``)."""
        return cls._finish(m.x_mean, m.x_var, m.y_mean, m.y_var, m.weight, center, m.sparse, m.top_of,
                           count=m.counts, stored=m.stored, nonzero=m.nonzero, bound=bound)

    @staticmethod
    def _moments(kern, Xk, Y, sw, n_threads, count, bound=False):
        """A chunk's raw statistics (``Moments``; ``from_data``'s arguments: the non-zero weights of a dense
        stream's chunk only with ``bound``, a pass over the chunk that a stream whose optimizer takes no bound
        skips)."""
        sw = _engine.EMPTY if sw is None else sw
        sparse = counts = stored = nonzero = None
        if isinstance(Xk, tuple):  # CSR
            x_mean, x_var, weight, maxabs, stored = kern.csr_column_stats(Xk, sw)
            sparse = (maxabs, stored)
            stored = None
            if count is not None:
                counts = np.bincount(Xk[1], minlength=len(x_mean)).astype(np.float64)
        else:
            x_mean, x_var, weight = kern.column_stats(Xk, sw, n_threads)
            if count is not None:
                stored, counts = dense_counts(Xk, None if sw.size == 0 else sw,
                                              None if isinstance(count, str) else count)
                if bound:
                    nonzero = kern.column_nonzero_weight(Xk, sw)
        # the targets' statistics by the same kernel: no O(n) temporaries (out-of-core: memory independent of n)
        y_mean, y_var, _ = kern.column_stats(np.ascontiguousarray(Y, dtype=np.float64), sw, n_threads)
        return Moments(x_mean, x_var, y_mean, y_var, weight, sparse, counts, stored, nonzero,
                       lambda name, cols: _largest(Y if name == "y" else Xk, cols))

    @classmethod
    def _finish(cls, x_mean, x_var, y_mean, y_var, weight, center, sparse=None, top_of=None, count=None,
                stored=None, nonzero=None, bound=False):
        for name, arrays in (("X", (x_mean, x_var)), ("y", (y_mean, y_var))):
            if not all(_engine.all_finite(a) for a in arrays):
                with warnings.catch_warnings():  # an all-NaN mean (NaN in X, which the caller names) is no warning
                    warnings.simplefilter("ignore", RuntimeWarning)
                    largest = np.nanmax(np.abs(arrays[0]))
                bad = ~(np.isfinite(arrays[0]) & np.isfinite(arrays[1]))
                raise ValueError(
                    f"{name} has values too large for float64 arithmetic (their squares overflow, "
                    f"max |mean| = {largest:.3g}); divide {name} by a constant first"
                    f"{_divisor(name, bad, sparse, top_of)}")
        with np.errstate(over="ignore"):
            x_ms = x_var if center else x_var + np.square(x_mean)
            y_ms = y_var if center else y_var + np.square(y_mean)
        # the kernels' packed vector [x_centre, x_scale, y_centre, y_scale], written in place: the four
        # fields are views of it (``pack`` hands it over), so no O(d) temporary outlives this function
        d, k = len(x_mean), len(y_mean)
        packed = np.empty(2 * d + 2 * k)
        x_centre, x_scale, y_centre, y_scale = np.split(packed, [d, 2 * d, 2 * d + k])
        np.sqrt(x_ms, out=x_scale)
        np.sqrt(y_ms, out=y_scale)
        del x_ms, y_ms
        tiny = TINY_SCALE
        _check_representable(x_mean, x_scale, y_mean, y_scale, None if sparse is None else sparse[0], tiny,
                             top_of)
        # a spread at rounding level next to the mean (a constant column, or one row carrying nearly all the
        # sample weight) is no scale to divide by: such a column counts as constant
        for scale, mean in ((x_scale, x_mean), (y_scale, y_mean)):
            varying = scale > constant_floor(mean)
            if scale is x_scale:
                x_varying = varying
            np.copyto(scale, 1.0, where=~varying)
            del varying
        for name, scale in (("X", x_scale), ("y", y_scale)):
            if not _engine.all_finite(scale):
                raise ValueError(f"{name} has values too large for float64 arithmetic (their squares overflow); "
                                 f"divide {name} by a constant first"
                                 f"{_divisor(name, ~np.isfinite(scale), sparse, top_of)}")
        x_centre[...] = x_mean if center else 0.0
        y_centre[...] = y_mean if center else 0.0
        if sparse is not None:
            maxabs, held = sparse  # (``stored`` stays a dense stream's own: None here)
            rare = ~(held >= SPARSE_CENTRE_FRACTION * weight) if center else np.ones(len(held), bool)
            np.copyto(x_centre, 0.0, where=rare)
            np.copyto(x_scale, np.where(maxabs > tiny, maxabs, 1.0), where=rare)
        if count is not None:
            count = np.minimum(count, TRUSTED_VALUES, dtype=np.float32)  # whole numbers: exact in float32
            if sparse is None:  # a dense stream's mostly-zero columns (centred and scaled as in fit)
                rare = ~(stored >= SPARSE_CENTRE_FRACTION * weight)
            _bound_untrusted(x_scale, rare, count, x_varying)
        if nonzero is not None and bound:
            _bound_rare(x_scale, x_mean, x_var, nonzero, weight, x_varying)
        if sparse is not None:
            # a rare column's variance is at least about its mean squared (most of its rows hold an implicit
            # zero), so float32 keeps its merges exact enough; the few other columns keep float64 (listed).
            # float32 in units of the column's scale (its largest |value|: both within [-1, 1]), which any units
            # of X leave representable (raw, a variance overflows float32 at |x| ~ 1e19 and underflows at 1e-19)
            dense = np.flatnonzero(~rare)
            sparse = cls._compact(x_scale, maxabs, held) + (dense, x_mean[dense], x_var[dense])
            x_mean = np.divide(x_mean, x_scale, out=np.zeros(d, np.float32), where=rare, casting="same_kind")
            x_var = np.divide(x_var, np.square(x_scale), out=np.zeros(d, np.float32), where=rare,
                              casting="same_kind")
        out = cls(x_centre, x_scale, y_centre, y_scale, float(weight), x_var, y_var, x_mean, y_mean, sparse, count,
                  stored, nonzero)
        out._center = center
        out._packed = packed
        return out

    def merged(self, new, bound=False):
        """Statistics of the union of the data behind ``self`` and ``new`` (Chan's merge): partial_fit and dask
        blocks. ``new``: a Scaling, or a chunk's raw statistics (``Moments``). ``bound``: as ``from_data``'s."""
        if isinstance(new, Scaling):
            n2, (new_mean, new_var), new_y = new.weight, new.column_moments(), (new.y_raw_mean, new.y_var)
            new_sparse = None if new.x_sparse is None else (new.column_maxabs(), new.x_sparse[2])
            new_count, new_stored, new_nonzero = new.x_count, new.x_stored, new.x_nonzero
        else:
            n2, new_mean, new_var, new_y = new.weight, new.x_mean, new.x_var, (new.y_mean, new.y_var)
            new_sparse, new_count, new_stored, new_nonzero = new.sparse, new.counts, new.stored, new.nonzero
        n1 = self.weight
        if n1 <= 0:
            return new if isinstance(new, Scaling) else Scaling._finished(new, self._center, bound)
        tot = n1 + n2
        def merge(m1, v1, m2, v2):
            # m1 + delta * (n2 / tot), (v1 * n1 + v2 * n2 + delta² * (n1 * n2 / tot)) / tot, in that order of
            # operations, with four d-vectors instead of ten (d = 2^20: each is a pass over 8 MB)
            delta = np.subtract(m2, m1)
            mean = np.multiply(delta, n2 / tot)
            np.add(m1, mean, out=mean)
            var = np.multiply(v1, n1)
            part = np.multiply(v2, n2)
            np.add(var, part, out=var)
            np.square(delta, out=delta)
            np.multiply(delta, n1 * n2 / tot, out=delta)
            np.add(var, delta, out=var)
            np.divide(var, tot, out=var)
            return mean, var
        xm, xv = merge(*self.column_moments(), new_mean, new_var)
        ym, yv = merge(self.y_raw_mean, self.y_var, *new_y)
        sparse = count = stored = None
        if self.x_sparse is not None and new_sparse is not None:
            maxabs = self.column_maxabs()  # a new d-vector: the maximum in place
            sparse = (np.maximum(maxabs, new_sparse[0], out=maxabs),
                      np.add(self.x_sparse[2], new_sparse[1], dtype=np.float64))
        # a stream's counts (a fit's statistics have none: trusted; CSR and dense chunks mixed: none either)
        if self.x_count is not None and new_count is not None \
                and (self.x_sparse is None) == (new_sparse is None):
            count = np.add(self.x_count, np.minimum(new_count, TRUSTED_VALUES), dtype=np.float64)
            if sparse is None:
                stored = self.x_stored + new_stored
        # a dense stream's non-zero weights (none after a fit, whose statistics hold none, nor once CSR chunks mix in)
        nonzero = None
        if self.x_nonzero is not None and new_nonzero is not None:
            nonzero = np.add(self.x_nonzero, new_nonzero)
        return Scaling._finish(xm, xv, ym, yv, tot, self._center, sparse, count=count, stored=stored,
                               nonzero=nonzero, bound=bound)

    @staticmethod
    def _compact(x_scale, maxabs, stored):
        """``x_sparse``: (columns, values, stored) where ``column_maxabs`` would not give the largest |value|
        from the scale, and the stored weights as float32."""
        stored = stored.astype(np.float32)
        differs = np.flatnonzero(maxabs != np.where(stored > 0, x_scale, 0.0))
        return differs, maxabs[differs], stored

    def column_moments(self):
        """The columns' raw means and variances in float64 (CSR: made from the compact statistics)."""
        if self.x_sparse is None:
            return self.x_raw_mean, self.x_var
        mean, var = self.x_raw_mean.astype(np.float64), self.x_var.astype(np.float64)
        mean *= self.x_scale  # stored in units of the scale (``_finish``)
        var *= np.square(self.x_scale)
        dense, dense_mean, dense_var = self.x_sparse[3:]
        mean[dense] = dense_mean
        var[dense] = dense_var
        return mean, var

    def column_maxabs(self):
        """The largest |value| of each CSR column (a d-vector made from the compact ``x_sparse``)."""
        differs, values, stored = self.x_sparse[:3]
        out = np.where(stored > 0, self.x_scale, 0.0)
        out[differs] = values
        return out

    def pack(self):
        """The kernels' ``stdz`` vector: [x_mean, x_scale, y_mean, y_scale] (read only: the fields' own buffer
        when they are still the views ``_finish`` made of it)."""
        packed = getattr(self, "_packed", None)
        parts = (self.x_mean, self.x_scale, self.y_mean, self.y_scale)
        if packed is not None and packed.size == sum(a.size for a in parts):
            offsets = np.cumsum([0] + [a.size for a in parts[:-1]]) * packed.itemsize
            if all(a.base is packed and a.ctypes.data == packed.ctypes.data + int(o) and a.strides == packed.strides
                   for a, o in zip(parts, offsets)):
                return packed
        return np.concatenate(parts)

    def curvature(self, l2, fit_intercept, k):
        """The L-BFGS finish's change of variables on sparse data (``_training.train_lbfgs``'s
        ``precondition``): ``(curvature, shift)``. ``shift`` (d,): the scaled columns' means, which the intercept
        absorbs (with an intercept; else None); ``curvature`` (k, d + 1): the diagonal of the Hessian of the
        objective (squared error plus ``l2``) in those variables, the intercept's last: twice each scaled
        column's variance (its second moment without an intercept), plus the penalty's l2 / scale² (the
        penalty is on the raw weights). None when the statistics are not at hand."""
        if self.x_var is None or self.x_raw_mean is None:
            return None
        d = len(self.x_scale)
        out = np.empty((k, d + 1))
        shift = None
        raw_mean, m2 = self.column_moments()
        m2 = m2.copy() if m2 is self.x_var else m2
        if fit_intercept:
            shift = raw_mean - self.x_mean
            shift /= self.x_scale
        else:
            m2 += np.square(raw_mean)
        m2 *= 2.0
        m2 += l2
        m2 /= np.square(self.x_scale)
        m2[~(m2 > 0)] = 1.0  # a column with no spread and no penalty: no curvature (and a zero gradient)
        out[:, :d] = m2
        out[:, d] = 2.0 if fit_intercept else 1.0
        return out, shift

    def to_raw(self, theta, out=None):
        """(k, d + 1) standardized parameters -> (k, d + 1) in the data's units (intercept last), written into
        ``out`` when given (an array of theta's shape, not theta)."""
        d = theta.shape[1] - 1
        raw = np.empty_like(theta) if out is None else out
        w = raw[:, :d]
        np.divide(theta[:, :d], self.x_scale, out=w)  # in place: no (k, d) temporaries
        # einsum, not BLAS: a matrix-vector product of this size wakes BLAS's threads, slow on a busy machine
        shift = np.einsum("ij,j->i", w, self.x_mean)
        w *= self.y_scale[:, None]
        raw[:, d] = self.y_scale * (theta[:, d] - shift) + self.y_mean
        return raw

    def to_std(self, raw):
        """The inverse of ``to_raw``."""
        d = raw.shape[1] - 1
        theta = np.empty_like(raw)
        w = theta[:, :d]
        np.multiply(raw[:, :d], self.x_scale, out=w)  # (raw · scale) / y_scale in place: no (k, d) temporaries
        w /= self.y_scale[:, None]
        theta[:, d] = (raw[:, d] - self.y_mean + np.einsum("ij,j->i", raw[:, :d], self.x_mean)) / self.y_scale
        return theta


def _divisor(name, bad, sparse, top_of):
    """' (such as 1e+160)': a power of ten that brings the largest |value| of the columns ``bad`` (a mask) of
    ``name`` to at most 1, or '' when it cannot be measured (values already infinite in float64)."""
    try:
        cols = np.flatnonzero(bad)
        if name == "X" and sparse is not None:
            biggest = float(np.max(sparse[0][cols]))
        elif top_of is not None:
            biggest = float(np.max(top_of(name, cols)))
        else:
            return ""
    except (TypeError, ValueError, IndexError):
        return ""
    if not (np.isfinite(biggest) and biggest > 0):
        return ""
    return f" (such as {10.0 ** np.ceil(np.log10(biggest)):.0e})"


def dense_counts(A, sw=None, cols=None):
    """(weight, number) of the rows where each column of dense ``A`` (n, d) is non-zero (the number: of those of
    positive weight), float64, read in row blocks (no copy of A); ``sw``: the rows' weights (None: 1 each);
    ``cols``: the columns to count (the others get 0), None: all."""
    d = A.shape[1]
    stored, count = np.zeros(d), np.zeros(d)
    width = d if cols is None else len(cols)
    if width == 0:
        return stored, count
    part_stored, part_count = (stored, count) if cols is None else (np.zeros(width), np.zeros(width))
    rows = max(1, min(4096, (1 << 22) // width))  # blocks of at most 4 MB of temporaries
    for start in range(0, len(A), rows):
        block = A[start:start + rows]
        nonzero = (block if cols is None else block[:, cols]) != 0
        if sw is None:
            hits = nonzero.sum(axis=0)
            part_count += hits
            part_stored += hits
        else:
            w = sw[start:start + rows]
            part_stored += w @ nonzero
            part_count += (w > 0).astype(np.float64) @ nonzero  # the rows that count (a bool product: any)
    if cols is not None:
        stored[cols], count[cols] = part_stored, part_count
    return stored, count


def _bound_rare(x_scale, x_mean, x_var, nonzero, weight, varying):
    """Raise, in place, the scale of each mostly-zero ``varying`` column (``nonzero``: the weight of its
    non-zero rows, under SPARSE_CENTRE_FRACTION of the total ``weight``) to at least the root mean square of its
    non-zero values (from its raw mean and variance) over STREAM_SPREAD_CAP: see ``Scaling``."""
    rare = varying & (nonzero > 0) & (nonzero < SPARSE_CENTRE_FRACTION * weight)
    cols = np.flatnonzero(rare)
    if not cols.size:
        return
    mean = x_mean[cols]
    typical = np.sqrt((x_var[cols] + mean * mean) * (weight / nonzero[cols])) / STREAM_SPREAD_CAP
    x_scale[cols] = np.maximum(x_scale[cols], typical)


def _bound_untrusted(x_scale, rare, count, varying):
    """Raise, in place, the scale of the mostly-zero (``rare``) ``varying`` columns whose values fewer than
    ``TRUSTED_VALUES`` rows have shown (``count``) to at least the median scale of the varying columns shown in
    that many rows (else of all varying columns): see ``Scaling``."""
    trusted = varying & (count >= TRUSTED_VALUES)
    pool = x_scale[trusted] if np.any(trusted) else x_scale[varying]
    if not pool.size:
        return
    unit = float(np.median(pool))
    few = rare & varying & ~(count >= TRUSTED_VALUES) & (x_scale < unit)
    x_scale[few] = unit


def _largest(A, cols):
    """The largest |value| of columns ``cols`` of dense ``A`` (n, ·), read in row blocks (no copy of A)."""
    A = A.reshape(len(A), -1)
    out = np.zeros(len(cols))
    for start in range(0, len(A), 4096):
        np.maximum(out, np.abs(A[start:start + 4096, cols]).max(axis=0), out=out)
    return out


def _check_representable(x_mean, x_scale, y_mean, y_scale, maxabs, tiny, largest=None):
    """Raise when a column of X (or y) holds nonzero values whose statistics float64 cannot represent: below
    ``tiny`` (the square root of the smallest normal number) their squares underflow, the variance is lost
    and the column would be taken for a constant (a silent zero model, or a diagnostic on nonsense).
    ``largest(name, columns)``: the columns' largest |values| (dense data), which size the advised factor."""
    for name, mean, scale, top in (("X", x_mean, x_scale, maxabs), ("y", y_mean, y_scale, None)):
        # the size of the column's values: its largest |value| (CSR), else its mean and spread
        size = top if top is not None else np.maximum(np.abs(mean), scale)
        small = np.flatnonzero((size > 0) & (size < tiny))
        if not small.size:
            continue
        sizes = size[small] if top is not None or largest is None else largest(name, small)
        biggest = float(sizes.max())
        factor = 10.0 ** min(np.ceil(-np.log10(biggest)), 300.0)  # subnormal values: a factor that stays finite
        varying = np.count_nonzero(size > 0)
        which = (name if name == "y" or small.size == varying else
                 f"column{'s' if small.size > 1 else ''} {', '.join(map(str, small[:5]))}"
                 f"{' ...' if small.size > 5 else ''} of X")
        raise ValueError(
            f"{which} {'has' if which in ('X', 'y') else 'holds'} values too small for float64 arithmetic "
            f"(their squares underflow, so their spread is lost; largest |value| {biggest:.3g}); multiply "
            f"{which if which in ('X', 'y') else 'those columns'} by a constant first (such as {factor:.0e})")
