"""The ``fastgd`` command. With no arguments: a demo fit on built-in synthetic data."""

import argparse
import os
import sys
import time

import numpy as np


def demo_fit(n_samples=200_000, n_features=50, optimizer="adam", batch_size="auto"):
    """Fit LinearRegressor (its defaults) on synthetic data in natural units and print what was learned, how
    well and how fast, next to scikit-learn's closed form."""
    from sklearn.linear_model import LinearRegression

    from . import LinearRegressor
    from .datasets import make_linear_data

    X, y, coef, intercept = make_linear_data(n_samples, n_features, noise=0.1, random_state=0)
    # natural units: columns of very different scales and a target in the thousands (standardize=True, the
    # default, makes the steps mean the same whatever the units)
    scales = np.logspace(-2, 3, n_features)
    X *= scales
    coef = coef / scales
    y = 1000.0 + 100.0 * y
    coef, intercept = 100.0 * coef, 1000.0 + 100.0 * intercept
    model = LinearRegressor(optimizer=optimizer, batch_size=batch_size, random_state=0)
    print(f"fastgd demo: LinearRegressor(optimizer={optimizer!r}, batch_size={batch_size!r}) on "
          f"{n_samples:,} x {n_features} float64 synthetic data in natural units (column scales 0.01 to 1000, "
          f"y around 1000)")
    t0 = time.perf_counter()
    LinearRegressor(optimizer=optimizer, max_iter=1, tol=None).fit(X[:2048], y[:2048])
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(X, y)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = LinearRegression().fit(X, y)
    t_exact = time.perf_counter() - t0
    from ._engine import kernels

    backend = "native (compiled at install)" if kernels("auto").__name__.endswith("_native") else \
        "numba (compiled on first use, then loaded from its cache)"
    print(f"first call, backend {backend}: {t_first:.2f} s")
    print(f"fit: {model.n_iter_} epochs of batch {model.batch_size_}, {model.t_:,} updates in {t_fit:.2f} s "
          f"({t_fit / model.n_iter_ * 1e3:.1f} ms per epoch)")
    print(f"training loss: first epoch {model.loss_curve_[0]:.4g}, last {model.loss_curve_[-1]:.6g}")
    sd = X.std(axis=0)  # a coefficient times its column's spread: its effect on y, in y's units
    print(f"coef_ vs LinearRegression's: largest difference {np.max(np.abs(model.coef_ - exact.coef_) * sd):.2e} "
          f"in y's units (effects up to {np.max(np.abs(exact.coef_) * sd):.3g})   intercept_: "
          f"{model.intercept_:.4f} (LinearRegression {exact.intercept_:.4f}, true {intercept})")
    print(f"R^2: {model.score(X, y):.8f}   sklearn LinearRegression ({t_exact:.2f} s): {exact.score(X, y):.8f}")
    return model


PLOTS_EXTRA = 'pip install "fastgd[plots]"'


def demo_main(argv):
    """``fastgd demo NAME``: render a worked example (needs matplotlib, the ``plots`` extra)."""
    from .examples import EXAMPLES, render

    parser = argparse.ArgumentParser(prog="fastgd demo", description="Render a worked example of gradient "
                                     "descent to a PNG (fastgd.examples).", allow_abbrev=False)
    parser.add_argument("name", choices=sorted(EXAMPLES))
    parser.add_argument("--out", help="PNG path (default NAME.png; another format matplotlib writes by its suffix)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401  (checked before the example spends time computing)
    except ImportError as exc:
        print(f"fastgd demo: drawing the figures needs matplotlib, which is not installed ({exc}).\n"
              f"Install it with: {PLOTS_EXTRA}   (or: pip install matplotlib)", file=sys.stderr)
        return 1
    _check_out(parser, args.out or f"{args.name}.png")
    from ._what_to_see import WHAT_TO_SEE, plain

    title, text = WHAT_TO_SEE[args.name]
    print(f"fastgd demo {args.name}: {title}. Running the example with fastgd's optimizers and drawing it "
          f"(a few seconds) ...", flush=True)
    t0 = time.perf_counter()
    try:
        path = render(args.name, args.out)
    except OSError as exc:  # the checks above passed, yet the system refused the file (e.g. a read-only mount)
        if exc.filename is None or os.path.abspath(exc.filename) != os.path.abspath(args.out or f"{args.name}.png"):
            raise
        parser.error(f"argument --out: cannot write {exc.filename!r} ({exc.strerror}): give another path")
    print(f"wrote {path} ({time.perf_counter() - t0:.1f} s). What to see in it:\n")
    print(plain(text))
    return 0


def _check_out(parser, path):
    """``--out``: a format matplotlib writes, in an existing writable folder; checked before the example runs,
    as one line naming the argument (not a traceback after it)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1][1:].lower()
    if suffix not in formats:
        parser.error(f"argument --out: {path!r} must end in .png (or another format matplotlib writes: "
                     f"{', '.join('.' + f for f in sorted(formats))})")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"argument --out: the folder {folder!r} does not exist: create it first, or give a path in "
                     f"an existing folder")
    if not os.access(folder, os.W_OK) or os.path.isdir(path):
        parser.error(f"argument --out: cannot write {path!r} (" + ("a folder of that name exists" if
                     os.path.isdir(path) else f"the folder {folder!r} is not writable") + "): give another path")


def _at_least(low):
    """An argparse type: an integer of at least ``low`` (its error one line naming the argument)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {low}, got {text!r}")
        return value
    return parse


def _batch_size(text):
    if text == "auto":
        return text
    try:
        return _at_least(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto or a positive integer, got {text!r}") from None


def main(argv=None):
    """The command line. Each subcommand imports what it needs only when it is run (``fastgd`` alone imports
    neither the benchmark nor matplotlib)."""
    parser = argparse.ArgumentParser(
        prog="fastgd", description="With no command: a demo fit on built-in synthetic data.", allow_abbrev=False)
    from .optimizers import OPTIMIZERS

    parser.add_argument("--n-samples", type=_at_least(2), default=200_000)  # R² needs two rows
    parser.add_argument("--n-features", type=_at_least(1), default=50)
    parser.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS) + ["lbfgs"])
    parser.add_argument("--batch-size", type=_batch_size, default="auto", help="a positive integer or auto")
    commands = parser.add_subparsers(dest="command", metavar="{bench,demo}")
    # the subcommands parse their own arguments (so their modules load only when chosen): add_help=False
    # passes --help on to them
    commands.add_parser("bench", add_help=False,
                        help="a short table: fastgd's epoch, fit and solve times next to scikit-learn and the "
                             "memory-bandwidth floor (fastgd bench --help)")
    commands.add_parser("demo", add_help=False,
                        help="render a worked example of gradient descent to a PNG (fastgd demo --help)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if args.command == "demo":
        return demo_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        demo_fit(args.n_samples, args.n_features, args.optimizer, args.batch_size)
    except ValueError as exc:  # settings the fit refuses (e.g. too few rows): one line, as argparse's errors
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
