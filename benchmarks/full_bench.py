"""The development benchmark: fastgd next to its peers and the hardware floor, every optimizer, the project's
speed goals, a JSON record, a Markdown table and plots. (Users run ``fastgd bench``, a short table; this is
the full one behind the README's and the docs' figures.) Two more sections measure the epoch against the
memory floor in detail: ``--ratios`` (the epoch goals, per round) and ``--breakdown`` (where an epoch's time
goes above the floor); each is described at its section of this file.

    python benchmarks/full_bench.py [--quick] [--n 1000000] [--d 100] [--batch 256] [--json out.json]
                                    [--markdown out.md] [--plots DIR] [--no-memory] [--no-cold-start]
    python benchmarks/full_bench.py --ratios [--n 1000000] [--d 100] [--rounds 7] [--threads T]
                                    [--backends native numba] [--optimizer adam] [--reference] [--json out.json]
    python benchmarks/full_bench.py --breakdown [--n 1000000] [--d 100] [--rounds 5] [--backends native]

Every figure is measured in this process on the same data, and epoch times are taken in interleaved rounds
(each method once per round, the minimum kept), so ratios hold on a noisy shared machine even when absolute
times move. fastgd rows use the backend LinearRegressor uses by default ("auto": native when built), named in
``config.backend``; when that is native, Adam's Numba rows are added, labelled "(numba)". Rows:

* floor: the fastest read-only pass over X with all cores (the faster of ``fastgd._kernels.read_floor`` and
  the native ``read_floor``, timed in the same rounds);
* fastgd epoch for every optimizer, float32 and float64, 1 thread and all threads;
* the plain-NumPy reference epoch (``fastgd.reference``), Adam, float64;
* scikit-learn's SGDRegressor, one epoch (``max_iter=1``);
* torch ``nn.Linear`` + ``torch.optim.Adam``, one mini-batch epoch, when torch is installed;
* closed form: ``numpy.linalg.lstsq`` and ``Ridge(solver="cholesky")``;
* time to accuracy: seconds and epochs until the training MSE is within 1 % of the least-squares optimum;
* peak extra memory of a fit beyond X and y, and the cold-process time of ``import fastgd`` + a first fit;
* scaling: per-row epoch cost as n grows (float32 at the top end) and as d grows.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

import numba
import numpy as np

from fastgd import _engine, _training, reference
from fastgd import _kernels as K
from fastgd.bench import (Threads, default_batch_size, floor, floor_of, floor_reads, fmt_seconds, fastgd_epoch,
                          interleaved, sgdregressor_epoch, torch_epoch)
from fastgd.datasets import make_regression
from fastgd.optimizers import OPTIMIZERS

from _common import best_of, timed_rounds

SCHEMA_VERSION = 1
GOALS = [  # (key in ratios, description, goal, "<=" or ">=")
    ("epoch_over_floor", "Adam epoch / floor (all cores)", 1.25, "<="),
    ("reference_over_epoch", "NumPy reference epoch / fastgd epoch", 2.5, ">="),
    ("sgdregressor_over_epoch", "SGDRegressor epoch / fastgd epoch", 6.0, ">="),
    ("torch_over_epoch", "torch Adam epoch / fastgd epoch", 25.0, ">="),
    ("time_to_1pct_over_ridge", "fastgd (faster of its two runs) time to 1 % of optimum / Ridge(cholesky) fit",
     0.5, "<="),
    ("float32_over_float64", "float32 epoch / float64 epoch", 0.6, "<="),
    ("all_threads_over_1_thread", "all-threads epoch / 1-thread epoch", 0.6, "<="),
    ("extra_memory_mb", "peak extra memory of a fit (MB)", 64.0, "<="),
]


# ----------------------------------------------------------------------------------------------------------
# timing helpers


def reference_epoch(X, Y, opt, batch):
    theta = np.zeros((Y.shape[1], X.shape[1] + 1))
    state = opt.state_dict(*opt.init_state(theta.size))
    order = np.arange(_engine.n_batches(X.shape[0], batch))
    return lambda: reference.epoch(X, Y, theta, state, opt.reference_step(), batch, order)


def warm_up(X, Y, opt, batch, threads, backends):
    """Compile (or load from cache) every kernel variant outside the timings."""
    small = min(len(X), 8 * batch + 1)
    for backend in backends:
        for path in (K.PATH_SEQUENTIAL, K.PATH_PARALLEL):
            fastgd_epoch(X[:small], Y[:small], opt, batch, threads, path, backend=backend)()
    floor(X[:small], threads)()


# ----------------------------------------------------------------------------------------------------------
# peers


def closed_forms(X, y):
    from sklearn.linear_model import Ridge

    out = {}
    t0 = time.perf_counter()
    A = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    out["numpy.linalg.lstsq"] = time.perf_counter() - t0
    del A
    out["Ridge(solver='cholesky')"] = best_of(lambda: Ridge(alpha=1e-8, solver="cholesky").fit(X, y), 1)
    mse = float(np.mean((K.predict(X, sol[None, :])[:, 0] - y) ** 2))
    return out, mse


def time_to_accuracy(X, y, optimum_mse, batch, threads, max_epochs, backend="auto"):
    """Training seconds and epochs until the training MSE is within 1 % of the optimum (evaluation excluded).

    fastgd, two ways: plain SGD at the registry's starting rate (0.01), and Adam from 0.01 halved after every
    epoch (a constant Adam step keeps a noise floor of about d·lr² in excess MSE, which at d = 100 is the
    size of the optimum itself). Batches shuffled. SGDRegressor: its defaults, one partial_fit per epoch.
    Also returns (seconds, mse) curves for the plot.
    """
    from sklearn.linear_model import SGDRegressor

    from fastgd.schedules import Step

    target = 1.01 * optimum_mse
    per_epoch = _engine.n_batches(X.shape[0], batch)
    result, curves = {}, {}
    for label, name, schedule in (("fastgd sgd", "sgd", None),
                                  ("fastgd adam, lr halved each epoch", "adam", Step(step_size=per_epoch))):
        opt = OPTIMIZERS[name](lr=OPTIMIZERS[name].start_lr)
        sched = None if schedule is None else schedule.pack(opt.lr)[1]
        ts = _engine.TrainingState.fresh(opt, 1, X.shape[1])
        spent, curves[label] = 0.0, []
        for epoch in range(1, max_epochs + 1):
            t0 = time.perf_counter()
            _training.train_epochs(X, y, opt, batch_size=batch, epochs=1, ts=ts, random_state=epoch,
                                   n_threads=threads, sched=sched, backend=backend)
            spent += time.perf_counter() - t0
            mse = float(np.mean((K.predict(X, ts.theta)[:, 0] - y) ** 2))
            curves[label].append((spent, mse))
            if mse <= target:
                break
        result[label] = {"seconds": spent, "epochs": epoch, "reached": mse <= target}
    from fastgd import LinearRegressor

    t0 = time.perf_counter()
    model = LinearRegressor(random_state=0, backend=backend).fit(X, y)
    spent = time.perf_counter() - t0
    mse = float(np.mean((model.predict(X) - y) ** 2))
    result["fastgd LinearRegressor() defaults, whole fit"] = {"seconds": spent, "epochs": model.n_iter_,
                                                              "reached": mse <= target}
    sgd = SGDRegressor(random_state=0)
    spent, curves["SGDRegressor"] = 0.0, []
    for epoch in range(1, max_epochs + 1):
        t0 = time.perf_counter()
        sgd.partial_fit(X, y)
        spent += time.perf_counter() - t0
        mse = float(np.mean((sgd.predict(X) - y) ** 2))
        curves["SGDRegressor"].append((spent, mse))
        if mse <= target:
            break
    result["SGDRegressor"] = {"seconds": spent, "epochs": epoch, "reached": mse <= target}
    return result, curves


# ----------------------------------------------------------------------------------------------------------
# separate processes: memory and cold start

_MEMORY_SCRIPT = """
import json, os, sys, threading, time
from fastgd import LinearRegressor
from fastgd.datasets import make_regression

