"""What the evaluation after each epoch costs: the loss-only pass (batches_loss) against the former evaluation
through batches_stats (the same loss, plus k·(d + 1) gradient sums thrown away), in one process, interleaved.

For sparse data (benchmarks/sparse_highdim.py's generator) and a dense matrix it prints the time of one
evaluation of all batches both ways, and the per-epoch time of a default fit with each (3-epoch fit minus
1-epoch fit, halved) next to SGDRegressor's on the sparse data.

    python benchmarks/eval_cost.py [--n 50000] [--dims 14 20] [--dense-n 200000] [--rounds 3]
"""

import argparse
import time

import numpy as np
from sklearn.linear_model import SGDRegressor

import fastgd
from fastgd import _training

from sparse_highdim import sparse_problem


def _old_objective(self, theta, batch_ids, penalized=True, raw=None, penalty=None):
    """The evaluation before the loss-only pass: batches_stats, its gradient sums discarded."""
    raw = np.ascontiguousarray(self.raw(theta) if raw is None else raw)
    if self.Y is not None and not np.any(raw[:, :-1]):
        sse, W = self._constant_sums(raw[:, -1], batch_ids)
    else:
        _, sse, W = self.kern.batches_stats(self.Xk, self.Y, _training._sw(self.sw), raw, self.batch_size,
                                            batch_ids, self.n_threads, loss=self.loss)
    penalty = self.penalty(raw) if penalized and penalty is None else penalty
    return (sse / W if W > 0 else np.nan) + (penalty if penalized else 0.0), W


NEW = _training.FitData.objective


def per_epoch(fit, rounds):
    """Median over rounds of (3-epoch fit - 1-epoch fit) / 2."""
    out = []
    for _ in range(rounds):
        t = []
        for epochs in (1, 3):
            t0 = time.perf_counter()
            fit(epochs)
            t.append(time.perf_counter() - t0)
        out.append((t[1] - t[0]) / 2)
    return float(np.median(out))


def fastgd_fit(X, y, batch_size):
    return lambda epochs: fastgd.LinearRegressor(max_iter=epochs, tol=None, random_state=0,
                                                 batch_size=batch_size).fit(X, y)


def eval_time(X, y, batch_size, rounds):
    """Seconds of one evaluation of every batch at a fitted model's parameters: (old, new)."""
    captured = {}
    real = _training.FitData.objective

    def spy(self, theta, ids, *args, **kwargs):
        captured["args"] = (self, theta.copy(), ids)
        return real(self, theta, ids, *args, **kwargs)
    _training.FitData.objective = spy
    try:
        fastgd.LinearRegressor(max_iter=1, tol=None, random_state=0, batch_size=batch_size).fit(X, y)
    finally:
        _training.FitData.objective = real
    problem, theta, _ = captured["args"]
    ids = np.arange(problem.n_batches, dtype=np.int64)
    res = {"old": [], "new": []}
    for _ in range(rounds):
        for name, fn in (("old", _old_objective), ("new", NEW)):
            t0 = time.perf_counter()
            fn(problem, theta, ids)
            res[name].append(time.perf_counter() - t0)
    a, b = _old_objective(problem, theta, ids)[0], NEW(problem, theta, ids)[0]
    return float(np.median(res["old"])), float(np.median(res["new"])), a, b


def compare(label, X, y, batch_size, rounds, sgd):
    old_e, new_e, a, b = eval_time(X, y, batch_size, rounds)
    times = {}
    for name, fn in (("old", _old_objective), ("new", NEW)):
        _training.FitData.objective = fn
        try:
            times[name] = per_epoch(fastgd_fit(X, y, batch_size), rounds)
        finally:
            _training.FitData.objective = NEW
    line = (f"{label:28s} B={str(batch_size):>4s}  eval old {old_e * 1e3:7.1f} ms new {new_e * 1e3:7.1f} ms  "
            f"epoch old {times['old'] * 1e3:7.1f} ms new {times['new'] * 1e3:7.1f} ms")
    if sgd is not None:
        line += f"  SGDRegressor {sgd * 1e3:6.1f} ms (new/SGD {times['new'] / sgd:5.2f}x)"
    print(line + ("" if a == b else f"  loss differs: {a!r} vs {b!r}"), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dims", type=int, nargs="+", default=[14, 20])
    ap.add_argument("--nnz", type=int, default=30)
    ap.add_argument("--batch-sizes", nargs="+", default=["auto"])
    ap.add_argument("--dense-n", type=int, default=200_000)
    ap.add_argument("--dense-d", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    for e in args.dims:
        X, y = sparse_problem(args.n, 2 ** e, args.nnz, "zipf")
        sgd = per_epoch(lambda epochs: SGDRegressor(max_iter=epochs, tol=None, random_state=0).fit(X, y),
                        args.rounds)
        for b in args.batch_sizes:
            compare(f"sparse n={args.n} d=2^{e}", X, y, b if b == "auto" else int(b), args.rounds, sgd)
    if args.dense_n:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((args.dense_n, args.dense_d))
        y = X @ rng.standard_normal(args.dense_d) + rng.standard_normal(args.dense_n)
        compare(f"dense {args.dense_n}x{args.dense_d}", X, y, "auto", args.rounds, None)


if __name__ == "__main__":
    main()
