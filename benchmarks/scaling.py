"""Multicore scaling: the Adam epoch and the default fit against the memory floor, for 1, 2, 4, ... threads.

    python benchmarks/scaling.py [--n 2000000] [--d 100] [--max-seconds 240] [--rounds 5] [--out scaling.md]

For each thread count T (1, 2, 4, ... and the machine's cores), in interleaved rounds (every timing once per
round, so a burst of load elsewhere hits them alike), both backends:

* floor: the fastest read-only pass over X on T threads (the faster of the Numba and the native loop);
* one batch: an epoch whose only batch is all of X (the fused row loop streaming X, one update): at T = 1
  this is the row loop / one-thread read; at T = 1 also for a float32 copy of X, divided by the
  one-thread read of that copy ("one batch f32");
* B = 32, 256, 4096 and the default batch: a shuffled Adam epoch, divided by the floor of the same round
  (the median over rounds is printed);
* per batch: the time an epoch of batch B spends above the one-batch epoch, divided by its number of
  batches (wait, reduction, update and hand-over), in microseconds;
* workers: the threads the epoch's rule (``epoch_threads``) gives a batch of 256 rows and of the default
  size with T threads (an epoch never runs more threads than its batches can use);
* fit: ``LinearRegressor(n_jobs=T)`` with every other setting at its default, timed once: seconds, the same
  time in reads of X (fit / floor) and the speed-up over T = 1.

Then the oversubscription pair for each backend at B = 256 and 4096: two processes with all the cores'
threads each, running at once, divided by one process alone with half of them (its fair share; goal
<= 2.4).

X is float64, filled in parallel by a hash of the index (uniform, unit variance), y = X w + noise. The run
stops measuring further thread counts once --max-seconds has passed (it says so). Prints a Markdown table and
writes the same to --out. Never a test: tests/test_benchmark_scripts.py runs it on a tiny n.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numba
import numpy as np

import fastgd
from fastgd import _config, _engine
from fastgd import _kernels as K
from fastgd.bench import default_batch_size, fastgd_epoch, floor_of, floor_reads
from fastgd.optimizers import OPTIMIZERS

BATCHES = (32, 256, 4096)


@numba.njit(parallel=True)
def _fill(X, out, w, noise):
    """X[i, j]: a splitmix64 hash of i * d + j, uniform on [-sqrt 3, sqrt 3]; out[i] = X[i] . w + noise."""
    n, d = X.shape
    scale = 2.0 * np.sqrt(3.0) / 2.0**53
    for i in numba.prange(n):
        acc = 0.0
        for j in range(d + 1):
            z = np.uint64(i * (d + 1) + j) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            v = float(z >> np.uint64(11)) * scale - np.sqrt(3.0)
            if j < d:
                X[i, j] = v
                acc += v * w[j]
            else:
                out[i] = acc + noise * v


def make_data(n, d):
    X = np.empty((n, d))
    y = np.empty(n)
    w = np.random.default_rng(0).uniform(-2, 2, d)
    _fill(X, y, w, 0.5)
    return X, y


def thread_counts(cores):
    counts = [1]
    while counts[-1] * 2 <= cores:
        counts.append(counts[-1] * 2)
    if counts[-1] != cores:
        counts.append(cores)
    return counts


def backends():
    return ["native", "numba"] if _engine.native_available() else ["numba"]


def _fit(backend, t, X, y):
    from sklearn.exceptions import ConvergenceWarning

    from fastgd import LinearRegressor

    est = LinearRegressor(n_jobs=t, backend=backend, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t0, est.n_iter_


def measure_threads(X, y, Y, t, rounds, default_batch, fit=True, X32=None):
    """Every figure of one thread count (see the module docstring); ``X32``: a float32 copy of X for the
    one-batch column (T = 1)."""
    n, d = X.shape
    adam = OPTIMIZERS["adam"](lr=1e-3)
    batches = sorted({b for b in (*BATCHES, default_batch) if b < n})
    fns = dict(floor_reads(X, t, "read"))
    if X32 is not None:
        fns.update(floor_reads(X32, t, "read32"))
    for be in backends():
        fns[(be, "one")] = fastgd_epoch(X, Y, adam, n, t, backend=be)
        if X32 is not None:
            fns[(be, "one32")] = fastgd_epoch(X32, Y, adam, n, t, backend=be)
        for b in batches:
            fns[(be, b)] = fastgd_epoch(X, Y, adam, b, t, backend=be, shuffle=True)
    for fn in fns.values():  # compile or load, touch every page
        fn()
    ratios = {key: [] for key in fns if isinstance(key, tuple)}
    best = {key: float("inf") for key in fns}
    floors = []
    for _ in range(rounds):
        times = {}
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key] = time.perf_counter() - t0
            best[key] = min(best[key], times[key])
        floors.append(floor_of(times, "read"))
        for key in ratios:
            ratios[key].append(times[key] / (floor_of(times, "read32") if key[1] == "one32" else floors[-1]))
    floor = min(floors)
    rows = []
    for be in backends():
        row = {"threads": t, "backend": be, "floor_ms": floor * 1e3,
               "one": statistics.median(ratios[(be, "one")]),
               "one32": statistics.median(ratios[(be, "one32")]) if X32 is not None else None}
        for b in batches:
            row[f"B={b}"] = statistics.median(ratios[(be, b)])
            row[f"us/batch B={b}"] = (best[(be, b)] - best[(be, "one")]) / -(-n // b) * 1e6
        for b in (256, default_batch):  # (a checkout from before the rule: "–", so it can be measured too)
            rule = getattr(K, "epoch_threads", None)
            row[f"workers B={b}"] = rule(b, d, 1, t, K.PATH_AUTO) if rule else "–"
        if fit:
            seconds, iters = _fit(be, t, X, y)
            row.update({"fit_s": seconds, "fit_epochs": iters, "fit_reads": seconds / floor})
        rows.append(row)
    return rows


def oversubscription(cores, rows, d, batch, epochs):
    """(alone with half the threads, two processes with all threads each) per-epoch times for each backend."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import oversubscription as ov

    args = argparse.Namespace(rows=rows, features=d, batch=batch, epochs=epochs, timeout=600.0)
    out = []
    for be in backends():
        alone = ov.scenario(be, 1, max(1, cores // 2), args)
        both = ov.scenario(be, 2, cores, args)
        out.append({"backend": be, "batch": batch, "alone_ms": alone * 1e3, "two_ms": both * 1e3,
                    "ratio": both / alone})
    return out


def _f(v, fmt):
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def markdown(res):
    cfg = res["config"]
    lines = [f"`benchmarks/scaling.py`: {cfg['n']:,} x {cfg['d']} float64 ({cfg['gb']:.2f} GB), Adam, shuffled "
             f"batches, default batch {cfg['default_batch']}, {cfg['cores']} cores, {cfg['rounds']} rounds; "
             "epochs as median ÷ floor of the same round; per batch: µs above the one-batch epoch; fit: "
             "`LinearRegressor(n_jobs=T)` defaults, once.", ""]
    batches = cfg["batches"]
    head = (["T", "backend", "floor ms", "one batch", "one batch f32"] + [f"B={b}" for b in batches]
            + [f"µs/batch B={b}" for b in batches if b in (256, 4096, cfg["default_batch"])]
            + ["workers B=256", f"workers B={cfg['default_batch']}", "fit s (epochs)", "fit reads of X",
               "fit 1T ÷ fit"])
    lines += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    fit1 = {r["backend"]: r.get("fit_s") for r in res["rows"] if r["threads"] == 1}
    for r in res["rows"]:
        cells = [str(r["threads"]), r["backend"], _f(r["floor_ms"], ".1f"), _f(r["one"], ".2f"),
                 _f(r.get("one32"), ".2f")]
        cells += [_f(r.get(f"B={b}"), ".2f") for b in batches]
        cells += [_f(r.get(f"us/batch B={b}"), ".2f") for b in batches if b in (256, 4096, cfg["default_batch"])]
        cells += [str(r["workers B=256"]), str(r[f"workers B={cfg['default_batch']}"])]
        if "fit_s" in r:
            cells += [f"{r['fit_s']:.3f} ({r['fit_epochs']})", _f(r["fit_reads"], ".1f"),
                      _f(fit1.get(r["backend"]) / r["fit_s"] if fit1.get(r["backend"]) else None, ".2f")]
        else:
            cells += ["–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    if res["stopped"]:
        lines += ["", f"Stopped after {res['rows'][-1]['threads']} threads: --max-seconds reached."]
    if res["oversubscription"]:
        lines += ["", f"Oversubscription ({cfg['ov_rows']:,} rows): two processes with {cfg['cores']} threads "
                      f"each at once ÷ one alone with {max(1, cfg['cores'] // 2)} (its fair share; goal ≤ 2.4).", "",
                  "| backend | B | alone, half the threads (ms) | 2 processes × all threads (ms) | ratio |",
                  "|---|---:|---:|---:|---:|"]
        for o in res["oversubscription"]:
            lines.append(f"| {o['backend']} | {o['batch']} | {o['alone_ms']:.1f} | {o['two_ms']:.1f} | "
                         f"{o['ratio']:.2f} |")
    lines += ["", f"fastgd from {cfg['fastgd']}; load average before: {cfg['load']:.2f}; total {res['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2_000_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-seconds", type=float, default=240.0,
                   help="measure no further thread count once this much time has passed")
    p.add_argument("--cores", type=int, default=None, help="highest thread count (default: all usable)")
    p.add_argument("--ov-rows", type=int, default=500_000, help="rows of the oversubscription pair (0: skip)")
    p.add_argument("--ov-epochs", type=int, default=5)
    p.add_argument("--no-fit", action="store_true")
    p.add_argument("--out", default=None, help="also write the Markdown table to this file")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    cores = args.cores or _config.max_n_threads()
    load = os.getloadavg()[0]
    X, y = make_data(args.n, args.d)
    Y = _engine.targets_2d(y)
    default_batch = default_batch_size(args.n, args.d)
    print(f"scaling: {args.n:,} x {args.d} float64, threads {thread_counts(cores)}, backends {backends()}, "
          f"default batch {default_batch}", flush=True)
    if not args.no_fit:  # compile or load every kernel a fit uses (sequential and parallel) outside the timings
        for be in backends():
            for t in sorted({1, cores}):
                _fit(be, t, X, y)
    rows, stopped = [], False
    for t in thread_counts(cores):
        if rows and time.perf_counter() - t_start > args.max_seconds * 0.8:
            stopped = True
            break
        X32 = X.astype(np.float32) if t == 1 else None  # the one-thread row loop on float32 too
        rows += measure_threads(X, y, Y, t, args.rounds, default_batch, fit=not args.no_fit, X32=X32)
        del X32
        for r in rows[-len(backends()):]:
            print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()),
                  flush=True)
    del X, Y, y
    ov = []
    if args.ov_rows > 0 and time.perf_counter() - t_start < args.max_seconds * 0.9:
        for b in (256, 4096):
            if b < min(args.ov_rows, args.n):
                ov += oversubscription(cores, min(args.ov_rows, args.n), args.d, b, args.ov_epochs)
    res = {"config": {"n": args.n, "d": args.d, "gb": args.n * args.d * 8 / 1e9, "cores": cores,
                      "rounds": args.rounds, "default_batch": default_batch,
                      "batches": sorted({b for b in (*BATCHES, default_batch) if b < args.n}),
                      "ov_rows": min(args.ov_rows, args.n), "load": load,
                      "fastgd": os.path.dirname(os.path.abspath(fastgd.__file__))},
           "rows": rows, "stopped": stopped, "oversubscription": ov, "seconds": time.perf_counter() - t_start}
    text = markdown(res)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return res


if __name__ == "__main__":
    main()