def rss():  # resident set size now, in bytes
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

n, d = int(sys.argv[1]), int(sys.argv[2])
X, y, _, _ = make_regression(n, d, random_state=0)
LinearRegressor(max_iter=1, tol=None).fit(X[:1000], y[:1000])   # compile / load before measuring
base = rss()
peak, done = [base], threading.Event()

def sample():  # the kernels release the GIL, so this thread sees the fit's peak
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.0005)

t = threading.Thread(target=sample)
t.start()
LinearRegressor(max_iter=2, tol=None, batch_size=256).fit(X, y)
done.set()
t.join()
print(json.dumps({"extra_bytes": peak[0] - base, "x_mb": X.nbytes / 2**20}))
"""

_COLD_SCRIPT = """
import sys, time
t0 = time.perf_counter()
import numpy as np
import fastgd
t1 = time.perf_counter()
X = np.random.default_rng(0).standard_normal((1000, 10)); y = X.sum(axis=1)
fastgd.LinearRegressor(max_iter=5, tol=None, backend=sys.argv[1]).fit(X, y)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _python(script, *args, env=None):
    """Run ``script`` in a new interpreter as a user would: from a neutral directory (``python -c`` puts the
    working directory first on sys.path, which in a source checkout would shadow the installed package and
    its compiled extension), with any PYTHONPATH made absolute."""
    import tempfile

    full = {**os.environ, **(env or {})}
    if full.get("PYTHONPATH"):
        full["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in full["PYTHONPATH"].split(os.pathsep))
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                             env=full, cwd=cwd)
    if out.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def extra_memory_mb(n, d):
    """Peak resident-memory growth during a 2-epoch fit beyond X and y (which exist before), sampled every
    0.5 ms in a fresh process (Linux /proc; None elsewhere)."""
    if not os.path.exists("/proc/self/statm"):
        return None
    return json.loads(_python(_MEMORY_SCRIPT, n, d))["extra_bytes"] / 2**20


