"""Real-data accuracy suite: the defaults next to LinearRegression on every bundled regression dataset.

Datasets: scikit-learn's diabetes (raw and scaled) and linnerud, and statsmodels' datasets when statsmodels is
installed (longley, stackloss, star98, grunfeld, engel, ...). Each is fitted raw and inside
``Pipeline(StandardScaler(), ...)``; every named optimizer with its defaults too. Prints a table of training
R² and the gap to LinearRegression's; warnings raised by a fit are shown.

    python benchmarks/real_data.py            # everything
    python benchmarks/real_data.py --quick    # defaults only (the smoke test runs this on two datasets)
    python benchmarks/real_data.py --wide     # wide and ill-conditioned dense data (about 2 minutes)

The wide table: synthetic Gaussian and correlated (low-rank factors plus noise, columns in natural units from
0.1 to 10, or from 1e-3 to 1e3 with y linear in them) designs with d up to 2000 and n/d >= 3, polynomial
features of diabetes, one column of breast_cancer regressed on the others, and statsmodels' star98 when
installed. Columns: condition number of the standardized design, the default fit's training R², least squares'
(LinearRegression on the standardized columns), the gap, the relative excess MSE, epochs, seconds and the
warning (if any).
"""

import argparse
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastgd


def datasets():
    """(name, X, y) for every real regression dataset found in the installed packages."""
    from sklearn import datasets as skd

    out = []
    d = skd.load_diabetes()
    out.append(("diabetes (scaled X)", d.data, d.target))
    d = skd.load_diabetes(scaled=False)
    out.append(("diabetes (raw X)", d.data, d.target))
    d = skd.load_linnerud()
    out.append(("linnerud (3 outputs)", d.data, d.target))
    try:
        import statsmodels.api as sm
    except ImportError:
        return out
    specs = {  # name: (module, target column, columns to drop)
        "longley": ("longley", "TOTEMP", []),
        "stackloss": ("stackloss", "STACKLOSS", []),
        "star98": ("star98", None, []),
        "grunfeld": ("grunfeld", "invest", ["firm", "year"]),
        "engel": ("engel", "foodexp", []),
        "ccard": ("ccard", "AVGEXP", []),
        "cpunish": ("cpunish", "EXECUTIONS", []),
        "scotland": ("scotland", "YES", []),
        "spector": ("spector", "GRADE", []),
        "statecrime": ("statecrime", "murder", []),
        "copper": ("copper", "WORLDCONSUMPTION", []),
        "fair": ("fair", "affairs", []),
        "randhie": ("randhie", "mdvis", []),
        "modechoice": ("modechoice", "choice", ["individual", "mode"]),
        "fertility": ("fertility", None, []),
        "committee": ("committee", "BILLS104", []),
        "strikes": ("strikes", "duration", []),
        "anes96": ("anes96", "vote", []),
        "elnino": ("elnino", None, []),
        "sunspots": ("sunspots", None, []),
        "nile": ("nile", None, []),
    }
    for name, (module, target, drop) in specs.items():
        try:
            ds = getattr(sm.datasets, module).load_pandas()
            if target is None:
                X, y = ds.exog, ds.endog
                if X is None:
                    continue
            else:
                frame = ds.data.drop(columns=drop)
                y = frame[target]
                X = frame.drop(columns=[target])
            X = X.select_dtypes("number").to_numpy(dtype=float)
            y = np.asarray(y, dtype=float)
            if y.ndim == 2:
                y = y[:, 0] if y.shape[1] == 1 else y
            keep = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(y.reshape(len(y), -1)), axis=1)
            if X.shape[1] == 0 or keep.sum() < 10:
                continue
            out.append((name, X[keep], y[keep]))
        except Exception:  # a dataset this statsmodels version lacks or shapes differently
            continue
    return out


def wide_datasets(quick=False):
    """(name, X, y) for the wide and ill-conditioned table."""
    from sklearn import datasets as skd
    from sklearn.preprocessing import PolynomialFeatures

    def gauss(n, d, dtype, seed=0):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d)).astype(dtype)
        return X, X.astype(np.float64) @ rng.standard_normal(d) + 0.03 * np.sqrt(d) * rng.standard_normal(n)

    def lowrank(n, d, dtype, rank=20, seed=1):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + 0.3 * rng.standard_normal((n, d))
        X = X * np.exp(rng.uniform(np.log(0.1), np.log(10.0), d)) + rng.uniform(-5, 5, d)
        Xs = (X - X.mean(0)) / X.std(0)
        return X.astype(dtype), Xs @ (rng.standard_normal(d) / np.sqrt(d)) + 0.1 * rng.standard_normal(n)

    def factors(n, d, dtype, rank=40, noise=0.05, seed=0):
        """Correlated columns spanning 1e-3 to 1e3 in scale, y linear in them: the optimum explains nearly all
        of y, and the standardized design's curvatures span about 1e6."""
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + noise * rng.standard_normal((n, d))
        X = W * np.geomspace(1e-3, 1e3, d)
        return X.astype(dtype), W @ rng.standard_normal(d) + rng.standard_normal(n)

    out = [("gaussian f32", *gauss(10_000, 1000, np.float32)),
           ("gaussian f64", *gauss(20_000, 500, np.float64)),
           ("low-rank+noise f64", *lowrank(20_000, 500, np.float64)),
           ("low-rank+noise f32", *lowrank(10_000, 1000, np.float32)),
           ("factors 1e-3..1e3 f64", *factors(3_000, 800, np.float64))]
    if not quick:
        out.insert(1, ("gaussian f32", *gauss(20_000, 2000, np.float32)))
        out.append(("factors 1e-3..1e3 f32", *factors(10_000, 2000, np.float32, noise=0.01)))
    d = skd.load_diabetes(scaled=False)
    out.append(("diabetes poly2", PolynomialFeatures(2, include_bias=False).fit_transform(d.data), d.target))
    X = skd.load_breast_cancer().data
    out.append(("cancer col0 ~ rest", np.delete(X, 0, axis=1), X[:, 0].copy()))
    out += [row for row in datasets() if row[0] == "star98"]
    return out


