"""Sparse, high-dimensional data: per-epoch time and held-out R² of fastgd next to SGDRegressor and Ridge.

Data (made here, no downloads): binary CSR rows of about ``--nnz`` non-zeros with Zipf-like (or uniform)
column popularity, as hashed n-grams of text; y = X·w + noise with w non-zero on a tenth of the columns.
For d in ``--dims`` and batch sizes 1, 32, 256 and "auto" it prints fastgd's per-epoch time (the default
optimizer, as the default fit's warm-up epochs run) next to SGDRegressor's, and the held-out R² of a fit with
the defaults and that batch size (skipped when the fit would take longer than ``--budget`` seconds) next to
SGDRegressor()'s and Ridge(alpha=1)'s; then,
per d, the lazy epoch's time with one thread and with all (``n_jobs=1`` and ``-1``, the "auto" batch size).
Then the peak RSS growth of a default fit at ``--rss-d`` columns next to the size of its parameters and
optimizer state. Last (so that the process's memory before the epochs and the RSS fit is as it was before
this part existed: both depend on it), per d and chunk size in ``--chunks``, a stream: ``partial_fit`` with
the defaults over the first ``--stream-rows`` training rows in chunks, its time per call (the first call,
which sets the stream up, left out; the least of the rounds) next to ``SGDRegressor.partial_fit``'s on the
same chunks, and both models' held-out R² after that one pass.

Times are wall-clock seconds (``--clock cpu``: the process's CPU seconds, which the other jobs of a shared
machine disturb less, but which count every thread), the least of ``--rounds`` interleaved rounds (the
least is the one least disturbed). Both per-epoch times are measured the same way: (T(1 + e) - T(1)) / e for
T(m) the least time of an m-epoch fit (``--epochs`` e for fastgd, 5 for SGDRegressor), so each fit's set-up
and end cancel and what an epoch of a fit costs stays (for fastgd: its check of the model and the copy it
keeps to restore); with ``--time-rows`` fastgd's is measured on that many rows and scaled to n.

    python benchmarks/sparse_highdim.py [--n 100000] [--dims 14 20] [--popularity zipf]
"""

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import Ridge, SGDRegressor
from sklearn.metrics import r2_score

