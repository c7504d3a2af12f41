"""``fastgd bench``: how fast fastgd is on this machine, next to scikit-learn and the hardware floor.

    fastgd bench [--quick] [--n 1000000] [--d 100] [--batch B] [--threads T] [--repeat R]
    python -m fastgd.bench ...

Prints one short table. Every figure is measured in this process on the same synthetic data (standardized
float64 features, a linear target with noise), with the backend a LinearRegressor uses by default ("auto":
the compiled native kernels when built, else Numba). Each row says what one timing covers:

* per pass: one read-only pass over X with all cores, the floor no method that reads X can beat;
* per epoch: one pass of mini-batch training over all rows (fastgd, scikit-learn's SGDRegressor, and
  torch.optim.Adam when torch is installed);
* per fit: a whole fit with each library's defaults, until its own stopping rule ends it;
* per solve: the exact least-squares solution by a direct solver (Ridge, Cholesky).

The fastgd fit and the solve alternate for ``--repeat`` rounds; the table shows the fastest of each and the
sentence their ratio (the same statistic), with the range of the ratio within a round; SGDRegressor's fit runs
once.

Epoch times are the minimum over interleaved rounds (each method once per round), so the ratios hold on a
busy machine even when absolute times move. The development benchmark (every
optimizer, the project's goals, JSON, Markdown and plots) is ``benchmarks/full_bench.py`` in the source tree.
"""

import argparse
import sys
import textwrap
import time
import warnings

import numba
import numpy as np

from . import _engine
from . import _kernels as K

# ----------------------------------------------------------------------------------------------------------
# timing helpers (also used by the development benchmarks under benchmarks/)


def interleaved(fns, repeat):
    """Minimum time of each function, timed in rounds (every function once per round), so that a burst of
    load from elsewhere on a shared machine hits all of them alike and the ratios stay meaningful."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


class Threads:
    """A callable that runs ``fn`` with Numba's thread count set to ``n``."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def __call__(self):
        with _engine.numba_threads(self.n):
            return self.fn()


def fastgd_epoch(X, Y, opt, batch, n_threads, path=K.PATH_AUTO, backend="numba", shuffle=False):
    """A callable running one fastgd epoch (batches in order, or in one fixed shuffled order) on fresh state
    each time it is built."""
    ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1])
    order = _engine.batch_order(X.shape[0], batch, shuffle, np.random.default_rng(0))
    hp = opt.pack()
    return lambda: _engine.run_epoch(X, Y, ts, opt.code, hp, batch, order, n_threads=n_threads, path=path,
                                     backend=backend)


def floor(X, n_threads):
    """A callable making a read-only pass over X (``fastgd._kernels.read_floor``) on n threads."""
    return Threads(lambda: K.read_floor(X), n_threads)


def floor_reads(X, n_threads, label):
    """Timing entries for the floor under ``label``: ``"<label> [numba]"`` and, when the extension is built,
    ``"<label> [native]"`` (a C loop), each a read-only pass over X on n threads. The two loops differ by a few
    %; ``floor_of`` takes the faster, timed in the same rounds."""
    reads = {f"{label} [numba]": floor(X, n_threads)}
    if _engine.native_available():
        from ._native import read_floor
        reads[f"{label} [native]"] = lambda: read_floor(X, n_threads)
    return reads


def floor_of(times, label):
    """The fastest of the entries of ``times`` that ``floor_reads(..., label)`` made."""
    return min(t for key, t in times.items() if isinstance(key, str) and key.startswith(label + " ["))