def condition_number(X):
    """Of the standardized design (centred, unit-variance columns), from the eigenvalues of its Gram matrix."""
    X = np.asarray(X, dtype=np.float64)
    s = X.std(0)
    Z = (X - X.mean(0)) / np.where(s > 0, s, 1.0)
    lam = np.linalg.eigvalsh(Z.T @ Z)
    lam = lam[lam > lam[-1] * len(lam) * np.finfo(np.float64).eps]
    return float(np.sqrt(lam[-1] / lam[0]))


def wide_table(quick=False):
    import time

    print(f"{'dataset':20s} {'n x d':>11s} {'cond':>8s} {'default R²':>11s} {'OLS R²':>9s} {'gap':>9s} "
          f"{'rel. MSE':>9s} {'epochs':>6s} {'time s':>7s}  warning")
    rows = []
    for name, X, y in wide_datasets(quick):
        # on the standardized columns: on raw ones spanning 1e6 in scale, lstsq's cut-off drops singular values
        ols = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
        best, mse_best = ols.score(X, y), float(np.mean(np.square(ols.predict(X) - y)))
        model = fastgd.LinearRegressor(random_state=0)
        t = time.perf_counter()
        r2, caught = fit_r2(model, X, y)
        t = time.perf_counter() - t
        rel = (float(np.mean(np.square(model.predict(X) - y))) - mse_best) / mse_best
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(f"{name:20s} {shape:>11s} {condition_number(X):8.3g} {r2:11.6f} {best:9.6f} {best - r2:9.2e} "
              f"{rel:9.2e} {model.n_iter_:6d} {t:7.2f}  {'; '.join(caught)}", flush=True)
        rows.append((name, shape, r2, best, model.n_iter_, t, caught))
    return rows


def fit_r2(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return model.score(X, y), [str(w.message)[:60] for w in caught]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="defaults only")
    parser.add_argument("--only", nargs="*", help="dataset names (prefixes) to run")
    parser.add_argument("--wide", action="store_true", help="the wide and ill-conditioned table instead")
    args = parser.parse_args(argv)
    if args.wide:
        return wide_table(args.quick), None
    optimizers = [] if args.quick else sorted(fastgd.OPTIMIZERS)
    worst = {"default": 0.0, "pipeline": 0.0, "optimizers": 0.0}
    print(f"{'dataset':24s} {'n x d':>9s} {'LinReg':>8s} {'default':>8s} {'pipeline':>8s}  "
          + " ".join(f"{o:>8s}" for o in optimizers))
    rows = []
    for name, X, y in datasets():
        if args.only and not any(name.startswith(p) for p in args.only):
            continue
        best = LinearRegression().fit(X, y).score(X, y)
        r_def, w_def = fit_r2(fastgd.LinearRegressor(random_state=0), X, y)
        r_pipe, w_pipe = fit_r2(make_pipeline(StandardScaler(), fastgd.LinearRegressor(random_state=0)), X, y)
        worst["default"] = max(worst["default"], best - r_def)
        worst["pipeline"] = max(worst["pipeline"], best - r_pipe)
        per_opt = []
        for o in optimizers:
            opt = {"adamw": fastgd.optimizers.AdamW(lr=0.01, weight_decay=0.0)}.get(o, o)
            r, _ = fit_r2(fastgd.LinearRegressor(optimizer=opt, random_state=0), X, y)
            per_opt.append(r)
            worst["optimizers"] = max(worst["optimizers"], best - r)
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(f"{name:24s} {shape:>9s} {best:8.4f} {r_def:8.4f} {r_pipe:8.4f}  "
              + " ".join(f"{r:8.4f}" for r in per_opt)
              + ("  warned: " + "; ".join(w_def + w_pipe) if w_def or w_pipe else ""))
        rows.append((name, shape, best, r_def, r_pipe, per_opt))
    print(f"largest shortfall vs LinearRegression R²: default {worst['default']:.2e} (goal <= 0.002), "
          f"pipeline {worst['pipeline']:.2e} (goal <= 0.002)"
          + ("" if args.quick else f", any optimizer {worst['optimizers']:.2e} (goal <= 0.01)"))
    return rows, worst


if __name__ == "__main__":
    main()
