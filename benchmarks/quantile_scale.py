"""Quantile regression at scale: the default ``LinearRegressor(loss="quantile")`` fit next to the best pinball
loss computable exactly, and next to scikit-learn's exact ``QuantileRegressor(solver="highs")``.

    python benchmarks/quantile_scale.py [--n 1000000] [--d 100] [--quantile 0.9]
    python benchmarks/quantile_scale.py --small        # a tiny run (seconds): the table's shape only

Data: X standard normal (float64), y = X·w + (1 + |x_0|)·e with e a centred exponential (skewed, and its
spread growing with |x_0|), so the quantiles differ from the mean and from each other.

The table, all pinball losses on the whole data set:

* fastgd default: ``LinearRegressor(loss="quantile", quantile=q)``, all other settings at their defaults;
* fastgd long run: the same from the default fit (warm start) with ``tol`` 1000 times smaller and more
  rounds without progress before stopping, so its rate decays further (the best a long run reaches);
* exact LP on a subsample: ``QuantileRegressor(alpha=0, solver="highs")`` on ``--sub`` random rows, its model
  scored on all rows (the exact optimum of a subsample: an upper bound on the full data's optimum);
* the certificate's program's model: the model of the small program below (the objective with every row but
  the re-solved ones linearized at the default fit; HiGHS' multipliers), scored on all rows;
* "best known" is the smallest of these; each row gives its relative excess over it;
* certified lower bound: ``fastgd._shortfall.dual_bound`` of the default fit, a point of the linear program's
  dual (the fit's subgradient, with the rows nearest the kink re-solved by HiGHS to keep it feasible), whose
  value no model's pinball loss can go below (weak duality); its seconds are the certificate's alone. The
  exact optimum of the whole data set lies between it and "best known". The fits' certified gaps (pinball
  loss ÷ the bound − 1) follow the table: each is at least that fit's relative excess over that optimum;
* exact optimum, from above and from below: certificates iterated from the default fit, each program's model
  certified in turn (an active-set method over the rows nearest the kink), until the best model and the best
  bound are within ``--optimum-gap``: the optimum of the whole data set, bracketed; "÷ best known − 1" is then
  each fit's excess over it, to that precision.

Then the time of ``QuantileRegressor(solver="highs")`` on the first n rows for n = ``--highs-start``,
doubled while a fit takes under ``--highs-stop`` seconds and the total stays under ``--highs-budget``; the
n it would finish in 5 minutes is extrapolated from the last two sizes (stated as such), next to fastgd's
time for the whole data set.
"""

import argparse
import copy
import math
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import QuantileRegressor

from fastgd import LinearRegressor, reference
from fastgd._shortfall import dual_bound, objective_of


def make_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.uniform(-1.0, 1.0, d)
    y = X @ w + (1.0 + np.abs(X[:, 0])) * (rng.exponential(1.0, n) - 1.0)
    return X, y


def pinball(model, X, y, q, rows=1 << 18):
    """Mean pinball loss of ``model`` on (X, y), predicted in slices (no n-sized temporaries but y's)."""
    total = 0.0
    for a in range(0, len(y), rows):
        r = model.predict(X[a:a + rows]) - y[a:a + rows]
        total += float(reference.loss_value(r, "quantile", q).sum())
    return total / len(y)


