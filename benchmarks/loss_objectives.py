"""Every loss on real data sets: the objective the default fit reaches, next to the exact minimizer of the same
objective and next to ``SGDRegressor(loss=...)`` with its defaults.

    python benchmarks/loss_objectives.py            # diabetes raw and with outliers; engel, stackloss
    python benchmarks/loss_objectives.py --small    # diabetes only, two losses (seconds)

Data sets: scikit-learn's diabetes (442 x 10), the same with 5 % of the targets moved by 10 standard
deviations, and statsmodels' engel (235 x 1) and stackloss (21 x 3) when statsmodels is installed.

The objective is the mean over rows of the loss of the residual, with no penalty (fastgd's definitions, as
scikit-learn's: huber ½r² inside epsilon; the pinball loss for quantile). epsilon is set from the targets'
spread (0.5·std(y) for huber, 0.1·std(y) for the epsilon-insensitive losses) so both sides of every kink are
used; SGDRegressor gets the same epsilon and otherwise its defaults (penalty="l2", alpha=1e-4, on the raw
features, as a user would call it first); it has no quantile loss. Exact minimizers:

* squared_error: ``numpy.linalg.lstsq``;
* huber, squared_epsilon_insensitive: scipy's L-BFGS-B on the same smooth objective (standardized columns,
  gradient tolerance 1e-12; ``HuberRegressor`` fits its own scale, so it minimizes another objective);
* epsilon_insensitive: its linear program (scipy's ``linprog``, HiGHS);
* quantile: ``QuantileRegressor(alpha=0, solver="highs")`` (a linear program).

Columns: the exact objective, and the relative excess (objective ÷ exact − 1) of fastgd's default fit and of
SGDRegressor; 1e-3 is the goal for fastgd.
"""

import argparse
import time
import warnings

import numpy as np
from scipy.optimize import linprog, minimize
from sklearn.datasets import load_diabetes
from sklearn.linear_model import QuantileRegressor, SGDRegressor

from fastgd import LinearRegressor, reference

LOSSES = [("squared_error", None), ("huber", 0.5), ("epsilon_insensitive", 0.1),
          ("squared_epsilon_insensitive", 0.1), ("quantile", 0.5), ("quantile", 0.9)]


def datasets(small=False):
    X, y = load_diabetes(return_X_y=True)
    out = [("diabetes", X, y)]
    if small:
        return out
    rng = np.random.default_rng(0)
    moved = rng.choice(len(y), len(y) // 20, replace=False)
    y2 = y.copy()
    y2[moved] += rng.choice([-1, 1], len(moved)) * 10 * y.std()
    out.append(("diabetes, 5 % outliers", X, y2))
    try:
        import statsmodels.api as sm
    except ImportError:
        return out
    engel = sm.datasets.engel.load_pandas().data
    out.append(("engel", engel[["income"]].to_numpy(float), engel["foodexp"].to_numpy(float)))
    stack = sm.datasets.stackloss.load_pandas().data
    out.append(("stackloss", stack[["AIRFLOW", "WATERTEMP", "ACIDCONC"]].to_numpy(float),
                stack["STACKLOSS"].to_numpy(float)))
    return out


def objective(pred, y, loss, param):
    return float(reference.loss_value(pred - y, loss, 0.0 if param is None else param).mean())


def exact(X, y, loss, param):
    """The minimum of the objective (see the module docstring for the method per loss)."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    if loss == "squared_error":
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        return objective(A @ coef, y, loss, param)
    if loss == "quantile":
        model = QuantileRegressor(quantile=param, alpha=0.0, solver="highs").fit(X, y)
        return objective(model.predict(X), y, loss, param)
    if loss == "epsilon_insensitive":
        eye = np.eye(n)
        A_ub = np.vstack([np.hstack([A, -eye]), np.hstack([-A, -eye])])  # t_i >= |r_i| - epsilon, t_i >= 0
        res = linprog(np.r_[np.zeros(d + 1), np.ones(n) / n], A_ub=A_ub, b_ub=np.r_[y + param, -y + param],
                      bounds=[(None, None)] * (d + 1) + [(0, None)] * n, method="highs")
        return float(res.fun)
    sd = X.std(0)
    sd[sd == 0] = 1.0
    Z = np.hstack([(X - X.mean(0)) / sd, np.ones((n, 1))])

    def f(t):
        r = Z @ t - y
        return objective(Z @ t, y, loss, param), Z.T @ reference.loss_derivative(r, loss, param) / n
    res = minimize(f, np.linalg.lstsq(Z, y, rcond=None)[0], jac=True, method="L-BFGS-B",
                   options=dict(maxiter=100_000, maxfun=1_000_000, gtol=1e-12, ftol=1e-16))
    return float(res.fun)


def rows(small=False):
    out = []
    losses = LOSSES[1:3] if small else LOSSES
    for name, X, y in datasets(small):
        for loss, scale in losses:
            param = None if loss == "squared_error" else scale if loss == "quantile" else scale * float(y.std())
            kw = {} if param is None else {"quantile": param} if loss == "quantile" else {"epsilon": param}
            best = exact(X, y, loss, param)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                est = LinearRegressor(loss=loss, random_state=0, **kw).fit(X, y)
                sec = time.perf_counter() - t0
                got = objective(est.predict(X), y, loss, param)
                sgd = None
                if loss != "quantile":
                    model = SGDRegressor(loss=loss, random_state=0, **kw).fit(X, y)
                    pred = model.predict(X)
                    sgd = objective(pred, y, loss, param) if np.all(np.isfinite(pred)) else np.inf
            label = loss if param is None else f"{loss} ({'q' if loss == 'quantile' else 'ε'}={param:.3g})"
            out.append((name, label, best, got / best - 1, None if sgd is None else sgd / best - 1, sec))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="diabetes only, two losses")
    args = ap.parse_args(argv)
    table = rows(args.small)
    print("| data | loss | exact objective | fastgd default ÷ exact − 1 | SGDRegressor ÷ exact − 1 | fastgd s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, label, best, ours, sgd, sec in table:
        print(f"| {name} | {label} | {best:.6g} | {ours:.2e} | {'—' if sgd is None else f'{sgd:.2e}'} | "
              f"{sec:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
