"""Training where the data lives: ``LinearRegressor.fit`` on dask arrays and DataFrames (dask.distributed).

Soft dependency (``pip install "fastgd[dask]"``): nothing here imports dask until a dask collection is seen.
X is never gathered to the client: it is rechunked (if needed) so that every block of rows holds whole
batches, the blocks are computed and kept on the workers (``client.persist``: a no-op for a collection that is
already persisted, so nothing is stored twice), and everything that reads them
runs there as tasks that take the block's future, each on the worker that holds the block's X when the fit
starts (``Blocks.owner``: a preference, so the fit goes on if that worker is lost). What
travels is the model state: the coefficients, the optimizer state, its scalars and the running average,
O(k·(d + 1)) floats.

* ``distributed="exact"``: one epoch is a chain of tasks, one per run of consecutive batches of one block in
  the order of ``fastgd._training.block_shuffled_order`` (blocks = the dask chunks along rows); each task runs the
  compiled epoch (the kernels' ``epoch``) on its block with the worker's threads (``_n_threads``) and hands the
  state on. The updates are exactly those of an in-memory fit whose blocks are the same (same data, seed,
  batch size and ``_training.block_batches``). The column statistics are the blocks' ``column_stats`` merged
  in block order (``Scaling.merged``) and the evaluation set's sums are added in the kernels' order, so the
  model equals the in-memory one to rounding (1e-16 relative in the statistics).
* ``distributed="parallel"``: in every epoch each worker runs the same batch order restricted to the blocks
  it holds (``Blocks.owner``, fixed for the fit), all workers at the same time from the same state; then
  the parameters, the optimizer state and the step count are averaged (weighted by each worker's number of
  updates: local SGD / Vowpal Wabbit's allreduce) and the running averages of the iterates are pooled
  exactly. The rest of the loop (evaluation, stopping rules, the model kept) is the in-memory one.

In both modes the exact finish of larger dense data follows as in memory (``LinearRegressor._finish_dask``):
full-batch conjugate gradient whose passes are ``_DaskKernels.batches_stats`` calls with a ``Targets`` marker
(y scaled per output, or zeros) that each block applies to its own y; the finish's decision reads 4·(d + 1)
rows gathered from the blocks (``DaskFitData.sample_rows``). Another smooth loss gets the L-BFGS finish, its unit
(the constant mean's loss) summed on the workers (``DaskFitData.targets_loss``).
"""

import sys
import warnings
from dataclasses import dataclass

import numpy as np

from . import _engine, _planning, _scaling, _training

MODES = ("exact", "parallel")


def is_dask(obj):
    """Whether ``obj`` is a dask collection (without importing dask when it was never imported)."""
    if obj is None or "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(obj)


def _is_frame(obj):
    """A dask DataFrame or Series (dask.dataframe, which imports pandas, is not imported for arrays)."""
    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(obj, (dd.DataFrame, dd.Series))


def _client():
    try:
        from distributed import default_client
    except ImportError as exc:
        raise ImportError('fit on a dask collection needs dask.distributed: pip install "fastgd[dask]"') from exc
    try:
        return default_client()
    except ValueError:
        raise ValueError("fit on a dask collection trains on the dask.distributed cluster that holds it, and no "
                         "Client is running: start one first (from distributed import Client; client = Client() "
                         "or Client(LocalCluster(...))), or pass NumPy arrays / np.load(..., mmap_mode='r') to "
                         "train in this process") from None


# ----------------------------------------------------------------------------------------------------------
# collections -> blocks on the workers


