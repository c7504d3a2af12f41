"""Helpers shared by test modules and by tests/golden/make_golden.py (imported as ``from _helpers import ...``:
pytest puts tests/ on sys.path, the script adds it itself). Kept free of pytest and torch imports."""

import json
from pathlib import Path

import numpy as np

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