def cold_start(labels=("numba", "numba, no cache", "native")):
    """Wall time of a new process: interpreter + ``import fastgd`` + a first small fit, for each backend.

    "numba" loads its kernels from Numba's on-disk cache; "numba, no cache" points NUMBA_CACHE_DIR at an empty
    directory, so it pays the JIT compilation (~15 s); "native" needs none ("native" is absent when not
    built). ``labels`` selects the runs.
    """
    import tempfile

    out = {}
    runs = [("numba", "numba", None)]
    with tempfile.TemporaryDirectory() as empty:
        runs.append(("numba, no cache", "numba", {"NUMBA_CACHE_DIR": empty}))
        if _engine.native_available():
            runs.append(("native", "native", None))
        for label, backend, env in runs:
            if label not in labels:
                continue
            t0 = time.perf_counter()
            imp, fit = map(float, _python(_COLD_SCRIPT, backend, env=env).split())
            out[label] = {"process_s": time.perf_counter() - t0, "import_s": imp, "first_fit_s": fit}
    return out


def scaling(d, ns, ds, n_for_d, threads, repeat, backend="auto"):
    """Per-row epoch cost (ns/row) of the Adam epoch as n grows (float32 at the largest n) and as d grows."""
    opt = OPTIMIZERS["adam"](lr=1e-3)
    rows = {"by_n": [], "by_d": []}
    for i, n in enumerate(ns):
        dtype = np.float32 if i == len(ns) - 1 and len(ns) > 1 else np.float64
        X, y, _, _ = make_regression(n, d, dtype=dtype, random_state=0)
        # the first call warms the caches
        t = best_of(fastgd_epoch(X, y[:, None], opt, 256, threads, backend=backend), repeat + 1)
        rows["by_n"].append({"n": n, "d": d, "dtype": np.dtype(dtype).name, "ns_per_row": t / n * 1e9})
        del X
    for dd in ds:
        X, y, _, _ = make_regression(n_for_d, dd, random_state=0)
        t = best_of(fastgd_epoch(X, y[:, None], opt, 256, threads, backend=backend), repeat + 1)
        rows["by_d"].append({"n": n_for_d, "d": dd, "ns_per_row": t / n_for_d * 1e9,
                             "ns_per_element": t / (n_for_d * dd) * 1e9})
        del X
    return rows


# ----------------------------------------------------------------------------------------------------------
# --ratios: the epoch goals, epoch / memory floor, per round
#
# Every round times, once each and in the same order: the all-core read of X (``fastgd._kernels.read_floor``
# and the native C loop), the same read on one thread, NumPy's ``X.sum()``, the all-core read of float32 X,
# and, per backend, the float64 epoch at B = 256, B = 4096 and the batch LinearRegressor's default
# (batch_size="auto") picks, the float32 epoch at B = 256 and B = 4096, and the one-thread epoch at B = 256 and
# B = 4096 (with --reference also the plain-NumPy reference epoch at B = 256). The floor of a round is its
# fastest read of X (the faster all-core read, unless a busy memory bus made the one-thread read or
# ``X.sum()`` faster). Each ratio is formed within one round (the memory system of a shared VM moves between
# rounds) and the table prints its median over the rounds, with its range and the median reads themselves,
# and the load average before and after (others' work on the machine shows there). Goals, float64, d = 100,
# 1e6 rows, Adam, all cores: the RATIO_GOALS below (float32's floor is 0.5 of float64's). The threads /
# 1-thread epoch has no goal; it shows whether the parallel path pays.

RATIO_GOALS = {  # ratio name -> upper bound
    "epoch/floor B=256": 1.25,
    "epoch/floor B=4096": 1.10,
    "epoch/floor default B": 1.60,
    "f32/f64 B=256": 0.60,
    "f32/f64 B=4096": 0.60,
}


