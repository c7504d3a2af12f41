"""What a loss costs: the Adam epoch with each loss divided by the squared error's epoch, per backend.

    python benchmarks/loss_cost.py [--n 200000] [--d 100] [--batches 256 4096] [--threads 2] [--rounds 15]
                                   [--cpu-time]

For each dtype (float64, float32), batch size and backend, every loss's epoch and the squared error's run in
interleaved rounds in this one process (every epoch once per round, on the same X, so a burst of load
elsewhere hits them alike); printed: the squared error's epoch (median, ms) and, per loss, the median over
rounds of epoch(loss) / epoch(squared error) of the same round (goal: at most 1.05). The parameters are
scikit-learn's defaults or usual values (huber and the insensitive losses' epsilon on unit-variance
residuals, quantile 0.7), so the residual is on either side of every kink in about as many rows.

``--cpu-time`` (with ``--threads 1``): time each epoch in this thread's CPU time instead of wall-clock time, so
the ratios hold on a host busy with other work (time spent descheduled is not counted; the arithmetic per row,
which is what a loss adds, is).

The epochs run on the same data with fresh optimizer state built once per (loss, batch): the arithmetic per
row does not depend on the iterate. Every state's coefficients start on a 64-byte boundary (``aligned``): the
row loop reads them with 64-byte loads, which cost more when they straddle two cache lines, so coefficients
placed at random (NumPy aligns to 16 bytes) make epochs of the same loss differ by a few percent from state to
state, noise in a ratio. Never a test: tests/test_benchmark_scripts.py runs it on a tiny n.
"""

import argparse
import statistics
import time

import numpy as np

from fastgd import _engine, reference
from fastgd import _kernels as K
from fastgd.optimizers import OPTIMIZERS

LOSSES = (("squared_error", 0.0), ("huber", 0.5), ("epsilon_insensitive", 0.1),
          ("squared_epsilon_insensitive", 0.1), ("quantile", 0.7))


def backends():
    return ["native", "numba"] if _engine.native_available() else ["numba"]


def aligned(a):
    """A copy of ``a`` starting on a 64-byte boundary."""
    buf = np.empty(a.size + 64 // a.itemsize, dtype=a.dtype)
    skip = (-buf.ctypes.data % 64) // a.itemsize
    out = buf[skip: skip + a.size].reshape(a.shape)
    out[...] = a
    return out


def epoch_fn(X, Y, loss, param, batch, threads, backend):
    """A callable running one Adam epoch of ``loss`` (batches in order) on its own training state."""
    opt = OPTIMIZERS["adam"](lr=1e-3)
    ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1])
    ts.theta = aligned(ts.theta)
    order = np.arange(_engine.n_batches(X.shape[0], batch), dtype=np.int64)
    code = None if loss == "squared_error" else (reference.LOSSES.index(loss), param)
    hp = opt.pack()
    return lambda: _engine.run_epoch(X, Y, ts, opt.code, hp, batch, order, n_threads=threads, path=K.PATH_AUTO,
                                     backend=backend, loss=code)


def measure(X, Y, batch, threads, rounds, clock=time.perf_counter):
    """{backend: {"squared_ms": median epoch, loss: median ratio to the squared error's epoch}}."""
    fns = {(be, loss): epoch_fn(X, Y, loss, param, batch, threads, be)
           for be in backends() for loss, param in LOSSES}
    for fn in fns.values():  # compile or load, touch every page
        fn()
    times = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = clock()
            fn()
            times[key].append(clock() - t0)
    out = {}
    for be in backends():
        sq = times[(be, "squared_error")]
        row = {"squared_ms": statistics.median(sq) * 1e3}
        for loss, _ in LOSSES[1:]:
            row[loss] = statistics.median(t / s for t, s in zip(times[(be, loss)], sq))
        out[be] = row
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--cpu-time", action="store_true", help="thread CPU time instead of wall-clock (one thread)")
    args = p.parse_args(argv)
    if args.cpu_time and args.threads != 1:
        p.error("--cpu-time counts this thread only: use it with --threads 1")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    rng = np.random.default_rng(0)
    X64 = rng.standard_normal((args.n, args.d))
    Y = (X64 @ rng.standard_normal(args.d) + rng.standard_normal(args.n)).reshape(-1, 1)
    names = [loss for loss, _ in LOSSES[1:]]
    print(f"loss cost: {args.n:,} x {args.d}, Adam, {args.threads} threads, {args.rounds} rounds, "
          f"{'thread CPU' if args.cpu_time else 'wall-clock'} time; "
          "epoch(loss) / epoch(squared_error), median of per-round ratios (goal <= 1.05)")
    print("| dtype | B | backend | squared_error ms | " + " | ".join(names) + " |")
    print("|---|---:|---|---:|" + "---:|" * len(names))
    res = []
    for dtype in (np.float64, np.float32):
        X = X64 if dtype is np.float64 else X64.astype(np.float32)
        for b in args.batches:
            for be, row in measure(X, Y, b, args.threads, args.rounds, clock).items():
                res.append({"dtype": np.dtype(dtype).name, "batch": b, "backend": be, **row})
                print(f"| {np.dtype(dtype).name} | {b} | {be} | {row['squared_ms']:.2f} | "
                      + " | ".join(f"{row[name]:.3f}" for name in names) + " |", flush=True)
    return res


if __name__ == "__main__":
    main()
