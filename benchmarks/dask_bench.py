"""Dask benchmark: fastgd's two distributed modes next to dask-ml and dask.array.linalg.lstsq.

One run, on a 2-worker ``distributed.LocalCluster`` (processes, 1 dask thread per worker; fastgd's exact mode
uses all the machine's cores inside the one task that runs at a time):

* 2,000,000 x 50 float32 (noise sigma 0.5), generated on the workers in chunks of fastgd's default block
  (so the exact mode's blocks are the in-memory fit's): client memory growth during each fit (RSS sampled
  every 10 ms), R² (computed on the cluster), fit time, and the time at which the model first reached the
  least-squares R² within 1e-4 (per-epoch models recorded by a callback, scored afterwards);
* the local fit on the same data (gathered to the client after the dask measurements and saved as a .npy,
  trained from the memmap: the same shuffled blocks), for the exact mode's equality (R² and coefficients)
  and its time;
* dask-ml ``LinearRegression(solver="newton" | "lbfgs" | "gradient_descent")`` when dask-ml is installed,
  and ``da.linalg.lstsq`` (with a column of ones; its R² is the least-squares optimum);
* a larger collection that does not fit into one worker's memory limit (``--big-rows``), both modes, the
  optimum from the normal equations (float64, on the cluster).

    python benchmarks/dask_bench.py                  # the full run (several minutes)
    python benchmarks/dask_bench.py --rows 200000 --big-rows 400000 --no-peers   # a quick look
"""

import argparse
import json
import shutil
import tempfile
import threading
import time
import warnings

import numpy as np


class PeakRSS:
    """Peak resident memory growth of this (client) process while the block runs, in MB."""

    def __enter__(self):
        import psutil

        self._p = psutil.Process()
        self.start = self.peak = self._p.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._p.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.growth_mb = (max(self.peak, self._p.memory_info().rss) - self.start) / 2**20


def make_data(n, d, chunk_rows, seed=0):
    import dask.array as da

    rs = da.random.RandomState(seed)
    w = np.random.default_rng(seed).normal(size=d)
    X = rs.standard_normal((n, d), chunks=(chunk_rows, d)).astype(np.float32)
    y = X.astype(np.float64) @ w + 0.5 * rs.standard_normal(n, chunks=chunk_rows) + 3.0
    return X, y


def r2_dask(pred, y):
    import dask

    ss_res, mean, ss_tot_raw, n = dask.compute(((y - pred) ** 2).sum(), y.mean(), (y ** 2).sum(), y.shape[0])
    ss_tot = ss_tot_raw - n * mean ** 2
    return float(1.0 - ss_res / ss_tot)


def fit_fastgd(X, y, mode, **params):
    import fastgd

    models = []
    est = fastgd.LinearRegressor(random_state=0, distributed=mode, callbacks=lambda i: models.append(
        (i.elapsed, i.coef[0].copy(), float(i.intercept[0]))), **params)
    with PeakRSS() as mem, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        est.fit(X, y)
        elapsed = time.perf_counter() - t
    return est, elapsed, mem.growth_mb, models, [str(w.message)[:120] for w in caught]