def loadavg():
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (float("nan"),) * 3


def ratio_timers(X, X32, Y, backends, threads, optimizer, batches, reference=False):
    """name -> callable; the epochs continue from one fresh state each (timing, not convergence)."""
    fns = {
        **floor_reads(X, threads, "floor"),
        "floor 1t": Threads(lambda: K.read_floor(X), 1),
        "numpy X.sum": X.sum,
        **floor_reads(X32, threads, "floor f32"),
    }
    for be in backends:
        for b in batches:
            opt = OPTIMIZERS[optimizer](lr=1e-3)
            fns[f"{be} f64 B={b}"] = fastgd_epoch(X, Y, opt, b, threads, backend=be)
        for b in sorted({256, 4096} & set(batches)):
            opt = OPTIMIZERS[optimizer](lr=1e-3)
            fns[f"{be} f32 B={b}"] = fastgd_epoch(X32, Y, opt, b, threads, backend=be)
            fns[f"{be} f64 B={b} 1t"] = fastgd_epoch(X, Y, opt, b, 1, backend=be)
    if reference:
        fns["reference f64 B=256"] = reference_epoch(X, Y, OPTIMIZERS[optimizer](lr=1e-3), 256)
    return fns


def ratios_of(t, backends, default_b, threads):
    """Per-round ratios from one round's times ``t``. The floor is the round's fastest read-only pass over X:
    the faster all-core read (Numba's or the native C loop) unless NumPy's ``X.sum()`` or the one-thread read
    beat it (on a busy host, when other tenants hold the memory bus, the second core adds nothing and the
    all-core read can lose)."""
    read = floor_of(t, "floor")
    fl = min(read, t["floor 1t"], t["numpy X.sum"])
    r = {"all-core read/numpy X.sum": read / t["numpy X.sum"], "1-thread read/all-core read":
         t["floor 1t"] / read, "all-core read f32/f64": floor_of(t, "floor f32") / read}
    for be in backends:
        r[f"{be} epoch/floor B=256"] = t[f"{be} f64 B=256"] / fl
        r[f"{be} epoch/floor B=4096"] = t[f"{be} f64 B=4096"] / fl
        r[f"{be} epoch/floor default B"] = t[f"{be} f64 B={default_b}"] / fl
        r[f"{be} f32/f64 B=256"] = t[f"{be} f32 B=256"] / t[f"{be} f64 B=256"]
        r[f"{be} f32/f64 B=4096"] = t[f"{be} f32 B=4096"] / t[f"{be} f64 B=4096"]
        r[f"{be} {threads}t/1t B=256"] = t[f"{be} f64 B=256"] / t[f"{be} f64 B=256 1t"]
        r[f"{be} {threads}t/1t B=4096"] = t[f"{be} f64 B=4096"] / t[f"{be} f64 B=4096 1t"]
        if "reference f64 B=256" in t:
            r[f"{be} reference/epoch B=256"] = t["reference f64 B=256"] / t[f"{be} f64 B=256"]
    return r


def measure_ratios(n, d, rounds, threads, backends, optimizer, reference=False):
    X, y, _, _ = make_regression(n, d, random_state=0)
    X32 = X.astype(np.float32)
    Y = _engine.targets_2d(y)
    default_b = default_batch_size(n, d)
    batches = sorted({256, 4096, default_b})
    fns = ratio_timers(X, X32, Y, backends, threads, optimizer, batches, reference)
    for fn in fns.values():  # compile (or load from the cache) and touch every page outside the timings
        fn()
    load_before = loadavg()
    round_times = timed_rounds(fns, rounds)
    times = {name: [t[name] for t in round_times] for name in fns}
    per_round = [ratios_of(t, backends, default_b, threads) for t in round_times]
    return {
        "config": {"n": n, "d": d, "rounds": rounds, "threads": threads, "backends": list(backends),
                   "optimizer": optimizer, "default_batch": default_b},
        "load_before": load_before, "load_after": loadavg(),
        "times_ms": {name: [v * 1e3 for v in ts] for name, ts in times.items()},
        "median_ms": {name: statistics.median(ts) * 1e3 for name, ts in times.items()},
        "ratios": {name: [r[name] for r in per_round] for name in per_round[0]},
    }