def _as_dask_array(name, obj, rows_like=None):
    """A dask array from a dask array, DataFrame or Series, or (y, sample_weight only) an in-memory array."""
    import dask.array as da

    if _is_frame(obj):
        # optimized first: dask-expr may fuse the partitions of a column selection when it computes the
        # lengths, which then no longer match the unoptimized collection's ("2 != 3")
        return (obj.optimize() if hasattr(obj, "optimize") else obj).to_dask_array(lengths=True)
    if isinstance(obj, da.Array):
        return obj
    if is_dask(obj):
        raise TypeError(f"{name} is a {type(obj).__name__}; fastgd takes dask arrays and dask DataFrames/Series")
    if rows_like is None:
        raise TypeError(f"{name} must be a dask array or DataFrame here, got {type(obj).__name__}")
    arr = np.asarray(obj)
    return da.from_array(arr, chunks=(rows_like.chunks[0],) + tuple((s,) for s in arr.shape[1:]))


def _block_rows(chunks, batch_size):
    """Rows per block: the chunks' rows when every chunk but the last holds the same whole number of batches
    (no data moves), else the median chunk rounded to whole batches (the collection is rechunked)."""
    sizes = np.asarray(chunks, dtype=np.int64)
    c = int(sizes[0])
    if c % batch_size == 0 and np.all(sizes[:-1] == c) and sizes[-1] <= c:
        return c, False
    c = max(batch_size, int(round(float(np.median(sizes)) / batch_size)) * batch_size)
    return c, True


def _view(x, y, w):
    """On a worker: a block as the kernels take it (views of the stored chunks: nothing is copied when the
    chunks are C-contiguous, as dask makes them; dtypes were converted in the graph)."""
    return np.ascontiguousarray(x), _engine.targets_2d(y), None if w is None else np.ascontiguousarray(w)


def _check(x, y, w, batch_size):
    """On a worker: refuse non-finite values; the block's rows and per-batch weights."""
    x, Y, sw = _view(x, y, w)
    for name, a in (("X", x), ("y", Y), ("sample_weight", sw)):
        if a is not None and not np.isfinite(a.sum(dtype=np.float64)) and not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinity (in the block of {a.shape[0]} rows); remove or "
                             f"impute those rows first")
    if sw is not None and np.any(sw < 0):
        raise ValueError("sample_weight has negative values; weights must be >= 0")
    n = x.shape[0]
    starts = np.arange(0, n, batch_size)
    bw = (np.minimum(batch_size, n - starts).astype(np.float64) if sw is None else
          np.add.reduceat(sw, starts) if n else np.zeros(0))
    return n, bw


def _stats(x, y, w, backend, center):
    x, Y, sw = _view(x, y, w)
    return _scaling.Scaling.from_data(_engine.kernels(backend), x, Y, sw, center)


