"""partial_fit over passes: the user guide's streaming loop, next to SGDRegressor.partial_fit.

    python benchmarks/partial_fit_passes.py [--n 200000] [--d 20] [--chunks 10] [--passes 5]
    python benchmarks/partial_fit_passes.py --small
    python benchmarks/partial_fit_passes.py --after-fit
    python benchmarks/partial_fit_passes.py --mostly-zero

``--after-fit``: ``fit`` on part of the rows, then ``partial_fit`` on small chunks of the rest: held-out R² after
the fit and after each chunk, of the defaults, of ``average=False``, of ``SGDRegressor(average=True)`` fed the
same rows and of a refit on all rows seen so far; on hashed text (the standard library's docstrings, as
``benchmarks/sparse_defaults.py`` makes them: 570-row fit, 85-row chunks, the mean over 3 targets) and on
scikit-learn's diabetes data (198-row fit, 29-row chunks, the mean over 3 orders of the rows).

``--small``: a small stream (200 rows x 5 features, y = X w + 0.1 noise) in chunks of 1, 7 and 100 rows and
in chunks of 200 after a first chunk of one row; R² on the noise-free target after passes 1, 10 and 60 of
the defaults of both fastgd backends next to SGDRegressor.partial_fit (under a minute).

``--mostly-zero``: dense 2000 x 300 with 2 % non-zeros (``scipy.sparse.random(..., random_state=0)``, values
uniform in [0, 1)), y = X w + 0.1 noise, in 100-row chunks: training R² after passes 1, 5 and 20 of the defaults
on dense chunks (both backends), on the same chunks as CSR, of ``standardize=False`` and of
``SGDRegressor().partial_fit``, next to ``Ridge`` and ``fit`` on all rows; then the same shape with heavy-tailed
values (lognormal(0, 2), ``random_state=1``), whose failure the bound does not cure but partial_fit now warns
about (with ``optimizer='sgd'`` as the fix, also measured; under a minute).

Synthetic least squares (``fastgd.datasets.make_linear_data``, noise 1) is fed in ``--chunks`` contiguous
chunks per pass, ``--passes`` times, to each estimator's ``partial_fit``. After every pass it prints each
model's training R² shortfall from the least-squares optimum (``LinearRegression``): 0 is the exact answer.
Deterministic (fixed seeds): the figures repeat exactly on any machine up to floating-point rounding.
"""

import argparse
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression, SGDRegressor

import fastgd
from fastgd.datasets import make_linear_data
from fastgd.schedules import InverseScaling


def small(passes=(1, 10, 60)):
    rng = np.random.RandomState(3)
    X = rng.randn(200, 5)
    w = np.arange(1, 6.0)
    print("200 x 5 stream; R² (noise-free target) after passes " + ", ".join(map(str, passes)))
    for size, first in ((1, 1), (7, 7), (100, 100), (200, 1)):
        label = f"chunks of {size}" + (" after a first chunk of 1" if first != size else "")
        for name, model in (("fastgd numba", fastgd.LinearRegressor(backend="numba", random_state=0)),
                            ("fastgd native", fastgd.LinearRegressor(backend="native", random_state=0)),
                            ("SGDRegressor", SGDRegressor(random_state=0, penalty=None))):
            noise, out = np.random.RandomState(1), []
            for p in range(1, max(passes) + 1):
                i = 0
                while i < len(X):
                    s = first if (p == 1 and i == 0) else size
                    chunk = X[i:i + s]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model.partial_fit(chunk, chunk @ w + 0.1 * noise.randn(len(chunk)))
                    i += s
                if p in passes:
                    out.append(f"{model.score(X, X @ w):.5f}")
            print(f"{label:>40}  {name:>14}  " + "  ".join(out))


def mostly_zero(passes=(1, 5, 20), chunk=100):
    import scipy.sparse as sp
    from sklearn.linear_model import Ridge

    n, d = 2000, 300
    X = sp.random(n, d, density=0.02, random_state=0).toarray()
    rng = np.random.default_rng(0)
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    print(f"{n} x {d}, 2 % non-zeros, {chunk}-row chunks; training R² after passes " + ", ".join(map(str, passes)))
    for name, model, data in (
            ("dense, numba", fastgd.LinearRegressor(backend="numba", random_state=0), X),
            ("dense, native", fastgd.LinearRegressor(backend="native", random_state=0), X),
            ("CSR", fastgd.LinearRegressor(random_state=0), sp.csr_matrix(X)),
            ("dense, standardize=False", fastgd.LinearRegressor(standardize=False, random_state=0), X),
            ("SGDRegressor", SGDRegressor(random_state=0), X)):
        out, caught = [], 0
        for p in range(1, max(passes) + 1):
            for a in range(0, n, chunk):
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    model.partial_fit(data[a:a + chunk], y[a:a + chunk])
                caught += len(seen)
            if p in passes:
                out.append(f"{model.score(data, y):8.3f}")
        print(f"{name:>26}  " + "  ".join(out) + f"  ({caught} warnings)")
    print(f"{'Ridge() on all rows':>26}  {Ridge().fit(X, y).score(X, y):8.3f}")
    print(f"{'LinearRegressor().fit':>26}  {fastgd.LinearRegressor(random_state=0).fit(X, y).score(X, y):8.3f}")
    # heavy-tailed values (lognormal(0, 2)): a value far beyond those a column has shown, after it is trusted
    rng = np.random.default_rng(7)
    X = sp.random(n, d, density=0.02, random_state=1, data_rvs=lambda k: rng.lognormal(0.0, 2.0, k)).toarray()
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    print("the same with lognormal(0, 2) values (heavy tails)")
    for name, model in (("dense", fastgd.LinearRegressor(random_state=0)),
                        ("dense, standardize=False", fastgd.LinearRegressor(standardize=False, random_state=0)),
                        ("dense, optimizer='sgd'", fastgd.LinearRegressor(optimizer="sgd", random_state=0))):
        out, caught = [], []
        for p in range(1, max(passes) + 1):
            for a in range(0, n, chunk):
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    model.partial_fit(X[a:a + chunk], y[a:a + chunk])
                caught += [(p, str(w.message)) for w in seen]
            if p in passes:
                out.append(f"{model.score(X, y):8.3f}")
        print(f"{name:>26}  " + "  ".join(out) + f"  ({len(caught)} warnings"
              + (f", the first in pass {caught[0][0]})" if caught else ")"))
    print(f"{'Ridge() on all rows':>26}  {Ridge().fit(X, y).score(X, y):8.3f}")