def report_ratios(res, out=None):
    out = out or sys.stdout
    c = res["config"]
    med = res["median_ms"]
    print(f"{c['n']:,} x {c['d']}, {c['optimizer']}, {c['threads']} threads, {c['rounds']} interleaved rounds, "
          f"default batch {c['default_batch']}", file=out)
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *res["load_before"], *res["load_after"]), file=out)
    all_core = ", ".join(f"{key[len('floor ['):-1]} loop {v:.1f} ms" for key, v in med.items()
                         if key.startswith("floor ["))
    print(f"reads of X: all cores ({all_core}), 1 thread {med['floor 1t']:.1f} ms, float32 all cores "
          f"{floor_of(med, 'floor f32'):.1f} ms, numpy X.sum() {med['numpy X.sum']:.1f} ms (medians); floor = the "
          "fastest read of each round", file=out)
    print(f"  {'ratio (median of per-round ratios)':38s} {'median':>7s} {'min':>7s} {'max':>7s}  goal", file=out)
    for name, vals in res["ratios"].items():
        goal = next((g for key, g in RATIO_GOALS.items() if name.endswith(key)), None)
        verdict = "" if goal is None else (f"<= {goal:.2f} " + ("met" if statistics.median(vals) <= goal else
                                                                 "NOT met"))
        print(f"  {name:38s} {statistics.median(vals):7.3f} {min(vals):7.3f} {max(vals):7.3f}  {verdict}", file=out)
    print("  epoch times (median ms):", file=out)
    for name, v in med.items():
        if not name.startswith(("floor", "numpy")):
            print(f"    {name:30s} {v:8.2f}", file=out)
    if statistics.median(res["ratios"]["all-core read/numpy X.sum"]) > 1.0:
        print("NOTE: the all-core read was slower than NumPy's X.sum() (a busy memory bus); the floor is then "
              "the faster read", file=out)


# ----------------------------------------------------------------------------------------------------------
# --breakdown: where an epoch's time goes above the memory floor, measured with the product's kernels
#
# Every round times, in the same order: the all-core and one-thread reads of X (the faster of Numba's and the
# native C loop), then Adam epochs of the chosen backend:
# * one batch of all n rows, 1 and T threads: the fused row loop streaming X with no per-batch cost at all
#   (one update, one synchronization, each thread one contiguous part);
# * 1 thread, batch B/T, batches in order and shuffled: in order the row stream never breaks; shuffled it
#   restarts at a new place every B/T rows, as each of T threads' streams does at batch B. The difference
#   divided by the number of batches is what one restart of a stream costs;
# * T threads, batch B, in order and shuffled: the real epoch (shuffled is what a fit runs).
# Printed: medians over rounds of each time divided by the round's all-core floor, and the derived costs in
# microseconds. What the parts show on the 2-core VM is in docs/design.md ("Where the time goes").


def breakdown_epoch(X, Y, batch, n_threads, shuffle, backend):
    return fastgd_epoch(X, Y, OPTIMIZERS["adam"](lr=1e-3), batch, n_threads, backend=backend, shuffle=shuffle)