def _n_threads(n_jobs):
    """Threads of the compiled epoch on a worker: n_jobs=None uses the threads dask gives the worker
    (``nthreads``: measured on the loaded 2-core machine, 12,000,000 x 50 in exact mode, 1.6 s per epoch with
    the worker's 1 thread against 13 s with both cores, whose per-batch barriers stall when another process
    takes a core); an explicit n_jobs counts the worker machine's cores as in memory (-1: all)."""
    if n_jobs is not None:
        return _engine.resolve_n_threads(n_jobs)
    try:
        from distributed import get_worker

        return max(1, min(_engine.resolve_n_threads(None), get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def _block_epoch(x, y, w, carry, local_order, cfg):
    """On the worker holding the block: the compiled epoch over the listed batches, continuing ``carry``."""
    x, Y, sw = _view(x, y, w)
    theta, state, scalars, avg, loss_sum, weight_sum, finite, updates = carry
    theta, state, scalars, avg = theta.copy(), state.copy(), scalars.copy(), avg.copy()
    n_threads = _n_threads(cfg["n_jobs"])
    with _engine.numba_threads(n_threads):
        ls, ws, ok = _engine.kernels(cfg["backend"]).epoch(
            x, Y, _engine.EMPTY if sw is None else sw, theta, state, scalars, cfg["code"], cfg["hp"],
            cfg["sched"], cfg["pen"], cfg["fit_intercept"], cfg["batch_size"], local_order, n_threads,
            _engine.K.PATH_AUTO, cfg["stdz"], avg, _engine.EMPTY)  # no workspace: a lazy epoch makes its own
    return theta, state, scalars, avg, loss_sum + ls, weight_sum + ws, finite and ok, updates + len(local_order)


@dataclass(frozen=True)
class Targets:
    """``DaskFitData.targets``: the targets a full-batch solver asks for, which each block makes from its own y
    (Y / ``scale``, per output, as ``FitData.targets`` does in memory: the same numbers), or zeros (``scale``
    None). Only this marker travels, not y."""

    scale: np.ndarray = None
    outputs: slice = None  # a slice of the outputs (``scale`` is then the whole (k,) vector)

    def of(self, Y):
        outputs = slice(None) if self.outputs is None else self.outputs
        Y = Y[:, outputs]
        return np.zeros_like(Y) if self.scale is None else np.ascontiguousarray(Y / self.scale[outputs])


def _block_target_sums(x, y, w, targets):
    """On a worker: (Σ s·t per output, Σ s) of the block's targets ``targets.of(y)`` (s: the sample weights)."""
    _, Y, sw = _view(x, y, w)
    T = targets.of(Y)
    return (T.sum(axis=0), float(T.shape[0])) if sw is None else (sw @ T, float(sw.sum()))


def _block_constant_loss(x, y, w, targets, mean, loss):
    """On a worker: Σ s·loss(mean − t) per output over the block's targets t = ``targets.of(y)``."""
    _, Y, sw = _view(x, y, w)
    v = _training.constant_deviations(targets.of(Y), mean, loss)
    return v.sum(axis=0) if sw is None else sw @ v


def _block_batch_stats(x, y, w, raw, batch_size, local_ids, backend, loss=None, targets=None):
    """On a worker: (len(ids), m + 2) rows [G, sse, W] of the listed batches, one batch at a time (``targets``:
    a ``Targets`` applied to the block's y; None: y itself)."""
    x, Y, sw = _view(x, y, w)
    if targets is not None:
        Y = targets.of(Y)
    kern = _engine.kernels(backend)
    out = np.empty((len(local_ids), raw.size + 2))
    one = np.empty(1, dtype=np.int64)
    for i, b in enumerate(local_ids):
        one[0] = b
        G, sse, W = kern.batches_stats(x, Y, _engine.EMPTY if sw is None else sw, raw, batch_size, one, loss=loss)
        out[i, :-2], out[i, -2], out[i, -1] = G, sse, W
    return out


def _block_rows_of(x, y, w, local_ids, batch_size):
    x, Y, sw = _view(x, y, w)
    rows = np.concatenate([np.arange(b * batch_size, min((b + 1) * batch_size, x.shape[0])) for b in local_ids])
    return Y[rows], (None if sw is None else sw[rows])


def _block_take(x, y, w, local_rows):
    """On a worker: the listed rows of the block's X as float64 and their sample weights (or None)."""
    x, _, sw = _view(x, y, w)
    return np.asarray(x[local_rows], dtype=np.float64), None if sw is None else sw[local_rows]


def _predict_block(x, theta, backend, single):
    x = np.asarray(x)
    x = np.ascontiguousarray(x if x.dtype in (np.float32, np.float64) else x.astype(np.float64))
    out = _engine.kernels(backend).predict(x, theta)
    return out[:, 0] if single else out


class Blocks:
    """The training data as the futures of its blocks on the workers (``block_rows`` rows each, the last
    one possibly shorter; X, y and sample_weight per block): never gathered to the client."""

    def __init__(self, client, X, Y, sw, batch_size):
        from dask.core import flatten
        from distributed import futures_of

        self.client = client
        self.batch_size = batch_size
        self.n, self.d = int(X.shape[0]), int(X.shape[1])
        self.k = 1 if Y.ndim == 1 else int(Y.shape[1])
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        self.block_rows, rechunk = _block_rows(X.chunks[0], batch_size)
        if rechunk or len(X.chunks[1]) > 1:
            X = X.rechunk({0: self.block_rows, 1: -1})
        Y = Y.astype(np.float64).rechunk({0: X.chunks[0]} if Y.ndim == 1 else {0: X.chunks[0], 1: -1})
        sw = None if sw is None else sw.astype(np.float64).rechunk({0: X.chunks[0]})
        # kept on the workers (a no-op for chunks already persisted: no second copy, and dask's memory
        # accounting sees each chunk once); every task below takes a block's futures
        arrays = client.persist([X, Y] + ([] if sw is None else [sw]))
        self.weight_shift, self.weight_top = 0, 1.0  # the weights were divided by 2**weight_shift; the largest
        if sw is not None:  # normalized as in memory (largest weight in [1, 2)): no sum of weights overflows
            top = float(arrays[2].max().compute())
            shift = int(np.frexp(top)[1]) - 1 if np.isfinite(top) and top > 0 else 0
            if shift:
                arrays[2] = client.persist(arrays[2] * np.ldexp(1.0, -shift))
            self.weight_shift = shift
            self.weight_top = float(np.ldexp(top, -shift)) if np.isfinite(top) and top > 0 else 1.0

        def ordered(arr):
            by_key = {f.key: f for f in futures_of(arr)}
            return [by_key[k] for k in flatten(arr.__dask_keys__())]

        cols = [ordered(a) for a in arrays] + ([] if sw is not None else [[None] * X.numblocks[0]])
        self.parts = list(zip(*cols))  # (X, y, sample_weight) futures of each block
        del arrays  # the futures in self.parts are the only references: release() frees the copies
        self.owner = self._owners()
        checks = self.submit_all(_check, batch_size)
        try:
            meta = client.gather(checks)
        except BaseException:  # bad values: free the persisted copies and the checks' results now (the
            for f in checks:  # traceback would keep them on the workers)
                f.release()
            self.release()
            raise
        finally:
            del checks
        self.rows = np.array([m[0] for m in meta], dtype=np.int64)
        self.batch_weights = np.concatenate([m[1] for m in meta]) if meta else np.zeros(0)
        self.block_batches = self.block_rows // batch_size
        self.total_weight = float(sum(float(m[1].sum()) for m in meta))
        if sw is not None and not self.total_weight > 0:
            self.release()
            raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")

    def block_of(self, ids):
        return np.asarray(ids, dtype=np.int64) // self.block_batches

    def runs(self, order):
        """Split ``order`` into runs of consecutive batches of one block: (block, local batch ids)."""
        order = np.asarray(order, dtype=np.int64)
        if len(order) == 0:
            return []
        blocks = self.block_of(order)
        cuts = np.flatnonzero(blocks[1:] != blocks[:-1]) + 1
        return [(int(blocks[s]), order[s:e] - blocks[s] * self.block_batches)
                for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(order)])]

    def _owners(self):
        """Block index -> the worker that runs every task on the block, fixed for the fit: the holder of its
        X (a block held by several workers, from an earlier computation: the one with the fewest blocks so
        far, ties by address). Tasks pinned there read X where it is, so no task copies X to another worker;
        that would change the holders, and with them "parallel" mode's grouping in the next fit."""
        from distributed import wait

        xs = [p[0] for p in self.parts]
        wait([f for p in self.parts for f in p if f is not None])  # persist is asynchronous: the holders
        who = self.client.who_has(xs)
        count, owner = {}, []
        for f in xs:
            holders = sorted(who.get(f.key) or ())
            w = min(holders, key=lambda h: count.get(h, 0)) if holders else None
            count[w] = count.get(w, 0) + 1
            owner.append(w)
        return owner

    def submit(self, fn, blk, *args):
        """``fn(x, y, w, *args)`` on block ``blk``, on its worker (``self.owner``; anywhere if it is gone)."""
        w = self.owner[blk]
        pin = {} if w is None else {"workers": [w], "allow_other_workers": True}
        return self.client.submit(fn, *self.parts[blk], *args, pure=False, **pin)

    def submit_all(self, fn, *args):
        """``submit(fn, blk, *args)`` for every block, in block order: the futures."""
        return [self.submit(fn, blk, *args) for blk in range(len(self.parts))]

    def release(self):
        for p in self.parts:
            for f in p:
                if f is not None:
                    f.release()
        self.parts = []


