"""The door to the compiled kernels: the backend lookup, one fit's packed epoch (``Epochs``), threads, state.

It takes already-validated inputs (the estimator validates) and never copies X.
"""

import contextlib
from dataclasses import dataclass

import numba
import numpy as np

from . import _config
from . import _kernels as K
from . import _rules


def line_aligned_zeros(shape):
    """float64 zeros whose data starts on a 64-byte boundary (a cache line; NumPy aligns to 16 bytes): the row
    loop's vector loads of the parameters then never straddle two lines (a straddling theta cost 4-6 % of a
    dense epoch's time, see docs/design.md)."""
    size = int(np.prod(shape))
    buf = np.zeros(size + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + size].reshape(shape)


@dataclass
class TrainingState:
    """Everything that evolves during training, as the kernels take it (so a fit can be resumed)."""

    theta: np.ndarray  # (k, d + 1) float64, intercept last
    state: np.ndarray  # (n_slots, k * (d + 1)) float64
    scalars: np.ndarray  # (N_SCALARS,) float64: step count, NAdam's momentum product

    @classmethod
    def fresh(cls, optimizer, n_outputs, n_features, theta=None):
        lined = line_aligned_zeros((n_outputs, n_features + 1))
        if theta is not None:
            lined[...] = theta
        state, scalars = optimizer.init_state(n_outputs * (n_features + 1))
        return cls(lined, state, scalars, optimizer.code)

    code: int = -1  # the optimizer code the state belongs to

    @property
    def step(self):
        return int(self.scalars[0])

    def fits(self, optimizer, n_outputs, n_features):
        """Whether this state can continue with ``optimizer`` on data of this shape (else start afresh)."""
        return (self.code == optimizer.code and self.theta.shape == (n_outputs, n_features + 1)
                and self.state.shape == (len(optimizer.slots), n_outputs * (n_features + 1)))

    def snapshot(self):
        return self.theta.copy(), self.state.copy(), self.scalars.copy()

    def restore(self, snap):
        """Back to ``snap``: ``snapshot()``'s, or one whose state is a list of slots (arrays or single values)."""
        theta, state, scalars = snap
        self.theta[...] = theta
        if isinstance(state, list):
            for row, value in zip(self.state, state):
                row[...] = value
        else:
            self.state[...] = state
        self.scalars[...] = scalars


def targets_2d(y):
    """y of shape (n,) or (n, k) as a float64 (n, k) C-contiguous array (a view when y already is float64)."""
    y = np.asarray(y)
    Y = y[:, None] if y.ndim == 1 else y
    return np.ascontiguousarray(Y, dtype=np.float64)


def n_batches(n_samples, batch_size):
    return -(-n_samples // batch_size)


def batch_order(n_samples, batch_size, shuffle, rng):
    """Indices of the batches in the order an epoch visits them: shuffled batches, rows stay in place."""
    order = np.arange(n_batches(n_samples, batch_size), dtype=np.int64)
    if shuffle:
        rng.shuffle(order)
    return order


@contextlib.contextmanager
def numba_threads(n_threads):
    """Run the block with Numba's thread count (thread-local in Numba) set to ``n_threads``; restore it after.

    Does nothing in a child forked after threads had run (:func:`fastgd._config.sequential_only`): there every
    kernel runs on the calling thread and Numba's thread layer must not be touched.
    """
    if _config.sequential_only():
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))  # native may run more
    try:
        yield
    finally:
        numba.set_num_threads(before)


def resolve_n_threads(n_jobs):
    """scikit-learn's n_jobs convention as a thread count: None respects OMP_NUM_THREADS, threadpoolctl (and so
    joblib) limits and the cgroup CPU quota, -1 is all of that, -2 all but one; see
    :func:`fastgd._config.effective_n_threads`. Always 1 in a child forked after threads had run."""
    return _config.effective_n_threads(n_jobs)


BACKENDS = ("auto", "numba", "native")


def native_available():
    try:
        from . import _native  # noqa: F401
    except ImportError:
        return False
    return True