def timed(fn, cpu=None):
    """(fn(), wall seconds); with ``cpu`` a list, the process's CPU seconds are appended to it (on a shared
    machine the wall time of a one-thread solver also counts the time other processes held the core)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return out, time.perf_counter() - t0


def optimum(est, X, y, gap, rounds=10):
    """The exact optimum of the whole data set, bracketed: from the default fit, each certificate's program's
    model is certified in turn (an active-set method: the rows nearest the kink re-solved, the others held at
    their side) until the best model's objective is within ``gap`` (relative) of the best bound. Returns (best
    objective, best bound, certificates computed)."""
    model, top, bottom = copy.deepcopy(est), math.inf, -math.inf
    for r in range(1, rounds + 1):
        cert = dual_bound(model, X, y)
        top, bottom = min(top, cert.objective), max(bottom, cert.lower)
        if top <= bottom * (1 + gap):
            break
        model.coef_, model.intercept_ = cert.model[0, :-1].copy(), float(cert.model[0, -1])
    return top, bottom, r


def highs(X, y, q, n):
    return QuantileRegressor(quantile=q, alpha=0.0, solver="highs").fit(X[:n], y[:n])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--quantile", type=float, default=0.9)
    ap.add_argument("--sub", type=int, default=50_000, help="rows of the subsample solved exactly as an LP")
    ap.add_argument("--highs-start", type=int, default=10_000)
    ap.add_argument("--highs-stop", type=float, default=120.0, help="stop doubling after a fit this long (s)")
    ap.add_argument("--highs-budget", type=float, default=480.0, help="most seconds for all highs timings")
    ap.add_argument("--no-long", action="store_true", help="skip the long run")
    ap.add_argument("--optimum-gap", type=float, default=1e-7,
                    help="iterate certificates until the optimum is bracketed this closely (relative)")
    ap.add_argument("--small", action="store_true", help="a tiny run: n=4000, d=5, highs from 500 rows")
    args = ap.parse_args(argv)
    if args.small:
        args.n, args.d, args.sub, args.highs_start, args.highs_stop, args.highs_budget = 4000, 5, 1000, 500, 2.0, 5.0
    q = args.quantile
    X, y = make_data(args.n, args.d)
    print(f"quantile_scale: {args.n:,} x {args.d} float64, quantile {q}")

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est, t_fit = timed(lambda: LinearRegressor(loss="quantile", quantile=q, random_state=0).fit(X, y))
        rows.append(("fastgd default", pinball(est, X, y, q), t_fit, f"{est.n_iter_} epochs of {est.batch_size_}"))
        if not args.no_long:
            long = copy.deepcopy(est).set_params(warm_start=True, tol=est.tol / 1000, n_iter_no_change=5)
            long, t_long = timed(lambda: long.fit(X, y))
            rows.append(("fastgd long run (warm start, tol/1000)", pinball(long, X, y, q), t_fit + t_long,
                         f"{est.n_iter_} + {long.n_iter_} epochs"))
    rng = np.random.default_rng(1)
    sub = np.sort(rng.choice(args.n, min(args.sub, args.n), replace=False))
    lp, t_lp = timed(lambda: QuantileRegressor(quantile=q, alpha=0.0, solver="highs").fit(X[sub], y[sub]))
    rows.append((f"exact LP on {len(sub):,} random rows (highs)", pinball(lp, X, y, q), t_lp, "scored on all rows"))
    cert, t_cert = timed(lambda: dual_bound(est, X, y))
    t0 = time.perf_counter()
    program = float(objective_of(est, X, y, None, cert.model).sum())
    rows.append(("the certificate's program's model", program, time.perf_counter() - t0,
                 "scored on all rows (seconds: the scoring)"))
    (top, bottom, rounds), t_opt = timed(lambda: optimum(est, X, y, args.optimum_gap))
    rows.append(("exact optimum, from above (certificates iterated)", top, t_opt,
                 f"{rounds} certificates; certified within {top / bottom - 1:.1e} of the optimum"))
    best = min(r[1] for r in rows)
    rows.append(("certified lower bound (dual of the default fit)", cert.lower, t_cert,
                 f"{cert.free_rows:,} rows re-solved; constraint violation {cert.violation:.1e}"))
    rows.append(("exact optimum, from below (the last certificate)", bottom, t_opt, "the same run"))
    print(f"\n| model | pinball loss | ÷ best known − 1 | seconds | notes |\n|---|---:|---:|---:|---|")
    for name, loss, sec, note in rows:
        print(f"| {name} | {loss:.6g} | {loss / best - 1:.2e} | {sec:.2f} | {note} |")
    print("\nCertified relative gaps (pinball loss ÷ lower bound − 1, at least the excess over the optimum): "
          + "; ".join(f"{name} {loss / cert.lower - 1:.2e}" for name, loss, _, _ in rows[:-2]))

    print(f"\n| QuantileRegressor(solver='highs') rows | seconds | CPU seconds |\n|---:|---:|---:|")
    n, spent, last = args.highs_start, 0.0, []
    while n <= args.n:
        cpu = []
        _, sec = timed(lambda: highs(X, y, q, n), cpu)
        spent += sec
        last.append((n, sec))
        print(f"| {n:,} | {sec:.2f} | {cpu[0]:.2f} |")
        if sec > args.highs_stop or spent + 2.5 * sec > args.highs_budget or 2 * n > args.n:
            break
        n *= 2
    if len(last) >= 2 and last[-1][1] > last[-2][1] > 0:
        (n1, s1), (n2, s2) = last[-2:]
        power = math.log(s2 / s1) / math.log(n2 / n1)
        n5 = n2 * (300.0 / s2) ** (1.0 / power) if power > 0 else float("inf")
        print(f"\nExtrapolated (time ∝ n^{power:.2f} from the last two sizes): QuantileRegressor(solver='highs') "
              f"finishes about {n5:,.0f} rows in 5 minutes, and {args.n:,} rows in about "
              f"{s2 * (args.n / n2) ** power:,.0f} s; fastgd's default fit took {t_fit:.2f} s on all {args.n:,}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