class _DaskKernels:
    """The part of a kernel module the loop calls through ``FitData.kern``: ``batches_stats`` on the blocks,
    added in the kernel's own order (groups of ``batches_per_group`` batches, the kernels' layout rule)
    so the sums are the same floating-point numbers as in memory."""

    def __init__(self, blocks, backend):
        self.blocks = blocks
        self.backend = backend

    def batches_stats(self, Xk, Y, sw, theta, batch_size, batch_ids, n_threads=None,  # threads: the workers'
                      loss=None, loss_only=False):
        """``Y``: the blocks' own y, or a ``Targets`` (``DaskFitData.targets``) that each block applies to it."""
        b = self.blocks
        targets = Y if isinstance(Y, Targets) else None
        ids = np.asarray(batch_ids, dtype=np.int64)
        raw = np.ascontiguousarray(theta)
        m = raw.size
        where = b.block_of(ids)
        rows = np.empty((len(ids), m + 2))
        jobs = []
        for blk in np.unique(where):
            pos = np.flatnonzero(where == blk)
            fut = b.submit(_block_batch_stats, blk, raw, batch_size, ids[pos] - blk * b.block_batches,
                           self.backend, loss, targets)
            jobs.append((pos, fut))
        for (pos, _), res in zip(jobs, b.client.gather([f for _, f in jobs])):
            rows[pos] = res
        nb = len(ids)
        per = _engine.K.batches_per_group(nb, m, loss_only)  # the kernels' groups
        total = np.zeros(m + 2)
        for g in range(0, nb, per):
            acc = np.zeros(m + 2)
            for r in rows[g:g + per]:
                acc += r
            total += acc
        return total[:m].copy(), total[m], total[m + 1]

    def batches_loss(self, Xk, Y, sw, theta, batch_size, batch_ids, n_threads=None, loss=None):
        """(loss, weight) of the kernels' loss-only entry point (its groups), here through the blocks' sums."""
        return self.batches_stats(Xk, Y, sw, theta, batch_size, batch_ids, n_threads, loss, loss_only=True)[1:]


