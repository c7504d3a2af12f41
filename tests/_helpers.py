"""Helpers shared by test modules and by tests/golden/make_golden.py (imported as ``from _helpers import ...``:
pytest puts tests/ on sys.path, the script adds it itself). Kept free of pytest and torch imports."""

import json
from pathlib import Path

import numpy as np

from fastgd import _engine, reference
from fastgd.optimizers import OPTIMIZERS

GOLDEN_DIR = Path(__file__).parent / "golden"

# torch.optim class running each fastgd optimizer's algorithm: the registry class's own name, except that
# Momentum and Nesterov are torch's SGD with momentum (and nesterov=True); fastgd gives them momentum=0.9 by
# default where torch's SGD has 0.
TORCH_CLASSES = {"momentum": "SGD", "nesterov": "SGD"}


def torch_optimizer_args(optimizer):
    """``(class name in torch.optim, keyword arguments)`` that make torch run ``optimizer``'s algorithm.

    ``optimizer`` is a fastgd.optimizers object; every hyperparameter is passed explicitly. Raises ValueError
    for Adam/AdamW's ``bias_correction=False``, a fastgd extension torch has no counterpart for.
    """
    hp = optimizer.get_params()
    if not hp.pop("bias_correction", True):
        raise ValueError(f"{type(optimizer).__name__}(bias_correction=False) has no torch.optim counterpart")
    if optimizer.name == "nesterov":
        hp["nesterov"] = True
    if "betas" in hp:
        hp["betas"] = tuple(hp["betas"])
    return TORCH_CLASSES.get(optimizer.name, type(optimizer).__name__), hp


# -- golden trajectories (tests/golden/*.npz, written by tests/golden/make_golden.py) -----------------------


def golden_name(optimizer_name, variant):
    """File name of one golden trajectory: ``<optimizer>-<variant>.npz``, variant "default" or "variant"."""
    return f"{optimizer_name}-{variant}.npz"


def problem_digest(X, y, theta0):
    """A short fingerprint of the golden problem's data, stored in every trajectory file."""
    import hashlib

    h = hashlib.sha256()
    for a in (X, y, theta0):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def load_make_golden():
    """tests/golden/make_golden.py as a module (it imports torch only in ``main``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_golden(path):
    """One golden file as a dict: arrays as arrays, JSON metadata (``*_json`` keys) decoded, strings as str."""
    with np.load(path, allow_pickle=False) as f:
        out = {}
        for key in f.files:
            value = f[key]
            if key.endswith("_json"):
                out[key[: -len("_json")]] = json.loads(str(value))
            elif value.dtype.kind == "U":
                out[key] = str(value)
            else:
                out[key] = value
    return out


# Non-default settings that exercise every branch of each optimizer's update: each registry entry's own
# ``variant`` (each also checked against torch.optim in test_torch_parity.py when torch is installed, and in
# the golden trajectories), plus fastgd's extension Adam(bias_correction=False).
_no_variant = [name for name, cls in OPTIMIZERS.items() if not cls.__dict__.get("variant")]
assert not _no_variant, f"registry entries {_no_variant} declare no `variant` (fastgd.optimizers): add one"
VARIANTS = {name: cls.variant for name, cls in OPTIMIZERS.items()}
VARIANTS["adam_no_bias_correction"] = dict(bias_correction=False)


def problem(n=300, d=5, k=1, dtype=np.float64, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.uniform(-2, 2, size=(d, k))
    y = X.astype(np.float64) @ W + 0.5 + noise * rng.standard_normal((n, k))
    return X, (y[:, 0] if k == 1 else y)


def reference_train(X, y, opt, *, batch_size, epochs, shuffle=True, random_state=0, sw=None,
                    fit_intercept=True, schedule=None, l1=0.0, l2=0.0, return_state=False):
    """The same training run as fastgd._training.train_epochs, with fastgd.reference doing all the arithmetic.

    Returns ``(theta, losses)``, and the optimizer state dict too with ``return_state=True``."""
    Y = _engine.targets_2d(y)
    theta = np.zeros((Y.shape[1], X.shape[1] + 1))
    st, sc = opt.init_state(theta.size)
    state = opt.state_dict(st, sc)
    rng = np.random.default_rng(random_state)
    losses = []
    for _ in range(epochs):
        order = _engine.batch_order(X.shape[0], batch_size, shuffle, rng)
        losses.append(reference.epoch(X, Y, theta, state, opt.reference_step(), batch_size, order, sw=sw,
                                      fit_intercept=fit_intercept, schedule=schedule, l1=l1, l2=l2))
    return (theta, losses, state) if return_state else (theta, losses)


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300)


def interrupt_first_evaluation(monkeypatch):
    """Make the first evaluation after an epoch raise KeyboardInterrupt (the first call of
    ``FitData.objective`` measures the start); returns a function that restores the real one."""
    from fastgd import _training

    real, calls = _training.FitData.objective, []

    def objective(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_training.FitData, "objective", objective)
    return lambda: monkeypatch.setattr(_training.FitData, "objective", real)


def linear_data(n=600, d=4, seed=0, noise=0.0):
    """(X, y, w): Gaussian columns of scale 2 and mean 1, y = X·w + 3 (+ noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 2 + 1
    w = rng.normal(size=d)
    return X, X @ w + 3.0 + noise * rng.normal(size=n), w


def hashed_zipf_rows(rng, n, d, nnz=30):
    """Binary CSR (n, d), ``nnz`` draws a row from Zipf-like column popularity placed at random columns (as
    hashed text; ``benchmarks/sparse_defaults.py``'s "zipf-bin" rows for the same generator)."""
    import scipy.sparse as sp

    p = 1.0 / np.arange(1, d + 1) ** 1.1
    cols = rng.permutation(d)[rng.choice(d, size=(n, nnz), p=p / p.sum())]
    X = sp.csr_matrix((np.ones(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def wide_csr(n=2000, d=2**16, nnz=30, seed=0):
    """n rows of about ``nnz`` values, uniform in [0, 1), at uniformly drawn columns of d (scipy's
    ``sparse.random`` takes seconds at 2^16 columns and thousands of rows)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.csr_matrix((rng.random(n * nnz), rng.integers(0, d, n * nnz), np.arange(0, n * nnz + 1, nnz)),
                      shape=(n, d))
    X.sum_duplicates()
    return X