def sgdregressor_epoch(X, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            SGDRegressor(max_iter=1, tol=None, shuffle=False, random_state=0).fit(X, y)
    return run


def torch_epoch(X, y, batch, n_threads):
    """One nn.Linear + torch.optim.Adam epoch over zero-copy views of X, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(n_threads)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=X.dtype)).reshape(-1, 1)
    model = torch.nn.Linear(X.shape[1], 1, dtype=Xt.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()

    def run():
        for start in range(0, X.shape[0], batch):
            opt.zero_grad()
            loss = loss_fn(model(Xt[start:start + batch]), yt[start:start + batch])
            loss.backward()
            opt.step()
    return run


def fmt_seconds(s):
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


# ----------------------------------------------------------------------------------------------------------
# the short table


def default_batch_size(n=1_000_000, d=100):
    """The batch size LinearRegressor's default (batch_size="auto") picks for dense n x d data: the table
    times what a user gets without tuning."""
    from ._planning import auto_batch_size

    return auto_batch_size(n, d, 1, d)


def _timed_fit(est, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t0
    return seconds, float(np.mean((est.predict(X) - y) ** 2))


def run(n=1_000_000, d=100, batch=None, threads=None, repeat=5, torch=True, log=print):
    """Measure the short table. Returns ``{"header", "rows": [(per, what, seconds)], "sentences", "ratios"}``."""
    from sklearn.linear_model import Ridge, SGDRegressor

    from .estimator import LinearRegressor
    from .datasets import make_regression
    from .optimizers import OPTIMIZERS

    batch = batch or default_batch_size(n, d)
    threads = threads or numba.config.NUMBA_NUM_THREADS
    backend = "native" if _engine.native_available() else "numba"
    X, y, _, _ = make_regression(n, d, random_state=0)
    X32 = X.astype(np.float32)
    Y = y[:, None]
    log(f"measuring (about {_estimate(n, d, repeat):.0f} s) ...")
    adam = OPTIMIZERS["adam"](lr=1e-3)
    sgd = OPTIMIZERS["sgd"](lr=1e-3)
    small = min(n, 8 * batch + 1)  # compile (Numba) or load every kernel outside the timings
    for data in (X, X32):
        fastgd_epoch(data[:small], Y[:small], adam, batch, threads, backend=backend)()
        floor(data[:small], threads)()
    LinearRegressor(max_iter=1, tol=None, batch_size=batch).fit(X[:small], y[:small])

    T = f"{threads} thread{'s' if threads > 1 else ''}"
    FLOOR = f"read X once with {T}: the memory-bandwidth floor"
    reads = floor_reads(X, threads, "read")
    other_batches = [b for b in (256, 4096) if b != batch and b < n]
    epochs = {
        **reads,
        ("per epoch", f"fastgd Adam, {T}"): fastgd_epoch(X, Y, adam, batch, threads, backend=backend),
        **{("per epoch", f"fastgd Adam, batch {b}, {T}"): fastgd_epoch(X, Y, adam, b, threads, backend=backend)
           for b in other_batches},
        ("per epoch", "fastgd Adam, 1 thread"): fastgd_epoch(X, Y, adam, batch, 1, backend=backend),
        ("per epoch", f"fastgd Adam, float32 copy of X, {T}"): fastgd_epoch(X32, Y, adam, batch, threads,
                                                                           backend=backend),
        ("per epoch", f"fastgd plain SGD, {T}"): fastgd_epoch(X, Y, sgd, batch, threads, backend=backend),
        ("per epoch", "scikit-learn SGDRegressor (one row per step, 1 thread)"): sgdregressor_epoch(X, y),
    }
    torch_fn = torch_epoch(X, y, batch, threads) if torch else None
    if torch_fn is not None:
        torch_fn()  # warm up
        epochs[("per epoch", f"PyTorch nn.Linear + torch.optim.Adam, {T}")] = torch_fn
    times = interleaved(epochs, repeat)
    times = {("per pass", FLOOR): floor_of(times, "read"),  # the faster read of X in the same rounds
             **{key: t for key, t in times.items() if key not in reads}}
    del X32

    # the whole fit and the closed form in interleaved rounds too: single cold timings swing their ratio
    # several-fold on a shared machine; the fastest of each is reported (as the epochs'), with the range of the
    # ratio within a round
    fit_ratios, ours_times, ridge_times = [], [], []
    for _ in range(repeat):
        ridge_s, optimum = _timed_fit(Ridge(alpha=1e-8, solver="cholesky"), X, y)
        ours = LinearRegressor(random_state=0)
        ours_s, ours_mse = _timed_fit(ours, X, y)
        ridge_times.append(ridge_s)
        ours_times.append(ours_s)
        fit_ratios.append(ours_s / ridge_s)
    ridge_s, ours_s = min(ridge_times), min(ours_times)
    theirs = SGDRegressor(random_state=0)
    theirs_s, theirs_mse = _timed_fit(theirs, X, y)
    fits = {
        ("per fit", f"fastgd LinearRegressor(), defaults: {ours.n_iter_} epochs, MSE {ours_mse / optimum:.4f} x "
                    "optimum"): ours_s,
        ("per fit", f"scikit-learn SGDRegressor(), defaults: {theirs.n_iter_} epochs, MSE "
                    f"{theirs_mse / optimum:.4f} x optimum, one round"): theirs_s,
        ("per solve", "scikit-learn Ridge(solver='cholesky'): the exact optimum"): ridge_s,
    }
    rows = [(per, what, s) for (per, what), s in {**times, **fits}.items()]

    t = {what: s for _, what, s in rows}
    epoch = t[f"fastgd Adam, {T}"]
    ratios = {
        "epoch_over_floor": epoch / t[FLOOR],
        **{f"epoch_over_floor_batch_{b}": t[f"fastgd Adam, batch {b}, {T}"] / t[FLOOR] for b in other_batches},
        "sgdregressor_over_epoch": t["scikit-learn SGDRegressor (one row per step, 1 thread)"] / epoch,
        "one_thread_over_all": t["fastgd Adam, 1 thread"] / epoch,
        "float64_over_float32": epoch / t[f"fastgd Adam, float32 copy of X, {T}"],
        "fit_over_ridge": ours_s / ridge_s,  # the table's two times
        "fit_over_ridge_min": min(fit_ratios),
        "fit_over_ridge_max": max(fit_ratios),
        "fit_mse_over_optimum": ours_mse / optimum,
    }
    sentences = [
        f"A fastgd epoch takes {ratios['epoch_over_floor']:.2f}x the time of merely reading X once "
        "(1.00 is the limit for any method that reads X)" + "".join(
            f"; at batch {b} {ratios[f'epoch_over_floor_batch_{b}']:.2f}x" for b in other_batches) + ".",
        f"scikit-learn's SGDRegressor takes {ratios['sgdregressor_over_epoch']:.1f}x as long as fastgd per epoch.",
        f"On 1 thread fastgd's epoch takes {ratios['one_thread_over_all']:.2f}x its time on {T}; on float64 "
        f"data {ratios['float64_over_float32']:.2f}x its time on float32 (which reads half the bytes).",
        f"A default fastgd fit takes {ratios['fit_over_ridge']:.2f}x the time of the exact Cholesky solve (the "
        f"fastest of {repeat} interleaved rounds of each, as in the table; within a round the ratio ranged "
        f"{min(fit_ratios):.2f}-{max(fit_ratios):.2f}x: it moves with the load on the machine and its memory "
        f"bandwidth) and ends "
        f"{100 * (ratios['fit_mse_over_optimum'] - 1):.3f} % above its training MSE.",
    ]
    if torch_fn is not None:
        ratios["torch_over_epoch"] = t[f"PyTorch nn.Linear + torch.optim.Adam, {T}"] / epoch
        sentences.insert(2, f"PyTorch (nn.Linear + Adam, same batches) takes {ratios['torch_over_epoch']:.1f}x "
                            "as long as fastgd per epoch.")
    header = (f"fastgd bench: {n:,} x {d} float64 ({n * d * 8 / 2**20:,.0f} MB), batch {batch}, {T}, "
              f"backend {backend}, times best of {repeat} rounds")
    return {"header": header, "rows": rows, "sentences": sentences, "ratios": ratios,
            "note": None if torch_fn is not None or not torch else "(PyTorch row skipped: torch is not installed)"}


def _estimate(n, d, repeat):
    """A rough duration in seconds on a 2-core machine (for the progress line only)."""
    return 2 + n * d * 1e-9 * (150 + 20 * repeat)


def format_table(res):
    """The table and the sentences as text, at most ~100 columns wide."""
    width = max(len(what) for _, what, _ in res["rows"])
    lines = [res["header"], "", f"{'':9s}  {'what is timed':{width}s}  {'time':>9s}"]
    for per, what, s in res["rows"]:
        lines.append(f"{per:9s}  {what:{width}s}  {fmt_seconds(s):>9s}")
    lines.append("")
    lines += [textwrap.fill(s, 100, initial_indent="* ", subsequent_indent="  ") for s in res["sentences"]]
    if res["note"]:
        lines.append(res["note"])
    lines.append("Every optimizer, the project's goals, JSON, Markdown and plots: python benchmarks/full_bench.py "
                 "(source tree).")
    return "\n".join(lines)


def add_arguments(p):
    p.add_argument("--quick", action="store_true", help="100,000 rows and 3 rounds: a few seconds")
    p.add_argument("--n", type=int, help="rows (default 1,000,000; 100,000 with --quick)")
    p.add_argument("--d", type=int, default=100, help="features (default 100)")
    p.add_argument("--batch", type=int, help="batch size of the epoch rows (default: LinearRegressor's)")
    p.add_argument("--threads", type=int, help="threads (default: all)")
    p.add_argument("--repeat", type=int, help="rounds per epoch timing (default 5; 3 with --quick)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch row even if torch is installed")


def main(argv=None):
    p = argparse.ArgumentParser(prog="fastgd bench", description=textwrap.dedent(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    a = p.parse_args(argv)
    for name in ("n", "d", "batch", "threads", "repeat"):
        value = getattr(a, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be a positive integer, got {value}")
    if a.threads is not None and a.threads > numba.config.NUMBA_NUM_THREADS:
        p.error(f"--threads must be at most {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS), got {a.threads}")
    n = a.n or (100_000 if a.quick else 1_000_000)
    if n <= a.d + 1:  # the table compares the fit's training MSE with the optimum's, which is then 0
        p.error(f"--n must exceed --d + 1 = {a.d + 1}, got {n}" + (" (the --quick default)" if a.n is None else "")
                + f": with at most d + 1 rows the least-squares optimum fits y exactly (training MSE 0), so the "
                f"fit's MSE has no ratio to it; use more rows (e.g. --n {max(1000, 10 * (a.d + 1))}) or fewer "
                f"features")
    res = run(n=n, d=a.d, batch=a.batch, threads=a.threads, repeat=a.repeat or (3 if a.quick else 5),
              torch=not a.no_torch)
    print(format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