def is_interrupt(exc):
    """Ctrl-C, also when it reached Python inside a compiled call (Numba then raises a SystemError whose
    context, or its context's, is the KeyboardInterrupt)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class _Interruptible:
    """A kernel module whose calls turn Numba's "returned a result with an exception set" SystemError (a
    Ctrl-C that reached Python during a compiled call) back into the KeyboardInterrupt it is."""

    def __init__(self, module):
        self._module = module
        self.__name__ = module.__name__

    def __getattr__(self, name):
        fn = getattr(self._module, name)
        if not callable(fn):
            return fn

        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except SystemError as exc:
                if is_interrupt(exc):
                    raise KeyboardInterrupt from None
                raise
        call.__name__ = name
        return call


def kernels(backend="numba"):
    """The kernel module of a backend: ``fastgd._kernels`` (Numba) or ``fastgd._native`` (Cython).

    Both expose ``epoch``, ``predict`` and ``batches_stats`` with the same arguments. "auto" picks the native
    kernels when they are built: measured on the 2-core dev machine (2 threads, Adam, native / Numba epoch
    time), dense 1e6 x 100: B=1 0.73, B=32 0.93, B=256 0.98; 2e6 x 10: B=1 0.54, B=32 0.86, B=256 1.04;
    2e5 x 1000: B=256 0.82; CSR 2e5 x 1000 at 1 %: B=256 0.71. It is never slower beyond noise and needs no
    JIT compilation (Numba's first fit in a process without a cache takes ~13 s). On the 2-core AMD EPYC (Zen
    5), one thread, once Numba's loops stopped counting references (docs/design.md): dense 1e6 x 100 B=256
    1.01, B=2048 1.01, B=4096 0.96; the lazy CSR epoch (d = 2^14 and 2^20, B = 1 to 256) 0.54-0.70.
    """
    if backend == "numba":
        from . import _kernels

        return _Interruptible(_kernels)
    if backend == "auto":
        return kernels("native" if native_available() else "numba")
    if backend == "native":
        return _native_module()
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def check_backend(backend):
    """Raise the error ``kernels(backend)`` would (a native backend that was not built), naming the fix."""
    if backend == "native":
        _native_module()


def _native_module():
    try:
        from . import _native
    except ImportError as exc:
        raise ImportError(
            "backend='native' needs the compiled extension fastgd._native, built by 'pip install .' with a "
            "C compiler (Cython comes from the build requirements); reinstall fastgd from source, or use "
            "backend='numba'") from exc
    return _native


def no_schedule():
    return np.zeros(K.SCHED_LEN)


EMPTY = np.empty(0)


def all_finite(a):
    """Whether every element of ``a`` is finite: a finite sum says so in one pass without temporaries (a NaN or
    an infinity makes it non-finite); only an overflowing sum needs the element-wise test."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is the case the second test is for
        total = a.sum()
    return bool(np.isfinite(total) or np.all(np.isfinite(a)))


def pack_pen(l1, l2, batch_weight, loss=None, touch_l2=False, l2_factors=None):
    """The kernels' ``pen`` array: [l1, l2, batch_weight, loss code, loss parameter, touch_l2, then with
    ``l2_factors`` (d values) those factors], its tail left off where it holds the defaults (``loss`` None: the
    squared error; ``touch_l2``, ``l2_factors``: see ``Epochs``)."""
    touch_l2 = touch_l2 or l2_factors is not None
    tail = [] if loss is None and not touch_l2 else list(K.SQUARED if loss is None else loss)
    head = np.array([l1, l2, batch_weight, *tail, *([1.0] if touch_l2 else [])], dtype=np.float64)
    return head if l2_factors is None else np.concatenate([head, np.asarray(l2_factors, dtype=np.float64)])