def time_to(models, X, y, target, tol=1e-4, t_offset=0.0):
    """Seconds (from the fit's start: t_offset + the callback's elapsed) to the first epoch whose model's R²
    is within tol of target; and that epoch."""
    for epoch, (elapsed, coef, b) in enumerate(models, 1):
        r2 = r2_dask(X.astype(np.float64) @ coef + b, y)
        if r2 >= target - tol:
            return t_offset + elapsed, epoch, r2
    return None, None, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--big-rows", type=int, default=12_000_000)
    ap.add_argument("--memory-limit", default="2GiB", help="per worker")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import fastgd
    from fastgd import _training
    from fastgd._planning import auto_batch_size

    dask.config.set({"distributed.worker.memory.target": 0.85, "distributed.worker.memory.spill": 0.9,
                     "distributed.worker.memory.pause": 0.95})
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
                           dashboard_address=None)
    client = Client(cluster)
    res = dict(rows=[], config=vars(args))
    n, d = args.rows, args.cols
    bs = auto_batch_size(n, d, 1, d)
    block = _training.block_batches(np.empty((1, d), np.float32), bs) * bs
    X, y = make_data(n, d, block)
    X, y = client.persist([X, y])
    client.wait_for_workers(2)
    wait([X, y])
    print(f"{n:,} x {d} float32 on a 2-worker LocalCluster, blocks of {block} rows ({X.numblocks[0]} blocks), "
          f"batch_size {bs}", flush=True)

    # least-squares optimum
    A = da.concatenate([X.astype(np.float64), da.ones((n, 1), chunks=(X.chunks[0], 1))], axis=1).rechunk({1: -1})
    t = time.perf_counter()
    sol = da.linalg.lstsq(A, y)[0].compute()
    t_lstsq = time.perf_counter() - t
    r2_opt = r2_dask(A @ sol, y)
    res["rows"].append(dict(name="dask.array.linalg.lstsq", time=t_lstsq, r2=r2_opt, gap=0.0))

    # warm-up: the workers import fastgd and load its kernels once (not part of any timing)
    Xw, yw = make_data(20000, d, 8192, seed=9)
    for mode in ("exact", "parallel"):
        fastgd.LinearRegressor(max_iter=2, tol=None, distributed=mode).fit(Xw, yw)
    fastgd.LinearRegressor(max_iter=2, tol=None).fit(*dask.compute(Xw, yw))

    fits = {}
    for mode in ("exact", "parallel"):
        est, elapsed, mem, models, warns = fit_fastgd(X, y, mode)
        r2 = r2_dask(est.predict(X), y)
        t_to, ep, _ = time_to(models, X, y, r2_opt, t_offset=elapsed - models[-1][0] if models else 0.0)
        fits[mode] = est
        res["rows"].append(dict(name=f"fastgd distributed='{mode}'", time=elapsed, r2=r2, gap=r2_opt - r2,
                                client_mb=mem, epochs=est.n_iter_, time_to_1e4=t_to, epoch_to_1e4=ep,
                                warnings=warns))
        print(res["rows"][-1], flush=True)

    if not args.no_peers:
        try:
            from dask_ml.linear_model import LinearRegression as DLR
        except ImportError:
            DLR = None
            print("dask-ml is not installed: its rows are skipped")
        if DLR is not None:
            Xd64 = X.astype(np.float64)
            for solver in ("newton", "lbfgs", "gradient_descent"):
                m = DLR(solver=solver, fit_intercept=True)
                with PeakRSS() as mem, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    m.fit(Xd64, y)
                    elapsed = time.perf_counter() - t
                coef = np.asarray(m.coef_, dtype=np.float64).ravel()
                r2 = r2_dask(Xd64 @ coef + float(np.ravel(m.intercept_)[0]), y)
                res["rows"].append(dict(name=f"dask-ml LinearRegression(solver='{solver}')", time=elapsed, r2=r2,
                                        gap=r2_opt - r2, client_mb=mem.growth_mb))
                print(res["rows"][-1], flush=True)

    # in memory, on the same data (gathered now, after the dask measurements)
    # (a local .npy memmap: locally the shuffled blocks are used for data read from a file, as here)
    Xm, ym = dask.compute(X, y)
    tmp = tempfile.mkdtemp()
    np.save(f"{tmp}/X.npy", Xm)
    Xm = np.load(f"{tmp}/X.npy", mmap_mode="r")
    fastgd.LinearRegressor(random_state=0).fit(Xm, ym)  # the file in the page cache
    t = time.perf_counter()
    ref = fastgd.LinearRegressor(random_state=0).fit(Xm, ym)
    t_mem = time.perf_counter() - t
    r2_mem = ref.score(Xm, ym)
    res["rows"].append(dict(name="fastgd local (the same data, a .npy memmap in the page cache)", time=t_mem,
                            r2=r2_mem, gap=r2_opt - r2_mem, epochs=ref.n_iter_))
    ex = fits["exact"]
    res["exact_vs_memory"] = dict(
        r2_diff=abs(ex.score(Xm, ym) - r2_mem), coef_max_diff=float(np.abs(ex.coef_ - ref.coef_).max()),
        intercept_diff=abs(ex.intercept_ - ref.intercept_), same_epochs=ex.n_iter_ == ref.n_iter_,
        time_ratio=res["rows"][1]["time"] / t_mem)
    print(res["exact_vs_memory"], flush=True)
    del Xm, ym, X, y, A
    shutil.rmtree(tmp)

    # a collection larger than one worker's memory limit
    if args.big_rows:
        nb = args.big_rows
        bs_b = auto_batch_size(nb, d, 1, d)
        block_b = _training.block_batches(np.empty((1, d), np.float32), bs_b) * bs_b
        Xb, yb = client.persist(list(make_data(nb, d, block_b, seed=1)))
        wait([Xb, yb])
        gb = nb * d * 4 / 2**30
        big = dict(rows=nb, gib=round(gb, 2), worker_limit=args.memory_limit)
        # the optimum from the normal equations in float64 (streams the blocks; lstsq's Q would not fit)
        Ab = da.concatenate([Xb.astype(np.float64), da.ones((nb, 1), chunks=(Xb.chunks[0], 1))], axis=1)
        t = time.perf_counter()
        G, b = dask.compute(Ab.T @ Ab, Ab.T @ yb)
        solb = np.linalg.solve(G, b)
        big["normal_equations_time"] = time.perf_counter() - t
        r2b = r2_dask(Ab @ solb, yb)
        for mode in ("exact", "parallel"):
            est, elapsed, mem, models, warns = fit_fastgd(Xb, yb, mode)
            r2 = r2_dask(est.predict(Xb), yb)
            big[mode] = dict(time=elapsed, r2_gap=r2b - r2, client_mb=mem, epochs=est.n_iter_)
        res["big"] = big
        print(big, flush=True)

    print()
    print("| method | fit s | R² gap to lstsq | client MB | epochs | s to gap 1e-4 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        t_to = r.get("time_to_1e4")
        print(f"| {r['name']} | {r['time']:.2f} | {r['gap']:.1e} | "
              f"{r.get('client_mb', float('nan')):.1f} | {r.get('epochs', '')} | "
              f"{'' if t_to is None else f'{t_to:.2f}'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    client.close()
    cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