@dataclass
class DaskFitData(_training.FitData):
    """A ``FitData`` whose data are blocks on a dask cluster: the loop in ``_training.train`` runs unchanged."""

    blocks: Blocks = None
    mode: str = "exact"
    n_jobs: object = None

    @property
    def n(self):
        return self.blocks.n

    def batch_weights(self):
        return self.blocks.batch_weights

    def target_variance(self, batch_ids):
        b = self.blocks
        ids = np.asarray(batch_ids, dtype=np.int64)
        futs = [b.submit(_block_rows_of, blk, local, b.batch_size) for blk, local in b.runs(ids)]
        parts = b.client.gather(futs)
        Yr = np.concatenate([p[0] for p in parts])
        w = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        if w is not None and not w.sum() > 0:
            return 0.0
        return _training.constant_loss(Yr, w, self.loss)

    def targets(self, scale, outputs=None):
        """``FitData.targets`` made on the workers, each block from its own y (a ``Targets`` marker)."""
        return Targets(None if scale is None else np.array(scale, dtype=np.float64), outputs)

    def targets_loss(self, targets, loss):
        """``FitData.targets_loss`` summed on the workers (the weighted mean of the targets, then the weighted
        mean loss of predicting it, summed over outputs: two passes over y, block by block, none over X)."""
        b = self.blocks
        sums = b.client.gather(b.submit_all(_block_target_sums, targets))
        weight = sum(s[1] for s in sums)
        if not weight > 0:
            return 0.0
        mean = sum(s[0] for s in sums) / weight
        parts = b.client.gather(b.submit_all(_block_constant_loss, targets, mean, loss))
        return float((sum(parts) / weight).sum())

    def sample_rows(self, rows):
        """``FitData.sample_rows`` gathered from the blocks that hold them (only those rows travel)."""
        b = self.blocks
        rows = np.asarray(rows, dtype=np.int64)
        where = rows // b.block_rows
        pos = [np.flatnonzero(where == blk) for blk in np.unique(where)]
        futs = [b.submit(_block_take, int(where[p[0]]), rows[p] - where[p[0]] * b.block_rows) for p in pos]
        parts = b.client.gather(futs)
        Z = np.empty((len(rows), b.d))
        w = None if parts[0][1] is None else np.empty(len(rows))
        for p, (z, ws) in zip(pos, parts):
            Z[p] = z
            if w is not None:
                w[p] = ws
        return Z, w

    def epoch_kernel(self, optimizer_code, hp, sched, stdz, avg, train_ids=None):
        return _DaskEpochs(self, optimizer_code, hp, sched, stdz, avg)


