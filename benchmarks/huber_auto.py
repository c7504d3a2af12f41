"""penalty="auto" with loss="huber" (and the other losses) on sparse wide and dense narrow data: held-out R².

Data (made here, no downloads), each with t(3) and with gaussian noise, y times 1, 1e10 and 1e-10:
  sparse300: 300 training rows (2,000 held out) x 300 columns, 5 % U(0, 1) non-zeros, w ~ N(0, 1), noise 0.3·t(3)
             or 0.3·N(0, 1);
  zipf:      1,000 training rows (2,000 held out) x 5,000 binary columns, 30 Zipf-popular non-zeros a row,
             w ~ N(0, 1) on a tenth of the columns, noise 0.5·t(3) or 0.5·N(0, 1);
  dense narrow (``--dense``): sklearn's diabetes (half held out) and 10,000 x 20 N(0, 1) (as arrays and as CSR).
Prints, per data set, fastgd's default fit (penalty="auto") with huber, quantile and epsilon_insensitive (its
alpha_, held-out R², passes over X where it chose the strength, warnings), the best fixed huber strength
(``--grid``: an l2 strength sweep, the oracle), SGDRegressor(loss="huber"), HuberRegressor and RidgeCV.

    python benchmarks/huber_auto.py [--sets sparse300 zipf] [--scales 1 1e10 1e-10] [--grid] [--dense]
"""

import argparse
import re
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import HuberRegressor, RidgeCV, SGDRegressor
from sklearn.metrics import r2_score

from fastgd import LinearRegressor


def noise(rng, kind, n):
    return rng.standard_t(3, size=n) if kind == "t3" else rng.standard_normal(n)


def sparse300(kind, seed=0):
    rng = np.random.default_rng(seed)
    n, d = 2300, 300
    X = sp.random(n, d, density=0.05, random_state=seed + 1, format="csr")
    y = X @ rng.normal(size=d) + 0.3 * noise(rng, kind, n)
    return X[:300], y[:300], X[300:], y[300:]


def zipf(kind, seed=0):
    rng = np.random.default_rng(seed)
    n, d, nnz = 3000, 5000, 30
    p = 1.0 / np.arange(1, d + 1) ** 1.1
    p /= p.sum()
    cols = rng.permutation(d)[rng.choice(d, size=(n, nnz), p=p)]
    X = sp.csr_matrix((np.ones(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1.0
    w = np.zeros(d)
    hot = rng.choice(d, d // 10, replace=False)
    w[hot] = rng.standard_normal(hot.size)
    y = X @ w + 3.0 + 0.5 * noise(rng, kind, n)
    return X[:1000], y[:1000], X[1000:], y[1000:]


def diabetes(kind, seed=0):
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:221], idx[221:]
    return X[tr], y[tr], X[te], y[te]


def dense20k(kind, seed=0):
    rng = np.random.default_rng(seed)
    n, d = 12000, 20
    X = rng.standard_normal((n, d))
    y = X @ rng.normal(size=d) + noise(rng, kind, n)
    return X[:10000], y[:10000], X[10000:], y[10000:]


def fit(est, X, y, Xt, yt):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        est.fit(X, y)
        sec = time.perf_counter() - t
    return r2_score(yt, est.predict(Xt)), sec, [str(w.message)[:90] for w in caught]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", default=["sparse300", "zipf"])
    ap.add_argument("--noise", nargs="+", default=["t3", "gauss"])
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 1e10, 1e-10])
    ap.add_argument("--losses", nargs="+", default=["huber", "quantile", "epsilon_insensitive"])
    ap.add_argument("--grid", action="store_true", help="the best fixed huber strength (l2 sweep)")
    ap.add_argument("--others", action="store_true", help="SGDRegressor, HuberRegressor, RidgeCV")
    ap.add_argument("--csr", action="store_true", help="dense sets as CSR too")
    a = ap.parse_args(argv)
    makers = {"sparse300": sparse300, "zipf": zipf, "diabetes": diabetes, "dense20k": dense20k}
    for name in a.sets:
        for kind in a.noise:
            X, y, Xt, yt = makers[name](kind)
            forms = [("", X, Xt)] + ([(" csr", sp.csr_matrix(X), sp.csr_matrix(Xt))] if a.csr and not sp.issparse(X)
                                     else [])
            for scale in a.scales:
                for form, X1, Xt1 in forms:
                    tag = f"{name}{form} {kind} y*{scale:g}"
                    for loss in a.losses:
                        est = LinearRegressor(loss=loss, random_state=0)
                        r2, sec, w = fit(est, X1, y * scale, Xt1, yt * scale)
                        passes = re.findall(r"\d+ passes over X", est.stop_reason_)
                        print(f"{tag:28s} {loss:20s} auto: alpha_={est.alpha_:.3g} R2={r2:.3f} n_iter={est.n_iter_} "
                              f"{sec:.2f}s {passes} warn={w}", flush=True)
                    if a.grid:
                        best = []
                        for alpha in 10.0 ** np.arange(-6, 0.5, 0.5):
                            est = LinearRegressor(loss="huber", penalty="l2", alpha=alpha, random_state=0)
                            r2 = fit(est, X1, y * scale, Xt1, yt * scale)[0]
                            best.append((r2, alpha))
                        r2, alpha = max(best)
                        print(f"{tag:28s} huber best fixed alpha={alpha:.3g} R2={r2:.3f} "
                              f"(grid: {' '.join(f'{r:.2f}' for r, _ in best)})", flush=True)
                    if a.others:
                        for label, est in (("SGDRegressor(huber)", SGDRegressor(loss="huber", random_state=0)),
                                           ("HuberRegressor", HuberRegressor(max_iter=1000)),
                                           ("RidgeCV", RidgeCV(alphas=np.logspace(-3, 3, 13)))):
                            try:
                                r2 = fit(est, X1, y * scale, Xt1, yt * scale)[0]
                            except Exception as exc:  # noqa: BLE001
                                r2 = float("nan")
                                label += f" ({type(exc).__name__})"
                            print(f"{tag:28s} {label:20s} R2={r2:.3f}", flush=True)


if __name__ == "__main__":
    main()