import fastgd
from fastgd import _engine


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sparse_problem(n, d, nnz, popularity="zipf", seed=0, noise=0.5):
    """Binary CSR (n, d) with about ``nnz`` distinct columns per row and a linear target with noise."""
    rng = np.random.default_rng(seed)
    if popularity == "zipf":
        p = 1.0 / np.arange(1, d + 1) ** 1.1
        p /= p.sum()
        cols = rng.choice(d, size=(n, nnz), p=p)
        cols = rng.permutation(d)[cols]  # popular columns anywhere, as hashing puts them
    else:
        cols = rng.integers(0, d, size=(n, nnz))
    X = sp.csr_matrix((np.ones(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1.0  # binary
    w = np.zeros(d)
    hot = rng.choice(d, max(1, d // 10), replace=False)
    w[hot] = rng.standard_normal(hot.size)
    y = X @ w + 3.0 + noise * rng.standard_normal(n)
    return X, y


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def fit_times(X, y, batch_size, time_rows, backend="auto", epochs=4, n_jobs=None):
    """(T(1), T(1 + epochs), the batch size used): seconds of a 1-epoch and a (1 + ``epochs``)-epoch fit on the
    first ``time_rows`` rows (0: all), the fits' set-up included (it cancels in their difference)."""
    m = min(time_rows or X.shape[0], X.shape[0])
    times = []
    # penalty=None: the default fit's epochs are the warm-up of its exact finish, lazy with the l2 penalty where
    # batches touch (the same loop and cost); a fixed max_iter has no finish, so its l2 would update every coordinate
    for e in (1, 1 + epochs):
        est = fastgd.LinearRegressor(batch_size=batch_size, max_iter=e, tol=None, random_state=0, backend=backend,
                                     n_jobs=n_jobs, penalty=None)
        t = clock()
        try:
            est.fit(X[:m], y[:m])
        except ValueError:  # diverged in its first epoch
            return float("nan"), float("nan"), "?"
        times.append(clock() - t)
    return times[0], times[1], est.batch_size_


def per_epoch_of(t1, te, epochs, scale):
    """Seconds per epoch over all of X from the least T(1) and T(1 + epochs) of fits on 1/scale of it."""
    return max(te - t1, 0.0) / epochs * scale


def sgd_epoch_time(X, y, rounds):
    """SGDRegressor's seconds per epoch: (T(6) - T(1)) / 5, T(e) the least time of an e-epoch fit."""
    best = {}
    for _ in range(rounds):
        for epochs in (1, 6):
            t = clock()
            SGDRegressor(max_iter=epochs, tol=None, random_state=0).fit(X, y)
            best[epochs] = min(best.get(epochs, np.inf), clock() - t)
    return max(best[6] - best[1], 0.0) / 5


def stream_times(Xtr, ytr, Xte, yte, chunk, rows, rounds, backend="auto"):
    """(fastgd's and SGDRegressor's seconds per partial_fit call, their held-out R²): a pass over the first
    ``rows`` rows in chunks of ``chunk``; the calls after the first timed together, the least of ``rounds``."""
    rows = min(rows, Xtr.shape[0])
    starts = range(0, rows, chunk)
    best, r2 = {}, {}
    for _ in range(rounds):  # interleaved
        for name, make in (("fastgd", lambda: fastgd.LinearRegressor(random_state=0, backend=backend)),
                           ("sgd", lambda: SGDRegressor(random_state=0))):
            model = make()
            model.partial_fit(Xtr[:min(chunk, rows)], ytr[:min(chunk, rows)])
            t = clock()
            for s in starts[1:]:
                model.partial_fit(Xtr[s:min(s + chunk, rows)], ytr[s:min(s + chunk, rows)])
            per_call = (clock() - t) / max(len(starts) - 1, 1)
            best[name] = min(best.get(name, np.inf), per_call)
            r2[name] = r2_score(yte, model.predict(Xte))
    return best["fastgd"], best["sgd"], r2["fastgd"], r2["sgd"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, nargs="*", default=[14, 20], help="log2 of the numbers of columns")
    parser.add_argument("--nnz", type=int, default=30)
    parser.add_argument("--popularity", choices=["zipf", "uniform"], default="zipf")
    parser.add_argument("--batches", nargs="+", default=["1", "32", "256", "auto"])
    parser.add_argument("--time-rows", type=int, default=0, help="rows to time epochs on (0: all)")
    parser.add_argument("--budget", type=float, default=30.0, help="skip R² fits expected to take longer (s)")
    parser.add_argument("--rss-d", type=int, default=22, help="log2 of d for the RSS measurement (0: skip)")
    parser.add_argument("--backend", choices=["auto", "numba", "native"], default="auto")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of timings (the least counts)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs e in T(1 + e) - T(1) (fastgd)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="what the times measure")
    parser.add_argument("--chunks", type=int, nargs="*", default=[1000, 10000],
                        help="partial_fit chunk sizes (none: skip the stream)")
    parser.add_argument("--stream-rows", type=int, default=60_000, help="rows the partial_fit stream passes over")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    warm = sparse_problem(200, 64, 5)
    for n_jobs in (1, -1):  # compiled (Numba) and the thread team started before anything is timed
        fastgd.LinearRegressor(max_iter=2, tol=None, backend=args.backend, n_jobs=n_jobs).fit(*warm)
    print(f"{'d':>8} {'B':>8} {'fastgd s/ep':>12} {'SGD s/ep':>9} {'ratio':>6} {'R² fastgd':>10} {'R² SGD':>7} "
          f"{'R² Ridge':>8}")
    threads = []
    for logd in args.dims:
        d = 2**logd
        X, y = sparse_problem(args.n + args.n // 5, d, args.nnz, args.popularity)
        Xtr, ytr, Xte, yte = X[:args.n], y[:args.n], X[args.n:], y[args.n:]
        sgd_epoch = sgd_epoch_time(Xtr, ytr, args.rounds)
        r2_sgd = r2_score(yte, SGDRegressor(random_state=0).fit(Xtr, ytr).predict(Xte))
        r2_ridge = r2_score(yte, Ridge(alpha=1.0).fit(Xtr, ytr).predict(Xte))
        runs = [(b if b == "auto" else int(b), None) for b in args.batches] + [("auto", 1), ("auto", -1)]
        least = {}
        for _ in range(args.rounds):  # interleaved: a busy spell of the machine spreads over all of them
            for bs, n_jobs in runs:
                t1, te, used = fit_times(Xtr, ytr, bs, args.time_rows, args.backend, args.epochs, n_jobs)
                old = least.get((bs, n_jobs), (np.inf, np.inf, used))
                least[bs, n_jobs] = (min(old[0], t1), min(old[1], te), used)
        scale = Xtr.shape[0] / min(args.time_rows or Xtr.shape[0], Xtr.shape[0])
        best = {key: (per_epoch_of(t1, te, args.epochs, scale), used) for key, (t1, te, used) in least.items()}
        for b in args.batches:
            bs = b if b == "auto" else int(b)
            per_epoch, used = best[bs, None]
            r2 = "skipped"
            if per_epoch * 20 < args.budget:
                try:
                    est = fastgd.LinearRegressor(batch_size=bs, random_state=0, backend=args.backend).fit(Xtr, ytr)
                    r2 = f"{r2_score(yte, est.predict(Xte)):.4f}"
                except ValueError:
                    r2 = "diverged"
            label = f"auto={used}" if b == "auto" else b
            ratio = per_epoch / sgd_epoch if sgd_epoch > 0 else float("nan")  # tiny runs: too short to time
            print(f"{'2^' + str(logd):>8} {label:>8} {per_epoch:12.4f} {sgd_epoch:9.4f} {ratio:6.2f} "
                  f"{r2:>10} {r2_sgd:7.4f} {r2_ridge:8.4f}", flush=True)
        one, used = best["auto", 1]
        every = best["auto", -1][0]
        threads.append(f"threads: d = 2^{logd}, B = {used} (auto): epoch {one:.4f} s with n_jobs=1, {every:.4f} s "
                       f"with n_jobs=-1 ({_engine.resolve_n_threads(-1)} threads), "
                       f"ratio {every / one if one > 0 else float('nan'):.2f}")  # tiny runs: too short to time
    for line in threads:
        print(line)
    if args.rss_d:
        d = 2**args.rss_d
        X, y = sparse_problem(args.n, d, args.nnz, args.popularity, seed=1)
        before = peak_rss_mb()
        est = fastgd.LinearRegressor(random_state=0, backend=args.backend).fit(X, y)  # warm-up epochs and finish
        growth = peak_rss_mb() - before
        state_mb = (1 + len(fastgd.optimizers.get_optimizer("adam").slots)) * (d + 1) * 8 / 2**20
        print(f"RSS: default fit at d = 2^{args.rss_d} (batch {est.batch_size_}, {est.max_iter_} epochs and the "
              f"finish): peak growth "
              f"{growth:.0f} MB; parameters and optimizer state {state_mb:.0f} MB; ratio {growth / state_mb:.2f}")
    if args.chunks:
        print(f"partial_fit, one pass over {args.stream_rows} rows in chunks (held-out R² after it):")
        print(f"{'d':>8} {'chunk':>8} {'fastgd ms/call':>14} {'SGD ms/call':>11} {'ratio':>6} {'R² fastgd':>10} "
              f"{'R² SGD':>7}")
    for logd in args.dims if args.chunks else ():
        X, y = sparse_problem(args.n + args.n // 5, 2**logd, args.nnz, args.popularity)  # the epochs' data again
        Xtr, ytr, Xte, yte = X[:args.n], y[:args.n], X[args.n:], y[args.n:]
        for chunk in args.chunks:
            tf, ts, rf, rs = stream_times(Xtr, ytr, Xte, yte, chunk, args.stream_rows, args.rounds, args.backend)
            print(f"{'2^' + str(logd):>8} {chunk:>8} {tf * 1e3:14.2f} {ts * 1e3:11.2f} "
                  f"{tf / ts if ts > 0 else float('nan'):6.1f} {rf:10.4f} {rs:7.4f}", flush=True)


if __name__ == "__main__":
    main()
