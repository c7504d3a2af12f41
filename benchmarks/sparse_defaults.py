"""Sparse input with the defaults: held-out R² and fit time of fastgd next to SGDRegressor() and Ridge(alpha=1).

Each row is one data set (made here, no downloads), split 5:1 into training and held-out rows:
* ``zipf``/``uniform``: rows of about 30 columns with Zipf-like (as hashed text) or uniform popularity, with
  binary values, counts (1 + Poisson) or tf-idf-like weights (counts times the columns' idf, rows of unit
  norm); y = X·w + noise with w non-zero on a tenth of the columns;
* ``text``: hashed word uni- and bigrams (scikit-learn's HashingVectorizer, counts or tf-idf) of the docstrings
  of the Python standard library shipped with this interpreter (read with ``ast``, nothing imported), one row
  per sentence; y = X·w + noise as above (the text gives real column popularity and co-occurrence);
* ``digits``: one-hot of the 64 pixel intensities (categorical columns, 17 levels each) of scikit-learn's
  bundled digits images; y = the digit.

Columns: fastgd's defaults (``LinearRegressor()``), ``Pipeline(MaxAbsScaler(), LinearRegressor())``,
SGDRegressor(), Ridge(alpha=1); with ``--optimizers`` also the worst held-out R² over every other optimizer with
its defaults (``LinearRegressor(optimizer=name)``); and any warning a default fit gave. Verdicts (goal: the
better of SGDRegressor() and Ridge(alpha=1) minus 0.01): the default fit against the peers on the same data;
the pipeline against the same peers, and against the peers in the same pipeline (MaxAbsScaler first: the
penalty then acts on the scaled weights, a different model, whose best Ridge strength may score lower; and the
scaler has seen the rows the default holds out to choose its strength, whose scaled values are then at most 1
where new rows' are not: see docs/design.md).

    python benchmarks/sparse_defaults.py [--rows zipf-bin-14 text-tfidf-18 ...] [--optimizers] [--big]
"""

import argparse
import ast
import os
import re
import sysconfig
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import Ridge, SGDRegressor
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

import fastgd

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adamw", "adamax", "nadam", "adadelta"]