def l2_touch_factors(kern, Xk, batch_size, batch_ids, batch_weights=None):
    """The factors f_j = nb / nb_j of the frequency-weighted lazy l2 penalty (see "lazy updates" in
    fastgd._rules) for epochs over the listed batches of the CSR tuple ``Xk``: nb the batches with positive
    weight (``batch_weights``: every batch's; None: all positive), nb_j those of them that store column j
    (``kern.batch_column_counts``: O(nnz + d), X not copied); 0 where no batch stores the column. A stream's
    (partial_fit's) are ``expected_touch_factors``."""
    ids = np.asarray(batch_ids, dtype=np.int64)
    if batch_weights is not None:
        ids = ids[np.asarray(batch_weights)[ids] > 0]
    f = kern.batch_column_counts(Xk, int(batch_size), np.ascontiguousarray(ids))
    np.divide(float(len(ids)), f, out=f, where=f > 0)  # in place: nb_j -> nb / nb_j, 0 stays 0
    return f


def expected_touch_factors(scaling, batch_size):
    """The frequency-weighted l2 penalty's factors in expectation over a stream (partial_fit): 1 / p_j, p_j the
    chance that a batch of ``batch_size`` rows stores column j, 1 - (1 - share_j)^batch_size with share_j the
    weight of the rows seen so far that store it (the running statistics of ``scaling``); 0 for a column none
    stored."""
    stored = scaling.x_sparse[2]
    out = np.zeros(len(stored))
    seen = np.flatnonzero(stored > 0)  # the logarithms only where a row stored the column (d = 2^20: 4 -> 1 ms)
    share = np.clip(stored[seen].astype(np.float64) / float(scaling.weight), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        p = -np.expm1(batch_size * np.log1p(-share))  # share 1: log1p(-1) = -inf, p = 1
    out[seen] = np.divide(1.0, p, out=np.zeros_like(p), where=p > 0)
    return out


class Epochs:
    """One fit's compiled epoch, made once per fit: the backend's ``epoch`` function, the arguments that stay
    the same from epoch to epoch packed once, and the size of Numba's thread team. ``run(ts, order)`` is one
    epoch over the batches in ``order``.

    ``hp`` and ``avg`` are read where they are (the loop changes the rate in ``hp[0]`` and resets ``avg`` in
    place); ``stdz``: the packed standardization (``Scaling.pack``) or None; ``avg``: an array of k·(d+1) + 1
    zeros that receives the running mean of the parameters over the epoch's updates, or None.
    ``batch_weight`` > 0: divide every batch's gradient sums by this weight instead of the batch's own (see
    the kernels). ``loss``: ``(code, param)`` of a loss of fastgd._rules.LOSSES (None: the squared error).
    ``touch_l2``: a lazy Adam-family epoch may apply the l2 penalty only where a batch touches (see
    fastgd._rules.lazy_kind): LazyAdam's own penalty, or with ``l2_factors`` (d values, ``l2_touch_factors``)
    the frequency-weighted one, column j's gradient l2·f_j·w_j where a batch touches it.
    """

    def __init__(self, kern, X, Y, optimizer_code, hp, batch_size, *, sw=None, sched=None, l1=0.0, l2=0.0,
                 fit_intercept=True, n_threads=1, path=K.PATH_AUTO, stdz=None, avg=None, batch_weight=0.0,
                 loss=None, touch_l2=False, l2_factors=None):
        pen = pack_pen(l1, l2, batch_weight, loss, touch_l2, l2_factors)
        if _config.sequential_only():  # forked child: no parallel region may open (see fastgd._config)
            n_threads, path = 1, K.PATH_SEQUENTIAL
        # Numba's team no larger than the epoch's workers (a thread without a task would only wait in the region)
        self.team = max(1, K.epoch_threads(batch_size, K.shape(X)[1], Y.shape[1], n_threads, path))
        # the compiled function itself: ``run`` turns a Ctrl-C that Numba reports as SystemError back into one
        module = kern._module if isinstance(kern, _Interruptible) else kern
        self._epoch = module.epoch
        self._work_len = module.lazy_work_len
        self._work = None  # the lazy CSR epoch's workspace (``workspace``), made at the first epoch
        self._data = (X, Y, EMPTY if sw is None else sw)
        self._rule = (optimizer_code, hp, no_schedule() if sched is None else sched, pen, fit_intercept, batch_size)
        self._threads = (n_threads, path, EMPTY if stdz is None else stdz, EMPTY if avg is None else avg)

    def set_avg(self, avg):
        """Later epochs accumulate the running mean into ``avg`` (same size as the one given at construction;
        the loop hands the previous one over as the best model instead of copying it)."""
        self._threads = self._threads[:3] + (avg,)

    def workspace(self, ts):
        """Where a lazy CSR epoch keeps its records (the kernels' ``work``, ``lazy_work_len`` values), made at
        the first epoch and kept for the later ones: made by each epoch, its pages were faulted in and zeroed
        again every epoch (d = 2^20, Adam, 32 MB: 4-35 ms of a 38 ms epoch, the more when the kernel had to
        compact memory for huge pages). Empty for dense X. Allocated, not written: a CSR epoch that is not lazy
        never touches its pages, which then take no memory."""
        if self._work is None:
            self._work = np.empty(self._work_size(ts)) if isinstance(self._data[0], tuple) else EMPTY
        return self._work

    def _work_size(self, ts):
        code, hp = self._rule[:2]
        return self._work_len(ts.theta.size, min(ts.state.shape[0], _rules.used_slots(code, hp)))

    def spare(self, shape, offset=0):
        """The workspace from ``offset`` as an array of ``shape`` (what the loop computes between epochs: the
        model in the data's units, the penalty's temporaries past it), or None where it has none or too
        little; the next epoch overwrites it."""
        size = int(np.prod(shape))
        if self._work is None or self._work.shape[0] < offset + size:
            return None
        return self._work[offset:offset + size].reshape(shape)

    def release(self):
        """Drop the workspace (after the last epoch); a later epoch would make a new one. Returns it (what
        ``adopt`` takes back: partial_fit holds it from call to call)."""
        work, self._work = self._work, None
        return work

    def adopt(self, work, ts):
        """Take ``work`` (a workspace ``release`` returned, or None) as this fit's where it is CSR's and large
        enough for ``ts``: partial_fit holds it from call to call (each call is one epoch, and a new 32 MB
        workspace per call, d = 2^20 with Adam, had its pages faulted in and zeroed each time: 2-27 ms of
        system time in a call's epoch of 10-35 ms)."""
        if (work is not None and self._work is None and isinstance(self._data[0], tuple)
                and work.shape[0] >= self._work_size(ts)):
            self._work = work

    def run(self, ts, order):
        """One epoch over the batches in ``order``. Updates ``ts`` in place; returns ``(mean_loss, finite)``."""
        X, Y, sw = self._data
        code, hp, sched, pen, fit_intercept, batch_size = self._rule
        n_threads, path, stdz, avg = self._threads
        work = self.workspace(ts)
        try:
            with numba_threads(self.team):
                loss_sum, weight_sum, finite = self._epoch(
                    X, Y, sw, ts.theta, ts.state, ts.scalars, code, hp, sched, pen, fit_intercept, batch_size, order,
                    n_threads, path, stdz, avg, work)
        except SystemError as exc:
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise
        return (loss_sum / weight_sum if weight_sum > 0 else np.nan), finite


def run_epoch(X, Y, ts, optimizer_code, hp, batch_size, order, *, sw=None, sched=None, l1=0.0, l2=0.0,
              fit_intercept=True, n_threads=1, path=K.PATH_AUTO, backend="numba", stdz=None, avg=None,
              batch_weight=0.0, loss=None, touch_l2=False, l2_factors=None):
    """One epoch of the fused kernel (``Epochs`` made for one call: tests and benchmarks). Updates ``ts`` in
    place; returns ``(mean_loss, finite)``."""
    return Epochs(kernels(backend), X, Y, optimizer_code, hp, batch_size, sw=sw, sched=sched, l1=l1, l2=l2,
                  fit_intercept=fit_intercept, n_threads=n_threads, path=path, stdz=stdz, avg=avg,
                  batch_weight=batch_weight, loss=loss, touch_l2=touch_l2, l2_factors=l2_factors).run(ts, order)