class _DaskEpochs:
    """``FitData.epoch_kernel`` on dask blocks: ``run(ts, order)`` runs the compiled epoch where the blocks
    live (a chain of tasks, or one chain per worker in "parallel" mode), the constant arguments packed once."""

    def __init__(self, problem, optimizer_code, hp, sched, stdz, avg):
        self.problem, self.hp, self.avg = problem, hp, avg
        self.cfg = dict(code=optimizer_code, sched=_engine.no_schedule() if sched is None else sched,
                        pen=_engine.pack_pen(problem.l1, problem.l2, problem.batch_weight, problem.loss),
                        fit_intercept=problem.fit_intercept, batch_size=problem.batch_size, n_jobs=problem.n_jobs,
                        parallel=problem.mode == "parallel", backend=problem.backend,
                        stdz=_engine.EMPTY if stdz is None else stdz)  # the path: each worker chooses its own

    def spare(self, shape, offset=0):
        """No workspace here (``_engine.Epochs.spare``): the epochs run on the workers."""
        return None

    def release(self):
        pass

    def run(self, ts, order):
        b, avg = self.problem.blocks, self.avg
        cfg = dict(self.cfg, hp=self.hp.copy())  # the rate of this epoch
        avg_in = np.zeros(0) if avg is None else avg.copy()
        carry0 = (ts.theta.copy(), ts.state.copy(), ts.scalars.copy(), avg_in, 0.0, 0.0, True, 0)
        runs = b.runs(order)
        if self.problem.mode == "exact" or len(runs) < 2:
            carry = carry0
            for blk, local in runs:  # a chain: each task waits for the state of the one before
                carry = b.submit(_block_epoch, blk, carry, local, cfg)
            results = [carry if isinstance(carry, tuple) else carry.result()]
        else:
            chains = {}
            for blk, local in runs:  # each worker: the epoch's order restricted to its blocks
                w = b.owner[blk]
                prev = chains.get(w, carry0)
                chains[w] = b.submit(_block_epoch, blk, prev, local, cfg)
            results = b.client.gather(list(chains.values()))
        theta, state, scalars, avg_out, loss_sum, weight_sum, finite = _combine(results, carry0)
        ts.theta[...], ts.state[...], ts.scalars[...] = theta, state, scalars
        if avg is not None:
            avg[...] = avg_out
        return (loss_sum / weight_sum if weight_sum > 0 else np.nan), finite