def linear_target(X, rng, noise=0.5):
    """y = X·w + 3 + noise, w non-zero on a tenth of the columns; the noise's spread is ``noise`` times X·w's."""
    w = np.zeros(X.shape[1])
    hot = rng.choice(X.shape[1], max(1, X.shape[1] // 10), replace=False)
    w[hot] = rng.standard_normal(hot.size)
    y = X @ w
    return y + 3.0 + noise * y.std() * rng.standard_normal(X.shape[0])


def with_values(X, values, rng):
    """Binary X with ``values``: "bin" (ones), "count" (1 + Poisson(1)), "tfidf" (counts times idf, unit rows)."""
    X = X.copy()
    if values == "bin":
        X.data[:] = 1.0
        return X
    X.data[:] = 1.0 + rng.poisson(1.0, X.data.size)
    if values == "tfidf":
        df = np.bincount(X.indices, minlength=X.shape[1])
        idf = np.log((1.0 + X.shape[0]) / (1.0 + df)) + 1.0
        X.data *= idf[X.indices]
        norms = np.sqrt(np.add.reduceat(np.square(X.data), X.indptr[:-1]))
        X.data /= np.repeat(norms, np.diff(X.indptr))
    return X


def popularity_rows(n, d, popularity, rng, nnz=30):
    if popularity == "zipf":
        p = 1.0 / np.arange(1, d + 1) ** 1.1
        cols = rng.permutation(d)[rng.choice(d, size=(n, nnz), p=p / p.sum())]
    else:
        cols = rng.integers(0, d, size=(n, nnz))
    X = sp.csr_matrix((np.ones(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    return X


def stdlib_paragraphs(limit):
    """Sentences of the docstrings in the standard library's sources (parsed, not imported)."""
    root = sysconfig.get_paths()["stdlib"]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("test", "tests", "site-packages", "idlelib"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        out.extend(p for p in re.split(r"\n\s*\n|(?<=[.:;])\s+", doc) if len(p.split()) >= 4)
            if len(out) >= limit:
                return out[:limit]
    return out


def text_rows(n, d, values):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    docs = stdlib_paragraphs(n)
    X = HashingVectorizer(n_features=d, ngram_range=(1, 2), alternate_sign=False, norm=None).transform(docs)
    X = X.astype(np.float64).tocsr()
    if values == "tfidf":
        X = TfidfTransformer().fit_transform(X).tocsr()
    elif values == "bin":
        X.data[:] = 1.0
    return X


def digits_rows():
    from sklearn.datasets import load_digits
    data = load_digits()
    levels = data.data.astype(np.int64)  # 0..16 per pixel
    n, m = levels.shape
    cols = (np.arange(m) * 17 + levels).ravel()
    X = sp.csr_matrix((np.ones(n * m), cols, np.arange(0, n * m + 1, m)), shape=(n, m * 17))
    return X, data.target.astype(np.float64)


def make_row(name, n, seed=0):
    """(X, y) of a row name such as "zipf-bin-14", "uniform-count-10", "text-tfidf-18" or "digits"."""
    rng = np.random.default_rng(seed)
    if name == "digits":
        return digits_rows()
    kind, values, lg = name.split("-")
    X = text_rows(n, 2 ** int(lg), values) if kind == "text" else \
        with_values(popularity_rows(n, 2 ** int(lg), kind, rng), values, rng)
    return X, linear_target(X, rng)


def timed_fit(model, X, y):
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except ValueError as exc:  # a divergence
            return None, time.perf_counter() - t, [f"raised: {exc}"[:90]]
    return model, time.perf_counter() - t, [str(w.message)[:90] for w in caught]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=60_000, help="rows (training and held out) of the made data")
    parser.add_argument("--rows", nargs="*", default=["uniform-bin-10", "zipf-bin-14", "uniform-count-14",
                                                       "zipf-tfidf-18", "zipf-bin-20", "text-count-18",
                                                       "text-tfidf-20", "digits"])
    parser.add_argument("--big", action="store_true", help="also zipf-bin-22 (about 1 GB of memory)")
    parser.add_argument("--optimizers", action="store_true", help="also every other optimizer's defaults")
    parser.add_argument("--before", action="store_true",
                        help="also LinearRegressor(penalty=None): the defaults before penalty='auto'")
    args = parser.parse_args(argv)
    rows = args.rows + (["zipf-bin-22"] if args.big else [])
    if not all(name == "digits" or len(name.split("-")) == 3 for name in rows):
        parser.error("a row is digits or KIND-VALUES-LOG2D, e.g. zipf-bin-14 or text-tfidf-20")
    fastgd.LinearRegressor(max_iter=1, tol=None).fit(*make_row("zipf-bin-8", 500))  # compile / load once
    print(f"{'data':>16} {'n':>6} {'d':>8} {'nnz/row':>7} | {'fastgd':>13} {'MaxAbs+fgd':>10} | "
          f"{'SGDRegressor':>13} | {'Ridge(a=1)':>13} | {'MaxAbs+SGD':>10} {'MaxAbs+Ridge':>12} | fastgd "
          f"MaxAbs+fgd (vs raw, vs MaxAbs peers)  {'before' if args.before else ''}"
          f"{'  worst optimizer' if args.optimizers else ''}")
    for name in rows:
        X, y = make_row(name, args.n)
        cut = X.shape[0] * 5 // 6
        Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
        res = {}
        for key, model in (("fastgd", fastgd.LinearRegressor(random_state=0)),
                           ("maxabs", make_pipeline(MaxAbsScaler(), fastgd.LinearRegressor(random_state=0))),
                           ("sgd", SGDRegressor(random_state=0)), ("ridge", Ridge(alpha=1.0)),
                           ("maxabs_sgd", make_pipeline(MaxAbsScaler(), SGDRegressor(random_state=0))),
                           ("maxabs_ridge", make_pipeline(MaxAbsScaler(), Ridge(alpha=1.0)))):
            fitted, secs, caught = timed_fit(model, Xt, yt)
            r2 = r2_score(yv, fitted.predict(Xv)) if fitted is not None else float("nan")
            res[key] = (r2, secs, caught)
        target = max(res["sgd"][0], res["ridge"][0]) - 0.01
        target_maxabs = max(res["maxabs_sgd"][0], res["maxabs_ridge"][0]) - 0.01
        worst = ""
        if args.before:
            fitted, secs, _ = timed_fit(fastgd.LinearRegressor(random_state=0, penalty=None), Xt, yt)
            worst = f"before {r2_score(yv, fitted.predict(Xv)) if fitted is not None else np.nan:.4f} {secs:.1f}s  "
        if args.optimizers:
            scores = {}
            for opt in OPTIMIZERS:
                fitted, _, caught = timed_fit(fastgd.LinearRegressor(optimizer=opt, random_state=0), Xt, yt)
                scores[opt] = r2_score(yv, fitted.predict(Xv)) if fitted is not None else float("nan")
            bad = min(scores, key=lambda k: scores[k] if np.isfinite(scores[k]) else -np.inf)
            worst += f"{bad} {scores[bad]:.4f}"
        def verdict(r2, goal):
            return "ok" if r2 >= goal else "SHORT"

        print(f"{name:>16} {cut:>6} {X.shape[1]:>8} {X.nnz / X.shape[0]:>7.1f} | "
              f"{res['fastgd'][0]:>6.4f} {res['fastgd'][1]:>5.1f}s {res['maxabs'][0]:>10.4f} | "
              f"{res['sgd'][0]:>6.4f} {res['sgd'][1]:>5.1f}s | {res['ridge'][0]:>6.4f} {res['ridge'][1]:>5.1f}s | "
              f"{res['maxabs_sgd'][0]:>10.4f} {res['maxabs_ridge'][0]:>12.4f} | "
              f"{verdict(res['fastgd'][0], target):>6} {verdict(res['maxabs'][0], target):>5}, "
              f"{verdict(res['maxabs'][0], target_maxabs):<5}  {worst}", flush=True)
        for key in ("fastgd", "maxabs"):
            for message in res[key][2]:
                print(f"{'':>16}   {key} warned: {message}")


if __name__ == "__main__":
    main()