def _after_fit_rows(X, y, n_fit, chunk, n_chunks=5):
    """Held-out R² after the fit and after each chunk, per model (rows after the chunks are held out)."""
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler
    used = n_fit + chunk * n_chunks
    Xv, yv = X[used:], y[used:]
    sc = StandardScaler(with_mean=not hasattr(X, "tocsr")).fit(X[:n_fit])  # SGDRegressor needs scaled columns
    dense = not hasattr(X, "tocsr")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in (("LinearRegressor()", fastgd.LinearRegressor(random_state=0)),
                            ("LinearRegressor(average=False)", fastgd.LinearRegressor(average=False,
                                                                                      random_state=0)),
                            ("SGDRegressor(average=True)", SGDRegressor(average=True, random_state=0))):
            tf = sc.transform if dense and isinstance(model, SGDRegressor) else (lambda A: A)
            model.fit(tf(X[:n_fit]), y[:n_fit])
            scores = [r2_score(yv, model.predict(tf(Xv)))]
            for a in range(n_fit, used, chunk):
                model.partial_fit(tf(X[a:a + chunk]), y[a:a + chunk])
                scores.append(r2_score(yv, model.predict(tf(Xv))))
            out[name] = scores
        out["refit on all rows seen"] = [
            r2_score(yv, fastgd.LinearRegressor(random_state=0).fit(X[:b], y[:b]).predict(Xv))
            for b in range(n_fit, used + 1, chunk)]
    return out


def after_fit():
    from sklearn.datasets import load_diabetes
    from sparse_defaults import linear_target, text_rows
    sets = []
    for d, values in ((2 ** 8, "tfidf"), (2 ** 12, "tfidf")):
        X = text_rows(1400, d, values)
        sets.append((f"stdlib docstrings, hashed {values} d={d}", [
            (X, linear_target(X, np.random.default_rng(seed))) for seed in range(3)], 570, 85))
    X, y = load_diabetes(return_X_y=True)
    orders = [np.random.default_rng(seed).permutation(len(y)) for seed in range(3)]
    sets.append(("diabetes (dense, 10 columns)", [(X[o], y[o]) for o in orders], 198, 29))
    for label, runs, n_fit, chunk in sets:
        rows = [_after_fit_rows(X, y, n_fit, chunk) for X, y in runs]
        print(f"{label}: held-out R² after a {n_fit}-row fit, then after each {chunk}-row chunk (mean of {len(rows)})")
        for name in rows[0]:
            print(f"  {name:>32}  " + "  ".join(f"{v:6.3f}" for v in np.mean([r[name] for r in rows], axis=0)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="the small-stream comparison instead")
    ap.add_argument("--after-fit", action="store_true", help="small chunks after a fit, held-out R², instead")
    ap.add_argument("--mostly-zero", action="store_true", help="dense chunks with mostly-zero columns instead")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args(argv)
    if args.small:
        return small()
    if args.after_fit:
        return after_fit()
    if args.mostly_zero:
        return mostly_zero()
    X, y, _, _ = make_linear_data(args.n, args.d, noise=1.0, random_state=0)
    X = X * np.logspace(-1, 2, args.d)  # natural units: column scales 0.1 to 100
    best = LinearRegression().fit(X, y).score(X, y)
    models = {
        "LinearRegressor()": fastgd.LinearRegressor(random_state=0),
        "LinearRegressor(average=False)": fastgd.LinearRegressor(average=False, random_state=0),
        "... + InverseScaling(0.5)": fastgd.LinearRegressor(average=False, random_state=0,
                                                             learning_rate=InverseScaling(power_t=0.5)),
        "SGDRegressor() (scaled X)": SGDRegressor(random_state=0),
    }
    mu, sd = X.mean(axis=0), X.std(axis=0)  # SGDRegressor needs scaled features (fastgd scales implicitly)
    bounds = np.linspace(0, args.n, args.chunks + 1).astype(int)
    print(f"{args.n:,} x {args.d}, {args.chunks} chunks per pass; R² shortfall from least squares "
          f"(LinearRegression R² {best:.6f}) after each pass")
    print("pass  " + "  ".join(f"{name:>30}" for name in models))
    for p in range(1, args.passes + 1):
        for a, b in zip(bounds[:-1], bounds[1:]):
            for name, m in models.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if isinstance(m, SGDRegressor):
                        m.partial_fit((X[a:b] - mu) / sd, y[a:b])
                    else:
                        m.partial_fit(X[a:b], y[a:b])
        gaps = [best - (m.score((X - mu) / sd, y) if isinstance(m, SGDRegressor) else m.score(X, y))
                for m in models.values()]
        print(f"{p:4}  " + "  ".join(f"{g:30.2e}" for g in gaps))


if __name__ == "__main__":
    main()
