"""Oversubscription: two processes each fitting with n_jobs=2 at once on a 2-core machine.

Prints, for each backend, the median time of an epoch (``--kind dense``: Adam on dense X) or of a full-batch
gradient pass over sparse X (``--kind sparse``: the pass the default sparse fit's conjugate-gradient solves
make, over CSR rows of about 30 Zipf-distributed columns of 2^20, in one group of sums: the split pass) in:

* ``alone 1t``: one process, one thread (nothing else of ours running);
* ``alone 2t``: one process, two threads;
* ``2 procs x 1t``: two processes at once, one thread each (the fair share: each gets one core);
* ``2 procs x 2t``: two processes at once, two threads each (4 threads on 2 cores: oversubscribed);
* ``busy x 2t``: one process with two threads while another process keeps one core busy (a busy host);

and the ratios ``2 procs x 2t / alone 1t`` and ``busy x 2t / alone 1t`` (goal <= 2.4: an oversubscribed
epoch may take no more than its fair share, with some slack; a spinning wait for a descheduled thread made
it 2.5-60x) and ``2 procs x 2t / 2 procs x 1t``. All figures come from the same run; the machine is shared
(the load average before the run is printed: other tenants' load changes every figure), so compare
ratios, not absolute times.

Usage: ``python benchmarks/oversubscription.py [--kind dense] [--rows 200000] [--features 100] [--batch 256]
[--epochs 8]`` (``--rows 2000 --epochs 2`` is a smoke run; ``--kind sparse`` takes ``--features`` as the number
of columns, by default 2^20, and ``--batch`` as the rows per batch of the pass, by default all of them).
"""

import argparse
import multiprocessing as mp
import os
import queue as queue_module
import tempfile
import statistics
import time


def _worker(backend, n_threads, rows, features, batch, epochs, barrier, queue):
    import numpy as np

    from fastgd import _engine
    from fastgd.optimizers import OPTIMIZERS

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, features))
    y = X @ rng.standard_normal(features) + 0.1 * rng.standard_normal(rows)
    Y = _engine.targets_2d(y)
    opt = OPTIMIZERS["adam"](lr=1e-3)
    hp = opt.pack()
    ts = _engine.TrainingState.fresh(opt, 1, features)
    order = _engine.batch_order(rows, batch, True, rng)
    _engine.run_epoch(X[: 4 * batch], Y[: 4 * batch], ts, opt.code, hp, batch, order[order < 4][:4],
                      n_threads=n_threads, backend=backend)  # compile / warm up outside the timing
    barrier.wait()  # the processes of a scenario start their epochs together
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        _engine.run_epoch(X, Y, ts, opt.code, hp, batch, order, n_threads=n_threads, backend=backend)
        times.append(time.perf_counter() - t)
    queue.put(statistics.median(times))


def _sparse_worker(backend, n_threads, rows, features, batch, epochs, barrier, queue):
    import numpy as np

    from fastgd import _engine

    rng = np.random.default_rng(0)
    per_row = 30
    cols = (rng.pareto(1.0, (rows, per_row)) * features / 50).astype(np.int64) % features  # Zipf-like popularity
    X = (np.ones(rows * per_row), np.sort(cols, axis=1).ravel().astype(np.int32),
         np.arange(0, rows * per_row + 1, per_row, dtype=np.int32), features)
    Y = rng.standard_normal((rows, 1))
    theta = 0.01 * rng.standard_normal((1, features + 1))
    kern = _engine.kernels(backend)
    ids = np.arange(_engine.n_batches(rows, batch), dtype=np.int64)
    kern.batches_stats(X, Y, _engine.EMPTY, theta, batch, ids[:1], n_threads)  # compile / warm up
    barrier.wait()
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        kern.batches_stats(X, Y, _engine.EMPTY, theta, batch, ids, n_threads)
        times.append(time.perf_counter() - t)
    queue.put(statistics.median(times))