def _combine(results, carry0):
    """One worker's result as it is; several: parameters, optimizer state and scalars averaged with weights
    = their updates (local SGD), the running means of the iterates pooled exactly, losses summed."""
    if len(results) == 1:
        return results[0][:7]
    upd = np.array([r[7] for r in results], dtype=np.float64)
    wts = upd / upd.sum() if upd.sum() > 0 else np.full(len(results), 1.0 / len(results))
    theta = sum(w * r[0] for w, r in zip(wts, results))
    state = sum(w * r[1] for w, r in zip(wts, results))
    scalars = sum(w * r[2] for w, r in zip(wts, results))
    scalars[0] = np.round(scalars[0])  # the step count
    avg0 = carry0[3]
    if avg0.size:
        c0 = avg0[-1]
        total = c0 * avg0[:-1] + sum(r[3][-1] * r[3][:-1] - c0 * avg0[:-1] for r in results)
        count = c0 + sum(r[3][-1] - c0 for r in results)
        avg = np.empty_like(avg0)
        avg[:-1] = total / count if count > 0 else avg0[:-1]
        avg[-1] = count
    else:
        avg = avg0
    loss = sum(r[4] for r in results)
    weight = sum(r[5] for r in results)
    return theta, state, scalars, avg, loss, weight, all(r[6] for r in results)


# ----------------------------------------------------------------------------------------------------------
# the estimator's entry points


def fit_data(est, X, y, sample_weight=None, warm=None):
    """The data of ``LinearRegressor.fit`` on dask collections, checked and kept on the cluster: a
    ``DaskFitData`` (its statistics merged from the blocks when ``est.standardize``; call
    ``.blocks.release()`` when done), the feature names (or None) and y's number of dimensions. Reads only
    the estimator's parameters and fastgd._planning; ``warm``: the (n_features, n_outputs) a warm start needs.
    """
    client = _client()
    if not is_dask(X):
        raise TypeError(f"y or sample_weight is a dask collection but X is a {type(X).__name__}; pass X as a dask "
                        f"array or DataFrame too (or all of them in memory)")
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
    names = None
    if _is_frame(X) and hasattr(X, "columns"):
        cols = list(X.columns)
        names = np.asarray(cols, dtype=object) if all(isinstance(c, str) for c in cols) else None
    Xd = _as_dask_array("X", X)
    _check_dense_blocks(Xd, "a dask fit takes", "fit")
    if Xd.ndim == 2 and any(np.isnan(c) for c in Xd.chunks[0]):
        Xd = Xd.compute_chunk_sizes()  # rows per chunk, counted on the cluster
    if Xd.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {Xd.ndim} dimension(s)")
    Yd = _as_dask_array("y", y, Xd)
    swd = None if sample_weight is None else _as_dask_array("sample_weight", sample_weight, Xd)
    # rows per chunk counted on the cluster, for y and sample_weight as for X (a boolean-mask selection)
    Yd, swd = (a.compute_chunk_sizes() if a is not None and a.ndim and any(np.isnan(c) for c in a.chunks[0])
               else a for a in (Yd, swd))
    n, d = int(Xd.shape[0]), int(Xd.shape[1])
    if Yd.ndim not in (1, 2) or Yd.shape[0] != n or (swd is not None and (swd.ndim != 1 or swd.shape[0] != n)):
        raise ValueError(f"X has {n} rows; y must have shape (n,) or (n, k) and sample_weight (n,), got "
                         f"{Yd.shape} and {None if swd is None else swd.shape}")
    if n < 1 or d < 1:
        raise ValueError(f"X must have at least one row and one column, got shape ({n}, {d})")
    k = 1 if Yd.ndim == 1 else int(Yd.shape[1])
    if warm is not None and warm != (d, k):
        raise ValueError(f"X has {d} features and y {k} output(s) but the warm-started model has "
                         f"{warm[0]} and {warm[1]}; set warm_start=False to fit a new model")
    if est.early_stopping and swd is not None:
        raise NotImplementedError("early_stopping with sample_weight is not supported on dask collections yet; "
                                  "fit without one of them")
    bs = _planning.choose_batch_size(est, Xd, n, k)
    blocks = Blocks(client, Xd, Yd, swd, bs)
    try:
        scaling = None
        if est.standardize:
            parts = client.gather(blocks.submit_all(_stats, est.backend, est.fit_intercept))
            scaling = parts[0]
            for part in parts[1:]:
                scaling = scaling.merged(part)
            scaling._center = est.fit_intercept
        l1, l2 = _planning.penalty_parts(est)
        batch_weight = blocks.total_weight / _engine.n_batches(n, bs) if scaling is not None else 0.0
        problem = DaskFitData(blocks, None, None, bs, _DaskKernels(blocks, est.backend), est.backend,
                              _engine.resolve_n_threads(est.n_jobs), est.fit_intercept, l1, l2, scaling,
                              batch_weight, blocks.block_batches, blocks=blocks, mode=est.distributed,
                              n_jobs=est.n_jobs, loss=_planning.loss_code(est))
    except BaseException:
        blocks.release()
        raise
    return problem, names, Yd.ndim