def measure_breakdown(n, d, rounds, backend, batches=(256, 4096), threads=2):
    X, y, _, _ = make_regression(n, d, random_state=0)
    Y = _engine.targets_2d(y)
    reads = {**floor_reads(X, threads, "read"), **floor_reads(X, 1, "read 1t")}
    fns = dict(reads)
    fns["one batch, 1 thread"] = breakdown_epoch(X, Y, n, 1, False, backend)
    fns[f"one batch, {threads} threads"] = breakdown_epoch(X, Y, n, threads, False, backend)
    for b in batches:
        half = max(b // threads, 1)
        fns[f"1 thread, B={half}, in order"] = breakdown_epoch(X, Y, half, 1, False, backend)
        fns[f"1 thread, B={half}, shuffled"] = breakdown_epoch(X, Y, half, 1, True, backend)
        fns[f"{threads} threads, B={b}, in order"] = breakdown_epoch(X, Y, b, threads, False, backend)
        fns[f"{threads} threads, B={b}, shuffled"] = breakdown_epoch(X, Y, b, threads, True, backend)
    for fn in fns.values():  # compile or load, touch every page
        fn()
    round_times = timed_rounds(fns, rounds)
    times = {name: [t[name] for t in round_times] for name in fns}
    floors = [floor_of(t, "read") for t in round_times]
    floors1 = [floor_of(t, "read 1t") for t in round_times]
    ratio = {name: statistics.median(t / f for t, f in zip(ts, floors)) for name, ts in times.items()
             if not name.startswith("read")}
    med = {name: statistics.median(ts) for name, ts in times.items()}
    derived = {
        "floor ms": statistics.median(floors) * 1e3,
        "1-thread read ms": statistics.median(floors1) * 1e3,
        "row loop / read, 1 thread": statistics.median(
            t / f for t, f in zip(times["one batch, 1 thread"], floors1)),
        f"row loop / read, {threads} threads": ratio[f"one batch, {threads} threads"],
    }
    for b in batches:
        half = max(b // threads, 1)
        nb = -(-n // half)
        derived[f"us per stream restart (every {half} rows)"] = (
            med[f"1 thread, B={half}, shuffled"] - med[f"1 thread, B={half}, in order"]) / nb * 1e6
        nb2 = -(-n // b)
        derived[f"us per batch above one batch, B={b} shuffled, {threads} threads"] = (
            med[f"{threads} threads, B={b}, shuffled"] - med[f"one batch, {threads} threads"]) / nb2 * 1e6
    return {"config": {"n": n, "d": d, "rounds": rounds, "backend": backend, "threads": threads},
            "ratios": ratio, "derived": derived}


def report_breakdown(res, out=None):
    out = out or sys.stdout
    c = res["config"]
    print(f"{c['n']:,} x {c['d']} float64, Adam, backend {c['backend']}, {c['threads']} threads, {c['rounds']} "
          "interleaved rounds; times / the round's all-core read of X (median)", file=out)
    for name, r in res["ratios"].items():
        print(f"  {name:40s} {r:7.3f}", file=out)
    for name, v in res["derived"].items():
        print(f"  {name:60s} {v:8.3f}", file=out)


# ----------------------------------------------------------------------------------------------------------


def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for name in ("scipy", "sklearn", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    from fastgd import __version__
    versions["fastgd"] = __version__
    return {"cpu": cpu, "cores": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": _threading_layer(), "versions": versions}


def _threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return "not initialized"


def run(n=1_000_000, d=100, batch=256, repeat=5, threads=None, optimizers=None, scaling_ns=None,
        scaling_ds=(10, 100, 1000), scaling_n_for_d=None, torch=True, memory=True, cold=True, max_epochs=50,
        log=print):
    """Measure everything; returns a JSON-serializable dict (schema ``SCHEMA_VERSION``)."""
    threads = threads or numba.config.NUMBA_NUM_THREADS
    optimizers = list(optimizers or OPTIMIZERS)
    backend = "native" if _engine.native_available() else "numba"  # what backend="auto" runs
    log(f"full_bench: {n:,} x {d}, batch {batch}, {threads} threads, backend {backend}, repeat {repeat}")
    X, y, _, _ = make_regression(n, d, random_state=0)
    X32 = X.astype(np.float32)
    Y = y[:, None]
    adam = OPTIMIZERS["adam"](lr=1e-3)
    backends = [backend] + (["numba"] if backend != "numba" else [])
    warm_up(X, Y, adam, batch, threads, backends)
    warm_up(X32, Y, adam, batch, threads, backends)
    floors = {"floor: read X once (all cores)": threads, "floor: read X once (1 thread)": 1}
    fns = {}
    for label, n_threads in floors.items():  # each floor is the faster of the Numba and the native C read
        fns.update(floor_reads(X, n_threads, label))
    reads = set(fns)
    fns["numpy X.sum() (1 thread)"] = X.sum
    for name in optimizers:
        opt = OPTIMIZERS[name](lr=1e-3 if name != "adagrad" else 1e-2)
        for label, data in (("float64", X), ("float32", X32)):
            fns[f"fastgd {name} {label}, {threads} threads"] = fastgd_epoch(data, Y, opt, batch, threads,
                                                                           backend=backend)
            fns[f"fastgd {name} {label}, 1 thread"] = fastgd_epoch(data, Y, opt, batch, 1, backend=backend)
    if backend != "numba":  # the other backend, for comparison
        for label, data in (("float64", X), ("float32", X32)):
            fns[f"fastgd adam {label}, {threads} threads (numba)"] = fastgd_epoch(data, Y, adam, batch, threads)
            fns[f"fastgd adam {label}, 1 thread (numba)"] = fastgd_epoch(data, Y, adam, batch, 1)
    fns["scikit-learn SGDRegressor, 1 epoch"] = sgdregressor_epoch(X, y)
    torch_fn = torch_epoch(X, y, batch, threads) if torch else None
    if torch_fn is not None:
        torch_fn()  # warm up
        fns["torch nn.Linear + Adam, 1 epoch"] = torch_fn
    log("timing epochs (interleaved rounds) ...")
    times = interleaved(fns, repeat)
    times = {**{label: floor_of(times, label) for label in floors},
             **{key: t for key, t in times.items() if key not in reads}}
    times["numpy reference epoch (Adam, float64)"] = best_of(reference_epoch(X, Y, adam, batch), max(1, repeat // 3))
    log("closed forms ...")
    closed, optimum = closed_forms(X, y)
    times.update(closed)
    log("time to accuracy ...")
    tta, curves = time_to_accuracy(X, y, optimum, batch, threads, max_epochs, backend)
    for label, r in tta.items():
        times[f"{label}: time to 1 % of optimum" + ("" if r["reached"] else " (not reached)")] = r["seconds"]
    fastest = min((r["seconds"] if r["reached"] else float("inf"), label)
                  for label, r in tta.items() if label.startswith("fastgd"))
    del X32
    extra = cold_times = None
    if memory or cold:
        log("memory and cold start (separate processes) ...")
    if memory:
        extra = extra_memory_mb(n, d)
    if cold:
        cold_times = cold_start()
    log("scaling ...")
    ns = scaling_ns or [10_000, 100_000, 1_000_000, 10_000_000]
    sc = scaling(d, ns, scaling_ds, scaling_n_for_d or max(1000, n // 10), threads, max(1, repeat // 2), backend)

    fl = times["floor: read X once (all cores)"]
    epoch = times[f"fastgd adam float64, {threads} threads"]
    ratios = {
        "epoch_over_floor": epoch / fl,
        "reference_over_epoch": times["numpy reference epoch (Adam, float64)"] / epoch,
        "sgdregressor_over_epoch": times["scikit-learn SGDRegressor, 1 epoch"] / epoch,
        "torch_over_epoch": (times["torch nn.Linear + Adam, 1 epoch"] / epoch
                             if "torch nn.Linear + Adam, 1 epoch" in times else None),
        "time_to_1pct_over_ridge": fastest[0] / times["Ridge(solver='cholesky')"],
        "float32_over_float64": times[f"fastgd adam float32, {threads} threads"] / epoch,
        "all_threads_over_1_thread": epoch / times["fastgd adam float64, 1 thread"],
        "floor_over_numpy_sum": fl / times["numpy X.sum() (1 thread)"],
        "extra_memory_mb": extra,
    }
    goals = []
    for key, text, goal, sense in GOALS:
        value = ratios[key]
        met = None if value is None else (value <= goal if sense == "<=" else value >= goal)
        goals.append({"key": key, "description": text, "goal": f"{sense} {goal:g}", "value": value, "met": met})
    return {
        "schema": SCHEMA_VERSION,
        "machine": machine_info(),
        "config": {"n": n, "d": d, "batch": batch, "repeat": repeat, "threads": threads, "backend": backend,
                   "optimizers": optimizers},
        "rows": [{"name": k, "seconds": v, "per_floor": v / fl} for k, v in times.items()],
        "ratios": ratios,
        "goals": goals,
        "time_to_accuracy": tta,
        "curves": curves,
        "cold_start": cold_times,
        "scaling": sc,
        "notes": [] if torch_fn is not None else ["torch is not installed: its row is skipped"],
    }


def to_markdown(res):
    m, c = res["machine"], res["config"]
    out = [f"full_bench — {c['n']:,} × {c['d']} float64, batch {c['batch']}, {c['threads']} threads, backend "
           f"{c['backend']}; "
           f"{m['cpu']}, {m['cores']} cores, Numba {m['versions']['numba']} ({m['threading_layer']}), "
           f"NumPy {m['versions']['numpy']}" + (f", scikit-learn {m['versions']['sklearn']}"
                                                 if "sklearn" in m["versions"] else ""), "",
           "| method | time | ÷ floor |", "|---|---:|---:|"]
    for row in res["rows"]:
        out.append(f"| {row['name']} | {fmt_seconds(row['seconds'])} | {row['per_floor']:.2f} |")
    out += ["", "| goal | measured | target | met |", "|---|---:|---:|:-:|"]
    for g in res["goals"]:
        value = "n/a" if g["value"] is None else f"{g['value']:.3g}"
        met = "n/a" if g["met"] is None else ("yes" if g["met"] else "**no**")
        out.append(f"| {g['description']} | {value} | {g['goal']} | {met} |")
    tta = res["time_to_accuracy"]
    # one list item per line: plain lines would run into one paragraph on the page
    out += ["", "- Time to a training MSE within 1 % of the least-squares optimum: " + "; ".join(
        f"{k} {fmt_seconds(v['seconds'])} in {v['epochs']} epoch(s)" + ("" if v["reached"] else " (not reached)")
        for k, v in tta.items())]
    for label, cs in (res["cold_start"] or {}).items():
        out.append(f"- Cold process, backend {label}: import fastgd {cs['import_s']:.2f} s + first small fit "
                   f"{cs['first_fit_s']:.2f} s (whole process {cs['process_s']:.2f} s).")
    sc = res["scaling"]
    out.append("- Per-row epoch cost by n: " + ", ".join(
        f"{r['n']:,} ({r['dtype']}) {r['ns_per_row']:.1f} ns" for r in sc["by_n"]))
    out.append("- By d: " + ", ".join(f"d={r['d']} {r['ns_per_row']:.1f} ns/row ({r['ns_per_element']:.2f} ns/element)"
                                    for r in sc["by_d"]))
    out += [f"- Note: {note}" for note in res["notes"]]
    return "\n".join(out) + "\n"


def plot(res, outdir):
    """Two PNGs: time per epoch by method, and training MSE against wall-clock time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    paths = []
    rows = [r for r in res["rows"] if "1 %" not in r["name"]]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.5))
    ax.barh([r["name"] for r in rows], [r["seconds"] * 1e3 for r in rows],
            color=["tab:orange" if r["name"].startswith("fastgd") else "tab:gray" for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title(f"One epoch / one fit, {res['config']['n']:,} x {res['config']['d']}")
    ax.invert_yaxis()
    fig.tight_layout()
    paths.append(os.path.join(outdir, "bench_times.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in res["curves"].items():
        if curve:
            t, mse = zip(*curve)
            ax.plot(t, mse, marker="o", label=name)
    opt = min(c[1] for curve in res["curves"].values() for c in curve) if any(res["curves"].values()) else 1
    ax.axhline(opt, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training seconds")
    ax.set_ylabel("training MSE")
    ax.set_title("Loss against wall-clock time")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(outdir, "bench_loss_vs_time.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def add_arguments(p):
    section = p.add_mutually_exclusive_group()
    section.add_argument("--ratios", action="store_true",
                         help="instead of the full table: the epoch goals (epoch / floor per round, both backends)")
    section.add_argument("--breakdown", action="store_true",
                         help="instead of the full table: where an epoch's time goes above the floor")
    p.add_argument("--rounds", type=int, help="--ratios / --breakdown: interleaved rounds (default 7 / 5)")
    p.add_argument("--backends", nargs="+", default=None, choices=("native", "numba"),
                   help="--ratios / --breakdown: backends to time (default: native when built and numba / the "
                        "first of them)")
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS), help="--ratios: the optimizer")
    p.add_argument("--reference", action="store_true",
                   help="--ratios: also time the plain-NumPy reference epoch (reference / epoch, goal >= 2.5)")
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    p.add_argument("--n", type=int, help="rows (default 1,000,000; 100,000 with --quick)")
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, help="rounds per timing (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-torch", action="store_true", help="skip the torch row even if torch is installed")
    p.add_argument("--scaling-n", type=int, nargs="+", help="row counts for the scaling rows (the last is float32)")
    p.add_argument("--scaling-d", type=int, nargs="+", help="feature counts for the scaling rows")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--markdown", help="write the table as Markdown to this file")
    p.add_argument("--plots", help="write PNG plots to this directory")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold-start subprocesses (~25 s)")


def section_from_args(p, a):
    """Run the --ratios or --breakdown section; returns its result."""
    rounds = a.rounds or (7 if a.ratios else 5)
    if rounds < 1:
        p.error(f"--rounds must be >= 1, got {rounds}")
    n = a.n or 1_000_000
    threads = a.threads or numba.config.NUMBA_NUM_THREADS
    backends = a.backends or (["native", "numba"] if _engine.native_available() else ["numba"])
    if a.ratios:
        res = measure_ratios(n, a.d, rounds, threads, backends, a.optimizer, a.reference)
        report_ratios(res)
    else:
        res = measure_breakdown(n, a.d, rounds, backends[0], threads=threads)
        report_breakdown(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main_from_args(a):
    quick = a.quick
    n = a.n or (100_000 if quick else 1_000_000)
    res = run(n=n, d=a.d, batch=a.batch, repeat=a.repeat or (3 if quick else 5), threads=a.threads,
              torch=not a.no_torch, memory=not a.no_memory, cold=not a.no_cold_start,
              scaling_ns=a.scaling_n or ([10_000, 100_000, 1_000_000] if quick else None),
              scaling_ds=a.scaling_d or ((10, 100) if quick else (10, 100, 1000)), max_epochs=20 if quick else 50)
    md = to_markdown(res)
    print()
    print(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    if a.plots:
        for path in plot(res, a.plots):
            print(f"wrote {path}")
    return res


def main(argv=None):
    p = argparse.ArgumentParser(prog="full_bench.py", description=textwrap.dedent(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    a = p.parse_args(argv)
    if a.ratios or a.breakdown:
        section_from_args(p, a)
    else:
        main_from_args(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