def _context():
    """Fresh processes that share nothing with this one (a forkserver that has only imported fastgd, so its
    children may run parallel code; see fastgd._config on fork), started faster than with "spawn"."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "fastgd._engine", "fastgd._kernels", "fastgd.optimizers"])
    return ctx


def _busy(stop):
    while not stop.is_set():
        sum(range(10_000))


def scenario(backend, n_procs, n_threads, args, busy=0):
    """Median per-epoch time of each of ``n_procs`` processes running at once (their mean), while ``busy``
    other processes keep a core busy each."""
    ctx = _context()
    barrier = ctx.Barrier(n_procs)
    queue = ctx.Queue()
    stop = ctx.Event()
    hogs = [ctx.Process(target=_busy, args=(stop,)) for _ in range(busy)]
    target = _sparse_worker if getattr(args, "kind", "dense") == "sparse" else _worker  # (scaling.py: dense)
    procs = [ctx.Process(target=target, args=(backend, n_threads, args.rows, args.features, args.batch,
                                              args.epochs, barrier, queue)) for _ in range(n_procs)]
    here = os.getcwd()
    os.chdir(tempfile.gettempdir())  # the forkserver starts with "python -c", which puts the working directory
    try:  # first on sys.path: from a checkout's root its children would import the unbuilt source tree
        for p in hogs + procs:
            p.start()
    finally:
        os.chdir(here)
    results, deadline = [], time.monotonic() + args.timeout
    try:
        while len(results) < len(procs):
            try:
                results.append(queue.get(timeout=1.0))
            except queue_module.Empty:  # a process that died leaves the others waiting at the barrier: stop
                failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if failed or time.monotonic() > deadline:
                    raise RuntimeError(f"a benchmark process failed or timed out ({backend}, exit codes "
                                       f"{[p.exitcode for p in procs]})") from None
    finally:
        stop.set()
        if len(results) < len(procs):  # failed: end the processes still waiting
            for p in procs:
                p.terminate()
    for p in procs + hogs:
        p.join(timeout=args.timeout)
        if p.exitcode != 0:
            raise RuntimeError(f"a benchmark process failed ({backend}, exit code {p.exitcode})")
    return statistics.mean(results)


def run(args):
    from fastgd import _engine

    backends = [b for b in args.backends if b != "native" or _engine.native_available()]
    what = ("Adam, median of {e} epochs; milliseconds per epoch" if args.kind == "dense" else
            "CSR, 30 values per row, full-batch gradient passes (batches_stats), median of {e}; milliseconds per pass")
    print(f"# {args.rows} x {args.features} float64, batch {args.batch}, {what.format(e=args.epochs)}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    nan = float("nan")
    for backend in backends:
        alone1 = scenario(backend, 1, 1, args)
        alone2 = scenario(backend, 1, 2, args) if not args.quick else nan
        two1 = scenario(backend, 2, 1, args) if not args.quick else nan
        two2 = scenario(backend, 2, 2, args)
        busy2 = scenario(backend, 1, 2, args, busy=1) if not args.quick else nan
        rows.append((backend, alone1, alone2, two1, two2, busy2, two2 / alone1, busy2 / alone1))
        print(f"{backend:7s} alone 1t {alone1 * 1e3:.4g}  alone 2t {alone2 * 1e3:.4g}  2 procs x 1t {two1 * 1e3:.4g}  "
              f"2 procs x 2t {two2 * 1e3:.4g}  busy x 2t {busy2 * 1e3:.4g}  |  2x2t / alone 1t = {two2 / alone1:.2f} "
              f"(goal <= 2.4)  2x2t / 2x1t = {two2 / two1:.2f}  busy x 2t / alone 1t = {busy2 / alone1:.2f}",
              flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=["dense", "sparse"], default="dense")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--features", type=int, default=None, help="columns (default 100; sparse: 2^20)")
    p.add_argument("--batch", type=int, default=None, help="rows per batch (default 256; sparse: all rows)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--backends", nargs="+", default=["native", "numba"])
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--quick", action="store_true", help="only 'alone 1t' and '2 procs x 2t' (smoke runs)")
    args = p.parse_args(argv)
    sparse = args.kind == "sparse"
    args.features = args.features or (1 << 20 if sparse else 100)
    args.batch = args.batch or (args.rows if sparse else 256)
    return run(args)


if __name__ == "__main__":
    main()