def _check_dense_blocks(Xd, who, verb):
    """Refuse a dask array of SciPy sparse (or other non-NumPy) blocks, naming the fix: ``who`` takes dense NumPy
    blocks ("a dask fit takes"), else ``verb`` ("fit") a CSR matrix in memory."""
    if not isinstance(getattr(Xd, "_meta", None), np.ndarray):
        raise TypeError(f"X is a dask array of {type(Xd._meta).__name__} blocks; {who} dense NumPy blocks: densify "
                        f"them (X.map_blocks(lambda b: b.toarray())), or {verb} a SciPy CSR matrix in memory")


def _check_names(est, X):
    """A dask DataFrame's column names against the fit's ``feature_names_in_``, as scikit-learn checks a pandas
    frame's (whose check does not see a dask frame's names): reordered or renamed columns raise, names on one side
    only warn. A reordered frame was predicted silently with its columns in the wrong places (R² 0.437 for 1.0)."""
    cols = list(X.columns) if _is_frame(X) and hasattr(X, "columns") else None
    names = cols if cols is not None and all(isinstance(c, str) for c in cols) else None
    fitted = getattr(est, "feature_names_in_", None)
    kind = type(est).__name__
    if fitted is None:
        if names is not None:
            warnings.warn(f"X has feature names, but {kind} was fitted without feature names", UserWarning,
                          stacklevel=4)
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {kind} was fitted with feature names",
                      UserWarning, stacklevel=4)
        return
    if names != list(fitted):
        unseen = [c for c in names if c not in set(fitted)]
        missing = [c for c in fitted if c not in set(names)]
        what = (f"unseen at fit time: {unseen}; seen at fit time, yet now missing: {missing}" if unseen or missing
                else "the same names in another order")
        raise ValueError(f"X: The feature names should match those that were passed during fit ({what}). Select "
                         f"the fit's columns in its order: X[list(model.feature_names_in_)].")


def prediction_blocks(est, X):
    """X (a dask array or DataFrame) as the 2-D dask array ``predict`` maps over, checked against the
    estimator's ``n_features_in_`` and, for a DataFrame, its ``feature_names_in_`` as scikit-learn checks a
    pandas frame's (columns reordered or renamed: an error; names on one side only: a warning). A frame's
    partition lengths are counted, as ``fit`` counts them: predictions of unknown length could not be scored
    (``score``: "Cannot call len() on object with unknown chunk size")."""
    _check_names(est, X)
    Xd = _as_dask_array("X", X) if _is_frame(X) else X
    if not hasattr(Xd, "map_blocks") or Xd.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array or a dask DataFrame, got {type(X).__name__}")
    _check_dense_blocks(Xd, "predict takes", "predict")
    if Xd.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {Xd.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    return Xd


def predict(Xd, theta, backend, single):
    """Predictions for ``prediction_blocks``: a lazy dask array, one block of rows per block of X (``theta``:
    the (k, d + 1) parameters; ``single``: y was 1-D, one column dropped)."""
    k = theta.shape[0]
    if len(Xd.chunks[1]) > 1:
        Xd = Xd.rechunk({1: -1})
    if single:
        return Xd.map_blocks(_predict_block, theta, backend, True, drop_axis=1, dtype=np.float64)
    return Xd.map_blocks(_predict_block, theta, backend, False, chunks=(Xd.chunks[0], (k,)), dtype=np.float64)
