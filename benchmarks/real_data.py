"""Real-data accuracy suite: the defaults next to LinearRegression on every bundled regression dataset.

Datasets: scikit-learn's diabetes (raw and scaled) and linnerud, and statsmodels' datasets when statsmodels is
installed (longley, stackloss, star98, grunfeld, engel, ...). Each is fitted raw and inside
``Pipeline(StandardScaler(), ...)``; every named optimizer with its defaults too. Prints a table of training
R² and the gap to LinearRegression's; warnings raised by a fit are shown.

    python benchmarks/real_data.py            # everything
    python benchmarks/real_data.py --quick    # defaults only (the smoke test runs this on two datasets)
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


def fit_r2(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return model.score(X, y), [str(w.message)[:60] for w in caught]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="defaults only")
    parser.add_argument("--only", nargs="*", help="dataset names (prefixes) to run")
    args = parser.parse_args(argv)
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
